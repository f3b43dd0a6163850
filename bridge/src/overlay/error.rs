//! What can go wrong with an overlay network's store and its options.

use std::net::Ipv4Addr;

use crate::Subnet;

/// An overlay network's failure: its store, its options or its range.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("etcd store at {endpoint} did not answer within {secs}s (is it running and reachable from here?)")]
    Unreachable { endpoint: String, secs: u64 },
    #[error("etcd store at {endpoint}: {why}")]
    Store { endpoint: String, why: String },
    #[error("invalid store address {0:?}: expected etcd://HOST:PORT")]
    BadEndpoint(String),
    #[error("network {network:?} exists in the store with other options: {why}")]
    Mismatch { network: String, why: String },
    #[error("no free /{node_prefix} left in {range}: every node subnet is leased by a host")]
    RangeFull { range: Subnet, node_prefix: u8 },
    #[error("VNI {vni} is already used by device {device} on this host")]
    VniInUse { vni: u32, device: String },
    #[error("no interface of this host has the underlay address {0}")]
    NoUnderlay(Ipv4Addr),
    #[error("node subnet {subnet} is now leased by another host ({by})")]
    SubnetTaken { subnet: Subnet, by: Ipv4Addr },
    #[error("the agent of network {net:?} did not start: {why}")]
    Agent { net: String, why: String },
    #[error("invalid overlay option: {0}")]
    Invalid(String),
}
