//! checkpoint / restore with CRIU: a container's processes dumped and
//! rebuilt with their memory, pid namespace, mounts and network namespace.
//!
//! CRIU 4.1 or newer is needed on this kernel (Debian's 3.17 cannot start:
//! it does not know the `[vvar_vclock]` mapping); the tests use the build
//! `$HULL_TEST_CRIU` names, else the shared one beside the workspace, and
//! fail, saying so, if there is none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hull_tests::*;

/// The CRIU binary the tests run.
fn criu() -> PathBuf {
    let path = std::env::var_os("HULL_TEST_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/tools/criu/bin/criu"));
    assert!(
        path.is_file(),
        "no CRIU at {} (the checkpoint tests need CRIU 4.1 or newer: set HULL_TEST_CRIU, \
         or see ../shared/tools/criu/README.md)",
        path.display()
    );
    // Its run-time libraries, which scripts/deps.sh installs.
    for lib in [
        "libnet.so.1",
        "libnl-3.so.200",
        "libprotobuf-c.so.1",
        "libnftables.so.1",
    ] {
        require(lib);
    }
    path
}

/// `hull --root <root> --criu <criu> ARGS...`.
fn hull(b: &TestBundle, args: &[&str]) -> Out {
    let mut cmd = b.hull();
    cmd.arg("--criu").arg(criu()).args(args);
    Out::from(output_via_files(&mut cmd))
}

/// A shell loop counting in memory and writing each value to `file`.
fn counter(file: &str) -> String {
    format!("i=0; while true; do i=$((i+1)); echo $i > {file}; sleep 0.05; done")
}

/// The counter's value, read through the init's root.
fn read_counter(pid: i32, file: &str) -> u64 {
    let path = format!("/proc/{pid}/root{file}");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Waits until the counter of `pid` has reached `n`.
fn count_to(pid: i32, file: &str, n: u64) {
    wait_for(
        || format!("counter of {pid} at {}", read_counter(pid, file)),
        || read_counter(pid, file) >= n,
    );
}

fn image_dir(b: &TestBundle) -> PathBuf {
    b.dir.join("image")
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// `hull restore -d --pid-file` of the image into `id`; returns the pid.
fn restore(b: &TestBundle, id: &str) -> i32 {
    let pid_file = b.dir.join(format!("{id}.pid"));
    let image = image_dir(b);
    hull(
        b,
        &[
            "restore",
            "-d",
            "--image-path",
            image.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--bundle",
            b.dir.to_str().unwrap(),
            id,
        ],
    )
    .ok();
    std::fs::read_to_string(&pid_file).unwrap().parse().unwrap()
}

fn state_of(b: &TestBundle, id: &str) -> serde_json::Value {
    serde_json::from_str(hull(b, &["state", id]).ok()).unwrap()
}

#[test]
fn counter_continues_after_restore_in_its_pid_namespace() {
    let mut b = TestBundle::new("ckpt-counter");
    b.sh(&counter("/dev/shm/c"));
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    count_to(pid, "/dev/shm/c", 10);
    let image = image_dir(&b);
    hull(
        &b,
        &["checkpoint", "--image-path", image.to_str().unwrap(), &b.id],
    )
    .ok();
    // The processes are gone and the container with them (as in runc).
    assert!(!alive(pid), "init {pid} still runs after checkpoint");
    hull(&b, &["state", &b.id]).fails_with("does not exist");
    let at_dump = std::fs::read_dir(&image).unwrap().count();
    assert!(at_dump > 3, "image directory nearly empty");

    let restored = restore(&b, &b.id.clone());
    let s = b.state();
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"], restored, "state and pid file disagree");
    // Its memory came back: the count goes on from where it was, not from 0.
    let first = read_counter(restored, "/dev/shm/c");
    assert!(first >= 10, "counter restarted: {first}");
    count_to(restored, "/dev/shm/c", first + 5);
    // Still pid 1 of its own pid namespace.
    let status = std::fs::read_to_string(format!("/proc/{restored}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    // exec, pause and kill work on it, and delete cleans it up.
    assert!(
        hull(&b, &["exec", &b.id, "cat", "/dev/shm/c"])
            .ok()
            .trim()
            .parse::<u64>()
            .unwrap()
            >= first
    );
    hull(&b, &["pause", &b.id]).ok();
    assert_eq!(b.state()["status"], "paused");
    hull(&b, &["resume", &b.id]).ok();
    hull(&b, &["kill", &b.id, "KILL"]).ok();
    wait_for(|| "restored init to die".into(), || !alive(restored));
    b.delete_and_check(false);
    assert_no_mount(&b.id);
}

#[test]
fn leave_running_and_restore_into_a_new_id() {
    let mut b = TestBundle::new("ckpt-leave");
    b.sh(&counter("/dev/shm/c"));
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    count_to(pid, "/dev/shm/c", 5);
    let image = image_dir(&b);
    hull(
        &b,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            image.to_str().unwrap(),
            &b.id,
        ],
    )
    .ok();
    assert_eq!(b.state()["status"], "running");
    assert_eq!(b.init_pid(), pid);
    let at = read_counter(pid, "/dev/shm/c");
    count_to(pid, "/dev/shm/c", at + 3);

    // The same image restored beside it, as another container.
    let copy = format!("{}-copy", b.id);
    let restored = restore(&b, &copy);
    assert_ne!(restored, pid);
    assert_eq!(state_of(&b, &copy)["status"], "running");
    let first = read_counter(restored, "/dev/shm/c");
    assert!(first >= 5, "copy restarted its count: {first}");
    count_to(restored, "/dev/shm/c", first + 3);
    // Its own cgroup, named after the new id.
    let cgroup = std::fs::read_to_string(format!("/proc/{restored}/cgroup")).unwrap();
    assert!(cgroup.contains(&copy), "{cgroup}");
    hull(&b, &["delete", "--force", &copy]).ok();
    assert!(!alive(restored));
    assert!(alive(pid), "the original died with its copy");
}

#[test]
fn bind_mount_and_network_namespace_come_back() {
    let mut b = TestBundle::new("ckpt-bind");
    let data = b.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/data",
            "type": "bind",
            "source": "data",
            "options": ["rbind", "rw"]
        }));
    });
    // The loopback address is changed, so a fresh namespace would differ.
    // Output then goes to the container's own /dev/null: CRIU checks that a
    // regular file from outside (the log hull's stdout is here) has the
    // size it had at the dump, and `ip` may have written to it.
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_NET_ADMIN".into());
        }
    });
    b.sh(&format!(
        "ip addr add 127.0.0.7/8 dev lo && exec >/dev/null 2>&1 && {}",
        counter("/data/c")
    ));
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    count_to(pid, "/data/c", 5);
    let netns_before = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let image = image_dir(&b);
    hull(
        &b,
        &["checkpoint", "--image-path", image.to_str().unwrap(), &b.id],
    )
    .ok();
    let at_dump: u64 = std::fs::read_to_string(data.join("c"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let later: u64 = std::fs::read_to_string(data.join("c"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(at_dump, later, "the count moved while checkpointed");

    let restored = restore(&b, &b.id.clone());
    // The bind mount shows the host directory again: the count goes on there.
    wait_for(
        || "the restored counter to write to the bind mount".into(),
        || {
            std::fs::read_to_string(data.join("c"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|n| n > at_dump)
        },
    );
    // A network namespace of its own, with the address it had.
    let netns_after = std::fs::read_link(format!("/proc/{restored}/ns/net")).unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(netns_after, host);
    assert_ne!(netns_after, netns_before, "not a new namespace");
    let addrs = hull(&b, &["exec", &b.id, "ip", "addr", "show", "lo"]);
    assert!(addrs.ok().contains("127.0.0.7"), "{}", addrs.stdout);
    b.delete_and_check(true);
    assert_no_mount(&b.id);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let mut b = TestBundle::new("ckpt-bad");
    b.args(&["sleep", "60"]);
    let image = image_dir(&b);
    let image_arg = image.to_str().unwrap().to_owned();

    // A restore from a directory without a checkpoint.
    hull(
        &b,
        &[
            "restore",
            "-d",
            "--image-path",
            &image_arg,
            "--bundle",
            b.dir.to_str().unwrap(),
            &b.id,
        ],
    )
    .fails_with("is not a checkpoint image directory");
    b.assert_no_state();
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{}", b.id)).exists());
    assert_no_mount(&b.id);

    // A created container is not running yet.
    b.create();
    hull(&b, &["checkpoint", "--image-path", &image_arg, &b.id])
        .fails_with("cannot checkpoint a container that is created");
    assert!(
        !image.exists(),
        "image directory made for a refused checkpoint"
    );
    hull(&b, &["start", &b.id]).ok();

    // No memory tracking on this kernel: pre-dump is refused, by name.
    hull(
        &b,
        &[
            "checkpoint",
            "--pre-dump",
            "--image-path",
            &image_arg,
            &b.id,
        ],
    )
    .fails_with("--pre-dump is not supported here");
    assert!(!image.exists());
    assert_eq!(b.state()["status"], "running");

    // No CRIU where --criu points.
    let mut cmd = b.hull();
    cmd.args([
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        &image_arg,
        &b.id,
    ]);
    Out::from(output_via_files(&mut cmd)).fails_with("criu not found at /nonexistent/criu");
    assert!(
        !image.exists(),
        "image directory left by a checkpoint without CRIU"
    );
    assert_eq!(b.state()["status"], "running");
    b.delete_and_check(true);
}
