//! runc's zeros: Docker sends `0` for every limit it does not set, in the
//! config (`"blockIO":{"weight":0}`, `"cpu":{"shares":0}`) and in every
//! `update --resources -`; runc takes them for "unset". Also `update` as
//! runc does it: its negative flags, the memory/memsw and period/quota write
//! orders, validation before the first write, the earlier limits put back
//! when a write fails; and `exec`'s exit code for a missing binary.
//!
//! This host's cgroups are v1 (blkio without any weight file: writing one
//! is refused with EACCES, which is how Docker's zero weight failed).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hull_tests::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const ROOT: &str = "/sys/fs/cgroup";
/// The v1 "no limit" of memory.limit_in_bytes and friends (page aligned).
const NO_LIMIT: &str = "9223372036854771712";

/// A container whose cgroup is `/<parent>/<id>` (or `/<id>`) in every
/// hierarchy; the directories are removed afterwards, also on failure.
struct Ctr {
    b: TestBundle,
    /// Relative to each hierarchy's root.
    cgroup: String,
    /// The topmost directory to remove in each hierarchy.
    top: String,
}

impl Ctr {
    fn new(name: &str) -> Self {
        Self::under(name, None)
    }

    fn under(name: &str, parent: Option<&str>) -> Self {
        let mut b = TestBundle::new(name);
        b.args(&["sleep", "100"]);
        let cgroup = match parent {
            Some(p) => format!("{p}/{}", b.id),
            None => b.id.clone(),
        };
        let path = format!("/{cgroup}");
        b.edit(|c| c["linux"]["cgroupsPath"] = path.into());
        let top = parent.unwrap_or(&b.id).to_owned();
        assert!(top.starts_with("hull-test-"), "{top}");
        Self { b, cgroup, top }
    }

    fn resources(&mut self, res: Value) -> &mut Self {
        self.b.edit(|c| c["linux"]["resources"] = res);
        self
    }

    /// Keeps the fixture's device rules, replaces every other resource.
    fn with_devices(&mut self, mut res: Value) -> &mut Self {
        let devices = self.b.config["linux"]["resources"]["devices"].clone();
        res["devices"] = devices;
        self.resources(res)
    }

    fn read(&self, hierarchy: &str, file: &str) -> String {
        read(
            &Path::new(ROOT)
                .join(hierarchy)
                .join(&self.cgroup)
                .join(file),
        )
    }

    fn hull(&self, args: &[&str]) -> Out {
        Out::from(self.b.cmd(args))
    }

    /// `hull update --resources -` with `json` on stdin.
    fn update_stdin(&self, json: &str) -> Out {
        let update = ["update", "--resources", "-", &self.b.id];
        Out::from(output_with_input(
            self.b.hull().args(update),
            json.as_bytes(),
        ))
    }

    fn update(&self, flags: &[&str]) -> Out {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&self.b.id);
        self.hull(&args)
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        clean_up("delete the container", || {
            let _ = self.b.cmd(&["delete", "--force", &self.b.id]);
        });
        clean_up("remove the cgroups", || {
            for h in hierarchies() {
                remove_tree(&h.join(&self.top));
            }
        });
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn hierarchies() -> Vec<PathBuf> {
    std::fs::read_dir(ROOT)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes `dir` and its subdirectories, deepest first, killing (by pid)
/// whatever a failed test left inside.
fn remove_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Docker 20.10's `update --resources -` payload for `docker update
/// --memory 96m --memory-swap 192m --pids-limit 50`, byte for byte.
const DOCKER_UPDATE: &str = r#"{"memory":{"limit":100663296,"reservation":0,"swap":201326592,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":50},"blockIO":{"weight":0}}"#;

#[test]
fn docker_create_with_zero_resources_leaves_the_kernel_defaults() {
    // Docker 20.10's resources for a container started without limits
    // (devices aside), then every other field runc reads a zero in.
    let docker = json!({
        "memory": {"disableOOMKiller": false},
        "cpu": {"shares": 0},
        "pids": {"limit": 0},
        "blockIO": {"weight": 0}
    });
    let every = json!({
        "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0,
                   "disableOOMKiller": false},
        "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimePeriod": 0,
                "realtimeRuntime": 0, "cpus": "", "mems": ""},
        "pids": {"limit": 0},
        "blockIO": {"weight": 0, "leafWeight": 0,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 0}]},
        "network": {"classID": 0}
    });
    for (name, res) in [("zero-docker", docker), ("zero-every", every)] {
        let mut c = Ctr::new(name);
        c.with_devices(res);
        c.b.create();
        assert_eq!(c.read("cpu", "cpu.shares"), "1024", "{name}");
        assert_eq!(c.read("cpu", "cpu.cfs_period_us"), "100000", "{name}");
        assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "-1", "{name}");
        assert_eq!(c.read("cpu", "cpu.rt_runtime_us"), "0", "{name}");
        assert_eq!(c.read("memory", "memory.limit_in_bytes"), NO_LIMIT);
        assert_eq!(c.read("memory", "memory.soft_limit_in_bytes"), NO_LIMIT);
        assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), NO_LIMIT);
        assert_eq!(c.read("memory", "memory.kmem.tcp.limit_in_bytes"), NO_LIMIT);
        assert_eq!(c.read("pids", "pids.max"), "max", "{name}");
        // No weight file exists here to be written (the blkio weight was
        // the write that failed); where one exists, it keeps its default.
        for file in ["blkio.weight", "blkio.bfq.weight"] {
            let path = Path::new(ROOT).join("blkio").join(&c.cgroup).join(file);
            if path.exists() {
                assert!(read(&path).contains("100"), "{file}: {}", read(&path));
            }
        }
        assert!(Path::new(ROOT).join("blkio").join(&c.cgroup).is_dir());
        assert_eq!(c.b.state()["status"], "created");
        c.b.delete_and_check(true);
    }
}

#[test]
fn docker_update_payload_sets_only_what_it_means() {
    let mut c = Ctr::new("zero-update");
    c.with_devices(json!({
        "memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
        "cpu": {"shares": 512, "quota": 30000, "period": 60000},
        "pids": {"limit": 100}
    }));
    c.b.detached(&["run", "-d"]);
    let out = c.update_stdin(DOCKER_UPDATE);
    out.ok();
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "100663296");
    assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), "201326592");
    assert_eq!(c.read("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(c.read("pids", "pids.max"), "50");
    assert_eq!(c.read("cpu", "cpu.shares"), "512");
    assert_eq!(c.read("cpu", "cpu.cfs_period_us"), "60000");
    assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "30000");
    assert_eq!(c.b.state()["status"], "running");
    c.b.delete_and_check(true);
}

#[test]
fn memory_and_memsw_are_written_in_an_order_the_kernel_accepts() {
    let mut c = Ctr::new("zero-memsw");
    c.with_devices(json!({"memory": {"limit": 64 << 20, "swap": 128 << 20}}));
    c.b.detached(&["run", "-d"]);
    // Up: memsw first (a 256M limit is above the old 128M memsw).
    c.update(&["--memory", "256M", "--memory-swap", "512M"])
        .ok();
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "268435456");
    assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), "536870912");
    // Down: the limit first (a 48M memsw is below the old 256M limit).
    c.update(&["--memory", "32M", "--memory-swap", "48M"]).ok();
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), "50331648");
    // Unlimited memory with swap unset makes swap unlimited too (runc).
    c.update(&["--memory", "-1"]).ok();
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), NO_LIMIT);
    assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), NO_LIMIT);
    c.b.delete_and_check(true);
}

#[test]
fn update_flags_take_runcs_negative_values() {
    let mut c = Ctr::new("zero-negative");
    c.with_devices(json!({
        "memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 16 << 20},
        "cpu": {"quota": 50000, "period": 100000},
        "pids": {"limit": 20}
    }));
    c.b.detached(&["run", "-d"]);
    c.update(&["--memory-swap", "-1"]).ok();
    assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), NO_LIMIT);
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "67108864");
    c.update(&["--memory-reservation", "-1", "--memory", "-1"])
        .ok();
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), NO_LIMIT);
    assert_eq!(c.read("memory", "memory.soft_limit_in_bytes"), NO_LIMIT);
    c.update(&["--cpu-quota", "-1", "--pids-limit", "-1"]).ok();
    assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "-1");
    assert_eq!(c.read("pids", "pids.max"), "max");
    // runc's flag name, and 0 leaving a value alone.
    c.update(&[
        "--cpu-share",
        "256",
        "--pids-limit",
        "0",
        "--cpu-period",
        "0",
    ])
    .ok();
    assert_eq!(c.read("cpu", "cpu.shares"), "256");
    assert_eq!(c.read("pids", "pids.max"), "max");
    assert_eq!(c.read("cpu", "cpu.cfs_period_us"), "100000");
    // What runc refuses too: a negative size other than -1, a negative
    // period or shares; nothing is changed.
    for flags in [
        ["--memory", "-2"],
        ["--cpu-period", "-1"],
        ["--cpu-share", "-5"],
    ] {
        let out = c.update(&flags);
        assert_ne!(out.code, 0, "{flags:?} accepted");
        assert!(out.stderr.contains("invalid"), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(flags[1]), "{flags:?}: {}", out.stderr);
    }
    assert_eq!(c.read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(c.read("cpu", "cpu.shares"), "256");
    c.b.delete_and_check(true);
}

#[test]
fn an_update_is_validated_before_its_first_write() {
    let mut c = Ctr::new("zero-validate");
    c.with_devices(json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}));
    c.b.detached(&["run", "-d"]);
    for (payload, says) in [
        (
            r#"{"pids":{"limit":30},"memory":{"swappiness":101}}"#,
            "swappiness",
        ),
        (
            r#"{"pids":{"limit":30},"memory":{"limit":100663296,"swap":50331648}}"#,
            "memory+swap",
        ),
        (
            r#"{"pids":{"limit":30},"cpu":{"period":-1}}"#,
            "malformed resources",
        ),
        (
            r#"{"pids":{"limit":30},"cpu":{"period":500}}"#,
            "cpu period 500",
        ),
        (r#"{"pids":{"limit":30},"cpu":{"shares":1}}"#, "cpu-shares"),
    ] {
        let out = c.update_stdin(payload);
        assert_eq!(out.code, 1, "{payload}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{payload}: {}", out.stderr);
        assert_eq!(c.read("pids", "pids.max"), "20", "{payload}");
        assert_eq!(c.read("memory", "memory.limit_in_bytes"), "67108864");
    }
    c.b.delete_and_check(true);
}

#[test]
fn a_failed_write_puts_the_earlier_limits_back() {
    let mut c = Ctr::new("zero-rollback");
    c.with_devices(json!({
        "memory": {"limit": 64 << 20, "swap": 128 << 20},
        "cpu": {"shares": 512},
        "pids": {"limit": 20}
    }));
    c.b.detached(&["run", "-d"]);
    let cpus = c.read("cpuset", "cpuset.cpus");
    // Memory and shares are written, then the cpuset (CPU 63 does not exist
    // here) is refused by the kernel, before the pids limit.
    let out = c.update_stdin(
        r#"{"memory":{"limit":268435456,"swap":536870912},"cpu":{"shares":1024,"cpus":"63"},
            "pids":{"limit":30}}"#,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("cpuset.cpus"), "{}", out.stderr);
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(c.read("memory", "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(c.read("cpu", "cpu.shares"), "512");
    assert_eq!(c.read("pids", "pids.max"), "20");
    assert_eq!(c.read("cpuset", "cpuset.cpus"), cpus);
    // The container still takes a good update.
    c.update(&["--memory", "96M"]).ok();
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "100663296");
    c.b.delete_and_check(true);
}

#[test]
fn a_limit_below_usage_says_so_as_runc() {
    let mut c = Ctr::new("zero-ebusy");
    c.with_devices(json!({"memory": {"limit": 64 << 20}}));
    // No swap on this host: 8 MiB of tmpfs cannot be reclaimed.
    c.b.args(&[
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>/dev/null; echo filled; sleep 100",
    ]);
    c.b.detached(&["run", "-d"]);
    wait_for(|| c.b.log(), || c.b.log().contains("filled"));
    let out = c.update(&["--memory", "4M"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unable to set memory limit to 4194304 (current usage: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("peak usage: "), "{}", out.stderr);
    assert_eq!(c.read("memory", "memory.limit_in_bytes"), "67108864");
    c.b.delete_and_check(true);
}

/// A parent cgroup with a quota of half a CPU, removed afterwards.
struct LowQuotaParent(PathBuf);

impl LowQuotaParent {
    fn new(name: &str) -> Self {
        let dir = Path::new(ROOT).join("cpu").join(name);
        remove_tree(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cpu.cfs_quota_us"), "50000").unwrap();
        Self(dir)
    }
}

impl Drop for LowQuotaParent {
    fn drop(&mut self) {
        clean_up("remove the parent cgroup", || remove_tree(&self.0));
    }
}

#[test]
fn period_and_quota_go_in_under_a_parent_with_a_lower_quota() {
    let parent = unique("quota-parent");
    let _p = LowQuotaParent::new(&parent);
    let mut c = Ctr::under("zero-quota", Some(&parent));
    c.with_devices(json!({"cpu": {"quota": 40000, "period": 100000}}));
    c.b.detached(&["run", "-d"]);
    assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "40000");
    // A shorter period first would make 40000/50000, above the parent's
    // half CPU: the quota must go first.
    c.update(&["--cpu-period", "50000", "--cpu-quota", "20000"])
        .ok();
    assert_eq!(c.read("cpu", "cpu.cfs_period_us"), "50000");
    assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "20000");
    // Back: here the quota first would be too much, the period must go first.
    c.update(&["--cpu-period", "100000", "--cpu-quota", "40000"])
        .ok();
    assert_eq!(c.read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "40000");
    // Above the parent's share whatever the order: refused, nothing changed.
    let out = c.update(&["--cpu-quota", "80000"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(c.read("cpu", "cpu.cfs_quota_us"), "40000");
    c.b.delete_and_check(true);
}

#[test]
fn exec_of_a_missing_binary_exits_255_as_runc() {
    let c = Ctr::new("zero-exec");
    c.b.detached(&["run", "-d"]);
    let out = c.hull(&["exec", &c.b.id, "/nonexistent"]);
    assert_eq!(out.code, 255, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("stat /nonexistent: no such file or directory"),
        "{}",
        out.stderr
    );
    // A directory is no executable either: runc exits 255 as well.
    let out = c.hull(&["exec", &c.b.id, "/etc"]);
    assert_eq!(out.code, 255, "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    c.b.delete_and_check(true);
}
