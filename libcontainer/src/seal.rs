//! CVE-2019-5736: the runtime binary must not be writable from inside a container.
//!
//! A container process can reach the runtime's executable through
//! `/proc/<init pid>/exe` while the init still runs it, and write to it once
//! the runtime exits. [`ensure_sealed`] re-executes the runtime from a sealed
//! memfd copy, so that link points at an immutable anonymous file instead of
//! the binary on disk.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

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

/// Whether the running executable is already a sealed memfd.
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| {
        // SAFETY: fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        seals >= 0 && seals & SEALS == SEALS
    })
}

/// Re-executes the current program (same argv and environment) from a sealed
/// memfd copy of itself, unless it already runs from one. Call it first thing
/// in `main`, before any thread exists, in every program that creates
/// containers. Returns only when already sealed, or with an error.
pub fn ensure_sealed() -> Result<(), SealError> {
    if is_sealed() {
        return Ok(());
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
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(Some(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(Some(std::ptr::null()))
        .collect();
    // SAFETY: NULL-terminated arrays of pointers into live CStrings.
    unsafe { libc::fexecve(fd, argv.as_ptr(), envp.as_ptr()) };
    Err(err("fexecve")(std::io::Error::last_os_error()))
}
