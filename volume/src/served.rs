//! Images shown as a raw file by hull's FUSE server (blockimg): a qcow2
//! image or a remote NBD export becomes a regular file a loop device can
//! sit on, or `mkfs` can write.
//!
//! A container's server is its own process, the hull binary run as
//! `hull volume serve` (see [`serve_main`]), so it outlives the command
//! that attached it and a `delete` from anywhere stops it. Crash safety:
//! the pid file is locked before the server is spawned and the server
//! holds that lock until it exits, writing its pid before it opens the
//! image or mounts anything (see `pid_file`), so whatever a kill leaves,
//! [`stop`] finds the process by its pid (checked against its command
//! line, so a reused pid is never hit) and the mount by its path.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Result, VolumeError};
use crate::{pid_file, record};

/// How long a server may take to open its image and mount its file: the
/// NBD client's connect timeout (5 s) and then some.
const READY_WAIT: Duration = Duration::from_secs(20);
/// How long a stopped server may take to flush and exit before SIGKILL.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// What a server prints once its file can be opened.
const READY: &str = "ready";

/// The body of `hull volume serve [--read-only] [--pid-fd FD] SOURCE FILE
/// PIDFILE`: records this process's pid in `pid_file` (whose locked
/// descriptor hull passes as `pid_fd`), opens `source` (a qcow2 image or
/// an `nbd://` URL), mounts it over the regular file `file`, prints
/// "ready", and serves until SIGTERM or an unmount.
pub fn serve_main(
    source: &str,
    file: &Path,
    pid_file: &Path,
    pid_fd: Option<RawFd>,
    read_only: bool,
) -> Result<()> {
    // Held (and so locked) until this server exits.
    let _pid_file = pid_file::adopt(pid_file, pid_fd)?;
    let device =
        blockimg::device::open(Path::new(source), read_only).map_err(VolumeError::image(source))?;
    blockimg::serve::serve_until_signalled(device, file, || {
        println!("{READY}");
        // Nobody reads on after "ready": later output must not hit a
        // closed pipe.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 onto our own standard descriptors.
            unsafe {
                libc::dup2(null.as_raw_fd(), 1);
                libc::dup2(null.as_raw_fd(), 2);
            }
        }
    })
    .map_err(VolumeError::image(source))
}

/// Starts a server of `source` on the new regular file `file` (its pid in
/// `pid_file`) and waits until it is ready. On error nothing is left: the
/// server is stopped, the files removed.
pub(crate) fn start(source: &str, file: &Path, pid_file: &Path, read_only: bool) -> Result<()> {
    std::fs::File::create(file).map_err(VolumeError::io(file))?;
    let lock = match pid_file::lock_new(pid_file) {
        Ok(lock) => lock,
        Err(e) => {
            let _ = std::fs::remove_file(file);
            return Err(e);
        }
    };
    let lock_fd = lock.as_raw_fd();
    // The running binary itself, by /proc: after the CVE-2019-5736
    // re-exec it is a sealed copy with no path of its own. The program
    // using this crate routes `volume serve` to [`serve_main`], as hull
    // does.
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args(["volume", "serve", "--pid-fd", &lock_fd.to_string()]);
    if read_only {
        cmd.arg("--read-only");
    }
    cmd.arg(source)
        .arg(file)
        .arg(pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a ^C meant for `hull run` must not stop it before
        // the volume is detached.
        .process_group(0);
    // SAFETY: between fork and exec the child only clears the lock's
    // close-on-exec flag (one fcntl).
    unsafe { cmd.pre_exec(move || pid_file::inherit(lock_fd)) };
    let spawned = cmd.spawn();
    // The server holds the lock now (or, if it did not start, nobody).
    drop(lock);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(file);
            let _ = std::fs::remove_file(pid_file);
            return Err(VolumeError::io(Path::new("hull volume serve"))(e));
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let ready = rx
        .recv_timeout(READY_WAIT)
        .is_ok_and(|line| line.trim() == READY);
    if ready {
        return Ok(());
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
    let mut why = String::new();
    let _ = stderr.read_to_string(&mut why);
    let _ = stop(file, pid_file);
    let why = why.trim();
    Err(VolumeError::Serve {
        image: source.to_owned(),
        why: match why.is_empty() {
            true => format!("not ready within {} s", READY_WAIT.as_secs()),
            false => why.trim_start_matches("hull: ").to_owned(),
        },
    })
}

/// Stops the server of `file` (if it runs), detaches its mount (if one is
/// left) and removes the file and the pid file. Doing it again, or after
/// a kill at any point, finishes what is left.
pub(crate) fn stop(file: &Path, pid_file: &Path) -> Result<()> {
    if let Some(pid) = server_pid(file, pid_file) {
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + EXIT_WAIT;
        while !gone(pid) {
            if Instant::now() >= deadline {
                let _ = kill(pid, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    blockimg::serve::unmount(file).map_err(VolumeError::image(&file.display().to_string()))?;
    record::remove_if_present(file)?;
    record::remove_if_present(pid_file)
}

/// The pid of the server of `file`, running or still starting (then
/// waited for up to [`READY_WAIT`]).
fn server_pid(file: &Path, pid_file: &Path) -> Option<Pid> {
    let pid = pid_file::holder(pid_file, READY_WAIT)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let want = file.as_os_str().as_encoded_bytes();
    cmdline
        .split(|&b| b == 0)
        .any(|arg| arg == want)
        .then_some(pid)
}

/// Whether process `pid` has exited (reaped here if it is our child).
fn gone(pid: Pid) -> bool {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    if matches!(
        waitpid(pid, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..))
    ) {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Runs `f` on `source` shown as a raw file in `dir` by a FUSE server
/// thread of this process (as `mkfs` at create needs), then stops it.
pub(crate) fn with_file<T>(
    source: &str,
    dir: &Path,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let file = mkfs_file(dir);
    std::fs::File::create(&file).map_err(VolumeError::io(&file))?;
    let device =
        blockimg::device::open(Path::new(source), false).map_err(VolumeError::image(source))?;
    let served = blockimg::serve::serve(device, &file).map_err(VolumeError::image(source))?;
    let result = f(&file);
    let stopped = served.stop().map_err(VolumeError::image(source));
    let _ = std::fs::remove_file(&file);
    let value = result?;
    stopped.map(|()| value)
}

/// The file [`with_file`] serves in `dir`: a killed create's leftover
/// that a sweep unmounts.
pub(crate) fn mkfs_file(dir: &Path) -> PathBuf {
    dir.join("mkfs.dev")
}
