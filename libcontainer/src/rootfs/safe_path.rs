//! Resolving paths inside the container's root filesystem without ever leaving it.
//!
//! Every lookup goes through `openat2(RESOLVE_IN_ROOT)` on a directory fd of the
//! rootfs, so a symlink planted in the image (`/proc -> /etc`, `/dev -> /`) is
//! resolved as if the rootfs were `/`, never against the host (CVE-2019-19921,
//! CVE-2021-30465). Mounts then target the opened fd through `/proc/self/fd/N`,
//! so the path is not walked a second time.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::readlinkat;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use super::RootfsError;

/// An open directory that acts as `/` for every lookup made through it.
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// The `/proc/self/fd/N` path through which a syscall taking a path reaches `fd`.
pub(crate) fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`, the new fd owned.
pub(crate) fn open_at<P: ?Sized + nix::NixPath>(
    dir: &impl AsRawFd,
    name: &P,
    flags: OFlag,
    mode: Mode,
) -> nix::Result<OwnedFd> {
    openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_CLOEXEC, mode).map(own)
}

impl Root {
    /// Opens `path` (a host path) as the root for later lookups.
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let fd = openat(
            None,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RootfsError::at("open rootfs", path))?;
        Ok(Self {
            fd: own(fd),
            path: path.to_owned(),
        })
    }

    /// Host path of the root, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `path` (read as relative to the root) with `flags | O_CLOEXEC`,
    /// resolving every symlink inside the root and refusing magic links.
    pub fn open_in(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = relative(path);
        let mut tries = 0;
        loop {
            let how = OpenHow::new()
                .flags(flags | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            match openat2(self.fd.as_raw_fd(), &rel, how) {
                // A mount or rename anywhere on the system during a lookup with
                // `..` makes the kernel refuse to vouch for it: try again.
                Err(nix::Error::EAGAIN) if tries < 128 => tries += 1,
                r => return r.map(own),
            }
        }
    }

    /// Opens `path` as an `O_PATH` handle.
    pub fn open_path(&self, path: &Path) -> nix::Result<OwnedFd> {
        self.open_in(path, OFlag::O_PATH)
    }

    /// Creates every missing directory of `path` inside the root (like `mkdir -p`)
    /// and returns an `O_PATH` handle on the last one. A dangling symlink on the
    /// way is followed inside the root and its target created, as runc does.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd, RootfsError> {
        self.mkdir_all_within(path, mode, 0)
    }

    fn mkdir_all_within(&self, path: &Path, mode: u32, links: u32) -> Result<OwnedFd, RootfsError> {
        let err = |e| RootfsError::at("create directory", path)(e);
        if links > 40 {
            return Err(err(nix::Error::ELOOP));
        }
        if let Some(fd) = self.open_or_make_last(path, mode) {
            return Ok(fd);
        }
        let mut done = PathBuf::new();
        let mut dir = self
            .open_path(Path::new("."))
            .map_err(RootfsError::at("open rootfs", &self.path))?;
        let rel = relative(path);
        let components: Vec<_> = rel.components().collect();
        for (i, c) in components.iter().enumerate() {
            let Component::Normal(name) = c else { continue };
            done.push(name);
            dir = match self.open_in(&done, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(nix::Error::ENOENT) => {
                    // Create the component below the already resolved parent.
                    match mkdirat(Some(dir.as_raw_fd()), *name, Mode::from_bits_truncate(mode)) {
                        Ok(()) => self
                            .open_in(&done, OFlag::O_PATH | OFlag::O_DIRECTORY)
                            .map_err(err)?,
                        Err(nix::Error::EEXIST) => {
                            // A dangling symlink: continue from its target, inside the root.
                            let target = readlinkat(Some(dir.as_raw_fd()), *name).map_err(err)?;
                            let mut next = match Path::new(&target) {
                                t if t.is_absolute() => t.to_owned(),
                                t => done.parent().unwrap_or(Path::new("")).join(t),
                            };
                            next.extend(&components[i + 1..]);
                            return self.mkdir_all_within(&next, mode, links + 1);
                        }
                        Err(e) => return Err(err(e)),
                    }
                }
                Err(e) => return Err(err(e)),
            };
        }
        Ok(dir)
    }

    /// The common cases of [`Self::mkdir_all`] in one to three lookups instead
    /// of one per component: `path` is already a directory, or only its last
    /// component is missing. `None` leaves everything else (and every error)
    /// to the component-by-component walk.
    fn open_or_make_last(&self, path: &Path, mode: u32) -> Option<OwnedFd> {
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
        match self.open_in(path, dir) {
            Ok(fd) => return Some(fd),
            Err(nix::Error::ENOENT) => {}
            Err(_) => return None,
        }
        let rel = relative(path);
        let (Some(parent), Some(Component::Normal(name))) =
            (rel.parent(), rel.components().next_back())
        else {
            return None;
        };
        let parent = self.open_in(parent, dir).ok()?;
        mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
        )
        .ok()?;
        self.open_in(path, dir).ok()
    }

    /// Makes sure `path` exists as a file inside the root (creating its parents
    /// and an empty file if needed) and returns an `O_PATH` handle on it.
    pub fn ensure_file(&self, path: &Path) -> Result<OwnedFd, RootfsError> {
        if let Ok(fd) = self.open_path(path) {
            return Ok(fd);
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .ok_or_else(|| RootfsError::Invalid(format!("{} has no file name", path.display())))?;
        let dir = self.mkdir_all(parent, 0o755)?;
        match openat(
            Some(dir.as_raw_fd()),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => drop(own(fd)),
            Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(RootfsError::at("create file", path)(e)),
        }
        self.open_path(path).map_err(RootfsError::at("open", path))
    }
}

/// `path` with its leading `/` removed (`.` for the root itself).
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hull-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let base = scratch("safe-path");
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute symlink and a ../ escape must both stay inside `root`.
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../outside", root.join("rel")).unwrap();
        let r = Root::open(&root).unwrap();
        r.mkdir_all(Path::new("/abs/made"), 0o755).unwrap();
        r.mkdir_all(Path::new("/rel/made2"), 0o755).unwrap();
        assert!(!outside.join("made").exists());
        assert!(!outside.join("made2").exists());
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("made")
            .is_dir());
        assert!(root.join("outside/made2").is_dir());
        r.ensure_file(Path::new("/abs/f")).unwrap();
        assert!(!outside.join("f").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn mkdir_all_makes_the_last_component_and_reopens_existing_ones() {
        let base = scratch("mkdir-last");
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        symlink("/a", base.join("link")).unwrap();
        let r = Root::open(&base).unwrap();
        r.mkdir_all(Path::new("/a/b"), 0o755).unwrap();
        r.mkdir_all(Path::new("/link/b/c"), 0o755).unwrap();
        assert!(base.join("a/b/c").is_dir());
        r.mkdir_all(Path::new("/x/y/z"), 0o755).unwrap();
        assert!(base.join("x/y/z").is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn relative_strips_the_root() {
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
    }
}
