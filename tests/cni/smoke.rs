//! The CNI smoke test (`fixtures/cni/smoke.sh`: ADD, CHECK, connectivity from
//! the host, from outside and from the container, DEL and what it removes)
//! against hull's plugin directory: hull-cni in the roles of `bridge`,
//! `portmap`, `loopback` and `host-local`.

use std::path::Path;
use std::process::Command;

use bridge::Firewall;
use hull_tests::*;

/// Removes what the smoke script cannot know about: hull's rules for its
/// test bridge, kept (by design) after the last DEL.
struct BridgeRules;

impl Drop for BridgeRules {
    fn drop(&mut self) {
        clean_up("hull's rules for hull-test-br0", || {
            let subnet = "10.237.0.0/24".parse::<bridge::Subnet>().unwrap();
            if let Err(e) = Firewall::new("hull").remove_network("hull-test-br0", subnet) {
                eprintln!("clean-up: hull's rules for hull-test-br0: {e}");
            }
        });
    }
}

#[test]
fn cni_smoke_test_passes_with_hull_plugins() {
    let dir = std::env::temp_dir().join(unique("cni-plugins"));
    let plugin = workspace().join("target/debug/hull-cni");
    let ok = Command::new(workspace().join("fixtures/cni/make-plugin-dir.sh"))
        .arg(&dir)
        .arg(&plugin)
        .status()
        .unwrap()
        .success();
    assert!(ok, "make-plugin-dir.sh failed");
    let _rules = BridgeRules;
    let out = Command::new(workspace().join("fixtures/cni/smoke.sh"))
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "smoke.sh failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("PASS  CHECK"), "{stdout}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for ns in ["hull-test-cni-c", "hull-test-cni-x"] {
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "netns {ns} left behind"
        );
    }
}
