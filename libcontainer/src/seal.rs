//! CVE-2019-5736: the runtime binary must not be writable from inside a container.
//!
//! A container process can reach the runtime's executable through
//! `/proc/<init pid>/exe` while the init still runs it (or by making the init
//! exec `/proc/self/exe`), and write to it once the runtime exits.
//! [`ensure_sealed`] re-executes the runtime so that link points at a file
//! that cannot be written:
//!
//! 1. preferably the binary itself seen through a detached, read-only bind
//!    mount (`open_tree` + `mount_setattr(MOUNT_ATTR_RDONLY)`): no copy, the
//!    page cache is shared between runs, and the mount is in no namespace, so
//!    nothing can remount it writable from a path (writes give EROFS);
//! 2. else a sealed memfd copy (runc's and crun's classic answer), which
//!    costs a multi-MiB copy on every start.
//!
//! A binary already on a read-only mount or in a sealed memfd is left as is
//! (crun skips the copy in the same cases).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

use nix::mount::MsFlags;

use crate::mount_api;

/// Seals that make a memfd immutable.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Copying or re-executing the runtime failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot re-execute from a sealed copy ({step}): {source}")]
pub struct SealError {
    step: &'static str,
    source: std::io::Error,
}

fn err(step: &'static str) -> impl FnOnce(std::io::Error) -> SealError {
    move |source| SealError { step, source }
}

/// Whether the running executable cannot be written: a sealed memfd, or a
/// file on a read-only mount.
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| {
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        let sealed = seals >= 0 && seals & SEALS == SEALS;
        sealed
            || nix::sys::statvfs::fstatvfs(&f)
                .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    })
}

/// A detached read-only bind mount of the running binary, as an fd to exec.
fn readonly_mount_of_self() -> std::io::Result<File> {
    let path = std::fs::read_link("/proc/self/exe")?;
    let tree = mount_api::clone_path(&path, false)?;
    mount_api::set_flags(&tree, MsFlags::MS_RDONLY, MsFlags::empty(), false)?;
    Ok(File::from(tree))
}

fn exec_fd(fd: &File) -> SealError {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).expect("argv has no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("environ has no NUL")
        })
        .collect();
    let argv: Vec<*mut libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(Some(std::ptr::null_mut()))
        .collect();
    let envp: Vec<*mut libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr().cast_mut())
        .chain(Some(std::ptr::null_mut()))
        .collect();
    // SAFETY: NULL-terminated arrays of pointers into live CStrings.
    unsafe {
        libc::execveat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    err("execveat")(std::io::Error::last_os_error())
}

/// Re-executes the current program (same argv and environment) from a sealed
/// memfd copy of itself, unless it already runs from one. Call it first thing
/// in `main`, before any thread exists, in every program that creates
/// containers. Returns only when already sealed, or with an error.
pub fn ensure_sealed() -> Result<(), SealError> {
    if is_sealed() {
        return Ok(());
    }
    if let Ok(tree) = readonly_mount_of_self() {
        // Only returns if the exec failed; the memfd copy is the fallback.
        let e = exec_fd(&tree);
        tracing::debug!("{e}");
    }
    let mut exe = File::open("/proc/self/exe").map_err(err("open /proc/self/exe"))?;
    let name = CString::new("hull").expect("no NUL");
    // SAFETY: memfd_create with a valid name; the fd is owned by `memfd` below.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(err("memfd_create")(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd owned by nobody else.
    let mut memfd = unsafe { File::from_raw_fd(fd) };
    std::io::copy(&mut exe, &mut memfd).map_err(err("copy executable"))?;
    // SAFETY: fcntl on an fd we own.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(err("seal")(std::io::Error::last_os_error()));
    }
    Err(exec_fd(&memfd))
}
