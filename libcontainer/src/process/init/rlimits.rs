//! `process.rlimits`.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

/// An rlimit the kernel refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot set rlimit {name} to soft {soft} hard {hard}: {source}")]
pub(crate) struct RlimitError {
    name: String,
    soft: u64,
    hard: u64,
    source: nix::Error,
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Applies every rlimit of the config to the calling process.
pub(crate) fn apply(limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for l in limits {
        let lim = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: plain syscall on a stack value.
        if unsafe { libc::setrlimit(resource(l.typ()), &lim) } != 0 {
            return Err(RlimitError {
                name: l.typ().to_string(),
                soft: l.soft(),
                hard: l.hard(),
                source: nix::Error::last(),
            });
        }
    }
    Ok(())
}
