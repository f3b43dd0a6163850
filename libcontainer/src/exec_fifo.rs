//! The exec fifo: the init blocks reading it until `start` writes to it, so
//! `create` and `start` are two separate steps (runc's scheme, with the
//! direction turned around so the init never reopens it after dropping privileges).
//! When the creating process starts the container itself (`run`), an
//! anonymous pipe does the same without a file in the state store. This is
//! the runtime's side; the init's wait is in `process::init`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, write};

use crate::error::{Error, Result};

/// Creates the fifo at `path`.
pub(crate) fn create(path: &Path) -> Result<()> {
    mkfifo(path, Mode::from_bits_truncate(0o622))
        .map_err(Error::sys(format!("mkfifo {}", path.display())))
}

/// Opens the fifo for the init, read-write so the open never blocks. The
/// init later blocks reading it; holding a reader end also lets `start`
/// tell a live init (open succeeds) from a dead one (ENXIO). Opened before
/// the user switch: afterwards the init may not reach `/proc/self/fd`.
pub(crate) fn open_for_init(path: &Path) -> Result<OwnedFd> {
    let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::sys(format!("open {}", path.display())))?;
    // SAFETY: freshly opened and owned here.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// The pipe of a container started by the process that creates it:
/// `(the init's end, start's end)`, both close-on-exec. A socket pair, so
/// that a start after the init died gets EPIPE, not a SIGPIPE that would
/// kill a program embedding the library.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::sys("socketpair"))
}

/// In `start` of a container created with [`pipe`]: wakes the init. EPIPE
/// (no reader) means the init is gone.
pub(crate) fn release_pipe(start_end: OwnedFd) -> Result<()> {
    match send(start_end.as_raw_fd(), b"0", MsgFlags::MSG_NOSIGNAL) {
        Ok(_) => Ok(()),
        Err(nix::Error::EPIPE | nix::Error::ECONNRESET) => {
            Err(Error::Process(crate::process::ProcessError::InitDied))
        }
        Err(e) => Err(Error::sys("write start pipe")(e)),
    }
}

/// In `start`: wakes the init blocked on the fifo. ENXIO (no reader) means
/// the init is gone.
pub(crate) fn release(path: &Path) -> Result<()> {
    let fd = match open(
        path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ENXIO) => {
            return Err(Error::Process(crate::process::ProcessError::InitDied))
        }
        Err(e) => return Err(Error::sys(format!("open {}", path.display()))(e)),
    };
    // SAFETY: freshly opened and owned here.
    let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    write(&fd, b"0").map_err(Error::sys("write exec fifo"))?;
    Ok(())
}
