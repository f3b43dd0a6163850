//! The `hull` and `bridge` roles: attach a container interface to a hull
//! bridge network through [`Store`] (bridge, lease, veth pair, addresses,
//! routes, masquerade, and for `hull` the published ports), detach it, and
//! check it.
//!
//! The network is created on the first ADD. Its state is a [`Store`]
//! directory: `dataDir` for `hull`; for `bridge`, `<ipam.dataDir>/.hull`,
//! with the leases where host-local keeps its reservations,
//! `<ipam.dataDir>/<network>/<ip>` (and, on a dual-stack network, a file
//! for the IPv6 address too: [`lease6`]).

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bridge::Ipam;
use bridge::{Attachment, NetError, Network, NetworkOptions, PortMapping, Store, Subnet6};

use super::config::{Layout, NetSpec, DEFAULT_VERSION};
use super::env::{Op, Target};
use super::error::{code, CniError};
use super::iface::{self, Link};
use super::lease6;
use super::result::{CniResult, Dns, Interface, IpConfig, RouteConfig};
use super::state;

/// The first argument that makes the plugin executable a network's
/// resolver: `hull-cni dns-serve STORE NETWORK --ready-fd FD`.
pub const DNS_SERVE: &str = "dns-serve";
/// The lock held while a network is looked up or created, in the store
/// directory.
const NETWORK_LOCK: &str = "cni.lock";
/// Under host-local's data directory: hull's store.
const HULL_SUBDIR: &str = ".hull";
/// The container's default routes, IPv4 and IPv6.
const DEFAULT_ROUTE: &str = "0.0.0.0/0";
const DEFAULT_ROUTE6: &str = "::/0";

/// Runs `op` for the container interface `target`; ADD returns the result.
pub fn run(op: Op, spec: &NetSpec, target: &Target) -> Result<Option<CniResult>, CniError> {
    match op {
        Op::Add => add(spec, target).map(Some),
        Op::Del => del(spec, target).map(|()| None),
        Op::Check => check(spec, target).map(|()| None),
    }
}

/// Attaches the container, creating the network on first use.
fn add(spec: &NetSpec, target: &Target) -> Result<CniResult, CniError> {
    let (store, dir) = open(spec)?;
    if find(&store, target)?.is_some() {
        return Err(CniError::new(
            code::ALREADY_ATTACHED,
            format!(
                "{} of {} is already attached; DEL it first",
                target.ifname, target.container_id
            ),
        ));
    }
    let net = ensure_network(&store, &dir, spec)?;
    let netns = target.netns()?;
    let ports = spec.ports.clone().unwrap_or_default();
    let att = store
        .attach(
            &net,
            &target.container_id,
            &target.ifname,
            netns,
            &ports,
            None,
        )
        .map_err(|e| CniError::net(&format!("attach to network {}", net.name), e))?;
    let dns = lease6::write(&spec.layout, &att).and_then(|()| resolver(spec, &dir, &net));
    let dns = match dns {
        Ok(dns) => dns,
        Err(e) => {
            let _ = store.detach(&target.container_id, &target.ifname);
            return Err(e);
        }
    };
    let mut ours = result_of(&net, &att, netns);
    ours.dns = dns;
    Ok(match spec.prev_result.clone() {
        Some(prev) => prev.merge(ours),
        None => ours,
    })
}

/// For the `hull` role, the network's resolver (started unless it runs, by
/// this executable's `dns-serve` mode) as the result's DNS settings; the
/// `bridge` role, a stand-in for the reference plugin, has none.
fn resolver(spec: &NetSpec, dir: &Path, net: &Network) -> Result<Dns, CniError> {
    if !matches!(spec.layout, Layout::Hull(_)) {
        return Ok(Dns::default());
    }
    let args = [DNS_SERVE.into(), dir.into(), net.name.clone().into()];
    bridge::dns::ensure_running(dir, &net.name, Path::new("/proc/self/exe"), &args)
        .map_err(|e| CniError::new(code::NETWORKING, e.to_string()))?;
    let mut nameservers = vec![net.gateway.to_string()];
    nameservers.extend(net.gateway6.map(|g| g.to_string()));
    Ok(Dns {
        nameservers,
        search: vec![net.name.clone()],
        ..Dns::default()
    })
}

/// Detaches the container; fine if it is not (or no longer) attached.
fn del(spec: &NetSpec, target: &Target) -> Result<(), CniError> {
    if !store_dir(&spec.layout).exists() {
        return Ok(());
    }
    let (store, _) = open(spec)?;
    match find(&store, target)? {
        Some(att) if att.network == spec.name => {
            lease6::remove(&spec.layout, &att)?;
            store
                .detach(&target.container_id, &target.ifname)
                .map_err(|e| CniError::net("detach", e))
        }
        _ => Ok(()),
    }
}

/// Checks that the attachment ADD made is all there.
fn check(spec: &NetSpec, target: &Target) -> Result<(), CniError> {
    let (store, _) = open(spec)?;
    let att = find(&store, target)?
        .filter(|a| a.network == spec.name)
        .ok_or_else(|| {
            CniError::check(format!(
                "{} of {} is not attached to network {}",
                target.ifname, target.container_id, spec.name
            ))
        })?;
    let net = store
        .get(&spec.name)
        .map_err(|e| CniError::check(e.to_string()))?;
    check_host_side(&net, &att)?;
    check_lease(&spec.layout, &net, &att)?;
    lease6::check(&spec.layout, &att)?;
    check_container_side(target.netns()?, &net, &att)?;
    if let Some(prev) = &spec.prev_result {
        check_prev_result(prev, &net, &att)?;
    }
    if let Some(ports) = &spec.ports {
        check_ports(ports, &att)?;
    }
    Ok(())
}

/// Where the store of `layout` lives.
fn store_dir(layout: &Layout) -> PathBuf {
    match layout {
        Layout::Hull(dir) => dir.clone(),
        Layout::HostLocal(data_dir) => data_dir.join(HULL_SUBDIR),
    }
}

/// Where the leases of `layout` live: the store's own directory for
/// `hull`, host-local's data directory for `bridge`.
fn lease_dir(layout: &Layout) -> PathBuf {
    match layout {
        Layout::Hull(dir) => dir.join("leases"),
        Layout::HostLocal(data_dir) => data_dir.clone(),
    }
}

/// The store of `spec` and its directory, created if needed.
fn open(spec: &NetSpec) -> Result<(Store, PathBuf), CniError> {
    let dir = store_dir(&spec.layout);
    fs::create_dir_all(&dir).map_err(|e| state::io_error("create", &dir, &e))?;
    let store = Store::new(&dir, &spec.table).with_lease_dir(lease_dir(&spec.layout));
    Ok((store, dir))
}

/// The store's record of the target interface.
fn find(store: &Store, target: &Target) -> Result<Option<Attachment>, CniError> {
    let all = store
        .attachments(None)
        .map_err(|e| CniError::net("list attachments", e))?;
    Ok(all
        .into_iter()
        .find(|a| a.container == target.container_id && a.ifname == target.ifname))
}

/// The network of `spec`: the existing one if it matches the config, else
/// a new one.
fn ensure_network(store: &Store, dir: &Path, spec: &NetSpec) -> Result<Network, CniError> {
    let _lock = state::lock(&dir.join(NETWORK_LOCK))?;
    match store.get(&spec.name) {
        Ok(net) => matching(net, spec),
        Err(NetError::NoSuchNetwork(_)) => create_network(store, spec),
        Err(e) => Err(CniError::net("read network", e)),
    }
}

/// `net` if its subnets and bridge are the configured ones. A config that
/// names a subnet names the network's IPv6 subnet too (or that it has
/// none).
fn matching(net: Network, spec: &NetSpec) -> Result<Network, CniError> {
    let differs = |what: &str, has: String, wants: String| {
        CniError::config(format!(
            "network {} exists with {what} {has}, not {wants} as configured",
            net.name
        ))
    };
    if let Some(subnet) = spec.subnet.filter(|s| *s != net.subnet) {
        return Err(differs(
            "subnet",
            net.subnet.to_string(),
            subnet.to_string(),
        ));
    }
    let names_subnets = spec.subnet.is_some() || spec.subnet6.is_some();
    if names_subnets && spec.subnet6 != net.subnet6 {
        let or_none = |s: Option<Subnet6>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
        return Err(differs(
            "IPv6 subnet",
            or_none(net.subnet6),
            or_none(spec.subnet6),
        ));
    }
    if let Some(bridge) = spec.bridge.as_ref().filter(|b| **b != net.bridge) {
        return Err(differs("bridge", net.bridge.clone(), bridge.clone()));
    }
    Ok(net)
}

/// Creates the network, with the configured bridge name if there is one.
fn create_network(store: &Store, spec: &NetSpec) -> Result<Network, CniError> {
    let options = NetworkOptions {
        subnet: spec.subnet,
        subnet6: spec.subnet6,
        bridge: spec.bridge.clone(),
        ..NetworkOptions::default()
    };
    store
        .create_with(&spec.name, &options)
        .map_err(|e| CniError::net(&format!("create network {}", spec.name), e))
}

/// The result of an attachment: bridge, host veth, container interface
/// (in that order, as the reference bridge plugin reports them), the
/// addresses and the default routes (IPv4, then IPv6 on a dual-stack
/// network). MACs are left out where they cannot be read.
fn result_of(net: &Network, att: &Attachment, netns: &Path) -> CniResult {
    let host = iface::links().unwrap_or_default();
    let inside = iface::in_netns(netns, "list links", iface::links).unwrap_or_default();
    let (ips, routes) = addresses(net, att)
        .into_iter()
        .map(|(ip, prefix, gateway)| {
            let address = IpConfig {
                address: format!("{ip}/{prefix}"),
                gateway: Some(gateway.to_string()),
                interface: Some(2),
                ..Default::default()
            };
            let dst = if ip.is_ipv4() {
                DEFAULT_ROUTE
            } else {
                DEFAULT_ROUTE6
            };
            let route = RouteConfig {
                dst: dst.to_owned(),
                gw: Some(gateway.to_string()),
                ..Default::default()
            };
            (address, route)
        })
        .unzip();
    CniResult {
        cni_version: DEFAULT_VERSION.to_owned(),
        interfaces: vec![
            interface(&net.bridge, &host, None),
            interface(&att.host_veth, &host, None),
            interface(&att.ifname, &inside, Some(netns)),
        ],
        ips,
        routes,
        dns: Dns::default(),
    }
}

/// The container's addresses with their prefix lengths and gateways:
/// IPv4, then IPv6 on a dual-stack network.
fn addresses(net: &Network, att: &Attachment) -> Vec<(IpAddr, u8, IpAddr)> {
    let mut all = vec![(att.ip.into(), att.prefix, att.gateway.into())];
    if let (Some(ip6), Some(gw6), Some(s6)) = (att.ip6, att.gateway6, net.subnet6) {
        all.push((ip6.into(), s6.prefix, gw6.into()));
    }
    all
}

fn interface(name: &str, links: &BTreeMap<String, Link>, sandbox: Option<&Path>) -> Interface {
    Interface {
        name: name.to_owned(),
        mac: links
            .get(name)
            .and_then(|l| l.mac.clone())
            .unwrap_or_default(),
        sandbox: sandbox.map(|p| p.display().to_string()),
        ..Default::default()
    }
}

/// The bridge is up and the host veth is up and on it.
fn check_host_side(net: &Network, att: &Attachment) -> Result<(), CniError> {
    let links = iface::links().map_err(|e| CniError::check(format!("list host links: {e}")))?;
    for name in [&net.bridge, &att.host_veth] {
        if !links.get(name).is_some_and(|l| l.up) {
            return Err(CniError::check(format!(
                "host link {name} is missing or down"
            )));
        }
    }
    let master = fs::read_link(format!("/sys/class/net/{}/master", att.host_veth)).ok();
    if master.as_deref().and_then(Path::file_name) != Some(net.bridge.as_ref()) {
        return Err(CniError::check(format!(
            "host veth {} is not on bridge {}",
            att.host_veth, net.bridge
        )));
    }
    Ok(())
}

/// The container still holds its lease.
fn check_lease(layout: &Layout, net: &Network, att: &Attachment) -> Result<(), CniError> {
    let ipam = Ipam::new(lease_dir(layout).join(&net.name), net.subnet, net.gateway);
    let leases = ipam
        .leases()
        .map_err(|e| CniError::check(format!("read leases: {e}")))?;
    if !leases.contains(&(att.ip, att.container.clone())) {
        return Err(CniError::check(format!(
            "{} holds no lease on {} in network {}",
            att.container, att.ip, net.name
        )));
    }
    Ok(())
}

/// The container interface is up with its addresses.
fn check_container_side(netns: &Path, net: &Network, att: &Attachment) -> Result<(), CniError> {
    let links = iface::in_netns(netns, "list links", iface::links)?;
    let link = links
        .get(&att.ifname)
        .ok_or_else(|| CniError::check(format!("no {} in {}", att.ifname, netns.display())))?;
    if !link.up {
        return Err(CniError::check(format!("{} is down", att.ifname)));
    }
    let has = |(ip, prefix): (IpAddr, u8)| match ip {
        IpAddr::V4(ip) => link.ipv4.contains(&(ip, prefix)),
        IpAddr::V6(ip) => link.ipv6.contains(&(ip, prefix)),
    };
    let missing = addresses(net, att)
        .into_iter()
        .find(|(ip, prefix, _)| !has((*ip, *prefix)));
    if let Some((ip, prefix, _)) = missing {
        return Err(CniError::check(format!(
            "{} lacks its address {ip}/{prefix}",
            att.ifname
        )));
    }
    Ok(())
}

/// The runtime's cached result names the attachment's addresses.
fn check_prev_result(prev: &CniResult, net: &Network, att: &Attachment) -> Result<(), CniError> {
    let listed = |ip: IpAddr, prefix: u8| {
        prev.ips.iter().any(|c| {
            let (addr, len) = c.address.split_once('/').unwrap_or_default();
            addr.parse() == Ok(ip) && len.parse() == Ok(prefix)
        })
    };
    let missing = addresses(net, att)
        .into_iter()
        .find(|(ip, prefix, _)| !listed(*ip, *prefix));
    match missing {
        Some((ip, prefix, _)) => Err(CniError::check(format!(
            "prevResult does not list {ip}/{prefix}"
        ))),
        None => Ok(()),
    }
}

/// The published ports are the configured ones.
fn check_ports(ports: &[PortMapping], att: &Attachment) -> Result<(), CniError> {
    let sorted = |p: &[PortMapping]| {
        let mut v: Vec<String> = p.iter().map(ToString::to_string).collect();
        v.sort();
        v
    };
    let (want, have) = (sorted(ports), sorted(&att.ports));
    if want != have {
        return Err(CniError::check(format!(
            "published ports are {have:?}, configured {want:?}"
        )));
    }
    Ok(())
}
