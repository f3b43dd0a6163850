//! Times hull's own networking (the library, no CNI process in between),
//! entirely inside a throwaway network namespace so the host is untouched:
//! attach (bridge existing, one published port) and detach of a container,
//! and the cost of publishing the 1st vs the 1000th port.
//!
//! `cargo run --release -p bridge --example netbench [RUNS]` (as root).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bridge::nft::Firewall;
use bridge::{PortMapping, Protocol, Store};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

/// A process sitting in a new network namespace: the "container".
fn sandbox() -> Child {
    let child = Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .spawn()
        .expect("unshare");
    std::thread::sleep(Duration::from_millis(100));
    child
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    // Everything below happens in this private network namespace.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("unshare the network namespace");
    let dir = std::env::temp_dir().join(format!("hull-bench-net-{}", std::process::id()));
    let store = Store::new(&dir, "hull");
    let net = store
        .create("bench", Some("10.77.0.0/16".parse().unwrap()))
        .expect("create network");
    let mut sb = sandbox();
    let netns = PathBuf::from(format!("/proc/{}/ns/net", sb.id()));
    let port: PortMapping = "18080:80".parse().unwrap();
    // Warm-up: creates the bridge and the firewall table.
    store.attach(&net, "warm", "eth0", &netns, &[]).unwrap();
    store.detach("warm", "eth0").unwrap();

    let (mut add, mut del) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        store.attach(&net, "c1", "eth0", &netns, &[port]).unwrap();
        add.push(t.elapsed());
        let t = Instant::now();
        store.detach("c1", "eth0").unwrap();
        del.push(t.elapsed());
    }
    println!(
        "attach (bridge existing, 1 published port): median {:.2} ms over {runs}",
        median(add)
    );
    println!("detach: median {:.2} ms over {runs}", median(del));

    // Publishing cost as the map grows: 1000 ports, one call each.
    let fw = Firewall::new("hull");
    let ip = Ipv4Addr::new(10, 77, 0, 99);
    let mut each = Vec::new();
    for i in 0..1000u16 {
        let p = PortMapping {
            host_ip: None,
            host_port: 20000 + i,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let t = Instant::now();
        fw.add_ports(ip, &[p]).unwrap();
        each.push(t.elapsed());
    }
    println!(
        "publish one port: median {:.3} ms for ports 1-10, {:.3} ms for ports 991-1000",
        median(each[..10].to_vec()),
        median(each[990..].to_vec())
    );
    let _ = store.remove("bench");
    let _ = fw.delete_table();
    let _ = sb.kill();
    let _ = sb.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
