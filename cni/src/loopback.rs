//! The `loopback` role: brings `lo` up in the container's namespace (ADD),
//! down again (DEL, a no-op once the namespace is gone), and checks it is up
//! (CHECK), like the reference `loopback` plugin.

use std::path::Path;

use super::config::DEFAULT_VERSION;
use super::env::{Op, Target};
use super::error::CniError;
use super::iface;
use super::result::{CniResult, Interface, IpConfig};

const LO: &str = "lo";
const LO_MAC: &str = "00:00:00:00:00:00";

/// Runs `op`; ADD returns `lo` and its addresses.
pub fn run(op: Op, target: &Target) -> Result<Option<CniResult>, CniError> {
    match op {
        Op::Add => add(target.netns()?).map(Some),
        Op::Del => del(target.netns_opt()).map(|()| None),
        Op::Check => check(target.netns()?).map(|()| None),
    }
}

fn add(netns: &Path) -> Result<CniResult, CniError> {
    let lo = iface::in_netns(netns, "set lo up", || {
        iface::set_up(LO, true)?;
        Ok(iface::links()?.remove(LO).unwrap_or_default())
    })?;
    let ips = lo.ipv4.iter().map(|(ip, prefix)| IpConfig {
        address: format!("{ip}/{prefix}"),
        interface: Some(0),
        ..Default::default()
    });
    Ok(CniResult {
        cni_version: DEFAULT_VERSION.to_owned(),
        interfaces: vec![Interface {
            name: LO.to_owned(),
            mac: lo.mac.unwrap_or_else(|| LO_MAC.to_owned()),
            sandbox: Some(netns.display().to_string()),
            ..Default::default()
        }],
        ips: ips.collect(),
        ..Default::default()
    })
}

fn del(netns: Option<&Path>) -> Result<(), CniError> {
    match netns {
        Some(ns) if ns.exists() => iface::in_netns(ns, "set lo down", || iface::set_up(LO, false)),
        _ => Ok(()),
    }
}

fn check(netns: &Path) -> Result<(), CniError> {
    let links = iface::in_netns(netns, "list links", iface::links)?;
    if links.get(LO).is_some_and(|l| l.up) {
        Ok(())
    } else {
        Err(CniError::check(format!(
            "lo is down in {}",
            netns.display()
        )))
    }
}
