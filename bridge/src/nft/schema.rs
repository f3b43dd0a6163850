//! The table's schema (chains, port maps and nft's data types), the address
//! family it lives in, and published ports as elements of its maps.

use std::net::IpAddr;

use netlink_packet_netfilter::nftables::{
    DataAttribute, InetHookNumber, ListAttribute, NfTablesMessage, SetElementAttribute,
    SetElementList, SetElementMessage,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};

use crate::PortMapping;

pub(super) const PREROUTING: &str = "prerouting";
pub(super) const OUTPUT: &str = "output";
pub(super) const POSTROUTING: &str = "postrouting";
pub(super) const DNAT: &str = "dnat";
pub(super) const ANY_PORTS: &str = "any_ports";
pub(super) const ADDR_PORTS: &str = "addr_ports";

/// A published port as an element of one of the port maps.
pub(super) struct Element {
    pub(super) map: &'static str,
    /// `[host address .] protocol . host port`
    pub(super) key: Vec<u8>,
    /// `container address . container port`
    pub(super) target: Vec<u8>,
    /// For error messages, e.g. `127.0.0.1:8080:80/tcp to 10.88.0.2`.
    pub(super) label: String,
}

impl Element {
    /// The element of `port` for the container at `container_ip`; `None`
    /// for a port published on an IPv4 host address when the container
    /// address is IPv6 (that port is IPv4's only).
    pub(super) fn new(container_ip: IpAddr, port: &PortMapping) -> Option<Self> {
        let protocol = [port.protocol.number()];
        let host_port = port.host_port.to_be_bytes();
        let (map, key) = match (port.host_ip, container_ip) {
            (None, _) => (ANY_PORTS, concat(&[&protocol, &host_port])),
            (Some(ip), IpAddr::V4(_)) => {
                (ADDR_PORTS, concat(&[&ip.octets(), &protocol, &host_port]))
            }
            (Some(_), IpAddr::V6(_)) => return None,
        };
        let address = match container_ip {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        Some(Self {
            map,
            key,
            target: concat(&[&address, &port.container_port.to_be_bytes()]),
            label: format!("{port} to {container_ip}"),
        })
    }
}

/// A concatenation as nf_tables lays it out: each field padded to 4 bytes.
pub(super) fn concat(fields: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for field in fields {
        data.extend_from_slice(field);
        data.resize(data.len().next_multiple_of(4), 0);
    }
    data
}

/// A set element message for one element of `map`.
pub(super) fn element_message(
    table: &str,
    map: &str,
    element: Vec<SetElementAttribute>,
) -> SetElementMessage {
    SetElementMessage {
        attributes: vec![
            SetElementList::Table(table.to_owned()),
            SetElementList::Set(map.to_owned()),
            SetElementList::Elements(vec![ListAttribute::Element(element)]),
        ],
    }
}

/// The target (map data) of the element in a set element reply.
pub(super) fn element_target(reply: NetfilterMessage) -> Option<Vec<u8>> {
    let NetfilterMessageInner::NfTables(NfTablesMessage::NewSetElement(message)) = reply.inner
    else {
        return None;
    };
    message.attributes.into_iter().find_map(|list| {
        let SetElementList::Elements(elements) = list else {
            return None;
        };
        elements.into_iter().find_map(|element| {
            let ListAttribute::Element(attributes) = element else {
                return None;
            };
            attributes
                .into_iter()
                .find_map(|attribute| match attribute {
                    SetElementAttribute::Data(DataAttribute::Value(target)) => Some(target),
                    _ => None,
                })
        })
    })
}

/// A base chain of hull's table.
pub(super) struct BaseChain {
    pub(super) name: &'static str,
    pub(super) hook: InetHookNumber,
    pub(super) priority: i32,
}

pub(super) const BASE_CHAINS: [BaseChain; 3] = [
    BaseChain {
        name: PREROUTING,
        hook: InetHookNumber::PreRouting,
        priority: -100,
    },
    BaseChain {
        name: OUTPUT,
        hook: InetHookNumber::LocalOut,
        priority: -100,
    },
    BaseChain {
        name: POSTROUTING,
        hook: InetHookNumber::PostRouting,
        priority: 100,
    },
];

/// A port map of hull's table.
pub(super) struct PortMap {
    pub(super) name: &'static str,
    /// Identifies the map within a batch (the kernel requires one).
    pub(super) id: u32,
    /// Whether the key starts with the host address.
    pub(super) keyed_by_address: bool,
}

impl PortMap {
    /// `[address .] inet_proto . inet_service`
    pub(super) fn key_type(&self, family: Family) -> u32 {
        let ports = concat_type(&[TYPE_INET_PROTOCOL, TYPE_INET_SERVICE]);
        match self.keyed_by_address {
            true => family.addr_type() << 12 | ports,
            false => ports,
        }
    }

    pub(super) fn key_len(&self, family: Family) -> u32 {
        match self.keyed_by_address {
            true => family.addr_len() + 8,
            false => 8,
        }
    }
}

// nft's data type numbers (nftables' `enum datatypes`); a concatenation's
// type packs its fields' types 6 bits each, first field highest.
pub(super) const TYPE_IPADDR: u32 = 7;
pub(super) const TYPE_IP6ADDR: u32 = 8;
pub(super) const TYPE_INET_PROTOCOL: u32 = 12;
pub(super) const TYPE_INET_SERVICE: u32 = 13;

pub(super) const fn concat_type(types: &[u32]) -> u32 {
    let mut concat = 0;
    let mut i = 0;
    while i < types.len() {
        concat = concat << 6 | types[i];
        i += 1;
    }
    concat
}

pub(super) const PORT_MAPS: [PortMap; 2] = [
    PortMap {
        name: ADDR_PORTS,
        id: 1,
        keyed_by_address: true,
    },
    PortMap {
        name: ANY_PORTS,
        id: 2,
        keyed_by_address: false,
    },
];

/// The address family of one of hull's tables: `ip` or `ip6`, both with the
/// same name. Every call works on the family of the address it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    pub(super) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// As `nft` names the table's family.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ip6",
        }
    }

    pub(super) fn proto(self) -> NetfilterProtoFamily {
        match self {
            Self::V4 => NetfilterProtoFamily::IPv4,
            Self::V6 => NetfilterProtoFamily::IPv6,
        }
    }

    pub(super) fn addr_type(self) -> u32 {
        match self {
            Self::V4 => TYPE_IPADDR,
            Self::V6 => TYPE_IP6ADDR,
        }
    }

    pub(super) fn addr_len(self) -> u32 {
        match self {
            Self::V4 => 4,
            Self::V6 => 16,
        }
    }

    /// What every port map points to: `address . inet_service`.
    pub(super) fn target_type(self) -> u32 {
        concat_type(&[self.addr_type(), TYPE_INET_SERVICE])
    }

    pub(super) fn target_len(self) -> u32 {
        self.addr_len() + 4
    }
}
