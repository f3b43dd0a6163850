//! The systemd cgroup driver: the container lives in a transient scope unit
//! that systemd creates around its init and delegates to hull (`Delegate=yes`),
//! so hull then writes `linux.resources` into the scope's directories itself.

mod manager;
mod name;
mod properties;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::Hierarchies;

pub use manager::ManagerError;
pub use name::parse;

/// The container's transient scope; persisted with its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// `prefix-name.scope`.
    pub unit: String,
    pub slice: String,
    /// The scope's cgroup below the hierarchy root (`/system.slice/x.scope`).
    pub cgroup: String,
}

impl Scope {
    /// Asks systemd to create the scope around `pid`, carrying the limits
    /// of `res`, and waits until it runs.
    pub fn start(
        &self,
        pid: u32,
        id: &str,
        h: &Hierarchies,
        res: Option<&LinuxResources>,
    ) -> Result<(), ManagerError> {
        let props = properties::from_resources(h, res);
        let description = format!("hull container {id}");
        manager::start_scope(&self.unit, &self.slice, pid, &description, props)
    }

    /// Gives the running scope the limits of `res` (`update`).
    pub fn update(&self, h: &Hierarchies, res: &LinuxResources) -> Result<(), ManagerError> {
        manager::set_properties(&self.unit, properties::from_resources(h, Some(res)))
    }

    /// Stops the scope (if it still exists) and waits until it is gone.
    pub fn stop(&self) -> Result<(), ManagerError> {
        manager::stop_unit(&self.unit)
    }
}
