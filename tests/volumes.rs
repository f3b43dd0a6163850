//! Block-device volumes (`hull volume`, `run -v NAME:/PATH[:ro]`): data
//! outlives its container, the size is a hard quota, one writer or many
//! readers, snapshots and clones diverge, errors leave nothing, and a kill
//! at any point leaves what `delete --force` finishes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hull_tests::strace::{self, killing_at, strace, traced_run, KillPoint};
use hull_tests::*;
use serde_json::json;

#[path = "volumes/served.rs"]
mod served;

/// A private volume root, `<temp>/hull-test-vols-<name>-<pid>`, removed
/// (with anything a failed test left mounted in it) when dropped. Declare
/// it before the bundles using it: they are dropped (and their volumes
/// detached by `delete --force`) first.
struct Vols {
    root: PathBuf,
}

impl Vols {
    fn new(name: &str) -> Self {
        require("mkfs.ext4");
        let root = std::env::temp_dir().join(unique(&format!("vols-{name}")));
        let _ = std::fs::remove_dir_all(&root);
        Self { root }
    }

    fn root_arg(&self) -> &str {
        self.root.to_str().unwrap()
    }

    /// `hull --root <b.root> --volume-root <root> ARGS...`.
    fn cmd(&self, b: &TestBundle, args: &[&str]) -> Out {
        let mut all = vec!["--volume-root", self.root_arg()];
        all.extend_from_slice(args);
        Out::from(b.cmd(&all))
    }

    /// `hull volume create NAME --size SIZE`, asserted to succeed.
    fn create(&self, b: &TestBundle, name: &str, size: &str) {
        self.cmd(b, &["volume", "create", name, "--size", size])
            .ok();
    }

    /// A foreground `run` of `b` with the volume flags `vols`.
    fn run(&self, b: &TestBundle, vols: &[&str]) -> Out {
        let mut args = vec!["run"];
        for v in vols {
            args.extend(["-v", v]);
        }
        args.extend(["--bundle", b.dir.to_str().unwrap(), &b.id]);
        self.cmd(b, &args)
    }

    /// A detached `run` of `b` with the volume flags `vols`; its output
    /// goes to `b.log_path()`.
    fn run_detached(&self, b: &TestBundle, vols: &[&str]) -> i32 {
        let mut c = b.hull();
        c.args(["--volume-root", self.root_arg(), "run", "-d"]);
        for v in vols {
            c.args(["-v", v]);
        }
        let log = std::fs::File::create(b.log_path()).unwrap();
        c.arg("--bundle")
            .arg(&b.dir)
            .arg(&b.id)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap()
            .code()
            .unwrap_or(-1)
    }

    /// `delete --force` of `b`, checked as [`TestBundle::delete_and_check`]
    /// does, and then nothing attached.
    fn delete_and_check(&self, b: &TestBundle, why: &str) {
        b.delete_and_check(true);
        self.assert_detached(why);
    }

    /// The users `volume inspect` lists for `name`.
    fn users(&self, b: &TestBundle, name: &str) -> Vec<serde_json::Value> {
        let out = self.cmd(b, &["volume", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
        v["users"].as_array().unwrap().clone()
    }

    /// Nothing attached: no loop device backed by an image here, no mount
    /// under the root, no user record, no mountpoint, no served file and
    /// no FUSE server of a volume here.
    fn assert_detached(&self, why: &str) {
        wait_for(
            || {
                format!(
                    "{why}: loop devices left: {:?}",
                    volume::backed_under(&self.root)
                )
            },
            || volume::backed_under(&self.root).is_empty(),
        );
        assert_no_mount(self.root_arg());
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            for sub in ["users", "mnt", "dev"] {
                let left: Vec<_> = std::fs::read_dir(e.path().join(sub))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                assert!(left.is_empty(), "{why}: left in {sub}: {left:?}");
            }
        }
        let servers = self.servers();
        assert!(servers.is_empty(), "{why}: servers left: {servers:?}");
    }

    /// The pids of processes whose command line names a file here (the
    /// FUSE servers of its volumes).
    fn servers(&self) -> Vec<u32> {
        let root = self.root.as_os_str().as_encoded_bytes();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    c.split(|&b| b == 0)
                        .any(|arg| arg.starts_with(root) && arg.len() > root.len())
                })
            })
            .collect()
    }
}

impl Drop for Vols {
    fn drop(&mut self) {
        clean_up("volume root", || {
            let _ = Command::new("umount")
                .arg("-R")
                .arg(&self.root)
                .stderr(Stdio::null())
                .status();
            for dir in std::fs::read_dir(&self.root)
                .into_iter()
                .flatten()
                .flatten()
            {
                let mnt = dir.path().join("mnt");
                for m in std::fs::read_dir(&mnt).into_iter().flatten().flatten() {
                    lazy_umount(&m.path());
                }
            }
            let _ = std::fs::remove_dir_all(&self.root);
        });
    }
}

/// `umount -l PATH`, quietly: a clean-up step.
fn lazy_umount(path: &Path) {
    let _ = Command::new("umount")
        .arg("-l")
        .arg(path)
        .stderr(Stdio::null())
        .status();
}

/// The state root holds nothing of the container (no state, no record of
/// its volumes).
fn assert_no_files(b: &TestBundle) {
    let left = state_left(&b.root);
    assert!(left.is_empty(), "files left in the state root: {left:?}");
}

/// Nothing of `b` is left after a failed or killed command and its
/// clean-up: no state file, no process, no volume attached.
fn assert_nothing_left(v: &Vols, b: &TestBundle, why: &str) {
    assert_no_files(b);
    assert_no_process(&b.id);
    v.assert_detached(why);
}

#[test]
fn data_written_in_one_container_is_read_in_the_next() {
    let v = Vols::new("data");
    let mut writer = TestBundle::new("vol-writer");
    let mut reader = TestBundle::new("vol-reader");
    v.create(&writer, "data", "64M");
    writer.sh("echo kept > /data/file && sync && grep -c ' /data ' /proc/mounts");
    assert_eq!(v.run(&writer, &["data:/data"]).ok().trim(), "1");
    v.assert_detached("after the writer");
    assert_no_files(&writer);
    // The reader asks through the annotation, read-only.
    reader
        .sh("cat /data/file; touch /data/x 2>&1; true")
        .edit(|c| c["annotations"] = json!({"org.hull.volumes": "data:/data:ro"}));
    let out = v.run(&reader, &[]);
    let text = out.ok();
    assert!(text.starts_with("kept\n"), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    v.assert_detached("after the reader");
    v.cmd(&reader, &["volume", "rm", "data"]).ok();
    assert!(!v.root.join("data").exists());
}

#[test]
fn writing_past_the_size_is_enospc_and_the_image_does_not_grow() {
    let v = Vols::new("quota");
    let mut b = TestBundle::new("vol-quota");
    v.create(&b, "small", "16M");
    b.sh("dd if=/dev/zero of=/data/big bs=1M count=64 2>&1; echo rc=$?");
    let out = v.run(&b, &["small:/data"]);
    let text = out.ok();
    assert!(text.contains("No space left on device"), "{text}");
    assert!(!text.contains("rc=0"), "{text}");
    let image = v.root.join("small/image.raw");
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 16 << 20, "the image's size changed");
    assert!(
        volume::allocated(&image).unwrap() <= 16 << 20,
        "the image takes more than its size"
    );
    v.assert_detached("after the quota run");
}

#[test]
fn many_readers_or_one_writer() {
    let v = Vols::new("share");
    let r1 = TestBundle::new("vol-r1");
    let r2 = TestBundle::new("vol-r2");
    let mut w = TestBundle::new("vol-w");
    let mut r1 = r1;
    let mut r2 = r2;
    v.create(&r1, "shared", "32M");
    for b in [&mut r1, &mut r2, &mut w] {
        b.args(&["sleep", "60"]);
    }
    assert_eq!(v.run_detached(&r1, &["shared:/data:ro"]), 0, "{}", r1.log());
    assert_eq!(v.run_detached(&r2, &["shared:/data:ro"]), 0, "{}", r2.log());
    assert_eq!(v.users(&r1, "shared").len(), 2);
    // A writer is refused while readers hold it, and leaves nothing.
    assert_ne!(v.run_detached(&w, &["shared:/data"]), 0);
    assert!(w.log().contains("attached read-only to"), "{}", w.log());
    assert_no_files(&w);
    assert_eq!(volume::backed_under(&v.root).len(), 2);
    // The readers cannot write.
    let out = v.cmd(&r1, &["exec", &r1.id, "touch", "/data/x"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    // Removing or snapshotting... removing an attached volume is refused.
    v.cmd(&r1, &["volume", "rm", "shared"])
        .fails_with("volume shared is in use by");
    r1.delete_and_check(true);
    v.delete_and_check(&r2, "after the readers");
    // One writer: nobody else, and no snapshot while it writes.
    assert_eq!(v.run_detached(&w, &["shared:/data"]), 0, "{}", w.log());
    assert_ne!(v.run_detached(&r1, &["shared:/data:ro"]), 0);
    assert!(r1.log().contains("attached read-write to"), "{}", r1.log());
    assert_ne!(v.run_detached(&r2, &["shared:/data"]), 0);
    assert!(r2.log().contains("attached read-write to"), "{}", r2.log());
    v.cmd(&w, &["volume", "snapshot", "shared", "snap"])
        .fails_with("a snapshot would not be consistent");
    assert_no_files(&r1);
    assert_no_files(&r2);
    v.delete_and_check(&w, "after the writer");
    v.cmd(&w, &["volume", "rm", "shared"]).ok();
}

#[test]
fn a_clone_of_a_snapshot_diverges_from_the_volume() {
    let v = Vols::new("snap");
    let mut b = TestBundle::new("vol-snap");
    v.create(&b, "orig", "32M");
    b.sh("echo one > /data/f");
    v.run(&b, &["orig:/data"]).ok();
    v.cmd(&b, &["volume", "snapshot", "orig", "snap1"]).ok();
    v.cmd(&b, &["volume", "clone", "snap1", "copy"]).ok();
    v.cmd(&b, &["volume", "create", "copy2", "--from", "snap1"])
        .ok();
    b.sh("echo two > /data/f");
    v.run(&b, &["orig:/data"]).ok();
    b.sh("cat /data/f");
    assert_eq!(v.run(&b, &["orig:/data"]).ok(), "two\n");
    assert_eq!(v.run(&b, &["copy:/data"]).ok(), "one\n");
    // The snapshot is frozen: it cannot be attached, only cloned.
    v.run(&b, &["snap1:/data"])
        .fails_with("is a snapshot, not a volume");
    v.cmd(&b, &["volume", "clone", "orig", "x"])
        .fails_with("is a volume, not a snapshot");
    let ls = v.cmd(&b, &["volume", "ls"]);
    let ls = ls.ok();
    for (name, kind, origin) in [
        ("orig", "volume", "-"),
        ("snap1", "snapshot", "orig"),
        ("copy", "volume", "snap1"),
    ] {
        let line = ls
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {ls}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((words[1], words[5]), (kind, origin), "{line}");
    }
    // The clone lives on without the snapshot and its volume.
    v.cmd(&b, &["volume", "rm", "snap1"]).ok();
    v.cmd(&b, &["volume", "rm", "orig"]).ok();
    assert_eq!(v.run(&b, &["copy2:/data"]).ok(), "one\n");
    v.assert_detached("after the clones");
}

#[test]
fn bad_requests_fail_clearly_and_leave_nothing() {
    let v = Vols::new("errors");
    let b = TestBundle::new("vol-errors");
    v.create(&b, "there", "16M");
    let vol = |args: &[&str]| v.cmd(&b, &[&["volume"], args].concat());
    vol(&["create", "there", "--size", "16M"]).fails_with("volume there already exists");
    vol(&["create", "q", "--size", "1M", "--format", "qcow2"]).fails_with("must be at least");
    vol(&["create", "n", "--remote", "http://x/y"]).fails_with("does not start with nbd://");
    // A local file given as a remote is refused, not formatted.
    let local = b.dir.join("local.img");
    std::fs::write(&local, vec![7u8; 16 << 20]).unwrap();
    vol(&["create", "n", "--remote", local.to_str().unwrap()])
        .fails_with("does not start with nbd://");
    assert_eq!(std::fs::read(&local).unwrap(), vec![7u8; 16 << 20]);
    vol(&["create", "s", "--size", "5X"]).fails_with("invalid size");
    vol(&["create", "s", "--size", "1M"]).fails_with("must be at least");
    vol(&["create", "../x", "--size", "16M"]).fails_with("invalid volume name");
    vol(&["rm", "nope"]).fails_with("volume nope does not exist");
    vol(&["inspect", "nope"]).fails_with("volume nope does not exist");
    vol(&["snapshot", "nope", "s"]).fails_with("volume nope does not exist");
    let names: Vec<_> = std::fs::read_dir(&v.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec!["there"], "only the one volume");
    // A container asking for what is not there: nothing is created.
    let run = v.run(&b, &["nope:/data"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("volume nope does not exist"),
        "{}",
        run.stderr
    );
    let run = v.run(&b, &["there:data"]);
    assert!(run.stderr.contains("expected NAME:/PATH"), "{}", run.stderr);
    let run = v.run(&b, &["there:/a", "there:/b"]);
    assert!(run.stderr.contains("asked for twice"), "{}", run.stderr);
    // Its image gone.
    std::fs::remove_file(v.root.join("there/image.raw")).unwrap();
    let run = v.run(&b, &["there:/data"]);
    assert!(
        run.stderr.contains("image.raw is missing"),
        "{}",
        run.stderr
    );
    assert_no_files(&b);
    v.assert_detached("after the errors");
}

#[test]
fn xfs_clones_of_one_snapshot_are_mounted_side_by_side() {
    require("mkfs.xfs");
    let v = Vols::new("xfs");
    let mut a = TestBundle::new("vol-xfs-a");
    let mut b = TestBundle::new("vol-xfs-b");
    v.cmd(
        &a,
        &["volume", "create", "x", "--fs", "xfs", "--size", "320M"],
    )
    .ok();
    v.cmd(
        &a,
        &["volume", "create", "tiny", "--fs", "xfs", "--size", "64M"],
    )
    .fails_with("must be at least");
    a.sh("echo xfs > /data/f");
    v.run(&a, &["x:/data"]).ok();
    v.cmd(&a, &["volume", "snapshot", "x", "xs"]).ok();
    v.cmd(&a, &["volume", "clone", "xs", "x2"]).ok();
    // The clone's filesystem has the original's UUID: both are mounted at once.
    a.args(&["sleep", "60"]);
    assert_eq!(v.run_detached(&a, &["x:/data:ro"]), 0, "{}", a.log());
    b.sh("grep ' /data ' /proc/mounts | cut -d' ' -f3; cat /data/f");
    assert_eq!(v.run(&b, &["x2:/data"]).ok(), "xfs\nxfs\n");
    v.delete_and_check(&a, "after the xfs containers");
}

/// A 1 MiB tmpfs of our own, filled up: the host disk is full.
struct FullDisk {
    dir: PathBuf,
}

impl FullDisk {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("full"));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "hull-test-full"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", dir.join("filler").display()))
            .stderr(Stdio::null())
            .status();
        Self { dir }
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        lazy_umount(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_full_host_disk_is_named_and_leaves_nothing() {
    let disk = FullDisk::new();
    let b = TestBundle::new("vol-full");
    let root = disk.dir.join("vols");
    std::fs::create_dir(&root).unwrap();
    let out = Out::from(b.cmd(&[
        "--volume-root",
        root.to_str().unwrap(),
        "volume",
        "create",
        "big",
        "--size",
        "1G",
    ]));
    out.fails_with("is full");
    let left: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
    assert!(left.is_empty(), "left: {left:?}");
}

/// Kills `child` (a hull command) after `delay`.
fn kill_after(mut child: std::process::Child, delay: Duration) {
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap();
}

/// Starts `hull --volume-root R ARGS... --bundle DIR ID` with its output
/// thrown away.
fn spawn(v: &Vols, b: &TestBundle, args: &[&str]) -> std::process::Child {
    b.start_quiet(&[&["--volume-root", v.root_arg()], args].concat())
}

/// After a kill and `delete --force`: no state, no process, nothing
/// attached, and the volume can be attached read-write again. Returns
/// whether the kill had left the volume attached (or recorded as such).
fn assert_recovered(v: &Vols, b: &TestBundle, why: &str) -> bool {
    let left = !v.users(b, "crash").is_empty() || !volume::backed_under(&v.root).is_empty();
    let out = Out::from(b.cmd(&["delete", "--force", &b.id]));
    assert!(
        out.code == 0 || out.stderr.contains("does not exist"),
        "{why}: {}",
        out.stderr
    );
    assert_nothing_left(v, b, why);
    assert!(v.users(b, "crash").is_empty(), "{why}: users left");
    left
}

/// The syscalls a volume's attach and detach change the host with, where
/// a kill point may be: records (`linkat` of a temporary file, `unlink`),
/// mountpoints, the loop device (`ioctl`), the mount, and the clone of the
/// init after them.
const KILL_AT: &str = "linkat,unlink,unlinkat,mkdir,rmdir,ioctl,mount,umount2,clone,clone3";

/// `hull --volume-root R ARGS...` run as `b`'s hull, to be traced.
fn hull_cmd(v: &Vols, b: &TestBundle, args: &[&str]) -> Command {
    let mut c = b.hull();
    c.args(["--volume-root", v.root_arg()]).args(args);
    c
}

/// Every call of [`KILL_AT`] in one run of `args` (asserted to succeed).
fn kill_points(v: &Vols, b: &TestBundle, args: &[&str]) -> Vec<KillPoint> {
    let log = b.dir.join("strace.log");
    let trace = traced_run(&hull_cmd(v, b, args), &log, KILL_AT);
    // strace logs nothing but the calls of KILL_AT.
    strace::kill_points(&trace, |_, _| true)
}

/// Runs `args` with hull killed as it enters the call `p`.
fn killed_at(v: &Vols, b: &TestBundle, p: &KillPoint, args: &[&str]) {
    output_via_files(&mut strace(&hull_cmd(v, b, args), &killing_at(p)));
}

/// hull killed at each step of `run -d` and of `delete --force` that
/// changes the host (found with strace, see [`KILL_AT`]): `delete --force`
/// afterwards leaves nothing attached and the volume usable.
#[test]
fn a_kill_at_any_step_leaves_what_delete_force_finishes() {
    require("strace");
    let v = Vols::new("inject");
    let mut b = TestBundle::new("vol-inject");
    v.create(&b, "crash", "32M");
    b.args(&["sleep", "60"]);
    let dir = b.dir.to_str().unwrap().to_owned();
    let run = ["run", "-d", "-v", "crash:/data", "--bundle", &dir, &b.id];
    let delete = ["delete", "--force", &b.id];
    let run_points = kill_points(&v, &b, &run);
    assert!(
        run_points.iter().any(|p| p.syscall == "mount"),
        "the traced run made no mount: {run_points:?}"
    );
    let delete_points = kill_points(&v, &b, &delete);
    assert!(
        delete_points.iter().any(|p| p.syscall == "umount2"),
        "the traced delete unmounted nothing: {delete_points:?}"
    );
    v.assert_detached("after the traced runs");
    let mut left = 0;
    for p in &run_points {
        killed_at(&v, &b, p, &run);
        left += assert_recovered(&v, &b, &format!("run -d killed at {p}")) as usize;
    }
    assert!(left > 0, "no kill of run -d left the volume attached");
    left = 0;
    for p in &delete_points {
        assert_eq!(v.run_detached(&b, &["crash:/data"]), 0, "{}", b.log());
        killed_at(&v, &b, p, &delete);
        left += assert_recovered(&v, &b, &format!("delete killed at {p}")) as usize;
    }
    assert!(left > 0, "no kill of delete left the volume attached");
    // Still whole: a writer gets it and finds its filesystem clean.
    b.sh("touch /data/ok && ls /data");
    assert!(v.run(&b, &["crash:/data"]).ok().contains("ok"));
}

#[test]
fn a_kill_during_run_or_delete_leaves_what_delete_force_finishes() {
    let v = Vols::new("crash");
    let mut b = TestBundle::new("vol-crash");
    v.create(&b, "crash", "32M");
    b.args(&["sleep", "60"]);
    for ms in [0, 1, 2, 4, 6, 8, 10, 15, 20, 30, 50, 80] {
        let why = format!("run -d killed after {ms} ms");
        kill_after(
            spawn(&v, &b, &["run", "-d", "-v", "crash:/data"]),
            Duration::from_millis(ms),
        );
        assert_recovered(&v, &b, &why);
    }
    for ms in [0, 1, 2, 4, 6, 8, 10, 15, 20, 30] {
        let why = format!("delete --force killed after {ms} ms");
        assert_eq!(v.run_detached(&b, &["crash:/data"]), 0, "{}", b.log());
        let child = spawn_quiet(b.hull().args(["delete", "--force", &b.id]));
        kill_after(child, Duration::from_millis(ms));
        assert_recovered(&v, &b, &why);
    }
    b.sh("touch /data/ok && ls /data");
    assert!(v.run(&b, &["crash:/data"]).ok().contains("ok"));
    v.cmd(&b, &["volume", "rm", "crash"]).ok();
}

/// The volume is where the container's config says, on a loop device of
/// its image, with direct I/O where the host filesystem allows it.
#[test]
fn the_volume_is_a_loop_device_of_its_image() {
    let v = Vols::new("loop");
    let mut b = TestBundle::new("vol-loop");
    v.create(&b, "dev", "16M");
    b.args(&["sleep", "60"]);
    assert_eq!(v.run_detached(&b, &["dev:/data"]), 0, "{}", b.log());
    let loops = volume::backed_under(&v.root);
    assert_eq!(loops.len(), 1, "{loops:?}");
    let name = loops[0].file_name().unwrap().to_str().unwrap().to_owned();
    let sys = Path::new("/sys/block").join(&name).join("loop");
    let backing = std::fs::read_to_string(sys.join("backing_file")).unwrap();
    assert_eq!(Path::new(backing.trim()), v.root.join("dev/image.raw"));
    assert_eq!(
        std::fs::read_to_string(sys.join("autoclear"))
            .unwrap()
            .trim(),
        "1"
    );
    // The host filesystem here (ext4 on a virtio disk) takes direct I/O.
    assert_eq!(
        std::fs::read_to_string(sys.join("dio")).unwrap().trim(),
        "1"
    );
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", b.init_pid())).unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/data"))
        .unwrap_or_else(|| panic!("no /data mount: {mounts}"));
    assert!(line.contains(&format!(" - ext4 /dev/{name} ")), "{line}");
    v.delete_and_check(&b, "after delete");
}

/// Roots given relative to the working directory at create are the same
/// roots given absolute at delete: the volume is detached and free again.
#[test]
fn relative_roots_at_create_are_found_at_delete() {
    let v = Vols::new("relative");
    let mut b = TestBundle::new("vol-relative");
    v.create(&b, "rel", "16M");
    b.args(&["sleep", "60"]);
    let tmp = std::env::temp_dir();
    let rel = |p: &Path| p.strip_prefix(&tmp).unwrap().to_owned();
    let status = Command::new(&b.bin)
        .current_dir(&tmp)
        .arg("--root")
        .arg(rel(&b.root))
        .arg("--volume-root")
        .arg(rel(&v.root))
        .args(["run", "-d", "-v", "rel:/data", "--bundle"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(b.log_path()).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{}", b.log());
    assert_eq!(v.users(&b, "rel").len(), 1);
    v.delete_and_check(&b, "after delete");
    v.cmd(&b, &["volume", "rm", "rel"]).ok();
}

/// A `volume create` killed half-way (mkfs running) leaves no volume under
/// the name, and its work directory is swept by the next create.
#[test]
fn a_killed_volume_create_leaves_no_volume() {
    let v = Vols::new("killed-create");
    let b = TestBundle::new("vol-killed-create");
    for ms in [2, 10, 30, 60] {
        let child = spawn_quiet(
            b.hull()
                .args(["--volume-root", v.root_arg()])
                .args(["volume", "create", "big", "--size", "2G"]),
        );
        kill_after(child, Duration::from_millis(ms));
        let listed = v.cmd(&b, &["volume", "ls"]);
        if listed.ok().contains("big ") {
            // The kill came after the rename: the volume is whole.
            v.cmd(&b, &["volume", "inspect", "big"]).ok();
            v.cmd(&b, &["volume", "rm", "big"]).ok();
        }
    }
    v.create(&b, "big", "2G");
    let names: Vec<_> = std::fs::read_dir(&v.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec!["big"], "left in the volume root");
}
