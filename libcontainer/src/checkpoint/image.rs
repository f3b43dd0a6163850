//! What hull keeps beside CRIU's images: the init's stdio as it was
//! (pipes and files from outside the container, which restore hands over
//! anew) and the external mounts (see [`super::mounts`]). CRIU checks that
//! a regular file handed over has the size the dumped one had, so a
//! container whose stdout went to a log file that grew since restores only
//! with stdio of that size; engines give containers pipes, which have none.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mounts::External;
use super::CheckpointError;

/// The file in the image directory.
const NAME: &str = "hull-checkpoint.json";

/// hull's part of a checkpoint image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Image {
    /// For fds 0, 1, 2 of the init: the key CRIU knows the file by when it
    /// came from outside the container (`pipe:[ino]`, `file[mnt:ino]`), to
    /// be replaced on restore by the restoring runtime's own fd.
    pub stdio: Vec<Option<String>>,
    pub mounts: Vec<External>,
    /// The container's interfaces whose veth peer was on the host.
    #[serde(default)]
    pub veths: Vec<String>,
}

impl Image {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(NAME)
    }

    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        let path = Self::path(dir);
        let json = serde_json::to_vec(self).expect("image record serializes");
        std::fs::write(&path, json).map_err(CheckpointError::io(path))
    }

    /// Reads the record of the checkpoint in `dir`; a directory without one
    /// (no checkpoint, or not hull's) is named as such.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let not_image = |reason: String| CheckpointError::NotAnImage {
            path: dir.to_owned(),
            reason,
        };
        if !dir.is_dir() {
            return Err(not_image("no such directory".into()));
        }
        let path = Self::path(dir);
        let bytes = std::fs::read(&path).map_err(|e| not_image(format!("{NAME}: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| not_image(format!("{NAME}: {e}")))
    }
}

/// The keys of the init's fds 0..=2 that come from outside the container
/// (`mounts` being the ids of the container's mounts), and the
/// `--external` entries CRIU needs for the files among them.
pub(crate) fn outside_stdio(
    pid: i32,
    mounts: &[u32],
) -> Result<(Vec<Option<String>>, Vec<String>), CheckpointError> {
    use std::os::unix::fs::MetadataExt;
    let mut keys = Vec::new();
    let mut external = Vec::new();
    for fd in 0..=2 as RawFd {
        let link = format!("/proc/{pid}/fd/{fd}");
        let Ok(target) = std::fs::read_link(&link) else {
            keys.push(None);
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if target.starts_with("pipe:") {
            keys.push(Some(target));
            continue;
        }
        if target.starts_with("socket:") || target.starts_with("anon_inode:") {
            keys.push(None);
            continue;
        }
        let info_path = format!("/proc/{pid}/fdinfo/{fd}");
        let info = crate::pseudo_file::read_to_string(&info_path)
            .map_err(CheckpointError::io(&info_path))?;
        let mnt: u32 = info
            .lines()
            .find_map(|l| l.strip_prefix("mnt_id:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if mounts.contains(&mnt) {
            keys.push(None);
            continue;
        }
        let ino = std::fs::metadata(&link)
            .map_err(CheckpointError::io(&link))?
            .ino();
        let key = format!("file[{mnt:x}:{ino:x}]");
        external.push(key.clone());
        keys.push(Some(key));
    }
    Ok((keys, external))
}
