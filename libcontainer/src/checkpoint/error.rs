//! What can go wrong checkpointing or restoring a container.

use std::path::PathBuf;

use crate::state::Status;

/// A checkpoint or restore that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("criu not found at {} (install CRIU 3.0 or newer, or name it with --criu PATH)", .0.display())]
    CriuMissing(PathBuf),
    #[error("cannot start criu {}: {source}", path.display())]
    CriuStart {
        path: PathBuf,
        source: std::io::Error,
    },
    /// CRIU answered that the request failed.
    #[error(
        "criu {what} failed (errno {errno}){}{}",
        fmt_message(message),
        fmt_log(log)
    )]
    Failed {
        what: &'static str,
        errno: i32,
        message: String,
        log: Option<PathBuf>,
    },
    /// The conversation with CRIU broke down.
    #[error("criu RPC: {0}")]
    Rpc(String),
    /// A flag asks for something CRIU or the kernel cannot do.
    #[error("{flag} is not supported here: {why}")]
    Unsupported { flag: &'static str, why: String },
    #[error("invalid {flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
    #[error("cannot checkpoint a container that is {0}: it must be running or paused")]
    NotRunning(Status),
    /// The image directory holds no checkpoint hull made.
    #[error("{} is not a checkpoint image directory: {reason}", path.display())]
    NotAnImage { path: PathBuf, reason: String },
    /// A mount the checkpoint names as external has no source in the bundle.
    #[error("cannot restore the mount on {0}: its source is outside the container and the bundle does not name one")]
    UnknownMount(String),
    /// The checkpoint has a veth interface whose host end nothing places.
    #[error("interface {0} of the checkpoint is one end of a veth pair whose other end was on the host: restore it under the id of the container whose network attachment it was")]
    UnplacedVeth(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn fmt_message(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

fn fmt_log(log: &Option<PathBuf>) -> String {
    log.as_ref()
        .map(|l| format!(" (log file: {})", l.display()))
        .unwrap_or_default()
}

impl CheckpointError {
    pub(crate) fn rpc(context: &'static str) -> impl Fn(nix::Error) -> Self {
        move |e| Self::Rpc(format!("{context}: {e}"))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn invalid(flag: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            flag,
            reason: reason.into(),
        }
    }
}
