//! Masked and read-only paths, and the read-only root, applied after pivot_root.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};

use super::safe_path::fd_path;
use super::RootfsError;
use crate::mount_api;

fn open_nofollow(path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let fd = open(
        path,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: freshly opened, owned by nobody else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Opens the container's `/dev/null` and checks that it really is the null
/// device, so masking never binds an attacker-controlled file over a path,
/// such as a `/dev/null -> /proc/sys/kernel/core_pattern` link (CVE-2025-31133).
pub(crate) fn open_dev_null() -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = open_nofollow(path, OFlag::O_PATH).map_err(RootfsError::at("open", path))?;
    let st = fstat(fd.as_raw_fd()).map_err(RootfsError::at("stat", path))?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(RootfsError::NotDevNull);
    }
    Ok(fd)
}

/// Hides `path`: files get `/dev/null` bound over them, directories an empty
/// read-only tmpfs (with the mount label, if any). Missing paths are skipped.
pub(crate) fn mask(
    path: &Path,
    dev_null: &OwnedFd,
    mount_label: Option<&str>,
) -> Result<(), RootfsError> {
    let target = match open_nofollow(path, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::at("open masked path", path)(e)),
    };
    let st = fstat(target.as_raw_fd()).map_err(RootfsError::at("stat", path))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        mount(
            Some("tmpfs"),
            fd_path(&target).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some(crate::labels::with_mount_label("nr_inodes=1", mount_label).as_str()),
        )
    } else {
        mount_api::clone_tree(dev_null.as_raw_fd(), c"", false)
            .and_then(|tree| mount_api::attach(&tree, &target, c""))
    }
    .map_err(RootfsError::at("mask", path))
}

/// Makes `path` read-only: a recursive bind onto itself whose top mount is
/// read-only (its other flags kept). Missing paths are skipped.
pub(crate) fn make_readonly(path: &Path) -> Result<(), RootfsError> {
    let target = match open_nofollow(path, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::at("open read-only path", path)(e)),
    };
    mount_api::clone_tree(target.as_raw_fd(), c"", true)
        .and_then(|tree| {
            mount_api::attach_with_flags(&tree, &target, MsFlags::MS_RDONLY, MsFlags::empty())
        })
        .map_err(RootfsError::at("make read-only", path))
}

/// Makes the mount at `path` read-only, keeping its other flags.
pub(crate) fn remount_readonly(path: &Path) -> Result<(), RootfsError> {
    let mounted = open_nofollow(path, OFlag::O_PATH).map_err(RootfsError::at("open", path))?;
    mount_api::set_flags(&mounted, MsFlags::MS_RDONLY, MsFlags::empty(), false)
        .map_err(RootfsError::at("remount read-only", path))
}
