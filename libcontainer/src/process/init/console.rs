//! `process.terminal`: a pty created inside the container whose master is
//! handed to the caller over `--console-socket` (SCM_RIGHTS), as runc does.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::unistd::dup2;
use oci_spec::runtime::Process;

/// Setting up the terminal failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the console: {context}: {source}")]
pub(crate) struct ConsoleError {
    context: &'static str,
    source: nix::Error,
}

fn err(context: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |source| ConsoleError { context, source }
}

/// Opens a new pty (the container's `/dev/ptmx`), sends its master over
/// `socket`, and makes the slave the controlling terminal and stdio of
/// `process`: owned by its uid, so that a process not running as root can
/// use its terminal, and of its `consoleSize` when it has one.
pub(crate) fn setup(socket: &OwnedFd, process: &Process) -> Result<(), ConsoleError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(err("open /dev/ptmx"))?;
    grantpt(&master).map_err(err("grantpt"))?;
    unlockpt(&master).map_err(err("unlockpt"))?;
    let name = format!("/dev/pts/{}", pty_number(&master)?);
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(err("send pty master to console socket"))?;
    let peer = open_peer(&master)?;
    drop(master);
    give_to(&peer, process.user().uid());
    if let Some(size) = process.console_size() {
        resize(&peer, size.height(), size.width());
    }
    for target in 0..3 {
        dup2(peer.as_raw_fd(), target).map_err(err("dup pty peer"))?;
    }
    drop(peer);
    // SAFETY: TIOCSCTTY on our own stdin, which is now the pty peer.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(err("make pty the controlling terminal")(nix::Error::last()));
    }
    Ok(())
}

/// The number N of the pty's `/dev/pts/N`, asked of the master (no path is
/// looked up, unlike `ptsname`, which also stats that path).
fn pty_number(master: &impl AsRawFd) -> Result<u32, ConsoleError> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(err("get the pty number")(nix::Error::last()));
    }
    Ok(n)
}

/// Opens the peer of `master` with TIOCGPTPEER (Linux 4.13), never through
/// `/dev/pts/N`: in the container that path may be a symlink (its `/dev` is
/// its own, or a volume another container writes), and opening it made runc
/// hand the process a writable `/proc/sys/kernel/core_pattern` before
/// `/proc/sys` was made read-only (CVE-2025-52565).
fn open_peer(master: &impl AsRawFd) -> Result<OwnedFd, ConsoleError> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(err("open the pty peer")(nix::Error::last()));
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `uid` the owner of the pty, keeping its group (devpts's
/// `gid=5`, tty), as runc does. Where the uid or the slave's owner is not
/// mapped in the user namespace (EINVAL, EPERM) the pty stays as it is,
/// as with runc: the process then has a terminal it may not reopen.
fn give_to(peer: &impl AsRawFd, uid: u32) {
    // SAFETY: fchown of an fd we hold; a gid of -1 leaves the group.
    unsafe { libc::fchown(peer.as_raw_fd(), uid, u32::MAX) };
}

/// Sets the terminal's size, as runc does when both are given.
fn resize(peer: &impl AsRawFd, rows: u64, cols: u64) {
    if rows == 0 || cols == 0 {
        return;
    }
    let ws = libc::winsize {
        ws_row: rows.min(u16::MAX as u64) as u16,
        ws_col: cols.min(u16::MAX as u64) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a live winsize.
    unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}
