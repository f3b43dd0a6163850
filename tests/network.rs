//! docker0-style networking: host → container, published ports on 127.0.0.1,
//! the gateway and an uplink from another network namespace, outbound
//! masquerade, hairpin NAT, UDP, port conflicts, parallel attachments,
//! teardown (also after the netns is gone), the network lifecycle, the
//! annotations, eth0 being there from the container's first instruction,
//! dual stack, and the CNI plugin (hull-cni) on dual-stack networks.
//!
//! Isolation: every hull call gets its own `--net-root` and `--net-table`;
//! each test has its own network `tNN-<pid mod 100000>` (bridge
//! `hull-tNN-<pid mod 100000>`) on 10.250.NN.0/24, its own host ports 28000+10·NN…
//! and, where it needs "another host", a netns joined to the host by a veth
//! pair `hulltestupNN` on 10.249.NN.0/24. Only the default-network test uses
//! the host-global bridge name `hull0`; it holds a file lock for that. Every
//! resource is removed by a guard, also when a test fails.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hull_tests::net::*;
use hull_tests::netlab::*;
use hull_tests::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

// ---------------------------------------------------------------- tests

/// (1) The host reaches a container at its address on the bridge (TCP).
#[test]
fn host_reaches_container_ip() {
    let net = Net::new("hostip", 1);
    net.create();
    let mut c = net.ctr("net1-web");
    with_srv(&mut c);
    c.sh(&web_script("hello-net1"));
    c.run_detached(&["--network", &net.name]);
    let ip = net.ip(&c.id);
    assert_eq!(
        ip.octets()[..3],
        [10, 250, 1],
        "{ip} is not in {}",
        net.subnet()
    );
    assert_serves(sock(ip, 80), "hello-net1");
    // The traffic above left conntrack entries; delete flushes them.
    assert!(
        conntrack_mentions(ip),
        "no conntrack entry for {ip} to begin with"
    );
    c.delete(true);
    assert!(
        !conntrack_mentions(ip),
        "conntrack entries for {ip} left after delete"
    );
}

/// Whether any conntrack entry names `ip` as a source or destination.
fn conntrack_mentions(ip: std::net::Ipv4Addr) -> bool {
    let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
    let (src, dst) = (format!("src={ip} "), format!("dst={ip} "));
    table.lines().any(|l| l.contains(&src) || l.contains(&dst))
}

/// (2) `-p 127.0.0.1:H:80` answers on 127.0.0.1:H; a mapping without host
/// address answers on 127.0.0.1 and on the bridge's gateway address.
#[test]
fn published_on_localhost_and_gateway() {
    let net = Net::new("localhost", 2);
    net.create();
    let (h1, h2) = (port(2), port(2) + 1);
    let mut c = net.ctr("net2-web");
    with_srv(&mut c);
    c.sh(&web_script("hello-net2"));
    c.run_detached(&[
        "--network",
        &net.name,
        "-p",
        &format!("127.0.0.1:{h1}:80"),
        "-p",
        &format!("{h2}:80"),
    ]);
    assert_serves(sock(Ipv4Addr::LOCALHOST, h1), "hello-net2");
    assert_serves(sock(Ipv4Addr::LOCALHOST, h2), "hello-net2");
    assert_serves(sock(net.gateway(), h2), "hello-net2");
}

/// (3) A client in another network namespace reaches a published port
/// through this host's uplink address (prerouting DNAT + forwarding).
#[test]
fn published_port_from_another_netns() {
    let net = Net::new("uplink", 3);
    net.create();
    let up = Uplink::new(3);
    let h = port(3);
    let mut c = net.ctr("net3-web");
    with_srv(&mut c);
    c.sh(&web_script("hello-net3"));
    c.run_detached(&["--network", &net.name, "-p", &format!("{h}:80")]);
    // Up locally first, so a failure below is the uplink path's.
    assert_serves(sock(net.ip(&c.id), 80), "hello-net3");
    let target = sock(up.here, h);
    let resp = in_netns(up.netns(), move || http_get(target))
        .join()
        .unwrap();
    let resp = resp.unwrap_or_else(|e| panic!("from the other netns: {e}"));
    assert!(resp.contains("hello-net3"), "{resp}");
}

/// (4) A container's connection to another host is masqueraded: the server
/// sees this host's uplink address, not the container's.
#[test]
fn outbound_is_masqueraded() {
    let net = Net::new("masq", 4);
    net.create();
    let up = Uplink::new(4);
    let server = accept_one(up.netns(), sock(up.there, port(4)));
    let mut c = net.ctr("net4-client");
    c.sh(&format!(
        "echo hello-from-net4 | nc -w 5 {} {}",
        up.there,
        port(4)
    ));
    let (code, out, err) = c.run_fg(&["--network", &net.name]);
    let seen = server.join().unwrap();
    let (peer, got) =
        seen.unwrap_or_else(|| panic!("no connection arrived (exit {code}: {out} {err})"));
    assert_eq!(code, 0, "client: {out} {err}");
    assert!(got.contains("hello-from-net4"), "server read {got:?}");
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(up.here),
        "the server saw {peer}, not the masqueraded {}",
        up.here
    );
}

/// (5) A container reaches its own published port through the gateway
/// address (hairpin NAT), and two containers on one bridge reach each other
/// by address.
#[test]
fn hairpin_and_container_to_container() {
    let net = Net::new("hairpin", 5);
    net.create();
    let gw = net.gateway();
    let h = port(5);

    let mut me = net.ctr("net5-self");
    with_srv(&mut me);
    me.sh(&format!(
        "echo hello-net5-self > /srv/index.html && \
         httpd -p 80 -h /srv </dev/null >/dev/null 2>&1 && {}",
        fetch_script(gw, h, "hello-net5-self")
    ));
    let (code, out, err) = me.run_fg(&["--network", &net.name, "-p", &format!("{h}:80")]);
    assert_eq!(
        code, 0,
        "own published port via {gw}:{h}: stdout={out} stderr={err}"
    );

    let mut srv = net.ctr("net5-srv");
    with_srv(&mut srv);
    srv.sh(&web_script("hello-net5-srv"));
    srv.run_detached(&["--network", &net.name]);
    let ip = net.ip(&srv.id);
    let mut cli = net.ctr("net5-cli");
    cli.sh(&fetch_script(ip, 80, "hello-net5-srv"));
    let (code, out, err) = cli.run_fg(&["--network", &net.name]);
    assert_eq!(code, 0, "container to {ip}:80: stdout={out} stderr={err}");
}

/// (6) A UDP datagram to 127.0.0.1:H published as `H:5353/udp` arrives at
/// port 5353 in the container, and the answer comes back. (This busybox's
/// nc has no -u: the echo server is a socket of this test opened in the
/// container's network namespace.)
#[test]
fn udp_published_port() {
    let net = Net::new("udp", 6);
    net.create();
    let h = port(6);
    let mut c = net.ctr("net6-udp");
    c.args(&["sleep", "600"]);
    c.run_detached(&["--network", &net.name, "-p", &format!("{h}:5353/udp")]);
    let ns = PathBuf::from(format!("/proc/{}/ns/net", c.pid()));
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = in_netns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:5353").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Ok((k, from)) = s.recv_from(&mut buf) {
                let got = text(&buf[..k]);
                let _ = s.send_to(&buf[..k], from);
                if got == "ping-net6" {
                    return Some(got);
                }
            }
        }
        None
    });
    ready_rx.recv().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut echoed = None;
    for _ in 0..20 {
        client.send_to(b"ping-net6", ("127.0.0.1", h)).unwrap();
        let mut buf = [0u8; 512];
        if let Ok(k) = client.recv(&mut buf) {
            echoed = Some(text(&buf[..k]));
            break;
        }
    }
    let arrived = server.join().unwrap();
    assert_eq!(
        arrived.as_deref(),
        Some("ping-net6"),
        "no datagram arrived at 5353 in the container"
    );
    assert_eq!(echoed.as_deref(), Some("ping-net6"), "no answer came back");
}

/// (7) Publishing a host port that a host socket listens on, or that another
/// container has published, fails with an error naming the port and leaves
/// no container, veth, lease or attachment.
#[test]
fn publishing_a_taken_port_fails_cleanly() {
    let net = Net::new("taken", 7);
    net.create();
    let (h1, h2) = (port(7), port(7) + 1);

    let _listener = TcpListener::bind(("127.0.0.1", h1)).unwrap();
    let mut c = net.ctr("net7-hostsock");
    c.args(&["sleep", "600"]);
    let (code, _, err) = c.launch(
        &["create"],
        &["--network", &net.name, "-p", &format!("{h1}:80")],
        "create",
    );
    assert_ne!(code, 0, "create succeeded with host port {h1} taken");
    assert!(err.contains(&h1.to_string()), "error names no port: {err}");
    c.assert_no_state();
    assert!(!link_exists(&veth_name(&c.id)), "veth left behind");
    assert_eq!(
        net.bridge_ports(),
        Vec::<String>::new(),
        "bridge ports left"
    );
    assert_eq!(net.leases(), Vec::<String>::new(), "leases left");
    assert_eq!(net.attachment_files(), Vec::<String>::new());

    let mut first = net.ctr("net7-first");
    first.args(&["sleep", "600"]);
    first.run_detached(&["--network", &net.name, "-p", &format!("{h2}:80")]);
    let kept = net.attachment(&first.id);
    let mut second = net.ctr("net7-second");
    second.args(&["sleep", "600"]);
    let err = second
        .try_run_detached(&["--network", &net.name, "-p", &format!("{h2}:80")])
        .expect_err("a second container published the same host port");
    assert!(err.contains(&h2.to_string()), "error names no port: {err}");
    second.assert_no_state();
    assert!(!link_exists(&veth_name(&second.id)), "veth left behind");
    assert_eq!(
        net.bridge_ports(),
        vec![kept["host_veth"].as_str().unwrap().to_owned()]
    );
    assert_eq!(net.leases(), vec![kept["ip"].as_str().unwrap().to_owned()]);
    assert_eq!(net.attachment_files().len(), 1);
    assert_eq!(net.map_elements(), Some(1), "the first mapping must stay");
}

/// (8) Eight containers started in parallel on one network get eight
/// distinct addresses; deleting them all (in parallel) leaves no veth, lease,
/// attachment or map element.
#[test]
fn parallel_attachments_and_full_teardown() {
    const N: usize = 8;
    let net = Net::new("parallel", 8);
    net.create();
    let ctrs: Vec<Ctr> = (0..N)
        .map(|i| {
            let mut c = net.ctr(&format!("net8-{i}"));
            c.args(&["sleep", "600"]);
            c
        })
        .collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = ctrs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = net.name.clone();
                s.spawn(move || {
                    let h = port(8) + i as u16;
                    // Half on 127.0.0.1 (addr_ports), half on all addresses (any_ports).
                    let spec = if i % 2 == 0 {
                        format!("127.0.0.1:{h}:80")
                    } else {
                        format!("{h}:80")
                    };
                    c.try_run_detached(&["--network", &name, "-p", &spec])
                })
            })
            .collect();
        for (i, r) in runs.into_iter().enumerate() {
            if let Err(e) = r.join().unwrap() {
                panic!("container {i}: {e}");
            }
        }
    });
    let atts: Vec<Value> = ctrs.iter().map(|c| net.attachment(&c.id)).collect();
    let mut ips: Vec<&str> = atts.iter().map(|a| a["ip"].as_str().unwrap()).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), N, "addresses shared: {atts:#?}");
    let veths: Vec<String> = atts
        .iter()
        .map(|a| a["host_veth"].as_str().unwrap().to_owned())
        .collect();
    assert!(veths.iter().all(|v| link_exists(v)));
    assert_eq!(net.leases().len(), N);
    assert_eq!(net.map_elements(), Some(N));

    std::thread::scope(|s| {
        let dels: Vec<_> = ctrs.iter().map(|c| s.spawn(|| c.delete(true))).collect();
        for d in dels {
            d.join().unwrap();
        }
    });
    let left: Vec<&String> = veths.iter().filter(|v| link_exists(v)).collect();
    assert!(left.is_empty(), "veths left: {left:?}");
    assert_eq!(net.bridge_ports(), Vec::<String>::new());
    assert_eq!(net.leases(), Vec::<String>::new(), "leases left");
    assert_eq!(net.attachment_files(), Vec::<String>::new());
    assert_eq!(net.map_elements(), Some(0), "map elements left");
}

/// Asserts that nothing of container `c`'s attachment (host veth `veth`)
/// is left, on a network without other containers.
fn assert_detached(net: &Net, c: &Ctr, veth: &str) {
    c.assert_no_state();
    assert!(!link_exists(veth), "veth {veth} left");
    assert_eq!(net.leases(), Vec::<String>::new(), "lease left");
    assert_eq!(net.attachment_files(), Vec::<String>::new());
    assert_eq!(net.map_elements(), Some(0), "published port left");
}

/// (9) Teardown works after the container's netns is gone (init SIGKILLed)
/// and is idempotent; `delete --force` of a running networked container
/// cleans everything too.
#[test]
fn teardown_after_netns_is_gone_and_idempotent() {
    let net = Net::new("teardown", 9);
    net.create();

    let mut c = net.ctr("net9-killed");
    c.args(&["sleep", "600"]);
    c.run_detached(&[
        "--network",
        &net.name,
        "-p",
        &format!("127.0.0.1:{}:80", port(9)),
    ]);
    let veth = net.attachment(&c.id)["host_veth"]
        .as_str()
        .unwrap()
        .to_owned();
    let pid = c.pid();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    // The netns goes with its last process, and the kernel removes the pair
    // with it: once the host end is gone, so is the netns.
    assert!(
        wait_until(10, || !link_exists(&veth)),
        "{veth} still there 10s after the init was killed: something holds the netns"
    );
    c.delete(false);
    assert_detached(&net, &c, &veth);
    c.delete(true);

    let mut r = net.ctr("net9-running");
    r.args(&["sleep", "600"]);
    r.run_detached(&["--network", &net.name, "-p", &format!("{}:80", port(9) + 1)]);
    let veth = net.attachment(&r.id)["host_veth"]
        .as_str()
        .unwrap()
        .to_owned();
    r.delete(true);
    assert_detached(&net, &r, &veth);
    assert_no_process(&r.id);
}

/// (10) The network outlives its last container; `network rm` refuses while
/// a container is attached, then removes the bridge, the rules (the whole
/// table, as no other network is left in it) and the leases.
#[test]
fn network_lifecycle() {
    let net = Net::new("lifecycle", 10);
    net.create();
    let mut c = net.ctr("net10-c");
    c.args(&["sleep", "600"]);
    c.run_detached(&["--network", &net.name]);

    let out = net.cmd(&["network", "rm", &net.name]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "network rm with a container attached"
    );
    assert!(
        err.contains(&net.name) && err.contains(&c.id),
        "unclear error: {err}"
    );
    assert!(link_exists(&net.bridge), "bridge removed by a failed rm");

    c.delete(true);
    assert!(
        link_exists(&net.bridge),
        "bridge gone with its last container"
    );
    let ls = text(&net.cmd(&["network", "ls"]).stdout);
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().next() == Some(&net.name)),
        "network ls: {ls}"
    );
    assert!(net.nft().is_some(), "table gone with the last container");

    let out = net.cmd(&["network", "rm", &net.name]);
    assert!(out.status.success(), "network rm: {}", text(&out.stderr));
    assert!(!link_exists(&net.bridge), "bridge left");
    assert!(net.nft().is_none(), "table left: {:#}", net.nft().unwrap());
    assert!(
        !net.root.join("leases").join(&net.name).exists(),
        "leases dir left"
    );
    let ls = text(&net.cmd(&["network", "ls"]).stdout);
    assert!(!ls.contains(&net.name), "network ls: {ls}");
}

/// (11) Without --network, -p or annotations hull does no networking (only
/// `lo` in the container's netns, no veth, no table); with the annotations
/// org.hull.network and org.hull.publish the container is networked and
/// the port answers.
#[test]
fn annotations_or_nothing() {
    let net = Net::new("annot", 11);
    let mut plain = net.ctr("net11-plain");
    plain.args(&["sleep", "600"]);
    plain.run_detached(&[]);
    assert_eq!(netns_links(plain.pid()), vec!["lo".to_owned()]);
    assert!(!link_exists(&veth_name(&plain.id)), "veth created");
    assert_eq!(net.attachment_files(), Vec::<String>::new());
    assert!(net.nft().is_none(), "table created");

    net.create();
    let h = port(11);
    let mut c = net.ctr("net11-annotated");
    with_srv(&mut c);
    c.sh(&web_script("hello-net11"));
    let name = net.name.clone();
    c.edit(|cfg| {
        cfg["annotations"] = json!({
            "org.hull.network": name,
            "org.hull.publish": format!("127.0.0.1:{h}:80"),
        })
    });
    c.run_detached(&[]);
    assert_eq!(
        netns_links(c.pid()),
        vec!["eth0".to_owned(), "lo".to_owned()]
    );
    assert_serves(sock(Ipv4Addr::LOCALHOST, h), "hello-net11");
}

/// (12) eth0 is up with its address when the container's process starts.
#[test]
fn eth0_ready_at_first_instruction() {
    let net = Net::new("first", 12);
    net.create();
    let mut c = net.ctr("net12");
    c.sh("cat /sys/class/net/eth0/operstate; ip -4 addr show eth0");
    let (code, out, err) = c.run_fg(&["--network", &net.name]);
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert_eq!(out.lines().next(), Some("up"), "{out}");
    assert!(out.contains("inet 10.250.12."), "no address: {out}");
}

/// `-p` without --network creates the default network "hull" (bridge
/// hull0) on first use; it works, outlives the container, and `network rm
/// hull` removes it. hull0 is a host-global name: the test holds a lock and
/// refuses to run if some other hull0 exists.
#[test]
fn default_network_from_publish() {
    let _lock = Hull0Lock::take();
    assert!(
        !link_exists("hull0"),
        "a bridge hull0 exists on this host that this test did not make; not touching it"
    );
    let net = Net::default_network("default", 20);
    let h = port(20);
    let mut c = net.ctr("net20-web");
    with_srv(&mut c);
    c.sh(&web_script("hello-net20"));
    c.run_detached(&["-p", &format!("127.0.0.1:{h}:80")]);
    assert_eq!(net.attachment(&c.id)["network"], "hull");
    assert_eq!(net.inspect()["network"]["bridge"], "hull0");
    assert!(link_exists("hull0"), "no bridge hull0");
    assert_serves(sock(Ipv4Addr::LOCALHOST, h), "hello-net20");

    c.delete(true);
    assert!(
        link_exists("hull0"),
        "the default network went with its container"
    );
    let out = net.cmd(&["network", "rm", "hull"]);
    assert!(
        out.status.success(),
        "network rm hull: {}",
        text(&out.stderr)
    );
    assert!(!link_exists("hull0"), "hull0 left");
    assert!(net.nft().is_none(), "table left");
}

/// (13) A dual-stack network. It runs in a network namespace of its own
/// (the "host" here), because IPv6 forwarding can only be turned on
/// globally and this host's own setting must stay as it is; a second
/// namespace joined to it by a veth is "another host". The container gets
/// an IPv6 address mirroring its IPv4 lease, is reached over IPv6 from the
/// host, through its published port on the host's IPv6 addresses (from the
/// host and from the other host), from a sibling and from itself (hairpin);
/// its outbound IPv6 is masqueraded; teardown leaves no element, lease,
/// conntrack entry, and `network rm` no table or bridge, in either family.
#[test]
fn dual_stack_network() {
    let lab = Sandbox::new();
    let remote = Sandbox::new();
    let (remote_ns, remote_pid) = (remote.netns(), remote.pid());
    let run = in_netns(lab.netns(), move || {
        dual_stack_in_lab(remote_ns, remote_pid)
    });
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

/// The body of [`dual_stack_network`], on a thread in the lab namespace
/// (so are the hull and `ip` processes it starts).
fn dual_stack_in_lab(remote_ns: PathBuf, remote_pid: String) {
    let n = 21;
    sh("ip", &["link", "set", "lo", "up"]);
    let (up, pe) = ("hulltestup21", "hulltestpe21");
    sh(
        "ip",
        &[
            "link",
            "add",
            up,
            "type",
            "veth",
            "peer",
            "name",
            pe,
            "netns",
            &remote_pid,
        ],
    );
    sh(
        "ip",
        &["-6", "addr", "add", "fd99:21::1/64", "dev", up, "nodad"],
    );
    sh("ip", &["link", "set", up, "up"]);
    let remote_ip = |args: &[&str]| {
        sh(
            "nsenter",
            &[&["-t", &remote_pid, "-n", "ip"], args].concat(),
        );
    };
    remote_ip(&["-6", "addr", "add", "fd99:21::2/64", "dev", pe, "nodad"]);
    remote_ip(&["link", "set", pe, "up"]);
    remote_ip(&["link", "set", "lo", "up"]);
    let (here, there): (Ipv6Addr, Ipv6Addr) =
        ("fd99:21::1".parse().unwrap(), "fd99:21::2".parse().unwrap());

    let net = Net::new("dualstack", n);
    net.create_dual_stack();
    let h = port(n);
    let mut web = net.ctr("net21-web");
    with_srv(&mut web);
    web.sh(&web_script("hello-net21"));
    web.run_detached(&["--network", &net.name, "-p", &format!("{h}:80")]);
    let att = net.attachment(&web.id);
    assert_eq!(att["ip"], "10.250.21.2", "{att:#}");
    assert_eq!(att["ip6"], "fd42:21::2", "the IPv6 twin of .2: {att:#}");
    assert_eq!(att["gateway6"], "fd42:21::1", "{att:#}");
    let (ip6, gw6): (Ipv6Addr, Ipv6Addr) =
        ("fd42:21::2".parse().unwrap(), "fd42:21::1".parse().unwrap());

    let v6 = |ip: Ipv6Addr, port: u16| SocketAddr::new(ip.into(), port);
    assert_serves(v6(ip6, 80), "hello-net21");
    assert_serves(v6(gw6, h), "hello-net21");
    assert_serves(v6(here, h), "hello-net21");
    assert_serves(sock(Ipv4Addr::LOCALHOST, h), "hello-net21");
    let from_remote = in_netns(remote_ns.clone(), move || http_get(v6(here, h)))
        .join()
        .unwrap();
    let page = from_remote.unwrap_or_else(|e| panic!("from the other host: {e}"));
    assert!(page.contains("hello-net21"), "{page}");

    let server = accept_one(remote_ns, v6(there, h + 1));
    let mut client = net.ctr("net21-client");
    client.sh(&format!(
        "({}) && ({}) && echo hello-from-net21 | nc -w 5 {there} {}",
        fetch_script(ip6, 80, "hello-net21"),
        fetch_script(gw6, h, "hello-net21"),
        h + 1
    ));
    let (code, out, err) = client.run_fg(&["--network", &net.name]);
    assert_eq!(
        code, 0,
        "sibling, hairpin or outbound over IPv6: {out} {err}"
    );
    let (peer, got) = server
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("no outbound connection arrived: {out} {err}"));
    assert!(got.contains("hello-from-net21"), "the server read {got:?}");
    assert_eq!(peer.ip(), std::net::IpAddr::V6(here), "not masqueraded");

    let conntrack = || std::fs::read_to_string("/proc/thread-self/net/nf_conntrack").unwrap();
    let ip6_full = "fd42:0021:0000:0000:0000:0000:0000:0002";
    assert!(
        conntrack().contains(ip6_full),
        "no entry to flush to begin with:\n{}",
        conntrack()
    );
    // The foreground run deleted the client when it exited.
    web.delete(true);
    assert!(net.attachment_files().is_empty(), "attachment records left");
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
    assert_eq!(net.map_elements_in("ip6"), Some(0), "IPv6 ports left");
    assert_eq!(net.map_elements_in("ip"), Some(0), "IPv4 ports left");
    let left = conntrack();
    assert!(
        !left.contains(ip6_full),
        "conntrack entries of {ip6} left:\n{left}"
    );

    let out = net.cmd(&["network", "rm", &net.name]);
    assert!(out.status.success(), "network rm: {}", text(&out.stderr));
    assert!(net.nft_family("ip6").is_none(), "ip6 table left");
    assert!(net.nft_family("ip").is_none(), "ip table left");
    let bridge = Command::new("ip")
        .args(["link", "show", &net.bridge])
        .output()
        .unwrap();
    assert!(!bridge.status.success(), "bridge {} left", net.bridge);
}

// ---------------------------------------------------------------- CNI

/// The hull-cni plugin, built with the workspace.
fn cni_plugin() -> PathBuf {
    workspace().join("target/debug/hull-cni")
}

/// Runs hull-cni `command` for `eth0` of `container`, whose network
/// namespace is `netns`, with `conf` on stdin: whether it exited 0, and the
/// JSON it printed (Null for none). The plugin runs in the calling thread's
/// network namespace, with a sysfs of that namespace mounted in a mount
/// namespace of its own (as `ip netns exec` does), as a runtime's plugin
/// sees the host's.
fn cni(command: &str, container: &str, netns: &Path, conf: &Value) -> (bool, Value) {
    use std::io::Write;
    let own_sysfs = r#"mount -t sysfs sysfs /sys && exec "$0""#;
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", own_sysfs])
        .arg(cni_plugin())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", netns)
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", cni_plugin().display()));
    let mut stdin = child.stdin.take().unwrap();
    // A plugin may answer without reading stdin (VERSION, or an error found
    // in the environment first) and exit: the pipe is then closed, which is
    // not a failure.
    match stdin.write_all(conf.to_string().as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write the config: {e}"),
        _ => drop(stdin),
    }
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    };
    (out.status.success(), json)
}

/// Whether link `name` exists in the calling thread's network namespace
/// (`/sys/class/net` shows the namespace sysfs was mounted in).
fn link_in_netns(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Runs `body` on a thread in a [`Sandbox`] of its own (whose namespace
/// it is given), the "host" of the test: a dual-stack network turns on
/// IPv6 forwarding, which must not happen in the real host's namespace.
fn in_lab(body: fn(PathBuf)) {
    let lab = Sandbox::new();
    let ns = lab.netns();
    let run = in_netns(lab.netns(), move || {
        sh("ip", &["link", "set", "lo", "up"]);
        body(ns)
    });
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

/// hull-cni's `hull` type on a dual-stack network (`subnet` and `subnet6`):
/// ADD gives the container both addresses and default routes and lists
/// them in the result, publishes the port in both families, and IPv6
/// reaches the bridge's IPv6 gateway; CHECK passes, and fails once the IPv6
/// address is gone; an ADD configuring another IPv6 subnet for the network
/// is refused and leaves nothing; DEL removes veth, lease, record and
/// ports.
#[test]
fn cni_dual_stack_add_check_del() {
    in_lab(cni_dual_stack_in_lab);
}

fn cni_dual_stack_in_lab(lab: PathBuf) {
    let n = 22;
    let net = Net::new("cnidual", n);
    let ctr = Sandbox::new();
    let id = unique("cni-dual");
    let h = port(n);
    let conf = json!({
        "cniVersion": "1.0.0", "name": net.name, "type": "hull", "bridge": net.bridge,
        "subnet": net.subnet(), "subnet6": "fd42:22::/64",
        "dataDir": net.root, "table": net.table,
        "capabilities": {"portMappings": true},
        "runtimeConfig": {"portMappings": [{"hostPort": h, "containerPort": 80, "protocol": "tcp"}]}
    });
    let (ok, r) = cni("ADD", &id, &ctr.netns(), &conf);
    assert!(ok, "ADD failed: {r}");
    let (gw, gw6): (Ipv4Addr, Ipv6Addr) = (
        "10.250.22.1".parse().unwrap(),
        "fd42:22::1".parse().unwrap(),
    );
    assert_eq!(
        r["ips"],
        json!([
            {"address": "10.250.22.2/24", "gateway": gw.to_string(), "interface": 2},
            {"address": "fd42:22::2/64", "gateway": gw6.to_string(), "interface": 2}
        ]),
        "{r:#}"
    );
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": gw.to_string()}, {"dst": "::/0", "gw": gw6.to_string()}])
    );
    assert_eq!(r["interfaces"][2]["name"], "eth0");
    let veth = r["interfaces"][1]["name"].as_str().unwrap().to_owned();
    assert!(link_in_netns(&veth), "host veth {veth} missing");

    let addrs = ctr.ip_output(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains("inet 10.250.22.2/24"), "{addrs}");
    assert!(addrs.contains("inet6 fd42:22::2/64"), "{addrs}");
    let route4 = ctr.ip_output(&["-4", "route", "show", "default"]);
    assert!(
        route4.contains("default via 10.250.22.1 dev eth0"),
        "{route4}"
    );
    let route6 = ctr.ip_output(&["-6", "route", "show", "default"]);
    assert!(
        route6.contains("default via fd42:22::1 dev eth0"),
        "{route6}"
    );
    assert_eq!(net.map_elements_in("ip"), Some(1), "IPv4 port");
    assert_eq!(net.map_elements_in("ip6"), Some(1), "IPv6 port");

    // IPv6 from the container to a listener on the bridge's IPv6 gateway.
    let server = accept_one(lab, SocketAddr::new(gw6.into(), h + 1));
    let sent = in_netns(ctr.netns(), move || {
        use std::io::Write;
        let to = SocketAddr::new(gw6.into(), h + 1);
        std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .and_then(|mut s| s.write_all(b"hello-cni22\n"))
    });
    sent.join()
        .unwrap()
        .expect("connect over IPv6 to the gateway");
    let (peer, got) = server.join().unwrap().expect("no connection arrived");
    assert_eq!(peer.ip(), "fd42:22::2".parse::<Ipv6Addr>().unwrap());
    assert!(got.contains("hello-cni22"), "{got:?}");

    let mut cached = conf.clone();
    cached["prevResult"] = r.clone();
    let (ok, check) = cni("CHECK", &id, &ctr.netns(), &cached);
    assert!(ok, "CHECK failed: {check}");

    let mut other = conf.clone();
    other["subnet6"] = json!("fd42:122::/64");
    let other_id = unique("cni-dual-other");
    let (ok, refused) = cni("ADD", &other_id, &ctr.netns(), &other);
    assert!(!ok);
    assert_eq!(refused["code"], 7, "{refused}");
    let msg = refused["msg"].as_str().unwrap();
    assert!(msg.contains("IPv6 subnet fd42:22::/64"), "{msg}");
    assert_eq!(
        net.attachment_files().len(),
        1,
        "the refused ADD left a record"
    );
    assert_eq!(
        net.leases(),
        ["10.250.22.2"],
        "the refused ADD left a lease"
    );

    ctr.ip(&["-6", "addr", "del", "fd42:22::2/64", "dev", "eth0"]);
    let (ok, check) = cni("CHECK", &id, &ctr.netns(), &cached);
    assert!(!ok);
    assert_eq!(check["code"], 103, "{check}");
    assert!(
        check["msg"].as_str().unwrap().contains("fd42:22::2/64"),
        "{check}"
    );

    for round in ["DEL", "second DEL"] {
        let (ok, del) = cni("DEL", &id, &ctr.netns(), &cached);
        assert!(ok, "{round} failed: {del}");
    }
    assert!(!link_in_netns(&veth), "host veth {veth} left");
    assert_eq!(netns_links(ctr.child.id() as i32), ["lo"]);
    assert!(net.attachment_files().is_empty(), "attachment records left");
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
    assert_eq!(net.map_elements_in("ip"), Some(0), "IPv4 ports left");
    assert_eq!(net.map_elements_in("ip6"), Some(0), "IPv6 ports left");
}

/// A `bridge`-role config (the reference plugin's keys) for `net` with
/// the dual-stack `ipam.ranges` IPv6 first, leases under `<root>/ipam`.
fn bridge_role_conf(net: &Net, subnet6: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": net.name, "type": "bridge", "bridge": net.bridge,
        "isGateway": true, "ipMasq": true, "table": net.table,
        "ipam": {"type": "host-local", "dataDir": net.root.join("ipam"), "ranges": [
            [{"subnet": subnet6}],
            [{"subnet": net.subnet(), "gateway": format!("10.250.{}.1", net.n)}]
        ]}
    })
}

/// hull-cni's `bridge` role on a dual-stack network keeps a host-local
/// lease file for each address, `<ipam.dataDir>/<network>/<ip>`; CHECK
/// notices a missing IPv6 one; DEL removes both. A chained `portmap`
/// publishes its ports to both addresses and DEL takes both back.
#[test]
fn cni_bridge_role_dual_stack_leases() {
    in_lab(cni_bridge_role_in_lab);
}

fn cni_bridge_role_in_lab(_lab: PathBuf) {
    let net = Net::new("cnilease", 23);
    let ctr = Sandbox::new();
    let id = unique("cni-lease");
    let conf = bridge_role_conf(&net, "fd42:23::/64");
    let (ok, r) = cni("ADD", &id, &ctr.netns(), &conf);
    assert!(ok, "ADD failed: {r}");
    let addresses: Vec<&str> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["10.250.23.2/24", "fd42:23::2/64"]);
    let leases = net.root.join("ipam").join(&net.name);
    let (v4, v6) = (leases.join("10.250.23.2"), leases.join("fd42:23::2"));
    for lease in [&v4, &v6] {
        let owner = std::fs::read_to_string(lease);
        assert_eq!(
            owner.ok().as_deref(),
            Some(id.as_str()),
            "{}",
            lease.display()
        );
    }
    let mut cached = conf.clone();
    cached["prevResult"] = r.clone();
    let (ok, check) = cni("CHECK", &id, &ctr.netns(), &cached);
    assert!(ok, "CHECK failed: {check}");
    std::fs::remove_file(&v6).unwrap();
    let (ok, check) = cni("CHECK", &id, &ctr.netns(), &cached);
    assert_eq!((ok, &check["code"]), (false, &json!(103)), "{check}");
    std::fs::write(&v6, &id).unwrap();

    let h = port(23);
    let mut portmap = json!({
        "cniVersion": "1.0.0", "name": net.name, "type": "portmap",
        "table": net.table, "dataDir": net.root,
        "capabilities": {"portMappings": true},
        "runtimeConfig": {"portMappings": [{"hostPort": h, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": r
    });
    let (ok, published) = cni("ADD", &id, &ctr.netns(), &portmap);
    assert!(ok, "portmap ADD failed: {published}");
    assert_eq!(net.map_elements_in("ip"), Some(1), "IPv4 port");
    assert_eq!(net.map_elements_in("ip6"), Some(1), "IPv6 port");
    let ip6_maps = net.nft_family("ip6").unwrap().to_string();
    assert!(
        ip6_maps.contains("fd42:23::2"),
        "not published to the IPv6 address: {ip6_maps}"
    );
    let (ok, check) = cni("CHECK", &id, &ctr.netns(), &portmap);
    assert!(ok, "portmap CHECK failed: {check}");
    portmap["runtimeConfig"]["portMappings"][0]["hostPort"] = json!(h + 1);
    let (ok, check) = cni("CHECK", &id, &ctr.netns(), &portmap);
    assert_eq!((ok, &check["code"]), (false, &json!(103)), "{check}");
    let msg = check["msg"].as_str().unwrap();
    assert!(msg.contains("10.250.23.2 and fd42:23::2"), "{msg}");
    portmap["runtimeConfig"]["portMappings"][0]["hostPort"] = json!(h);
    let (ok, del) = cni("DEL", &id, &ctr.netns(), &portmap);
    assert!(ok, "portmap DEL failed: {del}");
    assert_eq!(net.map_elements_in("ip"), Some(0), "IPv4 port left");
    assert_eq!(net.map_elements_in("ip6"), Some(0), "IPv6 port left");

    let (ok, del) = cni("DEL", &id, &ctr.netns(), &cached);
    assert!(ok, "DEL failed: {del}");
    assert!(!v4.exists() && !v6.exists(), "leases left");
    assert_eq!(netns_links(ctr.child.id() as i32), ["lo"]);
}

/// Dual-stack configs hull cannot serve are refused with the CNI error
/// code before anything is made: no state directory, bridge, table or
/// container interface.
#[test]
fn cni_refused_dual_stack_configs_leave_nothing() {
    in_lab(cni_refused_in_lab);
}

fn cni_refused_in_lab(_lab: PathBuf) {
    let net = Net::new("cnirefuse", 24);
    let ctr = Sandbox::new();
    let id = unique("cni-refuse");
    let good = bridge_role_conf(&net, "fd42:24::/64");
    let mut two_ipv4 = good.clone();
    two_ipv4["ipam"]["ranges"][0] = json!([{"subnet": "10.250.124.0/24"}]);
    let mut gateway6 = good.clone();
    gateway6["ipam"]["ranges"][0][0]["gateway"] = json!("fd42:24::fe");
    let mut hull_two_ipv4 = two_ipv4.clone();
    hull_two_ipv4["type"] = json!("hull");
    hull_two_ipv4["ipam"]
        .as_object_mut()
        .unwrap()
        .remove("dataDir");
    let too_small = json!({
        "cniVersion": "1.0.0", "name": net.name, "type": "hull", "bridge": net.bridge,
        "subnet": net.subnet(), "subnet6": "fd42:24::/121",
        "dataDir": net.root, "table": net.table
    });
    for (what, conf, code) in [
        ("two IPv4 ranges", two_ipv4, 2),
        ("IPv6 gateway not the first address", gateway6, 2),
        ("two IPv4 ranges, hull type", hull_two_ipv4, 2),
        ("IPv6 subnet too small for the IPv4 one", too_small, 7),
    ] {
        let (ok, e) = cni("ADD", &id, &ctr.netns(), &conf);
        assert_eq!((ok, &e["code"]), (false, &json!(code)), "{what}: {e}");
        assert!(!net.root.exists(), "{what}: state directory made");
        assert!(!link_in_netns(&net.bridge), "{what}: bridge made");
        assert!(net.nft_family("ip").is_none(), "{what}: ip table made");
        assert!(net.nft_family("ip6").is_none(), "{what}: ip6 table made");
        assert_eq!(netns_links(ctr.child.id() as i32), ["lo"], "{what}");
    }
}

/// (13) A `delete --force` killed while its poststop hook runs: the
/// attachment (veth, lease, published port, records) went before the state,
/// so nothing of it is left, and the hook died with hull.
#[test]
fn a_delete_killed_during_poststop_leaves_no_attachment() {
    let net = Net::new("killdel", 13);
    net.create();
    let mut c = net.ctr("net13-killdel");
    let marker = c.dir.join("poststop-running");
    let hook = format!(
        "touch {}; exec sleep 31.13{}",
        marker.display(),
        std::process::id()
    );
    c.edit(|cfg| {
        cfg["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]})
    });
    c.args(&["sleep", "600"]);
    c.run_detached(&[
        "--network",
        &net.name,
        "-p",
        &format!("127.0.0.1:{}:80", port(13)),
    ]);
    let veth = net.attachment(&c.id)["host_veth"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut delete = c
        .hull_net()
        .args(["delete", "--force", &c.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(30, || marker.exists());
    assert!(marker.exists(), "the poststop hook never ran");
    delete.kill().unwrap();
    delete.wait().unwrap();
    assert_detached(&net, &c, &veth);
    assert_no_process(&format!("sleep 31.13{}", std::process::id()));
    assert!(c.hull_cmd(&["delete", "--force", &c.id]).status.success());
}
