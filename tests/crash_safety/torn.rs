//! State files a kill or a garbled disk may leave: empty (a create killed
//! before its record), half a record, garbage. Readers say which file is
//! wrong instead of crashing, `list` shows the container as stopped, and
//! `delete --force` removes it; a create still under way is left alone.

use std::os::fd::AsRawFd;

use hull_tests::*;
use serde_json::Value;

/// `list --format json`'s entry for `id`, and list's stderr.
fn listed(b: &TestBundle, id: &str) -> (Option<Value>, String) {
    let out = Out::from(b.cmd(&["list", "--format", "json"]));
    let all: Value = serde_json::from_str(out.ok()).unwrap();
    let me = all
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == id).cloned());
    (me, out.stderr)
}

#[test]
fn half_written_and_garbage_state_files_are_named_listed_and_removed() {
    let b = TestBundle::new("crash-torn");
    std::fs::create_dir_all(&b.root).unwrap();
    for (n, bytes) in [&b"{\"ociVersion\":\"1.0.2\",\"id\":\"x"[..], b"\0\0\x7fELF"]
        .iter()
        .enumerate()
    {
        let id = format!("{}-{n}", b.id);
        let path = b.root.join(&id);
        std::fs::write(&path, bytes).unwrap();
        let state = Out::from(b.cmd(&["state", &id]));
        state.fails_with(&path.display().to_string());
        assert!(state.stderr.contains("corrupt"), "{}", state.stderr);
        let (me, warning) = listed(&b, &id);
        let me = me.unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(me["status"], "stopped");
        assert!(
            warning.contains(&id),
            "list says nothing of {id}: {warning}"
        );
        Out::from(b.cmd(&["delete", &id])).fails_with("corrupt");
        Out::from(b.cmd(&["delete", "--force", &id])).ok();
        assert!(!path.exists(), "{id}: state file left");
    }
    b.assert_no_state();
}

#[test]
fn an_empty_state_file_is_abandoned_unless_its_create_holds_it() {
    let b = TestBundle::new("crash-empty");
    std::fs::create_dir_all(&b.root).unwrap();
    let path = b.root.join(&b.id);
    let file = std::fs::File::create(&path).unwrap();
    // A create under way holds a lock on the file it claimed.
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    assert_eq!(listed(&b, &b.id).0, None, "a create under way is listed");
    Out::from(b.cmd(&["delete", "--force", &b.id])).ok();
    assert!(path.exists(), "delete removed a create under way");
    // The create died: nobody holds the file any more.
    drop(file);
    let (me, warning) = listed(&b, &b.id);
    assert_eq!(
        me.expect("an abandoned create is listed")["status"],
        "stopped"
    );
    assert!(warning.contains("did not finish"), "{warning}");
    Out::from(b.cmd(&["delete", "--force", &b.id])).ok();
    b.assert_no_state();
}
