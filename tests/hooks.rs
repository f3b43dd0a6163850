//! OCI hooks: every stage runs at its point with the state on stdin; a
//! failing or hanging hook before the start aborts creation cleanly.

use std::path::{Path, PathBuf};

use hull_tests::*;
use serde_json::{json, Value};

/// A host directory the hooks write into, removed at the end.
struct LogDir(PathBuf);

impl LogDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(unique(name));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn state(&self, stage: &str) -> Value {
        let path = self.0.join(format!("{stage}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{stage} hook did not run: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{stage}: bad state {text:?}: {e}"))
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A hook that saves its stdin as `<dir>/<stage>.json` (`sh` at `sh_path`).
fn saving_hook(sh_path: &str, dir: &Path, stage: &str) -> Value {
    json!({ "path": sh_path, "args": ["sh", "-c", format!("cat > {}/{stage}.json", dir.display())] })
}

#[test]
fn every_stage_runs_in_order_with_the_state() {
    let log = LogDir::new("hooks-log");
    let mut b = TestBundle::new("hooks-all");
    let d = log.0.clone();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooklog", "type": "bind", "source": d, "options": ["rbind", "rw"]
        }));
        c["hooks"] = json!({
            "createRuntime": [saving_hook("/bin/sh", &d, "createRuntime")],
            "prestart": [saving_hook("/bin/sh", &d, "prestart")],
            "createContainer": [saving_hook("/bin/sh", &d, "createContainer")],
            // startContainer resolves inside the container: busybox's sh, the bind mount.
            "startContainer": [saving_hook("/bin/sh", Path::new("/hooklog"), "startContainer")],
            "poststart": [saving_hook("/bin/sh", &d, "poststart")],
            "poststop": [saving_hook("/bin/sh", &d, "poststop")],
        });
        c["annotations"] = json!({"org.hull.test": "hooks"});
    });
    b.sh("ls /hooklog");
    let out = b.run_ok();
    // Everything before the start ran before the process did.
    for stage in [
        "createRuntime",
        "prestart",
        "createContainer",
        "startContainer",
    ] {
        assert!(
            out.contains(&format!("{stage}.json")),
            "{stage} not done before the process: {out}"
        );
    }
    for (stage, status) in [
        ("createRuntime", "creating"),
        ("prestart", "creating"),
        ("createContainer", "created"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let s = log.state(stage);
        assert_eq!(s["id"], json!(b.id), "{stage}: {s}");
        assert_eq!(s["status"], json!(status), "{stage}: {s}");
        assert_eq!(s["bundle"], json!(b.dir), "{stage}: {s}");
        assert_eq!(
            s["annotations"]["org.hull.test"],
            json!("hooks"),
            "{stage}: {s}"
        );
        assert!(
            s["pid"].as_i64().unwrap() > 1,
            "{stage}: host pid expected: {s}"
        );
    }
    b.assert_no_state();
}

#[test]
fn a_failing_create_runtime_hook_aborts_create_and_leaves_nothing() {
    let mut b = TestBundle::new("hooks-fail");
    b.edit(|c| c["hooks"] = json!({ "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"] }] }));
    b.sh("true");
    let out = b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("createRuntime hook /bin/sh") && err.contains("nope"),
        "{err}"
    );
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn a_hanging_hook_is_killed_at_its_timeout() {
    let mut b = TestBundle::new("hooks-timeout");
    b.edit(|c| {
        c["hooks"] = json!({ "createContainer": [{ "path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1 }] })
    });
    b.sh("true");
    let t = std::time::Instant::now();
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("timed out after 1s"), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn a_failing_poststop_hook_does_not_fail_delete() {
    let mut b = TestBundle::new("hooks-poststop");
    b.edit(|c| c["hooks"] = json!({ "poststop": [{ "path": "/bin/false" }] }));
    b.sh("exit 0");
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    b.assert_no_state();
}

/// `run` starts the container itself, so its init waits on a pipe and no
/// exec fifo is made; `create` (started by another process) makes one.
#[test]
fn run_makes_no_exec_fifo_and_create_does() {
    let log = LogDir::new("hooks-fifo");
    let listing = |b: &mut TestBundle, name: &str| {
        let root = b.root.clone();
        let out = log.0.join(name);
        b.edit(|c| {
            c["hooks"] = json!({ "prestart": [{ "path": "/bin/sh", "args": ["sh", "-c",
                format!("ls -a {} > {}", root.display(), out.display())] }] });
        });
        out
    };
    let mut run = TestBundle::new("fifo-run");
    run.args(&["true"]);
    let run_ls = listing(&mut run, "run.ls");
    run.run_ok();
    let seen = std::fs::read_to_string(run_ls).unwrap();
    assert!(
        seen.lines().any(|l| l == run.id),
        "hook did not list: {seen}"
    );
    assert!(!seen.contains("exec.fifo"), "run made an exec fifo: {seen}");
    run.assert_no_state();

    let mut created = TestBundle::new("fifo-create");
    created.args(&["true"]);
    let create_ls = listing(&mut created, "create.ls");
    created.create();
    let seen = std::fs::read_to_string(create_ls).unwrap();
    let fifo = format!("{}@exec.fifo", created.id);
    assert!(
        seen.lines().any(|l| l == fifo),
        "create made no exec fifo: {seen}"
    );
    assert_eq!(created.state()["status"], "created");
    let out = created.cmd(&["delete", "--force", &created.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    created.assert_no_state();
}

/// A hook that touches `<dir>/<name>`.
fn touching_hook(dir: &Path, name: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("touch {}/{name}", dir.display())] })
}

/// The spec: a failing poststart or poststop hook is a warning, and the
/// remaining hooks of that stage still run (crun runs them; runc 1.1.5
/// stops at the first failure).
#[test]
fn the_hooks_after_a_failing_poststart_or_poststop_hook_still_run() {
    let log = LogDir::new("hooks-rest");
    let mut b = TestBundle::new("hooks-rest");
    let d = log.0.clone();
    b.edit(|c| {
        c["hooks"] = json!({
            "poststart": [{ "path": "/bin/false" }, touching_hook(&d, "poststart-2")],
            "poststop": [{ "path": "/bin/false" }, touching_hook(&d, "poststop-2")],
        })
    });
    b.sh("exit 0");
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("poststart") && err.contains("poststop"),
        "no warnings: {err}"
    );
    for name in ["poststart-2", "poststop-2"] {
        assert!(
            log.0.join(name).exists(),
            "{name} did not run; stderr: {err}"
        );
    }
    b.assert_no_state();
}

/// runc runs createContainer hooks with the container's rootfs as their
/// working directory (they run in its mount namespace, before pivot_root).
#[test]
fn create_container_hooks_run_in_the_rootfs() {
    let log = LogDir::new("hooks-cwd");
    let mut b = TestBundle::new("hooks-cwd");
    let d = log.0.clone();
    b.edit(|c| {
        c["hooks"] = json!({ "createContainer": [
            { "path": "/bin/sh", "args": ["sh", "-c", format!("pwd -P > {}/cwd", d.display())] }
        ]})
    });
    b.sh("exit 0");
    b.run_ok();
    let cwd = std::fs::read_to_string(log.0.join("cwd")).expect("the hook ran");
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(cwd.trim(), rootfs.to_str().unwrap());
}
