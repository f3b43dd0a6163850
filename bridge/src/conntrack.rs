//! Deletes conntrack entries over ctnetlink, so that a re-created port
//! mapping or a reused container address is not held by a stale entry: a UDP
//! flow keeps the NAT of its first packet for as long as packets keep coming.
//!
//! For IPv4 the kernel does the matching: an `IPCTNL_MSG_CT_DELETE` without
//! a tuple to delete but with a `CTA_FILTER` flushes the entries whose tuple
//! matches the given fields (Linux 6.3 and later), without a dump of the
//! table. For IPv6 that filter cannot be trusted: on Linux 6.18 a filtered
//! flush of one IPv6 address deleted the entries of other addresses (see
//! the test below), so IPv6 entries are dumped and the matching ones deleted
//! one by one by their original tuple. Each request works in the network
//! namespace of the calling thread.

use std::net::IpAddr;

use netlink_packet_core::{DefaultNla, Emitable, Nla, NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Tuple,
};
use netlink_packet_netfilter::{NetfilterMessageInner, NetfilterProtoFamily, NetfilterSubsystem};

use crate::nfnetlink::{NfSocket, NftError};
use crate::Protocol;

const IPCTNL_MSG_CT_DELETE: u8 = 2;
/// Attribute types, flagged as nested (the kernel parses `CTA_FILTER`
/// strictly).
const NESTED: u16 = libc::NLA_F_NESTED as u16;
const CTA_TUPLE_ORIG: u16 = 1 | NESTED;
const CTA_TUPLE_REPLY: u16 = 2 | NESTED;
const CTA_FILTER: u16 = 25 | NESTED;
/// `CTA_FILTER_ORIG_FLAGS` and `CTA_FILTER_REPLY_FLAGS`: which fields of
/// the original and the reply tuple must match.
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
/// `CTA_FILTER_FLAG(...)` bits of those flags.
const FILTER_IP_SRC: u32 = 1 << 0;
const FILTER_IP_DST: u32 = 1 << 1;
const FILTER_PROTO_NUM: u32 = 1 << 3;
const FILTER_PROTO_DST_PORT: u32 = 1 << 5;

/// Deletes every entry that has `addr` (IPv4 or IPv6) as source or
/// destination of its original or reply direction.
pub fn flush(addr: impl Into<IpAddr>) -> Result<(), NftError> {
    flush_on(&mut NfSocket::open()?, addr.into())
}

/// [`flush`] through the caller's socket.
pub(crate) fn flush_on(sock: &mut NfSocket, addr: IpAddr) -> Result<(), NftError> {
    if addr.is_ipv6() {
        return flush_dumped(sock, addr);
    }
    let ip = |field: fn(IpAddr) -> IPTuple| Tuple::Ip(vec![field(addr)]);
    for (direction, flag, tuple) in [
        (
            Direction::Original,
            FILTER_IP_SRC,
            ip(IPTuple::SourceAddress),
        ),
        (
            Direction::Original,
            FILTER_IP_DST,
            ip(IPTuple::DestinationAddress),
        ),
        (Direction::Reply, FILTER_IP_SRC, ip(IPTuple::SourceAddress)),
        (
            Direction::Reply,
            FILTER_IP_DST,
            ip(IPTuple::DestinationAddress),
        ),
    ] {
        let what = format!("flush conntrack entries of {addr}");
        flush_matching(sock, direction, flag, tuple, &what)?;
    }
    Ok(())
}

/// Deletes every IPv4 entry of a `protocol` connection to local port `port`
/// (the destination of the original direction, i.e. a published host port).
pub fn flush_port(protocol: Protocol, port: u16) -> Result<(), NftError> {
    let mut sock = NfSocket::open()?;
    let tuple = Tuple::Proto(vec![
        ProtoTuple::Protocol(protocol.number().into()),
        ProtoTuple::DestinationPort(port),
    ]);
    let what = format!("flush conntrack entries of port {port}/{protocol:?}");
    let flags = FILTER_PROTO_NUM | FILTER_PROTO_DST_PORT;
    flush_matching(&mut sock, Direction::Original, flags, tuple, &what)
}

/// Which tuple of an entry a filter applies to.
#[derive(Clone, Copy)]
enum Direction {
    Original,
    Reply,
}

/// One filtered flush of IPv4 entries: deletes those whose `direction` tuple has the
/// fields of `tuple` selected by `flags`.
///
/// The message is assembled from raw attributes because the kernel wants
/// `CTA_FILTER` flagged as nested, which the crate's `ConntrackAttribute`
/// does not emit for attributes it has no variant for.
fn flush_matching(
    sock: &mut NfSocket,
    direction: Direction,
    flags: u32,
    tuple: Tuple,
    what: &str,
) -> Result<(), NftError> {
    let (tuple_kind, flags_kind) = match direction {
        Direction::Original => (CTA_TUPLE_ORIG, CTA_FILTER_ORIG_FLAGS),
        Direction::Reply => (CTA_TUPLE_REPLY, CTA_FILTER_REPLY_FLAGS),
    };
    let tuple: &[Tuple] = &[tuple];
    let mut tuple_bytes = vec![0; tuple.buffer_len()];
    tuple.emit(&mut tuple_bytes);
    let delete = NetfilterMessageInner::Other {
        subsys: NetfilterSubsystem::Conntrack,
        message_type: IPCTNL_MSG_CT_DELETE,
        attributes: vec![
            DefaultNla::new(tuple_kind, tuple_bytes),
            DefaultNla::new(CTA_FILTER, u32_attribute(flags_kind, flags)),
        ],
    };
    sock.request(IPV4, delete, NLM_F_ACK, what)?;
    Ok(())
}

/// A netlink attribute holding a host-endian `u32`, header included.
fn u32_attribute(kind: u16, value: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8);
    bytes.extend_from_slice(&8u16.to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&value.to_ne_bytes());
    bytes
}

const IPV4: NetfilterProtoFamily = NetfilterProtoFamily::IPv4;
const IPV6: NetfilterProtoFamily = NetfilterProtoFamily::IPv6;

/// `CTA_ZONE`: an entry's zone, needed to delete it if it is not zone 0.
const CTA_ZONE: u16 = 18;

/// Deletes every IPv6 entry naming `addr` in either direction, from a dump.
fn flush_dumped(sock: &mut NfSocket, addr: IpAddr) -> Result<(), NftError> {
    let get = ConntrackMessage::Get(vec![]);
    let replies = sock.request(IPV6, get, NLM_F_DUMP, "list IPv6 conntrack entries")?;
    for attributes in replies.into_iter().filter_map(|reply| match reply.inner {
        NetfilterMessageInner::Conntrack(ConntrackMessage::New(attributes)) => Some(attributes),
        _ => None,
    }) {
        let Some(entry) = Entry::new(attributes) else {
            continue;
        };
        if entry.addresses().any(|a| a == addr) {
            entry.delete(sock, addr)?;
        }
    }
    Ok(())
}

/// A dumped conntrack entry, as much of it as matching and deleting need.
struct Entry {
    original: Vec<Tuple>,
    reply: Vec<Tuple>,
    zone: Option<ConntrackAttribute>,
}

impl Entry {
    fn new(attributes: Vec<ConntrackAttribute>) -> Option<Self> {
        let (mut original, mut reply, mut zone) = (None, None, None);
        for attribute in attributes {
            match attribute {
                ConntrackAttribute::CtaTupleOrig(tuple) => original = Some(tuple),
                ConntrackAttribute::CtaTupleReply(tuple) => reply = Some(tuple),
                ConntrackAttribute::Other(ref nla) if nla.kind() == CTA_ZONE => {
                    zone = Some(attribute)
                }
                _ => {}
            }
        }
        Some(Self {
            original: original?,
            reply: reply.unwrap_or_default(),
            zone,
        })
    }

    /// Sources and destinations of both directions.
    fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.original.iter().chain(&self.reply).flat_map(|tuple| {
            let ips: &[IPTuple] = match tuple {
                Tuple::Ip(ips) => ips,
                _ => &[],
            };
            ips.iter().filter_map(|ip| match ip {
                IPTuple::SourceAddress(a) | IPTuple::DestinationAddress(a) => Some(*a),
                _ => None,
            })
        })
    }

    /// Deletes the entry by its original tuple; gone already is fine.
    fn delete(self, sock: &mut NfSocket, addr: IpAddr) -> Result<(), NftError> {
        let mut attributes = vec![ConntrackAttribute::CtaTupleOrig(self.original)];
        attributes.extend(self.zone);
        let what = format!("delete a conntrack entry of {addr}");
        match sock.request(IPV6, ConntrackMessage::Delete(attributes), NLM_F_ACK, &what) {
            Err(e) if e.errno() != Some(libc::ENOENT) => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};

    use super::*;
    use crate::nft::Firewall;
    use crate::testnet::*;
    use crate::PortMapping;

    /// How many entries of the calling thread's namespace contain `needle`
    /// (e.g. `dport=9053`).
    fn entries_with(needle: &str) -> usize {
        std::fs::read_to_string("/proc/thread-self/net/nf_conntrack")
            .unwrap()
            .lines()
            .filter(|line| line.split_whitespace().any(|field| field == needle))
            .count()
    }

    /// Publishes UDP port 9053 on container A, sends a flow through it, then
    /// moves the port to container B: the flow keeps going to A until
    /// `unstick` deletes its conntrack entry.
    fn remapped_udp_flow(unstick: impl Fn() -> Result<(), NftError> + Sync) {
        let net = Topology::new();
        for (ip, name) in [(CONTAINER_A, "a"), (CONTAINER_B, "b")] {
            serve_udp(
                net.container.run(|| UdpSocket::bind((ip, 53)).unwrap()),
                name,
            );
        }
        let fw = Firewall::new(&table());
        let mapping: [PortMapping; 1] = ["9053:53/udp".parse().unwrap()];
        net.host.run(|| {
            fw.ensure_network(HOST_IF, subnet()).unwrap();
            fw.add_ports(CONTAINER_A, &mapping).unwrap();
            let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            client.connect((Ipv4Addr::LOCALHOST, 9053)).unwrap();
            assert_eq!(ask_udp(&client).as_deref(), Some("a"));

            fw.remove_ports(CONTAINER_A, &mapping).unwrap();
            fw.add_ports(CONTAINER_B, &mapping).unwrap();
            assert_eq!(
                ask_udp(&client).as_deref(),
                Some("a"),
                "the stale entry holds"
            );

            unstick().unwrap();
            assert_eq!(ask_udp(&client).as_deref(), Some("b"));
            assert_eq!(entries_with("dport=9053"), 1);
            unstick().unwrap();
            assert_eq!(entries_with("dport=9053"), 0, "the entry to b goes too");
        });
    }

    #[test]
    fn flush_by_address_unsticks_a_remapped_port() {
        remapped_udp_flow(|| {
            flush(CONTAINER_A)?;
            flush(CONTAINER_B)
        });
    }

    #[test]
    fn flush_by_port_unsticks_a_remapped_port() {
        remapped_udp_flow(|| flush_port(Protocol::Udp, 9053));
    }

    #[test]
    fn flush_leaves_other_entries() {
        Netns::new().run(|| {
            // hull's nat chains make the namespace track connections.
            Firewall::new(&table())
                .ensure_network(HOST_IF, subnet())
                .unwrap();
            let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            client.send_to(b"x", server.local_addr().unwrap()).unwrap();
            let port = server.local_addr().unwrap().port();
            let dport = format!("dport={port}");
            assert_eq!(entries_with(&dport), 1);

            flush(Ipv4Addr::new(10, 199, 9, 9)).unwrap();
            flush_port(Protocol::Tcp, port).unwrap();
            assert_eq!(entries_with(&dport), 1, "other entries stay");

            flush(Ipv4Addr::LOCALHOST).unwrap();
            assert_eq!(entries_with(&dport), 0);
            flush(Ipv4Addr::LOCALHOST).unwrap();
        });
    }

    #[test]
    fn flush_of_an_ipv6_address_leaves_other_entries() {
        Netns::new().run(|| {
            let subnet6: crate::Subnet6 = "fd42:99::/64".parse().unwrap();
            Firewall::new(&table())
                .ensure_network(HOST_IF, subnet6)
                .unwrap();
            let server = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
            let client = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
            client.send_to(b"x", server.local_addr().unwrap()).unwrap();
            let dport = format!("dport={}", server.local_addr().unwrap().port());
            assert_eq!(entries_with(&dport), 1);

            flush("fd42:99::2".parse::<Ipv6Addr>().unwrap()).unwrap();
            flush(Ipv4Addr::LOCALHOST).unwrap();
            assert_eq!(entries_with(&dport), 1, "other entries stay");

            flush(Ipv6Addr::LOCALHOST).unwrap();
            assert_eq!(entries_with(&dport), 0);
        });
    }
}
