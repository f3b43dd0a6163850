//! A further process in a running container (`exec`): cloned by the runtime,
//! it joins the init's cgroups and namespaces, takes on the process's user,
//! capabilities, rlimits and the container's seccomp filter, then `execve`s.
//!
//! The pid namespace is joined by the parent around the clone (setns on a
//! pid namespace only affects later children); the cgroups are entered while
//! the host's cgroup filesystem is still visible, and the mount namespace is
//! joined last, which also moves root and cwd into the container.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, setsid, Pid};
use oci_spec::runtime::Process;

use super::channel::{self, Channel, Message};
use super::init::{self, Exec, Failure};
use super::{clone, ProcessError};
use crate::cgroups::Cgroup;
use crate::seccomp::Filter;
use crate::{console, rlimits};

/// Everything the exec'd process needs, prepared by the parent.
pub(crate) struct ExecConfig {
    /// The container's init, whose namespaces are joined.
    pub init: Pid,
    pub process: Process,
    /// Connected `--console-socket`, when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    /// The container's seccomp filter.
    pub seccomp: Option<Filter>,
    pub preserve_fds: u32,
}

/// Namespaces in the order they are joined; the mount namespace goes last.
const NAMESPACES: [(&str, libc::c_int); 6] = [
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
    let joins = NAMESPACES
        .iter()
        .filter_map(|&(name, flag)| namespace_of(cfg.init, name, flag).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let pid_ns = namespace_of(cfg.init, "pid", libc::CLONE_NEWPID)?;
    let cgroup_fd = match cgroup {
        Some(cg) => cg.open_v2()?,
        None => None,
    };
    let (parent, child) = channel::pair()?;
    let (mut parent, mut child) = (Some(parent), Some(child));
    let own_pid_ns = match &pid_ns {
        Some((flag, fd)) => {
            let own = open_ns(Pid::this(), "pid")?;
            setns(fd.as_fd(), *flag).map_err(ProcessError::sys("join the pid namespace"))?;
            Some(own)
        }
        None => None,
    };
    let cloned = clone::clone_into(
        CloneFlags::empty(),
        cgroup_fd.as_ref().map(|fd| fd.as_fd()),
        |cloned_into| {
            parent.take();
            run(
                cfg,
                &joins,
                cgroup,
                cloned_into,
                child.take().expect("child end"),
            )
        },
    );
    if let Some(own) = own_pid_ns {
        setns(own.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(ProcessError::sys("return to own pid namespace"))?;
    }
    let pid = cloned?;
    drop(child);
    let parent = parent.expect("parent end");
    let outcome = match parent.recv() {
        Ok(Some(Message::Ready)) => return Ok(pid),
        Ok(Some(Message::Failed(text))) => ProcessError::InitFailed(text),
        Ok(Some(Message::NotFound(text))) => ProcessError::ExecNotFound(text),
        Ok(Some(Message::SeccompListener(_))) => ProcessError::InitFailed(
            "seccomp notify is not supported for processes exec'd into a container".into(),
        ),
        Ok(Some(_)) => ProcessError::Protocol,
        Ok(None) => ProcessError::InitDied,
        Err(e) => e,
    };
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, None);
    Err(outcome)
}

fn open_ns(pid: Pid, name: &str) -> Result<OwnedFd, ProcessError> {
    let fd = open(
        Path::new(&format!("/proc/{pid}/ns/{name}")),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ProcessError::sys(
        "open a namespace of the container's init",
    ))?;
    // SAFETY: freshly opened, owned here.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The init's namespace `name`, unless it is the caller's own.
fn namespace_of(
    init: Pid,
    name: &str,
    flag: libc::c_int,
) -> Result<Option<(CloneFlags, OwnedFd)>, ProcessError> {
    let theirs = open_ns(init, name)?;
    let id = |fd: &OwnedFd| {
        std::fs::File::from(fd.try_clone().ok()?)
            .metadata()
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
        .ok()
        .map(|m| (m.dev(), m.ino()));
    if ours.is_some() && id(&theirs) == ours {
        return Ok(None);
    }
    Ok(Some((CloneFlags::from_bits_retain(flag), theirs)))
}

/// Runs in the cloned child; returns the exit code if `execve` is never reached.
fn run(
    cfg: &ExecConfig,
    joins: &[(CloneFlags, OwnedFd)],
    cgroup: Option<&Cgroup>,
    cloned_into: bool,
    chan: Channel,
) -> i32 {
    let exec = match prepare(cfg, joins, cgroup, cloned_into, &chan) {
        Ok(exec) => exec,
        Err(f) => {
            let _ = chan.send(&match f {
                Failure::Other(text) => Message::Failed(text),
                Failure::NotFound(text) => Message::NotFound(text),
            });
            return 1;
        }
    };
    if chan.send(&Message::Ready).is_err() {
        return 1;
    }
    drop(chan);
    if let Err(e) = init::close_fds_on_exec(cfg.preserve_fds) {
        eprintln!("hull exec: closing fds: {e}");
        return 1;
    }
    init::reset_signals();
    exec.exec()
}

fn prepare(
    cfg: &ExecConfig,
    joins: &[(CloneFlags, OwnedFd)],
    cgroup: Option<&Cgroup>,
    cloned_into: bool,
    chan: &Channel,
) -> Result<Exec, Failure> {
    if let Some(cg) = cgroup {
        cg.enter(cloned_into)?;
    }
    for (flag, fd) in joins {
        setns(fd.as_fd(), *flag).map_err(|e| format!("cannot join namespace: {e}"))?;
    }
    let process = &cfg.process;
    if let Some(socket) = &cfg.console {
        setsid().map_err(|e| format!("setsid: {e}"))?;
        console::setup(socket)?;
    }
    let cwd = process.cwd();
    chdir(cwd).map_err(|e| format!("cannot change to cwd {}: {e}", cwd.display()))?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    let env = init::environment(process);
    let args: Vec<String> = process.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| Failure::Other("process.args is empty".into()))?;
    let path = init::find_executable(arg0, &env).map_err(Failure::NotFound)?;
    init::set_privileges(process, cfg.seccomp.as_ref(), chan)?;
    nix::sys::stat::umask(Mode::from_bits_truncate(
        process.user().umask().unwrap_or(0o022),
    ));
    Exec::new(&path, &args, &env)
}
