//! Links, addresses and routes: the bridge, the veth pair of a container and
//! its `eth0`/`lo` setup inside the container's network namespace.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::{Route, CREATE};
use crate::NetError;

fn named(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_owned()));
    m
}

/// The index of link `name`, if it exists.
pub fn index(nl: &mut Route, name: &str) -> Result<Option<u32>, NetError> {
    match nl.get_link(named(name)) {
        Ok(m) => Ok(Some(m.header.index)),
        Err(NetError::Netlink { errno, .. }) if errno == libc::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates bridge `name` (if missing) with the `gateways` (address and
/// prefix length) on it, and brings it up.
pub fn ensure_bridge(
    nl: &mut Route,
    name: &str,
    gateways: &[(IpAddr, u8)],
) -> Result<u32, NetError> {
    let idx = match index(nl, name)? {
        Some(i) => i,
        None => {
            let mut m = named(name);
            m.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Bridge,
                )]));
            nl.request(
                RouteNetlinkMessage::NewLink(m),
                CREATE,
                &format!("create bridge {name}"),
            )?;
            index(nl, name)?.ok_or_else(|| NetError::Missing(name.to_owned()))?
        }
    };
    for &(gateway, prefix) in gateways {
        match add_address(nl, idx, gateway, prefix) {
            Ok(()) => {}
            Err(NetError::Netlink { errno, .. }) if errno == libc::EEXIST => {}
            Err(e) => return Err(e),
        }
    }
    set_up(nl, idx, name)?;
    Ok(idx)
}

/// Brings link `idx` up.
pub fn set_up(nl: &mut Route, idx: u32, name: &str) -> Result<(), NetError> {
    let mut m = LinkMessage::default();
    m.header.index = idx;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    nl.request(
        RouteNetlinkMessage::NewLink(m),
        0,
        &format!("set {name} up"),
    )
}

/// Sets the MTU of link `idx` (on a bridge it then stays as set, whatever
/// its ports' MTUs).
pub fn set_mtu(nl: &mut Route, idx: u32, name: &str, mtu: u32) -> Result<(), NetError> {
    let mut m = LinkMessage::default();
    m.header.index = idx;
    m.attributes.push(LinkAttribute::Mtu(mtu));
    nl.request(
        RouteNetlinkMessage::NewLink(m),
        0,
        &format!("set the MTU of {name} to {mtu}"),
    )
}

/// Adds `ip/prefix` to link `idx`; an IPv6 address without duplicate
/// address detection, so it is usable at once (hull owns the subnet).
pub fn add_address(nl: &mut Route, idx: u32, ip: IpAddr, prefix: u8) -> Result<(), NetError> {
    let mut m = AddressMessage::default();
    m.header.prefix_len = prefix;
    m.header.index = idx;
    match ip {
        IpAddr::V4(_) => {
            m.header.family = AddressFamily::Inet;
            m.attributes.push(AddressAttribute::Local(ip));
        }
        IpAddr::V6(_) => {
            m.header.family = AddressFamily::Inet6;
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    m.attributes.push(AddressAttribute::Address(ip));
    nl.request(
        RouteNetlinkMessage::NewAddress(m),
        CREATE,
        &format!("add address {ip}/{prefix}"),
    )
}

/// Creates a veth pair: `host` stays here, its peer is created directly in
/// the namespace `netns` as `peer` (so no stray link is ever visible on the
/// host). Both ends get `mtu` if given.
pub fn create_veth(
    nl: &mut Route,
    host: &str,
    peer: &str,
    netns: BorrowedFd,
    mtu: Option<u32>,
) -> Result<(), NetError> {
    let mut p = named(peer);
    p.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    let mut m = named(host);
    if let Some(mtu) = mtu {
        p.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    nl.request(
        RouteNetlinkMessage::NewLink(m),
        CREATE,
        &format!("create veth {host}"),
    )
}

/// Attaches link `idx` to bridge `bridge` and brings it up.
pub fn attach(nl: &mut Route, idx: u32, bridge: u32, name: &str) -> Result<(), NetError> {
    let mut m = LinkMessage::default();
    m.header.index = idx;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m.attributes.push(LinkAttribute::Controller(bridge));
    nl.request(
        RouteNetlinkMessage::NewLink(m),
        0,
        &format!("attach {name} to its bridge"),
    )
}

/// Turns on hairpin mode on bridge port `idx`, so a container can reach
/// its own published port through the host (IFLA_BRPORT_MODE; netlink
/// rather than sysfs, which shows the devices of the namespace it was
/// mounted in, not the caller's).
pub fn set_hairpin(nl: &mut Route, idx: u32, name: &str) -> Result<(), NetError> {
    let mut m = LinkMessage::default();
    m.header.index = idx;
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            true,
        )])),
    ]));
    nl.request(
        RouteNetlinkMessage::NewLink(m),
        0,
        &format!("set hairpin on {name}"),
    )
}

/// Deletes link `name`; a missing link is fine (teardown is idempotent).
pub fn delete(nl: &mut Route, name: &str) -> Result<(), NetError> {
    match nl.request(
        RouteNetlinkMessage::DelLink(named(name)),
        0,
        &format!("delete link {name}"),
    ) {
        Err(NetError::Netlink { errno, .. }) if errno == libc::ENODEV => Ok(()),
        r => r,
    }
}

/// Adds the default route of `gateway`'s family via `gateway` on link `oif`.
///
/// An IPv6 one is `onlink`: the kernel adds the prefix route of an IPv6
/// address only once the link's operational state is up, which linkwatch
/// sets a moment after the link comes up; until then a gateway not known
/// to be on the link is refused (EINVAL). The gateway is on the link.
pub fn add_default_route(nl: &mut Route, gateway: IpAddr, oif: u32) -> Result<(), NetError> {
    let (family, via, flags) = match gateway {
        IpAddr::V4(g) => (
            AddressFamily::Inet,
            RouteAddress::Inet(g),
            RouteFlags::empty(),
        ),
        IpAddr::V6(g) => (
            AddressFamily::Inet6,
            RouteAddress::Inet6(g),
            RouteFlags::Onlink,
        ),
    };
    let mut m = RouteMessage::default();
    m.header = RouteHeader {
        address_family: family,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        flags,
        ..Default::default()
    };
    m.attributes.push(RouteAttribute::Gateway(via));
    m.attributes.push(RouteAttribute::Oif(oif));
    nl.request(
        RouteNetlinkMessage::NewRoute(m),
        CREATE,
        &format!("add default route via {gateway}"),
    )
}
