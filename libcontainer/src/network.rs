//! The hook through which a networking crate (hull's is `bridge`) connects a
//! container while its init waits for `start`, so the process sees its
//! interfaces from its first instruction, and disconnects it when the
//! container is deleted. libcontainer itself does no networking: without a
//! hook, the container gets the namespaces its config asks for and nothing
//! in them, as with runc.
//!
//! Crash safety: what the hook needs to find its connection again is kept
//! in the container's state, written before the hook makes anything and
//! removed after it undid everything, so a create or delete killed half-way
//! leaves a state whose delete finishes the job.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::Container;

/// Why a [`Network`] could not connect or disconnect a container.
pub type NetworkError = Box<dyn std::error::Error + Send + Sync>;

/// Networking given to [`crate::ContainerBuilder::network`] (to connect a
/// new container) and to [`Container::with_network`] (to disconnect a
/// loaded one on delete).
pub trait Network: Debug + Send + Sync {
    /// Names the implementation in the state, so that a delete given
    /// another one refuses instead of guessing.
    fn kind(&self) -> &str;

    /// What the container's state keeps, written before [`Network::connect`]
    /// makes anything: all [`Network::disconnect`] needs to find the
    /// connection later, in another process and whatever that one's
    /// configuration.
    fn record(&self) -> serde_json::Value;

    /// Connects `container`, created and waiting for `start`. On error
    /// nothing of the connection may be left: the builder then removes the
    /// container.
    fn connect(&self, container: &Container) -> Result<(), NetworkError>;

    /// Undoes everything of `container`'s connection that `recorded` (what
    /// [`Network::record`] gave when it was made) names. Called by
    /// [`Container::delete`] once the container's processes are gone and
    /// before its state goes; it must succeed when part or all of the
    /// connection was never made or is already gone, so a delete killed
    /// half-way can be run again.
    fn disconnect(
        &self,
        container: &Container,
        recorded: &serde_json::Value,
    ) -> Result<(), NetworkError>;
}

/// A container's network as its state keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The [`Network::kind`] that connected it.
    pub kind: String,
    /// What that network recorded ([`Network::record`]).
    pub record: serde_json::Value,
}

impl NetworkRecord {
    /// What `network` records before it connects a container.
    pub(crate) fn of(network: &dyn Network) -> Self {
        Self {
            kind: network.kind().to_owned(),
            record: network.record(),
        }
    }
}
