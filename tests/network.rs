//! docker0-style networking: host → container, published ports on 127.0.0.1,
//! the gateway and an uplink from another network namespace, outbound
//! masquerade, hairpin NAT, UDP, port conflicts, parallel attachments,
//! teardown (also after the netns is gone), the network lifecycle, the
//! annotations, eth0 being there from the container's first instruction,
//! and dual stack. (The CNI plugin's tests are in tests/cni/.)
//!
//! Isolation: every hull call gets its own `--net-root` and `--net-table`;
//! each test has its own network `tNN-<pid mod 100000>` (bridge
//! `hull-tNN-<pid mod 100000>`) on 10.250.NN.0/24, its own host ports 28000+10·NN…
//! and, where it needs "another host", a netns joined to the host by a veth
//! pair `hulltestupNN` on 10.249.NN.0/24. Only the default-network test uses
//! the host-global bridge name `hull0`; it holds a file lock for that. Every
//! resource is removed by a guard, also when a test fails.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
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
    let mut delete = spawn_quiet(c.hull_net().args(["delete", "--force", &c.id]));
    wait_until(30, || marker.exists());
    assert!(marker.exists(), "the poststop hook never ran");
    delete.kill().unwrap();
    delete.wait().unwrap();
    assert_detached(&net, &c, &veth);
    assert_no_process(&format!("sleep 31.13{}", std::process::id()));
    assert!(c.hull_cmd(&["delete", "--force", &c.id]).status.success());
}
