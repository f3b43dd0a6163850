//! cgroups: limits as the kernel applies them (read back on the host and seen
//! from inside), OOM kills and their events, the pids limit, the device
//! controller (v1 and the cgroup2 eBPF filter), pause/resume, update, ps,
//! kill --all, cleanup in every hierarchy, cgroupsPath placement, hugetlb on
//! cgroup2, and a pure cgroup2 view of this hybrid host.
//!
//! Every cgroup a test makes is named `hull-test-*` and removed again by a
//! [`CgroupGuard`], also when the test fails.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hull_tests::*;
use libcontainer::cgroups::{Cgroup, Hierarchies};
use libcontainer::oci_spec::runtime::LinuxResources;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// A character device no default rule allows (runc's list includes
/// /dev/zero, /dev/null, ...), readable without capabilities: the PM QoS
/// `cpu_dma_latency` misc device.
const DENIED_MAJOR: u64 = 10;
const DENIED_MINOR: u64 = 259;
const DENIED_HOST_NODE: &str = "/dev/cpu_dma_latency";

/// Every hierarchy mounted under /sys/fs/cgroup (`cpu`, ..., `unified`).
fn hierarchies() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CGROUP_ROOT)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Subdirectories of `dir` (no symlinks followed).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// `dir` and everything below it, deepest first.
fn tree_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in subdirs(dir) {
        out.extend(tree_deepest_first(&d));
    }
    out.push(dir.to_owned());
    out
}

/// The pids in a cgroup directory.
fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Thaws, empties (SIGKILL to what a test started in it) and removes a
/// test's cgroup directory tree.
fn remove_cgroup_tree(top: &Path) {
    let dirs = tree_deepest_first(top);
    for d in &dirs {
        let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        let _ = std::fs::write(d.join("cgroup.freeze"), "0");
    }
    for d in &dirs {
        let deadline = Instant::now() + Duration::from_secs(5);
        while d.exists() && std::fs::remove_dir(d).is_err() && Instant::now() < deadline {
            for pid in procs(d) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes every cgroup directory with one of these (unique, `hull-test-*`)
/// names from every hierarchy when dropped.
struct CgroupGuard {
    names: Vec<String>,
}

impl CgroupGuard {
    fn new(names: &[&str]) -> Self {
        let g = Self {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        g.clean();
        g
    }

    fn clean(&self) {
        for name in &self.names {
            assert!(name.starts_with("hull-test-"), "{name}");
            for top in cgroup_dirs_named(name) {
                remove_cgroup_tree(&top);
            }
        }
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        clean_up("the test's cgroups", || self.clean());
    }
}

/// A test bundle whose cgroups are removed after it is deleted (fields drop
/// in order: the bundle's `delete --force` first, then the guard).
struct Ctr {
    b: TestBundle,
    _cg: CgroupGuard,
}

impl Ctr {
    fn new(name: &str) -> Self {
        Self::with_cgroups(name, &[])
    }

    /// Also guards the cgroup directories called `extra`.
    fn with_cgroups(name: &str, extra: &[&str]) -> Self {
        let mut names = vec![unique(name)];
        names.extend(extra.iter().map(|s| s.to_string()));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let cg = CgroupGuard::new(&names);
        let mut b = TestBundle::new(name);
        // Directly under each hierarchy root, so the tests can find it there.
        let path = format!("/{}", b.id);
        b.edit(|c| c["linux"]["cgroupsPath"] = path.into());
        Self { b, _cg: cg }
    }
}

impl Deref for Ctr {
    type Target = TestBundle;
    fn deref(&self) -> &TestBundle {
        &self.b
    }
}

impl DerefMut for Ctr {
    fn deref_mut(&mut self) -> &mut TestBundle {
        &mut self.b
    }
}

/// A child process this test started: SIGKILLed (by its pid) and reaped
/// when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets `linux.resources.<key>`.
fn set_resource(b: &mut TestBundle, key: &str, v: Value) {
    b.edit(|c| c["linux"]["resources"][key] = v);
}

/// Drops the pid namespace, so the container's processes outlive its init.
fn without_pid_ns(b: &mut TestBundle) {
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
}

/// Waits until the container's log has a line `marker`; returns the log.
fn wait_log(b: &TestBundle, marker: &str) -> String {
    wait_for(
        || format!("no {marker:?} in the log:\n{}", b.log()),
        || b.log().lines().any(|l| l == marker),
    );
    b.log()
}

/// The last complete line of the log starting with `prefix`, without it.
fn last_value(b: &TestBundle, prefix: &str) -> Option<String> {
    let text = b.log();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    complete
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
}

fn status(b: &TestBundle) -> String {
    b.state()["status"].as_str().unwrap().to_owned()
}

/// Runs `hull ARGS` and asserts success; returns stdout.
fn hull_ok(b: &TestBundle, args: &[&str]) -> String {
    let out = b.cmd(args);
    assert!(
        out.status.success(),
        "hull {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `/sys/fs/cgroup/<hierarchy>/<cgroup>/<file>`, trimmed.
fn cg_read(hierarchy: &str, cgroup: &str, file: &str) -> String {
    let path = Path::new(CGROUP_ROOT)
        .join(hierarchy)
        .join(cgroup)
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Deletes the container and checks that no state, process or cgroup of it
/// is left, in any hierarchy.
fn delete_and_check(b: &TestBundle, force: bool) {
    b.delete_and_check(force);
    assert_no_cgroup(&b.id);
}

/// `hull GLOBAL... create`: (success, stderr). Output goes to files, so a
/// wrongly created init cannot hold a pipe of ours open.
fn try_create(b: &TestBundle, global: &[&str]) -> (bool, String) {
    let log = b.dir.join("create.log");
    let status = b
        .hull()
        .args(global)
        .args(["create", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .status()
        .unwrap();
    (status.success(), std::fs::read_to_string(&log).unwrap())
}

/// Lines of `/proc/<pid>/cgroup`.
fn proc_cgroup(pid: impl std::fmt::Display) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------- limits

#[test]
fn limits_are_written_and_seen_from_inside() {
    let mut b = Ctr::new("limits");
    set_resource(&mut b, "memory", json!({"limit": 64 << 20}));
    set_resource(&mut b, "pids", json!({"limit": 32}));
    set_resource(
        &mut b,
        "cpu",
        json!({"shares": 512, "quota": 50000, "period": 100000}),
    );
    b.sh(
        "for f in memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares \
         cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us; do \
         echo \"$f=$(cat /sys/fs/cgroup/$f)\"; done; echo @@end; exec sleep 100",
    );
    b.detached(&["run", "-d"]);
    let inside = wait_log(&b, "@@end");
    let id = b.id.clone();
    for (ctrl, file, want) in [
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("pids", "pids.max", "32"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
    ] {
        assert_eq!(cg_read(ctrl, &id, file), want, "host {ctrl}/{id}/{file}");
        let line = format!("{ctrl}/{file}={want}");
        assert!(
            inside.lines().any(|l| l == line),
            "inside, expected {line}:\n{inside}"
        );
    }
    let cg = proc_cgroup(b.init_pid());
    assert!(cg.contains(&format!("0::/{id}")), "{cg:?}");
    assert!(
        cg.iter().any(|l| l.ends_with(&format!(":memory:/{id}"))),
        "{cg:?}"
    );
    delete_and_check(&b, true);
}

#[test]
fn exceeding_the_memory_limit_oom_kills_and_reports_an_oom_event() {
    let mut b = Ctr::new("oom");
    let limit = 32 << 20;
    let mut memory = json!({"limit": limit});
    if Path::new(CGROUP_ROOT)
        .join("memory/memory.memsw.limit_in_bytes")
        .exists()
    {
        memory["swap"] = json!(limit); // no escape into swap
    }
    set_resource(&mut b, "memory", memory);
    // The init waits for /dev/shm/go, runs a shell that doubles a string
    // until it is killed, and stays alive a moment to let the event out.
    b.sh(
        "echo @@ready; while [ ! -e /dev/shm/go ]; do sleep 0.05; done; \
         sh -c 'x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done'; \
         echo \"rc=$?\"; echo @@end; sleep 1",
    );
    b.detached(&["run", "-d"]);
    wait_log(&b, "@@ready");
    assert_eq!(
        cg_read("memory", &b.id, "memory.limit_in_bytes"),
        limit.to_string()
    );

    let mut events = Reaped(
        b.hull()
            .args(["events", &b.id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = events.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first (stats) event comes after the OOM watcher is registered.
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("hull events printed nothing");
    assert!(first.contains("\"type\":\"stats\""), "{first}");

    std::fs::write(format!("/proc/{}/root/dev/shm/go", b.init_pid()), "").unwrap();
    let out = wait_log(&b, "@@end");
    assert!(out.lines().any(|l| l == "rc=137"), "not OOM-killed:\n{out}");

    let want = format!(r#"{{"type":"oom","id":"{}"}}"#, b.id);
    let mut seen = vec![first];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    assert!(seen.contains(&want), "no {want} in events: {seen:#?}");
    let oom_control = cg_read("memory", &b.id, "memory.oom_control");
    assert!(
        oom_control
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{oom_control}"
    );
    drop(events);
    wait_status(&b, "stopped");
    delete_and_check(&b, false);
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let mut b = Ctr::new("pids");
    set_resource(&mut b, "pids", json!({"limit": 16}));
    // Background sleeps in a subshell until fork fails (ash then gives up on
    // the subshell); each success prints a line.
    b.sh(
        "( for i in $(seq 40); do sleep 30 & echo started; done ) 2>&1; \
         echo @@end; exec sleep 30",
    );
    b.detached(&["run", "-d"]);
    let mut max_current = 0;
    wait_for(
        || format!("no @@end:\n{}", b.log()),
        || {
            if let Ok(s) =
                std::fs::read_to_string(format!("{CGROUP_ROOT}/pids/{}/pids.current", b.id))
            {
                max_current = max_current.max(s.trim().parse::<u32>().unwrap_or(0));
            }
            b.log().lines().any(|l| l == "@@end")
        },
    );
    let out = b.log();
    let started = out.lines().filter(|l| *l == "started").count();
    assert_eq!(cg_read("pids", &b.id, "pids.max"), "16");
    // 16 = the init + the subshell + at most 14 sleeps.
    assert!(
        (1..=14).contains(&started),
        "{started} forks succeeded:\n{out}"
    );
    assert!(
        out.contains("can't fork") || out.contains("Resource temporarily unavailable"),
        "fork did not fail:\n{out}"
    );
    let current: u32 = cg_read("pids", &b.id, "pids.current").parse().unwrap();
    assert!(
        current <= 16 && max_current <= 16,
        "{current} {max_current}"
    );
    assert_eq!(current as usize, 1 + started, "the init and the sleeps");
    let events = cg_read("pids", &b.id, "pids.events");
    let refused: u64 = events
        .strip_prefix("max ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{events}"));
    assert!(refused > 0, "pids.events: {events}");
    delete_and_check(&b, true);
}

// ---------------------------------------------------------------- devices

/// The container's config with `/dev/hull-test-dev` (the denied device) in
/// `linux.devices` and a script that reads it, /dev/zero and /dev/null.
fn device_bundle(name: &str) -> Ctr {
    let mut b = Ctr::new(name);
    b.edit(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/hull-test-dev", "type": "c",
            "major": DENIED_MAJOR, "minor": DENIED_MINOR,
            "fileMode": 0o666, "uid": 0, "gid": 0
        }])
    });
    b.sh("[ -c /dev/hull-test-dev ] && echo node-ok; \
         head -c1 /dev/hull-test-dev 2>&1 > /dev/null; echo \"dev=$?\"; \
         echo \"dev-bytes=$(head -c1 /dev/hull-test-dev 2>/dev/null | wc -c)\"; \
         echo \"zero-bytes=$(head -c1 /dev/zero | wc -c)\"; \
         echo x > /dev/null && echo null-ok");
    b
}

#[test]
fn a_device_without_an_allow_rule_is_not_permitted() {
    assert!(Path::new(DENIED_HOST_NODE).exists(), "{DENIED_HOST_NODE}");
    let b = device_bundle("dev-deny");
    assert_eq!(
        b.config["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}]),
        "the default spec denies all devices"
    );
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"node-ok"), "{out}");
    assert!(lines.contains(&"dev=1"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(lines.contains(&"dev-bytes=0"), "{out}");
    assert!(lines.contains(&"zero-bytes=1"), "{out}");
    assert!(lines.contains(&"null-ok"), "{out}");
    b.assert_no_state();
    assert_no_cgroup(&b.id);
}

#[test]
fn an_allow_rule_makes_the_device_readable() {
    let mut b = device_bundle("dev-allow");
    b.edit(|c| {
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": DENIED_MAJOR,
                         "minor": DENIED_MINOR, "access": "rw"}))
    });
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"node-ok"), "{out}");
    assert!(lines.contains(&"dev=0"), "{out}");
    assert!(lines.contains(&"dev-bytes=1"), "{out}");
    assert!(!out.contains("Operation not permitted"), "{out}");
    assert!(lines.contains(&"zero-bytes=1"), "{out}");
    assert!(lines.contains(&"null-ok"), "{out}");
    b.assert_no_state();
    assert_no_cgroup(&b.id);
}

// ---------------------------------------------------------------- pause, update, ps, kill

#[test]
fn pause_stops_the_container_and_resume_restarts_it() {
    let mut b = Ctr::new("pause");
    b.sh("i=0; while :; do i=$((i+1)); echo \"c=$i\"; sleep 0.05; done");
    b.detached(&["run", "-d"]);
    let counter = |b: &TestBundle| -> u64 { last_value(b, "c=").map_or(0, |v| v.parse().unwrap()) };
    wait_for(|| b.log(), || counter(&b) >= 3);

    hull_ok(&b, &["pause", &b.id]);
    assert_eq!(status(&b), "paused");
    let list: Value = serde_json::from_str(&hull_ok(&b, &["list", "--format", "json"])).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == b.id.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(entry["status"], "paused", "{list}");
    let table = hull_ok(&b, &["list"]);
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(b.id.as_str()))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.split_whitespace().nth(2), Some("paused"), "{table}");
    assert_eq!(cg_read("freezer", &b.id, "freezer.state"), "FROZEN");
    let frozen_at = counter(&b);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(counter(&b), frozen_at, "the counter advanced while paused");

    hull_ok(&b, &["resume", &b.id]);
    assert_eq!(status(&b), "running");
    assert_eq!(cg_read("freezer", &b.id, "freezer.state"), "THAWED");
    wait_for(
        || format!("counter stuck at {frozen_at}"),
        || counter(&b) > frozen_at + 2,
    );
    delete_and_check(&b, true);
}

#[test]
fn update_changes_live_limits() {
    let mut b = Ctr::new("update");
    set_resource(&mut b, "pids", json!({"limit": 100}));
    b.sh("while :; do echo \"v=$(cat /sys/fs/cgroup/pids/pids.max) \
         $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)\"; sleep 0.05; done");
    b.detached(&["run", "-d"]);
    let id = b.id.clone();
    let inside = |b: &TestBundle| last_value(b, "v=").unwrap_or_default();
    let expect = |b: &TestBundle, pids: &str, memory: &str| {
        assert_eq!(cg_read("pids", &id, "pids.max"), pids);
        assert_eq!(cg_read("memory", &id, "memory.limit_in_bytes"), memory);
        let want = format!("{pids} {memory}");
        wait_for(
            || format!("inside: {:?}, expected {want:?}", inside(b)),
            || inside(b) == want,
        );
    };
    wait_for(|| b.log(), || inside(&b).starts_with("100 "));

    hull_ok(
        &b,
        &["update", "--memory", "100M", "--pids-limit", "50", &id],
    );
    expect(&b, "50", "104857600");

    let out = output_with_input(
        b.hull().args(["update", "-r", "-", &id]),
        br#"{"pids":{"limit":40}}"#,
    );
    assert!(out.status.success(), "update -r -: {}", text(&out.stderr));
    expect(&b, "40", "104857600");

    let file = b.dir.join("resources.json");
    std::fs::write(
        &file,
        json!({"pids": {"limit": 30}, "memory": {"limit": 80 << 20}}).to_string(),
    )
    .unwrap();
    hull_ok(&b, &["update", "-r", file.to_str().unwrap(), &id]);
    expect(&b, "30", "83886080");
    delete_and_check(&b, true);
}

#[test]
fn ps_lists_the_init_and_its_child() {
    let mut b = Ctr::new("ps");
    b.sh("sleep 100 & sleep 100");
    b.detached(&["run", "-d"]);
    let init = b.init_pid();
    wait_for(
        || {
            format!(
                "{:?}",
                procs(&Path::new(CGROUP_ROOT).join("pids").join(&b.id))
            )
        },
        || procs(&Path::new(CGROUP_ROOT).join("pids").join(&b.id)).len() == 2,
    );

    let table = hull_ok(&b, &["ps", &b.id]);
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.split_whitespace().any(|h| h == "PID"),
        "no header: {table}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.contains("sleep 100")), "{table}");

    let pids: Vec<i32> =
        serde_json::from_str(&hull_ok(&b, &["ps", "--format", "json", &b.id])).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&init), "{pids:?} lacks the init {init}");
    for pid in &pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert_eq!(cmdline, b"sleep\x00100\x00", "pid {pid}");
        // A host pid: /proc/<pid> of the host is this process, and its
        // NSpid starts with it (then the pid inside the container).
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let nspid: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(nspid.len(), 2, "{nspid:?}");
        assert_eq!(nspid[0], pid.to_string());
    }
    delete_and_check(&b, true);
}

#[test]
fn kill_all_signals_every_process() {
    let mut b = Ctr::new("kill-all");
    // Without a pid namespace the others would outlive a killed init.
    without_pid_ns(&mut b);
    b.sh("sleep 100 & sleep 100 & sleep 100 & exec sleep 100");
    b.detached(&["run", "-d"]);
    let dir = Path::new(CGROUP_ROOT).join("pids").join(&b.id);
    wait_for(|| format!("{:?}", procs(&dir)), || procs(&dir).len() == 4);
    let pids = procs(&dir);

    hull_ok(&b, &["kill", "--all", &b.id, "KILL"]);
    wait_for(
        || {
            format!(
                "left: {:?}",
                pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
            )
        },
        || pids.iter().all(|p| !alive(*p)),
    );
    assert!(procs(&dir).is_empty(), "{:?}", procs(&dir));
    wait_status(&b, "stopped");
    delete_and_check(&b, false);
}

// ---------------------------------------------------------------- cleanup

#[test]
fn a_normal_run_leaves_no_cgroup() {
    let mut b = Ctr::new("clean-run");
    b.sh("cat /proc/self/cgroup");
    let out = b.run_ok();
    assert!(
        out.lines().any(|l| l == format!("0::/{}", b.id)),
        "not in its cgroup: {out}"
    );
    b.assert_no_state();
    assert_no_cgroup(&b.id);
}

#[test]
fn delete_force_of_a_running_container_removes_its_cgroups() {
    let mut b = Ctr::new("clean-force");
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    for h in hierarchies() {
        assert!(h.join(&b.id).is_dir(), "no {}", h.join(&b.id).display());
    }
    delete_and_check(&b, true);
}

#[test]
fn delete_force_of_a_paused_container_removes_its_cgroups() {
    let mut b = Ctr::new("clean-paused");
    b.sh("sleep 100 & exec sleep 100");
    b.detached(&["run", "-d"]);
    hull_ok(&b, &["pause", &b.id]);
    assert_eq!(status(&b), "paused");
    delete_and_check(&b, true);
}

#[test]
fn delete_after_the_init_was_killed_removes_its_cgroups() {
    let mut b = Ctr::new("clean-crash");
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    wait_status(&b, "stopped");
    assert!(
        Path::new(CGROUP_ROOT).join("memory").join(&b.id).is_dir(),
        "the cgroup should outlive the init"
    );
    delete_and_check(&b, false);
}

#[test]
fn delete_after_a_crash_kills_what_is_left_in_the_cgroup() {
    let mut b = Ctr::new("clean-leftover");
    // Without a pid namespace the background sleep survives the init.
    without_pid_ns(&mut b);
    b.sh("sleep 100 & exec sleep 100");
    b.detached(&["run", "-d"]);
    let dir = Path::new(CGROUP_ROOT).join("pids").join(&b.id);
    wait_for(|| format!("{:?}", procs(&dir)), || procs(&dir).len() == 2);
    let init = b.init_pid();
    let other = *procs(&dir).iter().find(|p| **p != init).unwrap();
    kill(Pid::from_raw(init), Signal::SIGKILL).unwrap();
    wait_status(&b, "stopped");
    assert!(alive(other), "the second process should still run");
    assert_eq!(procs(&dir), vec![other]);

    delete_and_check(&b, false);
    wait_for(|| format!("{other} still runs"), || !alive(other));
}

/// The hierarchy directory under /sys/fs/cgroup for a /proc/<pid>/cgroup
/// controller list (`""` is cgroup2).
fn hierarchy_dir(controllers: &str) -> PathBuf {
    let name = match controllers {
        "" => "unified",
        "name=systemd" => "systemd",
        c => c,
    };
    Path::new(CGROUP_ROOT).join(name)
}

#[test]
fn an_absolute_cgroups_path_is_created_and_removed_at_both_levels() {
    let top = unique("abs");
    let mut b = Ctr::with_cgroups("abs-path", &[&top]);
    let path = format!("/{top}/x");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    for line in proc_cgroup(b.init_pid()) {
        let (_, rest) = line.split_once(':').unwrap();
        let (ctrls, cg) = rest.split_once(':').unwrap();
        assert_eq!(cg, path, "{line}");
        assert!(hierarchy_dir(ctrls).join(&top).join("x").is_dir(), "{line}");
    }
    delete_and_check(&b, true);
    assert_no_cgroup(&top);
}

#[test]
fn a_relative_cgroups_path_is_placed_under_our_own_cgroup() {
    let top = unique("rel");
    let mut b = Ctr::with_cgroups("rel-path", &[&top]);
    let rel = format!("{top}/y");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(rel));
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    let own = proc_cgroup("self");
    let init = proc_cgroup(b.init_pid());
    assert_eq!(own.len(), init.len(), "{own:?} {init:?}");
    for line in init {
        let (num, rest) = line.split_once(':').unwrap();
        let (ctrls, cg) = rest.split_once(':').unwrap();
        let base = own
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{num}:{ctrls}:")))
            .unwrap_or_else(|| panic!("{line} not in {own:?}"));
        let want = format!("{}/{rel}", base.trim_end_matches('/'));
        assert_eq!(cg, want, "{line}");
        let dir = hierarchy_dir(ctrls).join(want.trim_start_matches('/'));
        assert!(dir.is_dir(), "no {}", dir.display());
    }
    delete_and_check(&b, true);
    assert_no_cgroup(&top);
}

#[test]
fn a_failed_create_leaves_no_cgroup() {
    let mut b = Ctr::new("clean-failed");
    b.args(&["hull-no-such-binary"]);
    let (ok, err) = try_create(&b, &[]);
    assert!(!ok, "create succeeded");
    assert!(err.contains("executable file not found"), "{err}");
    b.assert_no_state();
    assert_no_process(&b.id);
    assert_no_cgroup(&b.id);
}

#[test]
fn systemd_cgroup_without_systemd_fails_create_cleanly() {
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test expects a host without systemd"
    );
    let mut b = Ctr::new("systemd");
    b.args(&["sleep", "100"]);
    let (ok, err) = try_create(&b, &["--systemd-cgroup"]);
    assert!(!ok, "create succeeded");
    assert!(err.contains("systemd"), "{err}");
    b.assert_no_state();
    assert_no_process(&b.id);
    assert_no_cgroup(&b.id);
}

// ---------------------------------------------------------------- cgroup2

#[test]
fn hugetlb_limits_go_to_cgroup2_on_this_hybrid_host() {
    let v2_controllers = std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers")).unwrap();
    assert!(
        v2_controllers.split_whitespace().any(|c| c == "hugetlb"),
        "{v2_controllers}"
    );
    let mut b = Ctr::new("hugetlb");
    set_resource(
        &mut b,
        "hugepageLimits",
        json!([{"pageSize": "2MB", "limit": 4194304}]),
    );
    b.args(&["sleep", "100"]);
    b.detached(&["run", "-d"]);
    assert_eq!(cg_read("unified", &b.id, "hugetlb.2MB.max"), "4194304");
    delete_and_check(&b, true);
}

/// The host's cgroup2 mount alone, as a pure-v2 host would have it.
fn v2_only() -> Hierarchies {
    let mut h = Hierarchies::parse(&format!("31 1 0:27 / {UNIFIED} rw - cgroup2 cgroup2 rw\n"));
    let controllers = std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers")).unwrap();
    h.v2.as_mut().unwrap().controllers = controllers.split_whitespace().map(String::from).collect();
    h
}

/// How many BPF_CGROUP_DEVICE programs are attached to the cgroup `dir`.
fn device_programs(dir: &Path) -> u32 {
    #[repr(C)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
    }
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;
    let fd = File::open(dir).unwrap();
    let mut attr = QueryAttr {
        target_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: 0,
        prog_cnt: 0,
    };
    // SAFETY: `attr` is a valid bpf_attr prefix of the size passed; the
    // kernel writes only prog_cnt and attach_flags into it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut attr as *mut QueryAttr,
            std::mem::size_of::<QueryAttr>(),
        )
    };
    assert_eq!(r, 0, "BPF_PROG_QUERY: {}", std::io::Error::last_os_error());
    attr.prog_cnt
}

#[test]
fn pure_v2_library_cgroup_filters_devices_with_ebpf() {
    let name = unique("v2-dev");
    let _g = CgroupGuard::new(&[&name]);
    let h = v2_only();
    let mut cg = Cgroup::resolve(&h, Some(&format!("/{name}")), "x", false).unwrap();
    let dir = Path::new(UNIFIED).join(&name);
    assert_eq!(cg.dirs.len(), 1);
    assert_eq!(cg.dirs[0].path, dir);
    cg.create(|_| true).unwrap();
    assert!(dir.is_dir());
    assert_eq!(device_programs(&dir), 0);

    let res: LinuxResources = serde_json::from_value(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]}))
    .unwrap();
    cg.apply(&h, &res).unwrap();
    assert_eq!(device_programs(&dir), 1, "no eBPF program attached");

    // Outside the cgroup this process may read the device...
    File::open(DENIED_HOST_NODE).expect("the device is readable outside");
    // ...inside it, it may not; /dev/null stays usable.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs || exit 99; \
             head -c1 {DENIED_HOST_NODE} > /dev/null; echo rc=$?; \
             cat /dev/null && echo null-ok",
            dir.display()
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout} {stderr}");
    assert!(stdout.lines().any(|l| l == "rc=1"), "{stdout} {stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(stdout.lines().any(|l| l == "null-ok"), "{stdout} {stderr}");

    cg.destroy().unwrap();
    assert!(!dir.exists());
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn pure_v2_library_cgroup_freezes_thaws_lists_and_destroys() {
    let name = unique("v2-freeze");
    let _g = CgroupGuard::new(&[&name]);
    let h = v2_only();
    let mut cg = Cgroup::resolve(&h, Some(&format!("/{name}/x")), "x", false).unwrap();
    cg.create(|_| true).unwrap();
    let dir = Path::new(UNIFIED).join(&name).join("x");
    assert!(dir.is_dir());

    // A child that sleeps 50ms at a time and counts its wake-ups into a
    // file, with shell builtins only (no other process in the cgroup):
    // `read -t` times out on a pipe we keep open.
    let counter = TempFile(std::env::temp_dir().join(format!("{name}.count")));
    let mut child = Reaped(
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs || exit 99; i=0; \
                 while :; do read -t 0.05; i=$((i+1)); echo $i >> {}; done",
                dir.display(),
                counter.0.display()
            ))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id() as i32;
    // The last complete line (each is appended with a single write).
    let count = || -> u64 {
        let text = std::fs::read_to_string(&counter.0).unwrap_or_default();
        text.lines()
            .rev()
            .skip(usize::from(!text.ends_with('\n')))
            .find_map(|l| l.parse().ok())
            .unwrap_or(0)
    };
    wait_for(
        || format!("{:?} {}", procs(&dir), count()),
        || procs(&dir) == [pid] && count() >= 3,
    );
    let events = || std::fs::read_to_string(dir.join("cgroup.events")).unwrap();

    cg.set_frozen(true).unwrap();
    assert!(events().lines().any(|l| l == "frozen 1"), "{}", events());
    assert!(cg.is_frozen());
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(), frozen_at, "the child ran while frozen");

    cg.set_frozen(false).unwrap();
    assert!(events().lines().any(|l| l == "frozen 0"), "{}", events());
    assert!(!cg.is_frozen());
    wait_for(
        || format!("counter stuck at {frozen_at}"),
        || count() > frozen_at + 2,
    );

    assert_eq!(cg.pids().unwrap(), vec![pid]);
    cg.destroy().unwrap();
    assert!(!dir.exists() && !dir.parent().unwrap().exists());
    let exit = child.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "{exit}"
    );
}

/// A private mount namespace in which /sys/fs/cgroup is a plain cgroup2
/// mount (the host's unified hierarchy): a pure-v2 host, seen by hull.
struct PureV2 {
    holder: Reaped,
}

impl PureV2 {
    fn new() -> Self {
        // Everything happens inside the new namespace (unshare execs sh only
        // once it is made and private), never on the host.
        let mut holder = Reaped(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(
                    "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup \
                     && echo ready && exec sleep 600",
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(holder.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n", "pure-v2 namespace failed");
        Self { holder }
    }

    /// `hull --root <root> ARGS` inside the namespace.
    fn hull(&self, b: &TestBundle, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.holder.0.id().to_string())
            .args(["-m", "--"])
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn hull_ok(&self, b: &TestBundle, args: &[&str]) -> String {
        let out = self.hull(b, args);
        assert!(
            out.status.success(),
            "hull {args:?} in the pure-v2 namespace: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn status(&self, b: &TestBundle) -> String {
        let state: Value = serde_json::from_str(&self.hull_ok(b, &["state", &b.id])).unwrap();
        state["status"].as_str().unwrap().to_owned()
    }
}

#[test]
fn pure_v2_view_puts_the_container_in_the_unified_hierarchy() {
    let ns = PureV2::new();
    let mut b = Ctr::new("v2-run");
    b.sh("cat /proc/self/cgroup");
    let out = ns.hull_ok(&b, &["run", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    let v2: Vec<&str> = out.lines().filter(|l| l.starts_with("0::")).collect();
    assert_eq!(v2, [format!("0::/{}", b.id)], "{out}");
    // The v1 hierarchies still exist in this kernel (so /proc/self/cgroup
    // lists them) but a runtime that sees only cgroup2 must not use them.
    assert!(
        out.lines()
            .filter(|l| !l.starts_with("0::"))
            .all(|l| !l.contains(&b.id)),
        "{out}"
    );
    b.assert_no_state();
    assert_no_cgroup(&b.id);
}

#[test]
fn pure_v2_view_pauses_resumes_and_deletes() {
    let ns = PureV2::new();
    let mut b = Ctr::new("v2-pause");
    b.sh("sleep 100 & exec sleep 100");
    let logfile = File::create(b.log_path()).unwrap();
    let status = Command::new("nsenter")
        .arg("-t")
        .arg(ns.holder.0.id().to_string())
        .args(["-m", "--"])
        .arg(hull_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["run", "-d", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .stdin(Stdio::null())
        .stdout(logfile.try_clone().unwrap())
        .stderr(logfile)
        .status()
        .unwrap();
    assert!(status.success(), "run -d: {}", b.log());
    let host_dir = Path::new(UNIFIED).join(&b.id);
    assert!(host_dir.is_dir(), "no {}", host_dir.display());
    for h in hierarchies().iter().filter(|h| !h.ends_with("unified")) {
        assert!(!h.join(&b.id).exists(), "v1 cgroup {}", h.display());
    }
    wait_for(
        || format!("{:?}", procs(&host_dir)),
        || procs(&host_dir).len() == 2,
    );
    let events = || std::fs::read_to_string(host_dir.join("cgroup.events")).unwrap();

    ns.hull_ok(&b, &["pause", &b.id]);
    assert_eq!(ns.status(&b), "paused");
    assert_eq!(cg_read("unified", &b.id, "cgroup.freeze"), "1");
    assert!(events().lines().any(|l| l == "frozen 1"), "{}", events());

    ns.hull_ok(&b, &["resume", &b.id]);
    assert_eq!(ns.status(&b), "running");
    assert_eq!(cg_read("unified", &b.id, "cgroup.freeze"), "0");
    assert!(events().lines().any(|l| l == "frozen 0"), "{}", events());

    let pids = procs(&host_dir);
    ns.hull_ok(&b, &["delete", "--force", &b.id]);
    assert!(!host_dir.exists(), "{} left behind", host_dir.display());
    wait_for(
        || format!("{pids:?} still run"),
        || pids.iter().all(|p| !alive(*p)),
    );
    b.assert_no_state();
    assert_no_cgroup(&b.id);
}

#[test]
fn absent_cgroups_path_puts_the_container_under_our_own_cgroup() {
    let id = unique("cg-default");
    let _cg = CgroupGuard::new(&[id.as_str()]);
    let mut b = TestBundle::new("cg-default");
    b.sh("cat /proc/self/cgroup");
    let inside = b.run_ok();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_memory = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned()))
        .expect("memory hierarchy");
    let want = format!("{}/{}", own_memory.trim_end_matches('/'), b.id);
    assert!(
        inside
            .lines()
            .any(|l| l.ends_with(&format!(":memory:{want}"))),
        "memory cgroup of the container is not {want}: {inside}"
    );
    b.assert_no_state();
    assert_no_cgroup(&b.id);
}
