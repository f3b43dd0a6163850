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
//!     }                       # (an overlay network's outbound rule: ip daddr != its whole range)
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

mod batch;
mod expr;
mod rules;
mod schema;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_netfilter::nftables::{
    DataAttribute, NfTablesMessage, RuleAttribute, RuleMessage, SetElementAttribute,
    TableAttribute, TableMessage,
};

use crate::nfnetlink::NfSocket;
pub use crate::nfnetlink::NftError;
use crate::{AnySubnet, PortMapping};

use self::batch::{generation, Batch};
use self::rules::{network_of, network_rules, shared_rules, ListedRule, SHARED_TAG};
use self::schema::{element_message, element_target, Element, Family};

/// How often a read-then-write call starts over when the ruleset keeps
/// changing under it.
const MAX_RESTARTS: usize = 8;

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
        self.ensure_network_within(bridge, subnet, subnet)
    }

    /// [`Firewall::ensure_network`] for a network whose containers reach
    /// `inside` (a range holding `subnet`: an overlay network's, whose other
    /// hosts' containers are there) by their own addresses: only traffic
    /// leaving `inside` is masqueraded.
    pub fn ensure_network_within(
        &self,
        bridge: &str,
        subnet: AnySubnet,
        inside: AnySubnet,
    ) -> Result<(), NftError> {
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
                network_rules(bridge, subnet, inside),
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
        self.publish_batch(container_ip, ports)
            .commit(&mut NfSocket::open()?, None)
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
        batch.commit(sock, None)
    }

    /// Deletes the table (of both families) with everything in it; fine if
    /// there is none.
    pub fn delete_table(&self) -> Result<(), NftError> {
        let mut sock = NfSocket::open()?;
        for family in [Family::V4, Family::V6] {
            let mut batch = self.batch(family);
            batch.delete_table();
            match batch.commit(&mut sock, None) {
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
            let generation = generation(sock)?;
            let batch = plan(sock)?;
            match batch.commit(sock, Some(generation)) {
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
