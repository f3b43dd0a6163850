//! hull-cni's own roles on dual-stack networks: the `hull` type's ADD,
//! CHECK and DEL; the `bridge` role's host-local leases with a chained
//! `portmap`; configs it cannot serve, refused before anything is made.
//!
//! Each test runs in a network namespace of its own (see [`in_lab`]) on
//! its own network `tNN-<pid mod 100000>` on 10.250.NN.0/24 and
//! fd42:NN::/64 (NN 22 to 24, as in network.rs's numbering), host ports
//! 28000+10·NN….

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hull_tests::cni::cni;
use hull_tests::net::port;
use hull_tests::netlab::*;
use hull_tests::*;
use serde_json::{json, Value};

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
