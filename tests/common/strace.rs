//! hull under strace: a traced run logs the system calls a test looks at
//! (what an update writes, or where a kill may come: its kill points), and
//! strace's fault injection hits a kill point with SIGKILL in a run of its
//! own. Only hull's own process is traced (no `-f`): what it starts runs
//! untraced and lives or dies as it would after a real kill.

use std::path::Path;
use std::process::Command;

use crate::{output_via_files, text};

/// The `nth` call (from 1) of `syscall` in hull's own process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillPoint {
    pub syscall: String,
    pub nth: usize,
}

impl std::fmt::Display for KillPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}#{}", self.syscall, self.nth)
    }
}

/// `strace -qq STRACE_ARGS... -- CMD...`: `cmd` (hull) traced, its
/// children not.
pub fn strace(cmd: &Command, strace_args: &[String]) -> Command {
    let mut s = Command::new("strace");
    s.arg("-qq").args(strace_args).arg("--");
    s.arg(cmd.get_program()).args(cmd.get_args());
    s
}

/// strace's arguments that log the calls named in `syscalls` (a comma
/// separated list) to `log`.
pub fn logging(log: &Path, syscalls: &str) -> Vec<String> {
    let log = log.to_str().unwrap();
    ["-o", log, "-e", &format!("trace={syscalls}")]
        .map(str::to_owned)
        .to_vec()
}

/// strace's arguments that kill the traced process with SIGKILL as it
/// enters the call `p`, logging nothing.
pub fn killing_at(p: &KillPoint) -> Vec<String> {
    let inject = format!("inject={}:signal=SIGKILL:when={}", p.syscall, p.nth);
    let trace = format!("trace={}", p.syscall);
    ["-o", "/dev/null", "-e", &trace, "-e", &inject]
        .map(str::to_owned)
        .to_vec()
}

/// Runs `cmd` (hull) under strace, logging its calls of `syscalls` to
/// `log`; asserts it succeeded and returns the log.
pub fn traced_run(cmd: &Command, log: &Path, syscalls: &str) -> String {
    let out = output_via_files(&mut strace(cmd, &logging(log, syscalls)));
    assert!(out.status.success(), "traced run: {}", text(&out.stderr));
    std::fs::read_to_string(log).unwrap()
}

/// The calls of an strace log for which `at(name, args)` holds, each
/// numbered among all the logged calls of its name (as strace's `when=`
/// counts them).
pub fn kill_points(trace: &str, at: impl Fn(&str, &str) -> bool) -> Vec<KillPoint> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut points = Vec::new();
    for line in trace.lines() {
        let Some((name, args)) = line.split_once('(') else {
            continue;
        };
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let nth = seen.entry(name.to_owned()).or_default();
        *nth += 1;
        if at(name, args) {
            points.push(KillPoint {
                syscall: name.to_owned(),
                nth: *nth,
            });
        }
    }
    points
}

/// Whether a logged call changes something: every call but an `openat`
/// without `O_CREAT` or `O_TMPFILE` and a `write` to stdout or stderr.
pub fn changes_host(name: &str, args: &str) -> bool {
    match name {
        "openat" => args.contains("O_CREAT") || args.contains("O_TMPFILE"),
        "write" | "writev" => !args.starts_with("1,") && !args.starts_with("2,"),
        _ => true,
    }
}
