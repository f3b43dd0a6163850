//! The fd-based mount calls (Linux 5.12): per-mount flags set with
//! `mount_setattr` on an open handle, and bind mounts made with `open_tree` +
//! `move_mount`. Neither walks a `/proc/self/fd/N` path, and a whole tree of
//! mounts takes its flags in one call. Used for the container's filesystem
//! and for the read-only view of the runtime binary (`seal`).

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::MsFlags;

/// The `mount_setattr` attributes for the per-mount flags among `set` and
/// `clear`: `(attr_set, attr_clr)`. Superblock flags (sync, dirsync, ...)
/// have none, as a bind remount would ignore them too.
fn attrs(set: MsFlags, clear: MsFlags) -> (u64, u64) {
    let simple = [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
    ];
    let (mut on, mut off) = (0, 0);
    for (flag, attr) in simple {
        if set.contains(flag) {
            on |= attr;
        } else if clear.contains(flag) {
            off |= attr;
        }
    }
    // The access-time mode is one field: setting it clears the others.
    let atime = [
        (MsFlags::MS_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, libc::MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_RELATIME, libc::MOUNT_ATTR_RELATIME),
    ];
    if let Some((_, attr)) = atime.iter().find(|(flag, _)| set.contains(*flag)) {
        on |= attr;
        off |= libc::MOUNT_ATTR__ATIME;
    }
    (on, off)
}

/// Sets the per-mount flags `set` and clears `clear` on the mount `fd` is
/// the root of, and with `recursive` on every mount below it; flags not
/// named keep their value.
pub(crate) fn set_flags(
    fd: &impl AsRawFd,
    set: MsFlags,
    clear: MsFlags,
    recursive: bool,
) -> nix::Result<()> {
    let (attr_set, attr_clr) = attrs(set, clear);
    if attr_set == 0 && attr_clr == 0 {
        return Ok(());
    }
    let attr = libc::mount_attr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    setattr(fd, &attr, recursive)
}

/// Sets and clears mount_setattr attributes (`attr_set`, `attr_clr`) on
/// the mount `fd` is the root of and every mount below it.
pub(crate) fn set_attrs_recursive(
    fd: &impl AsRawFd,
    (attr_set, attr_clr): (u64, u64),
) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    setattr(fd, &attr, true)
}

/// Makes the detached `tree` (with `recursive` every mount of it) show its
/// files' ids mapped through the user namespace `userns`.
pub(crate) fn set_idmap(tree: &OwnedFd, userns: &OwnedFd, recursive: bool) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    setattr(tree, &attr, recursive)
}

/// `mount_setattr` on the mount `fd` is the root of (and with `recursive`
/// on every mount below it).
fn setattr(fd: &impl AsRawFd, attr: &libc::mount_attr, recursive: bool) -> nix::Result<()> {
    let mut at = libc::AT_EMPTY_PATH;
    if recursive {
        at |= libc::AT_RECURSIVE;
    }
    // SAFETY: a live fd, an empty C string and a mount_attr of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            at,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    nix::Error::result(r).map(drop)
}

/// A detached copy of the mount at `path` (relative to `dirfd`; empty for
/// `dirfd` itself), with `recursive` the mounts below it too: a bind mount
/// not yet attached anywhere.
pub(crate) fn clone_tree(dirfd: libc::c_int, path: &CStr, recursive: bool) -> nix::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid C string; returns a new fd owned below.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    let fd = nix::Error::result(fd)?;
    // SAFETY: open_tree returned a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A detached bind mount of the host path `source`.
pub(crate) fn clone_path(source: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    let src = CString::new(source.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    clone_tree(libc::AT_FDCWD, &src, recursive)
}

/// Attaches the detached `tree` on `name` in `dir` (empty: on `dir` itself).
pub(crate) fn attach(tree: &OwnedFd, dir: &impl AsRawFd, name: &CStr) -> nix::Result<()> {
    let mut flags = libc::MOVE_MOUNT_F_EMPTY_PATH;
    if name.is_empty() {
        flags |= libc::MOVE_MOUNT_T_EMPTY_PATH;
    }
    // SAFETY: live fds and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            flags,
        )
    };
    nix::Error::result(r).map(drop)
}

/// Gives the detached `tree` the per-mount flags `set` and `clear` (on its
/// top mount), then attaches it on `target` itself: a bind mount never seen
/// without its flags.
pub(crate) fn attach_with_flags(
    tree: &OwnedFd,
    target: &impl AsRawFd,
    set: MsFlags,
    clear: MsFlags,
) -> nix::Result<()> {
    set_flags(tree, set, clear, false)?;
    attach(tree, target, c"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_mount_flags_to_attributes() {
        let f = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_RELATIME;
        let (on, off) = attrs(f, MsFlags::MS_NOEXEC);
        assert_eq!(
            on,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_RELATIME
        );
        assert_eq!(off, libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME);
        // Superblock flags have no per-mount attribute.
        assert_eq!(attrs(MsFlags::MS_SYNCHRONOUS, MsFlags::empty()), (0, 0));
    }
}
