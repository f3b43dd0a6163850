//! Seccomp as late as runc installs it: with `noNewPrivileges` the filter is
//! the last thing before `execve`, so a profile allowing only what the
//! application itself calls (as profiles generated from an application's
//! syscalls do) still lets the runtime finish; the runtime's own syscalls
//! (closing its fds, the start handshake, hooks, signal resets) run before
//! it. Without `noNewPrivileges` the filter needs CAP_SYS_ADMIN and goes
//! before the user switch: the runtime must then cope with what the
//! profile refuses, and never panic.

use hull_tests::*;
use serde_json::{json, Value};

/// The syscalls of busybox's `echo` (static): execve and the program's own.
const ECHO_SYSCALLS: &[&str] = &[
    "execve",
    "arch_prctl",
    "brk",
    "exit_group",
    "getrandom",
    "getuid",
    "mprotect",
    "prctl",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
    "set_tid_address",
    "write",
];

fn application_only_profile(default_action: &str) -> Value {
    json!({
        "defaultAction": default_action,
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ECHO_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]
    })
}

#[test]
fn an_application_only_profile_with_no_new_privs_runs() {
    for default_action in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"] {
        let mut b = TestBundle::new("late-seccomp");
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(true);
            c["linux"]["seccomp"] = application_only_profile(default_action);
        });
        b.args(&["echo", "filtered"]);
        assert_eq!(b.run_ok().trim(), "filtered", "{default_action}");

        // create + start: the wait for `start` and the start handshake
        // happen before the filter too.
        b.args(&["echo", "started"]);
        b.detached(&["create"]);
        let start = b.cmd(&["start", &b.id]);
        assert!(start.status.success(), "start: {}", text(&start.stderr));
        wait_for(
            || format!("{default_action}: not stopped: {}", b.log()),
            || b.state()["status"] == "stopped",
        );
        assert_eq!(b.log().trim(), "started", "{default_action}");
        b.delete_and_check(false);
    }
}

#[test]
fn a_start_container_hook_runs_before_the_filter() {
    let mut b = TestBundle::new("late-seccomp-hook");
    let out = b.dir.join("hook-ran");
    let hook_out = out.clone();
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["seccomp"] = application_only_profile("SCMP_ACT_KILL_PROCESS");
        // startContainer runs in the container: /out is this bundle's dir.
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out",
            "type": "bind",
            "source": hook_out.parent().unwrap().to_str().unwrap(),
            "options": ["rbind", "rw"]
        }));
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /out/hook-ran"]}
        ]});
    });
    b.args(&["echo", "after the hook"]);
    assert_eq!(b.run_ok().trim(), "after the hook");
    assert!(out.is_dir(), "the startContainer hook did not run");
}

#[test]
fn a_profile_refusing_runtime_syscalls_before_the_user_switch_is_survived() {
    // Without no_new_privs the filter is installed before the capabilities
    // are dropped: umask failing with EPERM and close_range with ENOSYS must
    // neither panic the init nor leave the runtime's fds open (the fds are
    // then closed one by one).
    let mut b = TestBundle::new("early-seccomp");
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        });
    });
    b.args(&["ls", "-l", "/proc/self/fd"]);
    let (code, listing, stderr) = b.run();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let numbers: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with('l'))
        .filter_map(|l| l.split(" -> ").next()?.rsplit(' ').next())
        .collect();
    // 0-2 and ls's own handle on the directory.
    assert_eq!(numbers, ["0", "1", "2", "3"], "{listing}");
}
