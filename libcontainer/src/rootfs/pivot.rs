//! Making the rootfs the container's `/`.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, close, fchdir, pivot_root};

use super::RootfsError;

const NONE: Option<&str> = None;

/// `pivot_root(".", ".")` inside the rootfs, then lazily detaches the old root
/// stacked underneath, so nothing of the host's tree stays reachable.
pub(crate) fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |op| RootfsError::at(op, rootfs);
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).map_err(err("open /"))?;
    let new = open(rootfs, flags, Mode::empty()).map_err(err("open"))?;
    let result = (|| {
        fchdir(new).map_err(err("chdir to"))?;
        pivot_root(".", ".").map_err(err("pivot_root to"))?;
        fchdir(old).map_err(err("chdir to old root of"))?;
        // Keep unmount events of the old root from reaching the host.
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .map_err(err("make old root slave"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(err("detach old root"))?;
        chdir("/").map_err(err("chdir to /"))
    })();
    let _ = close(old);
    let _ = close(new);
    result
}

/// The `--no-pivot` path: move the rootfs mount onto `/` and chroot into it.
/// Only for roots where pivot_root is impossible (e.g. an initramfs).
pub(crate) fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |op| RootfsError::at(op, rootfs);
    chdir(rootfs).map_err(err("chdir to"))?;
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE).map_err(err("move mount"))?;
    chroot(".").map_err(err("chroot to"))?;
    chdir("/").map_err(err("chdir to /"))
}
