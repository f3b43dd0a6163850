//! The store's leasing against a real etcd, started by the test on
//! loopback ports of its own (`scripts/deps.sh` installs etcd).

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::store::{EtcdStore, OverlayConfig, PeerRecord};
use super::OverlayError;
use crate::Subnet;

struct Etcd {
    child: Child,
    dir: PathBuf,
    endpoint: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private etcd on 127.0.0.1.
fn etcd(name: &str) -> Etcd {
    assert!(
        std::path::Path::new("/usr/bin/etcd").exists(),
        "etcd is needed: scripts/deps.sh installs etcd-server"
    );
    let dir = std::env::temp_dir().join(format!("hull-test-etcd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let child = Command::new("/usr/bin/etcd")
        .args(["--name", "hull-test", "--data-dir"])
        .arg(&dir)
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .arg("--listen-peer-urls")
        .arg(format!("http://127.0.0.1:{peer}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let etcd = Etcd {
        child,
        dir,
        endpoint: format!("127.0.0.1:{client}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while EtcdStore::connect(&etcd.endpoint, "probe").is_err() {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    etcd
}

fn config(range: &str) -> OverlayConfig {
    OverlayConfig {
        subnet: range.parse().unwrap(),
        node_prefix: 24,
        vni: 42,
        port: 4789,
    }
}

fn host(n: u8) -> PeerRecord {
    PeerRecord {
        underlay: Ipv4Addr::new(192, 0, 2, n),
        vtep_mac: format!("02:00:00:00:00:{n:02x}"),
        host: format!("host{n}"),
    }
}

#[test]
fn hosts_lease_distinct_subnets_until_the_range_is_full() {
    let etcd = etcd("lease");
    let cfg = config("10.250.0.0/23");
    let mut a = EtcdStore::connect(&etcd.endpoint, "n1").unwrap();
    let mut b = EtcdStore::connect(&etcd.endpoint, "n1").unwrap();
    a.ensure_config("n1", &cfg).unwrap();
    b.ensure_config("n1", &cfg).unwrap();
    let other = OverlayConfig {
        vni: 7,
        ..cfg.clone()
    };
    assert!(matches!(
        b.ensure_config("n1", &other),
        Err(OverlayError::Mismatch { .. })
    ));

    let (la, lb) = (a.grant().unwrap(), b.grant().unwrap());
    let sa = a.claim_free(&cfg, la, &host(1)).unwrap();
    let sb = b.claim_free(&cfg, lb, &host(2)).unwrap();
    assert_eq!(sa.to_string(), "10.250.0.0/24");
    assert_eq!(sb.to_string(), "10.250.1.0/24");
    let lc = b.grant().unwrap();
    assert!(matches!(
        b.claim_free(&cfg, lc, &host(3)),
        Err(OverlayError::RangeFull { .. })
    ));
    b.revoke(lc).unwrap();

    let peers = a.peers().unwrap();
    assert_eq!(peers.len(), 2);
    assert!(peers
        .iter()
        .any(|p| p.subnet == sb && p.record == host(2) && p.lease == lb));

    // B's subnet is B's: A cannot take it over; B can update its record.
    assert!(matches!(
        a.reclaim(sb, la, &host(1)),
        Err(OverlayError::SubnetTaken { .. })
    ));
    let moved = PeerRecord {
        vtep_mac: "02:00:00:00:00:99".into(),
        ..host(2)
    };
    b.reclaim(sb, lb, &moved).unwrap();
    assert!(a.peers().unwrap().iter().any(|p| p.record == moved));

    // A revoked lease takes its subnet with it: the subnet is free again.
    a.revoke(la).unwrap();
    assert!(!a.alive(la).unwrap());
    let left: Vec<Subnet> = b.peers().unwrap().iter().map(|p| p.subnet).collect();
    assert_eq!(left, [sb]);
    let la2 = a.grant().unwrap();
    assert_eq!(a.claim_free(&cfg, la2, &host(1)).unwrap(), sa);

    // The last host to withdraw removes the network's config too.
    a.withdraw(Some(sa), Some(la2)).unwrap();
    b.ensure_config("n1", &cfg).unwrap();
    b.withdraw(Some(sb), Some(lb)).unwrap();
    let mut c = EtcdStore::connect(&etcd.endpoint, "n1").unwrap();
    assert!(c.peers().unwrap().is_empty());
    c.ensure_config("n1", &other).unwrap();
    c.purge().unwrap();
}

#[test]
fn a_lease_kept_alive_outlives_its_ttl() {
    let etcd = etcd("keepalive");
    let cfg = config("10.250.0.0/16");
    let mut a = EtcdStore::connect(&etcd.endpoint, "n2").unwrap();
    a.ensure_config("n2", &cfg).unwrap();
    let lease = a.grant().unwrap();
    let subnet = a.claim_free(&cfg, lease, &host(1)).unwrap();
    let (mut keeper, mut answers) = a.keep_alive(lease).unwrap();
    let ttl = Duration::from_secs(super::store::LEASE_TTL as u64);
    let start = Instant::now();
    while start.elapsed() < ttl + Duration::from_secs(2) {
        assert!(a.renew(&mut keeper, &mut answers).unwrap());
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(a.alive(lease).unwrap());
    assert_eq!(a.peers().unwrap()[0].subnet, subnet);
    a.purge().unwrap();
    a.revoke(lease).unwrap();
}

#[test]
fn an_unreachable_store_is_a_timeout() {
    // TEST-NET-1: routed nowhere, so nothing answers (or the route is
    // missing, which fails at once: both are errors naming the store).
    let start = Instant::now();
    let err = EtcdStore::connect("192.0.2.1:2379", "n3").err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("192.0.2.1:2379"), "{err}");
}

#[test]
fn a_refused_connection_is_an_error_naming_the_store() {
    let endpoint = format!("127.0.0.1:{}", free_port());
    let start = Instant::now();
    let err = EtcdStore::connect(&endpoint, "n4").err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains(&endpoint), "{err}");
}
