//! Command-line differences found by running hull and runc 1.1.5 side by
//! side with the same bundle and flags.

use hull_tests::*;

/// `events --stats` has runc's sections: the per-CPU kernel and user
/// times, the cpuset settings, and the empty `intel_rdt` and null
/// `network_interfaces` readers expect.
#[test]
fn stats_have_runc_s_sections() {
    let mut b = TestBundle::new("stats-keys");
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let out = Out::from(b.cmd(&["events", "--stats", &b.id]));
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    let data = &v["data"];
    let mut keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "blkio",
            "cpu",
            "cpuset",
            "hugetlb",
            "intel_rdt",
            "memory",
            "network_interfaces",
            "pids"
        ]
    );
    let cpus = std::thread::available_parallelism().unwrap().get();
    let usage = &data["cpu"]["usage"];
    for k in ["percpu", "percpu_kernel", "percpu_user"] {
        assert_eq!(
            usage[k].as_array().map(Vec::len),
            Some(cpus),
            "{k}: {usage}"
        );
    }
    let cpuset = &data["cpuset"];
    assert_eq!(
        cpuset["cpus"].as_array().map(Vec::len),
        Some(cpus),
        "{cpuset}"
    );
    assert_eq!(cpuset["mems"][0], 0, "{cpuset}");
    assert_eq!(cpuset["sched_load_balance"], 1, "{cpuset}");
    assert_eq!(data["intel_rdt"], serde_json::json!({}));
    assert!(data["network_interfaces"].is_null());
    b.delete_and_check(true);
}

/// A system call's errno reads as runc (Go) prints it: `kill` with a
/// signal number the kernel refuses says `unable to signal init: invalid
/// argument` (nix's wording was `EINVAL: Invalid argument`), a missing
/// directory `no such file or directory`; engines match such texts
/// (containerd: "no such process", case-folded).
#[test]
fn errno_texts_are_go_s() {
    let mut b = TestBundle::new("errno-text");
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    for sig in ["99", "65"] {
        Out::from(b.cmd(&["kill", &b.id, sig]))
            .fails_with("msg=\"unable to signal init: invalid argument\"");
    }
    // A file the runtime writes: no Rust " (os error 2)".
    let out = Out::from(b.cmd(&[
        "exec",
        "--pid-file",
        "/nonexistent-hull-test/x.pid",
        &b.id,
        "true",
    ]));
    assert_eq!(out.code, 255, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("/nonexistent-hull-test/.x.pid: no such file or directory\""),
        "{}",
        out.stderr
    );
    b.delete_and_check(true);
}

/// An unknown output or log format is refused in runc's words, exit 1,
/// nothing on stdout.
#[test]
fn unknown_formats_are_refused_in_runc_s_words() {
    for (args, needle) in [
        (&["list", "--format", "yaml"][..], "invalid format option"),
        (&["list", "-f", "yaml"], "invalid format option"),
        (&["ps", "--format", "yaml", "x"], "invalid format option"),
        (
            &["--log-format", "xml", "state", "x"],
            "invalid log-format: xml",
        ),
    ] {
        super::hull(args).fails_with(&format!("msg=\"{needle}\""));
    }
}

/// `exec --apparmor` and `--process-label` (runc's flags) set the
/// process's LSM labels; neither LSM is enabled on this host, so each is
/// refused as the container's own label would be (never ignored), exit 255.
#[test]
fn exec_takes_runc_s_label_flags() {
    let mut b = TestBundle::new("exec-labels");
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    // Without the flags the same exec runs.
    Out::from(b.cmd(&["exec", &b.id, "true"])).ok();
    for (flag, value, needle) in [
        (
            "--apparmor",
            "hull-test-profile",
            "unable to apply apparmor profile",
        ),
        (
            "--process-label",
            "system_u:system_r:container_t:s0",
            "selinux label is specified in config, but selinux is disabled",
        ),
    ] {
        let out = Out::from(b.cmd(&["exec", flag, value, &b.id, "true"]));
        assert_eq!(out.code, 255, "{flag}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{flag}: {}", out.stderr);
    }
    b.delete_and_check(true);
}
