//! hull's container library: turns an OCI bundle (`config.json` + rootfs)
//! into an isolated process and manages its lifecycle with runc's semantics.
//!
//! ```no_run
//! use libcontainer::{Container, ContainerBuilder};
//! use nix::sys::signal::Signal;
//!
//! # fn main() -> Result<(), libcontainer::Error> {
//! // Protect the runtime binary (CVE-2019-5736) before anything else.
//! libcontainer::ensure_sealed().expect("sealed re-exec");
//! let container = ContainerBuilder::new("demo", "/path/to/bundle")
//!     .root("/run/my-runtime")
//!     .create()?;
//! container.start()?;
//! container.kill(Signal::SIGTERM as i32)?;
//! let exit_code = container.wait()?;
//! println!("exited with {exit_code}");
//! Container::load("/run/my-runtime", "demo")?.delete(false)?;
//! # Ok(())
//! # }
//! ```

mod builder;
pub mod cgroups;
pub mod checkpoint;
mod container;
mod dbus;
mod error;
mod exec_fifo;
mod features;
mod hooks;
mod id;
mod labels;
mod leftovers;
mod mount_api;
mod net_devices;
mod network;
mod pid_namespace;
mod process;
mod procfs;
mod pseudo_file;
mod rootfs;
pub mod rootless;
mod sched;
mod seal;
pub mod seccomp;
mod signal;
mod spec;
mod state;
mod sysctl;
mod volumes;

pub use builder::{write_pid_file, ContainerBuilder};
pub use container::{Container, ExecOptions, DEFAULT_ROOT};
pub use error::{Error, Result, WrongStatus};
pub use features::features;
pub use hooks::HookError;
pub use id::validate_id;
pub use leftovers::Leftovers;
pub use network::{Network, NetworkError, NetworkRecord};
pub use process::{InitError, InitStep, ProcessError};
pub use rootfs::{rootfs_propagation, MountOptions};
pub use seal::{ensure_sealed, is_sealed, SealError};
pub use signal::parse_signal;
pub use spec::{validate as validate_spec, validate_process, Bundle, SpecError};
pub use state::{decode_state, rfc3339_nanos, State, StateError, Status};
pub use volumes::{VolumeError, Volumes};
pub use {nix, oci_spec};
