//! Block-device images for hull's volumes: a qcow2 reader and writer, a
//! userspace NBD client, and a FUSE server that shows either (or a raw file)
//! as one raw file a loop device can sit on.

pub mod device;
pub mod error;
pub mod nbd;
pub mod qcow2;
pub mod serve;

pub use device::{BlockDevice, RawFile};
pub use error::{Error, Result};
