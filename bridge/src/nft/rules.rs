//! The rules hull wants in its table, and the comments (rule userdata) by
//! which it finds them again.

use std::net::Ipv4Addr;

use netlink_packet_netfilter::nftables::{MetaKey, NfTablesMessage, Register, RuleAttribute};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};

use super::expr::Expr;
use super::schema::{Family, ADDR_PORTS, ANY_PORTS, DNAT, OUTPUT, POSTROUTING, PREROUTING};
use crate::{AnySubnet, Subnet};

/// Comment prefix of the rules shared by all networks.
pub(super) const SHARED_TAG: &str = "hull: ";
/// Comment prefix of a network's rules, followed by `BRIDGE SUBNET: what`.
pub(super) const NETWORK_TAG: &str = "hull net ";

/// A rule hull wants in its table, known by its comment.
pub(super) struct Rule {
    pub(super) chain: &'static str,
    pub(super) comment: String,
    pub(super) exprs: Vec<Expr>,
}

impl Rule {
    pub(super) fn new(chain: &'static str, comment: impl Into<String>, exprs: Vec<Expr>) -> Self {
        Self {
            chain,
            comment: comment.into(),
            exprs,
        }
    }
}

/// The rules every network needs: published ports.
pub(super) fn shared_rules(family: Family) -> Vec<Rule> {
    use super::expr::*;
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

/// The masquerade rules of the network on `bridge` with `subnet`, whose
/// traffic to `inside` (the subnet itself, or an overlay network's whole
/// range) keeps its source address. The localhost rule is IPv4's only: IPv6
/// has no `route_localnet`, so nothing from `::1` is ever forwarded to a
/// container.
pub(super) fn network_rules(bridge: &str, subnet: AnySubnet, inside: AnySubnet) -> Vec<Rule> {
    use super::expr::*;
    let family = Family::of(subnet.addr());
    let comment = |what: &str| format!("{NETWORK_TAG}{bridge} {subnet}: {what}");
    let from_subnet = || addr_in(family, saddr, subnet, true);
    let outbound = [
        from_subnet(),
        addr_in(family, daddr, inside, false),
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
pub(super) fn network_of(comment: &str) -> Option<&str> {
    comment.strip_prefix(NETWORK_TAG)?.split(' ').next()
}

/// A rule of hull's table as the kernel lists it.
#[derive(Debug)]
pub(super) struct ListedRule {
    pub(super) chain: String,
    pub(super) handle: u64,
    pub(super) comment: Option<String>,
}

impl ListedRule {
    pub(super) fn from_reply(reply: NetfilterMessage) -> Option<Self> {
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

    pub(super) fn network(&self) -> Option<&str> {
        network_of(self.comment.as_deref()?)
    }
}

/// Type of nft's rule userdata TLV holding the comment (libnftnl's
/// `NFTNL_UDATA_RULE_COMMENT`).
pub(super) const UDATA_RULE_COMMENT: u8 = 0;

/// Rule userdata holding `comment`, as `nft` writes and shows it.
pub(super) fn comment_udata(comment: &str) -> Vec<u8> {
    let len = u8::try_from(comment.len() + 1).expect("rule comments are short");
    let mut data = vec![UDATA_RULE_COMMENT, len];
    data.extend_from_slice(comment.as_bytes());
    data.push(0);
    data
}

/// The comment in rule userdata (type-length-value records).
pub(super) fn udata_comment(mut data: &[u8]) -> Option<String> {
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

/// Whether the listed rules are the wanted ones, chain by chain in order.
pub(super) fn same_rules(current: &[&ListedRule], wanted: &[Rule]) -> bool {
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
