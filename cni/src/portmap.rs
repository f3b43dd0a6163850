//! The `portmap` role, a chained plugin like the reference `portmap`: it
//! publishes `runtimeConfig.portMappings` to the container address of
//! `prevResult` as elements of hull's nf_tables port maps
//! ([`Firewall::add_ports`]), which the network's rules (made by the
//! `bridge` or `hull` role before it) already use. On a dual-stack network
//! the ports are published to the container's IPv6 address too (on all the
//! host's IPv6 addresses, as the CLI's `-p` does).
//!
//! What it published is recorded in `<dataDir>/portmap/<id>.<ifname>.json`,
//! so DEL can undo it even when the runtime lost its cached result; DEL
//! also flushes the container address's conntrack entries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::path::PathBuf;

use bridge::{conntrack, NetError, PortMapping, Protocol};
use bridge::{Firewall, NftError};
use serde::{Deserialize, Serialize};

use super::config::PortmapSpec;
use super::env::{Op, Target};
use super::error::{code, is_transient, CniError};
use super::result::CniResult;
use super::state;

/// What ADD published for one container interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    ip: Ipv4Addr,
    /// The container's IPv6 address, on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip6: Option<Ipv6Addr>,
    ports: Vec<PortMapping>,
}

impl Record {
    /// `ports` to the container addresses of `prev`, which must have an
    /// IPv4 one.
    fn of(prev: &CniResult, ports: &[PortMapping]) -> Result<Self, CniError> {
        let ip = prev.container_ipv4().ok_or_else(|| {
            CniError::config("prevResult has no IPv4 address to forward ports to")
        })?;
        Ok(Self {
            ip,
            ip6: prev.container_ipv6(),
            ports: ports.to_vec(),
        })
    }

    /// The addresses the ports go to, IPv4 first.
    fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        std::iter::once(self.ip.into()).chain(self.ip6.map(IpAddr::from))
    }
}

/// Runs `op`; ADD passes `prevResult` on.
pub fn run(op: Op, spec: &PortmapSpec, target: &Target) -> Result<Option<CniResult>, CniError> {
    match op {
        Op::Add => add(spec, target).map(Some),
        Op::Del => del(spec, target).map(|()| None),
        Op::Check => check(spec, target).map(|()| None),
    }
}

/// Publishes the ports.
fn add(spec: &PortmapSpec, target: &Target) -> Result<CniResult, CniError> {
    let prev = prev_result(spec)?.clone();
    if spec.ports.is_empty() {
        return Ok(prev);
    }
    let record = Record::of(&prev, &spec.ports)?;
    check_free(&spec.ports)?;
    let path = record_path(spec, target);
    state::write_json(&path, &record)?;
    // One batch per family: on error, what the first published is taken
    // back (only elements pointing at this container are removed).
    let fw = Firewall::new(&spec.table);
    let published = record.addresses().try_for_each(|ip| {
        fw.add_ports(ip, &record.ports)
            .map_err(|e| firewall_error(&spec.table, ip, e))
    });
    if let Err(e) = published {
        for ip in record.addresses() {
            let _ = fw.remove_ports(ip, &record.ports);
        }
        let _ = state::remove_json(&path);
        return Err(e);
    }
    Ok(prev)
}

/// Unpublishes the recorded ports (or, without a record, those of the
/// config) and flushes the address's conntrack entries.
fn del(spec: &PortmapSpec, target: &Target) -> Result<(), CniError> {
    let path = record_path(spec, target);
    let record = state::read_json::<Record>(&path)?.or_else(|| from_config(spec));
    let Some(record) = record else {
        return Ok(());
    };
    let fw = Firewall::new(&spec.table);
    for ip in record.addresses() {
        fw.remove_ports(ip, &record.ports)
            .map_err(|e| firewall_error(&spec.table, ip, e))?;
        conntrack::flush(ip)
            .map_err(|e| CniError::net("flush conntrack entries", NetError::Firewall(e)))?;
    }
    state::remove_json(&path)
}

/// Checks that the configured ports are recorded as published to the
/// container's address.
fn check(spec: &PortmapSpec, target: &Target) -> Result<(), CniError> {
    let wanted = Record::of(prev_result(spec)?, &spec.ports)?;
    if spec.ports.is_empty() {
        return Ok(());
    }
    let record: Record = state::read_json(&record_path(spec, target))?.ok_or_else(|| {
        let id = &target.container_id;
        CniError::check(format!(
            "no ports are published for {} of {id}",
            target.ifname
        ))
    })?;
    if sorted(record.clone()) != sorted(wanted.clone()) {
        return Err(CniError::check(format!(
            "published {} to {}, configured {} to {}",
            ports_text(&record.ports),
            addresses_text(&record),
            ports_text(&wanted.ports),
            addresses_text(&wanted),
        )));
    }
    Ok(())
}

fn prev_result(spec: &PortmapSpec) -> Result<&CniResult, CniError> {
    spec.prev_result.as_ref().ok_or_else(|| {
        CniError::config("portmap is a chained plugin: it needs the prevResult of the plugin that assigned the address")
    })
}

/// What to unpublish when ADD's record is gone: the config's ports to the
/// prevResult's addresses.
fn from_config(spec: &PortmapSpec) -> Option<Record> {
    let record = Record::of(spec.prev_result.as_ref()?, &spec.ports).ok()?;
    (!record.ports.is_empty()).then_some(record)
}

/// `["8080:80/tcp", ...]`.
fn ports_text(ports: &[PortMapping]) -> String {
    format!(
        "{:?}",
        ports.iter().map(ToString::to_string).collect::<Vec<_>>()
    )
}

/// `10.88.0.2` or `10.88.0.2 and fd42::2`.
fn addresses_text(record: &Record) -> String {
    let all: Vec<String> = record.addresses().map(|ip| ip.to_string()).collect();
    all.join(" and ")
}

fn record_path(spec: &PortmapSpec, target: &Target) -> PathBuf {
    spec.records
        .join(format!("{}.{}.json", target.container_id, target.ifname))
}

fn sorted(mut record: Record) -> Record {
    record.ports.sort_by_key(|p| p.to_string());
    record
}

/// A host port bound by a host socket would be shadowed by the forward.
fn check_free(ports: &[PortMapping]) -> Result<(), CniError> {
    for p in ports {
        let addr = (p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
        let free = match p.protocol {
            Protocol::Tcp => TcpListener::bind(addr).is_ok(),
            Protocol::Udp => UdpSocket::bind(addr).is_ok(),
        };
        if !free {
            return Err(CniError::new(
                code::PORT_IN_USE,
                format!("host port {p} is already in use"),
            ));
        }
    }
    Ok(())
}

/// The CNI error for a failed port map change.
fn firewall_error(table: &str, ip: IpAddr, e: NftError) -> CniError {
    let family = if ip.is_ipv4() { "ip" } else { "ip6" };
    match e.errno() {
        Some(libc::EEXIST) => CniError::new(
            code::PORT_IN_USE,
            "a host port is already published for another container",
        )
        .details(e.to_string()),
        Some(libc::ENOENT) => CniError::config(format!(
            "nf_tables table {family} {table} has no port maps: chain portmap after hull's bridge plugin, with the same table"
        ))
        .details(e.to_string()),
        Some(errno) if is_transient(errno) => {
            CniError::new(code::TRY_AGAIN, format!("publish ports: {e}"))
        }
        _ => CniError::new(code::NETWORKING, format!("publish ports: {e}")),
    }
}
