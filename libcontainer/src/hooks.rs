//! OCI hooks: programs run at fixed points of the lifecycle with the
//! container's state on stdin. createRuntime/prestart run in the runtime's
//! namespaces once the container's exist (the parent, on the init's
//! request, before pivot_root); createContainer in the container's
//! namespaces before pivot_root and startContainer right before the
//! process starts (both by the init); poststart by `start` and poststop by
//! `delete`. A failing hook before the start aborts it; poststart and
//! poststop failures are only logged, as the spec says.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;
use serde_json::json;

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
#[error("{stage} hook {path}: {reason}")]
pub struct HookError {
    stage: &'static str,
    path: String,
    reason: String,
}

/// The state a hook reads on stdin.
pub(crate) struct HookState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    pub pid: i32,
    pub bundle: &'a Path,
    /// The config's annotations, if any.
    pub annotations: Option<serde_json::Value>,
}

impl HookState<'_> {
    fn to_json(&self) -> String {
        let mut v = json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": self.pid,
            "bundle": self.bundle,
        });
        if let Some(a) = &self.annotations {
            v["annotations"] = a.clone();
        }
        v.to_string()
    }
}

/// Runs `hooks` in order; the first failure stops the others.
pub(crate) fn run(stage: &'static str, hooks: &[Hook], state: &HookState) -> Result<(), HookError> {
    let input = state.to_json();
    hooks
        .iter()
        .try_for_each(|hook| run_one(stage, hook, &input, None))
}

/// Like [`run`], with `dir` as the hooks' working directory (runc runs
/// createContainer hooks in the container's rootfs).
pub(crate) fn run_in(
    stage: &'static str,
    hooks: &[Hook],
    state: &HookState,
    dir: &Path,
) -> Result<(), HookError> {
    let input = state.to_json();
    hooks
        .iter()
        .try_for_each(|hook| run_one(stage, hook, &input, Some(dir)))
}

/// Runs every hook of a stage whose failures are only warnings (poststart,
/// poststop): as the spec says and crun does, a failure does not keep the
/// later hooks from running. Returns the failures.
pub(crate) fn run_all(stage: &'static str, hooks: &[Hook], state: &HookState) -> Vec<HookError> {
    let input = state.to_json();
    hooks
        .iter()
        .filter_map(|hook| run_one(stage, hook, &input, None).err())
        .collect()
}

fn run_one(
    stage: &'static str,
    hook: &Hook,
    input: &str,
    dir: Option<&Path>,
) -> Result<(), HookError> {
    let err = |reason: String| HookError {
        stage,
        path: hook.path().display().to_string(),
        reason,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let runtime = std::process::id();
    // SAFETY: the closures make only async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(only_stdio);
        cmd.pre_exec(move || dies_with(runtime));
    }
    let mut child = cmd.spawn().map_err(|e| err(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                return Err(err(format!("{status}: {}", stderr.trim())));
            }
            Ok(None) if deadline.is_some_and(|d| Instant::now() > d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "timed out after {}s",
                    hook.timeout().unwrap_or(0)
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(err(format!("wait: {e}"))),
        }
    }
}

/// In a hook's child before its `execve`: the hook is killed when the
/// runtime process that runs it dies (an engine's timeout killing hull must
/// not leave a hook behind); if that happened already, it never starts.
fn dies_with(runtime: u32) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments; getppid cannot fail.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() as u32 != runtime {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// In a hook's child before its `execve`: nothing of the runtime's but
/// stdin, stdout and stderr reaches the hook (CVE-2024-21626: the init's
/// fds lead to host directories). Every other fd is marked close-on-exec;
/// where a seccomp profile refuses `close_range`, one by one.
fn only_stdio() -> std::io::Result<()> {
    // SAFETY: close_range and fcntl only change fd flags.
    unsafe {
        if libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) == 0 {
            return Ok(());
        }
        let mut limit = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 1024,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        for fd in 3..limit.rlim_cur.min(1 << 20) as i32 {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}
