//! Deletes conntrack entries over ctnetlink, so that a re-created port
//! mapping or a reused container address is not held by a stale entry: a UDP
//! flow keeps the NAT of its first packet for as long as packets keep coming.
//!
//! The entries are dumped (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`) and the
//! matching ones deleted one by one by their original tuple
//! (`IPCTNL_MSG_CT_DELETE`), in the network namespace of the calling thread.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{Nla, NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Tuple,
};
use netlink_packet_netfilter::{NetfilterMessageInner, NetfilterProtoFamily};

use crate::nft::{NfSocket, NftError};
use crate::Protocol;

/// `CTA_ZONE`: the entry's zone, needed to delete it if it is not zone 0.
const CTA_ZONE: u16 = 18;

/// Deletes every IPv4 entry that has `addr` as source or destination of its
/// original or reply direction. Returns how many were deleted.
pub fn flush(addr: Ipv4Addr) -> Result<usize, NftError> {
    let addr = IpAddr::V4(addr);
    flush_matching(|entry| entry.addresses().any(|a| a == addr))
}

/// Deletes every IPv4 entry of a `protocol` connection to local port `port`
/// (the destination of the original direction, i.e. a published host port).
/// Returns how many were deleted.
pub fn flush_port(protocol: Protocol, port: u16) -> Result<usize, NftError> {
    flush_matching(|entry| {
        let original = entry.original_ports();
        original.protocol == Some(protocol.number()) && original.destination == Some(port)
    })
}

fn flush_matching(matches: impl Fn(&Entry) -> bool) -> Result<usize, NftError> {
    let mut sock = NfSocket::open()?;
    let mut deleted = 0;
    for entry in dump(&mut sock)?.iter().filter(|e| matches(e)) {
        if delete(&mut sock, entry)? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// All IPv4 entries.
fn dump(sock: &mut NfSocket) -> Result<Vec<Entry>, NftError> {
    let get = ConntrackMessage::Get(vec![]);
    let replies = sock.request(IPV4, get, NLM_F_DUMP, "list conntrack entries")?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply.inner {
            NetfilterMessageInner::Conntrack(ConntrackMessage::New(attributes)) => {
                Entry::new(attributes)
            }
            _ => None,
        })
        .collect())
}

/// Deletes `entry`; `false` if it was already gone.
fn delete(sock: &mut NfSocket, entry: &Entry) -> Result<bool, NftError> {
    let mut attributes = vec![ConntrackAttribute::CtaTupleOrig(entry.original.clone())];
    attributes.extend(entry.zone.clone());
    let what = format!("delete conntrack entry {}", entry.describe());
    match sock.request(IPV4, ConntrackMessage::Delete(attributes), NLM_F_ACK, &what) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

const IPV4: NetfilterProtoFamily = NetfilterProtoFamily::IPv4;

/// A conntrack entry, as much of it as matching and deleting need.
struct Entry {
    original: Vec<Tuple>,
    reply: Vec<Tuple>,
    zone: Option<ConntrackAttribute>,
}

/// Protocol and ports of one direction of an entry.
#[derive(Default)]
struct Ports {
    protocol: Option<u8>,
    source: Option<u16>,
    destination: Option<u16>,
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

    fn original_ports(&self) -> Ports {
        let mut ports = Ports::default();
        for tuple in &self.original {
            let Tuple::Proto(fields) = tuple else {
                continue;
            };
            for field in fields {
                match field {
                    ProtoTuple::Protocol(p) => ports.protocol = Some((*p).into()),
                    ProtoTuple::SourcePort(p) => ports.source = Some(*p),
                    ProtoTuple::DestinationPort(p) => ports.destination = Some(*p),
                    _ => {}
                }
            }
        }
        ports
    }

    /// The original direction, e.g. `proto 17 127.0.0.1:40000 -> 127.0.0.1:9053`.
    fn describe(&self) -> String {
        let (mut source, mut destination) = (None, None);
        for tuple in &self.original {
            if let Tuple::Ip(ips) = tuple {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => source = Some(*a),
                        IPTuple::DestinationAddress(a) => destination = Some(*a),
                        _ => {}
                    }
                }
            }
        }
        let ports = self.original_ports();
        let mut text = format!("proto {}", ports.protocol.unwrap_or_default());
        let endpoint = |addr: Option<IpAddr>, port: Option<u16>| match (addr, port) {
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            _ => "?".into(),
        };
        let _ = write!(
            text,
            " {} -> {}",
            endpoint(source, ports.source),
            endpoint(destination, ports.destination)
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, UdpSocket};

    use super::*;
    use crate::nft::testnet::*;
    use crate::nft::Firewall;
    use crate::PortMapping;

    /// Publishes UDP port 9053 on container A, sends a flow through it, then
    /// moves the port to container B: the flow keeps going to A until
    /// `unstick` deletes its conntrack entry.
    fn remapped_udp_flow(unstick: impl Fn() -> Result<usize, NftError> + Sync) {
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

            assert_eq!(unstick().unwrap(), 1);
            assert_eq!(ask_udp(&client).as_deref(), Some("b"));
            assert_eq!(unstick().unwrap(), 1, "the new entry (to b) goes too");
        });
    }

    #[test]
    fn flush_by_address_unsticks_a_remapped_port() {
        remapped_udp_flow(|| Ok(flush(CONTAINER_A)? + flush(CONTAINER_B)?));
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
            assert_eq!(flush(Ipv4Addr::new(10, 199, 9, 9)).unwrap(), 0);
            assert_eq!(
                flush_port(Protocol::Tcp, server.local_addr().unwrap().port()).unwrap(),
                0
            );
            assert_eq!(flush(Ipv4Addr::LOCALHOST).unwrap(), 1);
            assert_eq!(flush(Ipv4Addr::LOCALHOST).unwrap(), 0);
        });
    }
}
