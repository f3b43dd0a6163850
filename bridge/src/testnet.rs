//! Throwaway network namespaces for tests, so the host's own firewall and
//! links are never touched, and a two-namespace topology for real traffic.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::net::if_::if_nametoindex;
use nix::sched::{setns, unshare, CloneFlags};

use crate::Subnet;

/// The host end of the veth pair, standing in for the bridge.
pub(crate) const HOST_IF: &str = "hulltest0";
pub(crate) const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
/// The container's two addresses (two "containers" in one namespace).
pub(crate) const CONTAINER_A: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
pub(crate) const CONTAINER_B: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 3);
const TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn subnet() -> Subnet {
    Subnet::new(HOST_IP, 24).unwrap()
}

/// hull's table name in tests.
pub(crate) fn table() -> String {
    format!("hull_test_{}", std::process::id())
}

/// A network namespace of its own, alive as long as this handle, with
/// `lo` up.
pub(crate) struct Netns(File);

impl Netns {
    pub(crate) fn new() -> Self {
        let ns = thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): tests need root");
            Self(File::open("/proc/thread-self/ns/net").unwrap())
        })
        .join()
        .unwrap();
        ns.run(|| link_up("lo"));
        ns
    }

    /// Runs `f` on a thread inside this namespace.
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(&self.0, CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// A "host" namespace and a "container" namespace joined by a veth pair:
/// `hulltest0` with HOST_IP/24 (route_localnet and forwarding on) on the
/// host, `eth0` with both container addresses and a default route via
/// the host in the container.
pub(crate) struct Topology {
    pub(crate) host: Netns,
    pub(crate) container: Netns,
}

impl Topology {
    pub(crate) fn new() -> Self {
        let (host, container) = (Netns::new(), Netns::new());
        host.run(|| {
            add_veth(HOST_IF, "eth0", &container.0);
            add_address(HOST_IF, HOST_IP, 24);
            link_up(HOST_IF);
            sysctl(&format!("ipv4/conf/{HOST_IF}/route_localnet"), "1");
            sysctl("ipv4/ip_forward", "1");
        });
        container.run(|| {
            add_address("eth0", CONTAINER_A, 24);
            add_address("eth0", CONTAINER_B, 24);
            link_up("eth0");
            add_default_route(HOST_IP);
        });
        Self { host, container }
    }
}

/// Answers each TCP connection with the address it came from, so a test
/// sees what masquerade did.
pub(crate) fn serve_tcp(listener: TcpListener) {
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let peer = conn.peer_addr().unwrap().ip().to_string();
            let _ = std::io::Write::write_all(&mut conn, peer.as_bytes());
        }
    });
}

/// What a TCP server at `addr` answers.
pub(crate) fn ask_tcp(addr: (Ipv4Addr, u16)) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&SocketAddrV4::new(addr.0, addr.1).into(), TIMEOUT)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Answers each UDP datagram with `name`.
pub(crate) fn serve_udp(socket: UdpSocket, name: &'static str) {
    thread::spawn(move || {
        let mut buf = [0; 64];
        while let Ok((_, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(name.as_bytes(), peer);
        }
    });
}

/// What answers a datagram sent over the connected `client`, if anything.
pub(crate) fn ask_udp(client: &UdpSocket) -> Option<String> {
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.send(b"?").unwrap();
    let mut buf = [0; 64];
    let len = client.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

fn sysctl(name: &str, value: &str) {
    std::fs::write(format!("/proc/sys/net/{name}"), value).unwrap();
}

fn index(name: &str) -> u32 {
    if_nametoindex(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn link_up(name: &str) {
    let mut link = LinkMessage::default();
    link.header.index = index(name);
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    rtnetlink(RouteNetlinkMessage::SetLink(link), 0);
}

fn add_veth(name: &str, peer: &str, peer_netns: &File) {
    let mut peer_link = LinkMessage::default();
    peer_link.attributes = vec![
        LinkAttribute::IfName(peer.into()),
        LinkAttribute::NetNsFd(peer_netns.as_raw_fd()),
    ];
    let mut link = LinkMessage::default();
    link.attributes = vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_link))),
        ]),
    ];
    rtnetlink(
        RouteNetlinkMessage::NewLink(link),
        NLM_F_CREATE | NLM_F_EXCL,
    );
}

fn add_address(name: &str, ip: Ipv4Addr, prefix: u8) {
    let mut address = AddressMessage::default();
    address.header.family = AddressFamily::Inet;
    address.header.prefix_len = prefix;
    address.header.index = index(name);
    address.attributes = vec![
        AddressAttribute::Local(ip.into()),
        AddressAttribute::Address(ip.into()),
    ];
    rtnetlink(
        RouteNetlinkMessage::NewAddress(address),
        NLM_F_CREATE | NLM_F_EXCL,
    );
}

fn add_default_route(gateway: Ipv4Addr) {
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.table = RouteHeader::RT_TABLE_MAIN;
    route.header.protocol = RouteProtocol::Static;
    route.header.kind = RouteType::Unicast;
    route.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
    rtnetlink(
        RouteNetlinkMessage::NewRoute(route),
        NLM_F_CREATE | NLM_F_EXCL,
    );
}

/// Sends one rtnetlink request and panics unless the kernel acks it.
fn rtnetlink(request: RouteNetlinkMessage, flags: u16) {
    let mut socket = Socket::new(NETLINK_ROUTE).unwrap();
    socket.bind_auto().unwrap();
    socket.connect(&SocketAddr::new(0, 0)).unwrap();
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let what = format!("{request:?}");
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(request));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0).unwrap();
    let mut reply = Vec::with_capacity(8192);
    socket.recv(&mut reply, 0).unwrap();
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .unwrap()
        .payload
    {
        NetlinkPayload::Error(e) if e.code.is_some() => panic!("{what}: {e}"),
        _ => {}
    }
}
