//! Noticing OOM kills in a container's memory cgroup: an eventfd registered on
//! `memory.oom_control` (v1), or the `oom_kill` count of `memory.events` (v2).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{fs, Cgroup, CgroupError};

/// Watches one container for OOM kills.
pub enum OomWatcher {
    V1 { event: File, _control: File },
    V2 { dir: PathBuf, seen: u64 },
}

fn oom_kills(dir: &std::path::Path) -> u64 {
    fs::read_keyed(dir, "memory.events")
        .into_iter()
        .find(|(k, _)| k == "oom_kill")
        .map_or(0, |(_, v)| v)
}

/// The limit of a memory cgroup whose processes the kernel OOM-killed.
pub(crate) struct OomKilled {
    /// The limit in bytes, where there is one.
    pub limit: Option<u64>,
}

/// Whether the kernel has OOM-killed a process of `cg` (counted in
/// `memory.oom_control` on v1, `memory.events` on v2), with its limit: for
/// a cgroup made for the init, a kill before it is ready was the init's.
pub(crate) fn oom_killed(cg: &Cgroup) -> Option<OomKilled> {
    let (dir, v1) = cg.memory_dir()?;
    let (kills, limit) = if v1 {
        let kills = fs::read_keyed(dir, "memory.oom_control")
            .into_iter()
            .find(|(k, _)| k == "oom_kill")
            .map_or(0, |(_, v)| v);
        (kills, fs::read_u64(dir, "memory.limit_in_bytes"))
    } else {
        (oom_kills(dir), fs::read_u64(dir, "memory.max"))
    };
    // v1 shows "no limit" as the largest page-aligned value.
    let limit = limit.filter(|l| *l < i64::MAX as u64 & !0xfff);
    (kills > 0).then_some(OomKilled { limit })
}

impl OomWatcher {
    /// A watcher, or `None` if the container has no memory cgroup.
    pub fn new(cg: &Cgroup) -> Result<Option<Self>, CgroupError> {
        let Some((dir, v1)) = cg.memory_dir() else {
            return Ok(None);
        };
        if !v1 {
            return Ok(Some(Self::V2 {
                dir: dir.to_owned(),
                seen: oom_kills(dir),
            }));
        }
        // SAFETY: eventfd returns a new fd that we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(CgroupError::io("eventfd")(std::io::Error::last_os_error()));
        }
        // SAFETY: fresh fd, owned here.
        let event = File::from(unsafe { OwnedFd::from_raw_fd(efd) });
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).map_err(CgroupError::io(&control_path))?;
        fs::write(
            dir,
            "cgroup.event_control",
            format!("{} {}", event.as_raw_fd(), control.as_raw_fd()),
        )?;
        Ok(Some(Self::V1 {
            event,
            _control: control,
        }))
    }

    /// Waits up to `timeout`; returns how many OOM kills happened meanwhile.
    pub fn wait(&mut self, timeout: Duration) -> Result<u64, CgroupError> {
        match self {
            Self::V1 { event, .. } => {
                let mut fds = [PollFd::new(event.as_fd(), PollFlags::POLLIN)];
                let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, ms) {
                    Ok(0) | Err(nix::Error::EINTR) => Ok(0),
                    Ok(_) => {
                        let mut buf = [0u8; 8];
                        event
                            .read_exact(&mut buf)
                            .map_err(CgroupError::io("eventfd"))?;
                        Ok(u64::from_ne_bytes(buf))
                    }
                    Err(e) => Err(CgroupError::io("poll eventfd")(e.into())),
                }
            }
            Self::V2 { dir, seen } => {
                let end = Instant::now() + timeout;
                loop {
                    let now = oom_kills(dir);
                    if now > *seen {
                        let n = now - *seen;
                        *seen = now;
                        return Ok(n);
                    }
                    if Instant::now() >= end {
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
                }
            }
        }
    }
}
