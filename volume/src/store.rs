//! The volume root: one directory per volume or snapshot, holding its
//! record, its image, who uses it and where it is mounted for them:
//!
//! ```text
//! <root>/<name>/volume.json        the record (VolumeInfo)
//! <root>/<name>/image.raw          the image (image.qcow2; none if remote)
//! <root>/<name>/users/<id>.json    a container using it (User)
//! <root>/<name>/mnt/<id>/          its filesystem, mounted for that container
//! <root>/<name>/dev/<id>           a qcow2 or remote image as a raw file,
//!                                  served for that container (and its .pid)
//! ```
//!
//! A qcow2 snapshot is the volume's image as it was, the volume going on
//! in a new overlay over it; a clone is an overlay over the snapshot's
//! image (a linked clone). The overlays name their backing file as
//! `../<snapshot>/image.qcow2`, so the root can move as a whole.
//!
//! A volume is built whole in a locked `.new-*` directory and renamed into
//! place, and removed by renaming it to a `.rm-*` one first, so a kill
//! never leaves half a volume under its name; the next `create` or `rm`
//! sweeps such directories once nobody holds them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, VolumeError};
use crate::image;
use crate::parse::validate_name;
use crate::record::{self, Format, Fs, Kind, VolumeInfo};
use crate::served;

const RECORD: &str = "volume.json";
const IMAGE: &str = "image.raw";
const QCOW2: &str = "image.qcow2";
const USERS: &str = "users";
const MNT: &str = "mnt";
const DEV: &str = "dev";

/// hull's default volume root: images must outlive a reboot and not sit
/// in memory, so not under the state root in /run.
pub const DEFAULT_ROOT: &str = "/var/lib/hull/volumes";

/// What `create` makes.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Bytes; for a remote volume 0 takes the export's size.
    pub size: u64,
    pub fs: Fs,
    pub format: Format,
    /// An image served by an NBD server (`nbd://HOST:PORT/EXPORT`).
    pub remote: Option<String>,
}

/// A container using a volume: `<root>/<name>/users/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub container: String,
    /// The state root of the container, whose `delete` detaches it.
    pub state_root: PathBuf,
    pub read_only: bool,
    /// Where the volume's filesystem is mounted for it on the host.
    pub mountpoint: PathBuf,
}

/// A volume with where it lives and who uses it, as `inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Inspect {
    #[serde(flatten)]
    pub info: VolumeInfo,
    pub image: PathBuf,
    /// Bytes the image takes on the host's disk.
    pub allocated: u64,
    pub users: Vec<User>,
}

/// The volumes under one volume root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one volume, held while its users change or it is
/// copied or removed.
pub(crate) struct Lock {
    _dir: File,
}

impl Store {
    /// The volumes under `root`, made absolute: a container's record of
    /// its volumes names the root for a `delete` run from anywhere.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The image file of volume `info` (where a remote volume has none).
    pub fn image(&self, info: &VolumeInfo) -> PathBuf {
        self.dir(&info.name).join(image_name(info.format))
    }

    /// What the FUSE server of a served volume opens: its URL or image.
    pub(crate) fn source(&self, info: &VolumeInfo) -> String {
        match &info.remote {
            Some(url) => url.clone(),
            None => self.image(info).display().to_string(),
        }
    }

    /// The raw file volume `name` is served as for container `id`, and
    /// its server's pid file.
    pub(crate) fn served_file(&self, name: &str, id: &str) -> (PathBuf, PathBuf) {
        let dev = self.dir(name).join(DEV);
        (dev.join(id), dev.join(format!("{id}.pid")))
    }

    /// Where volume `name` is mounted on the host for container `id`.
    pub fn mountpoint(&self, name: &str, id: &str) -> PathBuf {
        self.dir(name).join(MNT).join(id)
    }

    pub(crate) fn user_path(&self, name: &str, id: &str) -> PathBuf {
        self.dir(name).join(USERS).join(format!("{id}.json"))
    }

    /// The record of volume or snapshot `name`.
    pub fn get(&self, name: &str) -> Result<VolumeInfo> {
        validate_name(name)?;
        let path = self.dir(name).join(RECORD);
        match record::read(&path) {
            Err(VolumeError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(VolumeError::NotFound(name.to_owned()))
            }
            r => r,
        }
    }

    /// Creates volume `name`: a sparse image of `options.size` bytes with
    /// an empty filesystem, raw or qcow2; or, given `options.remote`, the
    /// record of an NBD export (of its size) and a new filesystem on it.
    pub fn create(&self, name: &str, options: &CreateOptions) -> Result<VolumeInfo> {
        validate_name(name)?;
        if let Some(url) = &options.remote {
            return self.create_remote(name, url, options);
        }
        let fs = options.fs;
        if options.size < fs.min_size() {
            return Err(VolumeError::TooSmall {
                fs: fs.name().into(),
                size: options.size,
                min: fs.min_size(),
            });
        }
        let info = VolumeInfo {
            name: name.to_owned(),
            kind: Kind::Volume,
            format: options.format,
            fs,
            size: options.size,
            created: now(),
            origin: None,
            remote: None,
        };
        self.build(&info, |image| match options.format {
            Format::Raw => image::make(image, options.size, fs),
            Format::Qcow2 => {
                let path = image.display().to_string();
                let opts = blockimg::qcow2::CreateOptions::default();
                blockimg::qcow2::create(image, options.size, &opts)
                    .map_err(VolumeError::image(&path))?;
                let dir = image.parent().expect("in the volume's directory");
                served::with_file(&path, dir, |file| image::mkfs(file, fs))
            }
        })
    }

    /// Records the export at `url` as volume `name` and makes a new
    /// filesystem on it. The size is the export's (`--size`, if given,
    /// must match it).
    fn create_remote(&self, name: &str, url: &str, options: &CreateOptions) -> Result<VolumeInfo> {
        // Only a URL: a path here would be opened (and formatted) as a
        // local image.
        blockimg::nbd::Target::parse(url).map_err(VolumeError::image(url))?;
        let device =
            blockimg::device::open(Path::new(url), true).map_err(VolumeError::image(url))?;
        let size = device.size();
        drop(device);
        if options.size != 0 && options.size != size {
            return Err(VolumeError::RemoteSize {
                url: url.to_owned(),
                size,
                asked: options.size,
            });
        }
        if size < options.fs.min_size() {
            return Err(VolumeError::TooSmall {
                fs: options.fs.name().into(),
                size,
                min: options.fs.min_size(),
            });
        }
        let info = VolumeInfo {
            name: name.to_owned(),
            kind: Kind::Volume,
            format: options.format,
            fs: options.fs,
            size,
            created: now(),
            origin: None,
            remote: Some(url.to_owned()),
        };
        self.build(&info, |image| {
            let dir = image.parent().expect("in the volume's directory");
            served::with_file(url, dir, |file| image::mkfs(file, options.fs))
        })
    }

    /// Every volume and snapshot, sorted by name.
    pub fn list(&self) -> Result<Vec<VolumeInfo>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VolumeError::io(&self.root)(e)),
        };
        let mut all: Vec<VolumeInfo> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_name(n).is_ok())
            .filter_map(|n| self.get(&n).ok())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The containers using volume `name`.
    pub fn users(&self, name: &str) -> Result<Vec<User>> {
        let dir = self.dir(name).join(USERS);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VolumeError::io(&dir)(e)),
        };
        let mut users = entries
            .filter_map(|e| e.ok())
            .map(|e| record::read::<User>(&e.path()))
            .collect::<Result<Vec<_>>>()?;
        users.sort_by(|a, b| a.container.cmp(&b.container));
        Ok(users)
    }

    /// Volume `name` with its image and users.
    pub fn inspect(&self, name: &str) -> Result<Inspect> {
        let info = self.get(name)?;
        let image = self.image(&info);
        Ok(Inspect {
            allocated: match info.remote {
                Some(_) => 0,
                None => image::allocated(&image)?,
            },
            users: self.users(name)?,
            image,
            info,
        })
    }

    /// Removes volume or snapshot `name`, refused while a container uses
    /// it or a linked clone reads from it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let lock = self.lock(name)?;
        let users = self.users(name)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_owned(),
                users: users.into_iter().map(|u| u.container).collect(),
            });
        }
        let dependents = self.backed_by(name)?;
        if !dependents.is_empty() {
            return Err(VolumeError::HasDependents {
                name: name.to_owned(),
                dependents,
            });
        }
        let trash = self.root.join(format!(".rm-{name}-{}", std::process::id()));
        let dir = self.dir(name);
        std::fs::rename(&dir, &trash).map_err(VolumeError::io(&dir))?;
        std::fs::remove_dir_all(&trash).map_err(VolumeError::io(&trash))?;
        drop(lock);
        self.sweep();
        Ok(())
    }

    /// Snapshots volume `name` as `snap`: a copy of its image, frozen.
    /// Refused while a container may write to it.
    pub fn snapshot(&self, name: &str, snap: &str) -> Result<VolumeInfo> {
        validate_name(snap)?;
        let _lock = self.lock(name)?;
        let origin = self.get(name)?;
        if origin.kind == Kind::Snapshot {
            return Err(VolumeError::IsSnapshot(name.to_owned()));
        }
        if let Some(w) = self.users(name)?.into_iter().find(|u| !u.read_only) {
            return Err(VolumeError::SnapshotWhileWritten {
                name: name.to_owned(),
                user: w.container,
            });
        }
        if origin.remote.is_some() {
            return Err(VolumeError::Unsupported("a snapshot of a remote volume"));
        }
        let info = VolumeInfo {
            name: snap.to_owned(),
            kind: Kind::Snapshot,
            created: now(),
            origin: Some(name.to_owned()),
            ..origin.clone()
        };
        let image = self.image(&origin);
        if origin.format == Format::Raw {
            return self.build(&info, |to| image::copy(&image, to));
        }
        // The image as it is becomes the snapshot's (a second link, so the
        // data is never in one place only); the volume goes on in a new
        // overlay over it, put in place of its image in one rename.
        self.settle(&origin)?;
        let made = self.build(&info, |to| {
            std::fs::hard_link(&image, to).map_err(VolumeError::io(to))
        })?;
        self.settle(&origin)?;
        Ok(made)
    }

    /// Finishes a qcow2 snapshot of volume `info` that a kill interrupted
    /// after the snapshot's link was made (the volume's image still the
    /// snapshot's): puts the volume's new overlay in place. Called with
    /// the volume locked, before its image is used.
    pub(crate) fn settle(&self, info: &VolumeInfo) -> Result<()> {
        if info.format != Format::Qcow2 || info.remote.is_some() || info.kind != Kind::Volume {
            return Ok(());
        }
        let image = self.image(info);
        let meta = std::fs::metadata(&image).map_err(VolumeError::io(&image))?;
        if meta.nlink() < 2 {
            return Ok(());
        }
        let same =
            |v: &VolumeInfo| std::fs::metadata(self.image(v)).is_ok_and(|m| m.ino() == meta.ino());
        let Some(snap) = self.list()?.into_iter().find(|v| {
            v.kind == Kind::Snapshot && v.origin.as_deref() == Some(&info.name) && same(v)
        }) else {
            return Ok(());
        };
        let next = self.dir(&info.name).join(".next.qcow2");
        record::remove_if_present(&next)?;
        let path = next.display().to_string();
        overlay(&next, &snap.name, info.size).map_err(VolumeError::image(&path))?;
        std::fs::rename(&next, &image).map_err(VolumeError::io(&image))
    }

    /// Makes volume `new` from snapshot `snap`.
    pub fn clone_snapshot(&self, snap: &str, new: &str) -> Result<VolumeInfo> {
        validate_name(new)?;
        let _lock = self.lock(snap)?;
        let origin = self.get(snap)?;
        if origin.kind != Kind::Snapshot {
            return Err(VolumeError::NotSnapshot(snap.to_owned()));
        }
        let info = VolumeInfo {
            name: new.to_owned(),
            kind: Kind::Volume,
            created: now(),
            origin: Some(snap.to_owned()),
            ..origin.clone()
        };
        let image = self.image(&origin);
        self.build(&info, |to| match origin.format {
            Format::Raw => image::copy(&image, to),
            // Built in a sibling directory: the relative backing name
            // means the same there and once renamed into place.
            Format::Qcow2 => overlay(to, snap, origin.size)
                .map_err(VolumeError::image(&to.display().to_string())),
        })
    }

    /// The qcow2 volumes and snapshots whose image reads from `name`'s.
    fn backed_by(&self, name: &str) -> Result<Vec<String>> {
        let want = backing_name(name);
        let mut found = Vec::new();
        for v in self.list()? {
            if v.format != Format::Qcow2 || v.remote.is_some() || v.name == name {
                continue;
            }
            let image = self.image(&v);
            let mut head = vec![0u8; 64 << 10];
            let n = {
                use std::io::Read;
                let mut f = File::open(&image).map_err(VolumeError::io(&image))?;
                f.read(&mut head).map_err(VolumeError::io(&image))?
            };
            let header = blockimg::qcow2::Header::parse(&head[..n])
                .map_err(VolumeError::image(&image.display().to_string()))?;
            if header.backing_file.as_deref() == Some(want.as_str()) {
                found.push(v.name);
            }
        }
        Ok(found)
    }

    /// Builds the volume `info` names in a locked temporary directory
    /// (`fill` makes its image) and renames it into place, failing if the
    /// name is taken.
    fn build(
        &self,
        info: &VolumeInfo,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<VolumeInfo> {
        let name = &info.name;
        if self.dir(name).exists() {
            return Err(VolumeError::Exists(name.clone()));
        }
        // Only root reaches the images and the mounts made for containers.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(VolumeError::io(&self.root))?;
        self.sweep();
        let tmp = self
            .root
            .join(format!(".new-{name}-{}", std::process::id()));
        let made = (|| {
            std::fs::create_dir(&tmp).map_err(VolumeError::io(&tmp))?;
            let dir = File::open(&tmp).map_err(VolumeError::io(&tmp))?;
            flock(&dir, libc::LOCK_EX).map_err(VolumeError::sys("lock the new volume"))?;
            fill(&tmp.join(image_name(info.format)))?;
            record::write_new(&tmp.join(RECORD), info)?;
            let dest = self.dir(name);
            nix::fcntl::renameat2(
                None,
                &tmp,
                None,
                &dest,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            )
            .map_err(|e| match e {
                nix::Error::EEXIST | nix::Error::ENOTEMPTY => VolumeError::Exists(name.clone()),
                e => VolumeError::sys(format!("rename to {}", dest.display()))(e),
            })
        })();
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        made.map(|()| info.clone())
    }

    /// Removes the `.new-*` and `.rm-*` directories of killed creates and
    /// removals (a live one holds its lock).
    fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with(".new-") || name.starts_with(".rm-")) {
                continue;
            }
            let free = File::open(e.path())
                .is_ok_and(|d| flock(&d, libc::LOCK_EX | libc::LOCK_NB).is_ok());
            if free {
                let _ = blockimg::serve::unmount(&served::mkfs_file(&e.path()));
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Locks volume `name` against other changes of its users, copies and
    /// removal.
    pub(crate) fn lock(&self, name: &str) -> Result<Lock> {
        validate_name(name)?;
        let path = self.dir(name);
        let not_found = || VolumeError::NotFound(name.to_owned());
        let dir = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(),
            _ => VolumeError::io(&path)(e),
        })?;
        flock(&dir, libc::LOCK_EX).map_err(VolumeError::sys(format!("lock volume {name}")))?;
        // A removal renames the directory away while holding the lock.
        let same = std::fs::metadata(&path)
            .ok()
            .zip(dir.metadata().ok())
            .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
        if !same || !path.join(RECORD).exists() {
            return Err(not_found());
        }
        Ok(Lock { _dir: dir })
    }
}

fn image_name(format: Format) -> &'static str {
    match format {
        Format::Raw => IMAGE,
        Format::Qcow2 => QCOW2,
    }
}

/// How an overlay names the image of snapshot `snap` as its backing file.
fn backing_name(snap: &str) -> String {
    format!("../{snap}/{QCOW2}")
}

/// Makes the qcow2 image `path` an empty overlay over snapshot `snap`'s.
fn overlay(path: &Path, snap: &str, size: u64) -> blockimg::Result<()> {
    let options = blockimg::qcow2::CreateOptions {
        backing_file: Some(backing_name(snap)),
        backing_format: Some("qcow2".into()),
        ..Default::default()
    };
    blockimg::qcow2::create(path, size, &options)
}

fn flock(file: &File, how: libc::c_int) -> nix::Result<()> {
    // SAFETY: flock on a descriptor we own.
    match unsafe { libc::flock(file.as_raw_fd(), how) } {
        0 => Ok(()),
        _ => Err(nix::Error::last()),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
