//! Networks and container attachments, persisted as JSON under a state
//! directory (default `/run/hull-net`):
//!
//! ```text
//! networks/<name>.json        the network: bridge, subnet, gateway (and IPv6 ones)
//! leases/<name>/              its IPAM leases
//! attachments/<key>.json      one per attached container interface
//! firewall/<name>             present once the network's nf_tables rules are in place
//! lock                        flock'd while ports are checked and claimed
//! ```
//!
//! Attaching creates the bridge on first use, the firewall rules of the
//! network, a lease, the veth pair (peer created directly in the container's
//! namespace), the addresses and routes inside, and the published ports.
//! Detaching undoes every per-container part and is idempotent; the network
//! itself stays until [`Store::remove`].
//!
//! Dual stack: a network may also have an IPv6 subnet. A container's IPv6
//! address mirrors its IPv4 lease (the same host number in the IPv6
//! subnet), so the one lease on disk covers both and no address is ever
//! handed out twice in either family. Addresses are added without duplicate
//! address detection (hull owns the subnet), so they work at once.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::ipam::Ipam;
use crate::netlink::Route;
use crate::nfnetlink::NfSocket;
use crate::nft::Firewall;
use crate::whole_file::{remove_json, write_json};
use crate::{conntrack, link, netns, sysctl, NetError, PortMapping, Protocol, Subnet, Subnet6};

/// Default state directory.
pub const DEFAULT_DIR: &str = "/run/hull-net";
/// The network `-p` and `--network` without a name use.
pub const DEFAULT_NETWORK: &str = "hull";
/// hull's nf_tables table.
pub const DEFAULT_TABLE: &str = "hull";
/// How many steps [`Store::attach`] wires a container in.
const WIRE_STEPS: usize = 4;

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// The IPv6 subnet of a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Subnet6>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// The MTU of the bridge and the containers' veths when not the
    /// kernel's default: an overlay's leaves room for the encapsulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

impl Network {
    /// The IPv6 twin of `ip`, a lease of this network: the same host number
    /// in the IPv6 subnet. `None` on an IPv4-only network.
    pub fn ipv6_of(&self, ip: Ipv4Addr) -> Option<Ipv6Addr> {
        let host = u32::from(ip) & !self.subnet.mask();
        self.subnet6?.nth(u128::from(host))
    }
}

/// What [`Store::create_with`] makes; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    /// Default: a /24 from the private pool, clear of the host's routes.
    pub subnet: Option<Subnet>,
    /// Makes the network dual-stack. Its host part must be at least as
    /// large as the IPv4 subnet's (every IPv4 lease has an IPv6 twin).
    pub subnet6: Option<Subnet6>,
    /// Default `hull-<name>` (`hull0` for the default network).
    pub bridge: Option<String>,
    /// Default: the kernel's (1500).
    pub mtu: Option<u32>,
}

/// One container interface on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub container: String,
    pub ifname: String,
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The IPv6 address and gateway on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    pub ports: Vec<PortMapping>,
    /// Set once the ports are published, so teardown can delete them
    /// without looking each up first (a crash before leaves it unset).
    #[serde(default)]
    pub published: bool,
    /// The state root of the hull container attached, so that root's
    /// `list` still shows the container when its state file is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<PathBuf>,
}

impl Attachment {
    /// The container's addresses: IPv4, then IPv6 on a dual-stack network.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        [Some(IpAddr::V4(self.ip)), self.ip6.map(IpAddr::V6)]
            .into_iter()
            .flatten()
    }
}

/// The network state directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) dir: PathBuf,
    pub(crate) table: String,
    leases: PathBuf,
}

impl Store {
    /// A store under `dir`, with firewall rules in nf_tables table `table`.
    pub fn new(dir: impl Into<PathBuf>, table: &str) -> Self {
        let dir = dir.into();
        Self {
            leases: dir.join("leases"),
            dir,
            table: table.to_owned(),
        }
    }

    /// Keeps leases under `dir/<network>/` instead of `<store>/leases/<network>/`
    /// (the CNI plugin uses the `ipam.dataDir` runtimes configure).
    pub fn with_lease_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.leases = dir.into();
        self
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn firewall(&self) -> Firewall {
        Firewall::new(&self.table)
    }

    fn network_file(&self, name: &str) -> PathBuf {
        self.dir.join("networks").join(format!("{name}.json"))
    }

    fn attachment_file(&self, container: &str, ifname: &str) -> PathBuf {
        self.dir
            .join("attachments")
            .join(format!("{container}.{ifname}.json"))
    }

    fn ipam(&self, net: &Network) -> Ipam {
        Ipam::new(self.leases.join(&net.name), net.subnet, net.gateway)
    }

    /// Holds the store's lock until dropped.
    fn lock(&self) -> Result<Flock<File>, NetError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(NetError::io(format!("create {}", self.dir.display())))?;
        let path = self.dir.join("lock");
        let f = File::create(&path).map_err(NetError::io(format!("open {}", path.display())))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| NetError::io(format!("lock {}", path.display()))(e.into()))
    }

    /// Creates an IPv4 network; without `subnet`, a /24 from the private
    /// pool that overlaps no route of the host and no other network.
    pub fn create(&self, name: &str, subnet: Option<Subnet>) -> Result<Network, NetError> {
        let options = NetworkOptions {
            subnet,
            ..NetworkOptions::default()
        };
        self.create_with(name, &options)
    }

    /// Creates a network as `options` say.
    pub fn create_with(&self, name: &str, options: &NetworkOptions) -> Result<Network, NetError> {
        // Checked before the lock, which makes the state directory.
        validate_name(name)?;
        if let Some(subnet) = options.subnet.filter(|s| s.prefix > 30) {
            return Err(NetError::Invalid(format!("subnet {subnet} is too small")));
        }
        let _lock = self.lock()?;
        if let Some(b) = options.bridge.as_deref() {
            if b.is_empty() || b.len() > 15 || b.contains('/') {
                return Err(NetError::Invalid(format!(
                    "bridge name {b:?} must be 1-15 characters without /"
                )));
            }
            if let Some(other) = self.list()?.iter().find(|n| n.bridge == b) {
                return Err(NetError::Invalid(format!(
                    "bridge {b} already belongs to network {}",
                    other.name
                )));
            }
        }
        self.create_locked(name, options)
    }

    fn create_locked(&self, name: &str, options: &NetworkOptions) -> Result<Network, NetError> {
        validate_name(name)?;
        if self.network_file(name).exists() {
            return Err(NetError::NetworkExists(name.to_owned()));
        }
        let bridge = options.bridge.clone().unwrap_or_else(|| bridge_name(name));
        if let Some(other) = self.list()?.iter().find(|n| n.bridge == bridge) {
            return Err(NetError::Invalid(format!(
                "bridge {bridge} already belongs to network {}",
                other.name
            )));
        }
        if let Some(s) = options.subnet {
            check_not_reserved(s)?;
        }
        let taken: Vec<Subnet> = self
            .list()?
            .iter()
            .map(|n| n.subnet)
            .chain(host_routes()?)
            .collect();
        let subnet = match options.subnet {
            Some(s) => {
                if let Some(t) = taken.iter().find(|t| t.overlaps(&s) && t.prefix > 0) {
                    return Err(NetError::Invalid(format!(
                        "subnet {s} overlaps {t} already in use"
                    )));
                }
                s
            }
            None => pick_subnet(&taken)?,
        };
        if let Some(s6) = options.subnet6 {
            self.check_new_subnet6(s6, subnet)?;
        }
        let net = Network {
            name: name.to_owned(),
            bridge,
            subnet,
            gateway: subnet.nth(1).expect("a /30 or larger has .1"),
            subnet6: options.subnet6,
            gateway6: options.subnet6.and_then(|s| s.nth(1)),
            mtu: options.mtu,
        };
        write_json(&self.network_file(name), &net)?;
        Ok(net)
    }

    /// An IPv6 subnet must fit `subnet` ([`check_subnet6`]) and be unique
    /// among the networks.
    fn check_new_subnet6(&self, s6: Subnet6, subnet: Subnet) -> Result<(), NetError> {
        check_subnet6(s6, subnet)?;
        let others = self.list()?.into_iter().filter_map(|n| n.subnet6);
        if let Some(t) = others.into_iter().find(|t| t.overlaps(&s6)) {
            return Err(NetError::Invalid(format!(
                "IPv6 subnet {s6}: overlaps {t} already in use"
            )));
        }
        Ok(())
    }

    /// The network `name`.
    pub fn get(&self, name: &str) -> Result<Network, NetError> {
        // The name becomes a path under the store: never one with `/` or `..`.
        validate_name(name)?;
        read_json(&self.network_file(name))?.ok_or_else(|| NetError::NoSuchNetwork(name.to_owned()))
    }

    /// The default network, created on first use.
    pub fn default_network(&self) -> Result<Network, NetError> {
        let _lock = self.lock()?;
        match self.get(DEFAULT_NETWORK) {
            Err(NetError::NoSuchNetwork(_)) => {
                self.create_locked(DEFAULT_NETWORK, &NetworkOptions::default())
            }
            r => r,
        }
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<Network>, NetError> {
        let mut nets: Vec<Network> = list_json(&self.dir.join("networks"))?;
        nets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nets)
    }

    /// Every attachment (optionally only those of one network).
    pub fn attachments(&self, network: Option<&str>) -> Result<Vec<Attachment>, NetError> {
        let all: Vec<Attachment> = list_json(&self.dir.join("attachments"))?;
        Ok(all
            .into_iter()
            .filter(|a| network.is_none_or(|n| a.network == n))
            .collect())
    }

    /// Removes a network without containers: its bridge, rules and leases.
    pub fn remove(&self, name: &str) -> Result<(), NetError> {
        let _lock = self.lock()?;
        let net = match self.get(name) {
            // An overlay create killed before the network's record: what
            // it made is all the overlay's, found from its state directory
            // (only for a valid name: no path of another directory).
            Err(NetError::NoSuchNetwork(_))
                if validate_name(name).is_ok()
                    && crate::overlay::state_dir(self, name).exists() =>
            {
                crate::overlay::teardown(self, name)?;
                return Ok(crate::dns::remove_state(&self.dir, name)?);
            }
            r => r?,
        };
        let users: Vec<String> = self
            .attachments(Some(name))?
            .into_iter()
            .map(|a| a.container)
            .collect();
        if !users.is_empty() {
            return Err(NetError::NetworkInUse {
                name: name.to_owned(),
                containers: users,
            });
        }
        // Its resolver first: it listens on the bridge about to go.
        crate::dns::stop(&self.dir, name)?;
        // An overlay network's agent, its VXLAN device and its lease.
        crate::overlay::teardown(self, name)?;
        let mut nl = Route::open()?;
        link::delete(&mut nl, &net.bridge)?;
        self.firewall().remove_network(&net.bridge, net.subnet)?;
        if let Some(s6) = net.subnet6 {
            self.firewall().remove_network(&net.bridge, s6)?;
        }
        remove_file(&self.firewall_marker(&net))?;
        self.ipam(&net).destroy()?;
        remove_json(&self.network_file(name))?;
        Ok(crate::dns::remove_state(&self.dir, name)?)
    }

    /// Connects the container whose network namespace is `netns` to `net` as
    /// `ifname`, publishing `ports`. On error nothing of it is left.
    pub fn attach(
        &self,
        net: &Network,
        container: &str,
        ifname: &str,
        netns: &Path,
        ports: &[PortMapping],
        state_root: Option<&Path>,
    ) -> Result<Attachment, NetError> {
        let ns = File::open(netns).map_err(NetError::io(format!(
            "open network namespace {}",
            netns.display()
        )))?;
        let _lock = self.lock()?;
        self.check_ports(ports)?;
        let ip = self.ipam(net).allocate(container)?;
        let att = Attachment {
            network: net.name.clone(),
            container: container.to_owned(),
            ifname: ifname.to_owned(),
            host_veth: veth_name(container, ifname),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
            ip6: net.ipv6_of(ip),
            gateway6: net.gateway6,
            ports: ports.to_vec(),
            published: false,
            state_root: state_root.map(Path::to_path_buf),
        };
        // Recorded first, so a crash half-way leaves something to detach.
        let file = self.attachment_file(container, ifname);
        write_json(&file, &att)?;
        let wired = self.wire(net, &att, &ns).and_then(|()| {
            let done = Attachment {
                published: true,
                ..att
            };
            write_json(&file, &done).map(|()| done)
        });
        if wired.is_err() {
            let _ = self.detach_locked(container, ifname);
        }
        wired
    }

    fn wire(&self, net: &Network, att: &Attachment, ns: &File) -> Result<(), NetError> {
        self.wire_steps(net, att, ns, WIRE_STEPS)
    }

    /// The first `steps` of [`WIRE_STEPS`] wiring steps: bridge and firewall
    /// rules, veth pair, container side, published ports. (Tests stop after
    /// each step to check that a crash there is undone by the next detach.)
    fn wire_steps(
        &self,
        net: &Network,
        att: &Attachment,
        ns: &File,
        steps: usize,
    ) -> Result<(), NetError> {
        let mut nl = Route::open()?;
        if steps < 1 {
            return Ok(());
        }
        let bridge = self.prepare_bridge(&mut nl, net)?;
        if steps < 2 {
            return Ok(());
        }
        link::create_veth(&mut nl, &att.host_veth, &att.ifname, ns.as_fd(), net.mtu)?;
        let host = link::index(&mut nl, &att.host_veth)?
            .ok_or_else(|| NetError::Missing(att.host_veth.clone()))?;
        link::attach(&mut nl, host, bridge, &att.host_veth)?;
        link::set_hairpin(&mut nl, host, &att.host_veth)?;
        if steps < 3 {
            return Ok(());
        }
        netns::within(ns, || {
            let mut inner = Route::open()?;
            let lo =
                link::index(&mut inner, "lo")?.ok_or_else(|| NetError::Missing("lo".into()))?;
            link::set_up(&mut inner, lo, "lo")?;
            let eth = link::index(&mut inner, &att.ifname)?
                .ok_or_else(|| NetError::Missing(att.ifname.clone()))?;
            link::add_address(&mut inner, eth, att.ip.into(), att.prefix)?;
            if let (Some(ip6), Some(s6)) = (att.ip6, net.subnet6) {
                link::add_address(&mut inner, eth, ip6.into(), s6.prefix)?;
            }
            link::set_up(&mut inner, eth, &att.ifname)?;
            link::add_default_route(&mut inner, att.gateway.into(), eth)?;
            match att.gateway6 {
                Some(gw6) => link::add_default_route(&mut inner, gw6.into(), eth),
                None => Ok(()),
            }
        })?;
        if steps < 4 {
            return Ok(());
        }
        for ip in att.addresses() {
            match self.firewall().add_ports(ip, &att.ports) {
                // The table went away behind our back (the marker says it
                // was there): put the network's rules back, then publish.
                Err(e) if e.errno() == Some(libc::ENOENT) => {
                    self.ensure_firewall(net)?;
                    self.firewall().add_ports(ip, &att.ports)?;
                }
                r => r?,
            }
        }
        Ok(())
    }

    /// The network's bridge with its gateways, forwarding on and its
    /// firewall rules in place; returns the bridge's index.
    pub(crate) fn prepare_bridge(&self, nl: &mut Route, net: &Network) -> Result<u32, NetError> {
        let mut gateways = vec![(IpAddr::V4(net.gateway), net.subnet.prefix)];
        if let (Some(gw6), Some(s6)) = (net.gateway6, net.subnet6) {
            gateways.push((IpAddr::V6(gw6), s6.prefix));
            sysctl::enable_ipv6_forwarding()?;
        }
        let bridge = link::ensure_bridge(nl, &net.bridge, &gateways)?;
        if let Some(mtu) = net.mtu {
            link::set_mtu(nl, bridge, &net.bridge, mtu)?;
        }
        sysctl::enable_forwarding(&net.bridge)?;
        if !self.firewall_marker(net).exists() {
            self.ensure_firewall(net)?;
        }
        Ok(bridge)
    }

    /// Records that `net`'s firewall rules are in place, so later attaches
    /// skip re-reading the ruleset (which costs ~10 ms here).
    fn firewall_marker(&self, net: &Network) -> PathBuf {
        self.dir.join("firewall").join(&net.name)
    }

    /// Makes the network's rules right and records it.
    fn ensure_firewall(&self, net: &Network) -> Result<(), NetError> {
        // An overlay network's containers reach those of its other hosts,
        // anywhere in its range, unmasqueraded.
        let inside = crate::overlay::range_of(self, &net.name)?.unwrap_or(net.subnet);
        self.firewall()
            .ensure_network_within(&net.bridge, net.subnet.into(), inside.into())?;
        if let Some(s6) = net.subnet6 {
            self.firewall().ensure_network(&net.bridge, s6)?;
        }
        let marker = self.firewall_marker(net);
        let dir = marker.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&marker, net.subnet.to_string()))
            .map_err(NetError::io(format!("write {}", marker.display())))
    }

    /// Removes everything of the container's attachment: published ports,
    /// their conntrack entries, the veth pair, the lease, the record. A
    /// second call, or one after the namespace or veth is gone, succeeds.
    pub fn detach(&self, container: &str, ifname: &str) -> Result<(), NetError> {
        let _lock = self.lock()?;
        self.detach_locked(container, ifname)
    }

    fn detach_locked(&self, container: &str, ifname: &str) -> Result<(), NetError> {
        let file = self.attachment_file(container, ifname);
        let Some(att) = read_json::<Attachment>(&file)? else {
            return self.release_orphan_leases(container);
        };
        // One netfilter socket for the firewall and conntrack steps, closed
        // only once the veth is gone: closing it waits for the kernel to free
        // the deleted map elements (an RCU grace period), which so overlaps
        // the veth deletion's own wait instead of adding to it.
        let mut nf = NfSocket::open()?;
        let fw = self.firewall();
        // Ports this attachment published are deleted directly; otherwise
        // (or if some are gone) each is checked to still point at this
        // container before it goes.
        for ip in att.addresses() {
            if !att.published || fw.unpublish_on(&mut nf, ip, &att.ports).is_err() {
                fw.remove_ports_on(&mut nf, ip, &att.ports)?;
            }
            conntrack::flush_on(&mut nf, ip)?;
        }
        let mut nl = Route::open()?;
        link::delete(&mut nl, &att.host_veth)?;
        drop(nf);
        if let Ok(net) = self.get(&att.network) {
            self.ipam(&net).release(container)?;
        }
        remove_json(&file)?;
        Ok(crate::dns::Member::remove(
            &self.dir,
            &att.network,
            container,
        )?)
    }

    /// Releases the leases and resolver names of `container` when it has
    /// no attachment record at all: a connect killed between them and its
    /// record leaves them, which no record names. (Under the store's lock, so no attach of
    /// it is under way.)
    fn release_orphan_leases(&self, container: &str) -> Result<(), NetError> {
        let prefix = format!("{container}.");
        let recorded = std::fs::read_dir(self.dir.join("attachments"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
        if recorded {
            return Ok(());
        }
        for net in self.list()? {
            if self.leases.join(&net.name).exists() {
                self.ipam(&net).release(container)?;
            }
            // A connect killed after it recorded the container's names for
            // the resolver and before the attachment: the names go too.
            crate::dns::Member::remove(&self.dir, &net.name, container)?;
        }
        Ok(())
    }

    /// Frees the veth of a container interface whose processes a
    /// checkpoint ended, now rather than when the kernel gets round to
    /// the dead namespace (its name must be free for the restore). The
    /// lease, published ports and their conntrack entries stay, for the
    /// restore: an established connection goes on through them.
    pub fn checkpointed(&self, container: &str, ifname: &str) -> Result<(), NetError> {
        let file = self.attachment_file(container, ifname);
        let att = read_json::<Attachment>(&file)?
            .ok_or_else(|| NetError::Missing(format!("{container}'s attachment")))?;
        link::delete(&mut Route::open()?, &att.host_veth)
    }

    /// Sets on the host end of a container interface that a restore
    /// recreated (CRIU puts it back on the bridge, up) what CRIU does not
    /// keep: hairpin mode. The lease and published ports were never let go.
    pub fn restored(&self, container: &str, ifname: &str) -> Result<(), NetError> {
        let file = self.attachment_file(container, ifname);
        let att = read_json::<Attachment>(&file)?
            .ok_or_else(|| NetError::Missing(format!("{container}'s attachment")))?;
        let mut nl = Route::open()?;
        let host = link::index(&mut nl, &att.host_veth)?
            .ok_or_else(|| NetError::Missing(att.host_veth.clone()))?;
        link::set_hairpin(&mut nl, host, &att.host_veth)
    }

    /// A published port must be free: not claimed by another container and
    /// not bound by a host socket.
    fn check_ports(&self, ports: &[PortMapping]) -> Result<(), NetError> {
        let claimed: Vec<PortMapping> = self
            .attachments(None)?
            .into_iter()
            .flat_map(|a| a.ports)
            .collect();
        for (i, p) in ports.iter().enumerate() {
            let clash = |q: &PortMapping| {
                q.host_port == p.host_port
                    && q.protocol == p.protocol
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            };
            if claimed.iter().chain(&ports[..i]).any(clash) {
                return Err(NetError::PortInUse(p.to_string()));
            }
            let addr = (p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
            let free = match p.protocol {
                Protocol::Tcp => TcpListener::bind(addr).is_ok(),
                Protocol::Udp => UdpSocket::bind(addr).is_ok(),
            };
            if !free {
                return Err(NetError::PortInUse(p.to_string()));
            }
        }
        Ok(())
    }
}

/// Whether `s6` can be the IPv6 subnet of a network on `subnet`, as far as
/// no other network matters: it holds a twin of every IPv4 address of
/// `subnet` and is not multicast, link-local or in `::/8`.
pub fn check_subnet6(s6: Subnet6, subnet: Subnet) -> Result<(), NetError> {
    let bad = |why: String| Err(NetError::Invalid(format!("IPv6 subnet {s6}: {why}")));
    if 128 - u32::from(s6.prefix) < 32 - u32::from(subnet.prefix) {
        return bad(format!(
            "too small for {subnet} (needs a /{} or larger)",
            96 + subnet.prefix
        ));
    }
    let special: [Subnet6; 3] = ["ff00::/8", "fe80::/10", "::/8"].map(|s| s.parse().unwrap());
    if let Some(r) = special.iter().find(|r| r.overlaps(&s6)) {
        return bad(format!("overlaps the reserved range {r}"));
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!(
            "network name {name:?}: use letters, digits, _ - ."
        )))
    }
}

/// `hull0` for the default network, else `hull-<name>` where that fits
/// IFNAMSIZ; a longer name keeps its first letters and gets a hash of the
/// whole name, so two networks whose names share their start do not share
/// a bridge (`hull-rel-a-c2f91b`).
fn bridge_name(network: &str) -> String {
    if network == DEFAULT_NETWORK {
        return "hull0".to_owned();
    }
    let n = format!("hull-{network}");
    if n.len() <= 15 {
        return n;
    }
    format!(
        "hull-{}-{:06x}",
        &network[..3],
        fnv1a(network.as_bytes()) & 0xff_ffff
    )
}

/// FNV-1a: stable across builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Refuses the ranges no network may use: "this" network, loopback,
/// link-local, multicast and the reserved class E.
fn check_not_reserved(s: Subnet) -> Result<(), NetError> {
    let reserved = [
        "0.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ];
    match reserved
        .iter()
        .map(|r| r.parse::<Subnet>().expect("a valid range"))
        .find(|r| r.overlaps(&s))
    {
        Some(r) => Err(NetError::Invalid(format!(
            "subnet {s} overlaps the reserved range {r}"
        ))),
        None => Ok(()),
    }
}

/// A short, stable host-side veth name for a container interface.
pub fn veth_name(container: &str, ifname: &str) -> String {
    let key: Vec<u8> = container.bytes().chain([0]).chain(ifname.bytes()).collect();
    format!("vhull{:08x}", fnv1a(&key))
}

/// The first /24 of the private pool that overlaps nothing in `taken`.
fn pick_subnet(taken: &[Subnet]) -> Result<Subnet, NetError> {
    let pool = (17..=31)
        .map(|b| Ipv4Addr::new(172, b, 0, 0))
        .chain((0..=255).map(|b| Ipv4Addr::new(10, 200, b, 0)));
    pool.filter_map(|a| Subnet::new(a, if a.octets()[0] == 172 { 16 } else { 24 }).ok())
        .find(|s| !taken.iter().any(|t| t.prefix > 0 && t.overlaps(s)))
        .ok_or(NetError::NoSubnet)
}

/// Destinations of the host's IPv4 routes (main table).
fn host_routes() -> Result<Vec<Subnet>, NetError> {
    let mut nl = Route::open()?;
    nl.ipv4_route_destinations()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, NetError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| NetError::Invalid(format!("corrupt {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NetError::io(format!("read {}", path.display()))(e)),
    }
}

fn list_json<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>, NetError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io(format!("read {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        if e.path().extension().is_some_and(|x| x == "json") {
            if let Some(v) = read_json(&e.path())? {
                out.push(v);
            }
        }
    }
    Ok(out)
}

fn remove_file(path: &Path) -> Result<(), NetError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(NetError::io(format!("remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
