//! Making the rootfs the container's `/`.

use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, close, fchdir, pivot_root};

use super::RootfsError;

const NONE: Option<&str> = None;

/// `pivot_root(".", ".")` inside the rootfs, then lazily detaches the old root
/// stacked underneath, so nothing of the host's tree stays reachable.
pub(crate) fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |op| RootfsError::at(op, rootfs);
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).map_err(err("open /"))?;
    let new = open(rootfs, flags, Mode::empty()).map_err(err("open"))?;
    let result = (|| {
        fchdir(new).map_err(err("chdir to"))?;
        pivot_root(".", ".").map_err(err("pivot_root to"))?;
        fchdir(old).map_err(err("chdir to old root of"))?;
        // Keep unmount events of the old root from reaching the host.
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .map_err(err("make old root slave"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(err("detach old root"))?;
        chdir("/").map_err(err("chdir to /"))
    })();
    let _ = close(old);
    let _ = close(new);
    result
}

/// The `--no-pivot` path: move the rootfs mount onto `/` and chroot into it.
/// Only for roots where pivot_root is impossible (e.g. an initramfs).
pub(crate) fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    hide_full_proc_and_sysfs(rootfs)?;
    let err = |op| RootfsError::at(op, rootfs);
    chdir(rootfs).map_err(err("chdir to"))?;
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE).map_err(err("move mount"))?;
    chroot(".").map_err(err("chroot to"))?;
    chdir("/").map_err(err("chdir to /"))
}

/// Detaches (or, where that is refused, covers with a tmpfs) every full
/// procfs and sysfs mount outside the rootfs. After chroot they stay in the
/// mount namespace, and the kernel lets a process mount a new procfs or
/// sysfs as long as a full, uncovered one is there: a nested user and pid
/// namespace in a `--no-pivot` container could then mount a procfs of its
/// own, unmasked. runc hides them the same way in msMoveRoot (a hardening
/// no CVE was assigned to).
fn hide_full_proc_and_sysfs(rootfs: &Path) -> Result<(), RootfsError> {
    let info = crate::pseudo_file::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::Invalid(format!("read /proc/self/mountinfo: {e}")))?;
    let full: Vec<PathBuf> = info
        .lines()
        .filter_map(full_pseudo_mount)
        .filter(|p| !p.starts_with(rootfs))
        .collect();
    for p in full {
        // Keep the unmount from propagating to the host's namespace.
        match mount(NONE, &p, NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE) {
            // Gone with a parent detached before it.
            Err(nix::Error::ENOENT) => continue,
            r => r.map_err(RootfsError::at("make slave", &p))?,
        }
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL | nix::Error::EPERM) => {
                mount(Some("tmpfs"), &p, Some("tmpfs"), MsFlags::empty(), NONE)
                    .map_err(RootfsError::at("cover with a tmpfs", &p))?
            }
            Err(e) => return Err(RootfsError::at("detach", &p)(e)),
        }
    }
    Ok(())
}

/// The mount point of a mountinfo line that mounts the root of a procfs or
/// sysfs.
fn full_pseudo_mount(line: &str) -> Option<PathBuf> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let fstype = *fields.get(sep + 1)?;
    let (root, mount_point) = (*fields.get(3)?, *fields.get(4)?);
    (root == "/" && (fstype == "proc" || fstype == "sysfs")).then(|| unescape(mount_point))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_full_proc_and_sysfs_mounts_only() {
        let lines = [
            (
                "22 27 0:21 / /proc rw,relatime - proc proc rw",
                Some("/proc"),
            ),
            (
                "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw",
                Some("/sys"),
            ),
            ("50 22 0:21 /sys /x/sys rw - proc proc rw", None),
            ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw", None),
            (
                "60 27 0:21 / /a\\040b rw shared:1 - proc proc rw",
                Some("/a b"),
            ),
            (
                "61 27 0:21 / /c\\777d\\ rw - sysfs sysfs rw",
                Some("/c\\777d\\"),
            ),
        ];
        for (line, want) in lines {
            assert_eq!(full_pseudo_mount(line), want.map(PathBuf::from), "{line}");
        }
    }
}
