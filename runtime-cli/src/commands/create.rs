//! `hull create`.

use std::collections::BTreeMap;
use std::path::Path;

use libcontainer::{validate_id, Bundle, ContainerBuilder};

use super::{dns, network, volume};
use crate::cli::{Cli, CreateArgs};
use crate::{Failure, Outcome};

/// The builder for `create` and `run` from their shared flags.
pub fn builder(root: &Path, args: &CreateArgs, systemd_cgroup: bool) -> ContainerBuilder {
    let mut b = ContainerBuilder::new(&args.id, &args.bundle)
        .root(root)
        .systemd_cgroup(systemd_cgroup)
        .preserve_fds(args.preserve_fds)
        .no_pivot(args.no_pivot)
        .no_new_keyring(args.no_new_keyring);
    if let Some(p) = &args.pid_file {
        b = b.pid_file(p);
    }
    if let Some(p) = &args.console_socket {
        b = b.console_socket(p);
    }
    b
}

#[inline(never)]
pub fn create(cli: &Cli, args: &CreateArgs) -> Outcome {
    let fail = |e: String| Failure::new(format!("hull create failed: {e}"));
    let root = cli.state_root()?;
    validate_id(&args.id).map_err(|e| fail(e.to_string()))?;
    let mut bundle = Bundle::load(&args.bundle).map_err(|e| fail(e.to_string()))?;
    let request =
        network::request(cli, args, &annotations(&bundle)).map_err(|e| fail(e.message))?;
    dns::prepare(cli, request.as_ref(), &mut bundle).map_err(|e| fail(e.message))?;
    let volumes = volume::request(cli, args, &annotations(&bundle)).map_err(|e| fail(e.message))?;
    let mut b = builder(&root, args, cli.systemd_cgroup).preloaded(bundle);
    if let Some(r) = request {
        b = b.network(r);
    }
    if let Some(v) = volumes {
        b = b.volumes(v);
    }
    b.create().map_err(|e| fail(e.to_string()))?;
    Ok(0)
}

/// The config's annotations (they may ask for networking and volumes).
pub fn annotations(bundle: &Bundle) -> BTreeMap<String, String> {
    let all = bundle.spec.annotations().clone().unwrap_or_default();
    all.into_iter().collect()
}
