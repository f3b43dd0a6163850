use super::*;

#[test]
fn names_fit_ifnamsiz_and_are_stable() {
    assert_eq!(bridge_name("hull"), "hull0");
    assert!(bridge_name("a-very-long-network-name").len() <= 15);
    let v = veth_name("container-1", "eth0");
    assert_eq!(v.len(), 13);
    assert_eq!(v, veth_name("container-1", "eth0"));
    assert_ne!(v, veth_name("container-2", "eth0"));
}

#[test]
fn long_names_sharing_their_start_get_their_own_bridges() {
    let a = bridge_name("rel-a-longname-1");
    let b = bridge_name("rel-a-longname-2");
    assert_ne!(a, b);
    assert!(a.len() <= 15 && b.len() <= 15, "{a} {b}");
    assert_eq!(a, bridge_name("rel-a-longname-1"));
    assert_eq!(bridge_name("short"), "hull-short");
}

#[test]
fn a_network_name_cannot_leave_the_store() {
    // Nothing is read or made: the name is refused before it is a path.
    let store = Store::new("/nonexistent-hull-store", "t");
    for name in ["../x", "a/b", "..", ""] {
        assert!(
            matches!(store.get(name), Err(NetError::Invalid(_))),
            "{name:?}"
        );
    }
}

#[test]
fn reserved_ranges_are_refused() {
    for s in [
        "0.0.0.0/24",
        "127.5.0.0/16",
        "169.254.1.0/24",
        "224.1.0.0/16",
        "250.0.0.0/8",
    ] {
        let err = check_not_reserved(s.parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("reserved range"), "{s}: {err}");
    }
    assert!(check_not_reserved("10.1.0.0/24".parse().unwrap()).is_ok());
}

#[test]
fn picks_a_subnet_clear_of_routes() {
    let taken: Vec<Subnet> = ["172.17.0.0/16", "172.18.5.0/24", "0.0.0.0/0"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.19.0.0/16");
}

/// A throwaway network (private store dir and nf_tables table) and a
/// process sitting in a network namespace of its own; all removed on drop.
struct Lab {
    store: Store,
    net: Network,
    table: String,
    dir: PathBuf,
    sleeper: std::process::Child,
}

impl Lab {
    fn new(name: &str, subnet: &str, bridge_prefix: &str) -> Self {
        let tag = std::process::id();
        let dir = std::env::temp_dir().join(format!("hull-test-net-{name}-{tag}"));
        let table = format!("hull_test_{name}_{tag}");
        let store = Store::new(&dir, &table);
        let bridge = format!("{bridge_prefix}{}", tag % 100_000);
        let options = NetworkOptions {
            subnet: Some(subnet.parse().unwrap()),
            bridge: Some(bridge),
            ..NetworkOptions::default()
        };
        let net = store
            .create_with(&format!("{name}{tag}"), &options)
            .unwrap();
        let sleeper = std::process::Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        Self {
            store,
            net,
            table,
            dir,
            sleeper,
        }
    }

    fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.sleeper.id()))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
        let _ = self.store.remove(&self.net.name);
        let _ = Firewall::new(&self.table).delete_table();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A crash after any wiring step (the attachment record is written
/// first) is undone by the next detach: no veth, lease, record or
/// published port is left, and the same ports can be published again.
#[test]
fn detach_recovers_from_a_crash_after_every_step() {
    let lab = Lab::new("crash", "10.250.200.0/24", "hulltc");
    let (store, net) = (&lab.store, &lab.net);
    let ports: Vec<PortMapping> = vec!["127.0.0.1:28991:80".parse().unwrap()];
    for steps in 0..=WIRE_STEPS {
        let ns = File::open(lab.netns()).unwrap();
        let ip = store.ipam(net).allocate("crashy").unwrap();
        let att = Attachment {
            network: net.name.clone(),
            container: "crashy".into(),
            ifname: "eth0".into(),
            host_veth: veth_name("crashy", "eth0"),
            ip,
            prefix: net.subnet.prefix,
            gateway: net.gateway,
            ip6: None,
            gateway6: None,
            ports: ports.clone(),
            published: false,
            state_root: None,
        };
        write_json(&store.attachment_file("crashy", "eth0"), &att).unwrap();
        store.wire_steps(net, &att, &ns, steps).unwrap();
        // "Crash" here; the next teardown must undo whatever was done.
        store.detach("crashy", "eth0").unwrap();
        let mut nl = Route::open().unwrap();
        assert_eq!(
            link::index(&mut nl, &att.host_veth).unwrap(),
            None,
            "veth left after step {steps}"
        );
        assert!(
            store.ipam(net).leases().unwrap().is_empty(),
            "lease left after step {steps}"
        );
        assert!(
            store.attachments(None).unwrap().is_empty(),
            "record left after step {steps}"
        );
        // The port is free again: publishing it anew succeeds.
        store
            .firewall()
            .ensure_network(&net.bridge, net.subnet)
            .unwrap();
        store.firewall().add_ports(ip, &ports).unwrap();
        store.firewall().remove_ports(ip, &ports).unwrap();
    }
}

/// Later attaches skip re-reading the ruleset; if hull's table vanished
/// meanwhile, the next attach puts the network's rules back.
#[test]
fn attach_restores_a_table_that_vanished() {
    let lab = Lab::new("vanish", "10.250.201.0/24", "hulltv");
    let (store, net, netns) = (&lab.store, &lab.net, lab.netns());
    let ports: Vec<PortMapping> = vec!["127.0.0.1:28992:80".parse().unwrap()];
    store
        .attach(net, "first", "eth0", &netns, &ports, None)
        .unwrap();
    assert!(store.firewall_marker(net).exists());
    store.detach("first", "eth0").unwrap();
    Firewall::new(&lab.table).delete_table().unwrap();
    let att = store
        .attach(net, "second", "eth0", &netns, &ports, None)
        .unwrap();
    // Published again: the same mapping for another address now clashes.
    let other = Ipv4Addr::new(10, 250, 201, 250);
    let clash = store.firewall().add_ports(other, &ports).unwrap_err();
    assert_eq!(clash.errno(), Some(libc::EEXIST), "{clash}");
    store.detach(&att.container, "eth0").unwrap();
}
