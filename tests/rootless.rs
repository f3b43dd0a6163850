//! Rootless hull: the tests run as root and run hull as an unprivileged
//! user (uid and gid 1001, no passwd entry needed, no supplementary groups)
//! with the config of `hull spec --rootless`, a bundle owned by that user
//! and a state root it makes itself.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use hull_tests::*;
use libcontainer::cgroups::{Cgroup, Hierarchies};
use serde_json::{json, Value};

/// The unprivileged user hull runs as.
const USER: u32 = 1001;

/// A bundle for [`USER`]: its own copy of the fixture's rootfs, the config
/// `hull spec --rootless` writes for that user (terminal off), all owned by
/// the user; hull is run as the user, from a copy it can reach if need be.
fn rootless_bundle(name: &str) -> TestBundle {
    let mut b = TestBundle::new(name);
    b.own_rootfs();
    b.user = Some((USER, USER));
    let spec_dir = b.dir.join("spec");
    std::fs::create_dir(&spec_dir).unwrap();
    chown_r(&b.dir, USER);
    // The binary under test may be out of the user's reach (a clone in a
    // private home): then the user cannot even start it.
    let reachable = try_output_via_files(b.hull_without_root().arg("--version"))
        .is_ok_and(|out| out.status.success());
    if !reachable {
        let copy = b.dir.join("hull");
        std::fs::copy(&b.bin, &copy).unwrap();
        b.bin = copy;
    }
    let spec = b
        .hull_without_root()
        .args(["spec", "--rootless", "--bundle"])
        .arg(&spec_dir)
        .output()
        .unwrap();
    assert!(spec.status.success(), "spec: {}", text(&spec.stderr));
    let config = std::fs::read_to_string(spec_dir.join("config.json")).unwrap();
    b.config = serde_json::from_str(&config).unwrap();
    b.config["root"] = json!({ "path": "rootfs", "readonly": false });
    b.config["process"]["terminal"] = json!(false);
    b.save();
    chown_r(&b.dir, USER);
    b
}

/// The uid line of `/proc/<pid>/status` (real, effective, saved, fs).
fn host_uids(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `exec` through `hull` into the running `sleep 1000` container `id`
/// and checks that the process sees the user's map and the init as pid 1,
/// and that its exit code comes back.
fn assert_exec_sees_the_container(hull: impl Fn(&[&str]) -> Out, id: &str) {
    let script = "cat /proc/self/uid_map; cat /proc/1/cmdline; echo; exit 5";
    let exec = hull(&["exec", id, "sh", "-c", script]);
    assert_eq!(exec.code, 5, "exec: {}", exec.stderr);
    let lines: Vec<&str> = exec.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "1001", "1"],
        "the user's map"
    );
    assert_eq!(
        lines[1], "sleep\u{0}1000\u{0}",
        "exec sees the init as pid 1"
    );
}

/// Waits until the dead init `pid` is reaped (by whoever it was reparented to).
fn wait_gone(pid: i32) {
    wait_for(
        || format!("init {pid} to be reaped"),
        || !Path::new(&format!("/proc/{pid}")).exists(),
    );
}

#[test]
fn the_user_is_root_in_the_container_and_the_exit_code_comes_back() {
    let mut b = rootless_bundle("rl-run");
    // The cgroup mount shows the hierarchies (the runtime's own cgroup in each).
    b.sh(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /root/made; \
         [ -n \"$(ls /sys/fs/cgroup)\" ] || exit 9; exit 3",
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 3, "stdout={out} stderr={err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0", "1001", "1"],
            vec!["0", "1001", "1"],
            vec!["0"],
            vec!["0"]
        ],
        "stderr={err}"
    );
    // What the container's root makes is the user's on the host.
    let made = std::fs::metadata(b.rootfs().join("root/made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (USER, USER));
    let root = std::fs::metadata(&b.root).unwrap();
    assert_eq!(root.uid(), USER, "the user made its state root");
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// `additionalGids` cannot be set where setgroups is denied: they are
/// skipped, as runc skips them, and the process gains no group.
#[test]
fn additional_gids_are_skipped_where_setgroups_is_denied() {
    let mut b = rootless_bundle("rl-groups");
    b.sh("cat /proc/self/setgroups; grep '^Groups:' /proc/self/status");
    b.edit(|c| c["process"]["user"]["additionalGids"] = json!([0, 5]));
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines, [vec!["deny"], vec!["Groups:"]], "stderr={err}");
    b.assert_no_state();
}

#[test]
fn create_start_exec_state_kill_delete() {
    let mut b = rootless_bundle("rl-life");
    b.args(&["sleep", "1000"]);
    b.create();
    assert_eq!(b.state()["status"], "created");
    let pid = b.init_pid();
    assert_eq!(host_uids(pid), "1001 1001 1001 1001");
    // The waiting init still runs hull: from a sealed copy (CVE-2019-5736).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.to_string_lossy().starts_with("/memfd:"), "{exe:?}");
    hull(&b, &["start", &b.id]).ok();
    assert_eq!(b.state()["status"], "running");

    assert_exec_sees_the_container(|args| hull(&b, args), &b.id);

    let list = hull(&b, &["list", "-q"]);
    assert_eq!(list.ok().trim(), b.id);
    // Without a cgroup there is nothing to freeze or list: a clear error.
    hull(&b, &["pause", &b.id]).fails_with("no cgroup");
    hull(&b, &["ps", &b.id]).fails_with("no cgroup");
    assert_eq!(b.state()["status"], "running");

    // kill --all without a cgroup: the processes of the container's pid
    // namespace. The init (pid 1 there, no handler) ignores SIGTERM.
    let pid_file = b.dir.join("exec.pid");
    let pid_file_arg = pid_file.to_str().unwrap();
    hull(
        &b,
        &[
            "exec",
            "-d",
            "--pid-file",
            pid_file_arg,
            &b.id,
            "sleep",
            "1001",
        ],
    )
    .ok();
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    hull(&b, &["kill", "--all", &b.id, "TERM"]).ok();
    wait_for(
        || format!("exec'd process {exec_pid} to die of SIGTERM"),
        || !alive(exec_pid),
    );
    assert_eq!(b.state()["status"], "running");
    hull(&b, &["kill", "--all", &b.id, "KILL"]).ok();
    wait_stopped(&b);
    b.delete_and_check(false);
    wait_gone(pid);
}

#[test]
fn delete_force_of_a_running_container_leaves_nothing() {
    let mut b = rootless_bundle("rl-force");
    b.args(&["sleep", "1000"]);
    hull(&b, &["run", "-d", "--bundle", bundle_arg(&b), &b.id]).ok();
    let pid = b.init_pid();
    hull(&b, &["exec", "-d", &b.id, "sleep", "999"]).ok();
    b.delete_and_check(true);
    wait_gone(pid);
}

#[test]
fn a_memory_limit_is_refused_and_leaves_nothing() {
    let mut b = rootless_bundle("rl-memory");
    b.args(&["true"]);
    b.edit(|c| c["linux"]["resources"] = json!({ "memory": { "limit": 64 << 20 } }));
    let out = hull(&b, &["run", "--bundle", bundle_arg(&b), &b.id]);
    out.fails_with("rootless: cannot create the cgroup");
    assert!(
        out.stderr.contains("linux.resources sets limits"),
        "{}",
        out.stderr
    );
    b.assert_no_state();
    assert_no_process(&b.id);
    let cgroup = Cgroup::resolve(&Hierarchies::detect().unwrap(), None, &b.id, false).unwrap();
    for d in &cgroup.dirs {
        assert!(!d.path.exists(), "cgroup left: {}", d.path.display());
    }
}

#[test]
fn more_than_the_users_own_ids_is_refused() {
    let mut b = rootless_bundle("rl-maps");
    b.args(&["true"]);
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": USER, "size": 65536 }])
    });
    let out = hull(&b, &["run", "--bundle", bundle_arg(&b), &b.id]);
    out.fails_with("newuidmap/newgidmap");
    assert!(out.stderr.contains("uid maps"), "{}", out.stderr);
    b.assert_no_state();
}

#[test]
fn the_default_state_root_is_in_xdg_runtime_dir() {
    let mut b = rootless_bundle("rl-xdg");
    b.args(&["sleep", "1000"]);
    let xdg = b.dir.join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    chown_r(&xdg, USER);
    // Where the container lives, so the bundle's cleanup finds it.
    b.root = xdg.join("hull");
    let hull_xdg = |args: &[&str]| {
        let mut c = b.hull_without_root();
        c.env("XDG_RUNTIME_DIR", &xdg).args(args);
        Out::from(output_via_files(&mut c))
    };
    hull_xdg(&["run", "-d", "--bundle", bundle_arg(&b), &b.id]).ok();
    assert!(
        b.root.join(&b.id).is_file(),
        "state under $XDG_RUNTIME_DIR/hull"
    );
    assert_eq!(hull_xdg(&["list", "-q"]).ok().trim(), b.id);
    let state: Value = serde_json::from_str(hull_xdg(&["state", &b.id]).ok()).unwrap();
    assert_eq!(state["status"], "running");
    hull_xdg(&["delete", "--force", &b.id]).ok();
    b.assert_no_state();

    let mut c = b.hull_without_root();
    c.env_remove("XDG_RUNTIME_DIR").args(["list"]);
    Out::from(output_via_files(&mut c)).fails_with("pass --root");
}

#[test]
fn root_of_a_user_namespace_is_rootless_too() {
    let mut b = rootless_bundle("rl-userns-root");
    b.sh("cat /proc/self/uid_map; exit 4");
    // hull runs as root of a user namespace mapping the user alone: root
    // there is the only id it can map.
    b.edit(|c| {
        c["linux"]["uidMappings"][0]["hostID"] = json!(0);
        c["linux"]["gidMappings"][0]["hostID"] = json!(0);
    });
    let mut c = Command::new("unshare");
    c.args(["--user", "--map-root-user"])
        .arg(&b.bin)
        .arg("--root")
        .arg(&b.root)
        .args(["run", "--bundle", bundle_arg(&b), &b.id]);
    std::os::unix::process::CommandExt::uid(&mut c, USER);
    std::os::unix::process::CommandExt::gid(&mut c, USER);
    let out = Out::from(output_via_files(&mut c));
    assert_eq!(out.code, 4, "stdout={} stderr={}", out.stdout, out.stderr);
    let map: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(map, ["0", "0", "1"]);
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// A process holding a user namespace of [`USER`] that maps root to the
/// user alone, as rootless podman's pause process holds the one it runs the
/// runtime in: each hull command enters it, so all of them share it.
struct HeldUserNamespace(std::process::Child);

impl HeldUserNamespace {
    fn new() -> Self {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "sleep", "1000"])
            .stdin(std::process::Stdio::null());
        std::os::unix::process::CommandExt::uid(&mut c, USER);
        std::os::unix::process::CommandExt::gid(&mut c, USER);
        let held = Self(c.spawn().unwrap());
        let map = format!("/proc/{}/uid_map", held.0.id());
        wait_for(
            || format!("the user namespace of {} to be mapped", held.0.id()),
            || {
                let text = std::fs::read_to_string(&map).unwrap_or_default();
                text.split_whitespace().collect::<Vec<_>>() == ["0", USER.to_string().as_str(), "1"]
            },
        );
        held
    }

    /// `hull ARGS...` as root of the held namespace (nsenter keeps the user's
    /// credentials, which are root's there), with `XDG_RUNTIME_DIR` and no
    /// `USER`, as podman runs it, and no `--root`.
    fn hull(&self, b: &TestBundle, xdg: &Path, args: &[&str]) -> Out {
        let mut c = Command::new("nsenter");
        c.arg("--preserve-credentials")
            .arg(format!("--user=/proc/{}/ns/user", self.0.id()))
            .arg("--")
            .arg(&b.bin)
            .args(args)
            .env("XDG_RUNTIME_DIR", xdg)
            .env_remove("USER");
        std::os::unix::process::CommandExt::uid(&mut c, USER);
        std::os::unix::process::CommandExt::gid(&mut c, USER);
        Out::from(output_via_files(&mut c))
    }
}

impl Drop for HeldUserNamespace {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// As rootless podman runs hull: root of a user namespace the user holds,
/// with a config that makes no user namespace (the container is in the
/// runtime's), no `--root`, `XDG_RUNTIME_DIR` set. The state root is then
/// `$XDG_RUNTIME_DIR/hull`, as runc's, and exec joins the container's pid
/// namespace, which the runtime could not come back from (its own pid
/// namespace is the host's). The host's `/dev/null` bound over the
/// container's, as podman `--privileged` has it, stays.
#[test]
fn root_of_a_held_user_namespace_as_rootless_podman_runs_hull() {
    let mut b = rootless_bundle("rl-podman");
    b.args(&["sleep", "1000"]);
    b.edit(|c| {
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
        let ns = linux["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        // As podman --privileged binds the host's nodes over /dev.
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/dev/null", "type": "bind", "source": "/dev/null",
                           "options": ["rbind", "nosuid", "noexec"]}),
        );
    });
    let xdg = b.dir.join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    chown_r(&xdg, USER);
    // Where the container lives, so the bundle's cleanup finds it.
    b.root = xdg.join("hull");
    let userns = HeldUserNamespace::new();
    let hull = |args: &[&str]| userns.hull(&b, &xdg, args);

    hull(&["run", "-d", "--bundle", bundle_arg(&b), &b.id]).ok();
    assert!(
        b.root.join(&b.id).is_file(),
        "state under $XDG_RUNTIME_DIR/hull"
    );
    let pid = b.init_pid();
    assert_eq!(host_uids(pid), "1001 1001 1001 1001");
    assert_exec_sees_the_container(hull, &b.id);
    hull(&["exec", "-d", &b.id, "sleep", "999"]).ok();
    assert_eq!(hull(&["list", "-q"]).ok().trim(), b.id);
    hull(&["kill", &b.id, "KILL"]).ok();
    wait_stopped(&b);
    hull(&["delete", &b.id]).ok();
    b.assert_no_state();
    wait_gone(pid);
    assert_no_process(&b.id);
}
