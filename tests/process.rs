//! The container process as it sees itself: identity, environment, limits,
//! capabilities, file descriptors, terminal, keyring and namespaces.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hull_tests::*;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::unistd::dup2;
use serde_json::{json, Value};

/// The value of `key:` in /proc/<pid>/status-like text.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
        .trim()
}

/// The fd numbers in `ls -l /proc/<pid>/fd` output (its `l...` lines).
fn fds_listed(ls: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = ls
        .lines()
        .filter(|l| l.starts_with('l'))
        .filter_map(|l| {
            l.split(" -> ")
                .next()?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// Makes `file` the child's fd `target`, without close-on-exec.
fn inherit_at(cmd: &mut Command, file: &File, target: RawFd) {
    let raw = file.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if raw == target {
                fcntl(raw, FcntlArg::F_SETFD(FdFlag::empty()))?;
            } else {
                dup2(raw, target)?;
            }
            Ok(())
        });
    }
}

/// A file holding `content`, inside the bundle directory (removed with it).
fn data_file(b: &TestBundle, content: &str) -> File {
    let path = b.dir.join("data.txt");
    std::fs::write(&path, content).unwrap();
    File::open(path).unwrap()
}

/// Sets `process.capabilities.<set>` for every set.
fn set_caps(b: &mut TestBundle, sets: &[(&str, &[&str])]) {
    b.edit(|c| {
        let caps = &mut c["process"]["capabilities"];
        *caps = json!({});
        for (name, list) in sets {
            caps[*name] = json!(list);
        }
    });
}

#[test]
fn user_uid_gid_and_additional_gids_apply() {
    let mut b = TestBundle::new("user-ids");
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]})
    });
    b.sh("id");
    let out = b.run_ok();
    assert!(out.contains("uid=1000"), "{out}");
    assert!(out.contains("gid=1000"), "{out}");
    let groups: Vec<u32> = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("groups="))
        .unwrap_or_else(|| panic!("no groups in {out}"))
        .split(',')
        .map(|g| g.split('(').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        groups.contains(&10) && groups.contains(&20),
        "groups {groups:?}"
    );
    b.assert_no_state();
}

#[test]
fn umask_is_applied() {
    let mut b = TestBundle::new("umask");
    b.edit(|c| c["process"]["user"]["umask"] = json!(63));
    b.sh("umask");
    assert_eq!(b.run_ok().trim(), "0077");
    b.assert_no_state();
}

#[test]
fn umask_defaults_to_0022() {
    let mut b = TestBundle::new("umask-default");
    b.sh("umask");
    assert_eq!(b.run_ok().trim(), "0022");
    b.assert_no_state();
}

#[test]
fn custom_env_is_visible_and_home_defaults_to_passwd() {
    let mut b = TestBundle::new("env");
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HULL_TEST_VAR=hello world"))
    });
    b.sh(r#"echo "var=$HULL_TEST_VAR"; echo "home=$HOME""#);
    let out = b.run_ok();
    assert!(out.lines().any(|l| l == "var=hello world"), "{out}");
    assert!(out.lines().any(|l| l == "home=/root"), "{out}");
    b.assert_no_state();
}

#[test]
fn home_is_kept_when_set() {
    let mut b = TestBundle::new("env-home");
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOME=/custom/home"))
    });
    b.sh(r#"echo "home=$HOME""#);
    assert_eq!(b.run_ok().trim(), "home=/custom/home");
    b.assert_no_state();
}

#[test]
fn rlimit_nofile_is_applied() {
    let mut b = TestBundle::new("rlimits");
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}])
    });
    b.sh("ulimit -n; ulimit -Hn; grep 'Max open files' /proc/self/limits");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "512", "soft limit: {out}");
    assert_eq!(lines[1], "1024", "hard limit: {out}");
    let limits: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(limits[3..5], ["512", "1024"], "{out}");
    b.assert_no_state();
}

#[test]
fn capabilities_of_a_non_root_user_follow_exec_rules() {
    let mut b = TestBundle::new("caps-nonroot");
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let kept: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    set_caps(
        &mut b,
        &[
            (
                "bounding",
                &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            ),
            ("effective", kept),
            ("permitted", kept),
            ("inheritable", kept),
            ("ambient", &["CAP_NET_BIND_SERVICE"]),
        ],
    );
    b.sh("grep ^Cap /proc/self/status");
    let out = b.run_ok();
    assert_eq!(field(&out, "CapBnd"), "0000000000000421", "{out}");
    assert_eq!(field(&out, "CapInh"), "0000000000000420", "{out}");
    assert_eq!(field(&out, "CapAmb"), "0000000000000400", "{out}");
    assert_eq!(field(&out, "CapPrm"), "0000000000000400", "{out}");
    assert_eq!(field(&out, "CapEff"), "0000000000000400", "{out}");
    b.assert_no_state();
}

#[test]
fn capabilities_of_the_default_spec_match_runc() {
    let mut b = TestBundle::new("caps-default");
    b.sh("grep ^Cap /proc/self/status");
    let out = b.run_ok();
    assert_eq!(field(&out, "CapPrm"), "0000000020000420", "{out}");
    assert_eq!(field(&out, "CapEff"), "0000000020000420", "{out}");
    assert_eq!(field(&out, "CapBnd"), "0000000020000420", "{out}");
    assert_eq!(field(&out, "CapInh"), "0000000000000000", "{out}");
    assert_eq!(field(&out, "CapAmb"), "0000000000000000", "{out}");
    b.assert_no_state();
}

#[test]
fn no_new_privileges_true_sets_the_flag() {
    let mut b = TestBundle::new("nnp-on");
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(true));
    b.sh("cat /proc/self/status");
    let out = b.run_ok();
    assert_eq!(field(&out, "NoNewPrivs"), "1", "{out}");
    b.assert_no_state();
}

#[test]
fn no_new_privileges_false_leaves_the_flag_clear() {
    let mut b = TestBundle::new("nnp-off");
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    b.sh("cat /proc/self/status");
    let out = b.run_ok();
    assert_eq!(field(&out, "NoNewPrivs"), "0", "{out}");
    b.assert_no_state();
}

#[test]
fn oom_score_adj_is_applied() {
    let mut b = TestBundle::new("oom");
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(500));
    b.sh("cat /proc/self/oom_score_adj");
    assert_eq!(b.run_ok().trim(), "500");
    b.assert_no_state();
}

#[test]
fn inherited_fds_are_not_passed_on() {
    let mut b = TestBundle::new("fds-closed");
    // Not the last command, so sh forks ls instead of exec'ing it.
    b.sh("ls -l /proc/$$/fd; true");
    let file = data_file(&b, "secret\n");
    let mut cmd = b.hull();
    cmd.arg("run")
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(Stdio::null());
    inherit_at(&mut cmd, &file, 5);
    let out = cmd.output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert_eq!(fds_listed(&stdout), [0, 1, 2], "{stdout}");
    b.assert_no_state();
}

#[test]
fn preserve_fds_passes_fd_3_on() {
    let mut b = TestBundle::new("fds-preserved");
    b.sh("ls -l /proc/$$/fd; cat /proc/self/fd/3");
    let file = data_file(&b, "preserved-content\n");
    let mut cmd = b.hull();
    cmd.args(["run", "--preserve-fds", "1", "--bundle"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(Stdio::null());
    inherit_at(&mut cmd, &file, 3);
    let out = cmd.output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert_eq!(fds_listed(&stdout), [0, 1, 2, 3], "{stdout}");
    assert!(stdout.lines().any(|l| l == "preserved-content"), "{stdout}");
    b.assert_no_state();
}

#[test]
fn args_are_looked_up_in_path() {
    let mut b = TestBundle::new("path-lookup");
    b.args(&["echo", "hi"]);
    assert_eq!(b.run_ok(), "hi\n");
    b.assert_no_state();
}

#[test]
fn run_of_a_missing_executable_exits_127() {
    let mut b = TestBundle::new("notfound-run");
    b.args(&["hull-no-such-binary"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 127, "stdout={out} stderr={err}");
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn create_of_a_missing_executable_fails() {
    let mut b = TestBundle::new("notfound-create");
    b.args(&["hull-no-such-binary"]);
    let out = b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "create succeeded");
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// Reads `master` until `marker` shows up (or 10s pass); returns what was read.
fn read_until(master: OwnedFd, marker: &'static str) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut f = File::from(master);
        let mut buf = [0u8; 1024];
        // Ends with EIO once the container has closed the slave.
        while let Ok(n @ 1..) = f.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !text(&seen).contains(marker) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!("no {marker:?} on the terminal; got {:?}", text(&seen)),
        }
    }
    text(&seen)
}

#[test]
fn terminal_master_is_sent_to_the_console_socket() {
    let mut b = TestBundle::new("console");
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.sh("tty; echo tty-ok");
    // The bundle directory is removed when the test ends.
    let sock = b.dir.join(format!("{}.sock", unique("console")));
    let listener = UnixListener::bind(&sock).unwrap();
    let (master, _) = create_with_console(&b, &listener);
    let out = b.cmd(&["start", &b.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    let seen = read_until(master, "tty-ok");
    let tty = seen
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let n = tty.strip_prefix("/dev/pts/");
    assert!(
        n.is_some_and(|n| n.parse::<u32>().is_ok()),
        "tty printed {tty:?}; terminal output {seen:?}"
    );
    wait_stopped(&b);
    b.delete_and_check(false);
}

#[test]
fn terminal_without_console_socket_fails_create() {
    let mut b = TestBundle::new("console-missing");
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.sh("true");
    let out = b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "create succeeded");
    assert!(err.contains("console socket"), "{err}");
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// Runs `cat /proc/keys` (unmasked) with `extra` flags for `run`.
fn proc_keys(b: &mut TestBundle, extra: &[&str]) -> String {
    b.edit(|c| c["linux"]["maskedPaths"] = json!([]));
    b.sh("cat /proc/keys");
    let out = b
        .hull()
        .arg("run")
        .args(extra)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "run: {}", text(&out.stderr));
    b.assert_no_state();
    text(&out.stdout)
}

#[test]
fn session_keyring_is_named_after_the_container() {
    let mut b = TestBundle::new("keyring");
    let keys = proc_keys(&mut b, &[]);
    let name = format!("_ses.{}", b.id);
    assert!(
        keys.lines()
            .any(|l| l.contains(" keyring ") && l.contains(&name)),
        "no {name} in /proc/keys:\n{keys}"
    );
}

#[test]
fn no_new_keyring_keeps_the_callers_keyring() {
    let mut b = TestBundle::new("keyring-none");
    let keys = proc_keys(&mut b, &["--no-new-keyring"]);
    let name = format!("_ses.{}", b.id);
    assert!(!keys.contains(&name), "{name} in /proc/keys:\n{keys}");
}

const NAMESPACES: [&str; 5] = ["pid", "net", "ipc", "uts", "mnt"];

/// The namespace link `/proc/<pid>/ns/<ns>` seen from the host.
fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn namespaces_are_new_and_the_process_is_pid_1() {
    let mut b = TestBundle::new("namespaces");
    b.sh(r#"echo "pid1=$$"; for n in pid net ipc uts mnt; do echo "$n $(readlink /proc/self/ns/$n)"; done"#);
    let out = b.run_ok();
    assert!(out.lines().any(|l| l == "pid1=1"), "{out}");
    for ns in NAMESPACES {
        let inside = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{ns} ")))
            .unwrap_or_else(|| panic!("no {ns} in {out}"));
        assert!(inside.starts_with(&format!("{ns}:[")), "{out}");
        assert_ne!(inside, ns_link("self", ns), "{ns} namespace is the host's");
    }
    b.assert_no_state();
}

#[test]
fn network_namespace_is_joined_by_path() {
    let mut a = TestBundle::new("netns-owner");
    a.args(&["sleep", "100"]);
    a.detached(&["run", "-d"]);
    let pid_a = a.init_pid().to_string();
    let net_a = ns_link(&pid_a, "net");
    assert_ne!(net_a, ns_link("self", "net"));

    let mut b = TestBundle::new("netns-joiner");
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": format!("/proc/{pid_a}/ns/net")}));
    });
    b.args(&["readlink", "/proc/self/ns/net"]);
    assert_eq!(b.run_ok().trim(), net_a);
    b.assert_no_state();

    a.delete_and_check(true);
}

#[test]
fn created_init_cannot_expose_a_writable_runtime_binary() {
    use std::os::unix::fs::OpenOptionsExt;
    let mut b = TestBundle::new("cve-2019-5736");
    b.sh("true");
    b.detached(&["create"]);
    let pid = b.init_pid();
    let exe = format!("/proc/{pid}/exe");
    // The init runs hull from a read-only mount or a sealed memfd.
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&exe)
        .unwrap();
    let target = std::fs::read_link(&exe).unwrap();
    let on_ro_mount = nix::sys::statvfs::fstatvfs(&handle)
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    assert!(
        on_ro_mount || target.to_string_lossy().contains("memfd:"),
        "init runs {target:?} from a writable mount"
    );
    assert!(
        OpenOptions::new().write(true).open(&exe).is_err(),
        "{exe} opened for writing"
    );
    assert_eq!(b.state()["status"], Value::from("created"));
    b.delete_and_check(false);
    // The attack waits for the runtime to exit, then reopens the saved handle:
    // EROFS (read-only mount) or EPERM (sealed memfd); ETXTBSY while any other
    // hull process of a parallel test still runs the same binary.
    let reopen = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let err = OpenOptions::new().write(true).open(&reopen).unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EROFS) | Some(libc::EPERM) | Some(libc::ETXTBSY)
        ),
        "reopening the runtime binary for writing after exit: {err}"
    );
}

/// A foreground `run` with process.terminal and no console socket gets a pty
/// of hull's own, copied to hull's stdout (runc does the same).
#[test]
fn foreground_run_with_a_terminal_proxies_the_pty() {
    let mut b = TestBundle::new("fg-tty");
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.sh("tty; echo tty-ok; exit 5");
    let (code, out, err) = b.run();
    assert_eq!(code, 5, "stdout={out} stderr={err}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("tty-ok"), "{out}");
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// Adds a new time namespace, with `offsets` (`linux.timeOffsets`) if given.
fn with_time_namespace(b: &mut TestBundle, offsets: Option<Value>) {
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.push(json!({"type": "time"}));
        if let Some(o) = offsets {
            c["linux"]["timeOffsets"] = o;
        }
    });
}

#[test]
fn time_namespace_gets_the_configured_clock_offsets() {
    let mut b = TestBundle::new("timens");
    with_time_namespace(
        &mut b,
        Some(json!({
            "boottime": {"secs": 86_400_000, "nanosecs": 7},
            "monotonic": {"secs": -5, "nanosecs": 0}
        })),
    );
    b.sh("readlink /proc/self/ns/time; cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("time:["), "{out}");
    assert_ne!(
        lines[0],
        ns_link("self", "time"),
        "the host's time namespace"
    );
    let offsets: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(offsets.contains(&vec!["monotonic", "-5", "0"]), "{out}");
    assert!(
        offsets.contains(&vec!["boottime", "86400000", "7"]),
        "{out}"
    );
    let uptime: u64 = lines.last().unwrap().parse().unwrap();
    assert!(
        uptime >= 86_400_000,
        "uptime {uptime} without the boottime offset"
    );
    b.assert_no_state();
}

#[test]
fn time_namespace_without_offsets_and_joined_by_path() {
    let mut a = TestBundle::new("timens-owner");
    with_time_namespace(&mut a, None);
    a.args(&["sleep", "100"]);
    a.detached(&["run", "-d"]);
    let pid_a = a.init_pid().to_string();
    let time_a = ns_link(&pid_a, "time");
    assert_ne!(time_a, ns_link("self", "time"));

    let mut b = TestBundle::new("timens-joiner");
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.push(json!({"type": "time", "path": format!("/proc/{pid_a}/ns/time")}));
    });
    b.args(&["readlink", "/proc/self/ns/time"]);
    assert_eq!(b.run_ok().trim(), time_a);
    b.assert_no_state();
    a.delete_and_check(true);
}

#[test]
fn time_offsets_without_a_new_time_namespace_are_refused() {
    let mut b = TestBundle::new("timens-nooffsets");
    b.edit(|c| c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 10}}));
    b.args(&["true"]);
    let (code, out, err) = b.run();
    assert_ne!(code, 0, "stdout={out}");
    assert!(
        err.contains("linux.timeOffsets needs a new time namespace"),
        "{err}"
    );
    b.assert_no_state();
    assert_no_process(&b.id);

    with_time_namespace(&mut b, Some(json!({"realtime": {"secs": 10}})));
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown clock") && err.contains("realtime"),
        "{err}"
    );
    b.assert_no_state();
}

#[test]
fn cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    let mut b = TestBundle::new("cgroupns");
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.push(json!({"type": "cgroup"}));
    });
    b.sh("readlink /proc/self/ns/cgroup; cat /proc/self/cgroup");
    let out = b.run_ok();
    let mut lines = out.lines();
    let ns = lines.next().unwrap();
    assert!(ns.starts_with("cgroup:["), "{out}");
    assert_ne!(ns, ns_link("self", "cgroup"), "the host's cgroup namespace");
    // Every hierarchy (v1 and cgroup2) shows the container's cgroup as `/`.
    let cgroups: Vec<&str> = lines.collect();
    assert!(cgroups.len() > 1, "{out}");
    for line in cgroups {
        assert!(line.ends_with(":/"), "{line} in\n{out}");
    }
    b.assert_no_state();
}

/// A container running `sleep 100`, started with `run -d`.
fn sleeping(name: &str) -> TestBundle {
    let mut b = TestBundle::new(name);
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    b
}

/// `hull exec ARGS` (stdio captured through files).
fn exec(b: &TestBundle, args: &[&str]) -> Out {
    let mut cmd = b.hull();
    cmd.arg("exec").args(args).stdin(Stdio::null());
    Out::from(output_via_files(&mut cmd))
}

#[test]
fn exec_joins_the_namespaces_and_cgroups_and_returns_the_exit_code() {
    let b = sleeping("exec-join");
    let init = b.init_pid().to_string();
    let script = "for n in pid mnt net ipc uts; do echo $n $(readlink /proc/self/ns/$n); done; \
                  cat /proc/self/cgroup; echo pid=$$; exit 3";
    let out = exec(&b, &[&b.id, "sh", "-c", script]);
    assert_eq!(out.code, 3, "stdout={} stderr={}", out.stdout, out.stderr);
    for ns in NAMESPACES {
        let line = format!("{ns} {}", ns_link(&init, ns));
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line} not in {}",
            out.stdout
        );
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    for line in cgroups.lines() {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line} not in {}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("pid=1\n"), "exec'd process is pid 1");
    b.delete_and_check(true);
}

#[test]
fn exec_flags_set_env_cwd_user_and_capabilities() {
    let b = sleeping("exec-flags");
    let out = exec(
        &b,
        &[
            "--env",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1001",
            &b.id,
            "sh",
            "-c",
            "echo $FOO; pwd; id -u; id -g",
        ],
    );
    assert_eq!(
        out.ok().lines().collect::<Vec<_>>(),
        ["bar", "/tmp", "1000", "1001"]
    );
    // CAP_NET_ADMIN (bit 12) is not in the default set; --cap adds it.
    let cap_eff = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend([b.id.as_str(), "grep", "CapEff", "/proc/self/status"]);
        let out = exec(&b, &args);
        let hex = out.ok().split_whitespace().last().unwrap().to_owned();
        u64::from_str_radix(&hex, 16).unwrap()
    };
    assert_eq!(cap_eff(&[]) & (1 << 12), 0);
    assert_ne!(cap_eff(&["--cap", "CAP_NET_ADMIN"]) & (1 << 12), 0);
    b.delete_and_check(true);
}

#[test]
fn exec_detached_from_a_process_file_writes_its_pid() {
    let b = sleeping("exec-detach");
    let init = b.init_pid().to_string();
    let process = b.dir.join("process.json");
    let json = json!({
        "args": ["sleep", "60"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    });
    std::fs::write(&process, json.to_string()).unwrap();
    let pid_file = b.dir.join("exec.pid");
    let out = exec(
        &b,
        &[
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--process",
            process.to_str().unwrap(),
            &b.id,
        ],
    );
    out.ok();
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(ns_link(&pid, "pid"), ns_link(&init, "pid"));
    let ps = b.cmd(&["ps", "--format", "json", &b.id]);
    let pids: Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert!(
        pids.as_array()
            .unwrap()
            .contains(&json!(pid.parse::<i64>().unwrap())),
        "{pids}"
    );
    // delete --force takes the exec'd process down with the init.
    b.delete_and_check(true);
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    wait_for(|| format!("exec'd process {pid} still running"), gone);
}

#[test]
fn exec_refuses_missing_binaries_and_containers_in_the_wrong_state() {
    let b = sleeping("exec-errors");
    let out = exec(&b, &[&b.id, "hull-no-such-binary"]);
    assert_eq!(out.code, 255, "runc's code: {}", out.stderr);
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "{}",
        out.stderr
    );
    // Every exec that fails before the process runs exits 255, as runc's.
    let out = exec(&b, &[&b.id]);
    assert_eq!(out.code, 255);
    assert!(out.stderr.contains("needs a command"), "{}", out.stderr);

    b.cmd(&["pause", &b.id]);
    let out = exec(&b, &[&b.id, "true"]);
    assert_eq!(out.code, 255);
    assert!(
        out.stderr.contains(
            "exec failed: cannot exec in a paused container (use --ignore-paused to override)"
        ),
        "{}",
        out.stderr
    );
    b.cmd(&["resume", &b.id]);
    b.cmd(&["kill", &b.id, "KILL"]);
    wait_stopped(&b);
    let out = exec(&b, &[&b.id, "true"]);
    assert_eq!(out.code, 255);
    assert!(
        out.stderr.contains("cannot exec in a stopped container"),
        "{}",
        out.stderr
    );
    b.delete_and_check(false);
    let out = exec(&b, &[&b.id, "true"]);
    assert_eq!(out.code, 255);
    assert!(
        out.stderr.contains("exec failed: container does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn exec_gets_the_containers_seccomp_filter() {
    let mut b = TestBundle::new("exec-seccomp");
    b.args(&["sleep", "100"]).edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        })
    });
    b.detached(&["run", "-d"]);
    let out = exec(
        &b,
        &[
            &b.id,
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/x",
        ],
    );
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    b.delete_and_check(true);
}

#[test]
fn exec_with_a_terminal_sends_the_master_to_the_console_socket() {
    let b = sleeping("exec-tty");
    let sock = b.dir.join(format!("{}.sock", unique("exec-tty")));
    let listener = UnixListener::bind(&sock).unwrap();
    let mut cmd = b.hull();
    cmd.args([
        "exec",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        &b.id,
    ])
    .args(["sh", "-c", "tty; echo exec-tty-ok"]);
    let mut child = spawn_quiet(&mut cmd);
    let (stream, _) = listener.accept().unwrap();
    let master = recv_fd(&stream);
    let seen = read_until(master, "exec-tty-ok");
    assert!(seen.contains("/dev/pts/"), "{seen:?}");
    assert!(child.wait().unwrap().success());
    b.delete_and_check(true);
}

#[test]
fn exec_with_a_terminal_and_no_console_socket_proxies_its_own_pty() {
    let b = sleeping("exec-tty-proxy");
    let out = exec(&b, &["-t", &b.id, "sh", "-c", "tty; exit 5"]);
    assert_eq!(out.code, 5, "stdout={} stderr={}", out.stdout, out.stderr);
    assert!(out.stdout.contains("/dev/pts/"), "{}", out.stdout);
    b.delete_and_check(true);
}

/// The first host id of the user namespace tests' maps.
const USERNS_BASE: u32 = 100_000;

/// Adds a new user namespace mapping ids 0..65536 to `USERNS_BASE`.., and a
/// cgroup namespace.
fn with_user_namespace(b: &mut TestBundle) {
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.push(json!({"type": "user"}));
        list.push(json!({"type": "cgroup"}));
        let map = json!([{"containerID": 0, "hostID": USERNS_BASE, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
}

#[test]
fn user_namespace_maps_the_containers_root_to_the_host_range() {
    let mut b = TestBundle::new("userns");
    with_user_namespace(&mut b);
    // As podman's --privileged lists it: /dev/ptmx stays the devpts link.
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2}])
    });
    b.sh(
        "id -u; id -g; readlink /proc/self/ns/user; cat /proc/self/uid_map /proc/self/gid_map; \
          stat -c 'null %t:%T' /dev/null; echo x >/dev/null && echo null-writable; \
          echo ptmx $(readlink /dev/ptmx); \
          ls /sys/kernel >/dev/null && echo sysfs; ls /sys/fs/cgroup/memory/memory.limit_in_bytes; \
          grep CapEff /proc/self/status",
    );
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["0", "0"], "{out}");
    assert!(lines[2].starts_with("user:["), "{out}");
    assert_ne!(
        lines[2],
        ns_link("self", "user"),
        "the host's user namespace"
    );
    for map in &lines[3..5] {
        let fields: Vec<&str> = map.split_whitespace().collect();
        assert_eq!(fields, ["0", "100000", "65536"], "{out}");
    }
    // Devices cannot be made in a user namespace: the host's are bound.
    assert!(
        out.contains("null 1:3\nnull-writable\nptmx pts/ptmx\n"),
        "{out}"
    );
    assert!(out.contains("sysfs\n"), "{out}");
    assert!(
        out.contains("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        "{out}"
    );
    // The default spec's capabilities, held in the container's namespace only.
    assert_eq!(field(&out, "CapEff"), "0000000020000420", "{out}");
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn user_namespace_container_runs_as_the_mapped_uid_and_exec_joins_it() {
    let mut b = TestBundle::new("userns-exec");
    with_user_namespace(&mut b);
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    let init = b.init_pid().to_string();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let host_uid = USERNS_BASE.to_string();
    assert_eq!(
        field(&status, "Uid").split_whitespace().next(),
        Some(host_uid.as_str())
    );
    assert_eq!(
        field(&status, "Gid").split_whitespace().next(),
        Some(host_uid.as_str())
    );
    let out = exec(
        &b,
        &[&b.id, "sh", "-c", "readlink /proc/self/ns/user; id -u"],
    );
    assert_eq!(out.ok(), format!("{}\n0\n", ns_link(&init, "user")));
    let out = exec(
        &b,
        &[
            "--user",
            "1000:1000",
            &b.id,
            "sh",
            "-c",
            "id -u; grep ^Uid /proc/self/status",
        ],
    );
    let out = out.ok();
    assert!(out.starts_with("1000\n"), "{out}");
    b.delete_and_check(true);
}

#[test]
fn user_namespace_root_owns_a_rootfs_chowned_to_its_range() {
    let mut b = TestBundle::new("userns-rootfs");
    let rootfs = b.own_rootfs();
    let ok = Command::new("chown")
        .args(["-R", &format!("{USERNS_BASE}:{USERNS_BASE}")])
        .arg(&rootfs)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown the rootfs");
    with_user_namespace(&mut b);
    b.sh("echo made >/root/file && stat -c '%u:%g' /root/file");
    assert_eq!(b.run_ok(), "0:0\n");
    let meta = std::fs::metadata(rootfs.join("root/file")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (USERNS_BASE, USERNS_BASE));
    b.assert_no_state();
}

#[test]
fn user_namespace_without_a_network_namespace_binds_the_hosts_sys() {
    let mut b = TestBundle::new("userns-hostnet");
    with_user_namespace(&mut b);
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
    });
    b.sh("readlink /proc/self/ns/net; ls /sys/class/net");
    let out = b.run_ok();
    assert_eq!(
        out.lines().next(),
        Some(ns_link("self", "net").as_str()),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "lo"), "{out}");
    b.assert_no_state();
}

#[test]
fn user_namespace_configs_that_cannot_work_are_refused() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "userns-nomaps",
            |c| {
                c["linux"]["uidMappings"] = json!(null);
            },
            "a new user namespace needs both linux.uidMappings and linux.gidMappings",
        ),
        (
            "userns-maps-only",
            |c| {
                let list = c["linux"]["namespaces"].as_array_mut().unwrap();
                list.retain(|n| n["type"] != "user");
            },
            "linux.uidMappings and linux.gidMappings need a new user namespace",
        ),
        (
            "userns-path",
            |c| {
                let list = c["linux"]["namespaces"].as_array_mut().unwrap();
                list.retain(|n| n["type"] != "user");
                list.push(json!({"type": "user", "path": "/proc/self/ns/hull-test-none"}));
            },
            "cannot open namespace /proc/self/ns/hull-test-none",
        ),
        (
            "userns-join-mnt",
            |c| {
                let list = c["linux"]["namespaces"].as_array_mut().unwrap();
                list.retain(|n| n["type"] != "mount");
                list.push(json!({"type": "mount", "path": "/proc/self/ns/mnt"}));
            },
            "a mount or cgroup namespace joined by path cannot be combined with a new user namespace",
        ),
    ];
    for (name, edit, error) in cases {
        let mut b = TestBundle::new(name);
        with_user_namespace(&mut b);
        b.edit(edit).args(&["true"]);
        let (code, out, err) = b.run();
        assert_eq!(code, 1, "{name}: stdout={out} stderr={err}");
        assert!(err.contains(error), "{name}: {err}");
        b.assert_no_state();
        assert_no_process(&b.id);
    }
}

#[test]
fn a_new_user_namespace_can_join_the_hosts_namespaces_by_path() {
    let owner = sleeping("userns-netns-owner");
    let owner_pid = owner.init_pid().to_string();
    let mut b = TestBundle::new("userns-netns-joiner");
    with_user_namespace(&mut b);
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network" && n["type"] != "uts");
        for (typ, ns) in [("network", "net"), ("uts", "uts")] {
            list.push(json!({"type": typ, "path": format!("/proc/{owner_pid}/ns/{ns}")}));
        }
        // Only the owner of that uts namespace, the host, may name it.
        c.as_object_mut().unwrap().remove("hostname");
    });
    b.sh("for n in net uts user; do readlink /proc/self/ns/$n; done; id -u");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ns_link(&owner_pid, "net"), "{out}");
    assert_eq!(lines[1], ns_link(&owner_pid, "uts"), "{out}");
    assert_ne!(lines[2], ns_link("self", "user"), "{out}");
    assert_eq!(lines[3], "0", "{out}");
    b.assert_no_state();
    assert_no_process(&b.id);
    owner.delete_and_check(true);
}

#[test]
fn a_pod_container_joins_the_user_namespace_of_its_pause_container() {
    let mut pause = TestBundle::new("userns-pause");
    with_user_namespace(&mut pause);
    pause.args(&["sleep", "100"]);
    pause.detached(&["run", "-d"]);
    let pause_pid = pause.init_pid().to_string();

    // As containerd writes it: the pod's namespaces by path, the maps kept.
    let shared = ["user", "net", "ipc", "uts"];
    let mut b = TestBundle::new("userns-member");
    with_user_namespace(&mut b);
    b.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| !matches!(n["type"].as_str(), Some("user" | "network" | "ipc" | "uts")));
        for ns in shared {
            let typ = if ns == "net" { "network" } else { ns };
            list.push(json!({"type": typ, "path": format!("/proc/{pause_pid}/ns/{ns}")}));
        }
    });
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    let member = b.init_pid().to_string();
    for ns in shared {
        assert_eq!(ns_link(&member, ns), ns_link(&pause_pid, ns), "{ns}");
    }
    // Its own pid and mount namespaces, owned by the pod's user namespace:
    // proc could not be mounted otherwise.
    for ns in ["pid", "mnt"] {
        assert_ne!(ns_link(&member, ns), ns_link(&pause_pid, ns), "{ns}");
    }
    let status = std::fs::read_to_string(format!("/proc/{member}/status")).unwrap();
    assert_eq!(
        field(&status, "Uid").split_whitespace().next(),
        Some("100000")
    );
    let out = exec(
        &b,
        &[
            &b.id,
            "sh",
            "-c",
            "id -u; cat /proc/1/cmdline | tr '\\0' ' '",
        ],
    );
    assert_eq!(out.ok(), "0\nsleep 100 ");
    b.delete_and_check(true);
    pause.delete_and_check(true);
}

/// A bundle with its own rootfs holding `/v` and `/w`, and a host directory
/// `vol` (in the bundle) with a file `f` owned by the host's root.
fn with_volume(name: &str) -> (TestBundle, std::path::PathBuf) {
    let mut b = TestBundle::new(name);
    let rootfs = b.own_rootfs();
    for dir in ["v", "w"] {
        std::fs::create_dir(rootfs.join(dir)).unwrap();
    }
    let vol = b.dir.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "host file").unwrap();
    (b, vol)
}

#[test]
fn an_idmapped_bind_shows_host_files_through_the_containers_user_namespace() {
    let (mut b, vol) = with_volume("idmap-userns");
    with_user_namespace(&mut b);
    let source = vol.to_str().unwrap().to_owned();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/v", "type": "bind", "source": source, "options": ["rbind", "idmap"]}));
        mounts.push(json!({"destination": "/w", "type": "bind", "source": source, "options": ["rbind"]}));
    });
    b.sh("stat -c '%u:%g' /v/f /w/f; touch /v/made && echo made; touch /w/denied 2>/dev/null || echo denied");
    assert_eq!(b.run_ok(), "0:0\n65534:65534\nmade\ndenied\n");
    // What the container's root makes is the host root's on disk.
    let meta = std::fs::metadata(vol.join("made")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    b.assert_no_state();
}

#[test]
fn an_idmapped_bind_with_mappings_of_its_own_needs_no_user_namespace() {
    let (mut b, vol) = with_volume("idmap-own");
    let source = vol.to_str().unwrap().to_owned();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/v", "type": "bind", "source": source, "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]
        }))
    });
    b.args(&["stat", "-c", "%u:%g", "/v/f"]);
    assert_eq!(b.run_ok(), "1000:2000\n");
    b.assert_no_state();

    // Without them, and without a user namespace, there is nothing to map through.
    b.edit(|c| {
        let v = c["mounts"].as_array_mut().unwrap().last_mut().unwrap();
        v.as_object_mut().unwrap().remove("uidMappings");
        v.as_object_mut().unwrap().remove("gidMappings");
    });
    let (code, out, err) = b.run();
    assert_eq!(code, 1, "stdout={out} stderr={err}");
    assert!(
        err.contains("idmapped mount on /v: needs a user namespace or uidMappings and gidMappings of its own"),
        "{err}"
    );
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// In a user namespace the runtime opens the bind sources itself, as runc
/// does: a source the container's root could not reach (under a 0700 host
/// directory) is still bound, for the init and a later exec.
#[test]
fn user_namespace_binds_a_source_its_root_cannot_reach() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = TestBundle::new("userns-private-bind");
    with_user_namespace(&mut b);
    let private = b.dir.join("private");
    let data = private.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "reached\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let source = data.to_str().unwrap().to_owned();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/tmp", "type": "bind", "source": source, "options": ["rbind", "ro"]
        }))
    });
    b.sh("cat /tmp/f; sleep 60");
    b.detached(&["run", "-d"]);
    wait_for(
        || format!("no output: {}", b.log()),
        || b.log().contains("reached"),
    );
    let out = exec(&b, &["--cwd", "/tmp", &b.id, "cat", "f"]);
    assert_eq!(out.ok().trim(), "reached");
    b.delete_and_check(true);
}
