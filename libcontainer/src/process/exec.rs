//! A further process in a running container (`exec`): cloned by the runtime,
//! it joins the init's cgroups and namespaces, takes on the process's user,
//! capabilities, rlimits and the container's seccomp filter, then `execve`s.
//!
//! The pid namespace is joined by the parent around the clone (setns on a
//! pid namespace only affects later children); the cgroups are entered while
//! the host's cgroup filesystem is still visible, and the mount namespace is
//! joined last, which also moves root and cwd into the container.

use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{setsid, Pid};
use oci_spec::runtime::Process;

use super::channel::{self, Channel, Message};
use super::error::{InitError, InitStep, ProcessError};
use super::init::{self, apply_rlimits, become_process, setup_console, Exec};
use super::namespaces;
use super::nsfile::namespace_of;
use super::userns::clone_from_middle;
use crate::cgroups::Cgroup;
use crate::rootless::euid_is_unprivileged;
use crate::seccomp::notify::Agent;
use crate::seccomp::Filter;

/// Everything the exec'd process needs, prepared by the parent.
pub(crate) struct ExecConfig {
    /// The container's init, whose namespaces are joined.
    pub init: Pid,
    pub process: Process,
    /// Connected `--console-socket`, when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    /// The container's seccomp filter.
    pub seccomp: Option<Filter>,
    /// The seccomp agent, connected when the filter notifies.
    pub seccomp_agent: Option<Agent>,
    pub preserve_fds: u32,
}

/// Namespaces in the order they are joined: the user namespace first, which
/// gives the capabilities to join the others it owns; the mount namespace last.
const NAMESPACES: [(&str, libc::c_int); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

/// Clones the process into the container and waits until it is about to
/// `execve`. Returns its pid; the caller is its parent. On error it has
/// exited and been reaped.
pub(crate) fn spawn_exec(cfg: &ExecConfig, cgroup: Option<&Cgroup>) -> Result<Pid, ProcessError> {
    let mut joins = NAMESPACES
        .iter()
        .filter_map(|&(name, flag)| namespace_of(cfg.init, name, flag).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let pid_ns = namespace_of(cfg.init, "pid", libc::CLONE_NEWPID)?;
    // Rootless, the container's pid namespace can only be joined from inside
    // its user namespace: an intermediate process joins both and clones the
    // process (which then has the user namespace already).
    let middle_user = match joins.first() {
        Some((f, _)) if *f == CloneFlags::CLONE_NEWUSER && euid_is_unprivileged() => {
            Some(joins.remove(0).1)
        }
        _ => None,
    };
    let cgroup_fd = match cgroup {
        Some(cg) => cg.open_v2()?,
        None => None,
    };
    let (parent, child) = channel::pair()?;
    let (mut parent, mut child) = (Some(parent), Some(child));
    let process = |cloned_into| {
        parent.take();
        run(
            cfg,
            &joins,
            cgroup,
            cloned_into,
            child.take().expect("child end"),
        )
    };
    let pid = match &middle_user {
        Some(user) => {
            let early: Vec<_> = pid_ns.iter().map(|(f, fd)| (*f, fd.as_fd())).collect();
            clone_from_middle(Some(user.as_fd()), &early, CloneFlags::empty(), process)?
        }
        None => namespaces::clone_in(
            pid_ns.as_ref().map(|(_, fd)| fd.as_fd()),
            CloneFlags::empty(),
            cgroup_fd.as_ref().map(|fd| fd.as_fd()),
            process,
        )?,
    };
    drop(child);
    let parent = parent.expect("parent end");
    let outcome = match parent.recv() {
        Ok(Some(Message::Ready)) => return Ok(pid),
        Ok(Some(Message::Failed(e))) => e.into(),
        Ok(Some(_)) => ProcessError::Protocol,
        Ok(None) => ProcessError::InitDied,
        Err(e) => e,
    };
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, None);
    Err(outcome)
}

/// Runs in the cloned child; returns the exit code if `execve` is never reached.
fn run(
    cfg: &ExecConfig,
    joins: &[(CloneFlags, OwnedFd)],
    cgroup: Option<&Cgroup>,
    cloned_into: bool,
    chan: Channel,
) -> i32 {
    init::record_host_pid();
    let exec = match prepare(cfg, joins, cgroup, cloned_into) {
        Ok(exec) => exec,
        Err(e) => {
            let _ = chan.send(&Message::Failed(e));
            return 1;
        }
    };
    if chan.send(&Message::Ready).is_err() {
        return 1;
    }
    drop(chan);
    exec.exec(
        cfg.preserve_fds,
        cfg.seccomp_agent.as_ref(),
        cfg.init.as_raw(),
    )
}

fn prepare<'a>(
    cfg: &'a ExecConfig,
    joins: &[(CloneFlags, OwnedFd)],
    cgroup: Option<&Cgroup>,
    cloned_into: bool,
) -> Result<Exec<'a>, InitError> {
    crate::sched::set_affinity(cfg.process.exec_cpu_affinity().as_ref(), true)
        .map_err(InitError::at(InitStep::CpuAffinity))?;
    if let Some(cg) = cgroup {
        cg.enter(cloned_into)
            .map_err(InitError::at(InitStep::Cgroup))?;
    }
    for (flag, fd) in joins {
        setns(fd.as_fd(), *flag).map_err(InitError::context(
            InitStep::JoinNamespace,
            "cannot join namespace",
        ))?;
    }
    let process = &cfg.process;
    if let Some(socket) = &cfg.console {
        setsid().map_err(InitError::context(InitStep::Session, "setsid"))?;
        setup_console(socket, process).map_err(InitError::at(InitStep::Console))?;
    }
    apply_rlimits(process.rlimits().as_deref().unwrap_or_default())
        .map_err(InitError::at(InitStep::Rlimits))?;
    let agent = cfg.seccomp_agent.as_ref().map(|a| (a, cfg.init.as_raw()));
    become_process(process, cfg.seccomp.as_ref(), agent, cfg.preserve_fds)
}
