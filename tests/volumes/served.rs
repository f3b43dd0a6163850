//! Volumes served by hull's FUSE server: qcow2 images (linked clones,
//! images qemu-img accepts) and remote exports over NBD (against
//! `qemu-nbd` on 127.0.0.1), their errors, and kills during attach.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hull_tests::strace::{self, traced_run};
use hull_tests::*;

use super::{assert_no_files, assert_nothing_left, assert_recovered, kill_after, spawn, Vols};

/// `hull volume create NAME --size SIZE --format qcow2`, asserted to succeed.
fn create_qcow2(v: &Vols, b: &TestBundle, name: &str, size: &str) {
    v.cmd(
        b,
        &[
            "volume", "create", name, "--size", size, "--format", "qcow2",
        ],
    )
    .ok();
}

/// `qemu-img check` of `image` passes.
fn assert_qemu_check(image: &Path) {
    let out = Out::from(
        Command::new("qemu-img")
            .args(["check", "-f", "qcow2"])
            .arg(image)
            .output()
            .unwrap(),
    );
    out.ok();
}

/// The backing file `qemu-img info` reports for `image`, if any.
fn qemu_backing(image: &Path) -> Option<String> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(image)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["backing-filename"].as_str().map(str::to_owned)
}

#[test]
fn a_qcow2_volume_written_by_one_container_is_read_by_the_next() {
    require("qemu-img");
    let v = Vols::new("qcow2");
    let mut writer = TestBundle::new("vol-q-writer");
    let mut reader = TestBundle::new("vol-q-reader");
    create_qcow2(&v, &writer, "q", "64M");
    let image = v.root.join("q/image.qcow2");
    assert_qemu_check(&image);
    // Sparse: the 64M image holds only its metadata and the filesystem's.
    assert!(std::fs::metadata(&image).unwrap().len() < 32 << 20);
    writer.sh("echo kept > /data/file && sync && grep ' /data ' /proc/mounts | cut -d' ' -f3");
    assert_eq!(v.run(&writer, &["q:/data"]).ok().trim(), "ext4");
    v.assert_detached("after the writer");
    assert_no_files(&writer);
    reader.sh("cat /data/file");
    assert_eq!(v.run(&reader, &["q:/data:ro"]).ok(), "kept\n");
    v.assert_detached("after the reader");
    assert_qemu_check(&image);
    v.cmd(&reader, &["volume", "rm", "q"]).ok();
}

#[test]
fn a_qcow2_snapshot_and_its_linked_clone_diverge() {
    require("qemu-img");
    let v = Vols::new("qsnap");
    let mut b = TestBundle::new("vol-qsnap");
    create_qcow2(&v, &b, "orig", "64M");
    b.sh("echo one > /data/f");
    v.run(&b, &["orig:/data"]).ok();
    v.cmd(&b, &["volume", "snapshot", "orig", "snap1"]).ok();
    v.cmd(&b, &["volume", "clone", "snap1", "copy"]).ok();
    // Linked: both overlays read from the snapshot's image.
    for name in ["orig", "copy"] {
        let image = v.root.join(name).join("image.qcow2");
        assert_eq!(
            qemu_backing(&image).as_deref(),
            Some("../snap1/image.qcow2"),
            "{name}"
        );
    }
    b.sh("echo two > /data/f");
    v.run(&b, &["orig:/data"]).ok();
    b.sh("echo three > /data/f");
    v.run(&b, &["copy:/data"]).ok();
    b.sh("cat /data/f");
    assert_eq!(v.run(&b, &["orig:/data"]).ok(), "two\n");
    assert_eq!(v.run(&b, &["copy:/data"]).ok(), "three\n");
    // The snapshot is as it was: a clone of it now reads "one".
    v.cmd(&b, &["volume", "clone", "snap1", "copy2"]).ok();
    assert_eq!(v.run(&b, &["copy2:/data"]).ok(), "one\n");
    // The clones' overlay holds only what they changed.
    let overlay = std::fs::metadata(v.root.join("copy2/image.qcow2")).unwrap();
    let base = std::fs::metadata(v.root.join("snap1/image.qcow2")).unwrap();
    assert!(overlay.len() < base.len(), "a linked clone copies nothing");
    // A snapshot read by clones stays until they are gone.
    v.cmd(&b, &["volume", "rm", "snap1"])
        .fails_with("snap1 backs copy, copy2, orig");
    for name in ["orig", "copy", "copy2", "snap1"] {
        let image = v.root.join(name).join("image.qcow2");
        assert_qemu_check(&image);
    }
    for name in ["orig", "copy", "copy2", "snap1"] {
        v.cmd(&b, &["volume", "rm", name]).ok();
    }
    v.assert_detached("after the clones");
}

/// `qemu-nbd` serving a new qcow2 image of `size` on 127.0.0.1, stopped
/// (by its pid) when dropped.
struct NbdServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl NbdServer {
    fn start(name: &str, size: &str) -> Self {
        require("qemu-nbd");
        let dir = std::env::temp_dir().join(unique(&format!("nbd-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("export.qcow2");
        let made = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&image)
            .arg(size)
            .status()
            .unwrap();
        assert!(made.success());
        let port = free_port();
        let child = spawn_quiet(
            Command::new("qemu-nbd")
                .args([
                    "--persistent",
                    "--shared=4",
                    "-f",
                    "qcow2",
                    "-b",
                    "127.0.0.1",
                ])
                .args(["-p", &port.to_string(), "-x", "vol"])
                .arg(&image),
        );
        let server = Self { child, port, dir };
        wait_for(
            || format!("qemu-nbd listening on {port}"),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        server
    }

    fn url(&self) -> String {
        format!("nbd://127.0.0.1:{}/vol", self.port)
    }

    fn image(&self) -> PathBuf {
        self.dir.join("export.qcow2")
    }

    /// Stops the server (by pid) and waits for it.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NbdServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_remote_volume_is_written_and_read_back_over_nbd() {
    let v = Vols::new("remote");
    let mut server = NbdServer::start("remote", "64M");
    let mut b = TestBundle::new("vol-remote");
    v.cmd(&b, &["volume", "create", "r", "--remote", &server.url()])
        .ok();
    let inspect = v.cmd(&b, &["volume", "inspect", "r"]);
    let info: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
    assert_eq!(info["remote"], server.url().as_str());
    assert_eq!(info["size"], 64 << 20);
    b.sh("head -c 1048576 /dev/urandom > /data/blob && md5sum /data/blob | cut -d' ' -f1");
    let written = v.run(&b, &["r:/data"]).ok().to_owned();
    v.assert_detached("after the writer");
    b.sh("md5sum /data/blob | cut -d' ' -f1");
    assert_eq!(v.run(&b, &["r:/data"]).ok(), written);
    v.assert_detached("after the reader");
    // The data is in the server's image, which qemu accepts.
    server.stop();
    assert_qemu_check(&server.image());
    // A server gone: attaching is a clear error, and leaves nothing.
    let started = Instant::now();
    v.run(&b, &["r:/data"])
        .fails_with("serving nbd://127.0.0.1");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_nothing_left(&v, &b, "after the refused attach");
    v.cmd(&b, &["volume", "rm", "r"]).ok();
}

#[test]
fn an_unreachable_nbd_server_is_a_clear_error_within_a_timeout() {
    let v = Vols::new("unreach");
    let b = TestBundle::new("vol-unreach");
    // Nothing listens: refused at once.
    let closed = format!("nbd://127.0.0.1:{}/vol", free_port());
    v.cmd(&b, &["volume", "create", "r", "--remote", &closed])
        .fails_with(&closed);
    // A listener that never answers: the negotiation times out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nbd://{}/vol", silent.local_addr().unwrap());
    let started = Instant::now();
    v.cmd(&b, &["volume", "create", "r", "--remote", &url])
        .fails_with(&url);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let left: Vec<_> = std::fs::read_dir(&v.root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in the volume root: {left:?}");
    v.assert_detached("after the unreachable servers");
}

/// `run -d` of a qcow2 volume killed at points through its attach (the
/// FUSE server starting, the loop device, the mount): `delete --force`
/// stops the server and leaves nothing.
#[test]
fn a_kill_during_a_qcow2_attach_leaves_what_delete_force_finishes() {
    let v = Vols::new("qcrash");
    let mut b = TestBundle::new("vol-qcrash");
    create_qcow2(&v, &b, "crash", "32M");
    b.args(&["sleep", "60"]);
    let mut left = 0;
    for ms in [0, 5, 10, 20, 40, 60, 80, 120, 200] {
        let why = format!("run -d killed after {ms} ms");
        kill_after(
            spawn(&v, &b, &["run", "-d", "-v", "crash:/data"]),
            Duration::from_millis(ms),
        );
        left += assert_recovered(&v, &b, &why) as usize;
    }
    assert!(left > 0, "no kill left the volume attached");
    // The server killed under a running container: delete --force still
    // finishes.
    assert_eq!(v.run_detached(&b, &["crash:/data"]), 0, "{}", b.log());
    let pid_file = v.root.join(format!("crash/dev/{}.pid", b.id));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_recovered(&v, &b, "the server killed");
    b.sh("touch /data/ok && ls /data");
    assert!(v.run(&b, &["crash:/data"]).ok().contains("ok"));
    assert_qemu_check(&v.root.join("crash/image.qcow2"));
}

/// The calls with which `volume snapshot` of a qcow2 volume changes the
/// volume root.
const SNAPSHOT_STEPS: &str = "link,linkat,rename,renameat,renameat2,unlink,unlinkat,mkdir";

/// `volume snapshot` of a qcow2 volume killed at each of its steps: the
/// snapshot, once it exists, never sees what the volume writes after it
/// (the next attach finishes the snapshot), and every image stays one
/// qemu-img accepts.
#[test]
fn a_kill_during_a_qcow2_snapshot_never_lets_the_volume_write_into_it() {
    require("strace");
    require("qemu-img");
    let v = Vols::new("qsnapkill");
    let mut b = TestBundle::new("vol-qsnapkill");
    create_qcow2(&v, &b, "q", "32M");
    let log = b.dir.join("strace.log");
    let snapshot = |snap: &str| ["volume", "snapshot", "q", snap].map(str::to_owned);
    let probe = snapshot("probe");
    let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
    let trace = traced_run(&super::hull_cmd(&v, &b, &probe), &log, SNAPSHOT_STEPS);
    // strace logs nothing but the calls of SNAPSHOT_STEPS.
    let steps = strace::kill_points(&trace, |_, _| true);
    assert!(
        steps.iter().any(|p| p.syscall.starts_with("link")),
        "{steps:?}"
    );
    for (i, step) in steps.iter().enumerate() {
        let snap = format!("s{i}");
        b.sh(&format!("echo {i} > /data/f"));
        v.run(&b, &["q:/data"]).ok();
        let args = snapshot(&snap);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::killed_at(&v, &b, step, &args);
        // The volume writes after the kill.
        b.sh("echo after > /data/f");
        v.run(&b, &["q:/data"]).ok();
        if v.root.join(&snap).join("volume.json").exists() {
            let copy = format!("c{i}");
            v.cmd(&b, &["volume", "clone", &snap, &copy]).ok();
            b.sh("cat /data/f");
            let seen = v.run(&b, &[&format!("{copy}:/data:ro")]).ok().to_owned();
            assert_eq!(seen, format!("{i}\n"), "snapshot killed at {step}");
            v.cmd(&b, &["volume", "rm", &copy]).ok();
        }
        v.assert_detached(&format!("snapshot killed at {step}"));
    }
    for e in std::fs::read_dir(&v.root).unwrap().flatten() {
        let image = e.path().join("image.qcow2");
        if image.exists() {
            assert_qemu_check(&image);
        }
    }
}

/// hull killed at each step of `run -d` with a qcow2 volume that changes
/// the host (found with strace; the FUSE server, a process of its own,
/// lives on): `delete --force` stops the server and leaves nothing.
#[test]
fn a_kill_at_any_step_of_a_qcow2_attach_leaves_what_delete_force_finishes() {
    require("strace");
    let v = Vols::new("qinject");
    let mut b = TestBundle::new("vol-qinject");
    create_qcow2(&v, &b, "crash", "32M");
    b.args(&["sleep", "60"]);
    let dir = b.dir.to_str().unwrap().to_owned();
    let run = ["run", "-d", "-v", "crash:/data", "--bundle", &dir, &b.id];
    let points = super::kill_points(&v, &b, &run);
    assert!(
        points
            .iter()
            .any(|p| p.syscall == "clone" || p.syscall == "clone3"),
        "the traced run started no server: {points:?}"
    );
    v.delete_and_check(&b, "after the traced run");
    let mut servers_left = 0;
    for p in &points {
        super::killed_at(&v, &b, p, &run);
        servers_left += !v.servers().is_empty() as usize;
        assert_recovered(&v, &b, &format!("run -d killed at {p}"));
    }
    assert!(servers_left > 0, "no kill left a server running");
    b.sh("touch /data/ok && ls /data");
    assert!(v.run(&b, &["crash:/data"]).ok().contains("ok"));
    assert_qemu_check(&v.root.join("crash/image.qcow2"));
}
