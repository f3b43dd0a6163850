//! Service discovery on hull networks: a small resolver per network.
//!
//! The resolver is a process of hull's own (`hull dns serve NET`), started
//! detached when the first container attaches ([`supervise`]), listening on
//! the bridge's gateway addresses (UDP and TCP 53, bound to the bridge
//! device so it never answers on the host's other interfaces) and, when
//! the network asks for it, on `127.0.0.1:<port>` for the host view. It
//! answers from hull's own state ([`zone`]): A/AAAA for container names,
//! aliases and services, PTR for their addresses, SRV for declared ports;
//! everything else is forwarded ([`upstream`]). It watches the state
//! directory with inotify ([`watch`]) and rebuilds its records when a
//! container attaches or detaches. It exits when the last container leaves
//! (the next attach starts another) and is stopped when its network is
//! removed.
//!
//! The wire format is hickory-proto's: a maintained, fuzzed DNS codec used by
//! the hickory resolver and server, so malformed input is the codec's
//! problem to reject, not a hand-written parser's to get wrong. Only the
//! protocol crate is used (no tokio, no hickory-server): the resolver is a
//! few blocking sockets and threads, which keeps it small in memory.
//!
//! State, beside the network's under the store directory:
//!
//! ```text
//! dns/<net>/config.json          the network's DNS options (host view port, upstreams)
//! dns/<net>/members/<id>.json    a container's names, service and ports (annotations)
//! dns/<net>/resolver.pid         the resolver's pid, flock'd by it while it runs
//! dns/<net>/resolv.conf          what containers get as /etc/resolv.conf
//! dns/<net>/remote/members.json  other hosts' containers on an overlay network
//! ```

mod error;
pub mod member;
pub mod query;
pub mod remote;
mod server;
pub mod supervise;
pub mod upstream;
mod watch;
pub mod zone;

pub use error::DnsError;
pub use member::{Config, Member, SrvPort};
pub use remote::RemoteMember;
pub use server::serve;
pub use supervise::{ensure_running, status, stop, Status};

use std::path::{Path, PathBuf};

/// Annotation with a container's extra names, comma-separated.
pub const ALIASES_ANNOTATION: &str = "org.hull.dns.aliases";
/// Annotation naming the service a container is a member of.
pub const SERVICE_ANNOTATION: &str = "org.hull.dns.service";
/// Annotation with a container's named ports: `http:80/tcp,metrics:9100/tcp`.
pub const PORTS_ANNOTATION: &str = "org.hull.dns.ports";
/// TTL of every local answer: short, so a re-created container is found at once.
pub const TTL: u32 = 2;

/// The DNS state directory of network `net` under store directory `store`.
pub fn net_dir(store: &Path, net: &str) -> PathBuf {
    store.join("dns").join(net)
}

/// The address a UDP socket that talks to `server` binds: any address of
/// `server`'s family, any port.
fn local_addr_for(server: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let any = if server.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    std::net::SocketAddr::new(any, 0)
}

/// Removes all DNS state of network `net` (after [`stop`]).
pub fn remove_state(store: &Path, net: &str) -> Result<(), DnsError> {
    let dir = net_dir(store, net);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DnsError::io("remove", &dir)(e)),
        _ => Ok(()),
    }
}
