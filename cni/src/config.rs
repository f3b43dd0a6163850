//! The network configuration on stdin: the keys every plugin has
//! ([`Config`]), then the role's own keys, validated into what the role
//! works with ([`NetSpec`] for `hull` and `bridge`, [`PortmapSpec`] for
//! `portmap`).
//!
//! Decoding errors (not JSON, a key of the wrong type) are code 6; values
//! that decode but make no sense are code 7; values hull deliberately does
//! not support are code 2.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use bridge::{check_subnet6, DEFAULT_DIR, DEFAULT_TABLE};
use bridge::{PortMapping, Protocol, Subnet, Subnet6};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::env::check_ifname;
use super::error::{code, CniError};
use super::ranges::{parse_subnet, parse_subnet6, IpamKeys, Subnets};
use super::result::CniResult;

/// The CNI versions hull-cni speaks.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];
/// The version of VERSION's answer and of errors before the config is read.
pub const DEFAULT_VERSION: &str = "1.0.0";
/// The first version with CHECK.
const CHECK_SINCE: &str = "0.4.0";
/// host-local's default `ipam.dataDir`.
const HOST_LOCAL_DATA_DIR: &str = "/var/lib/cni/networks";
/// The reference bridge plugin's default bridge.
const REFERENCE_BRIDGE: &str = "cni0";
/// Where the `portmap` role keeps its records, under its data directory.
const PORTMAP_RECORDS: &str = "portmap";

/// The keys every plugin config has.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The result of the previous plugin of a chain (and, for CHECK and
    /// DEL, the chain's final result).
    #[serde(default)]
    pub prev_result: Option<CniResult>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
}

/// What the runtime fills in for the capabilities the config declares.
#[derive(Debug, Default, Deserialize)]
pub struct RuntimeConfig {
    /// The `portMappings` capability.
    #[serde(default, rename = "portMappings")]
    pub port_mappings: Vec<CniPortMapping>,
}

/// One entry of `runtimeConfig.portMappings`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniPortMapping {
    pub host_port: i64,
    pub container_port: i64,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: String,
    /// Empty or `0.0.0.0` for every host address.
    #[serde(default, rename = "hostIP")]
    pub host_ip: String,
}

/// A parsed configuration: the common keys, and the whole document for the
/// role's own keys.
#[derive(Debug)]
pub struct Config {
    pub common: Common,
    raw: Value,
}

impl Config {
    /// Decodes stdin's configuration and checks its `cniVersion`.
    pub fn parse(bytes: &[u8]) -> Result<Self, CniError> {
        let raw: Value = serde_json::from_slice(bytes).map_err(decode_error)?;
        let common = Common::deserialize(&raw).map_err(decode_error)?;
        check_version(&common.cni_version)?;
        Ok(Self { common, raw })
    }

    /// The config's version.
    pub fn version(&self) -> &str {
        &self.common.cni_version
    }

    /// CHECK came with 0.4.0: older configs cannot ask for it.
    pub fn check_supports_check(&self) -> Result<(), CniError> {
        if version_key(self.version()) < version_key(CHECK_SINCE) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!(
                    "configuration version {} does not support CHECK (needs {CHECK_SINCE} or later)",
                    self.version()
                ),
            ));
        }
        Ok(())
    }

    /// The role's own keys.
    fn role<T: DeserializeOwned>(&self) -> Result<T, CniError> {
        T::deserialize(&self.raw).map_err(decode_error)
    }
}

/// `cniVersion` must be one hull-cni speaks (code 1).
pub fn check_version(version: &str) -> Result<(), CniError> {
    if SUPPORTED_VERSIONS.contains(&version) {
        return Ok(());
    }
    Err(CniError::new(
        code::INCOMPATIBLE_VERSION,
        format!("incompatible CNI version {version:?}: hull-cni supports {SUPPORTED_VERSIONS:?}"),
    ))
}

/// `0.4.0` as `(0, 4, 0)`, for ordering; junk sorts first.
fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn decode_error(e: serde_json::Error) -> CniError {
    CniError::new(
        code::DECODE,
        format!("cannot decode the network configuration: {e}"),
    )
}

/// Where a `hull` or `bridge` role keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// hull's own store layout in this directory (default `/run/hull-net`).
    Hull(PathBuf),
    /// host-local's layout: leases as `<dir>/<network>/<ip>`, hull's other
    /// state in `<dir>/.hull`.
    HostLocal(PathBuf),
}

/// A validated `hull` or `bridge` config: which network to attach to.
#[derive(Debug)]
pub struct NetSpec {
    /// The network's name (`name`).
    pub name: String,
    /// Its bridge; `None` for hull's naming (`hull-<name>`).
    pub bridge: Option<String>,
    /// Its subnet; `None` to let hull pick one on creation.
    pub subnet: Option<Subnet>,
    /// Its IPv6 subnet, for a dual-stack network.
    pub subnet6: Option<Subnet6>,
    pub layout: Layout,
    /// hull's nf_tables table.
    pub table: String,
    /// The ports to publish, or `None` when a chained `portmap` owns them.
    pub ports: Option<Vec<PortMapping>>,
    pub prev_result: Option<CniResult>,
}

/// The `hull` role's own keys: the subnets as `subnet` and `subnet6`, or
/// in an `ipam` section like the `bridge` role's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HullKeys {
    bridge: Option<String>,
    subnet: Option<String>,
    subnet6: Option<String>,
    ipam: Option<IpamKeys>,
    data_dir: Option<PathBuf>,
    table: Option<String>,
}

/// The `bridge` role's keys: the reference bridge plugin's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BridgeKeys {
    bridge: Option<String>,
    is_gateway: Option<bool>,
    ip_masq: Option<bool>,
    hairpin_mode: Option<bool>,
    ipam: Option<IpamKeys>,
    /// hull's extension: the nf_tables table.
    table: Option<String>,
}

impl NetSpec {
    /// The `hull` role's config.
    pub fn hull(conf: &Config) -> Result<Self, CniError> {
        let keys: HullKeys = conf.role()?;
        let (subnet, subnet6) = keys.subnets()?;
        Ok(Self {
            name: network_name(conf)?,
            bridge: keys.bridge.map(bridge_name).transpose()?,
            subnet,
            subnet6,
            layout: Layout::Hull(keys.data_dir.unwrap_or_else(|| DEFAULT_DIR.into())),
            table: table_name(keys.table)?,
            ports: Some(port_mappings(&conf.common.runtime_config)?),
            prev_result: conf.common.prev_result.clone(),
        })
    }

    /// The `bridge` role's config (the reference plugin's keys).
    pub fn bridge(conf: &Config) -> Result<Self, CniError> {
        let keys: BridgeKeys = conf.role()?;
        for (key, value) in [
            ("isGateway", keys.is_gateway),
            ("ipMasq", keys.ip_masq),
            ("hairpinMode", keys.hairpin_mode),
        ] {
            if value == Some(false) {
                return Err(CniError::unsupported(
                    key,
                    "false",
                    "hull's bridge networks always have it on",
                ));
            }
        }
        let ipam = keys.ipam.ok_or_else(|| {
            CniError::config("the bridge role needs an ipam section with a subnet")
        })?;
        let Subnets { v4, v6 } = ipam.subnets()?;
        let data_dir = ipam.data_dir.unwrap_or_else(|| HOST_LOCAL_DATA_DIR.into());
        let bridge = keys.bridge.unwrap_or_else(|| REFERENCE_BRIDGE.to_owned());
        Ok(Self {
            name: network_name(conf)?,
            bridge: Some(bridge_name(bridge)?),
            subnet: Some(v4),
            subnet6: v6,
            layout: Layout::HostLocal(data_dir),
            table: table_name(keys.table)?,
            ports: None,
            prev_result: conf.common.prev_result.clone(),
        })
    }
}

impl HullKeys {
    /// The configured subnets, from `subnet` and `subnet6` or from `ipam`
    /// (whose `dataDir` the `hull` role does not use: its leases are under
    /// `dataDir`).
    fn subnets(&self) -> Result<(Option<Subnet>, Option<Subnet6>), CniError> {
        let Some(ipam) = &self.ipam else {
            let subnet = self.subnet.as_deref().map(parse_subnet).transpose()?;
            let subnet6 = self.subnet6.as_deref().map(parse_subnet6).transpose()?;
            if let (Some(v4), Some(v6)) = (subnet, subnet6) {
                check_subnet6(v6, v4).map_err(|e| CniError::config(e.to_string()))?;
            }
            return Ok((subnet, subnet6));
        };
        if self.subnet.is_some() || self.subnet6.is_some() {
            return Err(CniError::config(
                "give the subnets as subnet and subnet6 or in ipam.ranges, not both",
            ));
        }
        if let Some(dir) = &ipam.data_dir {
            let why = "the hull type keeps its leases under dataDir";
            return Err(CniError::unsupported(
                "ipam.dataDir",
                &dir.display().to_string(),
                why,
            ));
        }
        let Subnets { v4, v6 } = ipam.subnets()?;
        Ok((Some(v4), v6))
    }
}

/// A validated `portmap` config.
#[derive(Debug)]
pub struct PortmapSpec {
    pub table: String,
    /// Where the role records what it published, for DEL and CHECK.
    pub records: PathBuf,
    pub ports: Vec<PortMapping>,
    pub prev_result: Option<CniResult>,
}

/// The `portmap` role's keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortmapKeys {
    snat: Option<bool>,
    /// hull's extension: the nf_tables table.
    table: Option<String>,
    /// hull's extension: the state directory.
    data_dir: Option<PathBuf>,
}

impl PortmapSpec {
    /// The `portmap` role's config.
    pub fn parse(conf: &Config) -> Result<Self, CniError> {
        let keys: PortmapKeys = conf.role()?;
        if keys.snat == Some(false) {
            let why = "hull always masquerades hairpin and localhost traffic";
            return Err(CniError::unsupported("snat", "false", why));
        }
        let dir = keys.data_dir.unwrap_or_else(|| DEFAULT_DIR.into());
        Ok(Self {
            table: table_name(keys.table)?,
            records: dir.join(PORTMAP_RECORDS),
            ports: port_mappings(&conf.common.runtime_config)?,
            prev_result: conf.common.prev_result.clone(),
        })
    }
}

/// The port mappings hull publishes. Entries with an IPv6 `hostIP` are
/// skipped: hull publishes on all IPv6 host addresses or none, and an entry
/// without a `hostIP` (or with `0.0.0.0`) is published on both families on
/// a dual-stack network, as the CLI's `-p` is.
pub fn port_mappings(rc: &RuntimeConfig) -> Result<Vec<PortMapping>, CniError> {
    rc.port_mappings
        .iter()
        .filter_map(|m| m.to_hull().transpose())
        .collect()
}

impl CniPortMapping {
    /// This mapping in hull's terms; `None` for an IPv6 host address.
    fn to_hull(&self) -> Result<Option<PortMapping>, CniError> {
        let bad = |why: &str| CniError::config(format!("runtimeConfig.portMappings: {why}"));
        let port = |p: i64, key: &str| {
            u16::try_from(p)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("{key} {p} is not 1-65535")))
        };
        let protocol = match self.protocol.to_ascii_lowercase().as_str() {
            "" | "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => return Err(bad(&format!("protocol {other:?} is not tcp or udp"))),
        };
        let host_ip = match self.host_ip.as_str() {
            "" => None,
            ip => match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) if a == Ipv4Addr::UNSPECIFIED => None,
                Ok(IpAddr::V4(a)) => Some(a),
                Ok(IpAddr::V6(_)) => return Ok(None),
                Err(_) => return Err(bad(&format!("hostIP {ip:?} is not an IP address"))),
            },
        };
        Ok(Some(PortMapping {
            host_ip,
            host_port: port(self.host_port, "hostPort")?,
            container_port: port(self.container_port, "containerPort")?,
            protocol,
        }))
    }
}

fn network_name(conf: &Config) -> Result<String, CniError> {
    match conf.common.name.as_str() {
        "" => Err(CniError::config(
            "the configuration has no network name (\"name\")",
        )),
        name => Ok(name.to_owned()),
    }
}

fn bridge_name(name: String) -> Result<String, CniError> {
    check_ifname(&name).map_err(|why| CniError::config(format!("bridge {name:?} {why}")))?;
    Ok(name)
}

/// The nf_tables table: default `hull`; letters, digits, `_` and `-`.
fn table_name(table: Option<String>) -> Result<String, CniError> {
    let table = table.unwrap_or_else(|| DEFAULT_TABLE.to_owned());
    let ok = !table.is_empty()
        && table.len() <= 64
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if !ok {
        return Err(CniError::config(format!(
            "table {table:?}: use 1-64 letters, digits, '_' or '-'"
        )));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(v: Value) -> Config {
        Config::parse(v.to_string().as_bytes()).unwrap()
    }

    fn smoke_bridge() -> Value {
        json!({
            "cniVersion": "1.0.0", "name": "labnet", "type": "bridge",
            "bridge": "labbr0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
            "ipam": {"type": "host-local",
                     "ranges": [[{"subnet": "10.231.0.0/24", "gateway": "10.231.0.1"}]],
                     "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": "/tmp/net-smoke/ipam"}
        })
    }

    #[test]
    fn versions() {
        let err = Config::parse(br#"{"cniVersion":"0.2.0","name":"n","type":"hull"}"#).unwrap_err();
        assert_eq!(err.code, 1);
        let old = conf(json!({"cniVersion": "0.3.1", "name": "n", "type": "hull"}));
        assert_eq!(old.check_supports_check().unwrap_err().code, 1);
        let new = conf(json!({"cniVersion": "0.4.0", "name": "n", "type": "hull"}));
        new.check_supports_check().unwrap();
    }

    #[test]
    fn decode_failures_are_code_6() {
        assert_eq!(Config::parse(b"{not json").unwrap_err().code, 6);
        assert_eq!(Config::parse(br#"{"name":"n"}"#).unwrap_err().code, 6);
        let wrong_type =
            conf(json!({"cniVersion": "1.0.0", "name": "n", "type": "hull", "subnet": 5}));
        assert_eq!(NetSpec::hull(&wrong_type).unwrap_err().code, 6);
    }

    #[test]
    fn hull_config_with_defaults_and_ports() {
        let c = conf(json!({
            "cniVersion": "1.0.0", "name": "web", "type": "hull",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
                {"hostPort": 8080, "containerPort": 80, "hostIP": "::"}
            ]}
        }));
        let spec = NetSpec::hull(&c).unwrap();
        assert_eq!(spec.name, "web");
        assert_eq!((spec.bridge, spec.subnet, spec.subnet6), (None, None, None));
        assert_eq!(spec.layout, Layout::Hull(DEFAULT_DIR.into()));
        assert_eq!(spec.table, "hull");
        let ports: Vec<String> = spec.ports.unwrap().iter().map(|p| p.to_string()).collect();
        assert_eq!(ports, ["8080:80/tcp", "127.0.0.1:5353:53/udp"]);
    }

    #[test]
    fn hull_config_with_everything() {
        let c = conf(json!({
            "cniVersion": "0.4.0", "name": "web", "type": "hull", "bridge": "webbr0",
            "subnet": "10.99.0.0/24", "dataDir": "/tmp/x", "table": "hull_test"
        }));
        let spec = NetSpec::hull(&c).unwrap();
        assert_eq!(spec.bridge.as_deref(), Some("webbr0"));
        assert_eq!(spec.subnet.unwrap().to_string(), "10.99.0.0/24");
        assert_eq!(spec.layout, Layout::Hull("/tmp/x".into()));
        assert_eq!(spec.table, "hull_test");
    }

    #[test]
    fn hull_config_dual_stack_in_both_styles() {
        let hull = |keys: Value| {
            let mut v = json!({"cniVersion": "1.0.0", "name": "n", "type": "hull"});
            v.as_object_mut()
                .unwrap()
                .extend(keys.as_object().unwrap().clone());
            NetSpec::hull(&conf(v))
        };
        let subnets = |spec: NetSpec| {
            (
                spec.subnet.map(|s| s.to_string()),
                spec.subnet6.map(|s| s.to_string()),
            )
        };
        let want = (
            Some("10.99.0.0/24".to_owned()),
            Some("fd42:99::/64".to_owned()),
        );
        let keys = hull(json!({"subnet": "10.99.0.0/24", "subnet6": "fd42:99::/64"}));
        assert_eq!(subnets(keys.unwrap()), want);
        let ipam = hull(json!({"ipam": {"type": "host-local", "ranges": [
            [{"subnet": "fd42:99::/64", "gateway": "fd42:99::1"}],
            [{"subnet": "10.99.0.0/24"}]
        ]}}));
        assert_eq!(subnets(ipam.unwrap()), want);
        let only6 = hull(json!({"subnet6": "fd42:99::/64"})).unwrap();
        assert_eq!(subnets(only6), (None, want.1));

        let both = json!({"subnet": "10.99.0.0/24",
                          "ipam": {"type": "hull", "ranges": [[{"subnet": "10.99.0.0/24"}]]}});
        assert_eq!(hull(both).unwrap_err().code, 7);
        let lease_dir = json!({"ipam": {"type": "hull", "dataDir": "/x",
                                        "ranges": [[{"subnet": "10.99.0.0/24"}]]}});
        assert_eq!(hull(lease_dir).unwrap_err().code, 2);
        let two4 = json!({"ipam": {"type": "hull",
            "ranges": [[{"subnet": "10.99.0.0/24"}], [{"subnet": "10.98.0.0/24"}]]}});
        assert_eq!(hull(two4).unwrap_err().code, 2);
        for bad6 in ["fd42:99::/121", "ff02::/64", "10.99.0.0/24", "fd42::1::/64"] {
            let e = hull(json!({"subnet": "10.99.0.0/24", "subnet6": bad6})).unwrap_err();
            assert_eq!(e.code, 7, "{bad6}: {e}");
        }
    }

    #[test]
    fn invalid_hull_values_are_code_7() {
        for bad in [
            json!({"subnet": "10.0.0.0/31"}),
            json!({"subnet": "10.0.0.0"}),
            json!({"bridge": "a-bridge-name-too-long"}),
            json!({"table": "my table"}),
            json!({"name": ""}),
            json!({"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}}),
            json!({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 80, "protocol": "sctp"}]}}),
            json!({"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 80, "hostIP": "x"}]}}),
        ] {
            let mut v = json!({"cniVersion": "1.0.0", "name": "n", "type": "hull"});
            v.as_object_mut()
                .unwrap()
                .extend(bad.as_object().unwrap().clone());
            assert_eq!(NetSpec::hull(&conf(v.clone())).unwrap_err().code, 7, "{v}");
        }
    }

    #[test]
    fn bridge_config_like_the_reference_plugin() {
        let spec = NetSpec::bridge(&conf(smoke_bridge())).unwrap();
        assert_eq!(spec.name, "labnet");
        assert_eq!(spec.bridge.as_deref(), Some("labbr0"));
        assert_eq!(spec.subnet.unwrap().to_string(), "10.231.0.0/24");
        assert_eq!(spec.layout, Layout::HostLocal("/tmp/net-smoke/ipam".into()));
        assert!(spec.ports.is_none());
    }

    #[test]
    fn bridge_config_dual_stack_like_the_reference_plugin() {
        let mut v = smoke_bridge();
        v["ipam"]["ranges"]
            .as_array_mut()
            .unwrap()
            .push(json!([{"subnet": "fd42:231::/64", "gateway": "fd42:231::1"}]));
        let spec = NetSpec::bridge(&conf(v.clone())).unwrap();
        assert_eq!(spec.subnet.unwrap().to_string(), "10.231.0.0/24");
        assert_eq!(spec.subnet6.unwrap().to_string(), "fd42:231::/64");
        assert_eq!(spec.layout, Layout::HostLocal("/tmp/net-smoke/ipam".into()));
        v["ipam"]["ranges"][1][0]["gateway"] = json!("fd42:231::2");
        assert_eq!(NetSpec::bridge(&conf(v)).unwrap_err().code, 2);
    }

    #[test]
    fn bridge_config_legacy_subnet_and_defaults() {
        let c = conf(json!({
            "cniVersion": "0.3.1", "name": "n", "type": "bridge",
            "ipam": {"type": "host-local", "subnet": "10.5.0.0/16"}
        }));
        let spec = NetSpec::bridge(&c).unwrap();
        assert_eq!(spec.bridge.as_deref(), Some("cni0"));
        assert_eq!(
            spec.layout,
            Layout::HostLocal("/var/lib/cni/networks".into())
        );
    }

    #[test]
    fn unsupported_bridge_settings_are_code_2() {
        let patch = |f: &dyn Fn(&mut Value)| {
            let mut v = smoke_bridge();
            f(&mut v);
            NetSpec::bridge(&conf(v)).unwrap_err()
        };
        let e = patch(&|v| v["ipMasq"] = json!(false));
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("ipMasq"), "{}", e.msg);
        assert_eq!(
            patch(&|v| v["ipam"]["ranges"][0][0]["gateway"] = json!("10.231.0.254")).code,
            2
        );
        assert_eq!(patch(&|v| v["ipam"]["type"] = json!("dhcp")).code, 2);
        assert_eq!(
            patch(&|v| v["ipam"]["ranges"][0][0]["rangeStart"] = json!("10.231.0.100")).code,
            2
        );
        let two = json!([[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]);
        assert_eq!(patch(&|v| v["ipam"]["ranges"] = two.clone()).code, 2);
        assert_eq!(
            patch(&|v| v.as_object_mut().unwrap().remove("ipam").map(drop).unwrap()).code,
            7
        );
    }

    #[test]
    fn portmap_config() {
        let c = conf(json!({
            "cniVersion": "1.0.0", "name": "labnet", "type": "portmap",
            "capabilities": {"portMappings": true}, "snat": true,
            "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]},
            "prevResult": {"cniVersion": "1.0.0",
                           "interfaces": [{"name": "eth0", "sandbox": "/x"}],
                           "ips": [{"address": "10.231.0.2/24", "interface": 0}]}
        }));
        let spec = PortmapSpec::parse(&c).unwrap();
        assert_eq!(spec.table, "hull");
        assert_eq!(spec.records, PathBuf::from("/run/hull-net/portmap"));
        assert_eq!(spec.ports[0].to_string(), "18080:80/tcp");
        let ip = spec.prev_result.unwrap().container_ipv4();
        assert_eq!(ip, Some(Ipv4Addr::new(10, 231, 0, 2)));
        let no_snat =
            conf(json!({"cniVersion": "1.0.0", "name": "n", "type": "portmap", "snat": false}));
        assert_eq!(PortmapSpec::parse(&no_snat).unwrap_err().code, 2);
    }
}
