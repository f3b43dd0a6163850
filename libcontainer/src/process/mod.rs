//! The container's processes. The runtime's side (this module, [`exec`])
//! clones the init into its namespaces, places it in its cgroups and waits
//! over the sync [`channel`]; everything that runs inside the new process
//! until `execve` (filesystem, identity, capabilities, rlimits, console,
//! the wait for `start`) is under [`init`], which `exec`'d processes reuse
//! for their last steps. The two sides share only the channel's messages
//! and [`InitError`].

mod channel;
mod clone;
mod error;
mod exec;
mod idmapped;
mod init;
mod namespaces;
mod nsfile;
mod userns;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::cgroups::{Cgroup, Hierarchies, Placement};

use channel::{Channel, Message};
pub use error::{InitError, InitStep, ProcessError};
pub(crate) use exec::{spawn_exec, ExecConfig};

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

/// Clones the init into its namespaces, places it in its cgroups while it
/// makes its network namespace, lets it enter them, and waits until it is
/// set up and blocked on the exec fifo. On error the init has exited and
/// been reaped; [`Placement::made`] says what is left to remove.
pub(crate) fn spawn_init(
    cfg: &InitConfig,
    placement: &mut Placement,
) -> Result<(Pid, Handover), ProcessError> {
    let plan = namespaces::Plan::new(&cfg.spec)?;
    let for_init = placement.cgroup().clone();
    let cgroup_fd = for_init.open_v2()?;
    let (parent, child) = channel::pair()?;
    let (mut parent, mut child) = (Some(parent), Some(child));
    // Only the cloned child runs the closure; the parent keeps both ends until here.
    let pid = plan.clone_with(cgroup_fd.as_ref().map(|fd| fd.as_fd()), |cloned_into| {
        parent.take();
        init::run(
            cfg,
            &plan,
            &for_init,
            cloned_into,
            child.take().expect("child end"),
        )
    })?;
    drop(child);
    let parent = parent.expect("parent end");
    let resources = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref());
    let placed = plan
        .write_id_maps(pid)
        .and_then(|()| idmapped::trees(&cfg.spec, &cfg.bundle, pid, cfg.runtime_binds))
        .and_then(|trees| {
            trees
                .into_iter()
                .try_for_each(|tree| parent.send(&Message::IdmappedMount(tree)))
        })
        .and_then(|()| Ok(placement.around_init(pid, &cfg.id, &cfg.hierarchies, resources)?))
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
                Ok(Some(Message::Failed(e))) => break e.into(),
                Ok(Some(
                    Message::HooksDone
                    | Message::Placed
                    | Message::IdmappedMount(_)
                    | Message::HandedOver,
                )) => break ProcessError::Protocol,
                Ok(None) => break died(placement.cgroup()),
                Err(e) => break e,
            }
        },
    };
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, None);
    Err(outcome)
}

/// Why the init died without a word: the OOM killer, if its memory cgroup
/// counted a kill.
fn died(cgroup: &Cgroup) -> ProcessError {
    match crate::cgroups::oom::oom_killed(cgroup) {
        Some(oom) => ProcessError::OomKilled { limit: oom.limit },
        None => ProcessError::InitDied,
    }
}

/// The steps in the runtime's namespaces once the container's exist:
/// `linux.netDevices` moved in, then the createRuntime and prestart hooks.
fn runtime_hooks(cfg: &InitConfig, pid: Pid) -> Result<(), ProcessError> {
    crate::net_devices::move_in(&cfg.spec, pid)?;
    let Some(h) = cfg.spec.hooks() else {
        return Ok(());
    };
    let state = cfg.hook_state("creating", pid.as_raw());
    for (stage, hooks) in [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
    ] {
        crate::hooks::run(stage, hooks.as_deref().unwrap_or_default(), &state)?;
    }
    Ok(())
}
