//! What the init does between the clone and `execve`: namespaces joined,
//! filesystem built, identity and privileges reduced, then a wait for `start`.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{chdir, execve, sethostname, setsid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::channel::{Channel, Message};
use super::fds;
use super::namespaces::Plan;
use super::InitConfig;
use crate::cgroups::Cgroup;
use crate::hooks::{self, HookState};
use crate::rootfs::{self, RootfsConfig};
use crate::seccomp::notify::Agent;
use crate::seccomp::Filter;
use crate::{capabilities, console, exec_fifo, identity, rlimits};

/// Why setup stopped; `NotFound` is kept apart so `run` can exit 127 like runc.
pub(super) enum Failure {
    Other(String),
    NotFound(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.to_string())
    }
}

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
    let affinity = cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.exec_cpu_affinity().as_ref());
    if let Err(e) = crate::sched::set_affinity(affinity, true) {
        let _ = chan.send(&Message::Failed(e.to_string()));
        return 1;
    }
    // The network namespace is made here rather than by the clone, while the
    // parent sets up the cgroups (see `namespaces`). Then into the cgroups,
    // so everything the init does from here on is accounted there, and only
    // then the cgroup namespace, so it is rooted at the container's cgroup.
    let mut idmapped = Vec::new();
    let placed = plan
        .unshare_network()
        .map_err(|e| Failure::Other(format!("cannot create the network namespace: {e}")))
        .and_then(|()| wait_until_placed(&chan, &mut idmapped))
        .and_then(|()| cgroup.enter(cloned_into).map_err(Failure::from))
        .and_then(|()| {
            plan.become_userns_root().map_err(|e| {
                Failure::Other(format!("cannot become root in the user namespace: {e}"))
            })
        })
        .and_then(|()| {
            plan.unshare_cgroup()
                .map_err(|e| Failure::Other(format!("cannot create the cgroup namespace: {e}")))
        });
    let exec = match placed.and_then(|()| prepare(cfg, plan, cgroup, &chan, idmapped)) {
        Ok(exec) => exec,
        Err(f) => {
            let msg = match f {
                Failure::Other(text) => Message::Failed(text),
                Failure::NotFound(text) => Message::NotFound(text),
            };
            let _ = chan.send(&msg);
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
    if let Err(e) = exec_fifo::wait_for_start(&cfg.exec_fifo) {
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

/// PR_SET_PDEATHSIG; whether it was taken.
fn set_parent_death_signal(signal: libc::c_int) -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) == 0 }
}

/// Blocks until the parent has set up the cgroups (with the systemd driver:
/// until systemd has moved us into the scope), keeping the idmapped mount
/// trees it sends first.
fn wait_until_placed(chan: &Channel, idmapped: &mut Vec<OwnedFd>) -> Result<(), Failure> {
    loop {
        match chan.recv()? {
            Some(Message::IdmappedMount(tree)) => idmapped.push(tree),
            Some(Message::Placed) => return Ok(()),
            _ => return Err(Failure::Other("the cgroups were not set up".into())),
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

pub(super) fn host_pid() -> i32 {
    *HOST_PID.get().unwrap_or(&0)
}

/// The state hooks run by the init read.
fn hook_state<'a>(cfg: &'a InitConfig, status: &'a str) -> HookState<'a> {
    cfg.hook_state(status, host_pid())
}

/// The resolved `execve` arguments, and what is left to do right before it.
pub(super) struct Exec<'a> {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// The filter still to install: with no_new_privs it goes last.
    late_seccomp: Option<&'a Filter>,
    /// `process.execCPUAffinity`, whose final list is set right before.
    affinity: Option<&'a oci_spec::runtime::ExecCPUAffinity>,
}

fn prepare<'a>(
    cfg: &'a InitConfig,
    plan: &Plan,
    cgroup: &Cgroup,
    chan: &Channel,
    idmapped: Vec<OwnedFd>,
) -> Result<Exec<'a>, Failure> {
    let spec = &cfg.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Failure::Other("process is missing".into()))?;
    plan.join_existing()
        .map_err(|e| format!("cannot join namespace: {e}"))?;
    plan.enter_new_time()?;
    setsid().map_err(|e| format!("setsid: {e}"))?;
    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id)?;
    }
    if has_namespace(spec, LinuxNamespaceType::Uts) {
        if let Some(name) = spec.hostname() {
            sethostname(name).map_err(|e| format!("sethostname: {e}"))?;
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
    rootfs::prepare(&rootfs_cfg, idmapped)?;
    // The runtime's steps in its own namespaces: host network devices
    // moved in, then the createRuntime and prestart hooks.
    let runtime_hooks = spec.hooks().as_ref().map_or(0, |h| {
        h.create_runtime()
            .iter()
            .chain(h.prestart())
            .flatten()
            .count()
    });
    if runtime_hooks > 0 || crate::net_devices::any(spec) {
        chan.send(&Message::RunHooks)?;
        if !matches!(chan.recv()?, Some(Message::HooksDone)) {
            return Err(Failure::Other("createRuntime hooks failed".into()));
        }
    }
    if let Some(h) = spec.hooks() {
        let create = h.create_container().as_deref().unwrap_or_default();
        hooks::run_in(
            "createContainer",
            create,
            &hook_state(cfg, "created"),
            &cfg.rootfs,
        )?;
    }
    rootfs::switch_root(&rootfs_cfg)?;
    if let Some(socket) = &cfg.console {
        console::setup(socket, process)?;
    }
    rootfs::finalize(spec)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    crate::sched::apply_to_container(spec)?;
    if let Some(adj) = process.oom_score_adj() {
        crate::procfs::ProcRoot::open()
            .and_then(|proc| {
                proc.write(Path::new("self/oom_score_adj"), adj.to_string().as_bytes())
            })
            .map_err(|e| format!("cannot set oom_score_adj to {adj}: {e}"))?;
    }
    let agent = cfg.seccomp_agent.as_ref().map(|a| (a, host_pid()));
    become_process(process, cfg.seccomp.as_ref(), agent, cfg.preserve_fds)
}

/// The last steps of any container process (the init and `exec`'d ones)
/// before it is released: cwd, executable lookup, user, capabilities,
/// no_new_privs, an early seccomp filter and umask; returns what to `execve`.
/// `agent` takes a notify listener, with the container's init pid.
pub(super) fn become_process<'a>(
    process: &'a Process,
    seccomp: Option<&'a Filter>,
    agent: Option<(&Agent, i32)>,
    preserve_fds: u32,
) -> Result<Exec<'a>, Failure> {
    // CVE-2024-21626: no runtime directory fd may be reachable through
    // /proc/self/fd when the cwd is changed to, and the cwd must then lie
    // inside the container's root.
    fds::close_directories_from(3 + preserve_fds as i32)
        .map_err(|e| format!("cannot close the runtime's directories: {e}"))?;
    let cwd = process.cwd();
    chdir(cwd).map_err(|e| format!("cannot change to cwd {}: {e}", cwd.display()))?;
    if !fds::cwd_is_inside_root() {
        return Err(Failure::Other(format!(
            "cwd {} is outside of the container's root: possible container breakout detected",
            cwd.display()
        )));
    }
    let env = environment(process);
    let args: Vec<String> = process.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| Failure::Other("process.args is empty".into()))?;
    let path = find_executable(arg0, &env).map_err(Failure::NotFound)?;
    crate::labels::apply_for_exec(process)?;
    crate::sched::apply(process)?;
    let late_seccomp = set_privileges(process, seccomp, agent)?;
    set_umask(process.user().umask().unwrap_or(0o022));
    let mut exec = Exec::new(&path, &args, &env, late_seccomp)?;
    exec.affinity = process.exec_cpu_affinity().as_ref();
    Ok(exec)
}

/// umask(2) through libc: it cannot fail, but a seccomp profile may still
/// make it return -1, which nix's wrapper turns into a panic.
fn set_umask(mask: u32) {
    // SAFETY: umask only changes the process's file mode mask.
    unsafe { libc::umask(mask as libc::mode_t) };
}

impl<'a> Exec<'a> {
    /// The `execve` arguments as C strings.
    fn new(
        path: &Path,
        args: &[String],
        env: &[String],
        late_seccomp: Option<&'a Filter>,
    ) -> Result<Self, Failure> {
        let cstr = |s: &[u8]| {
            CString::new(s).map_err(|_| Failure::Other("NUL byte in process.args or env".into()))
        };
        Ok(Exec {
            path: cstr(path.as_os_str().as_bytes())?,
            args: args
                .iter()
                .map(|a| cstr(a.as_bytes()))
                .collect::<Result<_, _>>()?,
            env: env
                .iter()
                .map(|e| cstr(e.as_bytes()))
                .collect::<Result<_, _>>()?,
            late_seccomp,
            affinity: None,
        })
    }

    /// The last steps once the process is released, then `execve`: default
    /// signal handling, every runtime fd closed (CVE-2024-21626), and the
    /// seccomp filter of a no_new_privs process, the last thing before
    /// `execve` as in runc, so the fewest runtime syscalls run under the
    /// container's filter. Returns the exit code if it fails (127 for a
    /// missing file, as a shell would).
    pub(super) fn exec(&self, preserve_fds: u32, agent: Option<&Agent>, init_pid: i32) -> i32 {
        reset_signals();
        if let Err(e) = crate::sched::set_affinity(self.affinity, false) {
            eprintln!("hull: {e}");
            return 1;
        }
        let keep = agent
            .filter(|_| self.late_seccomp.is_some())
            .map(Agent::raw_fd);
        if let Err(e) = fds::close_all_from(3 + preserve_fds as i32, keep) {
            eprintln!("hull: closing the runtime's fds: {e}");
            return 1;
        }
        if let Some(filter) = self.late_seccomp {
            if let Err(Failure::Other(e) | Failure::NotFound(e)) =
                install_seccomp(filter, agent.map(|a| (a, init_pid)))
            {
                eprintln!("hull: {e}");
                return 1;
            }
        }
        let err = execve(&self.path, &self.args, &self.env).unwrap_err();
        eprintln!("exec {}: {err}", self.path.to_string_lossy());
        if err == nix::Error::ENOENT {
            127
        } else {
            126
        }
    }
}

fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|ns| ns.typ() == t))
}

/// Bounding set, user switch, the other capability sets and no_new_privs.
/// Seccomp goes where runc puts it: without no_new_privs it needs
/// CAP_SYS_ADMIN, so it goes first; with no_new_privs it is returned, to be
/// installed right before `execve`.
fn set_privileges<'a>(
    process: &Process,
    seccomp: Option<&'a Filter>,
    agent: Option<(&Agent, i32)>,
) -> Result<Option<&'a Filter>, Failure> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let Some(filter) = seccomp.filter(|_| !nnp) {
        install_seccomp(filter, agent)?;
    }
    let keepcaps = |on: libc::c_ulong| {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on, 0, 0, 0) } != 0 {
            return Err(Failure::Other(format!(
                "prctl(PR_SET_KEEPCAPS): {}",
                nix::Error::last()
            )));
        }
        Ok(())
    };
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps)?;
    }
    keepcaps(1)?;
    identity::switch_user(process.user())?;
    keepcaps(0)?;
    match process.capabilities() {
        Some(caps) => capabilities::apply(caps)?,
        None => capabilities::apply(&Default::default())?,
    }
    if nnp {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Failure::Other(format!(
                "prctl(PR_SET_NO_NEW_PRIVS): {}",
                nix::Error::last()
            )));
        }
    }
    Ok(seccomp.filter(|_| nnp))
}

/// Installs the filter and hands a notify listener to the agent, with the
/// container's init pid.
fn install_seccomp(filter: &Filter, agent: Option<(&Agent, i32)>) -> Result<(), Failure> {
    if let Some(listener) = crate::seccomp::install(filter)? {
        let (agent, init_pid) =
            agent.ok_or_else(|| Failure::Other("no seccomp agent to notify".into()))?;
        agent.send(&listener, host_pid(), init_pid)?;
    }
    Ok(())
}

/// `process.env`, plus `HOME` from the container's passwd when it is not set.
fn environment(process: &Process) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", identity::home_of(process.user().uid())));
    }
    env
}

/// Resolves `arg0` like execvp does, with the container's `PATH`; the error
/// text is runc's.
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<(), String> {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
            Ok(_) => Err(format!("exec: {arg0:?}: permission denied")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "exec: {arg0:?}: stat {arg0}: no such file or directory"
            )),
            Err(e) => Err(format!("exec: {arg0:?}: {e}")),
        }
    };
    if arg0.contains('/') {
        return check(Path::new(arg0)).map(|()| PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        match check(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.ends_with("permission denied") => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| format!("exec: {arg0:?}: executable file not found in $PATH")))
}

/// Joins a fresh session keyring named after the container, so containers do
/// not share the host's keys.
fn join_session_keyring(id: &str) -> Result<(), String> {
    let name = CString::new(format!("_ses.{id}")).map_err(|e| e.to_string())?;
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
        -1 => Err(format!(
            "cannot join session keyring: {}",
            nix::Error::last()
        )),
        _ => Ok(()),
    }
}

fn set_domainname(name: &str) -> Result<(), String> {
    // SAFETY: pointer and length of a live string.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
        return Err(format!("setdomainname: {}", nix::Error::last()));
    }
    Ok(())
}

/// The container starts with default signal dispositions and nothing blocked
/// (the runtime ignores SIGPIPE, which would otherwise be inherited).
fn reset_signals() {
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing the default disposition.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}
