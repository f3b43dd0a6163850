//! Writing to procfs so that the write lands on procfs (CVE-2025-52881).
//!
//! A container's config (or, for `exec`, the container itself) can mount a
//! file or tmpfs over a procfs path the runtime writes to, such as
//! `/proc/sys/kernel/shmmax` or `/proc/self/attr/exec`, and so turn the
//! runtime's write into one on a file of its choosing (a bind of a host
//! sysctl, say). Every write here goes through `/proc` opened and checked to
//! be the root of a procfs, then `openat2` below it refusing to cross any
//! mount point or follow any symlink; `self` and `thread-self` are read as
//! links first and their targets walked the same way.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

/// The inode number of a procfs root directory.
const PROC_ROOT_INO: u64 = 1;

/// A procfs write that was refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcfsError {
    #[error("cannot open /proc: {0}")]
    OpenRoot(nix::Error),
    #[error("/proc is not the root of a procfs mount")]
    NotProcfs,
    #[error(
        "refusing to write {}: something is mounted over it or a directory on the way, \
         so the write would not reach procfs",
        path.display()
    )]
    Redirected { path: PathBuf },
    #[error("cannot {op} {}: {source}", path.display())]
    At {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
}

/// The process's `/proc`, checked to be the root of a procfs.
pub(crate) struct ProcRoot {
    fd: OwnedFd,
}

impl ProcRoot {
    /// Opens `/proc` (not through a symlink) and checks that it is the root
    /// directory of a procfs, not a tmpfs or a bind of some procfs subtree.
    pub fn open() -> Result<Self, ProcfsError> {
        let fd = openat(
            None,
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ProcfsError::OpenRoot)?;
        // SAFETY: freshly opened, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let on_procfs = fstatfs(&fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC);
        let is_root = fstat(fd.as_raw_fd()).is_ok_and(|st| st.st_ino == PROC_ROOT_INO);
        if !on_procfs || !is_root {
            return Err(ProcfsError::NotProcfs);
        }
        Ok(Self { fd })
    }

    /// A directory standing in for procfs, for unit tests of the lookups.
    #[cfg(test)]
    pub fn unchecked(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Writes `data` to `/proc/<path>` (`path` relative, e.g.
    /// `sys/kernel/shmmax` or `thread-self/attr/exec`) in one `write`.
    pub fn write(&self, path: &Path, data: &[u8]) -> Result<(), ProcfsError> {
        let file = self.open_in(path, OFlag::O_WRONLY)?;
        let full = Path::new("/proc").join(path);
        match nix::unistd::write(&file, data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(ProcfsError::At {
                op: "write all of",
                path: full,
                source: nix::Error::EIO,
            }),
            Err(source) => Err(ProcfsError::At {
                op: "write",
                path: full,
                source,
            }),
        }
    }

    /// Whether `/proc/<path>` exists (reached the same way as a write).
    pub fn exists(&self, path: &Path) -> bool {
        self.open_in(path, OFlag::O_PATH).is_ok()
    }

    /// Opens `/proc/<path>` below the checked root without crossing a mount
    /// or following a symlink; a leading `self` or `thread-self` is replaced
    /// by what that link names in this procfs.
    fn open_in(&self, path: &Path, flags: OFlag) -> Result<OwnedFd, ProcfsError> {
        let full = Path::new("/proc").join(path);
        let rel = self.resolve_self(path)?;
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        match openat2(self.fd.as_raw_fd(), &rel, how) {
            // SAFETY: freshly opened, owned by nobody else.
            Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(nix::Error::EXDEV) => Err(ProcfsError::Redirected { path: full }),
            Err(source) => Err(ProcfsError::At {
                op: "open",
                path: full,
                source,
            }),
        }
    }

    /// `path` with a leading `self` or `thread-self` replaced by the link's
    /// target (`<pid>` or `<pid>/task/<tid>`), which must be plain names.
    fn resolve_self(&self, path: &Path) -> Result<PathBuf, ProcfsError> {
        let mut parts = path.components();
        let first = match parts.next() {
            Some(Component::Normal(first)) if first == "self" || first == "thread-self" => first,
            _ => return Ok(path.to_owned()),
        };
        let link = Path::new("/proc").join(first);
        let target =
            readlinkat(Some(self.fd.as_raw_fd()), first).map_err(|source| ProcfsError::At {
                op: "read link",
                path: link.clone(),
                source,
            })?;
        let target = PathBuf::from(target);
        if !target
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(ProcfsError::Redirected { path: link });
        }
        Ok(target.join(parts.as_path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A scratch directory laid out like procfs, and a root on it.
    fn fake_proc(name: &str) -> (PathBuf, ProcRoot) {
        let dir = std::env::temp_dir().join(format!("hull-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("7/task/9/attr")).unwrap();
        std::fs::create_dir_all(dir.join("sys/kernel")).unwrap();
        symlink("7", dir.join("self")).unwrap();
        symlink("7/task/9", dir.join("thread-self")).unwrap();
        let fd = std::fs::File::open(&dir).unwrap();
        (dir, ProcRoot::unchecked(fd.into()))
    }

    #[test]
    fn self_links_are_read_then_walked_without_symlinks() {
        let (dir, proc) = fake_proc("procfs-self");
        std::fs::write(dir.join("7/task/9/attr/exec"), "").unwrap();
        proc.write(Path::new("thread-self/attr/exec"), b"x")
            .unwrap();
        assert_eq!(std::fs::read(dir.join("7/task/9/attr/exec")).unwrap(), b"x");
        // A symlink anywhere else is not followed.
        symlink("kernel", dir.join("sys/k")).unwrap();
        std::fs::write(dir.join("sys/kernel/f"), "").unwrap();
        assert!(proc.write(Path::new("sys/k/f"), b"y").is_err());
        assert_eq!(std::fs::read(dir.join("sys/kernel/f")).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_self_link_leaving_procfs_is_refused() {
        let (dir, proc) = fake_proc("procfs-escape");
        std::fs::remove_file(dir.join("self")).unwrap();
        symlink("../etc", dir.join("self")).unwrap();
        assert!(matches!(
            proc.write(Path::new("self/passwd"), b"z"),
            Err(ProcfsError::Redirected { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_real_proc_is_accepted() {
        let proc = ProcRoot::open().unwrap();
        assert!(proc.exists(Path::new("self/status")));
        assert!(proc.exists(Path::new("sys/kernel")));
    }
}
