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
