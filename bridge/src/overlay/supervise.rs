//! The agent process's life, as the DNS resolver's: started detached
//! (`hull network agent NET`) unless one runs, found by a pid file it
//! keeps flock'd for its lifetime (a dead agent's pid, maybe reused, is
//! never taken for a live one), stopped by `network rm`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::{state_dir, OverlayError};
use crate::{detached, NetError, Store};

/// The fd a starting agent reports on: `ok`, or why it cannot run.
pub const READY_FD: i32 = detached::READY_FD;
/// How long a starting agent has to reach the store and program the
/// device (the store's calls time out well before).
const START_TIMEOUT_MS: u16 = 15_000;

/// Whether a network's agent runs, and its pid.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

fn pid_file(store: &Store, net: &str) -> PathBuf {
    state_dir(store, net).join("agent.pid")
}

fn open(path: &Path) -> Result<File, NetError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(NetError::io(format!("create {}", dir.display())))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(NetError::io(format!("open {}", path.display())))
}

fn lock_err(path: &Path) -> impl FnOnce((File, Errno)) -> NetError + '_ {
    move |(_, e)| NetError::io(format!("lock {}", path.display()))(e.into())
}

/// The pid file locked by us (no agent runs), or the live agent's pid text.
fn try_claim(path: &Path) -> Result<Result<Flock<File>, String>, NetError> {
    match Flock::lock(open(path)?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Ok(lock)),
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid)
                .map_err(NetError::io(format!("read {}", path.display())))?;
            Ok(Err(pid))
        }
        Err(e) => Err(lock_err(path)(e)),
    }
}

/// Called by the agent itself: holds the pid file's lock for its lifetime,
/// with its pid in it. Fails if another agent holds it.
pub fn claim(store: &Store, net: &str) -> Result<Flock<File>, NetError> {
    let path = pid_file(store, net);
    let mut lock = try_claim(&path)?.map_err(|pid| OverlayError::Agent {
        net: net.to_owned(),
        why: format!("another agent (pid {}) already runs", pid.trim()),
    })?;
    lock.set_len(0)
        .and_then(|()| lock.write_all(std::process::id().to_string().as_bytes()))
        .map_err(NetError::io(format!("write {}", path.display())))?;
    Ok(lock)
}

/// The agent of `net`, as its pid file says.
pub fn status(store: &Store, net: &str) -> Result<Status, NetError> {
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

/// Serialises starting and stopping a network's agent.
fn control_lock(store: &Store, net: &str) -> Result<Flock<File>, NetError> {
    let path = state_dir(store, net).join("control.lock");
    Flock::lock(open(&path)?, FlockArg::LockExclusive).map_err(lock_err(&path))
}

/// Starts `net`'s agent unless one runs: `exe --net-root … --net-table …
/// network agent NET --ready-fd 3`, detached (own session, reparented to
/// init, stdio on /dev/null, no fd of ours). Returns once it has joined
/// the store and programmed the device; an error says why it could not.
pub fn ensure_running(store: &Store, net: &str, exe: &Path) -> Result<(), NetError> {
    let _control = control_lock(store, net)?;
    if try_claim(&pid_file(store, net))?.is_err() {
        return Ok(());
    }
    let failed = |why: String| -> NetError {
        OverlayError::Agent {
            net: net.to_owned(),
            why,
        }
        .into()
    };
    let mut cmd = Command::new(exe);
    cmd.arg0("hull")
        .arg("--net-root")
        .arg(store.dir())
        .arg("--net-table")
        .arg(&store.table)
        .args(["network", "agent", "--ready-fd", &READY_FD.to_string(), net]);
    detached::start(cmd, START_TIMEOUT_MS).map_err(failed)
}

/// Stops `net`'s agent if one runs and waits until it is gone.
pub fn stop(store: &Store, net: &str) -> Result<(), NetError> {
    let path = pid_file(store, net);
    if !path.exists() {
        return Ok(());
    }
    let _control = control_lock(store, net)?;
    let pid = match try_claim(&path)? {
        Ok(_) => return Ok(()),
        Err(pid) => pid,
    };
    let pid: i32 = pid
        .trim()
        .parse()
        .map_err(|_| NetError::Invalid(format!("{}: locked, but no pid in it", path.display())))?;
    // The pid is the lock holder's own: alive, so not reused.
    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(NetError::io(format!("kill the agent {pid}"))(e.into())),
    }
    Flock::lock(open(&path)?, FlockArg::LockExclusive)
        .map(drop)
        .map_err(lock_err(&path))
}
