//! The errors of cgroup operations.

use std::path::{Path, PathBuf};

use super::systemd;

/// A cgroup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("invalid cgroup configuration: {0}")]
    Invalid(String),
    /// The kernel refused a memory limit below what is in use (EBUSY).
    #[error("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})")]
    MemoryInUse { limit: i64, usage: u64, peak: u64 },
    #[error("systemd cgroup driver requested for {0:?}, but systemd is not running on this host")]
    SystemdNotRunning(String),
    #[error("systemd unit {unit}: {source}")]
    Systemd {
        unit: String,
        source: systemd::ManagerError,
    },
    #[error("cannot load the device eBPF program: {0}")]
    Bpf(std::io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The container has no cgroup: it was made rootless, where the user
    /// may not create one.
    #[error("cannot {0}: the container has no cgroup (it was created rootless, without one)")]
    Missing(&'static str),
    /// Rootless, a cgroup could not be made and `linux.resources` needs one.
    #[error(
        "rootless: cannot create the cgroup {}: {source}; linux.resources sets limits, which \
         need a cgroup this user may write (remove them, or delegate a cgroup to the user)",
        path.display()
    )]
    RootlessLimits {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CgroupError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().to_owned();
        move |source| Self::Io { path, source }
    }

    /// Whether this is a cgroup directory that could not be made for want
    /// of permission (EACCES, EPERM, EROFS), as for an unprivileged user.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Io { source, .. } if is_permission_denied(source))
    }

    /// Whether the file or directory this error names no longer exists.
    pub(super) fn is_not_found(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Write { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

pub(super) fn is_permission_denied(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}
