//! Building the container's filesystem view: the rootfs bind, the `mounts`
//! entries, `/dev`, pivot_root, then masked and read-only paths.

mod cgroup_mount;
mod copy_up;
mod devices;
mod mounts;
mod options;
mod paths;
mod pivot;
mod safe_path;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

pub(crate) use cgroup_mount::CgroupView;
pub(crate) use mounts::{bind_source, binds_made_by_runtime};
pub(crate) use options::recognized as recognized_mount_options;
pub use options::{rootfs_propagation, MountOptions};
use safe_path::Root;

const NONE: Option<&str> = None;

/// A step of the filesystem setup that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RootfsError {
    #[error("cannot {op} {}: {source}", path.display())]
    At {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("/dev/null in the container is not the null device")]
    NotDevNull,
    #[error("{0}")]
    Invalid(String),
    /// The configuration asks for a mount or device that cannot be made.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Procfs(#[from] crate::procfs::ProcfsError),
}

impl RootfsError {
    pub(crate) fn at(op: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::At { op, path, source }
    }
}

/// What the mount setup needs besides the spec.
pub(crate) struct RootfsConfig<'a> {
    /// The runtime made every bind's tree (see [`binds_made_by_runtime`]).
    pub runtime_binds: bool,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub cgroups: CgroupView<'a>,
    pub cgroupns: bool,
}

/// The `rootfsPropagation` of the config, parsed.
fn propagation(spec: &Spec) -> Result<Option<MsFlags>, RootfsError> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        Some(p) => Ok(Some(options::rootfs_propagation(p).ok_or_else(|| {
            RootfsError::Invalid(format!("unknown rootfsPropagation {p:?}"))
        })?)),
        None => Ok(None),
    }
}

/// Everything before pivot_root (the moment hooks of the createRuntime and
/// createContainer stages run); runs in the init's new mount namespace.
/// `idmapped` are the trees of the idmapped bind mounts, in order (made by
/// the runtime: see `process::idmapped`).
pub(crate) fn prepare(cfg: &RootfsConfig, idmapped: Vec<OwnedFd>) -> Result<(), RootfsError> {
    let linux = cfg.spec.linux().as_ref();
    let propagation = propagation(cfg.spec)?;
    // Nothing mounted from here on may propagate back to the host. An
    // unbindable tree could not be bound to build the rootfs: it stays a
    // slave until `finalize` makes it unbindable (as crun does).
    let flags = propagation
        .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(NONE, "/", NONE, flags, NONE)
        .map_err(RootfsError::at("set propagation of", Path::new("/")))?;
    if flags.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a shared parent mount.
        make_parent_private(cfg.rootfs)?;
    }
    mount(
        Some(cfg.rootfs),
        cfg.rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(RootfsError::at("bind mount rootfs", cfg.rootfs))?;

    let root = Root::open(cfg.rootfs)?;
    let mut dev_bound = false;
    let mut idmapped = idmapped.into_iter();
    for m in cfg.spec.mounts().as_deref().unwrap_or_default() {
        mounts::mount_entry(&root, m, cfg, &mut idmapped)?;
        dev_bound |= m.destination() == Path::new("/dev")
            && m.options()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o == "bind" || o == "rbind");
    }
    if !dev_bound {
        let extra = linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default();
        let dev = devices::create_devices(&root, extra)?;
        devices::create_links(&dev)?;
    }
    tracing::debug!(rootfs = %root.path().display(), "mounts done");
    Ok(())
}

/// pivot_root (or MS_MOVE + chroot with `--no-pivot`) into the prepared rootfs.
pub(crate) fn switch_root(cfg: &RootfsConfig) -> Result<(), RootfsError> {
    if cfg.no_pivot {
        pivot::move_root(cfg.rootfs)?;
    } else {
        pivot::pivot(cfg.rootfs)?;
    }
    Ok(())
}

/// After pivot_root: sysctls, then read-only and masked paths, then the
/// read-only root (sysctls first, since `/proc/sys` is usually read-only),
/// then `rootfsPropagation`.
pub(crate) fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    crate::sysctl::apply(spec)?;
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        paths::make_readonly(Path::new(p))?;
    }
    let masked = linux.masked_paths().as_deref().unwrap_or_default();
    if !masked.is_empty() {
        let dev_null = paths::open_dev_null()?;
        let label = crate::labels::mount_label(spec);
        for p in masked {
            paths::mask(Path::new(p), &dev_null, label)?;
        }
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let typ = m.typ().as_deref().unwrap_or("");
        if opts.flags.contains(MsFlags::MS_RDONLY)
            && !opts.bind
            && typ != "bind"
            && mounts::delays_read_only(typ, m.destination())
        {
            paths::remount_readonly(m.destination())?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        paths::remount_readonly(Path::new("/"))?;
    }
    // Last: the read-only and masked paths are binds, which an unbindable
    // tree would refuse.
    if let Some(p) = propagation(spec)? {
        mount(NONE, "/", NONE, p, NONE)
            .map_err(RootfsError::at("set propagation of", Path::new("/")))?;
    }
    Ok(())
}

/// Makes the mount holding `rootfs`'s parent directory private.
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let info = crate::pseudo_file::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::Invalid(format!("read /proc/self/mountinfo: {e}")))?;
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mount_point = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(Path::new)
        .filter(|mp| parent.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
        .unwrap_or(Path::new("/"));
    mount(NONE, mount_point, NONE, MsFlags::MS_PRIVATE, NONE)
        .map_err(RootfsError::at("make private", mount_point))
}
