//! The library's error type: one enum per concern, gathered here.

use std::path::PathBuf;

use crate::process::ProcessError;
use crate::spec::SpecError;
use crate::state::{StateError, Status};

/// Everything that can go wrong while managing a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is not acceptable (empty, `.`, `..`, `/`, or odd characters).
    #[error("invalid container ID format: {id:?} ({reason})")]
    InvalidId { id: String, reason: &'static str },
    /// `create` was asked for an id that is already in use.
    #[error("container with given ID already exists: {0}")]
    Exists(String),
    /// No container with this id exists under the state root.
    #[error("container does not exist")]
    NotExist,
    /// The container's state file is gone but files of it are left (named
    /// here), found by [`crate::Container::list_all`].
    #[error("its state file is gone but {} is left", .0.join(", "))]
    StateLost(Vec<String>),
    /// The operation is not allowed in the container's current status.
    #[error("{0}")]
    WrongStatus(WrongStatus),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Process(ProcessError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The [`crate::Network`] of the container could not connect or
    /// disconnect it.
    #[error("{0}")]
    Network(crate::NetworkError),
    /// A connected container's delete was not given the [`crate::Network`]
    /// of the kind that connected it (see [`crate::Container::with_network`]).
    #[error(
        "container {id} is connected by a {kind} network{}: delete needs that network to disconnect it",
        instead(.given)
    )]
    NetworkNotGiven {
        id: String,
        kind: String,
        given: Option<String>,
    },
    /// The [`crate::Volumes`] given to the builder could not attach them.
    #[error("{0}")]
    Volume(crate::VolumeError),
    /// A system call made on the runtime side failed; the errno worded as
    /// runc (Go) words it, `invalid argument`, which engines match on.
    #[error("{context}: {}", go_errno(source))]
    Sys { context: String, source: nix::Error },
    /// A file the runtime owns could not be read or written.
    #[error("{}: {}", path.display(), go_io(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why an operation was refused for the container's status (texts as runc prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrongStatus {
    StartRunning,
    StartStopped,
    StartPaused,
    DeleteNotStopped { id: String, status: Status },
    NotRunning,
    NotPaused,
    ExecStopped,
    ExecPaused,
}

impl std::fmt::Display for WrongStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StartRunning => f.write_str("cannot start an already running container"),
            Self::StartStopped => f.write_str("cannot start a container that has stopped"),
            Self::StartPaused => f.write_str("cannot start a container in the paused state"),
            Self::DeleteNotStopped { id, status } => write!(
                f,
                "cannot delete container {id} that is not stopped: {status}"
            ),
            Self::NotRunning => f.write_str("container not running"),
            Self::NotPaused => f.write_str("container not paused"),
            Self::ExecStopped => f.write_str("cannot exec in a stopped container"),
            Self::ExecPaused => {
                f.write_str("cannot exec in a paused container (use --ignore-paused to override)")
            }
        }
    }
}

impl From<ProcessError> for Error {
    /// A configuration error found while starting the process is reported
    /// as what it is, a [`SpecError`].
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Spec(e) => Self::Spec(e),
            e => Self::Process(e),
        }
    }
}

impl Error {
    pub(crate) fn sys(context: impl Into<String>) -> impl FnOnce(nix::Error) -> Self {
        let context = context.into();
        move |source| Self::Sys { context, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// `, not KIND` when a network of another kind was given.
fn instead(given: &Option<String>) -> String {
    given
        .as_ref()
        .map(|kind| format!(", not {kind}"))
        .unwrap_or_default()
}

/// An errno as Go prints it: the C library's text, lower-cased first
/// letter, without nix's `EINVAL: ` prefix.
fn go_errno(e: &nix::Error) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => desc.to_owned(),
    }
}

/// An I/O error as Go prints it: an errno in [`go_errno`]'s words, without
/// Rust's ` (os error N)`.
fn go_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => go_errno(&nix::Error::from_raw(n)),
        None => e.to_string(),
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
