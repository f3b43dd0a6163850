//! The container's init process: cloned by the runtime into its new
//! namespaces, set up in [`init`], and synchronised over a [`channel`].

mod channel;
mod clone;
mod exec;
mod fds;
mod idmapped;
mod init;
mod namespaces;
mod userns;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::cgroups::{Cgroup, Hierarchies};

use channel::Channel;
pub(crate) use channel::Message;

/// The init, set up and waiting: it dies with the creating process
/// (PR_SET_PDEATHSIG) until [`Handover::complete`] tells it the container
/// is recorded, so a creator killed half-way leaves no init behind.
pub(crate) struct Handover(Channel);

impl Handover {
    /// The container's state is written: the init outlives its creator
    /// from when it closes the channel, which this waits for (the creator
    /// exiting before would kill it).
    pub(crate) fn complete(self) -> Result<(), ProcessError> {
        self.0.send(&Message::HandedOver)?;
        match self.0.recv()? {
            None => Ok(()),
            Some(_) => Err(ProcessError::Protocol),
        }
    }
}
pub(crate) use exec::{spawn_exec, ExecConfig};

/// Starting the init failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{context}: {source}")]
    Sys {
        context: &'static str,
        source: nix::Error,
    },
    /// The init reported an error during setup.
    #[error("unable to start container process: {0}")]
    InitFailed(String),
    /// `process.args[0]` does not exist in the container.
    #[error("unable to start container process: {0}")]
    ExecNotFound(String),
    #[error("container init exited before it was ready")]
    InitDied,
    #[error("unexpected message on the sync channel")]
    Protocol,
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

/// Everything the init needs, prepared by the parent before the clone.
pub(crate) struct InitConfig {
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub id: String,
    /// Connected `--console-socket`, when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    /// The exec fifo, open read-write (see [`crate::exec_fifo`]).
    pub exec_fifo: OwnedFd,
    /// The compiled `linux.seccomp` filter.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// The seccomp agent, connected when the filter notifies.
    pub seccomp_agent: Option<crate::seccomp::notify::Agent>,
    /// The host's cgroup hierarchies, as the parent found them.
    pub hierarchies: Hierarchies,
    /// Whether the runtime makes every bind mount's tree (see
    /// [`crate::rootfs::binds_made_by_runtime`]); decided before the clone,
    /// as the init's own view of its privileges differs.
    pub runtime_binds: bool,
    /// Rootless: the runtime's own cgroup, which the init stays in where
    /// the container has no directory (see [`crate::rootfs::CgroupView`]).
    pub own_cgroup: Option<Cgroup>,
}

/// Sets up the cgroup around the freshly cloned init, which waits for it
/// before entering (the systemd driver: the scope is made around the init's
/// pid).
pub(crate) type Place<'a> = Box<dyn FnOnce(Pid) -> Result<(), ProcessError> + 'a>;

impl InitConfig {
    /// The container state hooks read, with the init's host `pid`.
    fn hook_state<'a>(&'a self, status: &'a str, pid: i32) -> crate::hooks::HookState<'a> {
        crate::hooks::HookState {
            oci_version: self.spec.version(),
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: self
                .spec
                .annotations()
                .as_ref()
                .map(|a| serde_json::json!(a)),
        }
    }
}

/// Clones the init into its namespaces, runs `place` while the init makes
/// its network namespace, lets the init enter its cgroups, and waits until it
/// is set up and blocked on the exec fifo. On error the init has exited and
/// been reaped.
pub(crate) fn spawn_init(
    cfg: &InitConfig,
    cgroup: &Cgroup,
    place: Place,
) -> Result<(Pid, Handover), ProcessError> {
    let plan = namespaces::Plan::new(&cfg.spec)?;
    let cgroup_fd = cgroup.open_v2()?;
    let (parent, child) = channel::pair()?;
    let (mut parent, mut child) = (Some(parent), Some(child));
    // Only the cloned child runs the closure; the parent keeps both ends until here.
    let pid = plan.clone_with(cgroup_fd.as_ref().map(|fd| fd.as_fd()), |cloned_into| {
        parent.take();
        init::run(
            cfg,
            &plan,
            cgroup,
            cloned_into,
            child.take().expect("child end"),
        )
    })?;
    drop(child);
    let parent = parent.expect("parent end");
    let placed = plan
        .write_id_maps(pid)
        .and_then(|()| idmapped::trees(&cfg.spec, &cfg.bundle, pid, cfg.runtime_binds))
        .and_then(|trees| {
            trees
                .into_iter()
                .try_for_each(|tree| parent.send(&Message::IdmappedMount(tree)))
        })
        .and_then(|()| place(pid))
        .and_then(|()| parent.send(&Message::Placed));
    tracing::debug!(pid = pid.as_raw(), "init cloned and placed in its cgroups");
    let outcome = match placed {
        Err(e) => e,
        Ok(()) => loop {
            match parent.recv() {
                Ok(Some(Message::Ready)) => {
                    tracing::debug!(pid = pid.as_raw(), "init ready");
                    return Ok((pid, Handover(parent)));
                }
                Ok(Some(Message::RunHooks)) => {
                    match runtime_hooks(cfg, pid).and_then(|()| parent.send(&Message::HooksDone)) {
                        Ok(()) => continue,
                        Err(e) => break e,
                    }
                }
                Ok(Some(Message::Failed(text))) => break ProcessError::InitFailed(text),
                Ok(Some(Message::NotFound(text))) => break ProcessError::ExecNotFound(text),
                Ok(Some(
                    Message::HooksDone
                    | Message::Placed
                    | Message::IdmappedMount(_)
                    | Message::HandedOver,
                )) => break ProcessError::Protocol,
                Ok(None) => break ProcessError::InitDied,
                Err(e) => break e,
            }
        },
    };
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, None);
    Err(outcome)
}

/// The steps in the runtime's namespaces once the container's exist:
/// `linux.netDevices` moved in, then the createRuntime and prestart hooks.
fn runtime_hooks(cfg: &InitConfig, pid: Pid) -> Result<(), ProcessError> {
    crate::net_devices::move_in(&cfg.spec, pid)
        .map_err(|e| ProcessError::InitFailed(e.to_string()))?;
    let Some(h) = cfg.spec.hooks() else {
        return Ok(());
    };
    let state = cfg.hook_state("creating", pid.as_raw());
    for (stage, hooks) in [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
    ] {
        crate::hooks::run(stage, hooks.as_deref().unwrap_or_default(), &state)
            .map_err(|e| ProcessError::InitFailed(e.to_string()))?;
    }
    Ok(())
}
