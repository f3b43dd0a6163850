//! The cgroup directories themselves: opening, counting their processes,
//! enabling controllers, removing them with what is left inside.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{fs, CgroupError};

pub(super) fn open_dir(path: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(CgroupError::io(path))
}

/// How many processes `dir` and the cgroups below it hold.
pub(super) fn procs_below(dir: &Path) -> usize {
    let own = fs::read(dir, "cgroup.procs")
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let below: usize = sub_cgroups(dir).iter().map(|d| procs_below(d)).sum();
    own + below
}

/// rmdir of a cgroup; EBUSY means processes or cgroups are left in it: the
/// ones the container made below its own are removed (deepest first, as
/// runc does) and the processes killed, then it is tried again.
pub(super) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                for child in sub_cgroups(path) {
                    remove_dir(&child)?;
                }
                kill_procs(path);
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(CgroupError::io(path)(e)),
        }
    }
}

/// The cgroups directly below `path`.
fn sub_cgroups(path: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// SIGKILLs every process in the cgroup at `path` (if it still exists).
pub(super) fn kill_procs(path: &Path) {
    for pid in fs::read(path, "cgroup.procs")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Enables on every ancestor of `dir` the controllers it offers, so `dir`
/// gets their files (runc does the same). Failures only cost those files.
pub(super) fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let ancestors: Vec<&Path> = dir.ancestors().skip(1).collect();
    for a in ancestors.into_iter().rev() {
        let Ok(available) = fs::read(a, "cgroup.controllers") else {
            continue;
        };
        let enabled = fs::read(a, "cgroup.subtree_control").unwrap_or_default();
        for c in available.split_whitespace() {
            if !enabled.split_whitespace().any(|e| e == c) {
                if let Err(e) = fs::write(a, "cgroup.subtree_control", format!("+{c}")) {
                    tracing::debug!("{e}");
                }
            }
        }
    }
    Ok(())
}
