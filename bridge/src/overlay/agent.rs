//! The per-host agent of an overlay network (`hull network agent NET`):
//! keeps this host's lease alive and makes the VXLAN device's routes,
//! neighbour and FDB entries match the other hosts in the store.
//!
//! Everything it programs is found again from the kernel (all of it is on
//! the network's own device), not from memory: an agent killed at any
//! point and started again removes what is stale and adds what is missing.
//! It reacts to the store's watch events at once and resynchronises every
//! few seconds besides. A lease that ran out (the agent was gone longer
//! than its TTL) is replaced and the node subnet claimed again, unless
//! another host took it meanwhile. It also publishes this host's
//! containers' names and hands the other hosts' to the resolver
//! ([`super::names`]). The agent exits when its network's record is gone.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use super::names::Names;
use super::store::{EtcdStore, Peer, PeerRecord, LEASE_TTL};
use super::vxlan::{self, Remote};
use super::{load, save_lease, supervise, OverlayError};
use crate::netlink::Route;
use crate::{link, NetError, Network, Store};

/// How often the device is checked against the store without an event.
const RESYNC: Duration = Duration::from_secs(5);
/// How long to wait before trying again after the store failed.
const RETRY: Duration = Duration::from_secs(1);

/// The remote host `peer` as programmed on the device; `None` while it
/// has not published its VTEP MAC yet.
pub fn remote_of(peer: &Peer) -> Option<Remote> {
    Some(Remote {
        subnet: peer.subnet,
        mac: vxlan::parse_mac(&peer.record.vtep_mac)?,
        underlay: peer.record.underlay,
    })
}

/// Runs the agent of network `name` until the network is removed. With
/// `ready_fd`, reports `ok` there once it has joined the store and
/// programmed the device (or, the store being unreachable, will keep
/// trying), or why it cannot run (and exits).
pub fn run(store: &Store, name: &str, ready_fd: Option<i32>) -> Result<(), NetError> {
    // SAFETY: the fd is the one the starting hull passed us for this.
    let mut ready = ready_fd.map(|fd| unsafe { File::from_raw_fd(fd) });
    let started = Agent::start(store, name);
    let mut agent = match started {
        Ok(a) => a,
        Err(e) => {
            if let Some(r) = ready.as_mut() {
                let _ = r.write_all(e.to_string().as_bytes());
            }
            return Err(e);
        }
    };
    if let Some(mut r) = ready.take() {
        let _ = r.write_all(b"ok");
    }
    agent.serve()
}

/// A running agent.
struct Agent {
    store: Store,
    net: Network,
    device: String,
    endpoint: String,
    me: PeerRecord,
    /// The lease this host's keys are on.
    lease: i64,
    names: Names,
    log: Option<File>,
    /// Held for the agent's lifetime: how others know it runs.
    _pid: nix::fcntl::Flock<File>,
}

impl Agent {
    fn start(store: &Store, name: &str) -> Result<Self, NetError> {
        let pid = supervise::claim(store, name)?;
        let net = store.get(name)?;
        let overlay = load(store, name)?
            .ok_or_else(|| NetError::Invalid(format!("{name} is no overlay network")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(super::state_dir(store, name).join("agent.log"))
            .ok();
        let mut nl = Route::open()?;
        let dev = link::index(&mut nl, &overlay.device)?
            .ok_or_else(|| NetError::Missing(overlay.device.clone()))?;
        let me = PeerRecord {
            underlay: overlay.underlay,
            vtep_mac: vxlan::mac_of(&mut nl, dev)?,
            host: super::hostname(),
        };
        let mut agent = Self {
            store: store.clone(),
            net,
            device: overlay.device,
            endpoint: overlay.store,
            me,
            lease: 0,
            names: Names::default(),
            log,
            _pid: pid,
        };
        match agent.join(&mut nl) {
            // The store being away is no reason not to run (containers
            // of this host still reach each other): serve() tries again.
            Err(NetError::Overlay(
                e @ (OverlayError::Unreachable { .. } | OverlayError::Store { .. }),
            )) => {
                agent.say(&format!("{e}; trying again"));
                Ok(agent)
            }
            r => r.map(|()| agent),
        }
    }

    /// Holds the lease and programs the device once.
    fn join(&mut self, nl: &mut Route) -> Result<(), NetError> {
        let mut etcd = EtcdStore::connect(&self.endpoint, &self.net.name)?;
        self.hold_lease(&mut etcd)?;
        self.sync(&mut etcd, nl)
    }

    fn say(&mut self, what: &str) {
        if let Some(log) = self.log.as_mut() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let _ = writeln!(log, "{t} {what}");
        }
    }

    /// The lease the node subnet is on, alive and holding this host's
    /// record: the recorded one if it still runs, else a new one.
    fn hold_lease(&mut self, etcd: &mut EtcdStore) -> Result<i64, NetError> {
        let name = self.net.name.clone();
        let mut lease = super::lease(&self.store, &name)?;
        if !etcd.alive(lease)? {
            self.say(&format!("lease {lease:x} ran out; taking a new one"));
            lease = etcd.grant()?;
            save_lease(&self.store, &name, lease)?;
        }
        if let Err(e) = etcd.reclaim(self.net.subnet, lease, &self.me) {
            let _ = etcd.revoke(lease);
            return Err(e.into());
        }
        self.lease = lease;
        Ok(lease)
    }

    /// Makes the device's entries match the other hosts in the store.
    fn sync(&mut self, etcd: &mut EtcdStore, nl: &mut Route) -> Result<(), NetError> {
        let remotes: Vec<Remote> = etcd
            .peers()?
            .iter()
            .filter(|p| p.subnet != self.net.subnet)
            .filter_map(remote_of)
            .collect();
        let dev =
            link::index(nl, &self.device)?.ok_or_else(|| NetError::Missing(self.device.clone()))?;
        let now = vxlan::programmed(nl, dev)?;
        let stale = now.stale(&remotes);
        if !stale.is_empty() {
            self.say(&format!("removing {stale:?}"));
            vxlan::remove(nl, dev, &stale)?;
        }
        for r in remotes.iter().filter(|r| !now.has(r)) {
            self.say(&format!("adding {} via {}", r.subnet, r.underlay));
            vxlan::add_remote(nl, dev, r)?;
        }
        self.names.mirror(etcd, &self.store, &self.net)?;
        self.names.publish(etcd, &self.store, &self.net, self.lease)
    }

    /// Serves until the network is removed, starting over after a failure.
    fn serve(&mut self) -> Result<(), NetError> {
        loop {
            if let Err(e) = self.session() {
                self.say(&format!("{e}; trying again"));
                std::thread::sleep(RETRY);
            }
            if self.store.get(&self.net.name).is_err() {
                return Ok(());
            }
        }
    }

    /// One connection to the store: renews the lease every third of its
    /// TTL, syncs on every watch event and every [`RESYNC`], publishes this
    /// host's containers within half a second of a change. Returns when
    /// the network is gone; an error when the store failed.
    fn session(&mut self) -> Result<(), NetError> {
        let mut etcd = EtcdStore::connect(&self.endpoint, &self.net.name)?;
        let mut nl = Route::open()?;
        let mut lease = self.hold_lease(&mut etcd)?;
        let (mut keeper, mut answers) = etcd.keep_alive(lease)?;
        let mut watch = etcd.watch()?;
        self.sync(&mut etcd, &mut nl)?;
        let renew_every = Duration::from_secs((LEASE_TTL / 3).max(1) as u64);
        let (mut renewed, mut synced) = (Instant::now(), Instant::now());
        loop {
            if self.store.get(&self.net.name).is_err() {
                return Ok(());
            }
            let event = etcd.next_event(&mut watch, Duration::from_millis(500))?;
            if renewed.elapsed() >= renew_every {
                if !etcd.renew(&mut keeper, &mut answers)? {
                    self.say(&format!("lease {lease:x} was lost"));
                    lease = self.hold_lease(&mut etcd)?;
                    (keeper, answers) = etcd.keep_alive(lease)?;
                }
                renewed = Instant::now();
            }
            if event || synced.elapsed() >= RESYNC {
                self.sync(&mut etcd, &mut nl)?;
                synced = Instant::now();
            } else {
                self.names
                    .publish(&mut etcd, &self.store, &self.net, self.lease)?;
            }
        }
    }
}
