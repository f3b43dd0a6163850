//! A terminal for a foreground `run` without `--console-socket` (what runc
//! does for `runc run` with `process.terminal`): hull receives the pty master
//! itself and copies between it and its own stdin/stdout, in raw mode when
//! stdin is a terminal, passing window-size changes and signals on.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use libcontainer::nix::sys::signal::{kill, SigSet, Signal};
use libcontainer::nix::unistd::Pid;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

use crate::{Failure, Outcome};

/// A private console socket that receives the container's pty master.
pub struct Console {
    dir: PathBuf,
    listener: UnixListener,
}

impl Console {
    pub fn listen(id: &str) -> Result<Self, Failure> {
        let dir = std::env::temp_dir().join(format!("hull-console-{}-{id}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Failure::new(format!("create {}: {e}", dir.display())))?;
        let listener = UnixListener::bind(dir.join("console.sock"))
            .map_err(|e| Failure::new(format!("console socket: {e}")))?;
        Ok(Self { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("console.sock")
    }

    /// The master the init sent during `create`.
    pub fn receive_master(&self) -> Result<OwnedFd, Failure> {
        let err = |e: &dyn std::fmt::Display| Failure::new(format!("receive the pty master: {e}"));
        let (stream, _) = self.listener.accept().map_err(|e| err(&e))?;
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| err(&e))?;
        let fd = msg.cmsgs().map_err(|e| err(&e))?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        // SAFETY: the fd arrived with the message and is ours now.
        fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .ok_or_else(|| err(&"no fd in the message"))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Puts stdin back the way it was.
struct RawMode(Termios);

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.0);
    }
}

fn copy_window_size(master: &impl AsRawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Copies between the terminal and `master`, passing signals on to `pid`,
/// until `try_wait` reports the exit code (of the container or the exec'd
/// process), which it returns.
pub fn proxy(
    pid: Option<Pid>,
    mut try_wait: impl FnMut() -> Result<Option<i32>, Failure>,
    mask: &SigSet,
    master: OwnedFd,
) -> Outcome {
    let _raw = match termios::tcgetattr(std::io::stdin().as_fd()) {
        Ok(saved) => {
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &raw);
            copy_window_size(&master);
            Some(RawMode(saved))
        }
        Err(_) => None,
    };
    let signals = SignalFd::new(mask).map_err(|e| Failure::new(format!("signalfd: {e}")))?;
    let mut master_file = std::fs::File::from(master);
    let (mut stdin_open, mut master_open) = (true, true);
    let mut buf = [0u8; 8192];
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                master_file.as_fd(),
                if master_open {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
            PollFd::new(
                stdin.as_fd(),
                if stdin_open {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Failure::new(format!("poll: {e}"))),
            Ok(_) => {}
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if master_ready {
            match master_file.read(&mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                }
            }
        }
        if stdin_ready {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = master_file.write_all(&buf[..n]);
                }
            }
        }
        if sig_ready {
            if let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGWINCH) => copy_window_size(&master_file),
                    Ok(sig) => {
                        if let Some(pid) = pid {
                            let _ = kill(pid, sig);
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        if !master_open || sig_ready {
            if let Some(code) = try_wait()? {
                if master_open {
                    drain(&mut master_file, &mut buf);
                }
                return Ok(code);
            }
        }
    }
}

/// Copies what the process wrote before it exited and is still on its way
/// through the pty: until the master reports the slave closed (EIO), or
/// until it stays quiet for a moment when a leftover child holds the slave.
fn drain(master: &mut std::fs::File, buf: &mut [u8]) {
    let mut out = std::io::stdout().lock();
    loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Err(nix::Error::EINTR) => continue,
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match master.read(buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
            }
        }
    }
    let _ = out.flush();
}
