//! A container's volumes: attached (loop device, mount on the host, a bind
//! mount in the container's config) when it is created, detached when it
//! is deleted.
//!
//! Crash safety: the container's list of volumes is recorded beside its
//! state (`<state root>/<id>@volumes.json`) before anything is attached,
//! each volume's user record is written before its loop device and mount
//! are made, and detaching removes them in the reverse order, the list
//! last; every step can be done again. A loop device clears itself once
//! its mount is gone (or, killed before mounting, once its fd closes). So
//! a kill at any point leaves what `delete --force` finishes.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{Mount, MountBuilder, Spec};
use libcontainer::Container;
use nix::mount::{umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VolumeError};
use crate::loop_dev;
use crate::parse::Request;
use crate::record::{self, Fs, Kind};
use crate::served;
use crate::store::{Store, User};

/// The name of the record kept beside a container's state.
const HELD: &str = "volumes.json";

/// What a container holds: `<state root>/<id>@volumes.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Held {
    volume_root: PathBuf,
    volumes: Vec<Request>,
}

/// The volumes a container asks for, given to
/// `ContainerBuilder::volumes`: attached once its id is claimed.
#[derive(Debug)]
pub struct ContainerVolumes {
    store: Store,
    requests: Vec<Request>,
}

impl ContainerVolumes {
    pub fn new(store: Store, requests: Vec<Request>) -> Self {
        Self { store, requests }
    }
}

impl libcontainer::Volumes for ContainerVolumes {
    fn attach(
        &self,
        root: &Path,
        id: &str,
        spec: &mut Spec,
    ) -> Result<(), libcontainer::VolumeError> {
        let mounts = attach(&self.store, root, id, &self.requests)?;
        let mut all = spec.mounts().clone().unwrap_or_default();
        all.extend(mounts);
        spec.set_mounts(Some(all));
        Ok(())
    }

    fn detach(&self, root: &Path, id: &str) -> Result<(), libcontainer::VolumeError> {
        Ok(detach(root, id)?)
    }
}

/// Checks that each requested volume can be attached: it exists, is a
/// volume, and its image is there. Done before anything is made, so the
/// usual errors leave nothing.
pub fn check(store: &Store, requests: &[Request]) -> Result<()> {
    for r in requests {
        let info = store.get(&r.name)?;
        if info.kind == Kind::Snapshot {
            return Err(VolumeError::IsSnapshot(r.name.clone()));
        }
        let image = store.image(&info);
        if info.remote.is_none() && !image.is_file() {
            return Err(VolumeError::ImageMissing {
                name: r.name.clone(),
                image,
            });
        }
    }
    Ok(())
}

/// Attaches `requests` for container `id` of state root `root`; returns
/// the bind mounts that give them to the container. On error nothing is
/// left attached.
pub fn attach(store: &Store, root: &Path, id: &str, requests: &[Request]) -> Result<Vec<Mount>> {
    check(store, requests)?;
    let held_path = Container::companion_in(root, id, HELD);
    // The id is ours (its state is claimed): a list still there is what
    // an earlier container of this id left when its delete was killed.
    detach(root, id)?;
    let held = Held {
        volume_root: store.root().to_owned(),
        volumes: requests.to_vec(),
    };
    record::write_new(&held_path, &held)?;
    let mut mounts = Vec::new();
    for r in requests {
        match attach_one(store, root, id, r) {
            Ok(m) => mounts.push(m),
            Err(e) => {
                let _ = detach(root, id);
                return Err(e);
            }
        }
    }
    Ok(mounts)
}

/// Whether container `id` of state root `root` holds volumes.
pub fn holds_volumes(root: &Path, id: &str) -> bool {
    Container::companion_in(root, id, HELD).exists()
}

/// Detaches every volume container `id` of state root `root` holds (its
/// processes must be gone): unmounts them, which releases their loop
/// devices, and removes the records, the container's list last. Doing it
/// again, or with nothing held, does nothing.
pub fn detach(root: &Path, id: &str) -> Result<()> {
    let held_path = Container::companion_in(root, id, HELD);
    let held: Held = match record::read(&held_path) {
        Err(VolumeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        r => r?,
    };
    let store = Store::new(&held.volume_root);
    let mut first_error = None;
    for r in &held.volumes {
        if let Err(e) = detach_one(&store, root, id, &r.name) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => record::remove_if_present(&held_path),
    }
}

/// Attaches volume `r.name` for container `id`: its user record, a loop
/// device of its image, and its filesystem mounted on the host.
fn attach_one(store: &Store, root: &Path, id: &str, r: &Request) -> Result<Mount> {
    let _lock = store.lock(&r.name)?;
    let info = store.get(&r.name)?;
    store.settle(&info)?;
    let users = store.users(&r.name)?;
    if let Some(w) = users.iter().find(|u| !u.read_only) {
        return Err(VolumeError::WriterAttached {
            name: r.name.clone(),
            user: w.container.clone(),
        });
    }
    if !r.read_only && !users.is_empty() {
        return Err(VolumeError::ReadersAttached {
            name: r.name.clone(),
            users: users.into_iter().map(|u| u.container).collect(),
        });
    }
    let mountpoint = store.mountpoint(&r.name, id);
    let user = User {
        container: id.to_owned(),
        state_root: resolved(root),
        read_only: r.read_only,
        mountpoint: mountpoint.clone(),
    };
    let user_path = store.user_path(&r.name, id);
    for dir in [user_path.parent(), Some(mountpoint.as_path())]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir).map_err(VolumeError::io(dir))?;
    }
    record::write_new(&user_path, &user)?;
    let backing = match info.served() {
        true => {
            let (file, pid_file) = store.served_file(&r.name, id);
            let dir = file.parent().expect("in the volume's directory");
            std::fs::create_dir_all(dir).map_err(VolumeError::io(dir))?;
            served::start(&store.source(&info), &file, &pid_file, r.read_only)?;
            file
        }
        false => store.image(&info),
    };
    let device = loop_dev::attach(&backing, r.read_only)?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if r.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    nix::mount::mount(
        Some(&device.path),
        &mountpoint,
        Some(info.fs.name()),
        flags,
        Some(mount_data(info.fs, r.read_only)),
    )
    .map_err(VolumeError::sys(format!(
        "mount volume {} ({}) on {}",
        r.name,
        device.path.display(),
        mountpoint.display()
    )))?;
    let access = if r.read_only { "ro" } else { "rw" };
    Ok(MountBuilder::default()
        .destination(&r.destination)
        .typ("bind")
        .source(&mountpoint)
        .options(vec![
            "rbind".into(),
            access.into(),
            "nosuid".into(),
            "nodev".into(),
        ])
        .build()
        .expect("a bind mount with all its fields"))
}

/// The filesystem's mount options. A read-only device cannot replay a
/// journal, so a read-only mount skips it; xfs refuses a second mount of
/// one UUID, which every clone of a snapshot shares.
fn mount_data(fs: Fs, read_only: bool) -> &'static str {
    match (fs, read_only) {
        (Fs::Ext4, true) => "noload",
        (Fs::Ext4, false) => "",
        (Fs::Xfs, true) => "nouuid,norecovery",
        (Fs::Xfs, false) => "nouuid",
    }
}

/// `path` as one spelling of it: canonical where it exists, else absolute
/// (a state root given as `./state` once and `/x/state` later is one root).
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned())
}

/// Detaches volume `name` from container `id`: unmounts it (releasing the
/// loop device), removes the mountpoint, stops the FUSE server of a
/// served volume, then removes the user record.
fn detach_one(store: &Store, root: &Path, id: &str, name: &str) -> Result<()> {
    let _lock = match store.lock(name) {
        Err(VolumeError::NotFound(_)) => return Ok(()),
        lock => lock?,
    };
    let mountpoint = store.mountpoint(name, id);
    match umount2(&mountpoint, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        // Still held (a process of the container not yet gone): detached
        // from the host now, released with its last user.
        Err(nix::Error::EBUSY) => {
            umount2(
                &mountpoint,
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            )
            .map_err(VolumeError::sys(format!(
                "unmount {}",
                mountpoint.display()
            )))?;
        }
        Err(e) => {
            return Err(VolumeError::sys(format!(
                "unmount {}",
                mountpoint.display()
            ))(e))
        }
    }
    match std::fs::remove_dir(&mountpoint) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(VolumeError::io(&mountpoint)(e))
        }
        _ => {}
    }
    let (file, pid_file) = store.served_file(name, id);
    served::stop(&file, &pid_file)?;
    // Another state root's container of the same id keeps its record.
    let user_path = store.user_path(name, id);
    match record::read::<User>(&user_path) {
        Ok(u) if u.state_root != resolved(root) => Ok(()),
        _ => record::remove_if_present(&user_path),
    }
}
