//! The systemd cgroup driver (`--systemd-cgroup`, `slice:prefix:name`)
//! against a real systemd: each test boots its own systemd as PID 1 in
//! throwaway namespaces (fixtures/systemd/boot.sh) and runs hull inside them,
//! where systemd's bus and pids are. Checks the scope systemd reports, the
//! container's cgroups in every hierarchy, limits (also after systemd
//! realizes the unit again), update, pause/resume, delete (also after a
//! crash) and failed creates leaving nothing behind, malformed paths, and
//! the host without systemd.
//!
//! Every instance, bundle and cgroup is named `hull-test-*`; a [`Systemd`]
//! guard tears its instance down (SIGKILL of its pid 1, by pid) even when the
//! test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use hull_tests::*;
use serde_json::Value;

fn script(name: &str) -> PathBuf {
    workspace().join("fixtures/systemd").join(name)
}

/// One systemd instance, torn down when dropped.
struct Systemd {
    state: PathBuf,
}

impl Systemd {
    /// Boots systemd with hybrid cgroups (like this host) and waits until it runs.
    fn boot(name: &str) -> Self {
        Self::boot_with(name, "hybrid")
    }

    /// Boots systemd with a `hybrid`, `unified` or `legacy` cgroup layout.
    fn boot_with(name: &str, layout: &str) -> Self {
        for program in ["systemd", "dbus-daemon", "script", "unshare", "nsenter"] {
            require(program);
        }
        let state = workspace()
            .join("target")
            .join(unique(&format!("sd-{name}")));
        let _ = std::fs::remove_dir_all(&state);
        // The guard exists before the boot, so a half-booted instance goes too.
        let sd = Self { state };
        let out = Out::from(output_via_files(
            Command::new(script("boot.sh")).arg(&sd.state).arg(layout),
        ));
        let pid: i32 = out.ok().trim().parse().expect("boot.sh prints a pid");
        assert!(pid > 1, "{pid}");
        sd
    }

    /// Runs a command inside the instance's namespaces.
    fn exec(&self, args: &[&str]) -> Out {
        Out::from(output_via_files(
            Command::new(script("exec.sh")).arg(&self.state).args(args),
        ))
    }

    /// `hull --root <b.root> ARGS` inside.
    fn hull(&self, b: &TestBundle, args: &[&str]) -> Out {
        let hull = hull_bin();
        let mut all = vec![hull.to_str().unwrap(), "--root"];
        all.push(b.root.to_str().unwrap());
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// A property of a unit as `systemctl show` reports it.
    fn unit_property(&self, unit: &str, property: &str) -> String {
        let out = self.exec(&["systemctl", "show", "-p", property, "--value", unit]);
        out.ok().trim().to_owned()
    }

    /// Cgroup directories named `name` in any hierarchy inside.
    fn cgroup_dirs_named(&self, name: &str) -> String {
        let out = self.exec(&["find", "/sys/fs/cgroup", "-name", name]);
        out.ok().to_owned()
    }

    /// The unit is unloaded and none of its directories is left.
    fn assert_scope_gone(&self, unit: &str) {
        assert_eq!(self.unit_property(unit, "LoadState"), "not-found", "{unit}");
        assert_eq!(self.cgroup_dirs_named(unit), "", "cgroups of {unit} left");
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        clean_up("systemd teardown", || {
            let out = Out::from(output_via_files(
                Command::new(script("teardown.sh")).arg(&self.state),
            ));
            if out.code != 0 {
                eprintln!("clean-up: teardown.sh: {} {}", out.stdout, out.stderr);
            }
        });
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A bundle inside an instance's state directory (visible there), with its
/// own copy of the rootfs (the fixture's, in the host's temp dir, is not:
/// the instance has a private /tmp), deleted inside the instance when
/// dropped (before its own host-side cleanup).
struct Ctr<'a> {
    sd: &'a Systemd,
    b: TestBundle,
}

impl<'a> Ctr<'a> {
    fn new(sd: &'a Systemd, name: &str) -> Self {
        let mut b = TestBundle::new_in(name, &sd.state);
        b.own_rootfs();
        Self { sd, b }
    }

    /// `hull --systemd-cgroup run -d`; asserts success.
    fn run_detached(&self) {
        let dir = self.b.dir.to_str().unwrap();
        self.hull(&["--systemd-cgroup", "run", "-d", "--bundle", dir, &self.b.id])
            .ok();
    }

    fn hull(&self, args: &[&str]) -> Out {
        self.sd.hull(&self.b, args)
    }

    fn state(&self) -> Value {
        let out = self.hull(&["state", &self.b.id]);
        serde_json::from_str(out.ok()).unwrap()
    }

    fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_owned()
    }

    /// The init's pid (in the instance's pid namespace).
    fn pid(&self) -> String {
        let pid = self.state()["pid"].as_i64().unwrap();
        assert!(pid > 0, "no init pid");
        pid.to_string()
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        clean_up("hull delete --force", || {
            let _ = self.hull(&["delete", "--force", &self.b.id]);
        });
    }
}

/// Each line of `/proc/<pid>/cgroup` ends in `cgroup`.
fn assert_all_in(proc_cgroup: &str, cgroup: &str) {
    assert_eq!(proc_cgroup.lines().count(), 10, "{proc_cgroup}");
    for line in proc_cgroup.lines() {
        assert!(
            line.ends_with(&format!(":{cgroup}")),
            "{line} not in {cgroup}"
        );
    }
}

#[test]
fn a_container_runs_in_its_scope_with_its_limits_and_is_paused_resumed_and_deleted() {
    let sd = Systemd::boot("run");
    let mut c = Ctr::new(&sd, "run");
    let id = c.b.id.clone();
    let path = format!("system.slice:hull-test:{id}");
    c.b.args(&["sleep", "1000"]).edit(|cfg| {
        cfg["linux"]["cgroupsPath"] = path.into();
        cfg["linux"]["resources"]["memory"]["limit"] = (64 << 20).into();
    });
    c.run_detached();
    let unit = format!("hull-test-{id}.scope");
    assert_eq!(sd.unit_property(&unit, "ActiveState"), "active");
    assert_eq!(sd.unit_property(&unit, "Delegate"), "yes");
    let cgroup = format!("/system.slice/{unit}");
    assert_eq!(sd.unit_property(&unit, "ControlGroup"), cgroup);

    // In the scope in every hierarchy: the ones systemd manages and the
    // ones hull adds (freezer, cpuset).
    let pid = c.pid();
    let proc_cgroup = sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]);
    assert_all_in(proc_cgroup.ok(), &cgroup);
    let limit = || {
        let file = format!("/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes");
        sd.exec(&["cat", &file]).ok().trim().to_owned()
    };
    assert_eq!(limit(), (64u64 << 20).to_string());
    // systemd rewrites a unit's limits when it realizes it again: the scope
    // carries them as properties (also after an update), so they stay.
    sd.exec(&["systemctl", "daemon-reload"]).ok();
    assert_eq!(limit(), (64u64 << 20).to_string());
    c.hull(&["update", "--memory", "96M", &id]).ok();
    sd.exec(&["systemctl", "daemon-reload"]).ok();
    assert_eq!(limit(), (96u64 << 20).to_string());
    assert_eq!(
        sd.unit_property(&unit, "MemoryLimit"),
        (96u64 << 20).to_string()
    );
    let ps = c.hull(&["ps", "--format", "json", &id]);
    assert_eq!(ps.ok().trim(), format!("[{pid}]"));

    c.hull(&["pause", &id]).ok();
    assert_eq!(c.status(), "paused");
    let freezer = format!("/sys/fs/cgroup/freezer{cgroup}/freezer.state");
    assert_eq!(sd.exec(&["cat", &freezer]).ok().trim(), "FROZEN");
    c.hull(&["resume", &id]).ok();
    assert_eq!(c.status(), "running");
    assert_eq!(sd.exec(&["cat", &freezer]).ok().trim(), "THAWED");

    c.hull(&["delete", "--force", &id]).ok();
    sd.assert_scope_gone(&unit);
    // Nothing hull made is left in the hierarchies systemd does not manage.
    assert_eq!(
        sd.exec(&["ls", "/sys/fs/cgroup/freezer/system.slice"]).code,
        2
    );
    assert!(!sd
        .exec(&["ps", "-e", "-o", "args"])
        .ok()
        .contains("sleep 1000"));
    c.b.assert_no_state();
}

#[test]
fn without_a_cgroups_path_the_scope_is_hull_id_in_system_slice() {
    let sd = Systemd::boot("default");
    let mut c = Ctr::new(&sd, "default");
    let id = c.b.id.clone();
    c.b.sh("cat /proc/self/cgroup");
    let dir = c.b.dir.to_str().unwrap().to_owned();
    let out = c.hull(&["--systemd-cgroup", "run", "--bundle", &dir, &id]);
    let unit = format!("hull-{id}.scope");
    assert_all_in(out.ok(), &format!("/system.slice/{unit}"));
    // The container exited and was deleted by run: its scope went with it.
    sd.assert_scope_gone(&unit);
    c.b.assert_no_state();
}

#[test]
fn delete_after_the_init_was_killed_removes_a_scope_in_a_nested_slice() {
    let sd = Systemd::boot("crash");
    let mut c = Ctr::new(&sd, "crash");
    let id = c.b.id.clone();
    let path = format!("hull-test-a.slice:hull-test:{id}");
    c.b.args(&["sleep", "1000"])
        .edit(|cfg| cfg["linux"]["cgroupsPath"] = path.into());
    let dir = c.b.dir.to_str().unwrap().to_owned();
    c.hull(&["--systemd-cgroup", "create", "--bundle", &dir, &id])
        .ok();
    let unit = format!("hull-test-{id}.scope");
    let cgroup = format!("/hull.slice/hull-test.slice/hull-test-a.slice/{unit}");
    assert_eq!(sd.unit_property(&unit, "ControlGroup"), cgroup);
    let pid = c.pid();
    assert_all_in(
        sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]).ok(),
        &cgroup,
    );
    sd.exec(&["kill", "-KILL", &pid]).ok();
    wait_for(
        || format!("status {}", c.status()),
        || c.status() == "stopped",
    );
    c.hull(&["delete", &id]).ok();
    sd.assert_scope_gone(&unit);
    // The slices are systemd's units and stay; hull's copies in the
    // hierarchies systemd does not manage go.
    for h in ["freezer", "cpuset"] {
        let left = sd.exec(&["ls", &format!("/sys/fs/cgroup/{h}/hull.slice")]);
        assert_eq!(left.code, 2, "{h}: {}", left.stdout);
    }
    c.b.assert_no_state();
}

#[test]
fn with_only_cgroup2_the_scope_is_the_cgroup2_directory_and_kill_all_empties_it() {
    let sd = Systemd::boot_with("unified", "unified");
    let mut c = Ctr::new(&sd, "unified");
    let id = c.b.id.clone();
    let path = format!("system.slice:hull-test:{id}");
    c.b.args(&["sleep", "1000"])
        .edit(|cfg| cfg["linux"]["cgroupsPath"] = path.into());
    c.run_detached();
    let unit = format!("hull-test-{id}.scope");
    assert_eq!(sd.unit_property(&unit, "ActiveState"), "active");
    let pid = c.pid();
    let proc_cgroup = sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]);
    let v2: Vec<&str> = proc_cgroup
        .ok()
        .lines()
        .filter(|l| l.starts_with("0::"))
        .collect();
    assert_eq!(v2, [format!("0::/system.slice/{unit}")]);
    c.hull(&["pause", &id]).ok();
    let freeze = format!("/sys/fs/cgroup/system.slice/{unit}/cgroup.freeze");
    assert_eq!(sd.exec(&["cat", &freeze]).ok().trim(), "1");
    assert_eq!(c.status(), "paused");
    c.hull(&["resume", &id]).ok();
    assert_eq!(c.status(), "running");
    c.hull(&["kill", "--all", &id, "KILL"]).ok();
    wait_for(
        || format!("status {}", c.status()),
        || c.status() == "stopped",
    );
    c.hull(&["delete", &id]).ok();
    sd.assert_scope_gone(&unit);
    c.b.assert_no_state();
}

#[test]
fn with_only_v1_hierarchies_the_scope_holds_the_container_in_each_of_them() {
    let sd = Systemd::boot_with("legacy", "legacy");
    let mut c = Ctr::new(&sd, "legacy");
    let id = c.b.id.clone();
    let path = format!("system.slice:hull-test:{id}");
    c.b.args(&["sleep", "1000"]).edit(|cfg| {
        cfg["linux"]["cgroupsPath"] = path.into();
        cfg["linux"]["resources"]["pids"]["limit"] = 50.into();
    });
    c.run_detached();
    let unit = format!("hull-test-{id}.scope");
    assert_eq!(sd.unit_property(&unit, "ActiveState"), "active");
    let cgroup = format!("/system.slice/{unit}");
    let pid = c.pid();
    let out = sd.exec(&["cat", &format!("/proc/{pid}/cgroup")]);
    let proc_cgroup = out.ok();
    // No cgroup2 mount in this layout: every v1 line names the scope.
    let v1: Vec<&str> = proc_cgroup
        .lines()
        .filter(|l| !l.starts_with("0::"))
        .collect();
    assert_eq!(v1.len(), 9, "{proc_cgroup:?}");
    for line in v1 {
        assert!(
            line.ends_with(&format!(":{cgroup}")),
            "{line} not in {cgroup}"
        );
    }
    let pids_max = format!("/sys/fs/cgroup/pids{cgroup}/pids.max");
    assert_eq!(sd.exec(&["cat", &pids_max]).ok().trim(), "50");
    c.hull(&["pause", &id]).ok();
    assert_eq!(c.status(), "paused");
    c.hull(&["resume", &id]).ok();
    c.hull(&["delete", "--force", &id]).ok();
    sd.assert_scope_gone(&unit);
    assert_eq!(
        sd.exec(&["ls", "/sys/fs/cgroup/freezer/system.slice"]).code,
        2
    );
    c.b.assert_no_state();
}

#[test]
fn a_failed_create_stops_its_own_scope_and_no_other() {
    let sd = Systemd::boot("failed");
    let mut first = Ctr::new(&sd, "failed-first");
    let shared = format!("system.slice:hull-test:{}", first.b.id);
    first
        .b
        .args(&["sleep", "1000"])
        .edit(|cfg| cfg["linux"]["cgroupsPath"] = shared.clone().into());
    first.run_detached();
    let unit = format!("hull-test-{}.scope", first.b.id);

    // The same scope again: systemd refuses, and the first container keeps it.
    let mut second = Ctr::new(&sd, "failed-second");
    second
        .b
        .args(&["true"])
        .edit(|cfg| cfg["linux"]["cgroupsPath"] = shared.into());
    let dir = second.b.dir.to_str().unwrap().to_owned();
    let out = second.hull(&["--systemd-cgroup", "run", "--bundle", &dir, &second.b.id]);
    out.fails_with(&format!(
        "systemd unit {unit}: org.freedesktop.systemd1.UnitExists"
    ));
    second.b.assert_no_state();
    assert_eq!(sd.unit_property(&unit, "ActiveState"), "active");
    assert_eq!(first.status(), "running");

    // A process that cannot start: its scope is stopped again.
    let mut bad = Ctr::new(&sd, "failed-bad");
    let path = format!("system.slice:hull-test:{}", bad.b.id);
    bad.b
        .args(&["hull-no-such-binary"])
        .edit(|cfg| cfg["linux"]["cgroupsPath"] = path.into());
    let dir = bad.b.dir.to_str().unwrap().to_owned();
    let out = bad.hull(&["--systemd-cgroup", "create", "--bundle", &dir, &bad.b.id]);
    out.fails_with("executable file not found");
    sd.assert_scope_gone(&format!("hull-test-{}.scope", bad.b.id));
    bad.b.assert_no_state();
}

#[test]
fn a_malformed_cgroups_path_is_refused_clearly() {
    let sd = Systemd::boot("malformed");
    let mut c = Ctr::new(&sd, "malformed");
    let id = c.b.id.clone();
    let dir = c.b.dir.to_str().unwrap().to_owned();
    for (path, why) in [
        (
            "system.slice:hull-test".to_owned(),
            "not three ':'-separated parts",
        ),
        (format!("nope:hull-test:{id}"), "does not end in"),
        (
            format!("a--b.slice:hull-test:{id}"),
            "is not a valid slice name",
        ),
        (
            format!("system.slice:hull test:{id}"),
            "may only hold letters",
        ),
    ] {
        c.b.args(&["true"])
            .edit(|cfg| cfg["linux"]["cgroupsPath"] = path.clone().into());
        let out = c.hull(&["--systemd-cgroup", "run", "--bundle", &dir, &id]);
        // (hull's log line escapes the quotes of the message)
        out.fails_with("expected \\\"slice:prefix:name\\\"");
        assert!(out.stderr.contains(why), "{path}: {}", out.stderr);
        c.b.assert_no_state();
    }
    let units = sd.exec(&[
        "systemctl",
        "list-units",
        "--all",
        "--no-legend",
        "--type=scope",
        "*hull*",
    ]);
    assert_eq!(units.ok().trim(), "");
}

#[test]
fn without_systemd_the_driver_is_refused_as_not_running() {
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test expects a host without systemd"
    );
    let mut b = TestBundle::new("sd-host");
    let path = format!("system.slice:hull-test:{}", b.id);
    b.args(&["true"])
        .edit(|cfg| cfg["linux"]["cgroupsPath"] = path.into());
    let dir = b.dir.to_str().unwrap().to_owned();
    let out = Out::from(b.cmd(&["--systemd-cgroup", "run", "--bundle", &dir, &b.id]));
    out.fails_with(&format!(
        "systemd cgroup driver requested for \\\"system.slice:hull-test:{}\\\", \
         but systemd is not running on this host",
        b.id
    ));
    b.assert_no_state();
}
