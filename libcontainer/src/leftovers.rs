//! What a container leaves when its state is gone or unreadable (removed by
//! hand, garbled on disk, or never written by a create killed early), and
//! how `delete --force` finds it from the id alone.
//!
//! Without a record, only what hull derives from the id can be found: the
//! default cgroup (`<runtime's own cgroup>/<id>` in every hierarchy), the
//! files `<root>/<id>@<what>` beside the state and the bind mount a restore
//! makes among them. A custom `cgroupsPath` (or a systemd scope) was known
//! only to the lost record and cannot be found; nor can the default cgroup
//! when `delete` runs in another cgroup than the `create` did (the default
//! lies below the creating runtime's own cgroup; an engine runs both from
//! one place). While the record survives, even as the intent a create saves
//! before it makes anything (`Record::creating`), the container loads and
//! is deleted the usual way, with the cgroup it records.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::cgroups::{Cgroup, Hierarchies};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::id::validate_id;
use crate::state::{self, CHECKPOINTED, EXEC_FIFO, STATE_TMP};

/// The companions a container may leave beside its state (see
/// [`state::companion`]): the exec fifo, the state's temporary twin, the
/// checkpoint marker and the restore's mount point. (The network's record
/// is its owner's to remove.)
const COMPANIONS: [&str; 4] = [EXEC_FIFO, STATE_TMP, CHECKPOINTED, CRIU_ROOT];
/// Where a restore binds the rootfs for CRIU (see `checkpoint::restore`).
pub(crate) const CRIU_ROOT: &str = "criu-root";

/// The id of a container without a usable state, claimed for removal:
/// until it is dropped or [`Leftovers::finish`]ed, no create or restore of
/// the id can begin.
#[derive(Debug)]
pub struct Leftovers {
    root: PathBuf,
    id: String,
    /// The state file, locked; `None` when the state root itself is gone
    /// (nothing of this root is there to claim or to protect).
    claim: Option<(File, PathBuf)>,
}

impl Leftovers {
    /// Claims `id` under `root` whose state file is missing, empty or
    /// unreadable. `None` if the id is busy: a create or restore of it
    /// under way holds its state file, or it is a container that loads.
    pub fn claim(root: impl AsRef<Path>, id: &str) -> Result<Option<Self>> {
        validate_id(id)?;
        let root = root.as_ref().to_owned();
        let path = state::state_path(&root, id);
        let claim = if !root.is_dir() {
            None
        } else if path.exists() {
            match lock_existing(&path)? {
                Some(file) => Some((file, path)),
                None => return Ok(None),
            }
        } else {
            match state::claim(&root, id) {
                Ok(claim) => Some(claim),
                // A create of the id began meanwhile.
                Err(Error::Exists(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        // A record saved meanwhile: the container is the usual kind.
        if Container::load(&root, id).is_ok() {
            return Ok(None);
        }
        Ok(Some(Self {
            root,
            id: id.to_owned(),
            claim,
        }))
    }

    /// Kills what runs in the cgroup hull would have given the container by
    /// default and removes its directories, in every hierarchy. A directory
    /// another container of this root records (the same, above or below),
    /// or one holding this process, is left alone: it is not this id's.
    pub fn remove_cgroups(&self) -> Result<()> {
        let h = Hierarchies::detect()?;
        let mut derived = Cgroup::resolve(&h, None, &self.id, false)?;
        let others: Vec<PathBuf> = Container::list(&self.root)?
            .iter()
            .filter_map(|c| c.cgroup().ok())
            .flat_map(|cg| cg.dirs.iter().map(|d| d.path.clone()))
            .collect();
        let own = own_cgroup_dirs(&h)?;
        derived.dirs.retain(|d| {
            let owned = others
                .iter()
                .any(|o| o.starts_with(&d.path) || d.path.starts_with(o))
                || own.iter().any(|o| o.starts_with(&d.path));
            if owned && d.path.exists() {
                tracing::warn!(
                    "{} is not removed: another container or hull itself is in it",
                    d.path.display()
                );
            }
            !owned
        });
        Ok(derived.destroy()?)
    }

    /// Removes the companions beside the state, a restore's bind mount
    /// among them, then the state file, last.
    pub fn finish(self) -> Result<()> {
        remove_companions(&self.root, &self.id)?;
        if let Some((_lock, path)) = &self.claim {
            state::remove_if_present(path)?;
        }
        Ok(())
    }

    /// The ids under `root` with companions but no state file, each with
    /// what is left of it.
    pub(crate) fn orphans(root: &Path) -> Vec<(String, Vec<String>)> {
        let mut found: Vec<(String, Vec<String>)> = Vec::new();
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((id, _)) = name.split_once('@') else {
                continue;
            };
            if validate_id(id).is_err() || state::state_path(root, id).exists() {
                continue;
            }
            match found.iter_mut().find(|(i, _)| i == id) {
                Some((_, left)) => left.push(name.clone()),
                None => found.push((id.to_owned(), vec![name.clone()])),
            }
        }
        for (_, left) in &mut found {
            left.sort();
        }
        found.sort();
        found
    }
}

/// Removes the companions of container `id` under `root` (see
/// [`COMPANIONS`]), unmounting a restore's bind mount first.
pub(crate) fn remove_companions(root: &Path, id: &str) -> Result<()> {
    for what in COMPANIONS {
        let path = state::companion(root, id, what);
        if what == CRIU_ROOT {
            remove_mount_point(&path)?;
        } else {
            state::remove_if_present(&path)?;
        }
    }
    Ok(())
}

/// Locks the state file `path` that exists but does not load; `None` if a
/// create still holds it (its empty claim) or a restore does.
fn lock_existing(path: &Path) -> Result<Option<File>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path)(e)),
    };
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    Ok(Some(file))
}

/// This process's own cgroup directories, never the container's to remove.
fn own_cgroup_dirs(h: &Hierarchies) -> Result<Vec<PathBuf>> {
    let none = Cgroup {
        dirs: Vec::new(),
        systemd: None,
    };
    Ok(none
        .own_where_missing(h)?
        .dirs
        .into_iter()
        .map(|d| d.path)
        .collect())
}

/// Unmounts whatever is mounted on `path` (a restore killed half-way left
/// its bind of the rootfs) and removes the directory.
fn remove_mount_point(path: &Path) -> Result<()> {
    use nix::mount::{umount2, MntFlags};
    if !path.is_dir() {
        return state::remove_if_present(path);
    }
    // Stacked mounts come off one by one; EINVAL once nothing is mounted.
    loop {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(e) => {
                return Err(Error::sys(format!("unmount {}", path.display()))(e));
            }
        }
    }
    match std::fs::remove_dir(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_ids_with_companions_but_no_state_file() {
        let root = std::env::temp_dir().join(format!("hull-unit-orphans-{}", std::process::id()));
        std::fs::create_dir_all(root.join("lost@criu-root")).unwrap();
        for name in [
            "lost@state.tmp",
            "alive",
            "alive@exec.fifo",
            "bad id@x",
            "x",
        ] {
            std::fs::write(root.join(name), b"").unwrap();
        }
        let found = Leftovers::orphans(&root);
        std::fs::remove_dir_all(&root).unwrap();
        let left = vec!["lost@criu-root".to_owned(), "lost@state.tmp".to_owned()];
        assert_eq!(found, vec![("lost".to_owned(), left)]);
    }
}
