//! CVE-2024-45310: files and directories made on the host through a racing
//! symlink in a shared volume.
//!
//! The attack: two containers share a volume; the one being created has
//! mounts whose destinations lie below that volume, and the other keeps
//! swapping a directory of the volume with a symlink to a host path. runc
//! made the missing destination (an empty directory, or an empty file for
//! a file bind) with plain path calls, so a well-timed swap made them on the
//! host. hull makes every component below an fd resolved inside the rootfs
//! (openat2 RESOLVE_IN_ROOT), so the symlink is read as a path in the
//! container and nothing appears outside it.
//!
//! The racer is a thread of the test doing renameat2(RENAME_EXCHANGE) in the
//! volume's host directory: a process of another container that has the
//! volume can make the same calls, and the busybox image has no renameat2.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use hull_tests::*;
use serde_json::json;

use super::support::{listing, Racer};

/// How many creations race the swaps.
const ROUNDS: usize = 30;

/// A bundle whose `/shared` is host directory `shared` (holding `dir` and
/// `link -> <host>`); returns it with the volume and the host directory.
fn volume_bundle(name: &str) -> (TestBundle, PathBuf, PathBuf) {
    let mut b = TestBundle::new(name);
    b.own_rootfs();
    let shared = b.dir.join("shared");
    let host = b.dir.join("host");
    std::fs::create_dir_all(shared.join("dir")).unwrap();
    std::fs::create_dir(&host).unwrap();
    symlink(&host, shared.join("link")).unwrap();
    std::fs::write(b.dir.join("file-source"), "bound").unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "bind",
            "source": shared.to_str().unwrap(), "options": ["rbind"]
        }));
    });
    b.args(&["true"]);
    (b, shared, host)
}

/// Sets the bundle's last two mounts to a file bind and a tmpfs whose
/// destinations (fresh for each `round`, so hull has to make them) lie
/// below `/shared/dir`.
fn mounts_below_the_volume(b: &mut TestBundle, round: usize) {
    let file = b.dir.join("file-source");
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/shared/"));
        mounts.push(json!({
            "destination": format!("/shared/dir/made-{round}/file"), "type": "bind",
            "source": file.to_str().unwrap(), "options": ["bind"]
        }));
        mounts.push(json!({
            "destination": format!("/shared/dir/made-dir-{round}/sub"),
            "type": "tmpfs", "source": "tmpfs"
        }));
    });
}

#[test]
fn a_pre_planted_symlink_creates_nothing_on_the_host() {
    let (mut b, shared, host) = volume_bundle("cve-2024-45310-static");
    mounts_below_the_volume(&mut b, 0);
    std::fs::remove_dir(shared.join("dir")).unwrap();
    symlink(&host, shared.join("dir")).unwrap();
    b.run_ok();
    assert_eq!(listing(&host), Vec::<PathBuf>::new(), "made on the host");
    // The link was read as a path in the container.
    let inside = b.rootfs().join(host.strip_prefix("/").unwrap());
    assert!(inside.join("made-0/file").is_file() && inside.join("made-dir-0/sub").is_dir());
}

#[test]
fn a_racing_symlink_creates_nothing_on_the_host() {
    let (mut b, shared, host) = volume_bundle("cve-2024-45310-race");
    let racer = Racer::start(&shared, "dir", "link");
    let mut created = 0;
    for round in 0..ROUNDS {
        mounts_below_the_volume(&mut b, round);
        // A round may fail (a swap in mid-lookup); it must never escape.
        let (code, _, _) = b.run();
        created += usize::from(code == 0);
        let _ = b.cmd(&["delete", "--force", &b.id]);
        assert_eq!(listing(&host), Vec::<PathBuf>::new(), "made on the host");
    }
    assert!(racer.swaps() > 0, "the racer never ran");
    drop(racer);
    assert!(created > 0, "no round got through");
    let inside = b.rootfs().join(host.strip_prefix("/").unwrap());
    // Rounds that met the symlink made their destinations at its target
    // read inside the rootfs: the race was hit, and stayed in.
    assert!(
        !listing(&inside).is_empty(),
        "no round met the symlink: the race was never run"
    );
    b.assert_no_state();
}
