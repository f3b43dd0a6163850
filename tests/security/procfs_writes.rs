//! CVE-2025-52881: the runtime's own writes into procfs (sysctls,
//! `oom_score_adj`, LSM attributes) must reach procfs. A config that mounts
//! a host file or a tmpfs over the path written would otherwise take the
//! write: a bind of a host sysctl there would set it on the host. hull opens
//! them below a checked `/proc` without crossing mounts and refuses.
//!
//! Before the guard each of these configs ran, and the planted file held
//! the value hull meant for procfs.

use super::*;

/// Runs `b`, which must fail naming `path`, leaving nothing and the planted
/// file as it was.
fn refused(b: &TestBundle, planted: &Planted, path: &str) {
    assert_fails(&run(b, &[]), &[&format!("refusing to write {path}")]);
    assert_eq!(
        planted.read(),
        "planted\n",
        "the write reached the planted file"
    );
    assert_nothing_left(b);
}

#[test]
fn a_sysctl_is_not_written_to_a_file_bound_over_it() {
    let planted = Planted::new("planted-shmmax", "planted\n");
    let mut b = TestBundle::new("procfs-sysctl");
    b.sh("echo should-not-run");
    b.edit(|c| {
        let bind = json!({"destination": "/proc/sys/kernel/shmmax", "type": "bind",
                          "source": planted.str(), "options": ["bind"]});
        add_mount(c, bind);
        c["linux"]["sysctl"] = json!({"kernel.shmmax": "4096"});
    });
    refused(&b, &planted, "/proc/sys/kernel/shmmax");
}

#[test]
fn a_sysctl_is_not_written_into_a_tmpfs_over_its_directory() {
    let planted = Planted::new("planted-unused", "planted\n");
    let mut b = TestBundle::new("procfs-tmpfs");
    b.sh("echo should-not-run");
    b.edit(|c| {
        let tmpfs = json!({"destination": "/proc/sys/kernel", "type": "tmpfs",
                           "source": "tmpfs", "options": ["size=64k"]});
        add_mount(c, tmpfs);
        c["linux"]["sysctl"] = json!({"kernel.shmmax": "4096"});
    });
    refused(&b, &planted, "/proc/sys/kernel/shmmax");
}

#[test]
fn oom_score_adj_is_not_written_to_a_file_bound_over_it() {
    let planted = Planted::new("planted-oom", "planted\n");
    let mut b = TestBundle::new("procfs-oom");
    b.sh("echo should-not-run");
    b.edit(|c| {
        // `self` resolves to the init (pid 1 of the container's procfs).
        let bind = json!({"destination": "/proc/self/oom_score_adj", "type": "bind",
                          "source": planted.str(), "options": ["bind"]});
        add_mount(c, bind);
        c["process"]["oomScoreAdj"] = json!(123);
    });
    refused(&b, &planted, "/proc/self/oom_score_adj");
}

#[test]
fn writes_without_mounts_over_them_still_reach_procfs() {
    let mut b = TestBundle::new("procfs-plain");
    b.edit(|c| {
        c["process"]["oomScoreAdj"] = json!(123);
        c["linux"]["sysctl"] = json!({"kernel.shmmax": "4096"});
    });
    b.sh("cat /proc/self/oom_score_adj /proc/sys/kernel/shmmax");
    assert_eq!(run(&b, &[]).ok(), "123\n4096\n");
    assert_nothing_left(&b);
}
