//! hull's firewall: masquerade for bridge networks and published ports, in
//! one nf_tables table that hull owns, programmed over netlink.
//!
//! # Table layout
//!
//! ```text
//! table ip hull {
//!     map addr_ports {        # ports published on one host address: 127.0.0.1:8080:80
//!         type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
//!     }
//!     map any_ports {         # ports published on every local address: 8080:80
//!         type inet_proto . inet_service : ipv4_addr . inet_service
//!     }
//!     chain prerouting {      # from other hosts and from containers
//!         type nat hook prerouting priority dstnat
//!         fib daddr type local jump dnat comment "hull: published ports"
//!     }
//!     chain output {          # from the host itself
//!         type nat hook output priority -100
//!         fib daddr type local jump dnat comment "hull: published ports"
//!     }
//!     chain postrouting {     # three rules per network, e.g. bridge hull0 on 10.88.0.0/16
//!         type nat hook postrouting priority srcnat
//!         ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade            # outbound
//!         ip saddr 127.0.0.0/8 oifname "hull0" masquerade                        # localhost
//!         ip saddr 10.88.0.0/16 ip daddr 10.88.0.0/16 ct status dnat masquerade  # hairpin
//!     }
//!     chain dnat {
//!         dnat ip to ip daddr . meta l4proto . th dport map @addr_ports
//!         dnat ip to meta l4proto . th dport map @any_ports
//!     }
//! }
//! ```
//!
//! - Every rule carries a comment (nft's rule userdata) naming its owner:
//!   `hull: …` for the shared rules, `hull net BRIDGE SUBNET: …` for a
//!   network's. That is how rules are found again; nothing else in the table
//!   and no other table is ever touched.
//! - Publishing a port only adds a map element, one netlink message per
//!   port and no reads, so its cost does not grow with the ports already
//!   published.
//! - Every change is one netlink batch, which the kernel applies
//!   all-or-nothing. Calls that read before they write (`ensure_network`,
//!   `remove_network`, `remove_ports`) pin the ruleset generation they read
//!   (`NFNL_BATCH_GENID`): if anything changed in between, the kernel refuses
//!   the batch with `ERESTART` and the call starts over.
//! - The localhost rule needs `route_localnet=1` on the bridge, and the
//!   hairpin rule needs hairpin mode on its ports; both are set by the link
//!   code.
//! - Everything happens in the network namespace of the calling thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroI32;

use netlink_packet_core::{
    DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, DataAttribute, GenAttribute, GenMessage, Hook, HookNumber,
    InetHookNumber, ListAttribute, MetaKey, NfTablesMessage, Register, RuleAttribute, RuleMessage,
    SetAttribute, SetElementAttribute, SetElementList, SetElementMessage, SetFlags, SetMessage,
    TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::{AnySubnet, PortMapping, Subnet};

use self::expr::Expr;

const PREROUTING: &str = "prerouting";
const OUTPUT: &str = "output";
const POSTROUTING: &str = "postrouting";
const DNAT: &str = "dnat";
const ANY_PORTS: &str = "any_ports";
const ADDR_PORTS: &str = "addr_ports";

/// Comment prefix of the rules shared by all networks.
const SHARED_TAG: &str = "hull: ";
/// Comment prefix of a network's rules, followed by `BRIDGE SUBNET: what`.
const NETWORK_TAG: &str = "hull net ";

/// How often a read-then-write call starts over when the ruleset keeps
/// changing under it.
const MAX_RESTARTS: usize = 8;

/// Why a firewall change failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The netlink socket could not be opened, written or read.
    #[error("netfilter netlink socket: {0}")]
    Socket(#[from] io::Error),
    /// The kernel refused a request; `what` names the request and its object.
    #[error("{what}: {}", io::Error::from_raw_os_error(*.errno))]
    Kernel { what: String, errno: i32 },
    /// The kernel's reply could not be understood.
    #[error("malformed netlink reply: {0}")]
    Reply(String),
}

impl NftError {
    /// The errno the kernel answered with, for [`NftError::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    fn kernel(what: impl Into<String>, code: NonZeroI32) -> Self {
        Self::Kernel {
            what: what.into(),
            errno: -code.get(),
        }
    }

    fn is_enoent(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }
}

/// hull's nf_tables table: see the module documentation for its layout.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
}

impl Firewall {
    /// hull's table in the `ip` family, e.g. `"hull"`. Nothing happens until
    /// a method is called.
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
        }
    }

    /// Creates the table, its chains, its maps and the shared rules if
    /// missing, and makes the rules of network `bridge` (outbound, localhost
    /// and hairpin masquerade) match `subnet`, replacing older ones of the
    /// same bridge. Idempotent; one batch.
    pub fn ensure_network(
        &self,
        bridge: &str,
        subnet: impl Into<AnySubnet>,
    ) -> Result<(), NftError> {
        let subnet = subnet.into();
        let family = Family::of(subnet.addr());
        self.transact(|sock| {
            let listed = self.list_rules(sock, family)?.unwrap_or_default();
            let mut batch = self.batch(family);
            batch.create_skeleton();
            let shared = shared_rules(family);
            batch.replace_rules(&listed, |c| c.starts_with(SHARED_TAG), shared);
            batch.replace_rules(
                &listed,
                |c| network_of(c) == Some(bridge),
                network_rules(bridge, subnet),
            );
            Ok(batch)
        })
    }

    /// Removes the rules of network `bridge`, or the whole table when no
    /// other network has rules left. Fine if they are already gone.
    ///
    /// Rules are found by the bridge name in their comments, whatever subnet
    /// they were made for; `subnet` only says which family's table.
    pub fn remove_network(
        &self,
        bridge: &str,
        subnet: impl Into<AnySubnet>,
    ) -> Result<(), NftError> {
        let family = Family::of(subnet.into().addr());
        self.transact(|sock| {
            let mut batch = self.batch(family);
            let Some(listed) = self.list_rules(sock, family)? else {
                return Ok(batch);
            };
            let mut networks = listed.iter().filter_map(ListedRule::network);
            if networks.all(|b| b == bridge) {
                batch.delete_table();
            } else {
                for rule in listed.iter().filter(|r| r.network() == Some(bridge)) {
                    batch.delete_rule(rule);
                }
            }
            Ok(batch)
        })
    }

    /// Publishes `ports` of the container at `container_ip`, in one batch of
    /// one map element per port. Traffic to a published port is forwarded
    /// from other hosts and containers (prerouting) and from the host itself
    /// (output), for any local address (`host_ip: None`) or only the given
    /// one (which may be 127.0.0.1). Republishing the same mapping is fine;
    /// a host port that another container holds fails with `EEXIST`.
    /// Needs [`Firewall::ensure_network`] first.
    ///
    /// For an IPv6 `container_ip`, the ports go to the `ip6` table, and only
    /// those published on all addresses (IPv6 has no `route_localnet`, so
    /// nothing is forwarded from `::1`).
    pub fn add_ports(
        &self,
        container_ip: impl Into<IpAddr>,
        ports: &[PortMapping],
    ) -> Result<(), NftError> {
        // No reads: the batch does not depend on what is already published.
        let container_ip = container_ip.into();
        NfSocket::open()?.commit(&self.publish_batch(container_ip, ports), None)
    }

    /// Unpublishes `ports` of the container at `container_ip`. Ports that are
    /// not published, or that point to another container, are left alone.
    pub fn remove_ports(
        &self,
        container_ip: impl Into<IpAddr>,
        ports: &[PortMapping],
    ) -> Result<(), NftError> {
        self.remove_ports_on(&mut NfSocket::open()?, container_ip.into(), ports)
    }

    /// [`Firewall::remove_ports`] through the caller's socket.
    pub(crate) fn remove_ports_on(
        &self,
        sock: &mut NfSocket,
        container_ip: IpAddr,
        ports: &[PortMapping],
    ) -> Result<(), NftError> {
        let family = Family::of(container_ip);
        self.transact_on(sock, |sock| {
            let mut batch = self.batch(family);
            for element in ports.iter().filter_map(|p| Element::new(container_ip, p)) {
                if self.lookup(sock, family, &element)?.as_ref() == Some(&element.target) {
                    batch.delete_element(&element);
                }
            }
            Ok(batch)
        })
    }

    /// Unpublishes `ports` that the caller knows it published for
    /// `container_ip`: one batch of element deletions, no lookups. Fails
    /// (changing nothing) if any of them is missing; [`Firewall::remove_ports`]
    /// is the careful variant.
    pub fn unpublish(
        &self,
        container_ip: impl Into<IpAddr>,
        ports: &[PortMapping],
    ) -> Result<(), NftError> {
        self.unpublish_on(&mut NfSocket::open()?, container_ip.into(), ports)
    }

    /// [`Firewall::unpublish`] through the caller's socket.
    pub(crate) fn unpublish_on(
        &self,
        sock: &mut NfSocket,
        container_ip: IpAddr,
        ports: &[PortMapping],
    ) -> Result<(), NftError> {
        let mut batch = self.batch(Family::of(container_ip));
        for element in ports.iter().filter_map(|p| Element::new(container_ip, p)) {
            batch.delete_element(&element);
        }
        sock.commit(&batch, None)
    }

    /// Deletes the table (of both families) with everything in it; fine if
    /// there is none.
    pub fn delete_table(&self) -> Result<(), NftError> {
        let mut sock = NfSocket::open()?;
        for family in [Family::V4, Family::V6] {
            let mut batch = self.batch(family);
            batch.delete_table();
            match sock.commit(&batch, None) {
                Err(e) if e.is_enoent() => {}
                result => result?,
            }
        }
        Ok(())
    }

    fn batch(&self, family: Family) -> Batch {
        Batch {
            table: self.table.clone(),
            family,
            ops: Vec::new(),
        }
    }

    /// The batch that publishes `ports`: one element per port.
    fn publish_batch(&self, container_ip: IpAddr, ports: &[PortMapping]) -> Batch {
        let mut batch = self.batch(Family::of(container_ip));
        for element in ports.iter().filter_map(|p| Element::new(container_ip, p)) {
            batch.add_element(&element);
        }
        batch
    }

    /// Runs a read-then-write change: `plan` reads through the socket and
    /// returns the batch to apply, which is committed only if the ruleset is
    /// still the one that was read; otherwise it starts over.
    fn transact(
        &self,
        plan: impl Fn(&mut NfSocket) -> Result<Batch, NftError>,
    ) -> Result<(), NftError> {
        self.transact_on(&mut NfSocket::open()?, plan)
    }

    /// [`Firewall::transact`] through the caller's socket.
    fn transact_on(
        &self,
        sock: &mut NfSocket,
        plan: impl Fn(&mut NfSocket) -> Result<Batch, NftError>,
    ) -> Result<(), NftError> {
        let mut restarts = 0;
        loop {
            let generation = sock.generation()?;
            let batch = plan(sock)?;
            match sock.commit(&batch, Some(generation)) {
                Err(e) if e.errno() == Some(libc::ERESTART) && restarts < MAX_RESTARTS => {
                    restarts += 1;
                }
                result => return result,
            }
        }
    }

    /// The rules in hull's table, or `None` if there is no such table.
    fn list_rules(
        &self,
        sock: &mut NfSocket,
        family: Family,
    ) -> Result<Option<Vec<ListedRule>>, NftError> {
        let table = TableMessage {
            attributes: vec![TableAttribute::Name(self.table.clone())],
        };
        let what = format!("look up table {} {}", family.name(), self.table);
        let proto = family.proto();
        match sock.request(proto, NfTablesMessage::GetTable(table), NLM_F_ACK, &what) {
            Err(e) if e.is_enoent() => return Ok(None),
            result => result?,
        };
        let dump = RuleMessage {
            attributes: vec![RuleAttribute::Table(self.table.clone())],
        };
        let what = format!("list rules of table {} {}", family.name(), self.table);
        let replies = sock.request(proto, NfTablesMessage::GetRule(dump), NLM_F_DUMP, &what)?;
        let rules = replies.into_iter().filter_map(ListedRule::from_reply);
        Ok(Some(rules.collect()))
    }

    /// The target of the map element with `element`'s key, if there is one.
    fn lookup(
        &self,
        sock: &mut NfSocket,
        family: Family,
        element: &Element,
    ) -> Result<Option<Vec<u8>>, NftError> {
        let key = SetElementAttribute::Key(DataAttribute::Value(element.key.clone()));
        let message = element_message(&self.table, element.map, vec![key]);
        let what = format!("look up {} in map {}", element.label, element.map);
        let request = NfTablesMessage::GetSetElement(message);
        let replies = match sock.request(family.proto(), request, NLM_F_ACK, &what) {
            Err(e) if e.is_enoent() => return Ok(None),
            result => result?,
        };
        Ok(replies.into_iter().find_map(element_target))
    }
}

/// A rule hull wants in its table, known by its comment.
struct Rule {
    chain: &'static str,
    comment: String,
    exprs: Vec<Expr>,
}

impl Rule {
    fn new(chain: &'static str, comment: impl Into<String>, exprs: Vec<Expr>) -> Self {
        Self {
            chain,
            comment: comment.into(),
            exprs,
        }
    }
}

/// The rules every network needs: published ports.
fn shared_rules(family: Family) -> Vec<Rule> {
    use self::expr::*;
    let to_published_ports = || [fib_daddr_is_local(), vec![jump(DNAT)]].concat();
    let comment = format!("{SHARED_TAG}published ports");
    // The key `daddr . l4proto . dport` in consecutive 32-bit registers
    // from register 1 on; an IPv6 address takes four of them.
    let (proto_reg, port_reg) = match family {
        Family::V4 => (Register::Reg32_01, Register::Reg32_02),
        Family::V6 => (Register::Reg32_04, Register::Reg32_05),
    };
    let mut rules = vec![
        Rule::new(PREROUTING, &comment, to_published_ports()),
        Rule::new(OUTPUT, &comment, to_published_ports()),
    ];
    rules.push(Rule::new(
        DNAT,
        format!("{SHARED_TAG}ports published on one address"),
        dnat_by_map(
            vec![
                daddr(family, Register::Reg1),
                meta(MetaKey::L4Proto, proto_reg),
                th_dport(port_reg),
            ],
            ADDR_PORTS,
            family,
        ),
    ));
    rules.push(Rule::new(
        DNAT,
        format!("{SHARED_TAG}ports published on all addresses"),
        dnat_by_map(
            vec![
                meta(MetaKey::L4Proto, Register::Reg1),
                th_dport(Register::Reg32_01),
            ],
            ANY_PORTS,
            family,
        ),
    ));
    rules
}

/// The masquerade rules of the network on `bridge` with `subnet`. The
/// localhost rule is IPv4's only: IPv6 has no `route_localnet`, so nothing
/// from `::1` is ever forwarded to a container.
fn network_rules(bridge: &str, subnet: AnySubnet) -> Vec<Rule> {
    use self::expr::*;
    let family = Family::of(subnet.addr());
    let comment = |what: &str| format!("{NETWORK_TAG}{bridge} {subnet}: {what}");
    let from_subnet = || addr_in(family, saddr, subnet, true);
    let outbound = [
        from_subnet(),
        addr_in(family, daddr, subnet, false),
        vec![masquerade()],
    ];
    let hairpin = [
        from_subnet(),
        addr_in(family, daddr, subnet, true),
        ct_status_dnat(),
        vec![masquerade()],
    ];
    let mut rules = vec![Rule::new(
        POSTROUTING,
        comment("outbound"),
        outbound.concat(),
    )];
    if family == Family::V4 {
        let loopback = AnySubnet::V4(Subnet {
            addr: Ipv4Addr::new(127, 0, 0, 0),
            prefix: 8,
        });
        let localhost = [
            addr_in(family, saddr, loopback, true),
            oifname_is(bridge),
            vec![masquerade()],
        ];
        rules.push(Rule::new(
            POSTROUTING,
            comment("localhost"),
            localhost.concat(),
        ));
    }
    rules.push(Rule::new(POSTROUTING, comment("hairpin"), hairpin.concat()));
    rules
}

/// The bridge a network rule's comment names.
fn network_of(comment: &str) -> Option<&str> {
    comment.strip_prefix(NETWORK_TAG)?.split(' ').next()
}

/// A rule of hull's table as the kernel lists it.
#[derive(Debug)]
struct ListedRule {
    chain: String,
    handle: u64,
    comment: Option<String>,
}

impl ListedRule {
    fn from_reply(reply: NetfilterMessage) -> Option<Self> {
        let NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(rule)) = reply.inner else {
            return None;
        };
        let (mut chain, mut handle, mut comment) = (None, None, None);
        for attribute in rule.attributes {
            match attribute {
                RuleAttribute::Chain(name) => chain = Some(name),
                RuleAttribute::Handle(h) => handle = Some(h),
                RuleAttribute::UserData(data) => comment = udata_comment(&data),
                _ => {}
            }
        }
        Some(Self {
            chain: chain?,
            handle: handle?,
            comment,
        })
    }

    fn network(&self) -> Option<&str> {
        network_of(self.comment.as_deref()?)
    }
}

/// Type of nft's rule userdata TLV holding the comment (libnftnl's
/// `NFTNL_UDATA_RULE_COMMENT`).
const UDATA_RULE_COMMENT: u8 = 0;

/// Rule userdata holding `comment`, as `nft` writes and shows it.
fn comment_udata(comment: &str) -> Vec<u8> {
    let len = u8::try_from(comment.len() + 1).expect("rule comments are short");
    let mut data = vec![UDATA_RULE_COMMENT, len];
    data.extend_from_slice(comment.as_bytes());
    data.push(0);
    data
}

/// The comment in rule userdata (type-length-value records).
fn udata_comment(mut data: &[u8]) -> Option<String> {
    while let [kind, len, rest @ ..] = data {
        let (value, next) = rest.split_at_checked(usize::from(*len))?;
        if *kind == UDATA_RULE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        data = next;
    }
    None
}

/// A published port as an element of one of the port maps.
struct Element {
    map: &'static str,
    /// `[host address .] protocol . host port`
    key: Vec<u8>,
    /// `container address . container port`
    target: Vec<u8>,
    /// For error messages, e.g. `127.0.0.1:8080:80/tcp to 10.88.0.2`.
    label: String,
}

impl Element {
    /// The element of `port` for the container at `container_ip`; `None`
    /// for a port published on an IPv4 host address when the container
    /// address is IPv6 (that port is IPv4's only).
    fn new(container_ip: IpAddr, port: &PortMapping) -> Option<Self> {
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
fn concat(fields: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for field in fields {
        data.extend_from_slice(field);
        data.resize(data.len().next_multiple_of(4), 0);
    }
    data
}

/// A set element message for one element of `map`.
fn element_message(table: &str, map: &str, element: Vec<SetElementAttribute>) -> SetElementMessage {
    SetElementMessage {
        attributes: vec![
            SetElementList::Table(table.to_owned()),
            SetElementList::Set(map.to_owned()),
            SetElementList::Elements(vec![ListAttribute::Element(element)]),
        ],
    }
}

/// The target (map data) of the element in a set element reply.
fn element_target(reply: NetfilterMessage) -> Option<Vec<u8>> {
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
struct BaseChain {
    name: &'static str,
    hook: InetHookNumber,
    priority: i32,
}

const BASE_CHAINS: [BaseChain; 3] = [
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
struct PortMap {
    name: &'static str,
    /// Identifies the map within a batch (the kernel requires one).
    id: u32,
    /// Whether the key starts with the host address.
    keyed_by_address: bool,
}

impl PortMap {
    /// `[address .] inet_proto . inet_service`
    fn key_type(&self, family: Family) -> u32 {
        let ports = concat_type(&[TYPE_INET_PROTOCOL, TYPE_INET_SERVICE]);
        match self.keyed_by_address {
            true => family.addr_type() << 12 | ports,
            false => ports,
        }
    }

    fn key_len(&self, family: Family) -> u32 {
        match self.keyed_by_address {
            true => family.addr_len() + 8,
            false => 8,
        }
    }
}

// nft's data type numbers (nftables' `enum datatypes`); a concatenation's
// type packs its fields' types 6 bits each, first field highest.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;

const fn concat_type(types: &[u32]) -> u32 {
    let mut concat = 0;
    let mut i = 0;
    while i < types.len() {
        concat = concat << 6 | types[i];
        i += 1;
    }
    concat
}

const PORT_MAPS: [PortMap; 2] = [
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
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// As `nft` names the table's family.
    fn name(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ip6",
        }
    }

    fn proto(self) -> NetfilterProtoFamily {
        match self {
            Self::V4 => NetfilterProtoFamily::IPv4,
            Self::V6 => NetfilterProtoFamily::IPv6,
        }
    }

    fn addr_type(self) -> u32 {
        match self {
            Self::V4 => TYPE_IPADDR,
            Self::V6 => TYPE_IP6ADDR,
        }
    }

    fn addr_len(self) -> u32 {
        match self {
            Self::V4 => 4,
            Self::V6 => 16,
        }
    }

    /// What every port map points to: `address . inet_service`.
    fn target_type(self) -> u32 {
        concat_type(&[self.addr_type(), TYPE_INET_SERVICE])
    }

    fn target_len(self) -> u32 {
        self.addr_len() + 4
    }
}

/// One message of a batch, with what it does for error messages.
struct Op {
    message: NfTablesMessage,
    flags: u16,
    what: String,
}

/// The changes of one nf_tables transaction, applied all-or-nothing.
struct Batch {
    table: String,
    family: Family,
    ops: Vec<Op>,
}

impl Batch {
    fn push(&mut self, message: NfTablesMessage, flags: u16, what: String) {
        self.ops.push(Op {
            message,
            flags,
            what,
        });
    }

    /// The table, its maps and chains; existing ones are left as they are.
    fn create_skeleton(&mut self) {
        let table = TableMessage {
            attributes: vec![TableAttribute::Name(self.table.clone())],
        };
        let what = format!("create table {} {}", self.family.name(), self.table);
        self.push(NfTablesMessage::NewTable(table), NLM_F_CREATE, what);
        for map in &PORT_MAPS {
            self.create_map(map);
        }
        for chain in &BASE_CHAINS {
            let hook = ChainAttribute::Hook(vec![
                Hook::Number(HookNumber::Inet(chain.hook)),
                Hook::Priority(chain.priority as u32),
            ]);
            self.create_chain(chain.name, vec![hook, ChainAttribute::Type("nat".into())]);
        }
        self.create_chain(DNAT, vec![]);
    }

    fn create_map(&mut self, map: &PortMap) {
        let set = SetMessage {
            attributes: vec![
                SetAttribute::Table(self.table.clone()),
                SetAttribute::Name(map.name.into()),
                SetAttribute::Flags(SetFlags::Map),
                SetAttribute::KeyType(map.key_type(self.family)),
                SetAttribute::KeyLen(map.key_len(self.family)),
                SetAttribute::DataType(self.family.target_type()),
                SetAttribute::DataLen(self.family.target_len()),
                SetAttribute::Id(map.id),
            ],
        };
        let what = format!(
            "create map {} in table {} {}",
            map.name,
            self.family.name(),
            self.table
        );
        self.push(NfTablesMessage::NewSet(set), NLM_F_CREATE, what);
    }

    fn create_chain(&mut self, name: &str, base: Vec<ChainAttribute>) {
        let mut attributes = vec![
            ChainAttribute::Table(self.table.clone()),
            ChainAttribute::Name(name.into()),
        ];
        attributes.extend(base);
        let what = format!(
            "create chain {name} in table {} {}",
            self.family.name(),
            self.table
        );
        self.push(
            NfTablesMessage::NewChain(ChainMessage { attributes }),
            NLM_F_CREATE,
            what,
        );
    }

    /// Makes the rules whose comment satisfies `owned` exactly `wanted`:
    /// leaves them alone if they already are, else replaces them all.
    fn replace_rules(
        &mut self,
        listed: &[ListedRule],
        owned: impl Fn(&str) -> bool,
        wanted: Vec<Rule>,
    ) {
        let current: Vec<&ListedRule> = listed
            .iter()
            .filter(|r| r.comment.as_deref().is_some_and(&owned))
            .collect();
        if same_rules(&current, &wanted) {
            return;
        }
        for rule in current {
            self.delete_rule(rule);
        }
        for rule in wanted {
            self.add_rule(rule);
        }
    }

    fn add_rule(&mut self, rule: Rule) {
        let what = format!("add rule {:?} to chain {}", rule.comment, rule.chain);
        let message = RuleMessage {
            attributes: vec![
                RuleAttribute::Table(self.table.clone()),
                RuleAttribute::Chain(rule.chain.into()),
                RuleAttribute::Expressions(rule.exprs),
                RuleAttribute::UserData(comment_udata(&rule.comment)),
            ],
        };
        self.push(
            NfTablesMessage::NewRule(message),
            NLM_F_CREATE | NLM_F_APPEND,
            what,
        );
    }

    fn delete_rule(&mut self, rule: &ListedRule) {
        let what = format!(
            "delete rule {:?} (handle {}) from chain {}",
            rule.comment.as_deref().unwrap_or_default(),
            rule.handle,
            rule.chain
        );
        let message = RuleMessage {
            attributes: vec![
                RuleAttribute::Table(self.table.clone()),
                RuleAttribute::Chain(rule.chain.clone()),
                RuleAttribute::Handle(rule.handle),
            ],
        };
        self.push(NfTablesMessage::DeleteRule(message), 0, what);
    }

    fn add_element(&mut self, element: &Element) {
        let attributes = vec![
            SetElementAttribute::Key(DataAttribute::Value(element.key.clone())),
            SetElementAttribute::Data(DataAttribute::Value(element.target.clone())),
        ];
        let message = element_message(&self.table, element.map, attributes);
        let what = format!("publish {} in map {}", element.label, element.map);
        self.push(NfTablesMessage::NewSetElement(message), NLM_F_CREATE, what);
    }

    fn delete_element(&mut self, element: &Element) {
        let key = SetElementAttribute::Key(DataAttribute::Value(element.key.clone()));
        let message = element_message(&self.table, element.map, vec![key]);
        let what = format!("unpublish {} from map {}", element.label, element.map);
        self.push(NfTablesMessage::DeleteSetElement(message), 0, what);
    }

    fn delete_table(&mut self) {
        let table = TableMessage {
            attributes: vec![TableAttribute::Name(self.table.clone())],
        };
        let what = format!("delete table {} {}", self.family.name(), self.table);
        self.push(NfTablesMessage::DeleteTable(table), 0, what);
    }
}

/// Whether the listed rules are the wanted ones, chain by chain in order.
fn same_rules(current: &[&ListedRule], wanted: &[Rule]) -> bool {
    let mut have: Vec<(&str, &str)> = current
        .iter()
        .map(|r| (r.chain.as_str(), r.comment.as_deref().unwrap_or_default()))
        .collect();
    let mut want: Vec<(&str, &str)> = wanted
        .iter()
        .map(|r| (r.chain, r.comment.as_str()))
        .collect();
    // Stable sorts: the order within a chain stays.
    have.sort_by_key(|(chain, _)| *chain);
    want.sort_by_key(|(chain, _)| *chain);
    have == want
}

/// Builders for the nf_tables expressions hull's rules are made of. Those the
/// crate has no type for (`fib`, `ct`, `nat`, `masq`) are written as raw
/// attributes, all of them 32-bit big-endian numbers.
mod expr {
    use netlink_packet_core::DefaultNla;
    use netlink_packet_netfilter::nftables::{
        Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute,
        Lookup, Meta, MetaKey, Operator, Payload, Register, Verdict, VerdictAttribute,
    };

    use super::Family;
    use crate::AnySubnet;

    pub(super) type Expr = ListAttribute<ExpressionAttribute>;

    const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
    const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
    const IFNAMSIZ: usize = 16;

    fn payload(base: u32, offset: u32, len: u32, register: Register) -> Expr {
        Expressions::Payload(vec![
            Payload::DestinationRegister(register),
            Payload::Base(base),
            Payload::Offset(offset),
            Payload::Len(len),
        ])
        .into()
    }

    /// `ip saddr` or `ip6 saddr`
    pub(super) fn saddr(family: Family, register: Register) -> Expr {
        match family {
            Family::V4 => payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, register),
            Family::V6 => payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16, register),
        }
    }

    /// `ip daddr` or `ip6 daddr`
    pub(super) fn daddr(family: Family, register: Register) -> Expr {
        match family {
            Family::V4 => payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, register),
            Family::V6 => payload(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, register),
        }
    }

    /// `th dport`
    pub(super) fn th_dport(register: Register) -> Expr {
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, register)
    }

    /// `meta KEY`
    pub(super) fn meta(key: MetaKey, register: Register) -> Expr {
        Expressions::Meta(vec![Meta::DestinationRegister(register), Meta::Key(key)]).into()
    }

    /// Compares register 1 with `data`.
    fn cmp(op: Operator, data: Vec<u8>) -> Expr {
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(op),
            Cmp::Data(DataAttribute::Value(data)),
        ])
        .into()
    }

    /// Register 1 &= `mask` (as long as the mask).
    fn and(mask: Vec<u8>) -> Expr {
        let len = mask.len();
        Expressions::Bitwise(vec![
            Bitwise::SourceRegister(Register::Reg1),
            Bitwise::DestinationRegister(Register::Reg1),
            Bitwise::Length(len as u32),
            Bitwise::Mask(DataAttribute::Value(mask)),
            Bitwise::Xor(DataAttribute::Value(vec![0; len])),
        ])
        .into()
    }

    /// `FIELD SUBNET` or `FIELD != SUBNET` for an address `field` of
    /// `family` (the subnet's).
    pub(super) fn addr_in(
        family: Family,
        field: fn(Family, Register) -> Expr,
        subnet: AnySubnet,
        inside: bool,
    ) -> Vec<Expr> {
        let op = if inside {
            Operator::Equal
        } else {
            Operator::NotEqual
        };
        let network = match subnet.addr() {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        vec![
            field(family, Register::Reg1),
            and(subnet.mask_bytes()),
            cmp(op, network),
        ]
    }

    /// `oifname NAME`
    pub(super) fn oifname_is(name: &str) -> Vec<Expr> {
        let mut padded = name.as_bytes().to_vec();
        padded.resize(IFNAMSIZ, 0);
        vec![
            meta(MetaKey::Oifname, Register::Reg1),
            cmp(Operator::Equal, padded),
        ]
    }

    /// `fib daddr type local`
    pub(super) fn fib_daddr_is_local() -> Vec<Expr> {
        const NFTA_FIB_DREG: u16 = 1;
        const NFTA_FIB_RESULT: u16 = 2;
        const NFTA_FIB_FLAGS: u16 = 3;
        const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
        const NFTA_FIB_F_DADDR: u32 = 1 << 1;
        const RTN_LOCAL: u32 = 2;
        let fib = raw(
            "fib",
            &[
                (NFTA_FIB_DREG, Register::Reg1.into()),
                (NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE),
                (NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR),
            ],
        );
        // The kernel stores the address type in host byte order.
        vec![fib, cmp(Operator::Equal, RTN_LOCAL.to_ne_bytes().to_vec())]
    }

    /// `ct status dnat`
    pub(super) fn ct_status_dnat() -> Vec<Expr> {
        const NFTA_CT_DREG: u16 = 1;
        const NFTA_CT_KEY: u16 = 2;
        const NFT_CT_STATUS: u32 = 2;
        const IPS_DST_NAT: u32 = 1 << 5;
        let ct = raw(
            "ct",
            &[
                (NFTA_CT_DREG, Register::Reg1.into()),
                (NFTA_CT_KEY, NFT_CT_STATUS),
            ],
        );
        // The status bits are in host byte order.
        vec![
            ct,
            and(IPS_DST_NAT.to_ne_bytes().to_vec()),
            cmp(Operator::NotEqual, vec![0; 4]),
        ]
    }

    /// `masquerade`
    pub(super) fn masquerade() -> Expr {
        raw("masq", &[])
    }

    /// `jump CHAIN`
    pub(super) fn jump(chain: &str) -> Expr {
        Expressions::Immediate(vec![
            Immediate::DestinationRegister(Register::Verdict),
            Immediate::Data(DataAttribute::Verdict(vec![
                VerdictAttribute::Code(Verdict::Jump),
                VerdictAttribute::Chain(chain.into()),
            ])),
        ])
        .into()
    }

    /// `dnat to KEY map @MAP` where `key` loads the concatenation into the
    /// registers from 1 on and the map yields `address . inet_service`.
    pub(super) fn dnat_by_map(mut key: Vec<Expr>, map: &str, family: Family) -> Vec<Expr> {
        const NFTA_NAT_TYPE: u16 = 1;
        const NFTA_NAT_FAMILY: u16 = 2;
        const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
        const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
        const NFT_NAT_DNAT: u32 = 1;
        const NFPROTO_IPV4: u32 = 2;
        const NFPROTO_IPV6: u32 = 10;
        // The target address lands in the first 32-bit registers (one for
        // IPv4, four for IPv6), its port in the one after.
        let (nfproto, port_reg) = match family {
            Family::V4 => (NFPROTO_IPV4, Register::Reg32_01),
            Family::V6 => (NFPROTO_IPV6, Register::Reg32_04),
        };
        key.push(
            Expressions::Lookup(vec![
                Lookup::Set(map.into()),
                Lookup::SourceRegister(Register::Reg1),
                Lookup::DestinationRegister(Register::Reg1),
            ])
            .into(),
        );
        key.push(raw(
            "nat",
            &[
                (NFTA_NAT_TYPE, NFT_NAT_DNAT),
                (NFTA_NAT_FAMILY, nfproto),
                (NFTA_NAT_REG_ADDR_MIN, Register::Reg1.into()),
                (NFTA_NAT_REG_PROTO_MIN, port_reg.into()),
            ],
        ));
        key
    }

    /// An expression the crate has no type for.
    fn raw(name: &str, attributes: &[(u16, u32)]) -> Expr {
        Expressions::Other {
            expression_type: name.into(),
            attributes: attributes
                .iter()
                .map(|&(kind, value)| DefaultNla::new(kind, value.to_be_bytes().to_vec()))
                .collect(),
        }
        .into()
    }
}

const IPV4: NetfilterProtoFamily = NetfilterProtoFamily::IPv4;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u8 = 16;
const NFNL_BATCH_GENID: u16 = 1;
/// Enough for the largest datagram the kernel sends (32 KiB dump chunks).
const RECV_BUFFER: usize = 64 * 1024;
/// The kernel answers within the send call; this only guards against bugs.
const REPLY_TIMEOUT: TimeVal = TimeVal::new(10, 0);

/// A `NETLINK_NETFILTER` socket, bound to the network namespace of the thread
/// that opened it.
pub(crate) struct NfSocket {
    socket: Socket,
    seq: u32,
    buffer: Vec<u8>,
}

impl NfSocket {
    pub(crate) fn open() -> Result<Self, NftError> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Acknowledgements without a copy of the request.
        socket.set_cap_ack(true)?;
        setsockopt(&socket, sockopt::ReceiveTimeout, &REPLY_TIMEOUT).map_err(io::Error::from)?;
        Ok(Self {
            socket,
            seq: 0,
            buffer: Vec::with_capacity(RECV_BUFFER),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// Sends one request (`flags` besides `NLM_F_REQUEST`: `NLM_F_DUMP` or
    /// `NLM_F_ACK`) and returns the reply's messages up to its end.
    pub(crate) fn request(
        &mut self,
        family: NetfilterProtoFamily,
        inner: impl Into<NetfilterMessageInner>,
        flags: u16,
        what: &str,
    ) -> Result<Vec<NetfilterMessage>, NftError> {
        let seq = self.next_seq();
        self.send(&[message(family, 0, inner.into(), NLM_F_REQUEST | flags, seq)])?;
        let mut replies = Vec::new();
        loop {
            for msg in self.recv()? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                let end = match msg.payload {
                    NetlinkPayload::InnerMessage(reply) => {
                        replies.push(reply);
                        continue;
                    }
                    NetlinkPayload::Error(e) => e.code,
                    NetlinkPayload::Done(done) => NonZeroI32::new(done.code),
                    _ => continue,
                };
                return match end {
                    None => Ok(replies),
                    Some(code) => Err(NftError::kernel(what, code)),
                };
            }
        }
    }

    /// The current nf_tables ruleset generation.
    fn generation(&mut self) -> Result<u32, NftError> {
        let get = NfTablesMessage::GetGen(GenMessage { attributes: vec![] });
        let replies = self.request(IPV4, get, NLM_F_ACK, "read the ruleset generation")?;
        replies
            .into_iter()
            .find_map(|reply| match reply.inner {
                NetfilterMessageInner::NfTables(NfTablesMessage::NewGen(gen)) => {
                    gen.attributes.into_iter().find_map(|a| match a {
                        GenAttribute::Id(id) => Some(id),
                        _ => None,
                    })
                }
                _ => None,
            })
            .ok_or_else(|| NftError::Reply("no generation id in NFT_MSG_NEWGEN".into()))
    }

    /// Applies `batch` as one transaction; with `generation`, only if the
    /// ruleset is still at that generation (else `ERESTART`).
    fn commit(&mut self, batch: &Batch, generation: Option<u32>) -> Result<(), NftError> {
        if batch.ops.is_empty() {
            return Ok(());
        }
        let begin_seq = self.next_seq();
        let mut msgs = vec![control_message(batch_begin(generation), begin_seq)];
        for (i, op) in batch.ops.iter().enumerate() {
            // Only the last message asks for an acknowledgement.
            let ack = if i + 1 == batch.ops.len() {
                NLM_F_ACK
            } else {
                0
            };
            let flags = NLM_F_REQUEST | ack | op.flags;
            let seq = self.next_seq();
            let family = batch.family.proto();
            msgs.push(message(family, 0, op.message.clone().into(), flags, seq));
        }
        let end_seq = self.next_seq();
        msgs.push(control_message(ControlMessage::BatchEnd, end_seq));
        self.send(&msgs)?;
        self.batch_result(batch, begin_seq)
    }

    /// Reads the outcome of `batch`, sent from sequence number `begin_seq`
    /// on. The kernel processes a batch within the send call; then it reports
    /// an error for each failing message and the acknowledgement of the last
    /// one, or only an error for the batch-begin message if the commit
    /// failed or the generation was stale.
    fn batch_result(&mut self, batch: &Batch, begin_seq: u32) -> Result<(), NftError> {
        let last_seq = begin_seq + batch.ops.len() as u32;
        let mut failure = None;
        loop {
            for msg in self.recv()? {
                let seq = msg.header.sequence_number;
                let NetlinkPayload::Error(e) = msg.payload else {
                    continue;
                };
                if !(begin_seq..=last_seq).contains(&seq) {
                    continue;
                }
                if let Some(code) = e.code {
                    let what = match (seq - begin_seq).checked_sub(1) {
                        Some(i) => batch.ops[i as usize].what.clone(),
                        None => {
                            format!("commit to table {} {}", batch.family.name(), batch.table)
                        }
                    };
                    failure.get_or_insert(NftError::kernel(what, code));
                }
                if seq == begin_seq || seq == last_seq {
                    return failure.map_or(Ok(()), Err);
                }
            }
        }
    }

    fn send(&mut self, msgs: &[NetlinkMessage<NetfilterMessage>]) -> Result<(), NftError> {
        let len = msgs.iter().map(|m| m.buffer_len()).sum();
        let mut buffer = vec![0; len];
        let mut offset = 0;
        for msg in msgs {
            msg.serialize(&mut buffer[offset..]);
            offset += msg.buffer_len();
        }
        self.reserve_send_buffer(len)?;
        self.socket.send(&buffer, 0)?;
        Ok(())
    }

    /// A batch travels in one datagram, which must fit the send buffer.
    fn reserve_send_buffer(&self, len: usize) -> Result<(), NftError> {
        // The kernel's margin for a netlink datagram; it reports the
        // buffer doubled and doubles what is set.
        const SLACK: usize = 32;
        let current = getsockopt(&self.socket, sockopt::SndBuf).map_err(io::Error::from)?;
        if len + SLACK > current {
            setsockopt(&self.socket, sockopt::SndBufForce, &(len + SLACK))
                .map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// The messages of one datagram.
    fn recv(&mut self) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, NftError> {
        self.buffer.clear();
        let len = self.socket.recv(&mut self.buffer, 0)?;
        let mut msgs = Vec::new();
        let mut offset = 0;
        while offset < len {
            let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&self.buffer[offset..len])
                .map_err(|e| NftError::Reply(e.to_string()))?;
            let msg_len = msg.header.length as usize;
            if msg_len == 0 {
                break;
            }
            offset += msg_len.next_multiple_of(4);
            msgs.push(msg);
        }
        Ok(msgs)
    }
}

/// A batch delimiter, addressed to the nf_tables subsystem.
fn control_message(control: ControlMessage, seq: u32) -> NetlinkMessage<NetfilterMessage> {
    let family = NetfilterProtoFamily::Unspec;
    message(
        family,
        NFNL_SUBSYS_NFTABLES,
        control.into(),
        NLM_F_REQUEST,
        seq,
    )
}

/// The batch-begin message; with a generation, the kernel refuses the batch
/// if the ruleset has moved on since.
fn batch_begin(generation: Option<u32>) -> ControlMessage {
    let genid = generation.map(|g| DefaultNla::new(NFNL_BATCH_GENID, g.to_be_bytes().to_vec()));
    ControlMessage::Other {
        message_type: NFNL_MSG_BATCH_BEGIN,
        attributes: genid.into_iter().collect(),
    }
}

fn message(
    family: NetfilterProtoFamily,
    res_id: u16,
    inner: NetfilterMessageInner,
    flags: u16,
    seq: u32,
) -> NetlinkMessage<NetfilterMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let netfilter = NetfilterMessage::new(NetfilterHeader::new(family, 0, res_id), inner);
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(netfilter));
    msg.finalize();
    msg
}

/// Throwaway network namespaces for tests, so the host's own firewall and
/// links are never touched, and a two-namespace topology for real traffic.
#[cfg(test)]
pub(crate) mod testnet {
    use std::fs::File;
    use std::io::Read;
    use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::thread;
    use std::time::Duration;

    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
        NLM_F_REQUEST,
    };
    use netlink_packet_route::address::{AddressAttribute, AddressMessage};
    use netlink_packet_route::link::{
        InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    };
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    use nix::net::if_::if_nametoindex;
    use nix::sched::{setns, unshare, CloneFlags};

    use crate::Subnet;

    /// The host end of the veth pair, standing in for the bridge.
    pub(crate) const HOST_IF: &str = "hulltest0";
    pub(crate) const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
    /// The container's two addresses (two "containers" in one namespace).
    pub(crate) const CONTAINER_A: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
    pub(crate) const CONTAINER_B: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 3);
    const TIMEOUT: Duration = Duration::from_secs(2);

    pub(crate) fn subnet() -> Subnet {
        Subnet::new(HOST_IP, 24).unwrap()
    }

    /// hull's table name in tests.
    pub(crate) fn table() -> String {
        format!("hull_test_{}", std::process::id())
    }

    /// A network namespace of its own, alive as long as this handle, with
    /// `lo` up.
    pub(crate) struct Netns(File);

    impl Netns {
        pub(crate) fn new() -> Self {
            let ns = thread::spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): tests need root");
                Self(File::open("/proc/thread-self/ns/net").unwrap())
            })
            .join()
            .unwrap();
            ns.run(|| link_up("lo"));
            ns
        }

        /// Runs `f` on a thread inside this namespace.
        pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
            thread::scope(|scope| {
                scope
                    .spawn(|| {
                        setns(&self.0, CloneFlags::CLONE_NEWNET).unwrap();
                        f()
                    })
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        }
    }

    /// A "host" namespace and a "container" namespace joined by a veth pair:
    /// `hulltest0` with HOST_IP/24 (route_localnet and forwarding on) on the
    /// host, `eth0` with both container addresses and a default route via
    /// the host in the container.
    pub(crate) struct Topology {
        pub(crate) host: Netns,
        pub(crate) container: Netns,
    }

    impl Topology {
        pub(crate) fn new() -> Self {
            let (host, container) = (Netns::new(), Netns::new());
            host.run(|| {
                add_veth(HOST_IF, "eth0", &container.0);
                add_address(HOST_IF, HOST_IP, 24);
                link_up(HOST_IF);
                sysctl(&format!("ipv4/conf/{HOST_IF}/route_localnet"), "1");
                sysctl("ipv4/ip_forward", "1");
            });
            container.run(|| {
                add_address("eth0", CONTAINER_A, 24);
                add_address("eth0", CONTAINER_B, 24);
                link_up("eth0");
                add_default_route(HOST_IP);
            });
            Self { host, container }
        }
    }

    /// Answers each TCP connection with the address it came from, so a test
    /// sees what masquerade did.
    pub(crate) fn serve_tcp(listener: TcpListener) {
        thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let peer = conn.peer_addr().unwrap().ip().to_string();
                let _ = std::io::Write::write_all(&mut conn, peer.as_bytes());
            }
        });
    }

    /// What a TCP server at `addr` answers.
    pub(crate) fn ask_tcp(addr: (Ipv4Addr, u16)) -> std::io::Result<String> {
        let mut conn =
            TcpStream::connect_timeout(&SocketAddrV4::new(addr.0, addr.1).into(), TIMEOUT)?;
        conn.set_read_timeout(Some(TIMEOUT))?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Answers each UDP datagram with `name`.
    pub(crate) fn serve_udp(socket: UdpSocket, name: &'static str) {
        thread::spawn(move || {
            let mut buf = [0; 64];
            while let Ok((_, peer)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(name.as_bytes(), peer);
            }
        });
    }

    /// What answers a datagram sent over the connected `client`, if anything.
    pub(crate) fn ask_udp(client: &UdpSocket) -> Option<String> {
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.send(b"?").unwrap();
        let mut buf = [0; 64];
        let len = client.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    fn sysctl(name: &str, value: &str) {
        std::fs::write(format!("/proc/sys/net/{name}"), value).unwrap();
    }

    fn index(name: &str) -> u32 {
        if_nametoindex(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn link_up(name: &str) {
        let mut link = LinkMessage::default();
        link.header.index = index(name);
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        rtnetlink(RouteNetlinkMessage::SetLink(link), 0);
    }

    fn add_veth(name: &str, peer: &str, peer_netns: &File) {
        let mut peer_link = LinkMessage::default();
        peer_link.attributes = vec![
            LinkAttribute::IfName(peer.into()),
            LinkAttribute::NetNsFd(peer_netns.as_raw_fd()),
        ];
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.into()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))),
            ]),
        ];
        rtnetlink(
            RouteNetlinkMessage::NewLink(link),
            NLM_F_CREATE | NLM_F_EXCL,
        );
    }

    fn add_address(name: &str, ip: Ipv4Addr, prefix: u8) {
        let mut address = AddressMessage::default();
        address.header.family = AddressFamily::Inet;
        address.header.prefix_len = prefix;
        address.header.index = index(name);
        address.attributes = vec![
            AddressAttribute::Local(ip.into()),
            AddressAttribute::Address(ip.into()),
        ];
        rtnetlink(
            RouteNetlinkMessage::NewAddress(address),
            NLM_F_CREATE | NLM_F_EXCL,
        );
    }

    fn add_default_route(gateway: Ipv4Addr) {
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet;
        route.header.table = RouteHeader::RT_TABLE_MAIN;
        route.header.protocol = RouteProtocol::Static;
        route.header.kind = RouteType::Unicast;
        route.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
        rtnetlink(
            RouteNetlinkMessage::NewRoute(route),
            NLM_F_CREATE | NLM_F_EXCL,
        );
    }

    /// Sends one rtnetlink request and panics unless the kernel acks it.
    fn rtnetlink(request: RouteNetlinkMessage, flags: u16) {
        let mut socket = Socket::new(NETLINK_ROUTE).unwrap();
        socket.bind_auto().unwrap();
        socket.connect(&SocketAddr::new(0, 0)).unwrap();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let what = format!("{request:?}");
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(request));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        socket.send(&buf, 0).unwrap();
        let mut reply = Vec::with_capacity(8192);
        socket.recv(&mut reply, 0).unwrap();
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
            .unwrap()
            .payload
        {
            NetlinkPayload::Error(e) if e.code.is_some() => panic!("{what}: {e}"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};
    use std::process::Command;

    use netlink_packet_core::Emitable;

    use super::testnet::*;
    use super::*;
    use crate::Protocol;

    fn ports(specs: &[&str]) -> Vec<PortMapping> {
        specs.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// `nft list table ip TABLE`, run in the calling thread's namespace.
    fn nft_list(table: &str) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", table])
            .output()
            .expect("nft (apt-get install nftables)");
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// (chain, comment) of each rule, read back over netlink; `None` without
    /// a table.
    fn rules(fw: &Firewall) -> Option<Vec<(String, String)>> {
        let listed = fw
            .list_rules(&mut NfSocket::open().unwrap(), Family::V4)
            .unwrap()?;
        let rules = listed
            .into_iter()
            .map(|r| (r.chain, r.comment.unwrap_or_default()));
        Some(rules.collect())
    }

    /// The (key, target) elements of `map`, dumped over netlink, sorted.
    fn elements(fw: &Firewall, map: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let dump = SetElementMessage {
            attributes: vec![
                SetElementList::Table(fw.table.clone()),
                SetElementList::Set(map.into()),
            ],
        };
        let replies = NfSocket::open()
            .unwrap()
            .request(
                IPV4,
                NfTablesMessage::GetSetElement(dump),
                NLM_F_DUMP,
                "dump",
            )
            .unwrap();
        let mut found = Vec::new();
        for reply in replies {
            let NetfilterMessageInner::NfTables(NfTablesMessage::NewSetElement(msg)) = reply.inner
            else {
                continue;
            };
            for list in msg.attributes {
                let SetElementList::Elements(elements) = list else {
                    continue;
                };
                for element in elements {
                    let ListAttribute::Element(attributes) = element else {
                        continue;
                    };
                    let (mut key, mut target) = (vec![], vec![]);
                    for attribute in attributes {
                        match attribute {
                            SetElementAttribute::Key(DataAttribute::Value(k)) => key = k,
                            SetElementAttribute::Data(DataAttribute::Value(t)) => target = t,
                            _ => {}
                        }
                    }
                    found.push((key, target));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn network_rules_are_idempotent_and_go_with_the_last_network() {
        Netns::new().run(|| {
            let other = Firewall::new("hull_test_other");
            other.ensure_network("hulltestx", subnet()).unwrap();
            let fw = Firewall::new(&table());
            let net_a: Subnet = "10.199.1.0/24".parse().unwrap();
            let net_b: Subnet = "10.199.2.0/24".parse().unwrap();
            fw.ensure_network("hulltesta", net_a).unwrap();
            fw.ensure_network("hulltesta", net_a).unwrap();
            fw.ensure_network("hulltestb", net_b).unwrap();
            let listed = rules(&fw).unwrap();
            assert_eq!(listed.len(), 4 + 3 + 3, "{listed:#?}");

            let listing = nft_list(&fw.table);
            for line in [
                "type nat hook prerouting priority dstnat; policy accept;",
                "type nat hook output priority -100; policy accept;",
                "type nat hook postrouting priority srcnat; policy accept;",
                "fib daddr type local jump dnat comment \"hull: published ports\"",
                "dnat ip to ip daddr . meta l4proto . th dport map @addr_ports",
                "dnat ip to meta l4proto . th dport map @any_ports",
                "ip saddr 10.199.1.0/24 ip daddr != 10.199.1.0/24 masquerade \
                 comment \"hull net hulltesta 10.199.1.0/24: outbound\"",
                "ip saddr 127.0.0.0/8 oifname \"hulltesta\" masquerade",
                "ip saddr 10.199.2.0/24 ip daddr 10.199.2.0/24 ct status dnat masquerade",
            ] {
                assert!(listing.contains(line), "{line:?} missing in\n{listing}");
            }

            // A new subnet replaces the network's rules.
            let moved: Subnet = "10.199.3.0/24".parse().unwrap();
            fw.ensure_network("hulltesta", moved).unwrap();
            let listing = nft_list(&fw.table);
            assert!(!listing.contains("10.199.1.0/24"), "{listing}");
            assert!(listing.contains("ip saddr 10.199.3.0/24 ip daddr != 10.199.3.0/24"));

            fw.remove_network("hulltesta", moved).unwrap();
            let listed = rules(&fw).unwrap();
            assert_eq!(listed.len(), 4 + 3, "{listed:#?}");
            assert!(listed
                .iter()
                .all(|(_, comment)| !comment.contains("hulltesta")));

            fw.remove_network("hulltestb", net_b).unwrap();
            assert_eq!(rules(&fw), None, "the table goes with the last network");
            fw.remove_network("hulltestb", net_b).unwrap();
            fw.delete_table().unwrap();
            assert_eq!(
                rules(&other).unwrap().len(),
                4 + 3,
                "another table is left alone"
            );
        });
    }

    #[test]
    fn ports_are_map_elements_removed_only_by_their_container() {
        Netns::new().run(|| {
            let fw = Firewall::new(&table());
            fw.ensure_network(HOST_IF, subnet()).unwrap();
            let published = ports(&["8080:80", "127.0.0.1:8081:80", "5353:53/udp"]);
            fw.add_ports(CONTAINER_A, &published).unwrap();
            fw.add_ports(CONTAINER_A, &published).unwrap();

            let tcp_8080 = vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0];
            let udp_5353 = vec![17, 0, 0, 0, 0x14, 0xe9, 0, 0];
            let to_a = |port: u8| vec![10, 199, 0, 2, 0, port, 0, 0];
            assert_eq!(
                elements(&fw, ANY_PORTS),
                [(tcp_8080, to_a(80)), (udp_5353, to_a(53))]
            );
            let localhost_8081 = vec![127, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x91, 0, 0];
            assert_eq!(elements(&fw, ADDR_PORTS), [(localhost_8081, to_a(80))]);
            let listing = nft_list(&fw.table);
            for element in [
                "tcp . 8080 : 10.199.0.2 . 80",
                "udp . 5353 : 10.199.0.2 . 53",
                "127.0.0.1 . tcp . 8081 : 10.199.0.2 . 80",
            ] {
                assert!(
                    listing.contains(element),
                    "{element:?} missing in\n{listing}"
                );
            }

            let taken = fw.add_ports(CONTAINER_B, &ports(&["8080:80"])).unwrap_err();
            assert_eq!(taken.errno(), Some(libc::EEXIST), "{taken}");
            assert!(taken
                .to_string()
                .starts_with("publish 8080:80/tcp to 10.199.0.3 in map any_ports"));

            // All or nothing: the free ports around the taken one stay free.
            let taken = fw.add_ports(CONTAINER_B, &ports(&["9000:80", "8080:80", "9001:80"]));
            assert_eq!(taken.unwrap_err().errno(), Some(libc::EEXIST));
            assert_eq!(elements(&fw, ANY_PORTS).len(), 2);

            fw.remove_ports(CONTAINER_B, &published).unwrap();
            assert_eq!(
                elements(&fw, ANY_PORTS).len(),
                2,
                "another container's ports stay"
            );
            fw.remove_ports(CONTAINER_A, &published).unwrap();
            assert!(elements(&fw, ANY_PORTS).is_empty());
            assert!(elements(&fw, ADDR_PORTS).is_empty());
            fw.remove_ports(CONTAINER_A, &published).unwrap();
            fw.delete_table().unwrap();
            fw.remove_ports(CONTAINER_A, &published).unwrap();
        });
    }

    #[test]
    fn publishing_the_100th_port_is_one_message_like_the_first() {
        Netns::new().run(|| {
            let fw = Firewall::new(&table());
            fw.ensure_network(HOST_IF, subnet()).unwrap();
            let port = |n: u16| PortMapping {
                host_ip: None,
                host_port: 20000 + n,
                container_port: 80,
                protocol: Protocol::Tcp,
            };
            let size = |batch: &Batch| {
                let bytes: usize = batch.ops.iter().map(|op| op.message.buffer_len()).sum();
                (batch.ops.len(), bytes)
            };
            let first = size(&fw.publish_batch(CONTAINER_A.into(), &[port(1)]));
            assert_eq!(first.0, 1);
            for n in 1..100 {
                fw.add_ports(CONTAINER_A, &[port(n)]).unwrap();
            }
            let hundredth = fw.publish_batch(CONTAINER_A.into(), &[port(100)]);
            assert_eq!(size(&hundredth), first);
            NfSocket::open().unwrap().commit(&hundredth, None).unwrap();
            assert_eq!(elements(&fw, ANY_PORTS).len(), 100);
        });
    }

    #[test]
    fn a_large_port_range_is_one_batch() {
        Netns::new().run(|| {
            let fw = Firewall::new(&table());
            fw.ensure_network(HOST_IF, subnet()).unwrap();
            let range: Vec<PortMapping> = (10000..15000)
                .map(|port| PortMapping {
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: port,
                    container_port: port,
                    protocol: Protocol::Udp,
                })
                .collect();
            // Looked up one by one: the crate's parser is quadratic on big dumps.
            let published = || {
                let mut sock = NfSocket::open().unwrap();
                let targets = range.iter().map(|p| {
                    let element = Element::new(CONTAINER_A.into(), p).unwrap();
                    fw.lookup(&mut sock, Family::V4, &element).unwrap() == Some(element.target)
                });
                targets.filter(|&found| found).count()
            };
            fw.add_ports(CONTAINER_A, &range).unwrap();
            assert_eq!(published(), range.len());
            fw.remove_ports(CONTAINER_A, &range).unwrap();
            assert_eq!(published(), 0);
        });
    }

    #[test]
    fn concurrent_changes_neither_duplicate_nor_lose_rules() {
        let netns = Netns::new();
        let fw = Firewall::new(&table());
        let networks: Vec<(String, Subnet)> = (0..6)
            .map(|i| {
                let subnet = Subnet::new(Ipv4Addr::new(10, 199, i, 0), 24).unwrap();
                (format!("hulltest{i}"), subnet)
            })
            .collect();
        let each_network = |change: fn(&Firewall, &str, Subnet) -> Result<(), NftError>| {
            std::thread::scope(|scope| {
                for (bridge, subnet) in &networks {
                    scope.spawn(|| netns.run(|| change(&fw, bridge, *subnet).unwrap()));
                }
            })
        };
        each_network(Firewall::ensure_network);
        let listed = netns.run(|| rules(&fw)).unwrap();
        assert_eq!(listed.len(), 4 + 3 * networks.len(), "{listed:#?}");
        each_network(Firewall::remove_network);
        assert_eq!(netns.run(|| rules(&fw)), None);
    }

    #[test]
    fn errors_name_the_object_and_the_errno() {
        Netns::new().run(|| {
            let fw = Firewall::new(&table());
            let err = fw.add_ports(CONTAINER_A, &ports(&["8080:80"])).unwrap_err();
            assert_eq!(err.errno(), Some(libc::ENOENT));
            assert_eq!(
                err.to_string(),
                "publish 8080:80/tcp to 10.199.0.2 in map any_ports: \
                 No such file or directory (os error 2)"
            );
        });
    }

    #[test]
    fn published_ports_forward_real_traffic() {
        let net = Topology::new();
        serve_tcp(
            net.container
                .run(|| TcpListener::bind((CONTAINER_A, 80)).unwrap()),
        );
        let fw = Firewall::new(&table());
        let published = ports(&["8080:80", "127.0.0.1:8081:80"]);
        let host = HOST_IP.to_string();
        net.host.run(|| {
            fw.ensure_network(HOST_IF, subnet()).unwrap();
            fw.add_ports(CONTAINER_A, &published).unwrap();
            // From the host itself (output chain); loopback sources are
            // masqueraded to the bridge address.
            assert_eq!(ask_tcp((Ipv4Addr::LOCALHOST, 8080)).unwrap(), host);
            assert_eq!(ask_tcp((HOST_IP, 8080)).unwrap(), host);
            assert_eq!(ask_tcp((Ipv4Addr::LOCALHOST, 8081)).unwrap(), host);
            assert!(
                ask_tcp((HOST_IP, 8081)).is_err(),
                "8081 is published on 127.0.0.1 only"
            );
        });
        // From the container to its own published port through the host:
        // prerouting, then hairpin masquerade.
        assert_eq!(
            net.container.run(|| ask_tcp((HOST_IP, 8080))).unwrap(),
            host
        );
        net.host.run(|| {
            fw.remove_ports(CONTAINER_A, &published).unwrap();
            assert!(ask_tcp((Ipv4Addr::LOCALHOST, 8080)).is_err());
        });
    }
}
