//! CVE-2024-21626 ("Leaky Vessels"): runc leaked a host directory fd (its
//! cgroup directory) into the container's init and exec'd processes, so a
//! `process.cwd` (or `exec --cwd`) of `/proc/self/fd/N` started the process
//! with its cwd in the host's filesystem: `../../..` from there reaches the
//! host's `/`. An `args[0]` of `/proc/self/fd/N` ran a host file the same
//! way. hull's init and exec'd processes are clones of the runtime and hold
//! all of its fds until `execve`: every fd number from 3 to 20 is tried.

use std::path::{Path, PathBuf};

use hull_tests::*;
use serde_json::{json, Value};

/// The fd numbers the attack tries (runc's test tries 3 to 20 too).
const FDS: std::ops::RangeInclusive<u32> = 3..=20;

/// A host file the attack would create through `../` from a host cwd.
struct Marker(PathBuf);

impl Marker {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        let _ = std::fs::remove_file(&path);
        Marker(path)
    }

    /// The shell line that prints the host's hostname and creates the
    /// marker if the cwd lies in the host.
    fn attack(&self) -> String {
        let up = "../".repeat(16);
        format!(
            "cat {up}etc/hostname; touch {up}{}",
            self.0.strip_prefix("/").unwrap().display()
        )
    }

    fn assert_absent(&self, what: &str) {
        assert!(!self.0.exists(), "{what}: the container reached the host");
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn set_process(b: &mut TestBundle, cwd: &str, args: Value) {
    b.edit(|c| {
        c["process"]["cwd"] = json!(cwd);
        c["process"]["args"] = args;
    });
}

#[test]
fn run_with_a_cwd_of_a_leaked_fd_is_refused() {
    let marker = Marker::new("leak-run");
    let mut b = TestBundle::new("leak-run");
    for n in FDS {
        set_process(
            &mut b,
            &format!("/proc/self/fd/{n}"),
            json!(["sh", "-c", marker.attack()]),
        );
        let (code, stdout, stderr) = b.run();
        assert_ne!(code, 0, "fd {n}: the process started: {stdout}");
        assert!(stderr.contains("cwd"), "fd {n}: {stderr}");
        marker.assert_absent(&format!("run, fd {n}"));
        b.assert_no_state();
    }
}

#[test]
fn create_with_a_cwd_of_a_leaked_fd_is_refused() {
    let marker = Marker::new("leak-create");
    let mut b = TestBundle::new("leak-create");
    for n in FDS {
        set_process(
            &mut b,
            &format!("/proc/self/fd/{n}"),
            json!(["sh", "-c", marker.attack()]),
        );
        let out = Out::from(b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]));
        assert_ne!(out.code, 0, "fd {n}: create succeeded");
        assert!(out.stderr.contains("cwd"), "fd {n}: {}", out.stderr);
        // Nothing to start: the container was never made.
        let start = Out::from(b.cmd(&["start", &b.id]));
        assert_ne!(start.code, 0, "fd {n}: start succeeded");
        marker.assert_absent(&format!("create+start, fd {n}"));
        b.assert_no_state();
        assert_no_process(&b.id);
    }
}

#[test]
fn exec_with_a_cwd_of_a_leaked_fd_is_refused() {
    let marker = Marker::new("leak-exec");
    let mut b = TestBundle::new("leak-exec");
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let attack = marker.attack();
    for n in FDS {
        let cwd = format!("/proc/self/fd/{n}");
        let out = Out::from(b.cmd(&["exec", "--cwd", &cwd, &b.id, "sh", "-c", &attack]));
        assert_ne!(
            out.code, 0,
            "fd {n}: the exec'd process started: {}",
            out.stdout
        );
        assert!(out.stderr.contains("cwd"), "fd {n}: {}", out.stderr);
        marker.assert_absent(&format!("exec, fd {n}"));
    }
    // The container itself is unharmed.
    assert_eq!(b.state()["status"], "running");
    b.delete_and_check(true);
}

/// The fd number the host's busybox is leaked at.
const LEAKED: i32 = 20;

/// `hull ARGS...` of `b`, called with the host's busybox open at fd
/// [`LEAKED`] (not close-on-exec, not among the preserved fds), as a
/// careless caller or a runtime bug would leave it.
fn with_a_leaked_host_binary(b: &TestBundle, args: &[&str]) -> Out {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let busybox = std::fs::File::open("/bin/busybox").expect("the host's busybox");
    let fd = busybox.as_raw_fd();
    let mut cmd = b.hull();
    cmd.args(args);
    // SAFETY: dup2 is async-signal-safe; the copy is not close-on-exec.
    unsafe {
        cmd.pre_exec(move || match libc::dup2(fd, LEAKED) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    Out::from(output_via_files(&mut cmd))
}

/// Whether the host's busybox ran: invoked as `/proc/self/fd/20` it finds
/// no applet of that name and says so.
fn host_binary_ran(out: &Out) -> bool {
    out.stdout.contains("applet not found") || out.stderr.contains("applet not found")
}

#[test]
fn an_executable_named_by_a_leaked_fd_is_never_run() {
    let exe = format!("/proc/self/fd/{LEAKED}");
    let mut b = TestBundle::new("leak-argv0");
    b.args(&[&exe]);
    let dir = b.dir.to_str().unwrap().to_owned();
    let out = with_a_leaked_host_binary(&b, &["run", "--bundle", &dir, &b.id]);
    assert!(
        !host_binary_ran(&out),
        "run: the host's binary ran: {}",
        out.stderr
    );
    assert_ne!(out.code, 0, "run: {exe} ran: {}", out.stdout);
    b.assert_no_state();

    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let out = with_a_leaked_host_binary(&b, &["exec", &b.id, &exe]);
    assert!(
        !host_binary_ran(&out),
        "exec: the host's binary ran: {}",
        out.stderr
    );
    assert_ne!(out.code, 0, "exec: {exe} ran: {}", out.stdout);
    b.delete_and_check(true);
}

/// The fds open in the container's process, from `ls -l /proc/self/fd`
/// run as the process itself: number → target, without the one `ls` reads
/// the directory through.
fn fds_of(listing: &str) -> Vec<(u32, String)> {
    listing
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let n = left.rsplit(' ').next()?.parse().ok()?;
            Some((n, target.to_owned()))
        })
        .filter(|(n, target)| !(*n >= 3 && target.starts_with("/proc/") && target.ends_with("/fd")))
        .collect()
}

fn assert_only_stdio(listing: &str, what: &str) {
    let fds = fds_of(listing);
    assert!(
        fds.iter().all(|(n, _)| *n <= 2),
        "{what}: the runtime's fds reached the container: {fds:?}\n{listing}"
    );
    assert!(!fds.is_empty(), "{what}: no listing: {listing}");
}

#[test]
fn the_container_s_processes_hold_only_their_stdio() {
    let mut b = TestBundle::new("leak-none");
    b.args(&["ls", "-l", "/proc/self/fd"]);
    let listing = b.run_ok();
    assert_only_stdio(&listing, "run");

    b.args(&["sleep", "60"]);
    b.detached(&["create"]);
    let start = b.cmd(&["start", &b.id]);
    assert!(start.status.success(), "start: {}", text(&start.stderr));
    let out = Out::from(b.cmd(&["exec", &b.id, "ls", "-l", "/proc/self/fd"]));
    assert_only_stdio(out.ok(), "exec");
    let init = Out::from(b.cmd(&["exec", &b.id, "ls", "-l", "/proc/1/fd"]));
    let init_fds = fds_of(init.ok());
    assert!(
        init_fds.iter().all(|(n, _)| *n <= 2),
        "create+start: the init holds runtime fds: {init_fds:?}"
    );
    b.delete_and_check(true);
}

/// A hook that writes the fds it holds to `dir/<stage>`.
fn fd_listing_hook(dir: &Path, stage: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("ls -l /proc/self/fd > {}/{stage}", dir.display())]
    })
}

#[test]
fn hooks_hold_only_their_stdio() {
    let mut b = TestBundle::new("leak-hooks");
    let out_dir = b.dir.join("hook-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let host_dir = out_dir.clone();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out",
            "type": "bind",
            "source": host_dir.to_str().unwrap(),
            "options": ["rbind", "rw"]
        }));
        c["hooks"] = json!({
            "createRuntime": [fd_listing_hook(&host_dir, "createRuntime")],
            "createContainer": [fd_listing_hook(&host_dir, "createContainer")],
            // Run by the init after pivot_root: the container's view.
            "startContainer": [fd_listing_hook(Path::new("/out"), "startContainer")],
            "poststart": [fd_listing_hook(&host_dir, "poststart")],
        });
    });
    b.args(&["true"]);
    let _ = b.run_ok();
    for stage in [
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ] {
        let listing = std::fs::read_to_string(out_dir.join(stage))
            .unwrap_or_else(|e| panic!("{stage} hook left no listing: {e}"));
        // The hook's stdout is redirected to the listing file itself.
        let fds = fds_of(&listing);
        assert!(
            fds.iter().all(|(n, _)| *n <= 2),
            "{stage} hook holds the runtime's fds: {fds:?}"
        );
    }
}
