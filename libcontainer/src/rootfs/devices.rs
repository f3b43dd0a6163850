//! `/dev` inside the container: device nodes, `/dev/ptmx` and the fd symlinks.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::safe_path::{open_at, Root};
use super::RootfsError;
use crate::mount_api;

/// The nodes every container gets: (name, major, minor), all `c`, mode 0666.
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Creates the default devices and `extra` (`linux.devices`) inside `root`;
/// returns the handle on `/dev`.
/// The directory `/dev` is opened through the root, so a `/dev` symlink in the
/// image cannot send the nodes to the host (CVE-2026-41579).
pub(crate) fn create_devices(root: &Root, extra: &[LinuxDevice]) -> Result<OwnedFd, RootfsError> {
    let dev = root.mkdir_all(Path::new("/dev"), 0o755)?;
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = Path::new("/dev").join(name);
        if extra.iter().any(|d| d.path() == &path) {
            continue;
        }
        let node = Node {
            kind: SFlag::S_IFCHR,
            dev: makedev(major as u64, minor as u64),
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        node.make(&dev, name.as_ref(), &path)?;
    }
    for d in extra {
        // `/dev/ptmx` is the devpts link `create_links` makes (runc skips it
        // too); a node bound there in a user namespace could not be replaced.
        if d.path() == Path::new("/dev/ptmx") {
            continue;
        }
        let (parent, name) = split(d.path())?;
        let dir = root.mkdir_all(parent, 0o755)?;
        Node::of(d)?.make(&dir, name, d.path())?;
    }
    Ok(dev)
}

/// A device node to make.
struct Node {
    kind: SFlag,
    dev: nix::libc::dev_t,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Node {
    fn of(d: &LinuxDevice) -> Result<Self, RootfsError> {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Config(format!(
                    "device {} has type 'a'",
                    d.path().display()
                )))
            }
        };
        Ok(Self {
            kind,
            dev: makedev(d.major() as u64, d.minor() as u64),
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        })
    }

    /// Makes the node as `name` in `dir` (`path` names it in messages),
    /// replacing whatever the image has there (a file, a stale node, a symlink),
    /// but not a mount of the config's there: rootless podman binds the host's
    /// nodes (`/dev/null` among them) over the `/dev` tmpfs for `--privileged`,
    /// and such a mount is left as it is (runc keeps whatever exists at a
    /// device's path).
    fn make(&self, dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), RootfsError> {
        let dirfd = Some(dir.as_raw_fd());
        let mode = Mode::from_bits_truncate(self.mode & 0o7777);
        let made = match mknodat(dirfd, name, self.kind, mode, self.dev) {
            Err(nix::Error::EEXIST) => match unlinkat(dirfd, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => mknodat(dirfd, name, self.kind, mode, self.dev),
                Err(nix::Error::EBUSY) => return Ok(()),
                Err(e) => return Err(RootfsError::at("remove", path)(e)),
            },
            made => made,
        };
        if made == Err(nix::Error::EPERM) {
            // In a user namespace no device can be made: the host's node at
            // the same path is bound instead, keeping its owner (as runc does).
            return bind_host_node(dir, name, path);
        }
        made.map_err(RootfsError::at("create device", path))?;
        fchownat(
            dirfd,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(RootfsError::at("chown device", path))
    }
}

/// Binds the host's node `path` on a new empty file `name` in `dir`.
fn bind_host_node(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), RootfsError> {
    let file = open_at(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(RootfsError::at("create bind target for device", path))?;
    mount_api::clone_path(path, false)
        .and_then(|tree| mount_api::attach(&tree, &file, c""))
        .map_err(RootfsError::at("bind the host device", path))
}

/// `/dev/ptmx -> pts/ptmx` and the `/dev/fd`, `/dev/std*` (and `/dev/core`)
/// links, in `dev` (the container's `/dev`).
pub(crate) fn create_links(dev: &OwnedFd) -> Result<(), RootfsError> {
    let dirfd = Some(dev.as_raw_fd());
    match unlinkat(dirfd, "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(RootfsError::at("remove", Path::new("/dev/ptmx"))(e)),
    }
    let mut links = vec![
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dirfd, name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(RootfsError::at("symlink", &Path::new("/dev").join(name))(e)),
        }
    }
    Ok(())
}

fn split(path: &Path) -> Result<(&Path, &OsStr), RootfsError> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(RootfsError::Invalid(format!(
            "bad device path {}",
            path.display()
        ))),
    }
}
