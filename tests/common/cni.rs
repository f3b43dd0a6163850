//! Running hull's CNI plugin (`hull-cni`) as a container runtime does:
//! the environment of one command, the network config on stdin, the JSON
//! result on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{text, workspace};

/// The hull-cni plugin, built with the workspace.
pub fn plugin() -> PathBuf {
    workspace().join("target/debug/hull-cni")
}

/// Runs hull-cni `command` for `eth0` of `container`, whose network
/// namespace is `netns`, with `conf` on stdin: whether it exited 0, and the
/// JSON it printed (Null for none). The plugin runs in the calling thread's
/// network namespace. When that is not the process's own (a lab's), it
/// gets a sysfs of that namespace, mounted in a mount namespace of its own
/// (as `ip netns exec` does), so that it sees its "host" as a runtime's
/// plugin sees the real one.
pub fn cni(command: &str, container: &str, netns: &Path, conf: &Value) -> (bool, Value) {
    let ns = |p: &str| std::fs::read_link(p).unwrap();
    let mut cmd = if ns("/proc/thread-self/ns/net") == ns("/proc/self/ns/net") {
        Command::new(plugin())
    } else {
        let own_sysfs = r#"mount -t sysfs sysfs /sys && exec "$0""#;
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c", own_sysfs])
            .arg(plugin());
        c
    };
    let mut child = cmd
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", netns)
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", plugin().display()));
    let mut stdin = child.stdin.take().unwrap();
    // A plugin may answer without reading stdin (VERSION, or an error found
    // in the environment first) and exit: the pipe is then closed, which is
    // not a failure.
    match stdin.write_all(conf.to_string().as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write the config: {e}"),
        _ => drop(stdin),
    }
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        // Shown with a failing test's output.
        eprintln!("hull-cni {command}: {}", text(&out.stderr).trim());
    }
    let stdout = text(&out.stdout);
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    };
    (out.status.success(), json)
}
