//! CVE-2025-52565: the console's pty peer opened through a planted path.
//!
//! The attack: with `process.terminal`, runc allocated a pty through the
//! container's `/dev/ptmx`, then opened the peer as `/dev/pts/N` inside the
//! container (and bound it on `/dev/console`). A container whose
//! `/dev/pts/N` is a symlink (its `/dev` is its own, or a volume another
//! container races in) had runc open or bind `/proc/sys/kernel/core_pattern`
//! instead, before /proc/sys was made read-only: a writable core_pattern in
//! the container is a root command on the host. hull gets the peer from
//! the master with TIOCGPTPEER and never walks `/dev/pts/N`, so the
//! process's stdio is the pty whatever that path holds.
//!
//! The setup plants exactly that: `/dev` is a bound directory whose
//! `ptmx -> realpts/ptmx` reaches a real devpts at `/dev/realpts`, while
//! every `/dev/pts/N` is a symlink to core_pattern.

use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use hull_tests::*;
use serde_json::json;

use super::support::{bind_dev, core_pattern, mknod_char};

/// The first major number of Unix98 pty peers.
const PTY_SLAVE_MAJOR: u64 = 136;

/// A bundle with the planted `/dev` described above; returns the console
/// socket's listener and path.
fn planted(name: &str) -> (TestBundle, UnixListener, PathBuf) {
    let mut b = TestBundle::new(name);
    let dev = bind_dev(&mut b);
    mknod_char(&dev.join("null"), 1, 3);
    symlink("realpts/ptmx", dev.join("ptmx")).unwrap();
    std::fs::create_dir(dev.join("pts")).unwrap();
    for n in 0..256 {
        symlink(
            "/proc/sys/kernel/core_pattern",
            dev.join(format!("pts/{n}")),
        )
        .unwrap();
    }
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let devpts = mounts.iter_mut().find(|m| m["type"] == "devpts").unwrap();
        devpts["destination"] = json!("/dev/realpts");
        c["process"]["terminal"] = json!(true);
    });
    b.args(&["sleep", "30"]);
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    (b, listener, sock)
}

/// Stdin, stdout and stderr of `pid` are pty peers, not core_pattern.
fn assert_stdio_is_a_pty(pid: i32) {
    for fd in 0..3 {
        let link = format!("/proc/{pid}/fd/{fd}");
        let target = std::fs::read_link(&link).unwrap();
        let meta = std::fs::metadata(&link).unwrap();
        assert!(
            meta.file_type().is_char_device()
                && (PTY_SLAVE_MAJOR..PTY_SLAVE_MAJOR + 8)
                    .contains(&nix::sys::stat::major(meta.rdev())),
            "fd {fd} of {pid} is {} (rdev {:#x}), not a pty",
            target.display(),
            meta.rdev()
        );
    }
}

#[test]
fn the_init_terminal_is_the_pty_whatever_dev_pts_holds() {
    let (b, listener, _) = planted("cve-2025-52565-init");
    let pattern = core_pattern();
    let (_master, _) = create_with_console(&b, &listener);
    assert_stdio_is_a_pty(b.init_pid());
    assert_eq!(core_pattern(), pattern, "core_pattern changed");
    b.delete_and_check(true);
}

#[test]
fn an_exec_terminal_is_the_pty_whatever_dev_pts_holds() {
    let (mut b, listener, sock) = planted("cve-2025-52565-exec");
    b.edit(|c| c["process"]["terminal"] = json!(false));
    b.detached(&["run", "-d"]);
    let pattern = core_pattern();
    let pid_file = b.dir.join("exec.pid");
    let out = b.cmd(&[
        "exec",
        "-d",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
        "sleep",
        "30",
    ]);
    assert!(out.status.success(), "exec: {}", text(&out.stderr));
    let (stream, _) = listener.accept().unwrap();
    let (_master, _) = recv_master(&stream);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_stdio_is_a_pty(pid);
    assert_eq!(core_pattern(), pattern, "core_pattern changed");
    b.delete_and_check(true);
}
