//! Behaviours where the OCI spec is silent and runc 1.1.5 is the spec:
//! each test names what runc does, measured side by side with Debian's runc.

use std::path::{Path, PathBuf};
use std::process::Command;

use hull_tests::*;
use serde_json::json;

mod cli;
mod devices;
mod net_devices;

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

// ------------------------------------------------------------------ cgroups

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A cgroup made by the test in some v1 hierarchies before the container,
/// removed (deepest first, processes killed) when dropped.
struct PreMade {
    name: String,
    hierarchies: Vec<&'static str>,
}

impl PreMade {
    fn new(name: &str, hierarchies: &[&'static str]) -> Self {
        let name = unique(name);
        for h in hierarchies {
            std::fs::create_dir_all(Path::new(CGROUP_ROOT).join(h).join(&name)).unwrap();
        }
        PreMade {
            name,
            hierarchies: hierarchies.to_vec(),
        }
    }

    fn dir(&self, h: &str) -> PathBuf {
        Path::new(CGROUP_ROOT).join(h).join(&self.name)
    }
}

impl Drop for PreMade {
    fn drop(&mut self) {
        for h in &self.hierarchies {
            let dir = self.dir(h);
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// runc warns about processes already in the container's cgroup, and goes on.
#[test]
fn a_cgroup_holding_processes_is_warned_about() {
    let pre = PreMade::new("cg-busy", &["devices"]);
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(
        pre.dir("devices").join("cgroup.procs"),
        sleeper.id().to_string(),
    )
    .unwrap();
    let mut b = TestBundle::new("cg-busy");
    let path = format!("/{}", pre.name);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    b.args(&["true"]);
    let (code, _, err) = b.run();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("container's cgroup is not empty: 1 process(es) found"),
        "{err}"
    );
}

/// runc refuses a container whose cgroup is frozen (hull's init hung there).
#[test]
fn a_frozen_cgroup_is_refused() {
    let pre = PreMade::new("cg-frozen", &["freezer"]);
    std::fs::write(pre.dir("freezer").join("freezer.state"), "FROZEN").unwrap();
    let mut b = TestBundle::new("cg-frozen");
    let path = format!("/{}", pre.name);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    b.args(&["true"]);
    let out = Out::from(b.cmd(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), &b.id]));
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("cgroup unexpectedly frozen"),
        "{}",
        out.stderr
    );
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// Resources the host cannot enforce are refused with a clear error
/// before the container runs: unified keys of controllers that are on v1
/// here, and a controller the host has not mounted (net_cls).
#[test]
fn resources_the_host_cannot_enforce_are_refused() {
    let cases = [
        (json!({"unified": {"memory.min": "0"}}), "not on cgroup v2"),
        (
            json!({"network": {"classID": 1048577}}),
            "cannot set net_cls limit",
        ),
    ];
    for (res, needle) in cases {
        assert!(
            !Path::new(CGROUP_ROOT).join("net_cls").exists(),
            "net_cls is mounted here"
        );
        let mut b = TestBundle::new("cg-unenforceable");
        b.edit(|c| c["linux"]["resources"] = res.clone());
        b.args(&["true"]);
        let (code, _, err) = b.run();
        assert_ne!(code, 0, "{res}");
        assert!(err.contains(needle), "{res}: {err}");
        b.assert_no_state();
        for h in ["memory", "pids", "devices"] {
            assert!(
                !Path::new(CGROUP_ROOT).join(h).join(&b.id).exists(),
                "{h} left"
            );
        }
    }
}

/// `delete --force` removes the cgroups a container made inside its own,
/// deepest first, killing their processes (runc; hull failed with EBUSY).
#[test]
fn delete_force_removes_sub_cgroups() {
    let mut b = TestBundle::new("cg-nested");
    b.sh("sleep 60 & sleep 60");
    b.detached(&["run", "-d"]);
    let pids = Path::new(CGROUP_ROOT).join("pids").join(&b.id);
    let sub = pids.join("sub/deeper");
    std::fs::create_dir_all(&sub).unwrap();
    let procs = || -> Vec<String> {
        std::fs::read_to_string(pids.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    wait_for(|| format!("procs {:?}", procs()), || procs().len() >= 2);
    let inside = procs();
    let child = inside
        .iter()
        .find(|p| **p != b.init_pid().to_string())
        .expect("a child");
    std::fs::write(sub.join("cgroup.procs"), child).unwrap();
    b.delete_and_check(true);
    assert!(!pids.exists(), "{} left", pids.display());
}

/// A nested cgroupsPath on cgroup2: its new parents pass the needed
/// controllers down (`cgroup.subtree_control`), as runc and crun do, so the
/// limit reaches the container's cgroup (hugetlb is on cgroup2 here).
#[test]
fn a_nested_cgroup2_path_gets_its_controllers() {
    let top = unique("cg-nested2");
    let path = format!("/{top}/b/c");
    let mut b = TestBundle::new("cg-nested2");
    let p = path.clone();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(p);
        c["linux"]["resources"] =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    });
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let dir = Path::new(CGROUP_ROOT)
        .join("unified")
        .join(path.trim_start_matches('/'));
    let max = std::fs::read_to_string(dir.join("hugetlb.2MB.max"));
    b.delete_and_check(true);
    assert_eq!(max.expect("hugetlb.2MB.max").trim(), "4194304");
    assert!(
        !Path::new(CGROUP_ROOT).join("unified").join(&top).exists(),
        "{top} left"
    );
}

/// `--debug` logs the steps of create, start, exec and delete at debug
/// level, as runc does (engines collect these), in both formats, to stderr
/// or to `--log`.
#[test]
fn debug_logs_the_lifecycle_steps() {
    let mut b = TestBundle::new("debug-log");
    b.sh("sleep 60");
    let dir = b.dir.to_str().unwrap().to_owned();
    let log = b.dir.join("hull.log");
    let log_arg = log.to_str().unwrap().to_owned();
    let steps: [(&[&str], &str); 4] = [
        (
            &["create", "--bundle", &dir, &b.id],
            "creating the container",
        ),
        (&["start", &b.id], "starting the container"),
        (
            &["exec", &b.id, "true"],
            "exec: the process is about to run",
        ),
        (&["delete", "--force", &b.id], "deleting the container"),
    ];
    for (args, needle) in steps {
        let mut cmd = b.hull();
        cmd.args(["--debug", "--log", &log_arg, "--log-format", "json"])
            .args(args);
        let out = Out::from(output_via_files(&mut cmd));
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let text = std::fs::read_to_string(&log).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{args:?}: no {needle:?} in {text}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["level"], "debug", "{line}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("init: set up, waiting for start"), "{text}");
    // Text lines on stderr without --log.
    b.args(&["true"]);
    let mut cmd = b.hull();
    cmd.args(["--debug", "run", "--bundle", &dir, &b.id]);
    let out = Out::from(output_via_files(&mut cmd));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("level=debug") && l.contains("init ready")),
        "{}",
        out.stderr
    );
    // Without --debug, nothing below warnings.
    let out = Out::from(b.cmd(&["run", "--bundle", &dir, &b.id]));
    assert!(!out.stderr.contains("level=debug"), "{}", out.stderr);
}

/// `update --cpu-idle` (runc 1.2's flag) sets `cpu.idle`.
#[test]
fn update_cpu_idle() {
    let mut b = TestBundle::new("cpu-idle");
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let idle = Path::new(CGROUP_ROOT)
        .join("cpu")
        .join(&b.id)
        .join("cpu.idle");
    assert_eq!(std::fs::read_to_string(&idle).unwrap().trim(), "0");
    Out::from(b.cmd(&["update", "--cpu-idle", "1", &b.id])).ok();
    assert_eq!(std::fs::read_to_string(&idle).unwrap().trim(), "1");
    b.delete_and_check(true);
}

/// `exec --cgroup SUB` and `--cgroup CTRL:SUB` run the process in an
/// existing sub-cgroup of the container's (runc's flag).
#[test]
fn exec_into_a_sub_cgroup() {
    let mut b = TestBundle::new("exec-subcg");
    let path = format!("/{}", b.id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let mut made = Vec::new();
    for h in [
        "pids", "memory", "cpu", "devices", "freezer", "blkio", "cpuset", "cpuacct", "systemd",
        "unified",
    ] {
        let dir = Path::new(CGROUP_ROOT).join(h).join(&b.id).join("sub");
        if dir.parent().unwrap().is_dir() {
            std::fs::create_dir(&dir).unwrap();
            made.push((h, dir));
        }
    }
    for (h, dir) in &made {
        if *h == "cpuset" {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(dir.parent().unwrap().join(f)).unwrap();
                std::fs::write(dir.join(f), v.trim()).unwrap();
            }
        }
    }
    let own = |out: &Out, ctrl: &str| -> String {
        out.stdout
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .unwrap_or_default()
            .to_owned()
    };
    // Every controller.
    let out = Out::from(b.cmd(&["exec", "--cgroup", "sub", &b.id, "cat", "/proc/self/cgroup"]));
    out.ok();
    assert!(own(&out, "pids").ends_with("/sub"), "{}", out.stdout);
    assert!(own(&out, "memory").ends_with("/sub"), "{}", out.stdout);
    // One controller only.
    let out = Out::from(b.cmd(&[
        "exec",
        "--cgroup",
        "pids:sub",
        &b.id,
        "cat",
        "/proc/self/cgroup",
    ]));
    out.ok();
    assert!(own(&out, "pids").ends_with("/sub"), "{}", out.stdout);
    assert!(!own(&out, "memory").ends_with("/sub"), "{}", out.stdout);
    // Refused: a missing sub-cgroup, a way out, an unknown controller.
    for arg in ["nosuch", "../..", "nosuchctrl:sub"] {
        let out = Out::from(b.cmd(&["exec", "--cgroup", arg, &b.id, "true"]));
        assert_eq!(out.code, 255, "{arg}: {}", out.stderr);
    }
    b.delete_and_check(true);
    for (_, dir) in made {
        assert!(!dir.exists(), "{} left", dir.display());
    }
}

// ------------------------------------------------- runtime-spec 1.2 and 1.3

/// The process attributes of newer runtime-specs are set in the container:
/// personality, scheduler, I/O priority, memory policy, CPU affinity; each
/// read back from inside.
#[test]
fn newer_spec_process_attributes_are_applied() {
    let mut b = TestBundle::new("spec-attrs");
    b.edit(|c| {
        c["ociVersion"] = json!("1.2.0");
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE"});
        c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    });
    b.sh(
        "uname -m; ionice -p $$; awk '{print $19, $41}' /proc/self/stat; \
          grep Cpus_allowed_list /proc/self/status; grep -c bind:0 /proc/self/numa_maps",
    );
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "i686", "personality: {out}");
    assert!(lines[1].starts_with("idle"), "ioPriority: {out}");
    assert_eq!(lines[2], "5 3", "nice and SCHED_BATCH: {out}");
    assert!(
        lines[3].ends_with("\t0") || lines[3].ends_with(" 0"),
        "affinity: {out}"
    );
    assert_ne!(lines[4], "0", "memory policy: {out}");
}

/// What hull does not do is refused clearly, before anything is made.
#[test]
fn newer_spec_features_hull_lacks_are_refused() {
    let cases = [
        (json!({"intelRdt": {"closID": "x"}}), "intelRdt"),
        (
            json!({"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}}),
            "personality.flags",
        ),
    ];
    for (linux, needle) in cases {
        let mut b = TestBundle::new("spec-refused");
        b.edit(|c| {
            for (k, v) in linux.as_object().unwrap() {
                c["linux"][k] = v.clone();
            }
        });
        b.args(&["true"]);
        let (code, _, err) = b.run();
        assert_ne!(code, 0, "{linux}");
        assert!(err.contains(needle), "{linux}: {err}");
        b.assert_no_state();
    }
}
