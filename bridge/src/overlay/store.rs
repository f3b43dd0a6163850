//! The hosts' shared view of an overlay network, in etcd (v3 API):
//!
//! ```text
//! /hull/overlay/<net>/config                  {"subnet","node_prefix","vni","port"}: the same on every host
//! /hull/overlay/<net>/subnets/10.250.3.0-24   {"underlay","vtep_mac","host"}: one per host, on its lease
//! /hull/overlay/<net>/dns/10.250.3.0-24/<id>  {"container","addresses","aliases",...}: that host's
//!                                             containers' DNS names, on the same lease
//! ```
//!
//! A host leases its node subnet by creating its key (a transaction that
//! fails if the key exists) attached to an etcd lease with a TTL; the agent
//! keeps the lease alive. A host that dies stops doing so, etcd deletes
//! the key when the TTL runs out, and the other hosts see it go.
//!
//! The client is async (tonic); hull is not, so [`EtcdStore`] runs each call
//! on a runtime of its own and bounds every call by a timeout: a store that
//! cannot be reached is an error after a few seconds, never a hang.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, LeaseKeepAliveStream, LeaseKeeper,
    PutOptions, Txn, TxnOp, WatchOptions, WatchStream,
};
use serde::{Deserialize, Serialize};

use super::error::OverlayError;
use crate::dns::RemoteMember;
use crate::Subnet;

/// How long one call to the store may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// TTL of a host's lease: how long a dead host keeps its subnet.
pub const LEASE_TTL: i64 = 10;

/// The options every host of a network must agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayConfig {
    /// The network's whole range; node subnets are cut from it.
    pub subnet: Subnet,
    /// Prefix length of each host's node subnet.
    pub node_prefix: u8,
    pub vni: u32,
    /// The VXLAN UDP port.
    pub port: u16,
}

impl OverlayConfig {
    /// Checks that node subnets fit the range and the VNI fits 24 bits.
    pub fn validate(&self) -> Result<(), OverlayError> {
        let bad = |why: String| Err(OverlayError::Invalid(why));
        if self.node_prefix < self.subnet.prefix || self.node_prefix > 30 {
            return bad(format!(
                "--node-prefix {} must be between the subnet's /{} and /30",
                self.node_prefix, self.subnet.prefix
            ));
        }
        if self.vni == 0 || self.vni >= 1 << 24 {
            return bad(format!("--vni {} must be 1-16777215", self.vni));
        }
        if self.port == 0 {
            return bad("--vxlan-port must not be 0".into());
        }
        Ok(())
    }
}

/// What a host publishes about itself under its node subnet's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The host's underlay address: where VXLAN packets for it go.
    pub underlay: Ipv4Addr,
    /// The MAC of the host's VXLAN device.
    pub vtep_mac: String,
    /// The host's name, for people reading `network inspect`.
    pub host: String,
}

/// One host of the network, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub subnet: Subnet,
    pub record: PeerRecord,
    pub lease: i64,
}

/// The node subnets of `range` of length `node_prefix`, lowest first,
/// skipping those in `taken`.
pub fn free_subnets(
    range: Subnet,
    node_prefix: u8,
    taken: &[Subnet],
) -> impl Iterator<Item = Subnet> + '_ {
    let count = 1u64 << (node_prefix - range.prefix);
    let step = 1u64 << (32 - node_prefix);
    (0..count)
        .filter_map(move |i| {
            let addr = u64::from(u32::from(range.addr)) + i * step;
            Subnet::new(Ipv4Addr::from(addr as u32), node_prefix).ok()
        })
        .filter(move |s| !taken.contains(s))
}

/// `10.250.3.0/24` as a key's last part: `10.250.3.0-24`.
fn subnet_key(s: Subnet) -> String {
    format!("{}-{}", s.addr, s.prefix)
}

fn parse_subnet_key(k: &str) -> Option<Subnet> {
    let (a, p) = k.rsplit_once('-')?;
    Subnet::new(a.parse().ok()?, p.parse().ok()?).ok()
}

/// The etcd address of `--store etcd://HOST:PORT`, checked.
pub fn parse_endpoint(store: &str) -> Result<String, OverlayError> {
    let bad = || OverlayError::BadEndpoint(store.to_owned());
    let rest = store.strip_prefix("etcd://").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || rest.contains('/') {
        return Err(bad());
    }
    Ok(rest.to_owned())
}

/// The socket address of endpoint `HOST:PORT`.
pub fn resolve(endpoint: &str) -> Result<SocketAddr, OverlayError> {
    endpoint
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| OverlayError::BadEndpoint(format!("etcd://{endpoint}")))
}

/// A connection to the store, for one network.
pub struct EtcdStore {
    rt: tokio::runtime::Runtime,
    client: Client,
    endpoint: String,
    prefix: String,
}

impl EtcdStore {
    /// Connects to `endpoint` (`HOST:PORT`) and checks that it answers.
    pub fn connect(endpoint: &str, network: &str) -> Result<Self, OverlayError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| OverlayError::Store {
                endpoint: endpoint.to_owned(),
                why: format!("runtime: {e}"),
            })?;
        let options = ConnectOptions::new()
            .with_connect_timeout(CALL_TIMEOUT)
            .with_timeout(CALL_TIMEOUT);
        let url = format!("http://{endpoint}");
        let connect = Client::connect([url], Some(options));
        let client = bounded(&rt, endpoint, connect)?;
        let mut store = Self {
            rt,
            client,
            endpoint: endpoint.to_owned(),
            prefix: format!("/hull/overlay/{network}/"),
        };
        // The channel connects lazily: one read shows the store answers.
        store.get_config()?;
        Ok(store)
    }

    fn call<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, etcd_client::Error>,
    ) -> Result<T, OverlayError> {
        let client = &mut self.client;
        bounded(&self.rt, &self.endpoint, f(client))
    }

    fn config_key(&self) -> String {
        format!("{}config", self.prefix)
    }

    fn subnets_prefix(&self) -> String {
        format!("{}subnets/", self.prefix)
    }

    fn subnet_key(&self, s: Subnet) -> String {
        format!("{}{}", self.subnets_prefix(), subnet_key(s))
    }

    fn dns_prefix(&self) -> String {
        format!("{}dns/", self.prefix)
    }

    fn dns_host_prefix(&self, s: Subnet) -> String {
        format!("{}{}/", self.dns_prefix(), subnet_key(s))
    }

    fn get_config(&mut self) -> Result<Option<OverlayConfig>, OverlayError> {
        let key = self.config_key();
        let resp = self.call(async |c| c.get(key, None).await)?;
        match resp.kvs().first() {
            None => Ok(None),
            Some(kv) => serde_json::from_slice(kv.value())
                .map(Some)
                .map_err(|e| self.corrupt(kv.key_str().unwrap_or("config"), e)),
        }
    }

    fn corrupt(&self, key: &str, e: serde_json::Error) -> OverlayError {
        OverlayError::Store {
            endpoint: self.endpoint.clone(),
            why: format!("corrupt {key}: {e}"),
        }
    }

    /// Records `config` as the network's, or checks that it is the one
    /// another host recorded.
    pub fn ensure_config(
        &mut self,
        network: &str,
        config: &OverlayConfig,
    ) -> Result<(), OverlayError> {
        let key = self.config_key();
        let value = serde_json::to_vec(config).expect("serializable");
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        if self.call(async |c| c.txn(txn).await)?.succeeded() {
            return Ok(());
        }
        let theirs = self.get_config()?;
        match theirs {
            Some(t) if &t == config => Ok(()),
            Some(t) => Err(OverlayError::Mismatch {
                network: network.to_owned(),
                why: format!(
                    "subnet {} node prefix /{} VNI {} port {} (given: {} /{} {} {})",
                    t.subnet,
                    t.node_prefix,
                    t.vni,
                    t.port,
                    config.subnet,
                    config.node_prefix,
                    config.vni,
                    config.port
                ),
            }),
            // Removed in between by the last host leaving: try again.
            None => self.ensure_config(network, config),
        }
    }

    /// Grants a lease of [`LEASE_TTL`] seconds.
    pub fn grant(&mut self) -> Result<i64, OverlayError> {
        Ok(self
            .call(async |c| c.lease_grant(LEASE_TTL, None).await)?
            .id())
    }

    /// Whether lease `id` is still alive.
    pub fn alive(&mut self, id: i64) -> Result<bool, OverlayError> {
        Ok(self
            .call(async |c| c.lease_time_to_live(id, None).await)?
            .ttl()
            > 0)
    }

    /// Every host of the network, by node subnet.
    pub fn peers(&mut self) -> Result<Vec<Peer>, OverlayError> {
        let prefix = self.subnets_prefix();
        let opts = GetOptions::new().with_prefix();
        let resp = self.call(async |c| c.get(prefix.clone(), Some(opts)).await)?;
        let mut out = Vec::new();
        for kv in resp.kvs() {
            let key = kv.key_str().unwrap_or_default();
            let Some(subnet) = key.strip_prefix(&prefix).and_then(parse_subnet_key) else {
                continue;
            };
            let record = serde_json::from_slice(kv.value()).map_err(|e| self.corrupt(key, e))?;
            out.push(Peer {
                subnet,
                record,
                lease: kv.lease(),
            });
        }
        Ok(out)
    }

    /// Leases the lowest free node subnet of `config`'s range for
    /// `record` on lease `lease`.
    pub fn claim_free(
        &mut self,
        config: &OverlayConfig,
        lease: i64,
        record: &PeerRecord,
    ) -> Result<Subnet, OverlayError> {
        loop {
            let taken: Vec<Subnet> = self.peers()?.into_iter().map(|p| p.subnet).collect();
            let Some(subnet) = free_subnets(config.subnet, config.node_prefix, &taken).next()
            else {
                return Err(OverlayError::RangeFull {
                    range: config.subnet,
                    node_prefix: config.node_prefix,
                });
            };
            if self.create(subnet, lease, record)? {
                return Ok(subnet);
            }
            // Another host took it between the read and the write.
        }
    }

    /// Creates `subnet`'s key if missing; whether it did.
    fn create(
        &mut self,
        subnet: Subnet,
        lease: i64,
        record: &PeerRecord,
    ) -> Result<bool, OverlayError> {
        let key = self.subnet_key(subnet);
        let value = serde_json::to_vec(record).expect("serializable");
        let put = PutOptions::new().with_lease(lease);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, Some(put))]);
        Ok(self.call(async |c| c.txn(txn).await)?.succeeded())
    }

    /// Writes `record` under `subnet` on lease `lease` when the key is
    /// free or already this host's (same underlay address): after a lease
    /// ran out, or with a new VTEP MAC.
    pub fn reclaim(
        &mut self,
        subnet: Subnet,
        lease: i64,
        record: &PeerRecord,
    ) -> Result<(), OverlayError> {
        loop {
            let current = self.peers()?.into_iter().find(|p| p.subnet == subnet);
            let Some(current) = current else {
                if self.create(subnet, lease, record)? {
                    return Ok(());
                }
                continue;
            };
            if current.record.underlay != record.underlay {
                return Err(OverlayError::SubnetTaken {
                    subnet,
                    by: current.record.underlay,
                });
            }
            if current.lease == lease && &current.record == record {
                return Ok(());
            }
            let key = self.subnet_key(subnet);
            let old = serde_json::to_vec(&current.record).expect("serializable");
            let value = serde_json::to_vec(record).expect("serializable");
            let put = PutOptions::new().with_lease(lease);
            let txn = Txn::new()
                .when([Compare::value(key.clone(), CompareOp::Equal, old)])
                .and_then([TxnOp::put(key, value, Some(put))]);
            if self.call(async |c| c.txn(txn).await)?.succeeded() {
                return Ok(());
            }
        }
    }

    /// Revokes lease `id` (deleting its keys); fine if it ran out.
    pub fn revoke(&mut self, id: i64) -> Result<(), OverlayError> {
        match self.call(async |c| c.lease_revoke(id).await) {
            Ok(_) => Ok(()),
            Err(OverlayError::Store { why, .. }) if why.contains("not found") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Withdraws this host: revokes its lease (which deletes its keys) and
    /// deletes its subnet's key too (in case it is on another lease), then
    /// the network's config when no host is left. Either may be unknown
    /// (a create killed before it had them).
    pub fn withdraw(
        &mut self,
        subnet: Option<Subnet>,
        lease: Option<i64>,
    ) -> Result<(), OverlayError> {
        if let Some(lease) = lease {
            self.revoke(lease)?;
        }
        if let Some(subnet) = subnet {
            let key = self.subnet_key(subnet);
            self.call(async |c| c.delete(key, None).await)?;
        }
        let prefix = self.subnets_prefix();
        let config = self.config_key();
        // Only if no subnet key exists (no host left) at this revision.
        let none_left = Compare::create_revision(prefix.clone(), CompareOp::Equal, 0).with_prefix();
        let txn = Txn::new()
            .when([none_left])
            .and_then([TxnOp::delete(config, None)]);
        self.call(async |c| c.txn(txn).await)?;
        Ok(())
    }

    /// Every host's published containers, by the host's node subnet.
    pub fn dns_members(&mut self) -> Result<Vec<(Subnet, RemoteMember)>, OverlayError> {
        let prefix = self.dns_prefix();
        let opts = GetOptions::new().with_prefix();
        let resp = self.call(async |c| c.get(prefix.clone(), Some(opts)).await)?;
        let mut out = Vec::new();
        for kv in resp.kvs() {
            let key = kv.key_str().unwrap_or_default();
            let Some(subnet) = key
                .strip_prefix(&prefix)
                .and_then(|k| k.split_once('/'))
                .and_then(|(s, _)| parse_subnet_key(s))
            else {
                continue;
            };
            let member = serde_json::from_slice(kv.value()).map_err(|e| self.corrupt(key, e))?;
            out.push((subnet, member));
        }
        Ok(out)
    }

    /// Makes the containers published for node subnet `node` exactly
    /// `members`, each on lease `lease` (so they go with the host).
    pub fn publish_members(
        &mut self,
        node: Subnet,
        lease: i64,
        members: &[RemoteMember],
    ) -> Result<(), OverlayError> {
        let prefix = self.dns_host_prefix(node);
        let opts = GetOptions::new().with_prefix().with_keys_only();
        let resp = self.call(async |c| c.get(prefix.clone(), Some(opts)).await)?;
        let wanted: Vec<String> = members
            .iter()
            .map(|m| format!("{prefix}{}", m.container))
            .collect();
        let stale: Vec<String> = resp
            .kvs()
            .iter()
            .filter_map(|kv| kv.key_str().ok())
            .filter(|k| !wanted.iter().any(|w| w == k))
            .map(str::to_owned)
            .collect();
        for key in stale {
            self.call(async |c| c.delete(key, None).await)?;
        }
        for (key, m) in wanted.into_iter().zip(members) {
            let value = serde_json::to_vec(m).expect("serializable");
            let put = PutOptions::new().with_lease(lease);
            self.call(async |c| c.put(key, value, Some(put)).await)?;
        }
        Ok(())
    }

    /// Deletes every key of the network (tests clean up with it).
    #[cfg(test)]
    pub fn purge(&mut self) -> Result<(), OverlayError> {
        let prefix = self.prefix.clone();
        let opts = etcd_client::DeleteOptions::new().with_prefix();
        self.call(async |c| c.delete(prefix, Some(opts)).await)?;
        Ok(())
    }

    /// Starts keeping lease `id` alive: the keeper sends, the stream
    /// answers with the lease's remaining TTL.
    pub fn keep_alive(
        &mut self,
        id: i64,
    ) -> Result<(LeaseKeeper, LeaseKeepAliveStream), OverlayError> {
        self.call(async |c| c.lease_keep_alive(id).await)
    }

    /// Sends one keep-alive on `keeper` and reads the answer: whether the
    /// lease is still alive.
    pub fn renew(
        &mut self,
        keeper: &mut LeaseKeeper,
        stream: &mut LeaseKeepAliveStream,
    ) -> Result<bool, OverlayError> {
        bounded(&self.rt, &self.endpoint, async {
            keeper.keep_alive().await?;
            Ok(stream.message().await?.is_some_and(|r| r.ttl() > 0))
        })
    }

    /// Watches the network's keys: its hosts and their containers.
    pub fn watch(&mut self) -> Result<WatchStream, OverlayError> {
        let prefix = self.prefix.clone();
        let opts = WatchOptions::new().with_prefix();
        self.call(async |c| c.watch(prefix, Some(opts)).await)
    }

    /// Waits up to `wait` for an event on `stream`: `Ok(true)` if one came,
    /// `Ok(false)` on timeout, an error if the stream broke.
    pub fn next_event(
        &mut self,
        stream: &mut WatchStream,
        wait: Duration,
    ) -> Result<bool, OverlayError> {
        let endpoint = self.endpoint.clone();
        match self
            .rt
            .block_on(async { tokio::time::timeout(wait, stream.message()).await })
        {
            Err(_) => Ok(false),
            Ok(Ok(Some(_))) => Ok(true),
            Ok(Ok(None)) => Err(OverlayError::Store {
                endpoint,
                why: "the watch ended".into(),
            }),
            Ok(Err(e)) => Err(OverlayError::Store {
                endpoint,
                why: e.to_string(),
            }),
        }
    }
}

/// Runs `f` on `rt`, for at most [`CALL_TIMEOUT`].
fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, OverlayError> {
    // The timer is made inside the runtime, whose clock it needs.
    match rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await }) {
        Err(_) => Err(OverlayError::Unreachable {
            endpoint: endpoint.to_owned(),
            secs: CALL_TIMEOUT.as_secs(),
        }),
        Ok(Err(e)) => Err(OverlayError::Store {
            endpoint: endpoint.to_owned(),
            why: e.to_string(),
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_subnets_lowest_free_first() {
        let range: Subnet = "10.250.0.0/22".parse().unwrap();
        let all: Vec<String> = free_subnets(range, 24, &[])
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            all,
            [
                "10.250.0.0/24",
                "10.250.1.0/24",
                "10.250.2.0/24",
                "10.250.3.0/24"
            ]
        );
        let taken = [
            "10.250.0.0/24".parse().unwrap(),
            "10.250.2.0/24".parse().unwrap(),
        ];
        let free: Vec<String> = free_subnets(range, 24, &taken)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(free, ["10.250.1.0/24", "10.250.3.0/24"]);
        assert_eq!(free_subnets(range, 22, &[]).count(), 1);
    }

    #[test]
    fn keys_and_endpoints() {
        let s: Subnet = "10.250.3.0/24".parse().unwrap();
        assert_eq!(subnet_key(s), "10.250.3.0-24");
        assert_eq!(parse_subnet_key("10.250.3.0-24"), Some(s));
        assert_eq!(parse_subnet_key("junk"), None);
        assert_eq!(
            parse_endpoint("etcd://10.0.0.1:2379").unwrap(),
            "10.0.0.1:2379"
        );
        for bad in [
            "10.0.0.1:2379",
            "etcd://10.0.0.1",
            "etcd://:2379",
            "etcd://h:x",
            "etcd://h:1/p",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_checks() {
        let ok = OverlayConfig {
            subnet: "10.250.0.0/16".parse().unwrap(),
            node_prefix: 24,
            vni: 42,
            port: 4789,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            OverlayConfig {
                node_prefix: 8,
                ..ok.clone()
            },
            OverlayConfig {
                node_prefix: 31,
                ..ok.clone()
            },
            OverlayConfig {
                vni: 0,
                ..ok.clone()
            },
            OverlayConfig {
                vni: 1 << 24,
                ..ok.clone()
            },
            OverlayConfig {
                port: 0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
