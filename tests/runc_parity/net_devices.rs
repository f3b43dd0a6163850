//! `linux.netDevices`: host interfaces moved into the container's network
//! namespace, checked as runc 1.2+ checks them. The devices are dummies
//! named `hull-test-*` (at most 15 bytes, the kernel's limit).

use std::process::Command;

use hull_tests::*;
use serde_json::json;

/// `ip ARGS...` on the host; its output, or None if it failed.
fn ip(args: &[&str]) -> Option<String> {
    let out = Command::new("ip").args(args).output().expect("run ip");
    out.status.success().then(|| text(&out.stdout))
}

/// A veth pair on the host, the end to move and its peer (whose name has
/// the tag in upper case); deleted (if still there) when dropped.
struct Veth(String);

impl Veth {
    fn new(tag: char) -> Self {
        require("ip");
        let n = std::process::id() % 10_000;
        let name = format!("hull-test-{tag}{n}");
        let peer = format!("hull-test-{}{n}", tag.to_ascii_uppercase());
        let _ = ip(&["link", "del", &name]);
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .expect("add a veth pair");
        Veth(name)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
    }
}

/// A named network namespace (`ip netns`), deleted when dropped.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// The device arrives renamed, up, with its permanent global address (not
/// its host-scoped one) and its MTU; it is gone from the host; `features`
/// says so. With the container's own namespace, a virtual device is
/// destroyed with it at `delete` (the spec forbids moving it back; a
/// physical one would return to the host under its inside name).
#[test]
fn a_host_device_moves_in_renamed_with_its_address() {
    let dev = Veth::new('a');
    ip(&["link", "set", "mtu", "1789", "dev", &dev.0]).unwrap();
    ip(&["addr", "add", "192.0.2.77/24", "dev", &dev.0]).unwrap();
    ip(&["addr", "add", "127.0.0.33/8", "dev", &dev.0]).unwrap();
    let features: serde_json::Value = serde_json::from_str(
        Out::from(output_via_files(Command::new(hull_bin()).arg("features"))).ok(),
    )
    .unwrap();
    assert_eq!(features["linux"]["netDevices"]["enabled"], true);

    let mut b = TestBundle::new("netdev");
    let name = dev.0.clone();
    b.edit(|c| c["linux"]["netDevices"] = json!({name: {"name": "ctr0"}}));
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let out = Out::from(b.cmd(&["exec", &b.id, "ip", "addr", "show", "dev", "ctr0"]));
    let shown = out.ok();
    assert!(shown.contains("mtu 1789"), "{shown}");
    assert!(shown.contains("inet 192.0.2.77/24"), "{shown}");
    assert!(
        !shown.contains("127.0.0.33"),
        "a host-scoped address moved: {shown}"
    );
    assert!(shown.contains(",UP"), "not up: {shown}");
    assert!(ip(&["link", "show", &dev.0]).is_none(), "still on the host");
    b.delete_and_check(true);
    assert!(ip(&["link", "show", &dev.0]).is_none(), "back on the host");
    assert!(ip(&["link", "show", "ctr0"]).is_none(), "ctr0 on the host");
}

/// With a namespace the container joins (`path`), the device stays in it
/// after `delete --force`: its owner decides (the spec; runc's own test).
/// A `%d` in the name is the kernel's to fill.
#[test]
fn a_device_stays_in_a_joined_namespace_after_delete() {
    let dev = Veth::new('b');
    let ns = NetNs(unique("netdev-ns"));
    ip(&["netns", "add", &ns.0]).expect("ip netns add");
    let mut b = TestBundle::new("netdev-joined");
    let (name, path) = (dev.0.clone(), format!("/run/netns/{}", ns.0));
    b.edit(|c| {
        c["linux"]["netDevices"] = json!({name: {"name": "in%d"}});
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(path);
            }
        }
    });
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    b.delete_and_check(true);
    let inside = ip(&["-n", &ns.0, "link", "show", "in0"]);
    assert!(inside.is_some_and(|s| s.contains(",UP")), "not in {}", ns.0);
}

/// runc's checks, each before anything is made: the device exists, the
/// names are valid, the container has a network namespace, no two devices
/// take one name; and a name already inside is refused by the kernel at
/// the move, with the container torn down and the device not lost.
#[test]
fn bad_net_devices_are_refused() {
    let dev = Veth::new('c');
    let missing = format!("hull-test-z{}", std::process::id() % 10_000);
    let other = Veth::new('d');
    let cases = [
        (
            json!({&missing: {}}),
            true,
            "does not exist on the host".to_owned(),
        ),
        (
            json!({"a/b": {}}),
            true,
            r#"invalid network device name \"a/b\""#.into(),
        ),
        (
            json!({&dev.0: {"name": "bad name"}}),
            true,
            r#"invalid network device name \"bad name\""#.into(),
        ),
        (
            json!({&dev.0: {}}),
            false,
            "unable to move network devices without a NET namespace".into(),
        ),
        (
            json!({&dev.0: {"name": "x0"}, &other.0: {"name": "x0"}}),
            true,
            "would both be x0".into(),
        ),
        (
            json!({&dev.0: {"name": "lo"}}),
            true,
            "lo already exists in the container".into(),
        ),
    ];
    for (devices, netns, needle) in cases {
        let mut b = TestBundle::new("netdev-bad");
        b.edit(|c| {
            c["linux"]["netDevices"] = devices.clone();
            if !netns {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "network");
            }
        });
        b.args(&["true"]);
        let (code, _, err) = b.run();
        assert_ne!(code, 0, "{devices}");
        assert!(err.contains(&needle), "{devices}: {err}");
        b.assert_no_state();
        assert_no_process(&b.id);
        assert!(
            ip(&["link", "show", &dev.0]).is_some(),
            "{devices}: device lost"
        );
    }
}
