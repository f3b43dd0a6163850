//! `hull network create|ls|inspect|rm`, and what networking `create`/`run`
//! ask for (`--network`, `-p`, or the `org.hull.network` /
//! `org.hull.publish` annotations); `bridge::ContainerNetwork` connects and
//! disconnects (the latter on the container's delete).
//!
//! Without any of those, hull does no networking at all, like runc: engines
//! wire the network namespace themselves.

use std::collections::BTreeMap;

use bridge::{ContainerNetwork, NetworkOptions, Store};
use serde_json::json;

use super::{dns, overlay};
use crate::cli::{Cli, CreateArgs, NetworkCommand, NetworkDriver};
use crate::{Failure, Outcome};

pub(super) fn net_err(e: bridge::NetError) -> Failure {
    Failure::new(e.to_string())
}

fn store(cli: &Cli) -> Store {
    Store::new(&cli.net_root, &cli.net_table)
}

#[inline(never)]
pub fn command(cli: &Cli, cmd: &NetworkCommand) -> Outcome {
    let store = store(cli);
    match cmd {
        NetworkCommand::Create {
            subnet,
            dns_host_port,
            dns_upstream,
            driver,
            overlay: overlay_args,
            name,
        } => {
            let dns_options = dns::options(*dns_host_port, dns_upstream)?;
            let net = match driver {
                NetworkDriver::Bridge => {
                    overlay::refuse_options(overlay_args)?;
                    store.create_with(name, &network_options(subnet)?)
                }
                NetworkDriver::Vxlan => {
                    let options = overlay::options(subnet, overlay_args)?;
                    let exe = std::path::Path::new("/proc/self/exe");
                    bridge::overlay::create(&store, name, &options, exe)
                }
            }
            .map_err(net_err)?;
            if let Err(e) = dns::configure(cli, name, &dns_options) {
                let _ = store.remove(name);
                return Err(e);
            }
            println!("{}", net.name);
        }
        NetworkCommand::Ls => {
            println!(
                "{:<20} {:<8} {:<16} {:<18} GATEWAY",
                "NAME", "DRIVER", "BRIDGE", "SUBNET"
            );
            for n in store.list().map_err(net_err)? {
                let driver = match bridge::overlay::load(&store, &n.name).map_err(net_err)? {
                    Some(_) => "vxlan",
                    None => "bridge",
                };
                println!(
                    "{:<20} {:<8} {:<16} {:<18} {}",
                    n.name,
                    driver,
                    n.bridge,
                    n.subnet.to_string(),
                    n.gateway
                );
                if let (Some(s6), Some(g6)) = (n.subnet6, n.gateway6) {
                    println!(
                        "{:<20} {:<8} {:<16} {:<18} {g6}",
                        "",
                        "",
                        "",
                        s6.to_string()
                    );
                }
            }
        }
        NetworkCommand::Inspect { name } => {
            let net = store.get(name).map_err(net_err)?;
            let containers = store.attachments(Some(name)).map_err(net_err)?;
            let resolver = dns::inspect(cli, &net);
            let overlay = bridge::overlay::inspect(&store, &net).map_err(net_err)?;
            let mut out = json!({ "network": net, "containers": containers, "dns": resolver });
            if let Some(o) = overlay {
                out["overlay"] = json!(o);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("serializable")
            );
        }
        NetworkCommand::Rm { name } => store.remove(name).map_err(net_err)?,
        NetworkCommand::Agent { ready_fd, name } => {
            bridge::overlay::agent::run(&store, name, *ready_fd).map_err(net_err)?
        }
    }
    Ok(0)
}

/// The subnets of `network create --subnet`: at most one per family.
fn network_options(subnets: &[String]) -> Result<NetworkOptions, Failure> {
    let mut options = NetworkOptions::default();
    for s in subnets {
        let twice = || Failure::new(format!("--subnet {s}: one subnet per address family"));
        if s.contains(':') {
            let s6 = s.parse().map_err(Failure::new)?;
            if options.subnet6.replace(s6).is_some() {
                return Err(twice());
            }
        } else {
            let s4 = s.parse().map_err(Failure::new)?;
            if options.subnet.replace(s4).is_some() {
                return Err(twice());
            }
        }
    }
    Ok(options)
}

/// What disconnects a container on delete: its state names the store it is
/// attached in; this call's flags serve only when that state is lost.
pub fn teardown(cli: &Cli) -> ContainerNetwork {
    ContainerNetwork::new(store(cli))
}

/// The networking `create`/`run` asks for (flags, else annotations), with
/// its ports parsed: called before the container is created, so a bad `-p`
/// leaves nothing behind.
pub fn request(
    cli: &Cli,
    args: &CreateArgs,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<ContainerNetwork>, Failure> {
    let request = ContainerNetwork::requested(
        store(cli),
        args.network.as_deref(),
        &args.publish,
        annotations,
    )
    .map_err(net_err)?;
    Ok(request.map(|r| {
        let (exe, args) = dns::resolver_command(cli);
        r.resolver(exe, args)
    }))
}
