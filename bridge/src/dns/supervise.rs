//! The resolver process's life: started detached on an attach when none
//! runs, found by a pid file it keeps flock'd (so a pid of a dead resolver,
//! maybe reused by another process, is never mistaken for a live one), and
//! stopped on `network rm`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::{net_dir, DnsError};

/// The fd a starting resolver reports on: `ok`, or why it cannot serve.
pub const READY_FD: i32 = 3;
/// How long a starting resolver has to bind its sockets.
const START_TIMEOUT_MS: u16 = 5000;

/// Whether a network's resolver runs, and its pid.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

fn pid_file(store: &Path, net: &str) -> PathBuf {
    net_dir(store, net).join("resolver.pid")
}

fn open(path: &Path) -> Result<File, DnsError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(DnsError::io("create", dir))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(DnsError::io("open", path))
}

/// Serialises starting and stopping a network's resolver.
fn control_lock(store: &Path, net: &str) -> Result<Flock<File>, DnsError> {
    let path = net_dir(store, net).join("control.lock");
    Flock::lock(open(&path)?, FlockArg::LockExclusive)
        .map_err(|(_, e)| DnsError::io("lock", &path)(e.into()))
}

/// The pid file, locked by us (no resolver runs), or `None` with the pid
/// file's text when a live resolver holds it.
fn try_claim(path: &Path) -> Result<Result<Flock<File>, String>, DnsError> {
    let file = open(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Ok(lock)),
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid)
                .map_err(DnsError::io("read", path))?;
            Ok(Err(pid))
        }
        Err((_, e)) => Err(DnsError::io("lock", path)(e.into())),
    }
}

/// Called by the resolver itself: takes the pid file's lock for its
/// lifetime and writes its pid. Fails if another resolver holds it.
pub(crate) fn claim(store: &Path, net: &str) -> Result<Flock<File>, DnsError> {
    let path = pid_file(store, net);
    let mut lock = try_claim(&path)?.map_err(|pid| DnsError::Start {
        net: net.to_owned(),
        why: format!("another resolver (pid {}) already serves it", pid.trim()),
    })?;
    lock.set_len(0)
        .and_then(|()| lock.write_all(std::process::id().to_string().as_bytes()))
        .map_err(DnsError::io("write", &path))?;
    Ok(lock)
}

/// The resolver of `net`, as its pid file says.
pub fn status(store: &Path, net: &str) -> Result<Status, DnsError> {
    let path = pid_file(store, net);
    if !path.exists() {
        return Ok(Status {
            running: false,
            pid: None,
        });
    }
    Ok(match try_claim(&path)? {
        Ok(_) => Status {
            running: false,
            pid: None,
        },
        Err(pid) => Status {
            running: true,
            pid: pid.trim().parse().ok(),
        },
    })
}

/// Starts `net`'s resolver unless one runs: `exe args… --ready-fd 3`,
/// detached (own session, reparented to init, stdio on /dev/null, no fd
/// of ours). Returns once it listens; an error says why it could not.
pub fn ensure_running(
    store: &Path,
    net: &str,
    exe: &Path,
    args: &[OsString],
) -> Result<(), DnsError> {
    let _control = control_lock(store, net)?;
    if try_claim(&pid_file(store, net))?.is_err() {
        return Ok(());
    }
    let failed = |why: String| DnsError::Start {
        net: net.to_owned(),
        why,
    };
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    let wfd = write.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg0("hull")
        .args(args)
        .arg("--ready-fd")
        .arg(READY_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (dup2, fcntl, close_range, setsid, chdir, fork, _exit), on fds this process owns.
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
        .map_err(|e| failed(format!("run {}: {e}", exe.display())))?;
    drop(write);
    let _ = child.wait();
    let said = read_ready(read).map_err(|e| failed(format!("no word from it: {e}")))?;
    match said.trim() {
        "ok" => Ok(()),
        "" => Err(failed("it exited at once".into())),
        why => Err(failed(why.to_owned())),
    }
}

/// What the starting resolver wrote before closing its end (or timing out).
fn read_ready(read: OwnedFd) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut file = File::from(read);
    loop {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(START_TIMEOUT_MS)) {
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

/// Stops `net`'s resolver if one runs and waits until it is gone.
pub fn stop(store: &Path, net: &str) -> Result<(), DnsError> {
    let path = pid_file(store, net);
    if !path.exists() {
        return Ok(());
    }
    let _control = control_lock(store, net)?;
    let pid = match try_claim(&path)? {
        Ok(_) => return Ok(()),
        Err(pid) => pid,
    };
    let pid: i32 = pid.trim().parse().map_err(|_| DnsError::Corrupt {
        path: path.clone(),
        why: format!("locked, but no pid in it: {pid:?}"),
    })?;
    // The pid is the lock holder's own: alive, so not reused.
    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(DnsError::io("kill the resolver of", &path)(e.into())),
    }
    // The lock is free once the process is gone: wait for that.
    Flock::lock(open(&path)?, FlockArg::LockExclusive)
        .map(drop)
        .map_err(|(_, e)| DnsError::io("lock", &path)(e.into()))
}
