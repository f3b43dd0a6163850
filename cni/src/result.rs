//! The CNI result: interfaces, addresses, routes and DNS, as printed by ADD
//! and passed to later plugins as `prevResult`.
//!
//! Unknown keys of a `prevResult` (e.g. `mtu`, `socketPath` of newer specs)
//! are kept, so a plugin that only passes the result on does not lose them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Results of versions before this one carry `ips[].version`.
const VERSION_WITHOUT_IP_VERSION: &str = "1.0.0";

/// A CNI result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub dns: Dns,
}

/// An interface a plugin created or configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The namespace path for a container interface; none on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An address assigned to an interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `"4"` or `"6"`: only in results before 1.0.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `ip/prefix`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A route inside the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteConfig {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// DNS settings: the `hull` role points at the network's resolver; a
/// previous plugin's are passed on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl CniResult {
    /// The result in the format of `cni_version`: 1.0.0 has no
    /// `ips[].version`, earlier versions need it.
    pub fn into_version(mut self, cni_version: &str) -> Self {
        let with_ip_version = cni_version != VERSION_WITHOUT_IP_VERSION;
        for ip in &mut self.ips {
            ip.version = with_ip_version.then(|| ip_version(&ip.address).to_owned());
        }
        self.cni_version = cni_version.to_owned();
        self
    }

    /// Appends `other`'s interfaces, addresses and routes to this result
    /// (a previous plugin's), renumbering `other`'s interface indices.
    pub fn merge(mut self, other: CniResult) -> Self {
        let offset = self.interfaces.len();
        self.interfaces.extend(other.interfaces);
        self.ips.extend(other.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        self.routes.extend(other.routes);
        self
    }

    /// The first IPv4 address of the result, preferably one on a container
    /// interface (one with a sandbox).
    pub fn container_ipv4(&self) -> Option<Ipv4Addr> {
        self.container_ip(|ip| match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    /// The first IPv6 address of the result, chosen as [`Self::container_ipv4`]
    /// chooses the IPv4 one.
    pub fn container_ipv6(&self) -> Option<Ipv6Addr> {
        self.container_ip(|ip| match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
    }

    /// The first address that `family` takes, on a container interface if
    /// there is one.
    fn container_ip<A>(&self, family: impl Fn(IpAddr) -> Option<A>) -> Option<A> {
        let in_sandbox = |ip: &&IpConfig| {
            ip.interface
                .and_then(|i| self.interfaces.get(i))
                .is_some_and(|iface| iface.sandbox.is_some())
        };
        let address = |ip: &IpConfig| family(ip.address.split('/').next()?.parse().ok()?);
        let ips = || self.ips.iter();
        ips()
            .filter(in_sandbox)
            .find_map(address)
            .or_else(|| ips().find_map(address))
    }
}

fn ip_version(address: &str) -> &'static str {
    if address.contains(':') {
        "6"
    } else {
        "4"
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let hex: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> CniResult {
        CniResult {
            cni_version: "1.0.0".into(),
            interfaces: vec![
                Interface {
                    name: "labbr0".into(),
                    mac: "aa:bb:cc:dd:ee:01".into(),
                    ..Default::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: "aa:bb:cc:dd:ee:02".into(),
                    sandbox: Some("/run/netns/x".into()),
                    ..Default::default()
                },
            ],
            ips: vec![IpConfig {
                address: "10.231.0.2/24".into(),
                gateway: Some("10.231.0.1".into()),
                interface: Some(1),
                ..Default::default()
            }],
            routes: vec![RouteConfig {
                dst: "0.0.0.0/0".into(),
                gw: Some("10.231.0.1".into()),
                ..Default::default()
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn serializes_as_the_spec_says() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            v,
            json!({
                "cniVersion": "1.0.0",
                "interfaces": [
                    {"name": "labbr0", "mac": "aa:bb:cc:dd:ee:01"},
                    {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/netns/x"}
                ],
                "ips": [{"address": "10.231.0.2/24", "gateway": "10.231.0.1", "interface": 1}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.231.0.1"}],
                "dns": {}
            })
        );
    }

    #[test]
    fn older_versions_carry_ip_versions() {
        let old = serde_json::to_value(sample().into_version("0.4.0")).unwrap();
        assert_eq!(old["cniVersion"], "0.4.0");
        assert_eq!(old["ips"][0]["version"], "4");
        let back = CniResult::deserialize(&old).unwrap().into_version("1.0.0");
        assert_eq!(back, sample());
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "mtu": 1400, "sandbox": "/x"}],
            "ips": [{"address": "fd00::2/64", "interface": 0}, {"address": "10.0.0.2/24", "interface": 0}],
            "dns": {"nameservers": ["10.0.0.1"]}
        });
        let r = CniResult::deserialize(&prev).unwrap();
        assert_eq!(r.container_ipv4(), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(serde_json::to_value(&r).unwrap(), prev);
    }

    #[test]
    fn merge_renumbers_interfaces() {
        let mut prev = sample();
        prev.interfaces.truncate(1);
        prev.ips.clear();
        prev.routes.clear();
        let merged = prev.merge(sample());
        assert_eq!(merged.interfaces.len(), 3);
        assert_eq!(merged.ips[0].interface, Some(2));
        assert_eq!(merged.container_ipv4(), Some("10.231.0.2".parse().unwrap()));
    }

    #[test]
    fn macs() {
        assert_eq!(format_mac([0, 0x1a, 2, 0xff, 4, 5]), "00:1a:02:ff:04:05");
    }
}
