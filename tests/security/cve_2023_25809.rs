//! CVE-2023-25809: a writable host cgroup in a container without a cgroup
//! namespace.
//!
//! The attack: rootless runc without a cgroup namespace could not mount
//! cgroup2, fell back to binding the host's hierarchy (or, with `/sys`
//! bound `rbind,ro` as `runc spec --rootless` makes it, left the bound
//! `/sys/fs/cgroup` as it came) and lost the `ro`: the container could then
//! write the user's own cgroups on the host (move processes, change
//! limits, make cgroups). hull builds `/sys/fs/cgroup` itself (a tmpfs with
//! one bind per hierarchy, or one fresh mount) and applies the entry's
//! flags to the whole tree in one `mount_setattr`, so with `ro` every mount
//! under it is read-only and no write reaches the host.
//!
//! Both ways in are tested: hull run as an unprivileged user with the
//! config of `hull spec --rootless`, and as root with the default config;
//! neither has a cgroup namespace. With the rootless config hull's tree
//! covers the host's hierarchies that the `/sys` rbind brought; a container
//! allowed to unmount it found them writable, so they are made read-only
//! as well (`make_covered_read_only`).

use hull_tests::*;
use serde_json::json;

/// The unprivileged user hull runs as (as in the rootless tests).
const USER: u32 = 1001;

/// Lists the container's cgroup mounts (mount point and per-mount options)
/// and tries to make a cgroup and move itself in each hierarchy.
const PROBE: &str = r#"
    awk '$5 ~ "^/sys/fs/cgroup" {print "mount", $5, $6}' /proc/self/mountinfo
    for d in /sys/fs/cgroup/ /sys/fs/cgroup/*/; do
        mkdir "${d}hull-test-probe" 2>/dev/null && { echo "mkdir-ok $d"; rmdir "${d}hull-test-probe"; }
        [ -e "${d}cgroup.procs" ] && { echo $$ 2>/dev/null >"${d}cgroup.procs" && echo "write-ok $d"; }
    done
    echo probed
"#;

/// Every cgroup mount the probe saw is read-only, and no write got through.
fn assert_read_only(out: &str) {
    assert!(out.contains("probed"), "{out}");
    let mounts: Vec<&str> = out.lines().filter(|l| l.starts_with("mount ")).collect();
    assert!(
        !mounts.is_empty(),
        "no cgroup mount in the container: {out}"
    );
    for m in &mounts {
        let options = m.split(' ').nth(2).unwrap_or_default();
        assert!(
            options.split(',').any(|o| o == "ro"),
            "writable: {m} in {out}"
        );
    }
    assert!(
        !out.contains("mkdir-ok") && !out.contains("write-ok"),
        "{out}"
    );
}

/// A bundle for [`USER`] with the config of `hull spec --rootless` (no
/// cgroup namespace), hull run as the user from a copy it can reach, and
/// `script` as the process.
fn rootless_bundle(
    name: &str,
    script: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> TestBundle {
    let mut b = TestBundle::new(name);
    b.own_rootfs();
    b.user = Some((USER, USER));
    let copy = b.dir.join("hull");
    std::fs::copy(&b.bin, &copy).unwrap();
    b.bin = copy;
    let spec_dir = b.dir.join("spec");
    std::fs::create_dir(&spec_dir).unwrap();
    chown_r(&b.dir, USER);
    let spec = Out::from(output_via_files(
        b.hull_without_root()
            .args(["spec", "--rootless", "--bundle"])
            .arg(&spec_dir),
    ));
    spec.ok();
    let config = std::fs::read_to_string(spec_dir.join("config.json")).unwrap();
    b.config = serde_json::from_str(&config).unwrap();
    let namespaces = b.config["linux"]["namespaces"].as_array().unwrap();
    assert!(
        !namespaces.iter().any(|n| n["type"] == "cgroup"),
        "the rootless spec has a cgroup namespace"
    );
    b.config["root"] = json!({ "path": "rootfs", "readonly": false });
    b.config["process"]["terminal"] = json!(false);
    edit(&mut b.config);
    b.sh(script);
    chown_r(&b.dir, USER);
    b
}

#[test]
fn a_rootless_container_cannot_write_host_cgroups() {
    let b = rootless_bundle("cve-2023-25809-rootless", PROBE, |_| {});
    assert_read_only(&b.run_ok());
}

/// `spec --rootless` binds `/sys` with `rbind`, which brings the host's
/// cgroup mounts (writable) under the read-only tree hull mounts on
/// `/sys/fs/cgroup`. A container given CAP_SYS_ADMIN (in its own user
/// namespace) can unmount that tree: what it uncovers must be read-only too.
#[test]
fn unmounting_the_cgroup_tree_uncovers_nothing_writable() {
    let uncover =
        format!("umount /sys/fs/cgroup/* && umount /sys/fs/cgroup && echo uncovered; {PROBE}");
    let b = rootless_bundle("cve-2023-25809-uncover", &uncover, |c| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push(json!("CAP_SYS_ADMIN"));
        }
    });
    let out = b.run_ok();
    assert!(
        out.contains("uncovered"),
        "the tree was not unmounted: {out}"
    );
    assert_read_only(&out);
}

#[test]
fn a_root_container_without_cgroupns_cannot_write_host_cgroups() {
    let mut b = TestBundle::new("cve-2023-25809-root");
    b.sh(PROBE);
    assert_read_only(&b.run_ok());
}
