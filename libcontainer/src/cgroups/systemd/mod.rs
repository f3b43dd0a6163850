//! The systemd cgroup driver: the container lives in a transient scope unit
//! that systemd creates around its init and delegates to hull (`Delegate=yes`),
//! so hull then writes `linux.resources` into the scope's directories itself.

mod manager;
mod name;

use serde::{Deserialize, Serialize};

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
    /// Asks systemd to create the scope around `pid` and waits until it runs.
    pub fn start(&self, pid: u32, id: &str) -> Result<(), ManagerError> {
        manager::start_scope(
            &self.unit,
            &self.slice,
            pid,
            &format!("hull container {id}"),
        )
    }

    /// Stops the scope (if it still exists) and waits until it is gone.
    pub fn stop(&self) -> Result<(), ManagerError> {
        manager::stop_unit(&self.unit)
    }
}
