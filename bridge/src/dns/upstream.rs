//! Forwarding to the upstream servers: those a network was created with,
//! else the nameservers of the host's `/etc/resolv.conf`.
//!
//! Loopback nameservers are kept, unlike Docker's embedded resolver: that
//! one runs inside the container's namespace, where the host's loopback is
//! out of reach, while hull's resolver runs in the host's namespace, where a
//! local stub such as systemd-resolved's 127.0.0.53 is the right upstream.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use super::DnsError;

/// How long one upstream gets to answer before the next is tried.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The nameservers of a resolv.conf's text, on port 53 (at most three, as
/// the C library reads them).
pub fn from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        // A scoped IPv6 address (fe80::1%eth0) is not parsed: skipped.
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

/// The host's upstream servers, read now (so a changed resolv.conf counts).
pub fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| from_resolv_conf(&t))
        .unwrap_or_default()
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
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("an address");
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

    #[test]
    fn nameservers_of_resolv_conf() {
        let text = "# comment\nsearch lan\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver fe80::1%eth0\nnameserver 127.0.0.53\nnameserver 1.1.1.1\n";
        let got: Vec<String> = from_resolv_conf(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, ["10.0.0.2:53", "[::1]:53", "127.0.0.53:53"]);
    }
}
