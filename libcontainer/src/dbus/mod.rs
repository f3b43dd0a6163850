//! A minimal, blocking D-Bus client written for hull (no libdbus, no async
//! runtime): enough of the protocol to call systemd's manager on the system
//! bus and wait for the signals it answers with.

mod connection;
mod message;
mod wire;

pub(crate) use connection::Connection;
pub(crate) use message::Message;
pub(crate) use wire::Value;

/// Talking to the bus failed.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported D-Bus address {0:?} (only unix:path= and unix:abstract=)")]
    Address(String),
    #[error("D-Bus authentication refused: {0:?}")]
    Auth(String),
    #[error("malformed D-Bus message: {0}")]
    Malformed(&'static str),
    /// The peer answered with an error.
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
}
