//! The shared CNI smoke test (26+ connectivity and cleanup checks of a
//! docker0-style chain) against hull's plugin directory: hull-cni in the
//! roles of `bridge`, `portmap`, `loopback` and `host-local`.

use std::path::Path;
use std::process::Command;

use bridge::nft::Firewall;
use hull_tests::*;

/// Removes what the smoke script cannot know about: hull's rules for its
/// lab bridge, kept (by design) after the last DEL.
struct LabRules;

impl Drop for LabRules {
    fn drop(&mut self) {
        let _ = Firewall::new("hull")
            .remove_network("labbr0", "10.231.0.0/24".parse::<bridge::Subnet>().unwrap());
    }
}

#[test]
fn shared_cni_smoke_test_passes_with_hull_plugins() {
    let script = workspace()
        .parent()
        .unwrap()
        .join("shared/tools/net/cni-smoke.sh");
    let dir = std::env::temp_dir().join(unique("cni-plugins"));
    let plugin = workspace().join("target/debug/hull-cni");
    let ok = Command::new(workspace().join("fixtures/cni/make-plugin-dir.sh"))
        .arg(&dir)
        .arg(&plugin)
        .status()
        .unwrap()
        .success();
    assert!(ok, "make-plugin-dir.sh failed");
    let _rules = LabRules;
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "cni-smoke.sh failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    assert!(
        !Path::new("/run/netns/labsmoke1").exists(),
        "smoke netns left behind"
    );
}
