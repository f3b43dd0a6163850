//! Block-device volumes for containers: each volume is an image with a
//! filesystem in it, under a volume root: a raw file, a qcow2 image, or a
//! remote export over NBD (the last two shown as a raw file by hull's FUSE
//! server, see `serve_main`). A container asks for one with
//! `NAME:/PATH[:ro]`; it is attached through a loop device when the
//! container is created and bind-mounted into it, and detached when the
//! container is deleted. The image's size is a hard quota: writing past
//! it fails with ENOSPC inside the container, and the image never grows
//! past it on the host. One container uses a volume read-write at a time,
//! or any number read-only.
//!
//! ```no_run
//! use std::path::Path;
//! use libcontainer::{Container, ContainerBuilder};
//! use volume::{ContainerVolumes, CreateOptions, Format, Fs, Store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::new(volume::DEFAULT_ROOT);
//! let options = CreateOptions { size: 1 << 30, fs: Fs::Ext4, format: Format::Raw, remote: None };
//! store.create("db", &options)?;
//! let requests = volume::requested(&["db:/data".into()], &Default::default())?;
//! let root = Path::new("/run/my-runtime");
//! let container = ContainerBuilder::new("c1", "/path/to/bundle")
//!     .root(root)
//!     .volumes(ContainerVolumes::new(store, requests))
//!     .create()?;
//! container.start()?;
//! // Deleting: the container stopped, its volumes detached, its state last.
//! let container = Container::load(root, "c1")?;
//! container.stop_for_delete(true)?;
//! volume::detach(root, container.id())?;
//! container.delete(true)?;
//! # Ok(())
//! # }
//! ```

mod attach;
mod error;
mod image;
mod loop_dev;
mod parse;
mod pid_file;
mod record;
mod served;
mod store;

pub use attach::{attach, check, detach, holds_volumes, ContainerVolumes};
pub use error::{Result, VolumeError};
pub use image::allocated;
pub use loop_dev::{backed_under, LoopDevice};
pub use parse::{parse_size, requested, validate_name, Request, ANNOTATION};
pub use record::{Format, Fs, Kind, VolumeInfo};
pub use served::serve_main;
pub use store::{CreateOptions, Inspect, Store, User, DEFAULT_ROOT};
