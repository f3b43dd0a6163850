//! Multi-host networks: a VXLAN overlay whose hosts agree on who owns which
//! node subnet through etcd, as flannel's VXLAN backend does.
//!
//! `network create --driver vxlan` on a host leases a node subnet (e.g. a
//! /24) of the network's range in the store ([`store`]), creates the VXLAN
//! device ([`vxlan`]) and the network's bridge with the node subnet's
//! gateway, and starts the network's agent ([`agent`], a process of hull's
//! own, [`supervise`]d like the DNS resolver). The agent keeps the lease
//! alive and, watching the store, programs each remote host's route,
//! neighbour and FDB entries on the VXLAN device, and removes them when the
//! host leaves. Containers attach to the bridge as on any network, with an
//! address of the node subnet; their traffic within the range is not
//! masqueraded.
//!
//! Local state, beside the network's under the state directory:
//!
//! ```text
//! overlay/<net>/overlay.json   the store, the options, the underlay address, the device
//! overlay/<net>/lease.json     the etcd lease the node subnet is on (the agent renews it)
//! overlay/<net>/agent.pid      the agent's pid, flock'd by it while it runs
//! overlay/<net>/agent.log      what the agent reports
//! ```

pub mod agent;
mod error;
#[cfg(test)]
mod etcd_tests;
pub mod names;
pub mod store;
pub mod supervise;
pub mod vxlan;

pub use error::OverlayError;
pub use store::{OverlayConfig, Peer, PeerRecord};

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::store::EtcdStore;
use crate::netlink::Route;
use crate::whole_file::{remove_json, write_json};
use crate::{link, sysctl, NetError, Network, NetworkOptions, Store, Subnet};

/// The VXLAN UDP port IANA assigned (flannel defaults to Linux's 8472).
pub const DEFAULT_PORT: u16 = 4789;
/// The VNI a network gets unless one is given.
pub const DEFAULT_VNI: u32 = 1;
/// The node subnets' prefix length unless one is given.
pub const DEFAULT_NODE_PREFIX: u8 = 24;

/// What `network create --driver vxlan` asks for.
#[derive(Debug, Clone)]
pub struct OverlayOptions {
    pub config: OverlayConfig,
    /// `etcd://HOST:PORT`.
    pub store: String,
    /// This host's address on the underlay; default: the address it
    /// reaches the store from.
    pub underlay: Option<Ipv4Addr>,
}

/// An overlay network's local record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub config: OverlayConfig,
    /// The store's `HOST:PORT`.
    pub store: String,
    pub underlay: Ipv4Addr,
    /// The VXLAN device.
    pub device: String,
}

/// The overlay state directory of network `net`.
pub fn state_dir(store: &Store, net: &str) -> PathBuf {
    store.dir().join("overlay").join(net)
}

fn overlay_file(store: &Store, net: &str) -> PathBuf {
    state_dir(store, net).join("overlay.json")
}

fn lease_file(store: &Store, net: &str) -> PathBuf {
    state_dir(store, net).join("lease.json")
}

/// Network `net`'s overlay record; `None` for a bridge network.
pub fn load(store: &Store, net: &str) -> Result<Option<Overlay>, NetError> {
    let path = overlay_file(store, net);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| NetError::Invalid(format!("corrupt {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NetError::io(format!("read {}", path.display()))(e)),
    }
}

/// The whole range of overlay network `net` (`None` for a bridge network).
pub fn range_of(store: &Store, net: &str) -> Result<Option<Subnet>, NetError> {
    Ok(load(store, net)?.map(|o| o.config.subnet))
}

/// The lease this host's node subnet is on.
pub fn lease(store: &Store, net: &str) -> Result<i64, NetError> {
    let path = lease_file(store, net);
    let bytes = std::fs::read(&path).map_err(NetError::io(format!("read {}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| NetError::Invalid(format!("corrupt {}: {e}", path.display())))
}

pub(crate) fn save_lease(store: &Store, net: &str, id: i64) -> Result<(), NetError> {
    write_json(&lease_file(store, net), &id)
}

/// The address this host reaches `store` (`HOST:PORT`) from: the
/// underlay address when none is given.
fn source_address(store: &str) -> Result<Ipv4Addr, NetError> {
    let target = store::resolve(store)?;
    let sock = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect(target).map(|()| s))
        .map_err(NetError::io(format!("find the route to {store}")))?;
    match sock.local_addr().map(|a| a.ip()) {
        Ok(std::net::IpAddr::V4(ip)) => Ok(ip),
        _ => Err(NetError::Invalid(format!(
            "no IPv4 address of this host reaches {store}: give --underlay"
        ))),
    }
}

/// This host's name, for the other hosts' `network inspect`.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// Creates overlay network `name` on this host (see the module
/// documentation) and starts its agent, `exe` (hull's own binary). On
/// error nothing of it is left, here or in the store.
pub fn create(
    store: &Store,
    name: &str,
    options: &OverlayOptions,
    exe: &Path,
) -> Result<Network, NetError> {
    let config = &options.config;
    config.validate()?;
    let endpoint = store::parse_endpoint(&options.store)?;
    match store.get(name) {
        Err(NetError::NoSuchNetwork(_)) => {}
        Ok(_) => return Err(NetError::NetworkExists(name.to_owned())),
        Err(e) => return Err(e),
    }
    let underlay = match options.underlay {
        Some(u) => u,
        None => source_address(&endpoint)?,
    };
    let device = vxlan::device_name(config.vni);
    let mut nl = Route::open()?;
    // Checked before the store is asked for anything.
    let (_, uplink_mtu) = vxlan::uplink(&mut nl, underlay)?;
    if let Some(other) = vxlan::vni_user(&mut nl, config.vni)? {
        return Err(OverlayError::VniInUse {
            vni: config.vni,
            device: other,
        }
        .into());
    }
    if link::index(&mut nl, &device)?.is_some() {
        return Err(NetError::Invalid(format!("device {device} already exists")));
    }
    if let Some(r) = nl
        .ipv4_route_destinations()?
        .into_iter()
        .find(|r| r.prefix > 0 && r.overlaps(&config.subnet))
    {
        return Err(NetError::Invalid(format!(
            "subnet {} overlaps the route to {r} of this host",
            config.subnet
        )));
    }
    let overlay = Overlay {
        config: config.clone(),
        store: endpoint,
        underlay,
        device,
    };
    // Recorded first, before anything is made (so `network rm` finds and
    // removes what a create killed at any point made), and exclusively: a
    // create of the same name racing this one fails here, before it
    // touches anything the other made.
    claim_record(store, name, &overlay)?;
    let made = make(store, name, &overlay, uplink_mtu, exe, &mut nl);
    if made.is_err() {
        // The same path as `network rm` after a create was killed.
        let _ = store.remove(name);
    }
    made
}

/// The steps of [`create`] after the overlay record: each recorded before
/// it is made (the lease before a key is put on it, the network before
/// its bridge and device), so [`teardown`] finds all of it.
fn make(
    store: &Store,
    name: &str,
    overlay: &Overlay,
    uplink_mtu: u32,
    exe: &Path,
    nl: &mut Route,
) -> Result<Network, NetError> {
    let config = &overlay.config;
    let mut etcd = EtcdStore::connect(&overlay.store, name)?;
    etcd.ensure_config(name, config)?;
    let lease = etcd.grant()?;
    save_lease(store, name, lease)?;
    let mut me = PeerRecord {
        underlay: overlay.underlay,
        vtep_mac: String::new(),
        host: hostname(),
    };
    let node = etcd.claim_free(config, lease, &me)?;
    let options = NetworkOptions {
        subnet: Some(node),
        mtu: Some(vxlan::inner_mtu(uplink_mtu)),
        ..NetworkOptions::default()
    };
    let net = store.create_with(name, &options)?;
    let spec = vxlan::DeviceSpec {
        name: overlay.device.clone(),
        vni: config.vni,
        port: config.port,
        underlay: overlay.underlay,
        node,
    };
    let dev = vxlan::ensure_device(nl, &spec)?;
    sysctl::enable_forwarding(&overlay.device)?;
    me.vtep_mac = vxlan::mac_of(nl, dev)?;
    etcd.reclaim(node, lease, &me)?;
    store.prepare_bridge(nl, &net)?;
    supervise::ensure_running(store, name, exe)?;
    Ok(net)
}

/// Creates network `name`'s overlay record; `NetworkExists` if there is one.
fn claim_record(store: &Store, name: &str, overlay: &Overlay) -> Result<(), NetError> {
    let path = overlay_file(store, name);
    let dir = state_dir(store, name);
    std::fs::create_dir_all(&dir).map_err(NetError::io(format!("create {}", dir.display())))?;
    let json = serde_json::to_vec_pretty(overlay).expect("serializable");
    match crate::whole_file::create(&path, &json) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(NetError::NetworkExists(name.to_owned()))
        }
        r => r.map_err(NetError::io(format!("write {}", path.display()))),
    }
}

/// Stops network `net`'s agent, withdraws this host from the store and
/// deletes the VXLAN device and the overlay state. Fine for a bridge
/// network (nothing to do), and for what a create killed half-way made
/// (no lease or network record yet). A store that cannot be reached does
/// not stop it: the lease runs out by itself within its TTL.
pub fn teardown(store: &Store, net: &str) -> Result<(), NetError> {
    let dir = state_dir(store, net);
    let Some(overlay) = load(store, net)? else {
        return remove_dir(&dir);
    };
    supervise::stop(store, net)?;
    let lease = lease(store, net).ok();
    let node = store.get(net).ok().map(|n| n.subnet);
    if let Ok(mut etcd) = EtcdStore::connect(&overlay.store, net) {
        let _ = etcd.withdraw(node, lease);
    }
    link::delete(&mut Route::open()?, &overlay.device)?;
    remove_json(&lease_file(store, net))?;
    remove_json(&overlay_file(store, net))?;
    remove_dir(&dir)
}

fn remove_dir(dir: &Path) -> Result<(), NetError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(NetError::io(format!("remove {}", dir.display()))(e))
        }
        _ => Ok(()),
    }
}

/// A remote host of the network as `network inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerState {
    pub subnet: Subnet,
    pub underlay: Ipv4Addr,
    pub vtep_mac: String,
    pub host: String,
    /// `programmed` once its route, neighbour and FDB entries are on the
    /// device, else `pending`.
    pub state: &'static str,
}

/// What `network inspect` shows of an overlay network.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    #[serde(flatten)]
    pub overlay: Overlay,
    pub node_subnet: Subnet,
    pub agent: supervise::Status,
    /// The other hosts; `None` when the store could not be asked.
    pub peers: Option<Vec<PeerState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

/// Network `net`'s overlay, its agent and its peers; `None` for a bridge
/// network.
pub fn inspect(store: &Store, net: &Network) -> Result<Option<Inspection>, NetError> {
    let Some(overlay) = load(store, &net.name)? else {
        return Ok(None);
    };
    let agent = supervise::status(store, &net.name)?;
    let mut nl = Route::open()?;
    let programmed = match link::index(&mut nl, &overlay.device)? {
        Some(dev) => vxlan::programmed(&mut nl, dev)?,
        None => vxlan::Programmed::default(),
    };
    let peers = EtcdStore::connect(&overlay.store, &net.name).and_then(|mut e| e.peers());
    let (peers, store_error) = match peers {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let peers = peers.map(|all| {
        all.into_iter()
            .filter(|p| p.subnet != net.subnet)
            .map(|p| {
                let done = agent::remote_of(&p).is_some_and(|r| programmed.has(&r));
                PeerState {
                    subnet: p.subnet,
                    underlay: p.record.underlay,
                    vtep_mac: p.record.vtep_mac,
                    host: p.record.host,
                    state: if done { "programmed" } else { "pending" },
                }
            })
            .collect()
    });
    Ok(Some(Inspection {
        overlay,
        node_subnet: net.subnet,
        agent,
        peers,
        store_error,
    }))
}
