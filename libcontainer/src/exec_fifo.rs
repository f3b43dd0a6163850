//! The exec fifo: the init blocks opening it for writing until `start` opens
//! it for reading, so `create` and `start` are two separate steps (runc's scheme).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, read, write};

use crate::error::{Error, Result};

/// Creates the fifo at `path`.
pub(crate) fn create(path: &Path) -> Result<()> {
    mkfifo(path, Mode::from_bits_truncate(0o622))
        .map_err(Error::sys(format!("mkfifo {}", path.display())))
}

/// Opens the fifo as an `O_PATH` handle the init keeps across pivot_root.
pub(crate) fn open_handle(path: &Path) -> Result<OwnedFd> {
    let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(Error::sys(format!("open {}", path.display())))?;
    // SAFETY: freshly opened and owned here.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// In the init: blocks until `start` reads, then returns.
pub(crate) fn wait_for_start(handle: &OwnedFd) -> nix::Result<()> {
    let path = format!("/proc/self/fd/{}", handle.as_raw_fd());
    let fd = open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let r = write(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, b"0");
    let _ = nix::unistd::close(fd);
    r.map(drop)
}

/// In `start`: releases the init blocked on the fifo, giving up if `alive`
/// says the init is gone.
pub(crate) fn release(path: &Path, alive: impl Fn() -> bool) -> Result<()> {
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Error::sys(format!("open {}", path.display())))?;
    // SAFETY: freshly opened and owned here.
    let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    let step = Duration::from_millis(50);
    loop {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            PollFlags::POLLIN,
        )];
        match poll(
            &mut fds,
            PollTimeout::try_from(step).unwrap_or(PollTimeout::NONE),
        ) {
            Ok(0) | Err(nix::Error::EINTR) => {}
            Ok(_) => {
                let mut buf = [0u8; 1];
                match read(fd.as_raw_fd(), &mut buf) {
                    Ok(1) => return Ok(()),
                    Ok(_) | Err(nix::Error::EAGAIN) => {}
                    Err(e) => return Err(Error::sys("read exec fifo")(e)),
                }
            }
            Err(e) => return Err(Error::sys("poll exec fifo")(e)),
        }
        if !alive() {
            return Err(Error::Process(crate::process::ProcessError::InitDied));
        }
        // A writer that came and went leaves POLLHUP set; avoid spinning on it.
        std::thread::sleep(Duration::from_millis(1));
    }
}
