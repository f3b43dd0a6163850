//! libcontainer used as a library: the `lifecycle` example of the
//! libcontainer crate drives a container from create to delete.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hull_tests::*;

/// The built `lifecycle` example. `cargo test -p hull-tests` does not build
/// another package's examples, so build it once here (a no-op when fresh).
fn example() -> &'static PathBuf {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "libcontainer", "--example", "lifecycle"])
            .current_dir(workspace())
            .stdout(Stdio::null())
            .status()
            .expect("run cargo build")
            .success();
        assert!(ok, "cargo build --example lifecycle failed");
        let path = workspace().join("target/debug/examples/lifecycle");
        assert!(path.exists(), "{} missing", path.display());
        path
    })
}

/// Runs the example against the bundle; returns its stdout after asserting success.
fn run_example(b: &TestBundle, extra: &[&str]) -> String {
    let out = Command::new(example())
        .arg(&b.dir)
        .arg(&b.root)
        .arg(&b.id)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "example failed: {:?} stdout={} stderr={}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn library_lifecycle_reports_the_exit_code() {
    let mut b = TestBundle::new("lib-exit7");
    b.sh("exit 7");
    assert_eq!(run_example(&b, &[]), "exit=7\n");
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn library_lifecycle_kill_reports_137() {
    let mut b = TestBundle::new("lib-kill");
    b.args(&["sleep", "1000"]);
    assert_eq!(run_example(&b, &["kill"]), "exit=137\n");
    b.assert_no_state();
    assert_no_process(&b.id);
}
