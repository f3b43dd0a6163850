//! Containers of other hosts on a multi-host (overlay) network: the
//! network's agent reads them from the shared store and writes them here,
//! the resolver answers their names as it does its own host's.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{member, net_dir, DnsError, Member};
use crate::{Attachment, Network};

/// A container of another host, as that host publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteMember {
    /// The container's id: its name on the network.
    pub container: String,
    pub addresses: Vec<IpAddr>,
    /// Its aliases, service and ports.
    #[serde(flatten)]
    pub member: Member,
}

impl RemoteMember {
    /// The attachment the zone builds this container's records from: its
    /// addresses on `net`, no ports published on this host.
    pub fn attachment(&self, net: &Network) -> Option<Attachment> {
        let ip = self.addresses.iter().find_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })?;
        let ip6 = self.addresses.iter().find_map(|a| match a {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        });
        Some(Attachment {
            network: net.name.clone(),
            container: self.container.clone(),
            ifname: String::new(),
            host_veth: String::new(),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
            ip6,
            gateway6: None,
            ports: Vec::new(),
            published: false,
            state_root: None,
        })
    }
}

/// The directory the resolver watches for the remote members.
pub fn dir(store: &Path, net: &str) -> PathBuf {
    net_dir(store, net).join("remote")
}

fn file(store: &Path, net: &str) -> PathBuf {
    dir(store, net).join("members.json")
}

/// The other hosts' containers on `net`, as last written (none if never).
pub fn load(store: &Path, net: &str) -> Result<Vec<RemoteMember>, DnsError> {
    Ok(member::read_json(&file(store, net))?.unwrap_or_default())
}

/// Replaces the other hosts' containers on `net` with `all` (written
/// whole, so the resolver never reads half of it).
pub fn save(store: &Path, net: &str, all: &[RemoteMember]) -> Result<(), DnsError> {
    member::write_json(&file(store, net), &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_member_attaches_with_its_addresses() {
        let net = Network {
            name: "ovl".into(),
            bridge: "hull-ovl".into(),
            subnet: "10.250.0.0/24".parse().unwrap(),
            gateway: "10.250.0.1".parse().unwrap(),
            subnet6: None,
            gateway6: None,
            mtu: Some(1450),
        };
        let json = r#"{"container":"web","addresses":["10.250.2.5"],"aliases":["front"]}"#;
        let m: RemoteMember = serde_json::from_str(json).unwrap();
        assert_eq!(m.member.aliases, ["front"]);
        let a = m.attachment(&net).unwrap();
        assert_eq!(
            (a.container.as_str(), a.ip),
            ("web", "10.250.2.5".parse().unwrap())
        );
        assert_eq!(a.network, "ovl");
        let none = RemoteMember {
            addresses: Vec::new(),
            ..m
        };
        assert_eq!(none.attachment(&net), None);
    }
}
