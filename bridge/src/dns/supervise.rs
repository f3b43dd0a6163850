//! The resolver process's life: started detached on an attach when none
//! runs, found by a pid file it keeps flock'd (so a pid of a dead resolver,
//! maybe reused by another process, is never mistaken for a live one),
//! retiring by itself once its network has no container left, and stopped
//! on `network rm`.
//!
//! Retiring is what makes a crash of hull harmless: a hull killed after it
//! started the resolver, before its container was attached for good,
//! leaves a resolver that belongs to nobody; the `delete --force` that
//! cleans up after the crash detaches the container, and the resolver,
//! watching the attachments, sees its network empty and goes, pid file
//! and sockets with it.

use std::ffi::OsString;
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

use super::{net_dir, DnsError};
use crate::detached;

/// The fd a starting resolver reports on: `ok`, or why it cannot serve.
pub const READY_FD: i32 = detached::READY_FD;
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

/// Opens `path` to lock it, making the file if `create` (its directory
/// must exist).
fn open(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

/// Serialises starting, stopping and retiring a network's resolver, and
/// reading its state (a probe of the pid file takes its lock for a moment,
/// which a resolver starting then must not mistake for another's).
fn control_lock(store: &Path, net: &str) -> Result<Flock<File>, DnsError> {
    let path = net_dir(store, net).join("control.lock");
    let file = open(&path, true).map_err(DnsError::io("open", &path))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| DnsError::io("lock", &path)(e.into()))
}

/// Who holds a pid file.
enum Holder {
    /// Nobody did: now we do.
    Us(Flock<File>),
    /// A live resolver, with what the file says (its pid).
    Resolver(String),
    /// There is no pid file (and none was to be made).
    Missing,
}

/// Takes the pid file's lock if nobody holds it, making the file if
/// `create`.
fn lock_pid_file(path: &Path, create: bool) -> Result<Holder, DnsError> {
    loop {
        let file = match open(path, create) {
            Ok(file) => file,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Holder::Missing)
            }
            Err(e) => return Err(DnsError::io("open", path)(e)),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) if is_at(&lock, path) => return Ok(Holder::Us(lock)),
            // A retiring resolver removed the file after we opened it: a
            // lock on a file no longer at `path` guards nothing. Again.
            Ok(_) => continue,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                file.read_to_string(&mut pid)
                    .map_err(DnsError::io("read", path))?;
                return Ok(Holder::Resolver(pid));
            }
            Err((_, e)) => return Err(DnsError::io("lock", path)(e.into())),
        }
    }
}

/// Whether the open `file` is the one at `path`.
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Called by the resolver itself: takes the pid file's lock for its
/// lifetime and writes its pid. Fails if another resolver holds it.
pub(crate) fn claim(store: &Path, net: &str) -> Result<Flock<File>, DnsError> {
    let dir = net_dir(store, net);
    std::fs::create_dir_all(&dir).map_err(DnsError::io("create", &dir))?;
    let path = pid_file(store, net);
    let mut lock = match lock_pid_file(&path, true)? {
        Holder::Us(lock) => lock,
        Holder::Resolver(pid) => {
            return Err(DnsError::Start {
                net: net.to_owned(),
                why: format!("another resolver (pid {}) already serves it", pid.trim()),
            })
        }
        Holder::Missing => unreachable!("made if missing"),
    };
    lock.set_len(0)
        .and_then(|()| lock.write_all(std::process::id().to_string().as_bytes()))
        .map_err(DnsError::io("write", &path))?;
    Ok(lock)
}

/// Called by the resolver when its network has no container left: under
/// the control lock, asks `unused` again (an attach records its container
/// before it takes that lock to start a resolver, so that container is
/// either seen here or gets a resolver of its own once this one is gone).
/// If still unused, removes the pid file, and the caller ends: `true`.
pub(crate) fn retire(
    store: &Path,
    net: &str,
    unused: impl FnOnce() -> bool,
) -> Result<bool, DnsError> {
    let _control = control_lock(store, net)?;
    if !unused() {
        return Ok(false);
    }
    let path = pid_file(store, net);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DnsError::io("remove", &path)(e)),
        _ => Ok(true),
    }
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
    let _control = control_lock(store, net)?;
    Ok(match lock_pid_file(&path, false)? {
        Holder::Us(_) | Holder::Missing => Status {
            running: false,
            pid: None,
        },
        Holder::Resolver(pid) => Status {
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
    let dir = net_dir(store, net);
    std::fs::create_dir_all(&dir).map_err(DnsError::io("create", &dir))?;
    let _control = control_lock(store, net)?;
    if let Holder::Resolver(_) = lock_pid_file(&pid_file(store, net), true)? {
        return Ok(());
    }
    let failed = |why: String| DnsError::Start {
        net: net.to_owned(),
        why,
    };
    let mut cmd = Command::new(exe);
    cmd.arg0("hull")
        .args(args)
        .arg("--ready-fd")
        .arg(READY_FD.to_string());
    detached::start(cmd, START_TIMEOUT_MS).map_err(failed)
}

/// Stops `net`'s resolver if one runs, waits until it is gone and removes
/// its pid file.
pub fn stop(store: &Path, net: &str) -> Result<(), DnsError> {
    let path = pid_file(store, net);
    if !path.exists() {
        return Ok(());
    }
    let _control = control_lock(store, net)?;
    if let Holder::Resolver(pid) = lock_pid_file(&path, false)? {
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
        let file = open(&path, false).map_err(DnsError::io("open", &path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(drop)
            .map_err(|(_, e)| DnsError::io("lock", &path)(e.into()))?;
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DnsError::io("remove", &path)(e)),
        _ => Ok(()),
    }
}
