//! The hook through which a networking crate (hull's is `bridge`) connects a
//! container while its init waits for `start`, so the process sees its
//! interfaces from its first instruction. libcontainer itself does no
//! networking: without a hook, the container gets the namespaces its config
//! asks for and nothing in them, as with runc.

use std::fmt::Debug;

use crate::Container;

/// Why a [`Network`] could not connect a container.
pub type NetworkError = Box<dyn std::error::Error + Send + Sync>;

/// Networking given to [`crate::ContainerBuilder::network`].
pub trait Network: Debug + Send + Sync {
    /// Connects `container`, created and waiting for `start`. On error
    /// nothing of the connection may be left: the builder then removes the
    /// container. Whatever a later delete has to undo is the implementation's
    /// to record (e.g. beside the state, [`Container::companion_path`]).
    fn connect(&self, container: &Container) -> Result<(), NetworkError>;
}
