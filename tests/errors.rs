//! Failures: a clear message naming the problem, a non-zero exit, and
//! nothing left behind (no state, no process, no mount).

use hull_tests::*;
use serde_json::Value;

/// `hull create --bundle <dir> <id>`.
fn create(b: &TestBundle, id: &str) -> Out {
    hull(b, &["create", "--bundle", b.dir.to_str().unwrap(), id])
}

/// Asserts a failure with exit `code` whose stderr contains every needle.
fn assert_fails(out: &Out, code: i32, needles: &[&str]) {
    assert_eq!(
        out.code, code,
        "exit code; stdout={} stderr={}",
        out.stdout, out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "stderr {:?} lacks {needle:?}",
            out.stderr
        );
    }
}

/// Nothing of the bundle's container is left: state, process or mount.
fn assert_nothing_left(b: &TestBundle) {
    b.assert_no_state();
    assert_no_process(&b.id);
    assert_no_mount(b.dir.to_str().unwrap());
}

/// A failed `create` of this bundle, then the checks above.
fn assert_create_fails(b: &TestBundle, needles: &[&str]) {
    let out = create(b, &b.id);
    assert_fails(&out, 1, needles);
    assert_eq!(out.stdout, "");
    assert_nothing_left(b);
}

fn unknown_id_fails(name: &str, cmd: &[&str]) {
    let b = TestBundle::new(name);
    let mut args = cmd.to_vec();
    args.insert(1, &b.id);
    let out = hull(&b, &args);
    assert_fails(&out, 1, &["container does not exist"]);
    assert_eq!(out.stdout, "");
    assert_nothing_left(&b);
}

#[test]
fn state_of_an_unknown_id() {
    unknown_id_fails("unknown-state", &["state"]);
}

#[test]
fn start_of_an_unknown_id() {
    unknown_id_fails("unknown-start", &["start"]);
}

#[test]
fn kill_of_an_unknown_id() {
    unknown_id_fails("unknown-kill", &["kill", "KILL"]);
}

#[test]
fn kill_of_an_unknown_id_is_reported_before_a_bad_signal() {
    unknown_id_fails("unknown-killfoo", &["kill", "FOO"]);
}

#[test]
fn delete_of_an_unknown_id() {
    unknown_id_fails("unknown-delete", &["delete"]);
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_kept() {
    let mut b = TestBundle::new("duplicate");
    b.args(&["sleep", "1000"]);
    let first = create(&b, &b.id);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let state = |b: &TestBundle| -> Value {
        serde_json::from_str(&hull(b, &["state", &b.id]).stdout).unwrap()
    };
    let before = state(&b);
    assert_eq!(before["status"], "created");

    let out = create(&b, &b.id);
    assert_fails(&out, 1, &[]);
    assert!(
        out.stderr.to_lowercase().contains("id already exists"),
        "{}",
        out.stderr
    );
    let after = state(&b);
    assert_eq!(after, before, "the first container changed");

    assert_eq!(hull(&b, &["delete", &b.id]).code, 0);
    assert_nothing_left(&b);
}

/// A create that never finished (hull killed between claiming the id and
/// writing the state) leaves an empty state file: it is no container, and
/// delete removes it, with its exec fifo, as runc removes a container
/// directory without state.json; the id can then be used again.
#[test]
fn delete_removes_what_an_unfinished_create_left() {
    let mut b = TestBundle::new("unfinished");
    b.args(&["true"]);
    std::fs::create_dir_all(&b.root).unwrap();
    let claim = b.root.join(&b.id);
    std::fs::write(&claim, "").unwrap();
    assert_fails(
        &hull(&b, &["state", &b.id]),
        1,
        &["container does not exist"],
    );
    assert_fails(&create(&b, &b.id), 1, &["already exists"]);
    assert_fails(
        &hull(&b, &["delete", &b.id]),
        1,
        &["container does not exist"],
    );
    assert!(!claim.exists(), "empty state file kept");

    std::fs::write(&claim, "").unwrap();
    let fifo = b.root.join(format!("{}@exec.fifo", b.id));
    std::fs::write(&fifo, "").unwrap();
    let out = hull(&b, &["delete", "--force", &b.id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    b.assert_no_state();

    assert_eq!(create(&b, &b.id).code, 0);
    assert_eq!(hull(&b, &["delete", "--force", &b.id]).code, 0);
    assert_nothing_left(&b);
}

#[test]
fn invalid_ids_are_refused() {
    let b = TestBundle::new("badid");
    let escape = format!("{}-escape", b.id);
    let dotdot = format!("../{escape}");
    for id in ["", "a/b", "..", ".", "a b", "a:b", dotdot.as_str()] {
        let out = create(&b, id);
        assert_ne!(out.code, 0, "id {id:?} accepted");
        assert!(
            out.stderr.contains("invalid container ID format")
                || out.stderr.contains("container id cannot be empty"),
            "id {id:?}: {}",
            out.stderr
        );
        b.assert_no_state();
        let outside = b.root.parent().unwrap().join(&escape);
        assert!(!outside.exists(), "{} created", outside.display());
    }
    assert_nothing_left(&b);
}

#[test]
fn empty_id_says_so() {
    let b = TestBundle::new("emptyid");
    let out = create(&b, "");
    assert_fails(&out, 1, &["container id cannot be empty"]);
    assert_nothing_left(&b);
}

#[test]
fn missing_config_json() {
    let b = TestBundle::new("noconfig");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    assert_create_fails(&b, &["config.json"]);
}

#[test]
fn malformed_config_json() {
    let b = TestBundle::new("badjson");
    std::fs::write(b.dir.join("config.json"), "{").unwrap();
    assert_create_fails(&b, &["config.json"]);
}

#[test]
fn unsupported_oci_version() {
    let mut b = TestBundle::new("ociversion");
    b.edit(|c| c["ociVersion"] = Value::from("2.0.0"));
    assert_create_fails(&b, &["2.0.0"]);
}

#[test]
fn missing_rootfs_directory() {
    let mut b = TestBundle::new("norootfs");
    b.edit(|c| c["root"]["path"] = Value::from("rootfs"));
    assert_create_fails(&b, &["rootfs"]);
}

#[test]
fn process_cwd_that_does_not_exist() {
    let mut b = TestBundle::new("nocwd");
    // A private rootfs: a runtime that created the cwd must not touch the fixture.
    b.own_rootfs();
    b.edit(|c| c["process"]["cwd"] = Value::from("/nonexistent-cwd"));
    assert_create_fails(&b, &["/nonexistent-cwd"]);
}

#[test]
fn executable_not_found_exits_127_for_run() {
    let mut b = TestBundle::new("noexec");
    b.args(&["nonexistent-binary"]);
    let out = hull(&b, &["run", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    assert_fails(
        &out,
        127,
        &["nonexistent-binary", "executable file not found in $PATH"],
    );
    assert_nothing_left(&b);
}

#[test]
fn executable_not_found_fails_create() {
    let mut b = TestBundle::new("noexec-create");
    b.args(&["nonexistent-binary"]);
    assert_create_fails(&b, &["executable file not found in $PATH"]);
}

#[test]
fn terminal_without_console_socket() {
    let mut b = TestBundle::new("noconsole");
    b.edit(|c| c["process"]["terminal"] = Value::from(true));
    assert_create_fails(&b, &["console socket"]);
}

/// A config whose top level is an array is refused as not a JSON object,
/// not taken as a config with every field empty.
#[test]
fn a_top_level_array_is_not_a_config() {
    let b = TestBundle::new("toparray");
    std::fs::write(b.dir.join("config.json"), "[]").unwrap();
    assert_create_fails(&b, &["config.json", "not a JSON object"]);
}

/// setgroups(2) takes at most ngroups_max additional gids: the error names
/// setgroups, how many were asked for and the limit, instead of an init
/// that exited without a word.
#[test]
fn too_many_additional_gids_name_setgroups_and_the_limit() {
    let limit: u64 = std::fs::read_to_string("/proc/sys/kernel/ngroups_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut b = TestBundle::new("ngroups");
    let gids: Vec<u64> = (1..=limit + 4464).collect();
    let count = gids.len().to_string();
    b.edit(|c| c["process"]["user"]["additionalGids"] = Value::from(gids));
    assert_create_fails(
        &b,
        &[
            "setgroups",
            &count,
            &limit.to_string(),
            "/proc/sys/kernel/ngroups_max",
        ],
    );
}

/// A memory limit below what the init needs to set itself up: the init is
/// OOM-killed, and the error says so and names the limit.
#[test]
fn a_memory_limit_too_low_for_the_init_says_it_was_oom_killed() {
    let limit = 16 << 10;
    let mut b = TestBundle::new("oom-init");
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": limit, "swap": limit})
    });
    assert_create_fails(&b, &["OOM-killed", &format!("{limit} bytes")]);
    let cgroup = std::path::Path::new("/sys/fs/cgroup/memory").join(&b.id);
    assert!(!cgroup.exists(), "{} left", cgroup.display());
}

/// What the init finds wrong with the configuration (here a mount with no
/// type) is reported as a configuration error, not as a failed start.
#[test]
fn a_configuration_error_found_by_the_init_is_a_config_error() {
    let mut b = TestBundle::new("notype");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/mnt", "source": "none"}))
    });
    let out = create(&b, &b.id);
    assert_fails(&out, 1, &["invalid config", "mount on /mnt has no type"]);
    assert!(
        !out.stderr.contains("unable to start container process"),
        "{}",
        out.stderr
    );
    assert_nothing_left(&b);
}
