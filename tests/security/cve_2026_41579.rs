//! CVE-2026-41579: `/dev` setup redirected by symlinks in the image.
//!
//! The attack: an image whose `/dev` is a symlink to a host path (or whose
//! `/dev/ptmx`, `/dev/null`, `/dev/net` are symlinks) while the runtime
//! builds `/dev` before pivot_root with plain paths: runc removed a host
//! file named `ptmx` and made its links and nodes there. hull resolves
//! `/dev` and every node's directory inside the rootfs (openat2
//! RESOLVE_IN_ROOT) and works below those fds, replacing a planted link
//! rather than following it, so the host directory the links name is left
//! exactly as it was.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use hull_tests::*;
use serde_json::json;

use super::support::listing;

/// A host directory the image's links aim at, with a `ptmx` and a `null`
/// of its own; returns its path.
fn host_target(b: &TestBundle) -> PathBuf {
    let host = b.dir.join("host-dev");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("ptmx"), "host file").unwrap();
    std::fs::write(host.join("null"), "host file").unwrap();
    host
}

/// Runs `b` (which checks its own /dev) and asserts `host` is unchanged.
fn run_and_check_host(b: &mut TestBundle, host: &Path) {
    let before = listing(host);
    b.edit(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666
        }]);
    });
    b.sh("test -c /dev/null && test -c /dev/net/tun && test -L /dev/ptmx && echo dev-ok");
    let out = b.run_ok();
    assert_eq!(out.trim(), "dev-ok");
    assert_eq!(listing(host), before, "the host directory changed");
    for name in ["ptmx", "null"] {
        let kept = std::fs::read_to_string(host.join(name)).unwrap();
        assert_eq!(kept, "host file", "host {name} was replaced");
    }
}

/// Removes the config's `/dev` tmpfs, so hull makes the nodes in the
/// image's own `/dev`.
fn no_dev_tmpfs(b: &mut TestBundle) {
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/dev");
    });
}

#[test]
fn a_dev_symlink_to_a_host_path_stays_in_the_rootfs() {
    for tmpfs in [true, false] {
        let mut b = TestBundle::new("cve-2026-41579-dev");
        let rootfs = b.own_rootfs();
        let host = host_target(&b);
        std::fs::remove_dir(rootfs.join("dev")).unwrap();
        symlink(&host, rootfs.join("dev")).unwrap();
        if !tmpfs {
            no_dev_tmpfs(&mut b);
        }
        run_and_check_host(&mut b, &host);
    }
}

#[test]
fn symlinks_inside_dev_are_replaced_not_followed() {
    let mut b = TestBundle::new("cve-2026-41579-links");
    let rootfs = b.own_rootfs();
    let host = host_target(&b);
    for name in ["ptmx", "null"] {
        symlink(host.join(name), rootfs.join("dev").join(name)).unwrap();
    }
    symlink(&host, rootfs.join("dev/net")).unwrap();
    symlink(&host, rootfs.join("dev/fd")).unwrap();
    no_dev_tmpfs(&mut b);
    run_and_check_host(&mut b, &host);
}
