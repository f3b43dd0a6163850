//! Regression tests for container escapes: each reproduces a published
//! runtime attack (named by its CVE) or a config other runtimes refuse, and
//! shows it blocked. One module per attack surface.

mod support;

mod cve_2019_5736;
mod cve_2021_30465;
mod cve_2022_29162;
mod cve_2023_25809;
mod cve_2024_45310;
mod cve_2025_31133;
mod cve_2025_52565;
mod cve_2026_41579;
mod labels;
mod late_seccomp;
mod leaked_fds;
mod no_pivot;
mod proc_symlink;
mod procfs_writes;
mod sysctl;

use std::path::Path;

use hull_tests::*;
use serde_json::{json, Value};

/// `hull create` of the bundle, output captured.
fn create(b: &TestBundle) -> Out {
    Out::from(b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]))
}

/// `hull run [EXTRA...]` of the bundle, output captured.
fn run(b: &TestBundle, extra: &[&str]) -> Out {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", b.dir.to_str().unwrap(), &b.id]);
    Out::from(b.cmd(&args))
}

/// Nothing of the bundle's container is left: no state, process, mount or
/// cgroup directory.
fn assert_nothing_left(b: &TestBundle) {
    b.assert_no_state();
    assert_no_process(&b.id);
    assert_no_mount(&b.id);
    assert_no_cgroup(&b.id);
}

/// `hull create` fails with exit 1 and every needle in its message, leaving
/// nothing.
fn assert_create_fails(b: &TestBundle, needles: &[&str]) {
    assert_fails(&create(b), needles);
    assert_nothing_left(b);
}

/// Exit 1, nothing on stdout, and every needle in the message on stderr
/// (read with the log line's `\"` quoting undone).
fn assert_fails(out: &Out, needles: &[&str]) {
    assert_eq!(out.code, 1, "stdout={} stderr={}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "", "stdout of a failure");
    let message = out.stderr.replace("\\\"", "\"");
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

/// The config's namespaces without the one of type `typ`.
fn drop_namespace(config: &mut Value, typ: &str) {
    let ns = config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != json!(typ));
}

/// Appends a mount entry to the config.
fn add_mount(config: &mut Value, mount: Value) {
    config["mounts"].as_array_mut().unwrap().push(mount);
}

/// A host file `$TMPDIR/hull-test-<name>-<pid>` with `text` in it, removed
/// when dropped: the target a redirected write would reach.
struct Planted {
    path: std::path::PathBuf,
}

impl Planted {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::write(&path, text).unwrap();
        Self { path }
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    fn str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A host sysctl's value (`kernel.shmmax` → `/proc/sys/kernel/shmmax`).
fn host_sysctl(key: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys").join(key.replace('.', "/"))).unwrap()
}
