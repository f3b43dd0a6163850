//! Behaviours where the OCI spec is silent and runc 1.1.5 is the spec:
//! each test names what runc does, measured side by side with Debian's runc.

use hull_tests::*;

/// `hull ARGS...` (no state root needed).
fn hull(args: &[&str]) -> Out {
    Out::from(output_via_files(
        std::process::Command::new(hull_bin()).args(args),
    ))
}

#[test]
fn version_is_printed_in_runc_s_three_lines() {
    for flag in ["-v", "--version"] {
        let out = hull(&[flag]);
        let lines: Vec<&str> = out.ok().lines().collect();
        assert_eq!(lines.len(), 3, "{flag}: {lines:?}");
        let version = lines[0]
            .strip_prefix("hull version ")
            .expect("version line");
        assert_eq!(version.split('.').count(), 3, "{version}");
        let commit = lines[1].strip_prefix("commit: ").expect("commit line");
        assert!(!commit.is_empty(), "{lines:?}");
        let spec = lines[2].strip_prefix("spec: ").expect("spec line");
        assert!(spec.starts_with("1."), "{spec}");
    }
}

#[test]
fn help_and_usage_errors_exit_as_runc_does() {
    // Help, in every spelling, and no command at all: the help, exit 0.
    for args in [
        &["help"][..],
        &["-h"],
        &["--help"],
        &["run", "-h"],
        &["help", "run"],
        &[],
    ] {
        let out = hull(args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(out.stdout.contains("Usage"), "{args:?}: {}", out.stdout);
    }
    // An unknown command: 3, with runc's message.
    let out = hull(&["nosuch"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("No help topic for 'nosuch'"),
        "{}",
        out.stderr
    );
    // A missing or extra argument and an unknown flag: 1.
    for args in [
        &["start"][..],
        &["start", "a", "b"],
        &["kill", "a", "b", "c"],
        &["run", "--nosuchflag", "x"],
        &["spec", "x"],
    ] {
        let out = hull(args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?}: no error message");
    }
}

/// The pty of a process that is not root is owned by its uid, with the
/// tty group kept (runc's fixStdioPermissions), for `run` and `exec -t`.
#[test]
fn the_pty_of_a_non_root_process_is_its_own() {
    use serde_json::json;
    let mut b = TestBundle::new("pty-owner");
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    b.sh("stat -c owner=%u:%g $(tty)");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert!(out.contains("owner=1000:5"), "{out}");

    b.edit(|c| c["process"]["terminal"] = json!(false));
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let out = Out::from(b.cmd(&[
        "exec",
        "-t",
        "-u",
        "1000:1000",
        &b.id,
        "sh",
        "-c",
        "stat -c owner=%u:%g $(tty)",
    ]));
    assert!(out.ok().contains("owner=1000:5"), "{}", out.stdout);
    b.delete_and_check(true);
}

/// `exec --process` takes a process without `user` as root's (runc's Go
/// zero value), and a terminal gets the process's `consoleSize`, in `run`
/// and `exec`.
#[test]
fn exec_process_json_without_user_and_with_a_console_size() {
    use serde_json::json;
    let mut b = TestBundle::new("exec-process-json");
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    });
    b.args(&["stty", "size"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert!(out.contains("31 97"), "{out}");

    b.edit(|c| c["process"]["terminal"] = json!(false));
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        json!({
            "terminal": true,
            "consoleSize": {"height": 33, "width": 101},
            "args": ["sh", "-c", "id -u; stty size"],
            "cwd": "/",
            "env": ["PATH=/bin:/usr/bin"]
        })
        .to_string(),
    )
    .unwrap();
    let out = Out::from(b.cmd(&["exec", "--process", process.to_str().unwrap(), &b.id]));
    let lines: Vec<&str> = out.ok().lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "33 101"], "{}", out.stdout);
    b.delete_and_check(true);
}
