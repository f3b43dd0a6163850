//! docker0-style container networking, all over netlink: a bridge per
//! network with a gateway address, an IP address manager with leases on
//! disk, a veth pair per container (host end on the bridge with hairpin,
//! container end moved into its network namespace as `eth0`), outbound
//! masquerade and port forwarding in hull's own nf_tables table; and
//! multi-host VXLAN overlay networks coordinated through etcd ([`overlay`]).

pub mod conntrack;
mod container;
mod detached;
pub mod dns;
mod error;
mod ipam;
mod link;
mod netlink;
mod netns;
mod network;
mod nfnetlink;
mod nft;
pub mod overlay;
mod sysctl;
#[cfg(test)]
mod testnet;
pub mod whole_file;

pub use container::{ContainerNetwork, Recorded, NETWORK_ANNOTATION, PUBLISH_ANNOTATION};
pub use error::NetError;
pub use ipam::{Ipam, IpamError};
pub use netns::within as within_netns;
pub use network::{
    check_subnet6, veth_name, Attachment, Network, NetworkOptions, Store, DEFAULT_DIR,
    DEFAULT_NETWORK, DEFAULT_TABLE,
};
pub use nft::{Firewall, NftError};

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The subnet containing `addr` with `prefix` bits.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, String> {
        if prefix > 32 {
            return Err(format!("prefix /{prefix} is longer than 32"));
        }
        let s = Self { addr, prefix };
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & s.mask()),
            prefix,
        })
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let shorter = self.prefix.min(other.prefix);
        let m = if shorter == 0 {
            0
        } else {
            u32::MAX << (32 - shorter)
        };
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("subnet {s:?} needs a /prefix"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("bad subnet address in {s:?}"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("bad prefix in {s:?}"))?;
        Self::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// An IPv6 subnet (the optional second family of a dual-stack network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    /// The subnet containing `addr` with `prefix` bits.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Self, String> {
        if prefix > 128 {
            return Err(format!("prefix /{prefix} is longer than 128"));
        }
        let s = Self { addr, prefix };
        Ok(Self {
            addr: Ipv6Addr::from(u128::from(addr) & s.mask()),
            prefix,
        })
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr)
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        (n & self.mask() == 0).then(|| Ipv6Addr::from(u128::from(self.addr) | n))
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let shorter = if self.prefix < other.prefix {
            self
        } else {
            other
        };
        u128::from(self.addr) & shorter.mask() == u128::from(other.addr) & shorter.mask()
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("subnet {s:?} needs a /prefix"))?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("bad IPv6 subnet address in {s:?}"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("bad prefix in {s:?}"))?;
        Self::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet6 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subnet6> for String {
    fn from(s: Subnet6) -> String {
        s.to_string()
    }
}

/// A subnet of either family, as the firewall takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnySubnet {
    V4(Subnet),
    V6(Subnet6),
}

impl AnySubnet {
    /// The network address.
    pub fn addr(&self) -> IpAddr {
        match self {
            Self::V4(s) => s.addr.into(),
            Self::V6(s) => s.addr.into(),
        }
    }

    /// The netmask, in network byte order.
    pub fn mask_bytes(&self) -> Vec<u8> {
        match self {
            Self::V4(s) => s.mask().to_be_bytes().to_vec(),
            Self::V6(s) => s.mask().to_be_bytes().to_vec(),
        }
    }
}

impl From<Subnet> for AnySubnet {
    fn from(s: Subnet) -> Self {
        Self::V4(s)
    }
}

impl From<Subnet6> for AnySubnet {
    fn from(s: Subnet6) -> Self {
        Self::V6(s)
    }
}

impl fmt::Display for AnySubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(s) => s.fmt(f),
            Self::V6(s) => s.fmt(f),
        }
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

/// A published port: `[host_ip:]host_port:container_port[/proto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address it is published on; `None` for all addresses.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl FromStr for PortMapping {
    type Err = String;
    /// Parses Docker's `-p` syntax: `8080:80`, `127.0.0.1:8080:80/udp`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid port mapping {s:?}: {why}");
        let (spec, protocol) = match s.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some(_) => return Err(bad("protocol must be tcp or udp")),
            None => (s, Protocol::Tcp),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (host_ip, host, container) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [ip, h, c] => (
                Some(
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| bad("bad host address"))?,
                ),
                *h,
                *c,
            ),
            _ => return Err(bad("expected [HOSTIP:]HOSTPORT:CONTAINERPORT")),
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("ports are 1-65535"))
        };
        Ok(Self {
            host_ip,
            host_port: port(host)?,
            container_port: port(container)?,
            protocol,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}:{}/{proto}", self.host_port, self.container_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s: Subnet = "10.88.7.9/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.88.7.0/24");
        assert_eq!(s.nth(1), Some(Ipv4Addr::new(10, 88, 7, 1)));
        assert_eq!(s.nth(256), None);
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 7, 255));
        assert!(s.contains(Ipv4Addr::new(10, 88, 7, 200)));
        assert!(s.overlaps(&"10.88.0.0/16".parse().unwrap()));
        assert!(!s.overlaps(&"10.89.0.0/16".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
    }

    #[test]
    fn ipv6_subnets() {
        let s: Subnet6 = "fd42:1::7/64".parse().unwrap();
        assert_eq!(s.to_string(), "fd42:1::/64");
        assert_eq!(s.nth(1), Some("fd42:1::1".parse().unwrap()));
        assert_eq!(s.nth(0x1_0000_0002), Some("fd42:1::1:0:2".parse().unwrap()));
        assert_eq!(s.nth(1 << 64), None);
        assert!(s.contains("fd42:1::ffff".parse().unwrap()));
        assert!(!s.contains("fd42:2::1".parse().unwrap()));
        assert!(s.overlaps(&"fd42::/16".parse().unwrap()));
        assert!(!s.overlaps(&"fd42:2::/64".parse().unwrap()));
        assert_eq!(Subnet6::new(Ipv6Addr::UNSPECIFIED, 0).unwrap().mask(), 0);
        assert!("fd00::/129".parse::<Subnet6>().is_err());
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
    }

    #[test]
    fn port_mappings_in_docker_syntax() {
        let p: PortMapping = "127.0.0.1:8080:80".parse().unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, Protocol::Tcp)
        );
        let u: PortMapping = "5353:53/udp".parse().unwrap();
        assert_eq!((u.host_ip, u.protocol), (None, Protocol::Udp));
        for bad in [
            "80",
            "0:80",
            "a:80",
            "1.2.3:80:80",
            "80:80/sctp",
            "70000:80",
        ] {
            assert!(bad.parse::<PortMapping>().is_err(), "{bad}");
        }
    }
}
