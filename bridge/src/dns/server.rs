//! The resolver process: sockets on the gateway (and the host view's
//! loopback port), a thread per socket, and the main thread rebuilding the
//! records whenever the state directory changes.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nix::fcntl::Flock;
use nix::sys::socket::{
    self, setsockopt, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

use super::member::{Config, Member};
use super::query::{respond, servfail, Reply};
use super::upstream::{forward, host_upstreams};
use super::watch::Watcher;
use super::zone::{View, Zone};
use super::{supervise, DnsError};
use crate::network::Store;

/// At most this many queries are forwarded (or TCP clients served) at once;
/// more are dropped rather than letting a flood grow threads without bound.
const MAX_IN_FLIGHT: usize = 64;
/// How long a TCP client may stay idle.
const TCP_IDLE: Duration = Duration::from_secs(5);

/// What every serving thread shares.
struct Shared {
    zone: RwLock<Arc<Zone>>,
    view: View,
    upstreams: Vec<SocketAddr>,
    in_flight: AtomicUsize,
}

impl Shared {
    fn zone(&self) -> Arc<Zone> {
        self.zone.read().map(|z| Arc::clone(&z)).unwrap_or_default()
    }

    /// The upstreams to forward to: the network's own, else the host's now.
    fn upstreams(&self) -> Vec<SocketAddr> {
        if self.upstreams.is_empty() {
            host_upstreams()
        } else {
            self.upstreams.clone()
        }
    }

    /// Takes a slot for a forward or a TCP client; `None` when all are taken.
    fn slot(self: &Arc<Self>) -> Option<Slot> {
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(self));
        (n < MAX_IN_FLIGHT).then_some(slot)
    }
}

/// A taken in-flight slot, given back on drop.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves network `net` of the store at `store` until the network is
/// removed or has no container left. `ready` (an inherited fd) gets `ok` once every socket listens,
/// or the error that stopped it, and is closed.
pub fn serve(store_dir: &Path, net: &str, ready: Option<i32>) -> Result<(), DnsError> {
    // SAFETY: the fd was handed to us for this and is used nowhere else.
    let mut ready = ready.map(|fd| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    let started = start(store_dir, net);
    if let Some(mut r) = ready.take() {
        let msg = match &started {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        let _ = r.write_all(msg.as_bytes());
    }
    let (_pid_lock, running) = started?;
    running.watch()
}

/// A started resolver: what its main thread needs to keep the records fresh.
struct Running {
    store: Store,
    store_dir: PathBuf,
    net: String,
    views: Vec<Arc<Shared>>,
}

fn start(store_dir: &Path, net: &str) -> Result<(Flock<std::fs::File>, Running), DnsError> {
    let pid_lock = supervise::claim(store_dir, net)?;
    let store = Store::new(store_dir, "");
    let network = store
        .get(net)
        .map_err(|e| DnsError::Network(e.to_string()))?;
    let config = Config::load(store_dir, net)?;
    let shared = |view| {
        Arc::new(Shared {
            zone: RwLock::default(),
            view,
            upstreams: config.upstreams.clone(),
            in_flight: AtomicUsize::new(0),
        })
    };
    let mut views = vec![shared(View::Bridge)];
    let gateways = [
        Some(IpAddr::V4(network.gateway)),
        network.gateway6.map(IpAddr::V6),
    ];
    let mut sockets = Vec::new();
    for gw in gateways.into_iter().flatten() {
        let addr = SocketAddr::new(gw, 53);
        sockets.push((listen(addr, Some(&network.bridge))?, Arc::clone(&views[0])));
    }
    if let Some(port) = config.host_port {
        views.push(shared(View::Host));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        sockets.push((listen(addr, None)?, Arc::clone(&views[1])));
    }
    let running = Running {
        store,
        store_dir: store_dir.to_owned(),
        net: net.to_owned(),
        views,
    };
    running.rebuild();
    for ((udp, tcp), shared) in sockets {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || serve_udp(udp, s));
        std::thread::spawn(move || serve_tcp(tcp, shared));
    }
    Ok((pid_lock, running))
}

impl Running {
    /// Rebuilds every view's records from the state directory; on an error
    /// (a file caught half-written) the old records stay.
    fn rebuild(&self) {
        let Ok(network) = self.store.get(&self.net) else {
            return;
        };
        let Ok(mut attachments) = self.store.attachments(Some(&self.net)) else {
            return;
        };
        let Ok(mut members) = Member::all(&self.store_dir, &self.net) else {
            return;
        };
        // Other hosts' containers (an overlay network's), as its agent wrote them.
        let Ok(remote) = super::remote::load(&self.store_dir, &self.net) else {
            return;
        };
        for r in remote {
            if let Some(a) = r.attachment(&network) {
                attachments.push(a);
                members.insert(r.container, r.member);
            }
        }
        for shared in &self.views {
            let zone = Zone::build(&network, &attachments, &members, shared.view);
            if let Ok(mut z) = shared.zone.write() {
                *z = Arc::new(zone);
            }
        }
    }

    /// Rebuilds the records on every change of the attachments or members;
    /// returns once the network is gone (removed, or its state directory).
    fn watch(self) -> Result<(), DnsError> {
        let members = super::net_dir(&self.store_dir, &self.net).join("members");
        let dirs = [
            self.store_dir.join("networks"),
            self.store_dir.join("attachments"),
            members,
            super::remote::dir(&self.store_dir, &self.net),
        ];
        let watcher = Watcher::new(&dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
        let network_file = dirs[0].join(format!("{}.json", self.net));
        // A change between the first build and the watches is caught here.
        self.rebuild();
        loop {
            if !network_file.exists() {
                return Ok(());
            }
            // Once the last container left (also one a killed hull never
            // finished attaching, detached by the `delete --force` after).
            if self.unused() && supervise::retire(&self.store_dir, &self.net, || self.unused())? {
                return Ok(());
            }
            watcher.wait()?;
            self.rebuild();
        }
    }

    /// Whether no container is attached to the network (false while the
    /// attachments cannot be read).
    fn unused(&self) -> bool {
        self.store
            .attachments(Some(&self.net))
            .is_ok_and(|a| a.is_empty())
    }
}

/// A UDP socket and a TCP listener on `addr`, bound to `device` if given
/// (so nothing arriving on another interface reaches them).
fn listen(addr: SocketAddr, device: Option<&str>) -> Result<(UdpSocket, TcpListener), DnsError> {
    let udp = bound(addr, SockType::Datagram, device)?;
    let tcp = bound(addr, SockType::Stream, device)?;
    let backlog = Backlog::new(128).expect("a valid backlog");
    socket::listen(&tcp, backlog).map_err(|e| DnsError::Listen {
        addr,
        source: e.into(),
    })?;
    Ok((UdpSocket::from(udp), TcpListener::from(tcp)))
}

/// A socket of type `ty` bound to `addr` (and `device`). SO_REUSEPORT: a
/// resolver started just after the last one retired binds while that one's
/// sockets are still being closed on its exit (the pid file's lock, not
/// the port, keeps a network to one resolver).
fn bound(addr: SocketAddr, ty: SockType, device: Option<&str>) -> Result<OwnedFd, DnsError> {
    let err = |e: nix::errno::Errno| DnsError::Listen {
        addr,
        source: e.into(),
    };
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(family, ty, SockFlag::SOCK_CLOEXEC, None).map_err(err)?;
    setsockopt(&fd, sockopt::ReusePort, &true).map_err(err)?;
    if ty == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err)?;
    }
    if let Some(dev) = device {
        setsockopt(&fd, sockopt::BindToDevice, &OsString::from(dev)).map_err(err)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(err)?;
    Ok(fd)
}

fn serve_udp(sock: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let packet = &buf[..n];
        match respond(&shared.zone(), packet, false) {
            Reply::Send(bytes) => {
                let _ = sock.send_to(&bytes, peer);
            }
            Reply::Drop => {}
            Reply::Forward => {
                let (Some(slot), Ok(sock)) = (shared.slot(), sock.try_clone()) else {
                    continue;
                };
                let query = packet.to_vec();
                std::thread::spawn(move || {
                    let answer = forward(&slot.0.upstreams(), &query, false)
                        .ok()
                        .or_else(|| servfail(&query));
                    if let Some(a) = answer {
                        let _ = sock.send_to(&a, peer);
                    }
                });
            }
        }
    }
}

fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let (Ok(conn), Some(slot)) = (conn, shared.slot()) else {
            continue;
        };
        std::thread::spawn(move || serve_tcp_client(conn, &slot.0));
    }
}

/// Answers length-prefixed queries on one connection until it closes or idles.
fn serve_tcp_client(mut conn: TcpStream, shared: &Shared) {
    if conn.set_read_timeout(Some(TCP_IDLE)).is_err()
        || conn.set_write_timeout(Some(TCP_IDLE)).is_err()
    {
        return;
    }
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if conn.read_exact(&mut query).is_err() {
            return;
        }
        let answer = match respond(&shared.zone(), &query, true) {
            Reply::Send(bytes) => bytes,
            Reply::Drop => return,
            Reply::Forward => match forward(&shared.upstreams(), &query, true) {
                Ok(a) => a,
                Err(_) => match servfail(&query) {
                    Some(a) => a,
                    None => return,
                },
            },
        };
        let Ok(n) = u16::try_from(answer.len()) else {
            return;
        };
        if conn
            .write_all(&[&n.to_be_bytes()[..], &answer].concat())
            .is_err()
        {
            return;
        }
    }
}
