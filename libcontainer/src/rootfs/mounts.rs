//! Mounting the `mounts` entries of the spec inside the rootfs.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use oci_spec::runtime::Mount;

use super::options::MountOptions;
use super::safe_path::{fd_path, Root};
use super::{cgroup_mount, copy_up};
use super::{RootfsConfig, RootfsError};
use crate::{labels, mount_api};

const NONE: Option<&str> = None;

/// The host path a bind mount entry binds. Relative sources are taken from
/// the bundle directory, as runc does.
pub(crate) fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf, RootfsError> {
    match m.source() {
        Some(s) if s.is_absolute() => Ok(s.clone()),
        Some(s) => Ok(bundle.join(s)),
        None => Err(RootfsError::Config(format!(
            "bind mount on {} has no source",
            m.destination().display()
        ))),
    }
}

/// Mounts one entry of `mounts` below `root`; an idmapped bind attaches the
/// next of the `idmapped` trees the runtime made.
pub(crate) fn mount_entry(
    root: &Root,
    m: &Mount,
    cfg: &RootfsConfig,
    idmapped: &mut impl Iterator<Item = OwnedFd>,
) -> Result<(), RootfsError> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        let label = labels::mount_label(cfg.spec);
        return cgroup_mount::mount_cgroup(root, dest, &opts, &cfg.cgroups, cfg.cgroupns, label);
    }
    if opts.bind || typ == "bind" {
        // A bind takes no filesystem data: an option hull does not know
        // would be silently lost.
        if !opts.data.is_empty() {
            return Err(RootfsError::Config(format!(
                "unknown mount option {:?} for the bind mount on {}",
                opts.data,
                dest.display()
            )));
        }
        let source = bind_source(m, cfg.bundle)?;
        let tree = match opts.idmap.is_some() || cfg.runtime_binds {
            true => Some(idmapped.next().ok_or_else(|| {
                RootfsError::Invalid(format!("no bind tree for {}", dest.display()))
            })?),
            false => None,
        };
        bind(root, &source, dest, &opts, tree)?;
    } else {
        if typ.is_empty() {
            return Err(RootfsError::Config(format!(
                "mount on {} has no type",
                dest.display()
            )));
        }
        if typ == "proc" || typ == "sysfs" {
            refuse_unless_directory(root, dest, typ)?;
        }
        // proc, sysfs and friends only ever go on a real directory (CVE-2019-16884).
        let target = root.mkdir_all(dest, 0o755)?;
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        let data = match typ {
            // The kernel labels these itself (runc leaves them out too).
            "proc" | "sysfs" | "mqueue" => opts.data.clone(),
            _ => labels::with_mount_label(&opts.data, labels::mount_label(cfg.spec)),
        };
        let data = (!data.is_empty()).then_some(data.as_str());
        let mut flags = opts.flags - MsFlags::MS_REMOUNT;
        if delays_read_only(typ, dest) {
            // /dev gets its nodes and a tmpfs its files first (see `finalize`).
            flags -= MsFlags::MS_RDONLY;
        }
        // The image's directory, opened before the tmpfs covers it.
        let copy_from = match opts.copy_up && typ == "tmpfs" {
            true => Some(copy_up::open_source(&target).map_err(RootfsError::at("open", dest))?),
            false => None,
        };
        match mount(
            Some(&source),
            fd_path(&target).as_str(),
            Some(typ),
            flags,
            data,
        ) {
            // A user namespace may mount sysfs only with a network namespace
            // of its own; without one the host's is bound instead (as runc does).
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                mount_api::clone_path(Path::new("/sys"), true).and_then(|tree| {
                    mount_api::attach_with_flags(&tree, &target, flags, opts.cleared)
                })
            }
            mounted => mounted,
        }
        .map_err(RootfsError::at("mount", dest))?;
        if let Some(label) = labels::mount_label(cfg.spec).filter(|_| typ == "mqueue") {
            // Labelled as a file, like runc does (the option is refused there).
            root.open_path(dest)
                .and_then(|mounted| labels::set_file_label(&mounted, label))
                .map_err(RootfsError::at("set the mount label of", dest))?;
        }
        if let Some(src) = copy_from {
            let tmpfs = root
                .open_path(dest)
                .and_then(|at| copy_up::open_source(&at))
                .map_err(RootfsError::at("open", dest))?;
            copy_up::copy_tree(&src, &tmpfs)
                .map_err(RootfsError::at("copy the image's files into", dest))?;
        }
    }
    if opts.recursive_attrs != (0, 0) {
        let mounted = root
            .open_path(dest)
            .map_err(RootfsError::at("open", dest))?;
        mount_api::set_attrs_recursive(&mounted, opts.recursive_attrs)
            .map_err(RootfsError::at("set recursive attributes of", dest))?;
    }
    set_propagation(root, dest, &opts.propagation)
}

/// Refuses to mount proc or sysfs on `dest` if it exists in the rootfs as
/// anything but a directory: a symlink (`/proc -> /some/path`) would move
/// the mount elsewhere and leave `/proc` to the image (CVE-2019-16884; runc's
/// "must be mounted on ordinary directory").
fn refuse_unless_directory(root: &Root, dest: &Path, typ: &str) -> Result<(), RootfsError> {
    let found = match root.open_in(dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::at("open", dest)(e)),
    };
    let st = fstat(found.as_raw_fd()).map_err(RootfsError::at("stat", dest))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        return Ok(());
    }
    Err(RootfsError::Invalid(format!(
        "cannot mount {typ} on {}: filesystem {typ:?} must be mounted on ordinary directory \
         (it is a symlink or file in the rootfs)",
        dest.display()
    )))
}

/// Bind-mounts host path `source` on `dest` inside `root` with the per-mount
/// flags (ro, nosuid, ...) set or cleared as the options say; flags not named
/// stay as the source has them (as runc 1.2 does). An idmapped `tree` of
/// `source` already has its flags, and is only attached.
pub(crate) fn bind(
    root: &Root,
    source: &Path,
    dest: &Path,
    opts: &MountOptions,
    tree: Option<OwnedFd>,
) -> Result<(), RootfsError> {
    let is_dir = match &tree {
        Some(tree) => nix::sys::stat::fstat(tree.as_raw_fd())
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .map_err(RootfsError::at("stat bind source", source))?,
        None => std::fs::metadata(source)
            .map_err(|e| {
                RootfsError::at("stat bind source", source)(nix::Error::from_raw(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))
            })?
            .is_dir(),
    };
    let target = if is_dir {
        root.mkdir_all(dest, 0o755)?
    } else {
        root.ensure_file(dest)?
    };
    match tree {
        Some(tree) => mount_api::attach(&tree, &target, c""),
        None => mount_api::clone_path(source, opts.recursive).and_then(|tree| {
            mount_api::attach_with_flags(&tree, &target, opts.flags, opts.cleared)
        }),
    }
    .map_err(RootfsError::at("bind mount on", dest))
}

fn set_propagation(root: &Root, dest: &Path, changes: &[MsFlags]) -> Result<(), RootfsError> {
    for &p in changes {
        let mounted = root
            .open_path(dest)
            .map_err(RootfsError::at("open", dest))?;
        mount(NONE, fd_path(&mounted).as_str(), NONE, p, NONE)
            .map_err(RootfsError::at("set propagation of", dest))?;
    }
    Ok(())
}

/// Whether the runtime opens every bind mount's source itself and hands the
/// init the detached trees, not only the idmapped ones: in a user namespace
/// the container's root may not reach a source the runtime can (a 0700 host
/// directory), so runc opens them before the init enters it. A rootless
/// runtime (an unprivileged user, or root of a user namespace of its own)
/// may not clone the host's mount trees and binds from the init.
pub(crate) fn binds_made_by_runtime(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        })
        && !crate::rootless::euid_is_unprivileged()
        && !crate::rootless::in_child_user_namespace()
}

/// Whether a read-only mount of type `typ` on `dest` is mounted writable and
/// made read-only only in `rootfs::finalize`, as runc does: `/dev` still
/// gets its nodes, `/dev/pts` and `/dev/shm` their mount points, a tmpfs
/// its copied-up files.
pub(crate) fn delays_read_only(typ: &str, dest: &Path) -> bool {
    typ == "tmpfs" || dest == Path::new("/dev")
}
