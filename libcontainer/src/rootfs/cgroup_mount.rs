//! The `cgroup` mount type: the host's cgroup hierarchies as the container sees them.
//!
//! On a unified (v2) host this is one cgroup2 mount. On a v1 or hybrid host it
//! is a tmpfs holding one directory per hierarchy (`cpu,cpuacct`, `memory`,
//! `unified`, ...) plus `cpu -> cpu,cpuacct` style symlinks. With a cgroup
//! namespace each hierarchy is a fresh mount rooted at the namespace's cgroup;
//! without one it is a bind of the init's own cgroup directory, as runc does.
//!
//! The hierarchies and the container's directories come from the parent,
//! which found and made them before the clone: the init's mount namespace is
//! a copy of the parent's, so reading `/proc/self/mountinfo` and
//! `/proc/self/cgroup` again here would only repeat that work.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;

use super::options::MountOptions;
use super::safe_path::{fd_path, open_at, Root};
use super::RootfsError;
use crate::cgroups::{Cgroup, Hierarchies};
use crate::mount_api;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The host's cgroup hierarchies and the container's directory in each.
pub(crate) struct CgroupView<'a> {
    pub hierarchies: &'a Hierarchies,
    pub cgroup: &'a Cgroup,
    /// Rootless: the runtime's own cgroup, the init's in the hierarchies
    /// where the container has no directory of its own.
    pub own: Option<&'a Cgroup>,
}

/// A host hierarchy as the container mounts it.
struct Hierarchy<'a> {
    mount_point: &'a Path,
    fstype: &'static str,
    /// Controllers of a v1 hierarchy (`cpu`, `cpuacct`, `name=systemd`); none for cgroup2.
    controllers: &'a [String],
    /// The container's directory in it, the bind source without a cgroup namespace.
    dir: &'a Path,
}

impl<'a> CgroupView<'a> {
    /// The hierarchies mounted under `/sys/fs/cgroup`, with the container's directories.
    fn under_cgroup_root(&self) -> Result<Vec<Hierarchy<'a>>, RootfsError> {
        let h = self.hierarchies;
        let v1 =
            h.v1.iter()
                .map(|m| (&m.mount_point, "cgroup", &m.controllers[..]));
        let v2 = h.v2.iter().map(|m| (&m.mount_point, "cgroup2", &[][..]));
        v1.chain(v2)
            .filter(|(mount_point, ..)| mount_point.starts_with(CGROUP_ROOT))
            .map(|(mount_point, fstype, controllers)| {
                let dir = self
                    .cgroup
                    .dirs
                    .iter()
                    .chain(self.own.iter().flat_map(|own| &own.dirs))
                    .find(|d| d.controllers == controllers)
                    .ok_or_else(|| {
                        RootfsError::Invalid(format!(
                            "the container has no cgroup in {}",
                            mount_point.display()
                        ))
                    })?;
                Ok(Hierarchy {
                    mount_point,
                    fstype,
                    controllers,
                    dir: &dir.path,
                })
            })
            .collect()
    }
}

/// Mounts the container's view of the cgroup hierarchies on `dest` (a
/// `cgroup` entry of `mounts`, with its options); a tmpfs holding them gets
/// the mount label.
pub(crate) fn mount_cgroup(
    root: &Root,
    dest: &Path,
    opts: &MountOptions,
    view: &CgroupView,
    cgroupns: bool,
    mount_label: Option<&str>,
) -> Result<(), RootfsError> {
    let hierarchies = view.under_cgroup_root()?;
    let flags = opts.flags - MsFlags::MS_REMOUNT;
    if flags.contains(MsFlags::MS_RDONLY) {
        make_covered_read_only(root, dest)?;
    }
    if let Some(h) = hierarchies
        .iter()
        .find(|h| h.mount_point == Path::new(CGROUP_ROOT))
    {
        return mount_hierarchy(root, dest, h, flags, cgroupns);
    }
    let dir = root.mkdir_all(dest, 0o755)?;
    mount(
        Some("tmpfs"),
        fd_path(&dir).as_str(),
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some(crate::labels::with_mount_label("mode=755", mount_label).as_str()),
    )
    .map_err(RootfsError::at("mount tmpfs on", dest))?;
    let dir = root
        .open_path(dest)
        .map_err(RootfsError::at("open", dest))?;
    for h in &hierarchies {
        let name = h.mount_point.file_name().unwrap_or_default();
        mount_in_tmpfs(&dir, name, h, flags, cgroupns)
            .map_err(RootfsError::at("mount cgroup on", &dest.join(name)))?;
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
    // One call gives the tmpfs and every hierarchy below it the mount's
    // flags (read-only, nosuid, ...), instead of a remount each.
    mount_api::set_flags(&dir, flags, MsFlags::empty(), true)
        .map_err(RootfsError::at("set the flags of", dest))
}

/// Makes whatever is already mounted at `dest` read-only, with every mount
/// below it (CVE-2023-25809). A `/sys` bound with `rbind` (as `spec
/// --rootless` makes it) brings the host's cgroup mounts there, writable
/// whatever the bind's `ro` (which is for its top mount only), and the
/// tree mounted here only covers them: a container allowed to unmount
/// (CAP_SYS_ADMIN in its user namespace) would uncover the host's
/// hierarchies, with the user's own cgroups writable. Locked mounts may
/// still be made read-only; they cannot be made writable again.
fn make_covered_read_only(root: &Root, dest: &Path) -> Result<(), RootfsError> {
    let at = match root.open_path(dest) {
        Ok(at) => at,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::at("open", dest)(e)),
    };
    if !is_mount_root(&at).map_err(RootfsError::at("stat", dest))? {
        return Ok(());
    }
    mount_api::set_flags(&at, MsFlags::MS_RDONLY, MsFlags::empty(), true)
        .map_err(RootfsError::at("make read-only the mounts under", dest))
}

/// Whether `fd` is the root of a mount (statx, Linux 5.8).
fn is_mount_root(fd: &OwnedFd) -> nix::Result<bool> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::uninit();
    // SAFETY: statx fills `st` on success; the empty path names `fd` itself.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            0,
            st.as_mut_ptr(),
        )
    };
    nix::Error::result(r)?;
    // SAFETY: statx succeeded.
    let st = unsafe { st.assume_init() };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok(st.stx_attributes_mask & bit != 0 && st.stx_attributes & bit != 0)
}

/// Mounts hierarchy `h` on a new directory `name` of the tmpfs `dir` the
/// runtime just mounted (nothing in it can be a planted symlink).
fn mount_in_tmpfs(
    dir: &OwnedFd,
    name: &OsStr,
    h: &Hierarchy,
    flags: MsFlags,
    cgroupns: bool,
) -> nix::Result<()> {
    mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755))?;
    let cname = CString::new(name.as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    if !cgroupns {
        let tree = mount_api::clone_path(h.dir, true)?;
        return mount_api::attach(&tree, dir, &cname);
    }
    let flags_at = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    let target = open_at(dir, name, flags_at, Mode::empty())?;
    mount_fresh(&target, h, flags)
}

/// A new mount of hierarchy `h` (in a cgroup namespace, rooted at its
/// cgroup). A user namespace may not mount a v1 hierarchy: there the
/// container's directory is bound, which shows the same tree.
fn mount_fresh(target: &OwnedFd, h: &Hierarchy, flags: MsFlags) -> nix::Result<()> {
    let controllers = h.controllers.join(",");
    let data = (!controllers.is_empty()).then_some(controllers.as_str());
    let fresh = mount(
        Some("cgroup"),
        fd_path(target).as_str(),
        Some(h.fstype),
        flags,
        data,
    );
    match fresh {
        Err(nix::Error::EPERM) => {
            let tree = mount_api::clone_path(h.dir, true)?;
            mount_api::attach_with_flags(&tree, target, flags, MsFlags::empty())
        }
        fresh => fresh,
    }
}

/// Mounts the one hierarchy of a host whose `/sys/fs/cgroup` it is, on `dest`.
fn mount_hierarchy(
    root: &Root,
    dest: &Path,
    h: &Hierarchy,
    flags: MsFlags,
    cgroupns: bool,
) -> Result<(), RootfsError> {
    let target = root.mkdir_all(dest, 0o755)?;
    if cgroupns {
        return mount_fresh(&target, h, flags).map_err(RootfsError::at("mount cgroup on", dest));
    }
    mount_api::clone_path(h.dir, true)
        .and_then(|tree| mount_api::attach_with_flags(&tree, &target, flags, MsFlags::empty()))
        .map_err(RootfsError::at("bind cgroup on", dest))
}
