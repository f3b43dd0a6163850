//! `hull restore`: a container rebuilt by CRIU from a checkpoint, new or
//! in the place of the checkpointed container of the same id (whose veth
//! goes back on its hull network, with the address and published ports it
//! kept); in the foreground (without `--detach`) hull waits for it with
//! signals forwarded, deletes it and exits with its exit code, as `run`
//! does.

use bridge::ContainerNetwork;
use libcontainer::checkpoint::{self, CheckpointError, RestoreOptions};
use libcontainer::{write_pid_file, Bundle, Container};

use super::checkpoint::{criu, criu_flags, image_path};
use super::delete::remove;
use super::run::{block_forwarded, wait_forwarding};
use super::{dns, network};
use crate::cli::{Cli, RestoreArgs};
use crate::{Failure, Outcome};

#[inline(never)]
pub fn restore(cli: &Cli, args: &RestoreArgs) -> Outcome {
    let fail = |e: String| Failure::new(format!("hull restore failed: {e}"));
    let mut opts = options(cli, args).map_err(|e| fail(e.to_string()))?;
    let root = cli.state_root()?;
    let attachment = Container::load(&root, &args.id)
        .ok()
        .filter(Container::is_checkpointed)
        .and_then(|c| ContainerNetwork::recorded(&c));
    let mut bundle = Bundle::load(&args.bundle).map_err(|e| fail(e.to_string()))?;
    if let Some(a) = &attachment {
        opts.veths.push(a.veth_pair().map_err(network::net_err)?);
        // The resolv.conf mount create added, for CRIU to find its source.
        let net = a.network().map_err(network::net_err)?;
        dns::mount_resolv_conf(cli, &net, &mut bundle)?;
    }
    // Blocked before the restore, so no signal is lost in between.
    let mask = block_forwarded(!args.detach)?;
    let container = match checkpoint::restore(&root, &args.id, bundle, &opts) {
        Ok(c) => c,
        Err(e) => {
            // A veth CRIU made before it failed goes now, so a retry finds
            // its name free; the address and ports stay the container's.
            if let Some(a) = &attachment {
                let _ = a.checkpointed();
            }
            return Err(fail(e.to_string()));
        }
    };
    let finish = || -> Result<(), String> {
        if let Some(a) = &attachment {
            a.restored().map_err(|e| e.to_string())?;
        }
        if let Some(path) = &args.pid_file {
            write_pid_file(path, container.init_pid()).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = remove(cli, container, true);
        return Err(fail(e));
    }
    if args.detach {
        return Ok(0);
    }
    // The restored init is this process's child until reaped.
    let pid = Some(container.init_pid());
    let code = wait_forwarding(pid, || Ok(container.try_wait()?), &mask)?;
    remove(cli, container, true)?;
    Ok(code)
}

fn options(cli: &Cli, args: &RestoreArgs) -> Result<RestoreOptions, CheckpointError> {
    let f = &args.criu;
    Ok(RestoreOptions {
        criu: criu(cli),
        image_path: image_path(f)?,
        work_path: f.work_path.clone(),
        console_socket: args.console_socket.clone(),
        no_pivot: args.no_pivot,
        flags: criu_flags(f)?,
        lsm_profile: args.lsm_profile.clone(),
        lsm_mount_context: args.lsm_mount_context.clone(),
        veths: Vec::new(),
    })
}
