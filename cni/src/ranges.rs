//! The `ipam` section as host-local reads it, validated into the subnets
//! of a hull network: one IPv4 subnet, and an IPv6 one for dual stack.
//!
//! Accepted: `ranges` with one range set per family (IPv4 and IPv6, in
//! either order, one range each, the IPv4 one required), or the
//! pre-`ranges` `subnet` (IPv4 only). A range's `gateway` must be its
//! subnet's first address, hull's gateway; `rangeStart`/`rangeEnd`, more
//! range sets or more ranges per set are refused (code 2).

use std::net::IpAddr;
use std::path::PathBuf;

use bridge::check_subnet6;
use bridge::{Subnet, Subnet6};
use serde::Deserialize;

use super::error::CniError;

/// Why hull takes one subnet per family.
const ONE_PER_FAMILY: &str =
    "hull's IPAM manages one IPv4 subnet per network, and optionally one IPv6 subnet";

/// The `ipam` section of a config.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamKeys {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    ranges: Vec<Vec<RangeKeys>>,
    /// The pre-`ranges` form.
    subnet: Option<String>,
    gateway: Option<String>,
    /// host-local's lease directory.
    pub data_dir: Option<PathBuf>,
}

/// One host-local range.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeKeys {
    subnet: String,
    gateway: Option<String>,
    range_start: Option<String>,
    range_end: Option<String>,
}

/// A network's subnets: IPv4, and IPv6 on a dual-stack network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnets {
    pub v4: Subnet,
    pub v6: Option<Subnet6>,
}

impl IpamKeys {
    /// The subnets the section names.
    pub fn subnets(&self) -> Result<Subnets, CniError> {
        if !matches!(self.kind.as_str(), "host-local" | "hull") {
            return Err(CniError::unsupported(
                "ipam.type",
                &self.kind,
                "hull-cni has hull's IPAM in place of host-local",
            ));
        }
        match (self.ranges.as_slice(), &self.subnet) {
            ([], Some(subnet)) => {
                let v4 = parse_subnet(subnet)?;
                check_gateway(self.gateway.as_deref(), v4.nth(1).map(IpAddr::V4))?;
                Ok(Subnets { v4, v6: None })
            }
            ([], None) => Err(CniError::config(
                "ipam: no subnet (ipam.ranges[0][0].subnet)",
            )),
            (sets, None) => from_ranges(sets),
            (_, Some(_)) => Err(CniError::unsupported(
                "ipam.subnet",
                "next to ipam.ranges",
                ONE_PER_FAMILY,
            )),
        }
    }
}

/// The subnets of `ranges`: one range set per family.
fn from_ranges(sets: &[Vec<RangeKeys>]) -> Result<Subnets, CniError> {
    if sets.len() > 2 {
        let n = format!("{} range sets", sets.len());
        return Err(CniError::unsupported("ipam.ranges", &n, ONE_PER_FAMILY));
    }
    let (mut v4, mut v6) = (None, None);
    for (i, set) in sets.iter().enumerate() {
        let range = only_range(i, set)?;
        let twice = |family: &str| {
            let what = format!("two {family} range sets");
            CniError::unsupported("ipam.ranges", &what, ONE_PER_FAMILY)
        };
        if range.subnet.contains(':') {
            let subnet = parse_subnet6(&range.subnet)?;
            if v6.replace((subnet, range)).is_some() {
                return Err(twice("IPv6"));
            }
        } else {
            let subnet = parse_subnet(&range.subnet)?;
            if v4.replace((subnet, range)).is_some() {
                return Err(twice("IPv4"));
            }
        }
    }
    let Some((subnet, range)) = v4 else {
        let why = "hull's networks always have an IPv4 subnet (IPv6 is a second family)";
        return Err(CniError::unsupported("ipam.ranges", "IPv6 only", why));
    };
    check_gateway(range.gateway.as_deref(), subnet.nth(1).map(IpAddr::V4))?;
    let Some((subnet6, range6)) = v6 else {
        return Ok(Subnets {
            v4: subnet,
            v6: None,
        });
    };
    check_subnet6(subnet6, subnet).map_err(|e| CniError::config(e.to_string()))?;
    check_gateway(range6.gateway.as_deref(), subnet6.nth(1).map(IpAddr::V6))?;
    Ok(Subnets {
        v4: subnet,
        v6: Some(subnet6),
    })
}

/// The one range of set `i`, which must not narrow the subnet.
fn only_range(i: usize, set: &[RangeKeys]) -> Result<&RangeKeys, CniError> {
    if set.is_empty() {
        return Err(CniError::config(format!("ipam.ranges[{i}] is empty")));
    }
    let [range] = set else {
        let key = format!("ipam.ranges[{i}]");
        let what = format!("{} ranges", set.len());
        return Err(CniError::unsupported(&key, &what, ONE_PER_FAMILY));
    };
    if let Some(bound) = range.range_start.as_ref().or(range.range_end.as_ref()) {
        let key = format!("ipam.ranges[{i}][0].rangeStart/rangeEnd");
        let why = "hull's IPAM hands out the whole subnet";
        return Err(CniError::unsupported(&key, bound, why));
    }
    Ok(range)
}

/// A configured gateway must be the subnet's first address, hull's
/// gateway.
fn check_gateway(gateway: Option<&str>, first: Option<IpAddr>) -> Result<(), CniError> {
    let Some(gw) = gateway else { return Ok(()) };
    let ip: IpAddr = gw
        .parse()
        .map_err(|_| CniError::config(format!("ipam gateway {gw:?} is not an IP address")))?;
    if Some(ip) != first {
        let first = first.map(|a| a.to_string()).unwrap_or_default();
        let why = format!("hull's gateway is the subnet's first address ({first})");
        return Err(CniError::unsupported("ipam gateway", gw, &why));
    }
    Ok(())
}

/// An IPv4 subnet of at least 4 addresses (code 7 if not).
pub fn parse_subnet(s: &str) -> Result<Subnet, CniError> {
    let subnet: Subnet = s
        .parse()
        .map_err(|e| CniError::config(format!("subnet: {e}")))?;
    if subnet.prefix > 30 {
        return Err(CniError::config(format!(
            "subnet {subnet} is too small (at most /30)"
        )));
    }
    Ok(subnet)
}

/// An IPv6 subnet (code 7 if it is none).
pub fn parse_subnet6(s: &str) -> Result<Subnet6, CniError> {
    s.parse()
        .map_err(|e| CniError::config(format!("IPv6 subnet: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn subnets(ipam: Value) -> Result<Subnets, CniError> {
        IpamKeys::deserialize(ipam).unwrap().subnets()
    }

    fn ranges(ranges: Value) -> Result<Subnets, CniError> {
        subnets(json!({"type": "host-local", "ranges": ranges}))
    }

    #[test]
    fn one_ipv4_range() {
        let s = ranges(json!([[{"subnet": "10.231.0.0/24", "gateway": "10.231.0.1"}]])).unwrap();
        assert_eq!((s.v4.to_string(), s.v6), ("10.231.0.0/24".into(), None));
    }

    #[test]
    fn dual_stack_in_either_order() {
        let v4 = json!([{"subnet": "10.231.0.0/24", "gateway": "10.231.0.1"}]);
        let v6 = json!([{"subnet": "fd42:231::/64", "gateway": "fd42:231:0::1"}]);
        for sets in [json!([v4, v6]), json!([v6, v4])] {
            let s = ranges(sets).unwrap();
            assert_eq!(s.v4.to_string(), "10.231.0.0/24");
            assert_eq!(s.v6.unwrap().to_string(), "fd42:231::/64");
        }
    }

    #[test]
    fn legacy_subnet_is_ipv4() {
        let s = subnets(json!({"type": "hull", "subnet": "10.5.0.0/16", "gateway": "10.5.0.1"}));
        assert_eq!(s.unwrap().v4.to_string(), "10.5.0.0/16");
        let v6 = subnets(json!({"type": "hull", "subnet": "fd00::/64"}));
        assert_eq!(v6.unwrap_err().code, 7);
    }

    #[test]
    fn what_hull_cannot_do_is_code_2() {
        let v4 = |s: &str| json!([{"subnet": s}]);
        let v6 = json!([{"subnet": "fd42:1::/64"}]);
        for (sets, says) in [
            (json!([v4("10.1.0.0/24"), v4("10.2.0.0/24")]), "two IPv4"),
            (json!([v4("10.1.0.0/24"), v6, v6]), "3 range sets"),
            (json!([v6, v6]), "two IPv6"),
            (json!([v6]), "IPv6 only"),
            (
                json!([[{"subnet": "10.1.0.0/24"}, {"subnet": "10.2.0.0/24"}]]),
                "2 ranges",
            ),
            (
                json!([[{"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.9"}]]),
                "rangeStart",
            ),
            (
                json!([v4("10.1.0.0/24"), [{"subnet": "fd42:1::/64", "gateway": "fd42:1::fe"}]]),
                "gateway = fd42:1::fe",
            ),
            (
                json!([[{"subnet": "10.1.0.0/24", "gateway": "10.1.0.254"}], v6]),
                "(10.1.0.1)",
            ),
        ] {
            let e = ranges(sets.clone()).unwrap_err();
            assert_eq!(e.code, 2, "{sets}: {e}");
            assert!(e.msg.contains(says), "{sets}: {}", e.msg);
        }
        let both = subnets(json!({"type": "host-local", "subnet": "10.1.0.0/24",
                                  "ranges": [[{"subnet": "10.2.0.0/24"}]]}));
        assert_eq!(both.unwrap_err().code, 2);
        assert_eq!(subnets(json!({"type": "dhcp"})).unwrap_err().code, 2);
    }

    #[test]
    fn invalid_values_are_code_7() {
        let v4 = json!([{"subnet": "10.1.0.0/24"}]);
        for bad in [
            json!([[{"subnet": "10.1.0.0/31"}]]),
            json!([v4, [{"subnet": "fd42::1::/64"}]]),
            // Too small to hold a twin of every IPv4 address.
            json!([v4, [{"subnet": "fd42:1::/121"}]]),
            json!([v4, [{"subnet": "fe80::/64"}]]),
            json!([v4, [{"subnet": "fd42:1::/64", "gateway": "nonsense"}]]),
            json!([[]]),
        ] {
            let e = ranges(bad.clone()).unwrap_err();
            assert_eq!(e.code, 7, "{bad}: {e}");
        }
        assert_eq!(subnets(json!({"type": "hull"})).unwrap_err().code, 7);
    }
}
