//! Namespace files: opening one, and finding which of the init's
//! namespaces differ from the caller's.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::{fstat, stat, FileStat, Mode};
use nix::unistd::Pid;

use super::ProcessError;

/// The init's namespace `name`, unless it is the caller's own.
pub(super) fn namespace_of(
    init: Pid,
    name: &str,
    flag: libc::c_int,
) -> Result<Option<(CloneFlags, OwnedFd)>, ProcessError> {
    let theirs = open_fd(Path::new(&format!("/proc/{init}/ns/{name}"))).map_err(
        ProcessError::sys("open a namespace of the container's init"),
    )?;
    let id = |st: FileStat| (st.st_dev, st.st_ino);
    let ours = stat(format!("/proc/self/ns/{name}").as_str()).map(id);
    if ours.is_ok() && fstat(theirs.as_raw_fd()).map(id) == ours {
        return Ok(None);
    }
    Ok(Some((CloneFlags::from_bits_retain(flag), theirs)))
}

/// Opens a namespace file (`/proc/<pid>/ns/<name>` or a bind mount of one).
pub(super) fn open_fd(path: &Path) -> nix::Result<OwnedFd> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: freshly opened, owned here.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}
