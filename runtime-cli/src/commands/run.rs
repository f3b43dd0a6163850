//! `hull run`: create + start, then (unless --detach) wait with signals
//! forwarded to the container, delete it, and exit with its exit code.

use libcontainer::nix::sys::signal::{kill, SigSet, Signal};
use libcontainer::nix::unistd::Pid;
use libcontainer::{Bundle, Container, Error, InitError, ProcessError};

use super::create::{annotations, builder};
use super::delete::remove;
use super::{dns, network, tty, volume};
use crate::cli::{Cli, RunArgs};
use crate::{Failure, Outcome};

/// Signals a foreground `run` passes on to the container's init.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGWINCH,
];

#[inline(never)]
pub fn run(cli: &Cli, args: &RunArgs) -> Outcome {
    let root = cli.state_root()?;
    let root = root.as_path();
    // 127 as a shell would (runc: 1), a deliberate difference.
    let fail = |e: Error| launch_failure("run", 127, e);
    libcontainer::validate_id(&args.create.id).map_err(fail)?;
    let mut bundle = Bundle::load(&args.create.bundle).map_err(|e| fail(e.into()))?;
    let request = network::request(cli, &args.create, &annotations(&bundle))
        .and_then(|r| dns::prepare(cli, r.as_ref(), &mut bundle).map(|()| r))
        .map_err(|e| Failure::new(format!("hull run failed: {}", e.message)))?;
    let volumes = volume::request(cli, &args.create, &annotations(&bundle))
        .map_err(|e| Failure::new(format!("hull run failed: {}", e.message)))?;
    // A foreground run that wants a terminal but got no console socket
    // gets one of hull's own, proxied to hull's stdio (as runc does).
    let console =
        match !args.detach && args.create.console_socket.is_none() && bundle.wants_terminal() {
            true => Some(tty::Console::listen(&args.create.id)?),
            false => None,
        };
    // Started right below by this process: no exec fifo file to make and remove.
    let mut b = builder(root, &args.create, cli.systemd_cgroup)
        .preloaded(bundle)
        .start_in_process(true);
    if let Some(c) = &console {
        b = b.console_socket(c.path());
    }
    if let Some(r) = request {
        b = b.network(r);
    }
    if let Some(v) = volumes {
        b = b.volumes(v);
    }
    let container = b.create().map_err(fail)?;
    let master = match &console {
        Some(c) => match c.receive_master() {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = remove(cli, container, true);
                return Err(e);
            }
        },
        None => None,
    };
    // Blocked before start, so no signal is lost in between.
    let mask = block_forwarded(!args.detach)?;
    if let Err(e) = container.start() {
        if let Ok(c) = Container::load(root, &args.create.id) {
            let _ = remove(cli, c, true);
        }
        return Err(fail(e));
    }
    if args.detach {
        return Ok(0);
    }
    // This process is the init's parent: its pid stays valid until reaped.
    let pid = Some(container.init_pid());
    let code = match master {
        Some(m) => tty::proxy(pid, || Ok(container.try_wait()?), &mask, m)?,
        None => wait_forwarding(pid, || Ok(container.try_wait()?), &mask)?,
    };
    if !args.keep {
        remove(cli, container, true)?;
    }
    Ok(code)
}

/// `hull CMD failed: …`, exiting `not_found` for a missing (or not
/// executable) binary and 1 otherwise.
fn launch_failure(cmd: &str, not_found: i32, e: Error) -> Failure {
    let code = match e {
        Error::Process(ProcessError::Init(InitError::NotFound(_))) => not_found,
        _ => 1,
    };
    Failure {
        message: format!("hull {cmd} failed: {e}"),
        code,
    }
}

/// In the foreground, blocks the signals passed on to the container's
/// process and SIGCHLD (before it starts, so none is lost); the set to wait
/// on (empty otherwise).
pub(super) fn block_forwarded(foreground: bool) -> Result<SigSet, Failure> {
    let mut mask = SigSet::empty();
    if foreground {
        for s in FORWARDED.iter().chain(&[Signal::SIGCHLD]) {
            mask.add(*s);
        }
        mask.thread_block()
            .map_err(|e| Failure::new(format!("block signals: {e}")))?;
    }
    Ok(mask)
}

/// Waits until `try_wait` reports an exit code, passing the forwarded
/// signals on to `pid`.
pub(super) fn wait_forwarding(
    pid: Option<Pid>,
    mut try_wait: impl FnMut() -> Result<Option<i32>, Failure>,
    mask: &SigSet,
) -> Outcome {
    loop {
        if let Some(code) = try_wait()? {
            return Ok(code);
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                if let Some(pid) = pid {
                    let _ = kill(pid, sig);
                }
            }
            Err(e) => return Err(Failure::new(format!("wait for signals: {e}"))),
        }
    }
}
