//! The resolver's error type.

use std::path::{Path, PathBuf};

/// Why a resolver step failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("annotation {key}: {why}")]
    Annotation { key: &'static str, why: String },
    #[error("invalid DNS option: {0}")]
    Invalid(String),
    #[error("the resolver of network {net} did not start: {why}")]
    Start { net: String, why: String },
    #[error("corrupt {}: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("network state: {0}")]
    Network(String),
    #[error("DNS message: {0}")]
    Wire(#[from] hickory_proto::ProtoError),
    #[error("no answer from {0}")]
    NoAnswer(String),
}

impl DnsError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
