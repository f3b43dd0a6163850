//! `--no-pivot` chroots into the rootfs instead of pivoting, so the host's
//! `/proc` and `/sys` stay in the container's mount namespace. The kernel
//! lets a new user namespace mount a procfs only while a full, uncovered one
//! is there: from a `--no-pivot` container a nested user and pid namespace
//! could then mount an unmasked procfs (runc hides those mounts in
//! msMoveRoot; no CVE was assigned). hull detaches them before the chroot.

use super::*;

/// The nested namespaces mount a procfs. The container runs as uid 1000:
/// mapping uid 0 of the parent (`unshare -r` as root) needs CAP_SETFCAP,
/// which the default capabilities lack, while mapping one's own non-zero uid
/// needs nothing.
const NESTED_PROC: &str = "unshare -mrpf sh -c 'mount -t proc none /proc && echo mounted'; \
                           echo exit=$?";

/// The host's procfs and sysfs mounts (id and mount point), as this
/// process sees them.
fn host_pseudo_mounts() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| l.contains(" - proc ") || l.contains(" - sysfs "))
        .map(|l| l.split(' ').take(5).collect::<Vec<_>>().join(" "))
        .collect()
}

fn nested_proc_mount(name: &str, extra: &[&str]) -> String {
    let mut b = TestBundle::new(name);
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    b.sh(NESTED_PROC);
    let out = run(&b, extra);
    let stdout = out.ok().to_owned();
    assert_nothing_left(&b);
    stdout
}

#[test]
fn a_nested_proc_mount_fails_under_no_pivot() {
    let before = host_pseudo_mounts();
    assert!(!before.is_empty(), "the host has no procfs mount");
    let out = nested_proc_mount("nopivot-proc", &["--no-pivot"]);
    assert_eq!(out, "exit=1\n", "the nested procfs mount succeeded");
    // The host's own mounts were not detached with the container's copies.
    assert_eq!(host_pseudo_mounts(), before);
}

#[test]
fn a_nested_proc_mount_fails_with_pivot_root_too() {
    // The control: pivot_root detaches the whole old root, so the same
    // attack fails there as well (it did before the guard, too).
    let out = nested_proc_mount("pivot-proc", &[]);
    assert_eq!(out, "exit=1\n");
}

#[test]
fn no_pivot_containers_still_get_their_own_proc_and_sys() {
    let mut b = TestBundle::new("nopivot-procsys");
    b.sh("stat -f -c %T /proc /sys; cat /proc/1/comm; true");
    assert_eq!(run(&b, &["--no-pivot"]).ok(), "proc\nsysfs\nsh\n");
    assert_nothing_left(&b);
}
