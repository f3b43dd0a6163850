//! Builders for the nf_tables expressions hull's rules are made of. Those the
//! crate has no type for (`fib`, `ct`, `nat`, `masq`) are written as raw
//! attributes, all of them 32-bit big-endian numbers.

use netlink_packet_core::DefaultNla;
use netlink_packet_netfilter::nftables::{
    Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute,
    Lookup, Meta, MetaKey, Operator, Payload, Register, Verdict, VerdictAttribute,
};

use super::schema::Family;
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
