//! Kills at timed points and while a hook runs, and many creates of one id
//! at once.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use hull_tests::*;
use serde_json::json;

use crate::kit::{kill, spawn_logged};

/// A hook that marks `marker` and then runs for a while as the hook's own
/// process (`exec`): `sleep <tag>`, a tag of digits that names the test.
fn slow_hook(marker: &Path, tag: &str) -> serde_json::Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("touch {}; exec sleep {tag}", marker.display())]
    })
}

/// A sleep time of 30-odd seconds unique to this test process and `n`.
fn tag(n: u32) -> String {
    format!("30.{n}{}", std::process::id())
}

/// [`TestBundle::start_quiet`], returned once `marker` exists.
fn start_until(b: &TestBundle, args: &[&str], marker: &Path) -> Child {
    let child = b.start_quiet(args);
    wait_for(
        || format!("{} never appeared", marker.display()),
        || marker.exists(),
    );
    child
}

/// After the kill: nothing runs, the container is listed as stopped, and
/// `delete --force` leaves no state file, fifo or cgroup.
fn assert_recoverable(b: &TestBundle, tag: &str) {
    wait_for(
        || "the init or a hook outlived hull".into(),
        || no_process(&b.id) && no_process(&format!("sleep {tag}")),
    );
    let list = Out::from(b.cmd(&["list", "--format", "json"]));
    let listed: serde_json::Value = serde_json::from_str(list.ok()).unwrap();
    let me = listed
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == b.id.as_str()))
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert_eq!(me["status"], "stopped", "{me}");
    assert!(
        !cgroup_dirs_named(&b.id).is_empty(),
        "the kill came before the cgroups"
    );
    Out::from(b.cmd(&["delete", "--force", &b.id])).ok();
    b.assert_no_state();
    assert!(
        std::fs::read_dir(&b.root).unwrap().next().is_none(),
        "files left in the state root"
    );
    assert_eq!(cgroup_dirs_named(&b.id), Vec::<std::path::PathBuf>::new());
}

/// Killed while the init runs a createContainer hook: the init dies with
/// its creator (PR_SET_PDEATHSIG), and the hook with the container's pid
/// namespace.
#[test]
fn create_killed_during_a_create_container_hook() {
    let mut b = TestBundle::new("crash-cc");
    let marker = b.dir.join("hook-running");
    let tag = tag(1);
    let hook = slow_hook(&marker, &tag);
    b.edit(|c| c["hooks"] = json!({"createContainer": [hook]}));
    b.args(&["true"]);
    kill(start_until(&b, &["create"], &marker));
    assert_recoverable(&b, &tag);
}

/// Killed while it runs a createRuntime hook itself: the hook dies with it,
/// the init with its channel closing.
#[test]
fn create_killed_during_a_create_runtime_hook() {
    let mut b = TestBundle::new("crash-cr");
    let marker = b.dir.join("hook-running");
    let tag = tag(2);
    let hook = slow_hook(&marker, &tag);
    b.edit(|c| c["hooks"] = json!({"createRuntime": [hook]}));
    b.args(&["true"]);
    kill(start_until(&b, &["run", "-d"], &marker));
    assert_recoverable(&b, &tag);
}

/// Killed at timed points of `run -d`, from right after the start to when
/// the container is up: afterwards either the container is recorded and
/// `delete --force` removes it, or nothing is left at all.
#[test]
fn run_detached_killed_at_timed_points() {
    for ms in [1u64, 2, 3, 5, 8, 12, 20] {
        let mut b = TestBundle::new(&format!("crash-t{ms}"));
        b.args(&["sleep", "30"]);
        let child = b.start_quiet(&["run", "-d"]);
        std::thread::sleep(Duration::from_millis(ms));
        kill(child);
        let out = b.cmd(&["delete", "--force", &b.id]);
        assert!(out.status.success(), "{ms} ms: {}", text(&out.stderr));
        wait_for(
            || format!("{ms} ms: a process is left"),
            || no_process(&b.id),
        );
        b.assert_no_state();
        assert_eq!(
            cgroup_dirs_named(&b.id),
            Vec::<std::path::PathBuf>::new(),
            "{ms} ms"
        );
    }
}

/// 50 `create`s of one id at once: exactly one wins, the others fail
/// clearly without touching the winner's cgroups or state, `state` and
/// `list` running meanwhile never fail, and once deleted nothing is left.
#[test]
fn concurrent_creates_of_one_id() {
    let mut b = TestBundle::new("crash-race");
    b.args(&["sleep", "60"]);
    // stderr into files: the winner's init holds what it inherits, so a
    // pipe would never reach its end.
    let spawn =
        |args: &[&str], n: usize| spawn_logged(b.hull().args(args), b.dir.join(format!("err-{n}")));
    let dir = b.dir.to_str().unwrap().to_owned();
    let creates: Vec<_> = (0..50)
        .map(|n| spawn(&["create", "--bundle", &dir, &b.id], n))
        .collect();
    let readers: Vec<_> = (0..10)
        .flat_map(|n| [spawn(&["list"], 100 + n), spawn(&["state", &b.id], 200 + n)])
        .collect();
    let mut won = 0;
    for (mut c, err) in creates {
        let status = c.wait().unwrap();
        let err = std::fs::read_to_string(err).unwrap_or_default();
        match status.code() {
            Some(0) => won += 1,
            Some(1) => assert!(err.contains("exists"), "{err}"),
            other => panic!("create exited {other:?}: {err}"),
        }
    }
    assert_eq!(won, 1, "creates that succeeded");
    for (mut r, err) in readers {
        let status = r.wait().unwrap();
        let err = std::fs::read_to_string(err).unwrap_or_default();
        // `state` may answer "does not exist" before the winner's record.
        assert!(matches!(status.code(), Some(0 | 1)), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(b.state()["status"], "created");
    Out::from(b.cmd(&["delete", "--force", &b.id])).ok();
    b.assert_no_state();
    wait_for(|| "a process is left".into(), || no_process(&b.id));
    assert_eq!(cgroup_dirs_named(&b.id), Vec::<std::path::PathBuf>::new());
}
