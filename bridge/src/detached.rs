//! Starting one of hull's own helper processes (a network's DNS resolver,
//! an overlay's agent) detached: own session, reparented to init, stdio on
//! /dev/null, no fd of the caller's but the ready pipe, which the helper
//! writes "ok" or why it failed to before closing.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The fd a helper finds its ready pipe on (`--ready-fd`).
pub const READY_FD: i32 = 3;

/// Runs `cmd` (its arguments, `--ready-fd` included, set by the caller)
/// detached and waits up to `timeout_ms` for its word; Err says why it
/// did not start.
pub(crate) fn start(mut cmd: Command, timeout_ms: u16) -> Result<(), String> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let wfd = write.as_raw_fd();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (dup2, fcntl, close_range, setsid, chdir, fork, _exit), on fds this
    // process owns.
    unsafe {
        cmd.pre_exec(move || {
            if wfd == READY_FD {
                libc::fcntl(wfd, libc::F_SETFD, 0);
            } else if libc::dup2(wfd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Whatever fds hull inherited (an engine's pipes, passed fds)
            // must not be held open by a process that outlives it.
            libc::syscall(
                libc::SYS_close_range,
                READY_FD + 1,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            libc::setsid();
            // Not holding the caller's directory (a bundle's mount) busy.
            libc::chdir(c"/".as_ptr());
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                _ => libc::_exit(0),
            }
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("run {}: {e}", cmd.get_program().to_string_lossy()))?;
    drop(write);
    let _ = child.wait();
    let said = read_ready(read, timeout_ms).map_err(|e| format!("no word from it: {e}"))?;
    match said.trim() {
        "ok" => Ok(()),
        "" => Err("it exited at once".into()),
        why => Err(why.to_owned()),
    }
}

/// What the starting helper wrote before closing its end (or timing out).
fn read_ready(read: OwnedFd, timeout_ms: u16) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut file = File::from(read);
    loop {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(0) => return Err(std::io::ErrorKind::TimedOut.into()),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let mut buf = [0u8; 512];
        match file.read(&mut buf)? {
            0 => return Ok(String::from_utf8_lossy(&out).into_owned()),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}
