//! `hull exec`: a further process in a created or running container, with
//! runc's flags. In the foreground it waits with signals forwarded and exits
//! with the process's exit code (128+N if killed by signal N).

use std::collections::HashMap;
use std::path::Path;

use libcontainer::nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use libcontainer::nix::unistd::Pid;
use libcontainer::oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};
use libcontainer::{write_pid_file, Bundle, Container, ExecOptions};

use super::run::{block_forwarded, wait_forwarding};
use super::tty;
use crate::cli::ExecArgs;
use crate::{Failure, Outcome};

/// runc's exit code for an exec that fails before the process runs (a
/// missing container or binary, the wrong state, a bad flag).
const FAILED: i32 = 255;

#[inline(never)]
pub fn exec(root: &Path, args: &ExecArgs) -> Outcome {
    exec_process(root, args).map_err(|f| Failure {
        message: format!("exec failed: {}", f.message),
        code: FAILED,
    })
}

fn exec_process(root: &Path, args: &ExecArgs) -> Outcome {
    let container = Container::load(root, &args.id)?;
    let process = process(&container, args)?;
    // Blocked first, so no signal is lost before the wait.
    let mask = block_forwarded(!args.detach)?;
    // A foreground exec that wants a terminal but got no console socket
    // gets one of hull's own, proxied to hull's stdio (as runc does).
    let terminal = process.terminal().unwrap_or(false);
    let console = match terminal && !args.detach && args.console_socket.is_none() {
        true => Some(tty::Console::listen(&args.id)?),
        false => None,
    };
    let console_socket = match &console {
        Some(c) => Some(c.path()),
        None => args.console_socket.clone(),
    };
    let sub_cgroups = sub_cgroups(&args.cgroup)?;
    let opts = ExecOptions {
        process,
        console_socket,
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        sub_cgroups,
    };
    let pid = container
        .exec(opts)
        // runc's exec exits 255 when the process cannot start.
        .map_err(Failure::from)?;
    if let Some(path) = &args.pid_file {
        write_pid_file(path, pid)?;
    }
    if args.detach {
        return Ok(0);
    }
    match console {
        Some(c) => {
            let master = c.receive_master()?;
            tty::proxy(Some(pid), || try_wait(pid), &mask, master)
        }
        None => wait_forwarding(Some(pid), || try_wait(pid), &mask),
    }
}

/// The exit code of `pid` once it has exited (128+N if killed by signal N).
fn try_wait(pid: Pid) -> Result<Option<i32>, Failure> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as i32)),
        Ok(_) => Ok(None),
        Err(e) => Err(Failure::new(format!("wait for the process: {e}"))),
    }
}

/// The process to run: `--process FILE`, or the container's own process
/// with COMMAND and the flags applied.
fn process(container: &Container, args: &ExecArgs) -> Result<Process, Failure> {
    if let Some(path) = &args.process {
        let text = std::fs::read(path)
            .map_err(|e| Failure::new(format!("read {}: {e}", path.display())))?;
        let parse =
            |e: &dyn std::fmt::Display| Failure::new(format!("parse {}: {e}", path.display()));
        let mut value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| parse(&e))?;
        // runc takes a process without `user` as root's.
        if let Some(p) = value.as_object_mut() {
            p.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        }
        return serde_json::from_value(value).map_err(|e| parse(&e));
    }
    if args.command.is_empty() {
        return Err(Failure::new(
            "exec needs a command to run, or --process FILE",
        ));
    }
    let bundle =
        Bundle::load(&container.state().bundle).map_err(|e| Failure::new(e.to_string()))?;
    let mut p = bundle.spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let number = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Failure::new(format!("--user {user:?}: expected UID[:GID]")))
        };
        let mut u = p.user().clone();
        u.set_uid(number(uid)?);
        u.set_gid(gid.map(number).transpose()?.unwrap_or(0));
        p.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        p.set_user(u);
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        add_capabilities(&mut caps, &args.cap)?;
        p.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &args.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// Adds `names` to the bounding, effective and permitted sets, as runc does.
fn add_capabilities(caps: &mut LinuxCapabilities, names: &[String]) -> Result<(), Failure> {
    for name in names {
        let upper = name.to_uppercase();
        let full = match upper.starts_with("CAP_") {
            true => upper,
            false => format!("CAP_{upper}"),
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
            .map_err(|_| Failure::new(format!("unknown capability {name:?}")))?;
        let with = |set: &Option<Capabilities>| {
            let mut set = set.clone().unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        let (bounding, effective, permitted) = (
            with(caps.bounding()),
            with(caps.effective()),
            with(caps.permitted()),
        );
        caps.set_bounding(bounding);
        caps.set_effective(effective);
        caps.set_permitted(permitted);
    }
    Ok(())
}

/// `--cgroup` values as runc reads them: one bare PATH (for every
/// controller), or `CTRL[,CTRL...]:PATH` ones; the key `""` is "every".
fn sub_cgroups(args: &[String]) -> Result<HashMap<String, String>, Failure> {
    let mut paths = HashMap::new();
    for arg in args {
        match arg.split(':').collect::<Vec<_>>()[..] {
            [path] if args.len() == 1 => {
                paths.insert(String::new(), path.to_owned());
            }
            [_] => {
                return Err(Failure::new(format!(
                    "invalid --cgroup argument: {arg} (missing <controller>: prefix)"
                )))
            }
            [ctrls, path] => {
                for ctrl in ctrls.split(',') {
                    paths.insert(ctrl.to_owned(), path.to_owned());
                }
            }
            _ => return Err(Failure::new(format!("invalid --cgroup argument: {arg}"))),
        }
    }
    Ok(paths)
}
