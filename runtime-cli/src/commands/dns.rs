//! `hull dns serve|query`, and what networking needs of the resolver:
//! starting it on an attach, a container's /etc/resolv.conf, its state for
//! `network inspect`.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bridge::dns::{self, Config};
use bridge::{ContainerNetwork, Network, Store};
use libcontainer::Bundle;
use oci_spec::runtime::MountBuilder;
use serde_json::{json, Value};

use crate::cli::{Cli, DnsCommand};
use crate::{Failure, Outcome};

fn dns_err(e: dns::DnsError) -> Failure {
    Failure::new(e.to_string())
}

#[inline(never)]
pub fn command(cli: &Cli, cmd: &DnsCommand) -> Outcome {
    match cmd {
        DnsCommand::Serve { ready_fd, network } => {
            dns::serve(&cli.net_root, network, *ready_fd).map_err(dns_err)?;
        }
        DnsCommand::Query {
            host,
            network,
            name,
            record_type,
        } => {
            let store = Store::new(&cli.net_root, &cli.net_table);
            let net = store
                .get(network)
                .map_err(|e| Failure::new(e.to_string()))?;
            let server = if *host {
                let port = Config::load(&cli.net_root, network)
                    .map_err(dns_err)?
                    .host_port
                    .ok_or_else(|| Failure::new(format!("network {network} has no host view")))?;
                SocketAddr::from(([127, 0, 0, 1], port))
            } else {
                SocketAddr::new(IpAddr::V4(net.gateway), 53)
            };
            let ty = record_type.as_deref().unwrap_or("A").to_ascii_uppercase();
            let ty = dns::query::RecordType::from_str(&ty)
                .map_err(|_| Failure::new(format!("unknown record type {ty:?}")))?;
            let reply = dns::query::ask(server, name, ty).map_err(dns_err)?;
            println!("status: {}", reply.metadata.response_code);
            for r in reply.answers.iter().chain(&reply.additionals) {
                println!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data);
            }
            if reply.metadata.response_code != dns::query::ResponseCode::NoError {
                return Ok(1);
            }
        }
    }
    Ok(0)
}

/// The network's DNS options given to `network create`, checked before
/// the network is made.
pub fn options(host_port: Option<u16>, upstreams: &[String]) -> Result<Config, Failure> {
    if host_port == Some(0) {
        return Err(Failure::new("--dns-host-port: ports are 1-65535"));
    }
    let upstreams = upstreams
        .iter()
        .map(|u| {
            u.parse::<SocketAddr>()
                .or_else(|_| u.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    Failure::new(format!("--dns-upstream {u:?}: expected ADDR or ADDR:PORT"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Config {
        host_port,
        upstreams,
    })
}

/// Saves `config` for network `net`, unless it is all defaults.
pub fn configure(cli: &Cli, net: &str, config: &Config) -> Result<(), Failure> {
    if *config != Config::default() {
        config.save(&cli.net_root, net).map_err(dns_err)?;
    }
    Ok(())
}

/// The command that runs a network's resolver, given to every container
/// network request: `hull dns serve NET` from the running binary itself
/// (after the CVE-2019-5736 re-exec it is a read-only mount or sealed copy
/// with no path of its own, and the resolver runs from the same protected
/// file).
pub fn resolver_command(cli: &Cli) -> (PathBuf, Vec<OsString>) {
    let args: Vec<OsString> = vec![
        "--net-root".into(),
        cli.net_root.clone().into(),
        "--net-table".into(),
        cli.net_table.clone().into(),
        "dns".into(),
        "serve".into(),
    ];
    (PathBuf::from("/proc/self/exe"), args)
}

/// Before a networked container is created: its resolv.conf mount.
pub fn prepare(
    cli: &Cli,
    request: Option<&ContainerNetwork>,
    bundle: &mut Bundle,
) -> Result<(), Failure> {
    let Some(req) = request else {
        return Ok(());
    };
    let store = Store::new(&cli.net_root, &cli.net_table);
    let net = match req.network_name() {
        Some(name) => store.get(name),
        None => store.default_network(),
    }
    .map_err(|e| Failure::new(e.to_string()))?;
    mount_resolv_conf(cli, &net, bundle)
}

/// Points the container's /etc/resolv.conf at the network's resolver: a
/// file hull writes, bind-mounted read-only, unless the config mounts one
/// already or the image has no /etc (nothing is created in its rootfs).
pub fn mount_resolv_conf(cli: &Cli, net: &Network, bundle: &mut Bundle) -> Result<(), Failure> {
    let store = &cli.net_root;
    let target = Path::new("/etc/resolv.conf");
    let mounts = bundle.spec.mounts().clone().unwrap_or_default();
    if mounts.iter().any(|m| m.destination() == target) || !bundle.rootfs.join("etc").is_dir() {
        return Ok(());
    }
    let path = dns::net_dir(store, &net.name).join("resolv.conf");
    let mut text = format!("nameserver {}\n", net.gateway);
    if let Some(g6) = net.gateway6 {
        text.push_str(&format!("nameserver {g6}\n"));
    }
    text.push_str(&format!("search {}\noptions ndots:1\n", net.name));
    let write = || {
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        // Containers attaching at once each write their own temporary file.
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| Failure::new(format!("write {}: {e}", path.display())))?;
    let mount = MountBuilder::default()
        .destination(target)
        .typ("bind")
        .source(&path)
        .options(vec![
            "rbind".into(),
            "ro".into(),
            "nosuid".into(),
            "nodev".into(),
            "noexec".into(),
        ])
        .build()
        .map_err(|e| Failure::new(format!("resolv.conf mount: {e}")))?;
    let mut all = mounts;
    all.push(mount);
    bundle.spec.set_mounts(Some(all));
    Ok(())
}

/// The resolver's state for `network inspect`.
pub fn inspect(cli: &Cli, net: &Network) -> Value {
    let status = dns::status(&cli.net_root, &net.name).ok();
    let config = Config::load(&cli.net_root, &net.name).unwrap_or_default();
    let mut listen = vec![SocketAddr::new(IpAddr::V4(net.gateway), 53).to_string()];
    listen.extend(
        net.gateway6
            .map(|g| SocketAddr::new(IpAddr::V6(g), 53).to_string()),
    );
    json!({
        "running": status.as_ref().is_some_and(|s| s.running),
        "pid": status.and_then(|s| s.pid),
        "listen": listen,
        "host_port": config.host_port,
        "upstreams": config.upstreams,
    })
}
