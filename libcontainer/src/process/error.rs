//! What can go wrong starting a container process: [`ProcessError`] on the
//! runtime's side, and [`InitError`], the init's own failures as its parent
//! receives them: which step of the setup failed and why, serialised over
//! the sync channel so the parent reports exactly that (a text alone loses
//! the cause, and a long one may not fit a datagram).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::SpecError;

/// Starting the init (or an `exec`'d process) failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{context}: {source}")]
    Sys {
        context: &'static str,
        source: nix::Error,
    },
    /// The init reported that a step of its setup failed.
    #[error("unable to start container process: {0}")]
    Init(InitError),
    /// A host network device (`linux.netDevices`) could not be moved in.
    #[error("unable to start container process: {0}")]
    NetDevice(#[from] crate::net_devices::NetDeviceError),
    /// A createRuntime or prestart hook failed.
    #[error("unable to start container process: {0}")]
    Hook(#[from] crate::hooks::HookError),
    /// The init died before it was ready without saying why.
    #[error("container init exited before it was ready")]
    InitDied,
    /// The init was OOM-killed during its setup: the memory limit leaves it
    /// too little to start.
    #[error(
        "container init was OOM-killed before it was ready: the memory limit{} is too low for it to start",
        limit.map(|l| format!(" of {l} bytes")).unwrap_or_default()
    )]
    OomKilled { limit: Option<u64> },
    #[error("unexpected message on the sync channel")]
    Protocol,
    /// The configuration asks for what cannot be done (reported as a [`SpecError`]).
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot open namespace {}: {source}", path.display())]
    Namespace { path: PathBuf, source: nix::Error },
    /// A bind mount's tree (`kind` "bind" or "idmapped") could not be prepared.
    #[error("unable to start container process: {kind} mount on {}: {reason}", destination.display())]
    Mount {
        kind: &'static str,
        destination: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    UnmappableIds(#[from] crate::rootless::UnmappableIds),
    #[error("cannot write the id map {path}: {source}")]
    IdMap {
        path: String,
        source: std::io::Error,
    },
}

impl ProcessError {
    pub(crate) fn sys(context: &'static str) -> impl FnOnce(nix::Error) -> Self {
        move |source| Self::Sys { context, source }
    }
}

impl From<InitError> for ProcessError {
    /// What the init found wrong with the configuration is a [`SpecError`].
    fn from(e: InitError) -> Self {
        match e {
            InitError::Config(text) => Self::Spec(SpecError::Invalid(text)),
            e => Self::Init(e),
        }
    }
}

/// A step of a container process's setup, in the order the init runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitStep {
    CpuAffinity,
    NetworkNamespace,
    Cgroup,
    UserNamespace,
    CgroupNamespace,
    JoinNamespace,
    TimeNamespace,
    Session,
    Keyring,
    Hostname,
    Rootfs,
    Hooks,
    Console,
    Rlimits,
    Scheduling,
    OomScoreAdj,
    CloseFds,
    Cwd,
    Labels,
    Seccomp,
    Capabilities,
    User,
    NoNewPrivileges,
}

/// Why the init (or an `exec`'d process) did not reach `execve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum InitError {
    /// A step failed; `errno` is its system call's error, where there was one.
    #[error("{message}")]
    Step {
        step: InitStep,
        errno: Option<i32>,
        message: String,
    },
    /// `process.args[0]` is not an executable in the container (runc's
    /// text; `run` then exits 127).
    #[error("{0}")]
    NotFound(String),
    /// setgroups(2) refused `process.user.additionalGids`.
    #[error(
        "cannot set {count} additional gids: setgroups: {}{}",
        nix::Error::from_raw(*errno),
        limit.filter(|l| *count as u64 > *l).map(|l| format!(
            " (more than the limit of {l}, /proc/sys/kernel/ngroups_max)"
        )).unwrap_or_default()
    )]
    Setgroups {
        count: usize,
        limit: Option<u64>,
        errno: i32,
    },
    /// The configuration asks for something the init cannot do; the parent
    /// reports it as a configuration error.
    #[error("{0}")]
    Config(String),
}

impl InitError {
    /// `step` failed with `e`: its text is kept, its errno found among its causes.
    pub(crate) fn at<E: std::error::Error + 'static>(step: InitStep) -> impl FnOnce(E) -> Self {
        move |e| Self::Step {
            step,
            errno: errno_of(&e),
            message: e.to_string(),
        }
    }

    /// Like [`Self::at`], the text prefixed with `context`, what the step did.
    pub(crate) fn context<E: std::error::Error + 'static>(
        step: InitStep,
        context: impl std::fmt::Display,
    ) -> impl FnOnce(E) -> Self {
        move |e| Self::Step {
            step,
            errno: errno_of(&e),
            message: format!("{context}: {e}"),
        }
    }

    /// `step` failed for a reason with no error value of its own.
    pub(crate) fn other(step: InitStep, message: impl Into<String>) -> Self {
        Self::Step {
            step,
            errno: None,
            message: message.into(),
        }
    }

    /// The same error with its texts cut to `max` bytes each, so it fits one
    /// datagram of the sync channel.
    pub(crate) fn shortened(mut self, max: usize) -> Self {
        let cut = |s: &mut String| {
            if s.len() > max {
                let mut end = max;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push_str("...");
            }
        };
        match &mut self {
            Self::Step { message: s, .. } | Self::NotFound(s) | Self::Config(s) => cut(s),
            Self::Setgroups { .. } => {}
        }
        self
    }
}

/// The errno of the first cause of `e` that carries one.
fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(errno) = e.downcast_ref::<nix::Error>() {
            return Some(*errno as i32);
        }
        if let Some(code) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error())
        {
            return Some(code);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot frob: {source}")]
    struct Frob {
        source: nix::Error,
    }

    #[test]
    fn the_errno_is_found_among_the_causes() {
        let e = InitError::at(InitStep::Rlimits)(Frob {
            source: nix::Error::EPERM,
        });
        assert_eq!(
            e,
            InitError::Step {
                step: InitStep::Rlimits,
                errno: Some(libc::EPERM),
                message: "cannot frob: EPERM: Operation not permitted".into(),
            }
        );
    }

    #[test]
    fn setgroups_names_the_count_and_the_limit() {
        let e = InitError::Setgroups {
            count: 70_000,
            limit: Some(65_536),
            errno: libc::EINVAL,
        };
        let text = e.to_string();
        assert!(text.contains("setgroups"), "{text}");
        assert!(text.contains("70000"), "{text}");
        assert!(
            text.contains("65536, /proc/sys/kernel/ngroups_max"),
            "{text}"
        );
    }

    #[test]
    fn shortened_keeps_char_boundaries() {
        let e = InitError::Config("é".repeat(10)).shortened(5);
        assert_eq!(e, InitError::Config("éé...".into()));
    }
}
