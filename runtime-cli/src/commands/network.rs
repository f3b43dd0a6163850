//! `hull network create|ls|inspect|rm`, and connecting containers on
//! `create`/`run` (`--network`, `-p`, or the `org.hull.network` /
//! `org.hull.publish` annotations) and disconnecting them on delete.
//!
//! Without any of those, hull does no networking at all, like runc: engines
//! wire the network namespace themselves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bridge::{NetworkOptions, PortMapping, Store};
use libcontainer::Container;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dns;
use crate::cli::{Cli, CreateArgs, NetworkCommand};
use crate::{Failure, Outcome};

/// Annotation naming the network to join ("" for the default network).
pub const NETWORK_ANNOTATION: &str = "org.hull.network";
/// Annotation with comma-separated port mappings, as `-p` takes them.
pub const PUBLISH_ANNOTATION: &str = "org.hull.publish";
/// The container-side interface name.
const IFNAME: &str = "eth0";
/// The file beside a container's state where its network attachment is
/// recorded (see `Container::companion_path`).
const RECORD: &str = "network.json";

fn net_err(e: bridge::NetError) -> Failure {
    Failure::new(e.to_string())
}

fn store(cli: &Cli) -> Store {
    Store::new(&cli.net_root, &cli.net_table)
}

pub fn command(cli: &Cli, cmd: &NetworkCommand) -> Outcome {
    let store = store(cli);
    match cmd {
        NetworkCommand::Create {
            subnet,
            dns_host_port,
            dns_upstream,
            name,
        } => {
            let dns_options = dns::options(*dns_host_port, dns_upstream)?;
            let net = store
                .create_with(name, &network_options(subnet)?)
                .map_err(net_err)?;
            if let Err(e) = dns::configure(cli, name, &dns_options) {
                let _ = store.remove(name);
                return Err(e);
            }
            println!("{}", net.name);
        }
        NetworkCommand::Ls => {
            println!("{:<20} {:<16} {:<18} GATEWAY", "NAME", "BRIDGE", "SUBNET");
            for n in store.list().map_err(net_err)? {
                println!(
                    "{:<20} {:<16} {:<18} {}",
                    n.name,
                    n.bridge,
                    n.subnet.to_string(),
                    n.gateway
                );
                if let (Some(s6), Some(g6)) = (n.subnet6, n.gateway6) {
                    println!("{:<20} {:<16} {:<18} {g6}", "", "", s6.to_string());
                }
            }
        }
        NetworkCommand::Inspect { name } => {
            let net = store.get(name).map_err(net_err)?;
            let containers = store.attachments(Some(name)).map_err(net_err)?;
            let resolver = dns::inspect(cli, &net);
            let out = json!({ "network": net, "containers": containers, "dns": resolver });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("serializable")
            );
        }
        NetworkCommand::Rm { name } => store.remove(name).map_err(net_err)?,
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

/// What networking a new container asked for, from flags or annotations.
pub struct Request {
    network: Option<String>,
    ports: Vec<PortMapping>,
    dns: Option<bridge::dns::Member>,
}

impl Request {
    /// The network asked for (`None`: the default network).
    pub fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }
}

/// The networking `create`/`run` asks for, with its ports parsed: called
/// before the container is created, so a bad `-p` leaves nothing behind.
pub fn request(
    args: &CreateArgs,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<Request>, Failure> {
    let mut network = args
        .network
        .clone()
        .or_else(|| annotations.get(NETWORK_ANNOTATION).cloned());
    let mut specs = args.publish.clone();
    if let Some(list) = annotations.get(PUBLISH_ANNOTATION) {
        specs.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    if network.is_none() && specs.is_empty() {
        return Ok(None);
    }
    let ports = specs
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<PortMapping>, String>>()
        .map_err(Failure::new)?;
    network = network.filter(|n| !n.is_empty());
    let dns = bridge::dns::Member::from_annotations(annotations)
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(Some(Request {
        network,
        ports,
        dns,
    }))
}

/// Where a container's attachment lives, so delete finds it whatever flags it gets.
#[derive(Serialize, Deserialize)]
struct Record {
    net_root: PathBuf,
    net_table: String,
    ifname: String,
}

/// Connects a just-created container as `request` asked (its init waits
/// for `start`, so the process sees `eth0` from its first instruction).
pub fn connect(cli: &Cli, request: Option<Request>, container: &Container) -> Result<(), Failure> {
    let Some(req) = request else {
        return Ok(());
    };
    let pid = container
        .pid()
        .ok_or_else(|| Failure::new("container init is gone"))?;
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    if same_file(&netns, Path::new("/proc/self/ns/net")) {
        return Err(Failure::new(
            "networking needs the container to have its own network namespace",
        ));
    }
    let store = store(cli);
    let net = match &req.network {
        Some(name) => store.get(name),
        None => store.default_network(),
    }
    .map_err(net_err)?;
    // Recorded first: a crash half-way still leaves delete something to undo.
    let record = Record {
        net_root: cli.net_root.clone(),
        net_table: cli.net_table.clone(),
        ifname: IFNAME.into(),
    };
    let path = container.companion_path(RECORD);
    // Whole or not at all: a kill never leaves a record delete cannot read.
    bridge::whole_file::create(&path, &serde_json::to_vec(&record).expect("serializable"))
        .map_err(|e| Failure::new(format!("write {}: {e}", path.display())))?;
    if let Some(member) = &req.dns {
        member
            .save(store.dir(), &net.name, container.id())
            .map_err(|e| Failure::new(e.to_string()))?;
    }
    store
        .attach(&net, container.id(), IFNAME, &netns, &req.ports)
        .map_err(net_err)?;
    dns::start_resolver(cli, &net.name)
}

/// A container's network attachment, as its record says.
pub struct Attachment {
    store: Store,
    id: String,
    ifname: String,
    record: PathBuf,
}

/// Reads a container's attachment record.
pub fn recorded(container: &Container) -> Option<Attachment> {
    recorded_at(container.companion_path(RECORD), container.id())
}

/// Reads the attachment record of container `id` under the state root
/// `root` whose state cannot be loaded (see `delete`).
pub fn recorded_by_id(root: &Path, id: &str) -> Option<Attachment> {
    recorded_at(Container::companion_in(root, id, RECORD), id)
}

fn recorded_at(record: PathBuf, id: &str) -> Option<Attachment> {
    let bytes = std::fs::read(&record).ok()?;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    Some(Attachment {
        store: Store::new(r.net_root, &r.net_table),
        id: id.to_owned(),
        ifname: r.ifname,
        record,
    })
}

/// Tears down an attachment [`recorded`] found, then removes its record
/// (last, so a disconnect killed half-way can be run again: detaching is
/// idempotent).
pub fn disconnect(attachment: Option<Attachment>) -> Result<(), Failure> {
    let Some(a) = attachment else {
        return Ok(());
    };
    a.store.detach(&a.id, &a.ifname).map_err(net_err)?;
    match std::fs::remove_file(&a.record) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Failure::new(format!("remove {}: {e}", a.record.display())))
        }
        _ => Ok(()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}
