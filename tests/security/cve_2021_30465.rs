//! CVE-2021-30465: a mount destination swapped for a symlink while the
//! runtime mounts.
//!
//! The attack: a container shares a volume with the one being created,
//! whose config mounts something on a directory of that volume; it keeps
//! exchanging that directory with a symlink (to `/` in the original
//! exploit). runc checked the destination inside the rootfs, then passed
//! the path to mount(2), which followed a symlink swapped in between on the
//! host, covering a path outside the container. hull resolves the
//! destination once, inside the rootfs (openat2 RESOLVE_IN_ROOT), and
//! mounts on that fd, so a symlink met is read as a path in the container
//! and no later swap changes the target.
//!
//! Here the symlink names the host path of the container's own `/etc`: a
//! mount that followed it on the host would cover `/etc` in the container,
//! which the test can see from outside, while the symlink read inside the
//! rootfs names a new directory there. The racer is a thread of the test
//! (renameat2(RENAME_EXCHANGE) in the volume's host directory), which is
//! what a process of another container sharing the volume can do; the
//! busybox image has no renameat2.

use std::os::unix::fs::symlink;
use std::path::Path;

use hull_tests::*;
use serde_json::json;

use super::support::Racer;

/// How many creations race the swaps.
const ROUNDS: usize = 25;

/// The source name of the raced tmpfs, to find it in mountinfo.
const SOURCE: &str = "hull-test-cve-2021-30465";

/// Where the tmpfs is mounted in the container of `pid`, from its mountinfo.
fn raced_mount_point(pid: i32) -> String {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let points: Vec<&str> = info
        .lines()
        .filter(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.split(' ').nth(1) == Some(SOURCE))
        })
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    assert_eq!(points.len(), 1, "the raced tmpfs in the container: {info}");
    points[0].to_owned()
}

#[test]
fn a_swapped_mount_destination_never_leaves_the_rootfs() {
    let mut b = TestBundle::new("cve-2021-30465");
    let rootfs = b.own_rootfs();
    let shared = b.dir.join("shared");
    std::fs::create_dir_all(shared.join("dir")).unwrap();
    let etc = rootfs.join("etc");
    symlink(&etc, shared.join("link")).unwrap();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({
            "destination": "/shared", "type": "bind",
            "source": shared.to_str().unwrap(), "options": ["rbind"]
        }));
        mounts.push(json!({ "destination": "/shared/dir", "type": "tmpfs", "source": SOURCE }));
    });
    b.args(&["sleep", "30"]);
    // The symlink read inside the rootfs: the host path, below the rootfs.
    let through_link = Path::new("/").join(etc.strip_prefix("/").unwrap());
    let racer = Racer::start(&shared, "dir", "link");
    let (mut in_volume, mut via_link) = (0, 0);
    for _ in 0..ROUNDS {
        let out = b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
        if out.status.success() {
            let pid = b.init_pid();
            let point = raced_mount_point(pid);
            assert_ne!(point, "/etc", "the tmpfs covered the container's /etc");
            if point.starts_with("/shared/") {
                in_volume += 1;
            } else {
                assert_eq!(Path::new(&point), through_link, "tmpfs at {point}");
                via_link += 1;
            }
            let passwd = format!("/proc/{pid}/root/etc/passwd");
            assert!(Path::new(&passwd).is_file(), "/etc is covered");
        }
        let _ = b.cmd(&["delete", "--force", &b.id]);
        assert_no_mount(SOURCE);
    }
    assert!(racer.swaps() > 0, "the racer never ran");
    drop(racer);
    // Both outcomes were seen: the race was run, and every mount stayed in.
    assert!(
        in_volume > 0 && via_link > 0,
        "rounds in the volume {in_volume}, through the link {via_link}"
    );
    b.assert_no_state();
}
