//! What only the container's side runs, between the clone and `execve`:
//! namespaces joined, filesystem built, identity and privileges reduced
//! ([`execve`], which `exec`'d processes share), then a wait for `start`.
//! Failures go to the parent as an [`InitError`].

mod capabilities;
mod console;
mod execve;
mod fds;
mod identity;
mod rlimits;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::unistd::{read, sethostname, setsid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::channel::{Channel, Message};
use super::error::{InitError, InitStep};
use super::namespaces::Plan;
use super::InitConfig;
use crate::cgroups::Cgroup;
use crate::hooks::{self, HookState};
use crate::rootfs::{self, RootfsConfig, RootfsError};
pub(super) use console::setup as setup_console;
pub(super) use execve::{become_process, Exec};
pub(super) use rlimits::apply as apply_rlimits;

/// Runs in the cloned child; returns the exit code if `execve` is never reached.
pub(super) fn run(
    cfg: &InitConfig,
    plan: &Plan,
    cgroup: &Cgroup,
    cloned_into: bool,
    chan: Channel,
) -> i32 {
    record_host_pid();
    // Until the creating process has recorded the container, the init dies
    // with it (a killed `create` must leave no process); where the init
    // waits on the channel, a dead creator also shows as its end closing.
    set_parent_death_signal(libc::SIGKILL);
    let exec = match set_up(cfg, plan, cgroup, cloned_into, &chan) {
        Ok(exec) => exec,
        Err(e) => {
            let _ = chan.send(&Message::Failed(e));
            return 1;
        }
    };
    tracing::debug!("init: set up, waiting for start");
    if chan.send(&Message::Ready).is_err() {
        return 1;
    }
    if !matches!(chan.recv(), Ok(Some(Message::HandedOver))) {
        return 1;
    }
    if !set_parent_death_signal(0) {
        eprintln!(
            "hull init: cannot outlive the runtime: {}",
            nix::Error::last()
        );
        return 1;
    }
    // Closing the channel tells the creator it may exit now.
    drop(chan);
    if let Err(e) = wait_for_start(&cfg.exec_fifo) {
        eprintln!("hull init: waiting for start: {e}");
        return 1;
    }
    if let Some(start) = cfg
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_deref())
    {
        if let Err(e) = hooks::run("startContainer", start, &hook_state(cfg, "created")) {
            eprintln!("hull init: {e}");
            return 1;
        }
    }
    tracing::debug!("init: started, about to exec");
    exec.exec(cfg.preserve_fds, cfg.seccomp_agent.as_ref(), host_pid())
}

/// The init's steps up to waiting for `start`. The network namespace is
/// made here rather than by the clone, while the parent sets up the cgroups
/// (see `namespaces`). Then into the cgroups, so everything the init does
/// from here on is accounted there, and only then the cgroup namespace, so
/// it is rooted at the container's cgroup.
fn set_up<'a>(
    cfg: &'a InitConfig,
    plan: &Plan,
    cgroup: &Cgroup,
    cloned_into: bool,
    chan: &Channel,
) -> Result<execve::Exec<'a>, InitError> {
    let affinity = cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.exec_cpu_affinity().as_ref());
    crate::sched::set_affinity(affinity, true).map_err(InitError::at(InitStep::CpuAffinity))?;
    plan.unshare_network().map_err(InitError::context(
        InitStep::NetworkNamespace,
        "cannot create the network namespace",
    ))?;
    let idmapped = wait_until_placed(chan)?;
    cgroup
        .enter(cloned_into)
        .map_err(InitError::at(InitStep::Cgroup))?;
    plan.become_userns_root().map_err(InitError::context(
        InitStep::UserNamespace,
        "cannot become root in the user namespace",
    ))?;
    plan.unshare_cgroup().map_err(InitError::context(
        InitStep::CgroupNamespace,
        "cannot create the cgroup namespace",
    ))?;
    prepare(cfg, plan, cgroup, chan, idmapped)
}

/// PR_SET_PDEATHSIG; whether it was taken.
fn set_parent_death_signal(signal: libc::c_int) -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) == 0 }
}

/// Blocks until the parent has set up the cgroups (with the systemd driver:
/// until systemd has moved us into the scope); returns the idmapped mount
/// trees it sends first.
fn wait_until_placed(chan: &Channel) -> Result<Vec<OwnedFd>, InitError> {
    let not_placed = |what: &str| InitError::other(InitStep::Cgroup, what);
    let mut idmapped = Vec::new();
    loop {
        match chan.recv() {
            Ok(Some(Message::IdmappedMount(tree))) => idmapped.push(tree),
            Ok(Some(Message::Placed)) => return Ok(idmapped),
            Ok(_) => return Err(not_placed("the cgroups were not set up")),
            Err(e) => return Err(not_placed(&e.to_string())),
        }
    }
}

/// Blocks until `start` writes to the exec fifo (or the start pipe).
fn wait_for_start(fifo: &OwnedFd) -> nix::Result<()> {
    let mut buf = [0u8; 1];
    loop {
        match read(fifo.as_raw_fd(), &mut buf) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(nix::Error::EPIPE),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The process's pid as the host sees it (hooks and the seccomp agent get
/// that one), read from the host's /proc before pivot_root.
static HOST_PID: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Reads [`HOST_PID`]; called first thing in the cloned process.
pub(super) fn record_host_pid() {
    if let Some(pid) = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
    {
        let _ = HOST_PID.set(pid);
    }
}

fn host_pid() -> i32 {
    *HOST_PID.get().unwrap_or(&0)
}

/// The state hooks run by the init read.
fn hook_state<'a>(cfg: &'a InitConfig, status: &'a str) -> HookState<'a> {
    cfg.hook_state(status, host_pid())
}

/// From joining the namespaces to the last steps before `execve`.
fn prepare<'a>(
    cfg: &'a InitConfig,
    plan: &Plan,
    cgroup: &Cgroup,
    chan: &Channel,
    idmapped: Vec<OwnedFd>,
) -> Result<execve::Exec<'a>, InitError> {
    let spec = &cfg.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::Config("process is missing".into()))?;
    plan.join_existing().map_err(InitError::context(
        InitStep::JoinNamespace,
        "cannot join namespace",
    ))?;
    plan.enter_new_time()?;
    setsid().map_err(InitError::context(InitStep::Session, "setsid"))?;
    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id)?;
    }
    if has_namespace(spec, LinuxNamespaceType::Uts) {
        if let Some(name) = spec.hostname() {
            sethostname(name).map_err(InitError::context(InitStep::Hostname, "sethostname"))?;
        }
        if let Some(name) = spec.domainname() {
            set_domainname(name)?;
        }
    }
    set_umask(0);
    let rootfs_cfg = RootfsConfig {
        runtime_binds: cfg.runtime_binds,
        spec,
        rootfs: &cfg.rootfs,
        bundle: &cfg.bundle,
        no_pivot: cfg.no_pivot,
        cgroups: rootfs::CgroupView {
            hierarchies: &cfg.hierarchies,
            cgroup,
            own: cfg.own_cgroup.as_ref(),
        },
        cgroupns: plan.new_cgroupns(),
    };
    rootfs::prepare(&rootfs_cfg, idmapped).map_err(rootfs_failed)?;
    container_hooks(cfg, spec, chan)?;
    rootfs::switch_root(&rootfs_cfg).map_err(rootfs_failed)?;
    if let Some(socket) = &cfg.console {
        console::setup(socket, process).map_err(InitError::at(InitStep::Console))?;
    }
    rootfs::finalize(spec).map_err(rootfs_failed)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())
        .map_err(InitError::at(InitStep::Rlimits))?;
    crate::sched::apply_to_container(spec).map_err(InitError::at(InitStep::Scheduling))?;
    if let Some(adj) = process.oom_score_adj() {
        crate::procfs::ProcRoot::open()
            .and_then(|proc| {
                proc.write(Path::new("self/oom_score_adj"), adj.to_string().as_bytes())
            })
            .map_err(InitError::context(
                InitStep::OomScoreAdj,
                format!("cannot set oom_score_adj to {adj}"),
            ))?;
    }
    let agent = cfg.seccomp_agent.as_ref().map(|a| (a, host_pid()));
    become_process(process, cfg.seccomp.as_ref(), agent, cfg.preserve_fds)
}

/// A step of the filesystem setup failed; one the configuration asks for
/// and cannot be made is a configuration error.
fn rootfs_failed(e: RootfsError) -> InitError {
    match e {
        RootfsError::Config(text) => InitError::Config(text),
        e => InitError::at(InitStep::Rootfs)(e),
    }
}

/// The runtime's steps in its own namespaces, run by the parent when the
/// init asks (host network devices moved in, then the createRuntime and
/// prestart hooks), then the createContainer hooks, in the container's
/// namespaces.
fn container_hooks(
    cfg: &InitConfig,
    spec: &oci_spec::runtime::Spec,
    chan: &Channel,
) -> Result<(), InitError> {
    let hooks = spec.hooks().as_ref();
    let runtime_hooks = hooks.map_or(0, |h| {
        h.create_runtime()
            .iter()
            .chain(h.prestart())
            .flatten()
            .count()
    });
    if runtime_hooks > 0 || crate::net_devices::any(spec) {
        let failed = || InitError::other(InitStep::Hooks, "createRuntime hooks failed");
        chan.send(&Message::RunHooks).map_err(|_| failed())?;
        if !matches!(chan.recv(), Ok(Some(Message::HooksDone))) {
            return Err(failed());
        }
    }
    let Some(h) = hooks else {
        return Ok(());
    };
    let create = h.create_container().as_deref().unwrap_or_default();
    hooks::run_in(
        "createContainer",
        create,
        &hook_state(cfg, "created"),
        &cfg.rootfs,
    )
    .map_err(InitError::at(InitStep::Hooks))
}

/// umask(2) through libc: it cannot fail, but a seccomp profile may still
/// make it return -1, which nix's wrapper turns into a panic.
fn set_umask(mask: u32) {
    // SAFETY: umask only changes the process's file mode mask.
    unsafe { libc::umask(mask as libc::mode_t) };
}

fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|ns| ns.typ() == t))
}

/// Joins a fresh session keyring named after the container, so containers do
/// not share the host's keys.
fn join_session_keyring(id: &str) -> Result<(), InitError> {
    let name = CString::new(format!("_ses.{id}"))
        .map_err(|e| InitError::other(InitStep::Keyring, e.to_string()))?;
    // SAFETY: keyctl with a valid NUL-terminated name.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    match r {
        // Kernels without keyrings, or a keyring quota reached, are not fatal (runc).
        -1 if matches!(nix::Error::last(), nix::Error::ENOSYS | nix::Error::EDQUOT) => Ok(()),
        -1 => Err(InitError::context(
            InitStep::Keyring,
            "cannot join session keyring",
        )(nix::Error::last())),
        _ => Ok(()),
    }
}

fn set_domainname(name: &str) -> Result<(), InitError> {
    // SAFETY: pointer and length of a live string.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
        return Err(InitError::context(InitStep::Hostname, "setdomainname")(
            nix::Error::last(),
        ));
    }
    Ok(())
}
