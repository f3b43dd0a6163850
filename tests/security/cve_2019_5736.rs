//! CVE-2019-5736: overwriting the runtime binary from inside a container.
//!
//! The attack: while a process in the container's pid namespace still runs
//! the runtime's image (the init of `create` waiting for `start`, or the
//! process `exec` makes before it `execve`s), the container opens
//! `/proc/<pid>/exe`, keeps the fd, and once the runtime has left reopens it
//! for writing through `/proc/self/fd/N` (no ETXTBSY any more), overwriting
//! the host's binary. hull re-executes itself from a read-only view of its
//! binary (or a sealed memfd) before it enters a container, so both the
//! direct write and the later reopen must fail and the file on disk stays
//! the same. The tests run a copy of hull, so a broken guard cannot damage
//! the build.

use std::process::Stdio;

use hull_tests::*;
use serde_json::json;

use super::support::use_hull_copy;

/// What refuses the write once no process runs the binary any more (no
/// ETXTBSY to help): EROFS from the read-only view, EPERM from a sealed memfd.
const SEALED: [&str; 2] = [
    "/proc/self/fd/3: Read-only file system",
    "/proc/self/fd/3: Operation not permitted",
];

/// Both writes failed, the late one for the seal's reason, and the binary
/// on disk is as it was.
fn assert_blocked(b: &TestBundle, before: &[u8], log: &str) {
    for step in ["direct", "reopen"] {
        assert!(log.contains(&format!("{step}-blocked")), "{step}: {log}");
        assert!(!log.contains(&format!("{step}-written")), "{step}: {log}");
    }
    assert!(SEALED.iter().any(|r| log.contains(r)), "reopen: {log}");
    let after = std::fs::read(&b.bin).unwrap();
    assert!(after == before, "the hull binary was modified: {log}");
}

/// Binds a new bundle directory on `/signal`: the test creates `go` there
/// once no hull process of the test runs any more, and the container waits
/// for it before the late write, as the exploit waits for the runtime to exit.
fn signal_dir(b: &mut TestBundle) -> std::path::PathBuf {
    let dir = b.dir.join("signal");
    std::fs::create_dir(&dir).unwrap();
    let source = dir.to_str().unwrap().to_owned();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/signal", "type": "bind", "source": source, "options": ["bind"]
        }));
    });
    dir
}

/// Waits (bounded) for `/signal/go`, in the container's shell.
const WAIT_GO: &str =
    "i=0; while [ ! -e /signal/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done";

/// A `hull ARGS...` child of the test with its output in `log`.
fn spawn(b: &TestBundle, args: &[&str], log: &std::path::Path) -> std::process::Child {
    let out = std::fs::File::create(log).unwrap();
    b.hull()
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// The init of `hull create` is hull until `start`: a process exec'd into
/// the created container (with CAP_SYS_PTRACE, so /proc/1/exe is reachable)
/// opens it, tries to write it, and writes through the kept fd once the
/// init has exec'd the container's process and hull has exited.
#[test]
fn the_waiting_init_cannot_be_overwritten() {
    let mut b = TestBundle::new("cve-2019-5736-init");
    let before = use_hull_copy(&mut b);
    let signal = signal_dir(&mut b);
    b.args(&["sleep", "30"]);
    b.create();
    let script = format!(
        r#"
        exec 3</proc/1/exe || {{ echo open-failed; exit 1; }}
        {{ echo pwned >>/proc/1/exe && echo direct-written || echo direct-blocked; }} 2>&1
        echo holding
        {WAIT_GO}
        {{ echo pwned >>/proc/self/fd/3 && echo reopen-written || echo reopen-blocked; }} 2>&1
        echo finished
        "#
    );
    let log = b.dir.join("attack.log");
    let args = [
        "exec",
        "-d",
        "--cap",
        "CAP_SYS_PTRACE",
        &b.id,
        "sh",
        "-c",
        &script,
    ];
    let status = spawn(&b, &args, &log).wait().unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exec: {}", read());
    wait_for(
        || format!("the attacker to hold /proc/1/exe: {}", read()),
        || read().contains("holding") || read().contains("failed"),
    );
    let start = b.cmd(&["start", &b.id]);
    assert!(start.status.success(), "start: {}", text(&start.stderr));
    std::fs::write(signal.join("go"), "").unwrap();
    wait_for(
        || format!("the attack to finish: {}", read()),
        || read().contains("finished"),
    );
    assert_blocked(&b, &before, &read());
    b.delete_and_check(true);
}

/// The process `hull exec` makes is hull inside the container until it
/// `execve`s; it reads the container's /etc/passwd for HOME, which the
/// container made a FIFO, so it waits there while the container's init
/// (with CAP_SYS_PTRACE) finds it, opens its exe, tries to write it, lets it
/// go, and writes through the kept fd once it has left hull's image.
#[test]
fn the_exec_process_cannot_be_overwritten() {
    let mut b = TestBundle::new("cve-2019-5736-exec");
    b.own_rootfs();
    let before = use_hull_copy(&mut b);
    let signal = signal_dir(&mut b);
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push(json!("CAP_SYS_PTRACE"));
        }
    });
    b.sh(&format!(
        r#"
        rm -f /etc/passwd && mkfifo /etc/passwd || exit 1
        me=$(readlink /proc/self/exe)
        echo armed
        found=
        i=0
        while [ -z "$found" ] && [ $i -lt 400 ]; do
            for d in /proc/[0-9]*; do
                p=${{d#/proc/}}
                [ "$p" = 1 ] && continue
                e=$(readlink $d/exe 2>/dev/null) || continue
                [ "$e" = "$me" ] || {{ found=$p; break; }}
            done
            [ -n "$found" ] || {{ sleep 0.05; i=$((i+1)); }}
        done
        [ -n "$found" ] || {{ echo no-runtime-found; exit 1; }}
        exec 3</proc/$found/exe || {{ echo open-failed; exit 1; }}
        {{ echo pwned >>/proc/$found/exe && echo direct-written || echo direct-blocked; }} 2>&1
        echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
        {WAIT_GO}
        {{ echo pwned >>/proc/self/fd/3 && echo reopen-written || echo reopen-blocked; }} 2>&1
        echo finished
        sleep 30
        "#
    ));
    b.detached(&["run", "-d"]);
    wait_for(
        || format!("the init to arm: {}", b.log()),
        || b.log().contains("armed"),
    );
    let exec_log = b.dir.join("exec.log");
    let mut exec = spawn(&b, &["exec", &b.id, "true"], &exec_log);
    // The exec ends once the container lets it read the passwd FIFO.
    let status = exec.wait().unwrap();
    assert!(
        status.success(),
        "exec: {} / {}",
        std::fs::read_to_string(&exec_log).unwrap_or_default(),
        b.log()
    );
    std::fs::write(signal.join("go"), "").unwrap();
    wait_for(
        || format!("the attack to finish: {}", b.log()),
        || b.log().contains("finished") || b.log().contains("failed"),
    );
    assert_blocked(&b, &before, &b.log());
    b.delete_and_check(true);
}
