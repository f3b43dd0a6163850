//! `process.terminal`: a pty created inside the container whose master is
//! handed to the caller over `--console-socket` (SCM_RIGHTS), as runc does.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use nix::unistd::dup2;
use oci_spec::runtime::Process;

/// Setting up the terminal failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the console: {context}: {source}")]
pub struct ConsoleError {
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
    let name = ptsname_r(&master).map_err(err("ptsname"))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(err("send pty master to console socket"))?;
    drop(master);
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open pty slave"))?;
    give_to(slave, process.user().uid());
    if let Some(size) = process.console_size() {
        resize(slave, size.height(), size.width());
    }
    for target in 0..3 {
        dup2(slave, target).map_err(err("dup pty slave"))?;
    }
    let _ = nix::unistd::close(slave);
    // SAFETY: TIOCSCTTY on our own stdin, which is now the pty slave.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(err("make pty the controlling terminal")(nix::Error::last()));
    }
    Ok(())
}

/// Makes `uid` the owner of the pty slave, keeping its group (devpts's
/// `gid=5`, tty), as runc does. Where the uid or the slave's owner is not
/// mapped in the user namespace (EINVAL, EPERM) the slave stays as it is,
/// as with runc: the process then has a terminal it may not reopen.
fn give_to(slave: std::os::fd::RawFd, uid: u32) {
    // SAFETY: fchown of an fd we hold; a gid of -1 leaves the group.
    unsafe { libc::fchown(slave, uid, u32::MAX) };
}

/// Sets the terminal's size, as runc does when both are given.
fn resize(slave: std::os::fd::RawFd, rows: u64, cols: u64) {
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
    unsafe { libc::ioctl(slave, libc::TIOCSWINSZ, &ws) };
}
