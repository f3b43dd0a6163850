//! The few kernel settings hull changes, and only where it needs them:
//!
//! - `net.ipv4.ip_forward = 1` (global): containers reach out and published
//!   ports are forwarded; like Docker and the CNI bridge plugin, it is left on.
//! - `net.ipv4.conf.<bridge>.route_localnet = 1`: lets `127.0.0.1:port` be
//!   DNATed to a container on that bridge (only that bridge).
//! - `net.ipv6.conf.all.forwarding = 1`, only once a dual-stack network is
//!   used: IPv6 forwards only when it is on globally (the replies to a
//!   container arrive on the uplink). It also makes every interface stop
//!   accepting router advertisements unless its `accept_ra` is 2, so a host
//!   that configures its uplink by SLAAC must set that first (as with
//!   Docker's IPv6).

use crate::NetError;

fn write(path: &str, value: &str) -> Result<(), NetError> {
    std::fs::write(path, value).map_err(NetError::io(format!("write {value} to {path}")))
}

/// Turns on IPv6 forwarding (see the module documentation).
pub fn enable_ipv6_forwarding() -> Result<(), NetError> {
    write("/proc/sys/net/ipv6/conf/all/forwarding", "1")
}

/// Turns on IPv4 forwarding, and route_localnet on `bridge`.
pub fn enable_forwarding(bridge: &str) -> Result<(), NetError> {
    write("/proc/sys/net/ipv4/ip_forward", "1")?;
    write(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}
