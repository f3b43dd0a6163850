//! The VXLAN device of an overlay network and what is programmed on it for
//! each remote host, all over rtnetlink (what flannel's VXLAN backend does):
//!
//! ```text
//! vxlan device   hullvx<VNI>: id VNI, local UNDERLAY, dev UPLINK, dstport PORT,
//!                nolearning, MTU = uplink − 50, address <node subnet>.0/32
//! per peer       route  <peer subnet> via <peer subnet>.0 dev hullvx<VNI> onlink
//!                neigh  <peer subnet>.0 lladdr <peer VTEP MAC> PERMANENT
//!                fdb    <peer VTEP MAC> dst <peer underlay> self PERMANENT
//! ```
//!
//! Learning is off: the kernel knows the remote VTEPs only from these
//! entries, so a host that leaves is unreachable the moment they go.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::error::OverlayError;
use crate::netlink::{Route, CREATE};
use crate::{link, NetError, Subnet};

/// Bytes of VXLAN encapsulation over IPv4: outer IP, UDP, VXLAN and
/// inner Ethernet headers.
const VXLAN_OVERHEAD: u32 = 50;
/// The MTU of the VXLAN device, and of the network's bridge and veths,
/// over an uplink of MTU `uplink`: what is left after the encapsulation,
/// so a full-sized packet of a container is never fragmented or dropped
/// on the underlay (flannel sets the same).
pub fn inner_mtu(uplink: u32) -> u32 {
    uplink.saturating_sub(VXLAN_OVERHEAD)
}

/// Add or replace: programming an entry twice is fine.
const UPSERT: u16 = NLM_F_CREATE | NLM_F_REPLACE;

/// The VXLAN device of network VNI `vni`.
pub fn device_name(vni: u32) -> String {
    format!("hullvx{vni}")
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The bytes of a MAC address written by [`format_mac`].
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

/// The uplink holding underlay address `addr`: its index and MTU.
pub fn uplink(nl: &mut Route, addr: Ipv4Addr) -> Result<(u32, u32), NetError> {
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Inet;
    let found = nl
        .dump(RouteNetlinkMessage::GetAddress(req))?
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a)
                if a.attributes.iter().any(
                    |x| matches!(x, AddressAttribute::Local(IpAddr::V4(ip)) if *ip == addr),
                ) =>
            {
                Some(a.header.index)
            }
            _ => None,
        });
    let idx = found.ok_or(OverlayError::NoUnderlay(addr))?;
    let mut m = LinkMessage::default();
    m.header.index = idx;
    let link = nl.get_link(m)?;
    let mtu = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    });
    Ok((idx, mtu.unwrap_or(1500)))
}

/// The VXLAN device that already uses `vni`, if any.
pub fn vni_user(nl: &mut Route, vni: u32) -> Result<Option<String>, NetError> {
    for m in nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))? {
        let RouteNetlinkMessage::NewLink(l) = m else {
            continue;
        };
        let name = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        let uses = l.attributes.iter().any(|a| {
            match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().any(|i| {
                matches!(i, LinkInfo::Data(InfoData::Vxlan(d)) if d.contains(&InfoVxlan::Id(vni)))
            }),
            _ => false,
        }
        });
        if uses {
            return Ok(name);
        }
    }
    Ok(None)
}

/// What the VXLAN device is made with.
pub struct DeviceSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub underlay: Ipv4Addr,
    /// The node subnet: its network address goes on the device.
    pub node: Subnet,
}

/// Creates the device (if missing), up, with its address; returns its
/// index. The uplink is the one holding the underlay address.
pub fn ensure_device(nl: &mut Route, spec: &DeviceSpec) -> Result<u32, NetError> {
    let (uplink, uplink_mtu) = uplink(nl, spec.underlay)?;
    let idx = match link::index(nl, &spec.name)? {
        Some(i) => i,
        None => {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(spec.name.clone()));
            m.attributes.push(LinkAttribute::Mtu(inner_mtu(uplink_mtu)));
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(vec![
                    InfoVxlan::Id(spec.vni),
                    InfoVxlan::Local(spec.underlay),
                    InfoVxlan::Link(uplink),
                    InfoVxlan::Port(spec.port),
                    InfoVxlan::Learning(false),
                ])),
            ]));
            nl.request(
                RouteNetlinkMessage::NewLink(m),
                CREATE,
                &format!("create VXLAN device {}", spec.name),
            )?;
            link::index(nl, &spec.name)?.ok_or_else(|| NetError::Missing(spec.name.clone()))?
        }
    };
    match link::add_address(nl, idx, spec.node.addr.into(), 32) {
        Err(NetError::Netlink { errno, .. }) if errno == libc::EEXIST => {}
        r => r?,
    }
    link::set_up(nl, idx, &spec.name)?;
    Ok(idx)
}

/// The MAC address of link `idx`.
pub fn mac_of(nl: &mut Route, idx: u32) -> Result<String, NetError> {
    let mut m = LinkMessage::default();
    m.header.index = idx;
    let link = nl.get_link(m)?;
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(mac) => Some(format_mac(mac)),
            _ => None,
        })
        .ok_or_else(|| NetError::Decode(format!("link {idx} has no MAC address")))
}

/// One remote host as programmed on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub subnet: Subnet,
    pub mac: [u8; 6],
    pub underlay: Ipv4Addr,
}

impl Remote {
    /// The remote VTEP's address on the overlay: its subnet's first address.
    pub fn vtep(&self) -> Ipv4Addr {
        self.subnet.addr
    }
}

fn neighbour(dev: u32, family: AddressFamily) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family;
    m.header.ifindex = dev;
    m.header.state = NeighbourState::Permanent;
    m
}

/// The neighbour entry: VTEP address → VTEP MAC.
fn arp_entry(dev: u32, r: &Remote) -> NeighbourMessage {
    let mut m = neighbour(dev, AddressFamily::Inet);
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            r.vtep(),
        )));
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(r.mac.to_vec()));
    m
}

/// The FDB entry: VTEP MAC → underlay address (`self`: the VXLAN
/// device's own table, not a bridge's).
fn fdb_entry(dev: u32, mac: [u8; 6], underlay: Ipv4Addr) -> NeighbourMessage {
    let mut m = neighbour(dev, AddressFamily::Bridge);
    m.header.flags = NeighbourFlags::Own;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            underlay,
        )));
    m
}

/// The route: remote subnet via its VTEP address, `onlink` (the VTEP
/// address is on no subnet of the device).
fn route(dev: u32, subnet: Subnet, via: Ipv4Addr) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header = RouteHeader {
        address_family: AddressFamily::Inet,
        destination_prefix_length: subnet.prefix,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        flags: RouteFlags::Onlink,
        ..Default::default()
    };
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(subnet.addr)));
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(via)));
    m.attributes.push(RouteAttribute::Oif(dev));
    m
}

/// Programs remote host `r` on device `dev`: FDB, neighbour, then route
/// (so the route is usable the moment it exists).
pub fn add_remote(nl: &mut Route, dev: u32, r: &Remote) -> Result<(), NetError> {
    let what = |x: &str| format!("add {x} of {} ({})", r.subnet, r.underlay);
    nl.request(
        RouteNetlinkMessage::NewNeighbour(fdb_entry(dev, r.mac, r.underlay)),
        UPSERT,
        &what("FDB entry"),
    )?;
    nl.request(
        RouteNetlinkMessage::NewNeighbour(arp_entry(dev, r)),
        UPSERT,
        &what("neighbour entry"),
    )?;
    nl.request(
        RouteNetlinkMessage::NewRoute(route(dev, r.subnet, r.vtep())),
        UPSERT,
        &what("route"),
    )
}

/// Removes what is programmed on device `dev` (found by [`programmed`]),
/// route first; entries already gone are fine.
pub fn remove(nl: &mut Route, dev: u32, p: &Programmed) -> Result<(), NetError> {
    let gone = |r: Result<(), NetError>| match r {
        Err(NetError::Netlink { errno, .. })
            if errno == libc::ENOENT || errno == libc::ESRCH || errno == libc::ENODEV =>
        {
            Ok(())
        }
        r => r,
    };
    for (subnet, via) in &p.routes {
        gone(nl.request(
            RouteNetlinkMessage::DelRoute(route(dev, *subnet, *via)),
            0,
            &format!("delete route to {subnet}"),
        ))?;
    }
    for (ip, mac) in &p.neighbours {
        let r = Remote {
            subnet: Subnet {
                addr: *ip,
                prefix: 32,
            },
            mac: *mac,
            underlay: Ipv4Addr::UNSPECIFIED,
        };
        gone(nl.request(
            RouteNetlinkMessage::DelNeighbour(arp_entry(dev, &r)),
            0,
            &format!("delete neighbour {ip}"),
        ))?;
    }
    for (mac, underlay) in &p.fdb {
        gone(nl.request(
            RouteNetlinkMessage::DelNeighbour(fdb_entry(dev, *mac, *underlay)),
            0,
            &format!("delete FDB entry {}", format_mac(mac)),
        ))?;
    }
    Ok(())
}

/// What is programmed on a VXLAN device, as the kernel lists it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Programmed {
    /// Routes through the device: destination and gateway.
    pub routes: Vec<(Subnet, Ipv4Addr)>,
    /// Permanent neighbour entries: address and MAC.
    pub neighbours: Vec<(Ipv4Addr, [u8; 6])>,
    /// FDB entries with a remote: MAC and underlay address.
    pub fdb: Vec<([u8; 6], Ipv4Addr)>,
}

impl Programmed {
    /// Whether nothing is programmed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.neighbours.is_empty() && self.fdb.is_empty()
    }

    /// What of this is not wanted for `remotes`.
    pub fn stale(&self, remotes: &[Remote]) -> Programmed {
        Programmed {
            routes: self
                .routes
                .iter()
                .filter(|(s, via)| !remotes.iter().any(|r| r.subnet == *s && r.vtep() == *via))
                .copied()
                .collect(),
            neighbours: self
                .neighbours
                .iter()
                .filter(|(ip, mac)| !remotes.iter().any(|r| r.vtep() == *ip && r.mac == *mac))
                .copied()
                .collect(),
            fdb: self
                .fdb
                .iter()
                .filter(|(mac, u)| !remotes.iter().any(|r| r.mac == *mac && r.underlay == *u))
                .copied()
                .collect(),
        }
    }

    /// Whether remote `r` is fully programmed.
    pub fn has(&self, r: &Remote) -> bool {
        self.routes.contains(&(r.subnet, r.vtep()))
            && self.neighbours.contains(&(r.vtep(), r.mac))
            && self.fdb.contains(&(r.mac, r.underlay))
    }
}

fn ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(bytes).ok().map(Ipv4Addr::from)
}

/// Lists the routes, permanent neighbours and FDB entries of device `dev`.
pub fn programmed(nl: &mut Route, dev: u32) -> Result<Programmed, NetError> {
    let mut out = Programmed::default();
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::Inet;
    for m in nl.dump(RouteNetlinkMessage::GetRoute(req))? {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        let (mut dst, mut via, mut oif) = (None, None, None);
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => via = Some(*ip),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        if let (Some(dst), Some(via), Some(d)) = (dst, via, oif) {
            if d == dev {
                if let Ok(s) = Subnet::new(dst, r.header.destination_prefix_length) {
                    out.routes.push((s, via));
                }
            }
        }
    }
    for family in [AddressFamily::Inet, AddressFamily::Bridge] {
        let mut req = NeighbourMessage::default();
        req.header.family = family;
        for m in nl.dump(RouteNetlinkMessage::GetNeighbour(req))? {
            let RouteNetlinkMessage::NewNeighbour(n) = m else {
                continue;
            };
            if n.header.ifindex != dev || n.header.state != NeighbourState::Permanent {
                continue;
            }
            let mut ip = None;
            let mut mac = None;
            for a in &n.attributes {
                match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(i)) => ip = Some(*i),
                    NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => ip = ipv4(b),
                    NeighbourAttribute::LinkLayerAddress(l) => {
                        mac = <[u8; 6]>::try_from(l.as_slice()).ok()
                    }
                    _ => {}
                }
            }
            match (family, ip, mac) {
                (AddressFamily::Inet, Some(ip), Some(mac)) => out.neighbours.push((ip, mac)),
                (_, Some(ip), Some(mac)) => out.fdb.push((mac, ip)),
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(n: u8) -> Remote {
        Remote {
            subnet: Subnet::new(Ipv4Addr::new(10, 250, n, 0), 24).unwrap(),
            mac: [2, 0, 0, 0, 0, n],
            underlay: Ipv4Addr::new(192, 0, 2, n),
        }
    }

    #[test]
    fn macs_round_trip() {
        let mac = [0x0a, 0xbc, 0, 1, 0xff, 0x10];
        assert_eq!(format_mac(&mac), "0a:bc:00:01:ff:10");
        assert_eq!(parse_mac("0a:bc:00:01:ff:10"), Some(mac));
        assert_eq!(parse_mac("0a:bc:00:01:ff"), None);
        assert_eq!(parse_mac("zz:bc:00:01:ff:10"), None);
    }

    #[test]
    fn stale_entries_are_those_of_no_remote() {
        let (a, b) = (remote(1), remote(2));
        let mut p = Programmed::default();
        for r in [&a, &b] {
            p.routes.push((r.subnet, r.vtep()));
            p.neighbours.push((r.vtep(), r.mac));
            p.fdb.push((r.mac, r.underlay));
        }
        assert!(p.has(&a) && p.has(&b));
        let stale = p.stale(std::slice::from_ref(&a));
        assert_eq!(stale.routes, [(b.subnet, b.vtep())]);
        assert_eq!(stale.neighbours, [(b.vtep(), b.mac)]);
        assert_eq!(stale.fdb, [(b.mac, b.underlay)]);
        // A host back with a new underlay address: its old FDB entry is stale.
        let moved = Remote {
            underlay: Ipv4Addr::new(192, 0, 2, 99),
            ..b.clone()
        };
        let stale = p.stale(&[a, moved]);
        assert!(stale.routes.is_empty() && stale.neighbours.is_empty());
        assert_eq!(stale.fdb, [(b.mac, b.underlay)]);
    }
}
