//! What can go wrong with a volume, each case naming what to do about it.

use std::path::{Path, PathBuf};

/// A volume operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("invalid size {0:?}: give bytes or a number with K, M, G or T (e.g. 5G)")]
    InvalidSize(String),
    #[error("a {fs} volume must be at least {min} bytes, {size} asked for")]
    TooSmall { fs: String, size: u64, min: u64 },
    #[error("invalid volume {0:?}: expected NAME:/PATH[:ro|:rw]")]
    InvalidRequest(String),
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    #[error("volume {0} does not exist")]
    NotFound(String),
    #[error("volume {0} already exists")]
    Exists(String),
    #[error("{0} is a snapshot, not a volume: clone it to use it (hull volume clone {0} NEW)")]
    IsSnapshot(String),
    #[error("{0} is a volume, not a snapshot: snapshot it first (hull volume snapshot {0} SNAP)")]
    NotSnapshot(String),
    #[error("volume {name}: {} is missing", image.display())]
    ImageMissing { name: String, image: PathBuf },
    #[error("volume {name} is in use by {} (remove it with hull delete)", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error(
        "volume {name} is attached read-write to {user}: another container gets it only once \
         that one is deleted"
    )]
    WriterAttached { name: String, user: String },
    #[error(
        "volume {name} is attached read-only to {}: read-write only once they are deleted",
        users.join(", ")
    )]
    ReadersAttached { name: String, users: Vec<String> },
    #[error("volume {name} is attached read-write to {user}: a snapshot would not be consistent")]
    SnapshotWhileWritten { name: String, user: String },
    #[error("{name} is asked for twice")]
    Twice { name: String },
    #[error(
        "the host filesystem of {} is full ({available} bytes free): {what} failed",
        path.display()
    )]
    HostFull {
        path: PathBuf,
        available: u64,
        what: String,
    },
    #[error("{program} is missing: install {package} (scripts/deps.sh)")]
    ToolMissing {
        program: &'static str,
        package: &'static str,
    },
    #[error("{program} failed: {output}")]
    Tool {
        program: &'static str,
        output: String,
    },
    #[error("{what}: {source}")]
    Image {
        what: String,
        source: blockimg::Error,
    },
    #[error("{url} serves {size} bytes, not the {asked} asked for (leave out --size)")]
    RemoteSize { url: String, size: u64, asked: u64 },
    #[error("serving {image} failed: {why}")]
    Serve { image: String, why: String },
    #[error("{name} backs {} (a linked clone reads from it): remove those first", dependents.join(", "))]
    HasDependents {
        name: String,
        dependents: Vec<String>,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a volume record: {source}", path.display())]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl VolumeError {
    /// An error of the file `path`, for `map_err`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A failed operation of blockimg on `what`, for `map_err`.
    pub(crate) fn image(what: &str) -> impl FnOnce(blockimg::Error) -> Self + '_ {
        move |source| Self::Image {
            what: what.to_owned(),
            source,
        }
    }

    /// A failed system call, for `map_err`.
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Self {
        let what = what.into();
        move |source| Self::Sys { what, source }
    }
}

/// What the crate's functions return.
pub type Result<T, E = VolumeError> = std::result::Result<T, E>;
