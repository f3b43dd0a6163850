//! The `cgroup` mount type: the host's cgroup hierarchies as the container sees them.
//!
//! On a unified (v2) host this is one cgroup2 mount. On a v1 or hybrid host it
//! is a tmpfs holding one directory per hierarchy (`cpu,cpuacct`, `memory`,
//! `unified`, ...) plus `cpu -> cpu,cpuacct` style symlinks. With a cgroup
//! namespace each hierarchy is a fresh mount rooted at the namespace's cgroup;
//! without one it is a bind of the init's own cgroup directory, as runc does.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::unistd::symlinkat;

use super::mounts::remount_bind;
use super::options::MountOptions;
use super::safe_path::{fd_path, Root};
use super::RootfsError;
use crate::cgroups::{own_cgroup, Hierarchies};

const NONE: Option<&str> = None;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A host hierarchy as the container mounts it.
struct Hierarchy<'a> {
    mount_point: &'a Path,
    fstype: &'static str,
    /// Controllers of a v1 hierarchy (`cpu`, `cpuacct`, `name=systemd`); none for cgroup2.
    controllers: &'a [String],
}

pub(crate) fn mount_cgroup(
    root: &Root,
    dest: &Path,
    opts: &MountOptions,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::Invalid(format!("read /proc/self/mountinfo: {e}")))?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| RootfsError::Invalid(format!("read /proc/self/cgroup: {e}")))?;
    let host = Hierarchies::parse(&mountinfo);
    let hierarchies: Vec<Hierarchy> = host
        .v1
        .iter()
        .map(|m| Hierarchy {
            mount_point: &m.mount_point,
            fstype: "cgroup",
            controllers: &m.controllers,
        })
        .chain(host.v2.iter().map(|m| Hierarchy {
            mount_point: &m.mount_point,
            fstype: "cgroup2",
            controllers: &[],
        }))
        .filter(|h| h.mount_point.starts_with(CGROUP_ROOT))
        .collect();
    let flags = opts.flags - MsFlags::MS_REMOUNT;
    if let Some(h) = hierarchies
        .iter()
        .find(|h| h.mount_point == Path::new(CGROUP_ROOT))
    {
        return mount_hierarchy(root, dest, h, &cgroups, flags, cgroupns);
    }
    let dir = root.mkdir_all(dest, 0o755)?;
    mount(
        Some("tmpfs"),
        fd_path(&dir).as_str(),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(RootfsError::at("mount tmpfs on", dest))?;
    let dir = root
        .open_path(dest)
        .map_err(RootfsError::at("open", dest))?;
    for h in &hierarchies {
        let name = h.mount_point.file_name().unwrap_or_default();
        mount_hierarchy(root, &dest.join(name), h, &cgroups, flags, cgroupns)?;
        let name = name.to_string_lossy();
        if name.contains(',') {
            for alias in name.split(',') {
                match symlinkat(name.as_ref(), Some(dir.as_raw_fd()), alias) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(RootfsError::at("symlink", &dest.join(alias))(e)),
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        mount(
            NONE,
            fd_path(&dir).as_str(),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
            NONE,
        )
        .map_err(RootfsError::at("remount read-only", dest))?;
    }
    Ok(())
}

fn mount_hierarchy(
    root: &Root,
    dest: &Path,
    h: &Hierarchy,
    cgroups: &str,
    flags: MsFlags,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    let target = root.mkdir_all(dest, 0o755)?;
    let target_path = fd_path(&target);
    if cgroupns {
        let controllers = h.controllers.join(",");
        let data = (!controllers.is_empty()).then_some(controllers.as_str());
        return mount(
            Some("cgroup"),
            target_path.as_str(),
            Some(h.fstype),
            flags,
            data,
        )
        .map_err(RootfsError::at("mount cgroup on", dest));
    }
    let own = own_cgroup(cgroups, h.controllers).unwrap_or("/");
    let source = h.mount_point.join(own.trim_start_matches('/'));
    mount(
        Some(&source),
        target_path.as_str(),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(RootfsError::at("bind cgroup on", dest))?;
    remount_bind(root, dest, flags)
}
