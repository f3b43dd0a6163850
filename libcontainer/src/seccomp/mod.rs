//! `linux.seccomp` in pure Rust: validation, BPF generation ([`generate`]),
//! a compiled-filter cache, installation with the seccomp(2) syscall (so
//! no_new_privs is only set when the config asks), and the notify listener
//! hand-off to a seccomp agent (runc's protocol).

mod arch;
mod bpf;
mod cache;
mod generate;
pub mod notify;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};

pub use arch::{Arch, SUPPORTED as SUPPORTED_ARCHS};
pub use bpf::SockFilter;
pub use generate::{action_value, compile};

/// A profile that cannot be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
    #[error("seccomp filter too large: {0}")]
    TooLarge(String),
    #[error("cannot install the seccomp filter: {0}")]
    Install(std::io::Error),
    #[error("seccomp notify: {0}")]
    Notify(String),
}

const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled filter ready to install in the init.
#[derive(Debug, Clone)]
pub struct Filter {
    pub program: Vec<SockFilter>,
    /// seccomp(2) flags, including NEW_LISTENER when the profile notifies.
    pub flags: u32,
}

impl Filter {
    pub fn notifies(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }
}

fn uses_notify(profile: &LinuxSeccomp) -> bool {
    profile
        .syscalls()
        .iter()
        .flatten()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Rejects what runc rejects, before any container process exists.
pub fn validate(profile: &LinuxSeccomp) -> Result<(), SeccompError> {
    let invalid = |m: String| Err(SeccompError::Invalid(m));
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return invalid("SCMP_ACT_NOTIFY cannot be the default action".into());
    }
    for s in profile.syscalls().iter().flatten() {
        if s.names().is_empty() {
            return invalid("a syscalls entry has no names".into());
        }
        if s.names().iter().any(|n| n.is_empty()) {
            return invalid(format!("empty syscall name in {:?}", s.names()));
        }
        // The runtime hands the listener over with sendmsg under the filter
        // (runc: with write); a notified send would wait for itself.
        if s.action() == LinuxSeccompAction::ScmpActNotify {
            if let Some(n) = s.names().iter().find(|n| *n == "write" || *n == "sendmsg") {
                return invalid(format!(
                    "SCMP_ACT_NOTIFY cannot be used for the {n} syscall"
                ));
            }
        }
        for a in s.args().iter().flatten() {
            if a.index() > 5 {
                return invalid(format!(
                    "argument index {} of {:?} is above 5",
                    a.index(),
                    s.names()
                ));
            }
        }
    }
    let notify = uses_notify(profile);
    if notify && profile.listener_path().is_none() {
        return invalid("SCMP_ACT_NOTIFY needs listenerPath".into());
    }
    if !notify
        && profile
            .flags()
            .iter()
            .flatten()
            .any(|f| *f == LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv)
    {
        return invalid(
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule".into(),
        );
    }
    Ok(())
}

/// The filter of a container's `linux.seccomp`, if it has one, compiled
/// or taken from the cache in the state root `root`.
pub(crate) fn for_container(
    spec: &oci_spec::runtime::Spec,
    root: &Path,
) -> Result<Option<Filter>, SeccompError> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    prepare(profile, Some(&root.join(".cache/seccomp"))).map(Some)
}

/// The connection to the seccomp agent of `spec`'s profile when `filter`
/// notifies, made before the process is cloned (see [`notify`]).
pub(crate) fn agent_for(
    spec: &oci_spec::runtime::Spec,
    filter: Option<&Filter>,
    id: &str,
    bundle: &Path,
    status: &str,
) -> Result<Option<notify::Agent>, SeccompError> {
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let (Some(profile), Some(true)) = (profile, filter.map(Filter::notifies)) else {
        return Ok(None);
    };
    let path = profile
        .listener_path()
        .as_ref()
        .ok_or_else(|| SeccompError::Invalid("SCMP_ACT_NOTIFY needs listenerPath".into()))?;
    let state = notify::AgentState {
        oci_version: spec.version(),
        id,
        status,
        bundle,
        metadata: profile.listener_metadata().as_deref(),
        annotations: spec.annotations().as_ref(),
    };
    notify::Agent::connect(path, &state).map(Some)
}

/// Validates and compiles `profile`, reusing a cached program under
/// `cache_dir` when the same profile was compiled before.
pub fn prepare(profile: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Filter, SeccompError> {
    validate(profile)?;
    let program = match cache_dir {
        Some(dir) => cache::load_or_compile(dir, profile)?,
        None => compile(profile)?,
    };
    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= FILTER_FLAGS
            .iter()
            .find(|(flag, ..)| flag == f)
            .map_or(0, |&(_, _, bit)| bit);
    }
    if uses_notify(profile) {
        flags |= FLAG_NEW_LISTENER;
    }
    Ok(Filter { program, flags })
}

/// The filter flags a profile may name: the flag, its name, its seccomp(2) bit.
const FILTER_FLAGS: [(LinuxSeccompFilterFlag, &str, u32); 4] = [
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        "SECCOMP_FILTER_FLAG_TSYNC",
        FLAG_TSYNC,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        "SECCOMP_FILTER_FLAG_LOG",
        FLAG_LOG,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        FLAG_SPEC_ALLOW,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// The names of the filter flags hull knows, and of those this kernel
/// takes: seccomp(2) with a null program fails with EFAULT, not EINVAL,
/// for a flag the kernel knows (runc probes the same way).
pub fn filter_flags() -> (Vec<&'static str>, Vec<&'static str>) {
    let known = FILTER_FLAGS.iter().map(|&(_, name, _)| name).collect();
    let supported = FILTER_FLAGS
        .iter()
        .filter(|&&(_, _, bit)| {
            // WAIT_KILLABLE_RECV is only valid with a listener.
            let bit = match bit {
                FLAG_WAIT_KILLABLE_RECV => bit | FLAG_NEW_LISTENER,
                _ => bit,
            };
            // SAFETY: a null program is never read: the call fails before.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    bit,
                    std::ptr::null::<libc::c_void>(),
                )
            };
            r == -1 && nix::Error::last() == nix::Error::EFAULT
        })
        .map(|&(_, name, _)| name)
        .collect();
    (known, supported)
}

/// Installs the filter on the calling thread with seccomp(2); returns the
/// notify listener fd when the filter has one. Needs no_new_privs or
/// CAP_SYS_ADMIN, and sets neither.
pub fn install(filter: &Filter) -> Result<Option<OwnedFd>, SeccompError> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const SockFilter,
    }
    let prog = SockFprog {
        len: filter.program.len() as u16,
        filter: filter.program.as_ptr(),
    };
    // SAFETY: `prog` points at a live program of `len` instructions.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            filter.flags,
            &prog as *const SockFprog,
        )
    };
    if r < 0 {
        return Err(SeccompError::Install(std::io::Error::last_os_error()));
    }
    // SAFETY: with NEW_LISTENER the syscall returns a new fd owned by us.
    Ok(filter
        .notifies()
        .then(|| unsafe { OwnedFd::from_raw_fd(r as i32) }))
}

#[cfg(test)]
mod tests;
