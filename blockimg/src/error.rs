//! The errors of every backend, typed so a caller can tell bad input from I/O.

use std::io;

/// What went wrong reading, writing or creating an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("not a qcow2 image: {0}")]
    NotQcow2(String),
    #[error("qcow2 image is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported qcow2 feature: {0}")]
    Unsupported(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("access beyond the end of the device: offset {offset}, length {len}, size {size}")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("{0}: the image is in use (another writer, or readers while writing)")]
    InUse(String),
    #[error("the image is read-only")]
    ReadOnly,
    #[error("nbd: {0}")]
    Nbd(String),
    #[error("nbd server returned error {errno} for {what}")]
    NbdReply { what: &'static str, errno: u32 },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The errno a FUSE reply carries for this error: EIO for anything the
    /// device failed at, EINVAL/ENOSPC/EROFS where the request was at fault.
    pub fn errno(&self) -> i32 {
        match self {
            Error::OutOfRange { .. } => libc::ENOSPC,
            Error::ReadOnly => libc::EROFS,
            Error::Invalid(_) => libc::EINVAL,
            // The server's errno where it means the same to the reader.
            Error::NbdReply { errno, .. }
                if [libc::ENOSPC, libc::EPERM, libc::EINVAL].contains(&(*errno as i32)) =>
            {
                *errno as i32
            }
            _ => libc::EIO,
        }
    }

    pub(crate) fn file(path: &std::path::Path, source: io::Error) -> Self {
        Error::File {
            path: path.display().to_string(),
            source,
        }
    }
}
