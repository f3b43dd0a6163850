//! Times hull's own networking (the library, no CNI process in between),
//! entirely inside a throwaway network namespace so the host is untouched:
//! attach (bridge existing, one published port) and detach of a container,
//! the cost of publishing the 1st vs the 1000th port, and (with iperf3
//! installed and IPERF_REPS > 0) TCP throughput through a port published on
//! 127.0.0.1 against the container's address directly, the two measured
//! alternately so drift hits both alike.
//!
//! `cargo run --release -p bridge --example netbench [RUNS [IPERF_REPS [SECS]]]`
//! (as root; defaults 25, 0, 3).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bridge::Firewall;
use bridge::{PortMapping, Protocol, Store};

/// The median of `v` in milliseconds.
fn median(v: Vec<Duration>) -> f64 {
    median_f(v.iter().map(|d| d.as_secs_f64() * 1000.0).collect())
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

/// iperf3's received throughput to `host:port` over `secs` seconds, Gbit/s;
/// `None` (said on stderr) if the run failed.
fn iperf(host: &str, port: u16, secs: u32) -> Option<f64> {
    // A client that never hears back from the server must not hang the
    // benchmark, and a failed run must not end it before its clean-up.
    let out = Command::new("timeout")
        .args([
            &(secs + 30).to_string(),
            "iperf3",
            "--connect-timeout",
            "5000",
            "-c",
            host,
            "-p",
            &port.to_string(),
            "-t",
            &secs.to_string(),
            "-J",
        ])
        .output()
        .expect("run iperf3");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let gbits = report["end"]["sum_received"]["bits_per_second"].as_f64();
    if gbits.is_none() {
        eprintln!("iperf3 to {host}:{port} failed ({}): {report}", out.status);
    }
    gbits.map(|b| b / 1e9)
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Published 127.0.0.1 port vs the container's address, `reps` alternating
/// pairs of `secs`-second iperf3 runs against a server in the sandbox.
fn throughput(
    store: &Store,
    net: &bridge::Network,
    netns: &std::path::Path,
    pid: u32,
    reps: usize,
    secs: u32,
) {
    // The private namespace's loopback starts down.
    let lo = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(lo.is_ok_and(|s| s.success()), "ip link set lo up");
    let port: PortMapping = "127.0.0.1:15301:5201".parse().unwrap();
    let att = store
        .attach(net, "iperf", "eth0", netns, &[port], None)
        .unwrap();
    let mut server = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "iperf3", "-s", "-p", "5201"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start iperf3 -s in the sandbox");
    std::thread::sleep(Duration::from_millis(300));
    let ip = att.ip.to_string();
    let (mut direct, mut published) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        // A pair counts only whole.
        if let (Some(d), Some(p)) = (iperf(&ip, 5201, secs), iperf("127.0.0.1", 15301, secs)) {
            direct.push(d);
            published.push(p);
        }
    }
    match direct.is_empty() {
        true => eprintln!("iperf3: no pair of runs succeeded"),
        false => report(&ip, &direct, &published, secs),
    }
    let _ = server.kill();
    let _ = server.wait();
    store.detach("iperf", "eth0").unwrap();
}

/// Prints both paths' runs and their ratio.
fn report(ip: &str, direct: &[f64], published: &[f64], secs: u32) {
    let (d, p) = (median_f(direct.to_vec()), median_f(published.to_vec()));
    println!("iperf3 host -> container {ip}:5201: median {d:.2} Gbit/s, runs {direct:.2?}");
    println!(
        "iperf3 host -> 127.0.0.1:15301 (published): median {p:.2} Gbit/s, runs {published:.2?}"
    );
    // Each pair ran back to back, so its ratio is free of the drift between
    // pairs (a run here swings by ±15%): the median of those ratios is the
    // figure; the ratio of the two medians mixes in that drift.
    let pairs: Vec<f64> = published.iter().zip(direct).map(|(p, d)| p / d).collect();
    println!(
        "published / direct: {:.1}% (median of {} alternating pairs of {secs}s runs; \
         ratio of the medians {:.1}%)",
        100.0 * median_f(pairs),
        direct.len(),
        100.0 * p / d
    );
}

fn main() {
    let arg = |n: usize| {
        std::env::args()
            .nth(n)
            .and_then(|s| s.parse::<usize>().ok())
    };
    let runs = arg(1).unwrap_or(25);
    let iperf_reps = arg(2).unwrap_or(0);
    let iperf_secs = arg(3).unwrap_or(3) as u32;
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
    store
        .attach(&net, "warm", "eth0", &netns, &[], None)
        .unwrap();
    store.detach("warm", "eth0").unwrap();

    let (mut add, mut del) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        store
            .attach(&net, "c1", "eth0", &netns, &[port], None)
            .unwrap();
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
    if iperf_reps > 0 {
        throughput(&store, &net, &netns, sb.id(), iperf_reps, iperf_secs);
    }
    let _ = store.remove("bench");
    let _ = fw.delete_table();
    let _ = sb.kill();
    let _ = sb.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
