//! A volume server's pid file, locked (`flock`) from before the server is
//! spawned until it exits: the attaching hull locks it, the server inherits
//! that locked descriptor and keeps it open all its life.
//!
//! Crash safety: a kill of the attaching hull after the spawn but before
//! the server has written its pid would otherwise leave a server nobody
//! knows of; a `delete --force` run then found no pid, removed the files,
//! and the server came up and served on after it. With the lock, whoever
//! stops the server sees that one may be starting and waits for its pid.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::error::{Result, VolumeError};

/// Creates (or empties) `path` and locks it for a server about to be
/// spawned; fails if a live server holds it.
pub(crate) fn lock_new(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(VolumeError::io(path))?;
    if !try_lock(&file) {
        return Err(VolumeError::io(path)(std::io::Error::from(
            std::io::ErrorKind::ResourceBusy,
        )));
    }
    file.set_len(0).map_err(VolumeError::io(path))?;
    Ok(file)
}

/// Lets a child about to be executed inherit `fd` (runs between fork and
/// exec: async-signal-safe calls only).
pub(crate) fn inherit(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor this process holds.
    match unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The server's side: the locked pid file inherited as `fd` (checked to be
/// `path`), else `path` locked anew (a server started by hand); this
/// process's pid written into it. Keep the file open while serving.
pub(crate) fn adopt(path: &Path, fd: Option<RawFd>) -> Result<File> {
    let inherited = fd.and_then(|fd| {
        let st = nix::sys::stat::fstat(fd).ok()?;
        let same =
            std::fs::metadata(path).is_ok_and(|m| m.dev() == st.st_dev && m.ino() == st.st_ino);
        // SAFETY: an open descriptor of `path` handed to this process,
        // owned from here on.
        same.then(|| unsafe { File::from_raw_fd(fd) })
    });
    let file = match inherited {
        Some(file) => {
            // Not passed on to anything this server runs.
            // SAFETY: fcntl on the descriptor just adopted.
            unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
            file
        }
        None => lock_new(path)?,
    };
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        .map_err(VolumeError::io(path))?;
    Ok(file)
}

/// The pid of the server holding `path`'s lock, waiting up to `wait` for
/// a server still starting to write it; `None` if no server holds it.
pub(crate) fn holder(path: &Path, wait: Duration) -> Option<Pid> {
    let file = File::open(path).ok()?;
    let deadline = Instant::now() + wait;
    loop {
        if try_lock(&file) {
            return None;
        }
        let mut text = String::new();
        let _ = (&file)
            .rewind()
            .and_then(|()| (&file).read_to_string(&mut text));
        if let Ok(pid) = text.trim().parse::<i32>() {
            return Some(Pid::from_raw(pid));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes `file`'s lock if nobody holds it (released when `file` closes).
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor this process holds.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NAME` in a directory of its own (the tests run in parallel).
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hull-test-pidfile-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_starting_server_is_waited_for_and_a_gone_one_is_not() {
        let path = scratch("starting.pid");
        // The attacher's lock, passed on to a server that writes its pid
        // a little later.
        let lock = lock_new(&path).unwrap();
        let fd = lock.as_raw_fd();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            adopt(&scratch("starting.pid"), Some(fd)).unwrap()
        });
        let pid = holder(&path, Duration::from_secs(5));
        assert_eq!(pid, Some(Pid::from_raw(std::process::id() as i32)));
        // Attacher and server gone: nobody holds the lock.
        let adopted = server.join().unwrap();
        std::mem::forget(lock); // the server's File owns the same fd
        drop(adopted);
        assert_eq!(holder(&path, Duration::from_secs(5)), None);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_live_server_keeps_others_from_taking_its_pid_file() {
        let path = scratch("live.pid");
        let held = adopt(&path, None).unwrap();
        assert!(lock_new(&path).is_err());
        drop(held);
        assert!(lock_new(&path).is_ok());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
