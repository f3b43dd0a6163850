//! The `cgroup` mount type: the host's cgroup hierarchies as the container sees them.
//!
//! On a unified (v2) host this is one cgroup2 mount. On a v1 or hybrid host it
//! is a tmpfs holding one directory per hierarchy (`cpu,cpuacct`, `memory`,
//! `unified`, ...) plus `cpu -> cpu,cpuacct` style symlinks. With a cgroup
//! namespace each hierarchy is a fresh mount rooted at the namespace's cgroup;
//! without one it is a bind of the init's own cgroup directory, as runc does.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::unistd::symlinkat;

use super::options::MountOptions;
use super::safe_path::{fd_path, Root};
use super::RootfsError;

const NONE: Option<&str> = None;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A cgroup hierarchy mounted on the host.
#[derive(Debug, PartialEq)]
struct Hierarchy {
    mount_point: PathBuf,
    fstype: String,
    /// Super options naming the hierarchy (`cpu,cpuacct`, `name=systemd`); empty for cgroup2.
    controllers: String,
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
    let hierarchies = parse_hierarchies(&mountinfo);
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
        let data = (!h.controllers.is_empty()).then_some(h.controllers.as_str());
        return mount(
            Some("cgroup"),
            target_path.as_str(),
            Some(h.fstype.as_str()),
            flags,
            data,
        )
        .map_err(RootfsError::at("mount cgroup on", dest));
    }
    let own = own_cgroup(cgroups, &h.controllers).unwrap_or("/");
    let source = h.mount_point.join(own.trim_start_matches('/'));
    mount(
        Some(&source),
        target_path.as_str(),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(RootfsError::at("bind cgroup on", dest))?;
    let mounted = root
        .open_path(dest)
        .map_err(RootfsError::at("open", dest))?;
    mount(
        NONE,
        fd_path(&mounted).as_str(),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        NONE,
    )
    .map_err(RootfsError::at("remount", dest))
}

/// The cgroup hierarchies mounted under `/sys/fs/cgroup`, from mountinfo text.
fn parse_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let super_opts = right.nth(1).unwrap_or("");
            let under = Path::new(mount_point).starts_with(CGROUP_ROOT);
            if !under || !(fstype == "cgroup" || fstype == "cgroup2") {
                return None;
            }
            let controllers = if fstype == "cgroup" {
                super_opts
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro" | "xattr" | "clone_children" | "noprefix")
                            && !o.starts_with("release_agent=")
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                String::new()
            };
            Some(Hierarchy {
                mount_point: mount_point.into(),
                fstype: fstype.into(),
                controllers,
            })
        })
        .collect()
}

/// The calling process's cgroup path in the hierarchy with `controllers`
/// (empty for cgroup2), from `/proc/self/cgroup` text.
fn own_cgroup<'a>(cgroups: &'a str, controllers: &str) -> Option<&'a str> {
    cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let same = if controllers.is_empty() {
            ctrls.is_empty()
        } else {
            let mut a: Vec<_> = ctrls.split(',').collect();
            let mut b: Vec<_> = controllers.split(',').collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        same.then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 1 0:22 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn finds_hybrid_hierarchies() {
        let h = parse_hierarchies(MOUNTINFO);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].fstype, "cgroup2");
        assert_eq!(h[1].controllers, "cpu,cpuacct");
        assert_eq!(h[2].controllers, "name=systemd");
    }

    #[test]
    fn finds_own_cgroup_per_hierarchy() {
        let cg = "12:cpuacct,cpu:/a/b\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(own_cgroup(cg, "cpu,cpuacct"), Some("/a/b"));
        assert_eq!(own_cgroup(cg, "name=systemd"), Some("/s"));
        assert_eq!(own_cgroup(cg, ""), Some("/u"));
        assert_eq!(own_cgroup(cg, "memory"), None);
    }
}
