//! The hook through which a storage crate (hull's is `volume`) gives a
//! container its volumes: attached once the container's id is claimed and
//! before its init exists, so the volumes' mounts are part of the config the
//! init sets up. libcontainer itself attaches nothing: without a hook, the
//! container gets the mounts its config names, as with runc.

use std::fmt::Debug;
use std::path::Path;

/// Why [`Volumes::attach`] failed.
pub type VolumeError = Box<dyn std::error::Error + Send + Sync>;

/// Storage given to [`crate::ContainerBuilder::volumes`].
pub trait Volumes: Debug + Send + Sync {
    /// Attaches the volumes of container `id` (state root `root`) and adds
    /// their mounts to `spec`. Whatever a later delete has to undo must be
    /// recorded (e.g. [`crate::Container::companion_in`]) before it is
    /// made, so a create killed half-way leaves something `delete --force`
    /// finishes. On error nothing of the attachment may be left.
    fn attach(
        &self,
        root: &Path,
        id: &str,
        spec: &mut oci_spec::runtime::Spec,
    ) -> Result<(), VolumeError>;

    /// Undoes [`Volumes::attach`] when the create fails after it; the
    /// init is dead by then.
    fn detach(&self, root: &Path, id: &str) -> Result<(), VolumeError>;
}
