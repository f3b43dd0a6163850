//! `/dev` inside the container: device nodes, `/dev/ptmx` and the fd symlinks.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::safe_path::Root;
use super::RootfsError;

/// The nodes every container gets: (name, major, minor), all `c`, mode 0666.
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Creates the default devices and `extra` (`linux.devices`) inside `root`.
/// The directory `/dev` is opened through the root, so a `/dev` symlink in the
/// image cannot send the nodes to the host (CVE-2026-41579).
pub(crate) fn create_devices(root: &Root, extra: &[LinuxDevice]) -> Result<(), RootfsError> {
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = Path::new("/dev").join(name);
        if extra.iter().any(|d| d.path() == &path) {
            continue;
        }
        mknod(root, &path, LinuxDeviceType::C, major, minor, 0o666, 0, 0)?;
    }
    for d in extra {
        mknod(
            root,
            d.path(),
            d.typ(),
            d.major(),
            d.minor(),
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn mknod(
    root: &Root,
    path: &Path,
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), RootfsError> {
    let kind = match typ {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RootfsError::Invalid(format!(
                "device {} has type 'a'",
                path.display()
            )))
        }
    };
    let (parent, name) = split(path)?;
    let dir = root.mkdir_all(parent, 0o755)?;
    let dirfd = Some(dir.as_raw_fd());
    // Replace whatever the image has at that name (a file, a stale node, a symlink).
    match unlinkat(dirfd, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(RootfsError::at("remove", path)(e)),
    }
    let dev = makedev(major as u64, minor as u64);
    mknodat(
        dirfd,
        name,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        dev,
    )
    .map_err(RootfsError::at("create device", path))?;
    fchownat(
        dirfd,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(RootfsError::at("chown device", path))
}

/// `/dev/ptmx -> pts/ptmx` and the `/dev/fd`, `/dev/std*` (and `/dev/core`) links.
pub(crate) fn create_links(root: &Root) -> Result<(), RootfsError> {
    let dev = root.mkdir_all(Path::new("/dev"), 0o755)?;
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

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), RootfsError> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(RootfsError::Invalid(format!(
            "bad device path {}",
            path.display()
        ))),
    }
}
