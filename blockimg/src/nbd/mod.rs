//! hull's userspace NBD client: a remote export (as `qemu-nbd` serves a
//! qcow2 image) as a [`BlockDevice`], for the FUSE file to serve.
//!
//! Every connect and every request is bounded by a timeout, so an
//! unreachable or silent server is an error, never a hang. A broken
//! connection is dropped; the next request connects again (once) and is
//! sent again, which is safe because reads, writes and flushes are
//! idempotent and requests go one at a time. A write is durable once a
//! flush has succeeded: a server restarted before that may have lost it, as
//! a disk may lose its cache.

mod proto;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::device::{check_range, BlockDevice};
use crate::error::{Error, Result};
use proto::{Command, Export, FLAG_READ_ONLY, FLAG_SEND_FLUSH};

/// The default NBD port.
const DEFAULT_PORT: u16 = 10809;
/// The largest payload of one request (qemu-nbd takes up to 32 MiB).
const MAX_REQUEST: usize = 1 << 20;

/// Where an export is: `nbd://HOST[:PORT]/EXPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub export: String,
}

impl Target {
    /// Parses `nbd://HOST[:PORT][/EXPORT]` (an IPv6 host in brackets).
    pub fn parse(url: &str) -> Result<Target> {
        let bad = |why: &str| Error::Invalid(format!("NBD URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("nbd://")
            .ok_or_else(|| bad("does not start with nbd://"))?;
        let (authority, export) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(port) => port.parse().map_err(|_| bad("bad port"))?,
            None => DEFAULT_PORT,
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            export: export.to_owned(),
        })
    }
}

/// Timeouts of the client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the TCP connect and the negotiation after it.
    pub connect: Duration,
    /// For each request's reply.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(30),
        }
    }
}

/// A connection to one export.
pub struct NbdClient {
    target: Target,
    timeouts: Timeouts,
    export: Export,
    read_only: bool,
    stream: Option<TcpStream>,
    next_handle: u64,
}

impl NbdClient {
    /// Connects to `target` and negotiates its export. `read_only` refuses
    /// writes even where the export takes them.
    pub fn connect(target: Target, timeouts: Timeouts, read_only: bool) -> Result<NbdClient> {
        let (stream, export) = open(&target, timeouts)?;
        Ok(NbdClient {
            read_only: read_only || export.flags & FLAG_READ_ONLY != 0,
            target,
            timeouts,
            export,
            stream: Some(stream),
            next_handle: 1,
        })
    }

    /// Sends one request, connecting again first if the last connection
    /// broke, and once more if this one breaks.
    fn call(
        &mut self,
        command: Command,
        offset: u64,
        payload: &[u8],
        into: &mut [u8],
    ) -> Result<()> {
        let mut retried = false;
        loop {
            let result = self.try_call(command, offset, payload, into);
            match result {
                Err(Error::Io(_)) | Err(Error::Nbd(_)) if !retried => {
                    self.stream = None;
                    retried = true;
                }
                Err(e @ (Error::Io(_) | Error::Nbd(_))) => {
                    self.stream = None;
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    fn try_call(
        &mut self,
        command: Command,
        offset: u64,
        payload: &[u8],
        into: &mut [u8],
    ) -> Result<()> {
        if self.stream.is_none() {
            let (stream, export) = open(&self.target, self.timeouts)?;
            if export.size != self.export.size {
                return Err(Error::Nbd(format!(
                    "the export's size changed from {} to {} across a reconnect",
                    self.export.size, export.size
                )));
            }
            self.stream = Some(stream);
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        let stream = self.stream.as_mut().unwrap();
        proto::request(stream, command, handle, offset, payload, into)
    }
}

/// Connects and negotiates within the connect timeout; the stream is then
/// bounded by the I/O timeout.
fn open(target: &Target, timeouts: Timeouts) -> Result<(TcpStream, Export)> {
    let where_ = format!("{}:{}", target.host, target.port);
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| Error::Nbd(format!("{where_}: {e}")))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeouts.connect) {
            Ok(stream) => {
                let mut stream = stream;
                let negotiated = (|| {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(timeouts.connect))?;
                    stream.set_write_timeout(Some(timeouts.connect))?;
                    let export = proto::handshake(&mut stream, &target.export)?;
                    stream.set_read_timeout(Some(timeouts.io))?;
                    stream.set_write_timeout(Some(timeouts.io))?;
                    Ok::<_, Error>(export)
                })();
                return match negotiated {
                    Ok(export) => Ok((stream, export)),
                    Err(Error::Io(e)) => Err(Error::Nbd(format!("{where_}: negotiation: {e}"))),
                    Err(e) => Err(e),
                };
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Nbd(match last {
        Some(e) => format!("{where_}: {e}"),
        None => format!("{where_}: no address"),
    }))
}

impl BlockDevice for NbdClient {
    fn size(&self) -> u64 {
        self.export.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size())?;
        for (i, chunk) in buf.chunks_mut(MAX_REQUEST).enumerate() {
            let at = offset + (i * MAX_REQUEST) as u64;
            self.call(Command::Read, at, &[], chunk)?;
        }
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        check_range(offset, buf.len(), self.size())?;
        for (i, chunk) in buf.chunks(MAX_REQUEST).enumerate() {
            let at = offset + (i * MAX_REQUEST) as u64;
            self.call(Command::Write, at, chunk, &mut [])?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.read_only || self.export.flags & FLAG_SEND_FLUSH == 0 {
            return Ok(());
        }
        self.call(Command::Flush, 0, &[], &mut [])
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

impl Drop for NbdClient {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = proto::request(&mut stream, Command::Disconnect, 0, 0, &[], &mut []);
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let t = Target::parse("nbd://127.0.0.1:10810/vol").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.export.as_str()),
            ("127.0.0.1", 10810, "vol")
        );
        let t = Target::parse("nbd://[::1]/a/b").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.export.as_str()),
            ("::1", DEFAULT_PORT, "a/b")
        );
        let t = Target::parse("nbd://storage").unwrap();
        assert_eq!((t.port, t.export.as_str()), (DEFAULT_PORT, ""));
        for bad in ["http://x/y", "nbd://", "nbd://h:port/x", "nbd://[::1/x"] {
            assert!(
                matches!(Target::parse(bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }
}
