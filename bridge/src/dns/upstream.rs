//! Forwarding to the upstream servers: those a network was created with
//! (`--dns-upstream`, used as given), else the host's, picked by
//! [`host_choice`].
//!
//! Which of the host's servers, and why: the resolver runs in the host's
//! network namespace, so it *could* reach a nameserver on the host's
//! loopback (a local stub such as systemd-resolved's 127.0.0.53, a
//! dnsmasq on 127.0.0.1). It does not forward to them. A service bound to
//! loopback is meant for the host alone: relaying every container's
//! queries to it would give the container network a path into the host's
//! loopback, the exposure of CVE-2020-8558 (localhost-bound services
//! reached from outside the host). Such a stub answers from the host's
//! /etc/hosts, its own hostname and LLMNR/mDNS names of the host's LAN,
//! and a local dnsmasq may serve private zones: none of that is the
//! containers' to see, and Docker drops loopback nameservers from a
//! container's resolv.conf for the same reason (they are not reachable
//! from the container). What remains:
//! - the host's non-loopback nameservers, in order (at most three);
//! - if the host lists only loopback ones and systemd-resolved publishes
//!   the servers it really asks (`/run/systemd/resolve/resolv.conf`),
//!   those, as Docker does;
//! - else none. Docker would fall back to public servers (Google's); hull
//!   does not send containers' queries to a third party nobody named, nor
//!   make every query wait out a timeout on a host without that route.
//!   Names that are not the network's then get SERVFAIL at once, and
//!   `network create --dns-upstream ADDR` names servers explicitly (a
//!   loopback one too: then the administrator chose to expose it).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use super::DnsError;

/// How long one upstream gets to answer before the next is tried.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where systemd-resolved lists the servers behind its loopback stub.
const RESOLVED_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// The nameservers of a resolv.conf's text, on port 53, in order.
pub fn from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        // A scoped IPv6 address (fe80::1%eth0) is not parsed: skipped.
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Whether `ip` is the host's own loopback (0.0.0.0 and `::` mean the
/// local host to the C library too; an IPv4-mapped 127.x counts).
fn is_host_local(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified()
}

/// The upstreams a network without its own forwards to, given the host's
/// resolv.conf text and a way to read systemd-resolved's list (asked only
/// when the host names nothing but loopback servers): see the module's
/// comment for why loopback servers are skipped.
pub fn host_choice(host: &str, resolved: impl FnOnce() -> Option<String>) -> Vec<SocketAddr> {
    let reachable = |servers: Vec<SocketAddr>| -> Vec<SocketAddr> {
        servers
            .into_iter()
            .filter(|s| !is_host_local(s.ip()))
            // At most three, as the C library reads them.
            .take(3)
            .collect()
    };
    let all = from_resolv_conf(host);
    let only_loopback = !all.is_empty() && all.iter().all(|s| is_host_local(s.ip()));
    if only_loopback {
        return resolved()
            .map(|text| reachable(from_resolv_conf(&text)))
            .unwrap_or_default();
    }
    reachable(all)
}

/// The host's upstream servers, read now (so a changed resolv.conf counts).
pub fn host_upstreams() -> Vec<SocketAddr> {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    host_choice(&host, || std::fs::read_to_string(RESOLVED_CONF).ok())
}

/// Sends `query` to each upstream in turn until one answers with the same
/// id; the answer as it came (its TTLs untouched). Over TCP when `tcp`.
pub fn forward(upstreams: &[SocketAddr], query: &[u8], tcp: bool) -> Result<Vec<u8>, DnsError> {
    let mut last = DnsError::NoAnswer("any upstream server (none configured)".into());
    for &server in upstreams {
        let got = if tcp {
            over_tcp(server, query)
        } else {
            over_udp(server, query)
        };
        match got {
            Ok(answer) if answer.len() >= 12 && answer[..2] == query[..2] => return Ok(answer),
            Ok(_) => last = DnsError::NoAnswer(format!("{server}: a mismatched answer")),
            Err(e) => last = DnsError::NoAnswer(format!("{server}: {e}")),
        }
    }
    Err(last)
}

fn over_udp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local = super::local_addr_for(server);
    let sock = UdpSocket::bind(local)?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.send(query)?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn over_tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&server, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let len = u16::try_from(query.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    s.write_all(&[&len.to_be_bytes()[..], query].concat())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: Vec<SocketAddr>) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nameservers_of_resolv_conf() {
        let text = "# comment\nsearch lan\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver fe80::1%eth0\nnameserver 127.0.0.53\nnameserver 1.1.1.1\n";
        assert_eq!(
            addrs(from_resolv_conf(text)),
            ["10.0.0.2:53", "[::1]:53", "127.0.0.53:53", "1.1.1.1:53"]
        );
    }

    #[test]
    fn loopback_servers_are_skipped() {
        let never = || -> Option<String> { panic!("systemd-resolved's list read") };
        let text = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver 0.0.0.0\nnameserver ::ffff:127.0.0.1\nnameserver 2001:db8::53\n\
                    nameserver 10.0.0.3\nnameserver 10.0.0.4\n";
        assert_eq!(
            addrs(host_choice(text, never)),
            ["10.0.0.2:53", "[2001:db8::53]:53", "10.0.0.3:53"]
        );
        // No nameserver line at all: nothing, and systemd-resolved is not asked.
        assert!(host_choice("search lan\n", never).is_empty());
    }

    #[test]
    fn only_loopback_servers_fall_back_to_systemd_resolved() {
        let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\n";
        let resolved = || Some("nameserver 192.0.2.1\nnameserver 127.0.0.1\n".to_owned());
        assert_eq!(addrs(host_choice(stub, resolved)), ["192.0.2.1:53"]);
        // Without systemd-resolved's list: none (no public fallback).
        assert!(host_choice(stub, || None).is_empty());
        assert!(host_choice(stub, || Some("nameserver ::1\n".into())).is_empty());
    }
}
