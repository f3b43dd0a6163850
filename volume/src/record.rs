//! Records on disk: what a volume is, who uses it. Each is written whole
//! or not at all (an unnamed temporary file, linked in once complete), so
//! a kill never leaves a torn or temporary file behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VolumeError};

/// Whether a record names a volume (attachable) or a snapshot (a frozen
/// copy, cloned into new volumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Volume,
    Snapshot,
}

/// How the image holds the blocks: a raw file on a loop device, or a
/// qcow2 image (local, or remote behind an NBD server) shown as a raw file
/// by a FUSE server of hull's, with the loop device on that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Raw,
    Qcow2,
}

/// The filesystem inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fs {
    Ext4,
    Xfs,
}

impl Fs {
    /// The name `mount` and `mkfs.*` know it by.
    pub fn name(self) -> &'static str {
        match self {
            Fs::Ext4 => "ext4",
            Fs::Xfs => "xfs",
        }
    }

    /// The smallest image `mkfs` makes of this filesystem.
    pub fn min_size(self) -> u64 {
        match self {
            Fs::Ext4 => 16 << 20,
            Fs::Xfs => 300 << 20,
        }
    }
}

/// A volume's or snapshot's record, `<root>/<name>/volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    pub kind: Kind,
    pub format: Format,
    pub fs: Fs,
    /// The image's size in bytes: the filesystem's, and the most it takes.
    pub size: u64,
    /// Seconds since the epoch.
    pub created: u64,
    /// The volume a snapshot was taken of, or the snapshot a volume was
    /// cloned from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Where a remote volume's image is served: `nbd://HOST:PORT/EXPORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

impl VolumeInfo {
    /// Whether the volume is reached through hull's FUSE server rather
    /// than a loop device straight on its image.
    pub fn served(&self) -> bool {
        self.format == Format::Qcow2 || self.remote.is_some()
    }
}

/// Writes `value` as JSON to `path`, which must not exist yet: fails with
/// `AlreadyExists` if it does. The file appears complete or not at all.
pub(crate) fn write_new<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
        .map_err(VolumeError::io(dir))?;
    let text = serde_json::to_vec_pretty(value).expect("records serialize");
    file.write_all(&text).map_err(VolumeError::io(path))?;
    file.sync_all().map_err(VolumeError::io(path))?;
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        None,
        Path::new(&from),
        None,
        path,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .map_err(|e| VolumeError::io(path)(std::io::Error::from(e)))
}

/// Reads the JSON record at `path`.
pub(crate) fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).map_err(VolumeError::io(path))?;
    serde_json::from_slice(&text).map_err(|source| VolumeError::Record {
        path: path.to_owned(),
        source,
    })
}

/// Removes the file `path` if it is there.
pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(VolumeError::io(path)(e)),
        _ => Ok(()),
    }
}
