//! The last steps of any container process (the init and `exec`'d ones)
//! before `execve`: cwd, executable lookup, user, capabilities,
//! no_new_privs, seccomp and umask, then the `execve` itself.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{chdir, execve};
use oci_spec::runtime::Process;

use super::{capabilities, fds, host_pid, identity, set_umask};
use crate::process::error::{InitError, InitStep};
use crate::seccomp::notify::Agent;
use crate::seccomp::Filter;

/// The resolved `execve` arguments, and what is left to do right before it.
pub(crate) struct Exec<'a> {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// The filter still to install: with no_new_privs it goes last.
    late_seccomp: Option<&'a Filter>,
    /// `process.execCPUAffinity`, whose final list is set right before.
    affinity: Option<&'a oci_spec::runtime::ExecCPUAffinity>,
}

/// The last steps before the process is released; returns what to
/// `execve`. `agent` takes a notify listener, with the container's init pid.
pub(crate) fn become_process<'a>(
    process: &'a Process,
    seccomp: Option<&'a Filter>,
    agent: Option<(&Agent, i32)>,
    preserve_fds: u32,
) -> Result<Exec<'a>, InitError> {
    // CVE-2024-21626: no runtime directory fd may be reachable through
    // /proc/self/fd when the cwd is changed to, and the cwd must then lie
    // inside the container's root.
    fds::close_directories_from(3 + preserve_fds as i32).map_err(InitError::context(
        InitStep::CloseFds,
        "cannot close the runtime's directories",
    ))?;
    let cwd = process.cwd();
    chdir(cwd).map_err(InitError::context(
        InitStep::Cwd,
        format!("cannot change to cwd {}", cwd.display()),
    ))?;
    if !fds::cwd_is_inside_root() {
        return Err(InitError::other(
            InitStep::Cwd,
            format!(
                "cwd {} is outside of the container's root: possible container breakout detected",
                cwd.display()
            ),
        ));
    }
    let env = environment(process);
    let args: Vec<String> = process.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| InitError::Config("process.args is empty".into()))?;
    let path = find_executable(arg0, &env).map_err(InitError::NotFound)?;
    crate::labels::apply_for_exec(process).map_err(InitError::at(InitStep::Labels))?;
    crate::sched::apply(process).map_err(InitError::at(InitStep::Scheduling))?;
    let late_seccomp = set_privileges(process, seccomp, agent)?;
    set_umask(process.user().umask().unwrap_or(0o022));
    let mut exec = Exec::new(&path, &args, &env, late_seccomp)?;
    exec.affinity = process.exec_cpu_affinity().as_ref();
    Ok(exec)
}

impl<'a> Exec<'a> {
    /// The `execve` arguments as C strings.
    fn new(
        path: &Path,
        args: &[String],
        env: &[String],
        late_seccomp: Option<&'a Filter>,
    ) -> Result<Self, InitError> {
        let cstr = |s: &[u8]| {
            CString::new(s).map_err(|_| InitError::Config("NUL byte in process.args or env".into()))
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
    pub(crate) fn exec(&self, preserve_fds: u32, agent: Option<&Agent>, init_pid: i32) -> i32 {
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
            if let Err(e) = install_seccomp(filter, agent.map(|a| (a, init_pid))) {
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

/// Bounding set, user switch, the other capability sets and no_new_privs.
/// Seccomp goes where runc puts it: without no_new_privs it needs
/// CAP_SYS_ADMIN, so it goes first; with no_new_privs it is returned, to be
/// installed right before `execve`.
fn set_privileges<'a>(
    process: &Process,
    seccomp: Option<&'a Filter>,
    agent: Option<(&Agent, i32)>,
) -> Result<Option<&'a Filter>, InitError> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let Some(filter) = seccomp.filter(|_| !nnp) {
        install_seccomp(filter, agent)?;
    }
    let prctl = |step: InitStep, name: &str, option: libc::c_int, arg: libc::c_ulong| {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(option, arg, 0, 0, 0) } != 0 {
            return Err(InitError::context(step, format!("prctl({name})"))(
                nix::Error::last(),
            ));
        }
        Ok(())
    };
    let keepcaps = |on| prctl(InitStep::User, "PR_SET_KEEPCAPS", libc::PR_SET_KEEPCAPS, on);
    let caps_failed = InitError::at(InitStep::Capabilities);
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps).map_err(caps_failed)?;
    }
    keepcaps(1)?;
    identity::switch_user(process.user())?;
    keepcaps(0)?;
    match process.capabilities() {
        Some(caps) => capabilities::apply(caps),
        None => capabilities::apply(&Default::default()),
    }
    .map_err(InitError::at(InitStep::Capabilities))?;
    if nnp {
        prctl(
            InitStep::NoNewPrivileges,
            "PR_SET_NO_NEW_PRIVS",
            libc::PR_SET_NO_NEW_PRIVS,
            1,
        )?;
    }
    Ok(seccomp.filter(|_| nnp))
}

/// Installs the filter and hands a notify listener to the agent, with the
/// container's init pid.
fn install_seccomp(filter: &Filter, agent: Option<(&Agent, i32)>) -> Result<(), InitError> {
    let failed = InitError::at(InitStep::Seccomp);
    if let Some(listener) = crate::seccomp::install(filter).map_err(failed)? {
        let (agent, init_pid) = agent
            .ok_or_else(|| InitError::other(InitStep::Seccomp, "no seccomp agent to notify"))?;
        agent
            .send(&listener, host_pid(), init_pid)
            .map_err(InitError::at(InitStep::Seccomp))?;
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
