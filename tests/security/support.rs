//! What several escape tests share: a private copy of the hull binary, a
//! racing renamer in a shared volume, a snapshot of a host directory.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use hull_tests::TestBundle;

/// Points `b` at a copy of the hull binary in its bundle, so a guard that
/// fails damages only the copy; returns the copy's bytes as they started.
pub fn use_hull_copy(b: &mut TestBundle) -> Vec<u8> {
    let copy = b.dir.join("hull");
    std::fs::copy(&b.bin, &copy).unwrap();
    b.bin = copy;
    std::fs::read(&b.bin).unwrap()
}

/// Every path below `dir` (relative, sorted), symlinks not followed: what
/// a host directory holds, to compare before and after an attack.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            out.push(path.strip_prefix(base).unwrap().to_owned());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A thread that keeps swapping two names in a directory with
/// `renameat2(RENAME_EXCHANGE)` (a directory and a symlink, say) until
/// dropped: what a process of another container sharing that directory as a
/// volume can do while hull sets up mounts in it.
pub struct Racer {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Racer {
    pub fn start(dir: &Path, a: &str, b: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let dir = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let (a, b) = (CString::new(a).unwrap(), CString::new(b).unwrap());
        let (flag, count) = (stop.clone(), swaps.clone());
        let thread = std::thread::spawn(move || {
            // SAFETY: open of a NUL-terminated path; the fd is owned below.
            let fd = unsafe { libc::open(dir.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC) };
            assert!(fd >= 0, "open the racing directory");
            // SAFETY: fresh fd.
            let dirfd = unsafe { OwnedFd::from_raw_fd(fd) };
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: renameat2 with NUL-terminated names below an fd we own.
                let r = unsafe {
                    libc::renameat2(
                        dirfd.as_raw_fd(),
                        a.as_ptr(),
                        dirfd.as_raw_fd(),
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self {
            stop,
            swaps,
            thread: Some(thread),
        }
    }

    /// How many exchanges were made so far.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Replaces the config's `/dev` tmpfs by a bind of a new directory of the
/// bundle, which the attacker fills (an image that brings its own `/dev`,
/// or a volume on it); returns that directory. hull makes no device nodes
/// in a bound `/dev`.
pub fn bind_dev(b: &mut TestBundle) -> PathBuf {
    let dev = b.dir.join("dev");
    std::fs::create_dir(&dev).unwrap();
    let source = dev.to_str().unwrap().to_owned();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let entry = mounts.iter_mut().find(|m| m["destination"] == "/dev");
        *entry.expect("a /dev mount") = serde_json::json!({
            "destination": "/dev",
            "type": "bind",
            "source": source,
            "options": ["rbind"],
        });
    });
    dev
}

/// Makes the character device `major:minor` at `path` (mode 0666).
pub fn mknod_char(path: &Path, major: u64, minor: u64) {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .unwrap();
}

/// The host's `kernel.core_pattern`, which the attacks aim at.
pub fn core_pattern() -> String {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}
