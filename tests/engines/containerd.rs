//! containerd 1.6 (Debian's containerd) driving hull through `ctr` and
//! containerd-shim-runc-v2: a private containerd with its own config.toml,
//! root, state and sockets; the shim runs hull (`--runc-binary`, the
//! runtime option `BinaryName`) with a private runtime root
//! (`--runc-root`), and each container gets a cgroup under a private parent.
//!
//! Outside CRI, containerd has no configured runtime binary: the client
//! passes the runtime options with each container, as `ctr` does here.

use std::path::{Path, PathBuf};
use std::process::Command;

use hull_tests::Out;

use crate::harness::{self, Daemon};

const IMAGE: &str = "hull-test-busybox:latest";

struct Containerd {
    /// `hull-test-containerd-<pid>`: namespace, cgroup parent, directories.
    name: String,
    /// Root (content, snapshots), config.toml and the image archive.
    dir: PathBuf,
    /// State and sockets.
    state: PathBuf,
    daemon: Daemon,
}

impl Containerd {
    fn start() -> Self {
        let bin = harness::engine_bin("/usr/bin/containerd", "containerd");
        harness::engine_bin("/usr/bin/ctr", "containerd");
        harness::engine_bin("/usr/bin/containerd-shim-runc-v2", "containerd");
        let name = harness::private_name("containerd");
        let dir = std::env::temp_dir().join(&name);
        let state = PathBuf::from("/run").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        // CRI is left out here: it would start a CNI setup of its own.
        let config = format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{state}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{state}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n",
            root = dir.join("root").display(),
            state = state.display(),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(dir.join("config.toml"));
        let sock = state.join("containerd.sock");
        let daemon = Daemon::start(&mut cmd, dir.join("containerd.log"), || sock.exists());
        let c = Containerd {
            name,
            dir,
            state,
            daemon,
        };
        let archive = crate::image::oci_archive(&c.dir, IMAGE, &["sh"]);
        c.ok(&["image", "import", archive.to_str().unwrap()]);
        c
    }

    /// `ctr ARGS...` in this containerd's namespace (killed after 120s).
    fn ctr(&self, args: &[&str]) -> Out {
        harness::run_for(self.ctr_cmd("ctr").args(args), 120)
    }

    fn ctr_cmd(&self, prog: &str) -> Command {
        let mut cmd = Command::new(prog);
        cmd.env("CONTAINERD_ADDRESS", self.state.join("containerd.sock"))
            .env("CONTAINERD_NAMESPACE", &self.name);
        cmd
    }

    /// `ctr ARGS...`, asserted to exit 0; its trimmed stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert_eq!(
            out.code,
            0,
            "ctr {args:?}: stdout={} stderr={}\ncontainerd: {}",
            out.stdout,
            out.stderr,
            self.daemon.log_tail()
        );
        out.stdout.trim().to_owned()
    }

    /// The `ctr run` options that make the shim run hull, with a private
    /// runtime root and cgroup.
    fn run_args(&self, id: &str) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            harness::hull().display().to_string(),
            "--runc-root".into(),
            self.runtime_root().display().to_string(),
            "--cgroup".into(),
            format!("/{}/{id}", self.name),
        ]
    }

    fn runtime_root(&self) -> PathBuf {
        self.state.join("hull")
    }

    /// `ctr run [--rm] OPTIONS IMAGE ID ARGS...`.
    fn run(&self, opts: &[&str], id: &str, args: &[&str]) -> Out {
        let mut all: Vec<String> = vec!["run".into()];
        all.extend(opts.iter().map(|s| s.to_string()));
        all.extend(self.run_args(id));
        all.extend([IMAGE.to_string(), id.to_string()]);
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.ctr(&refs)
    }

    /// The status column of `ctr task ls` for `id`.
    fn status(&self, id: &str) -> String {
        let list = self.ok(&["task", "ls"]);
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_owned()
    }

    /// No task or container left, then stops containerd and asserts that
    /// it left nothing behind.
    fn stop_and_check(mut self) {
        assert_eq!(self.ok(&["task", "ls", "-q"]), "", "tasks left");
        assert_eq!(self.ok(&["container", "ls", "-q"]), "", "containers left");
        let states = entries(&self.runtime_root().join(&self.name));
        assert!(states.is_empty(), "hull state left: {states:?}");
        self.daemon.stop();
        let left: Vec<_> = harness::mounts_under(&self.dir)
            .into_iter()
            .chain(harness::mounts_under(&self.state))
            .collect();
        assert!(left.is_empty(), "mounts left: {left:?}");
        harness::assert_cgroup_parent_empty(&self.name);
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_dir_all(&self.dir);
        harness::assert_nothing_left(&[&self.name]);
    }
}

impl Drop for Containerd {
    /// After a failed check: kill and delete what is left (best effort).
    fn drop(&mut self) {
        if !self.state.exists() {
            return;
        }
        for id in self
            .ctr(&["container", "ls", "-q"])
            .stdout
            .split_whitespace()
        {
            let _ = self.ctr(&["task", "kill", "--all", "--signal", "SIGKILL", id]);
            std::thread::sleep(std::time::Duration::from_millis(300));
            let _ = self.ctr(&["task", "delete", "--force", id]);
            let _ = self.ctr(&["container", "delete", id]);
        }
        self.daemon.stop_quietly();
        harness::unmount_all(&self.dir);
        harness::unmount_all(&self.state);
        for dir in harness::cgroup_dirs(&self.name) {
            for child in entries(&dir) {
                let _ = std::fs::remove_dir(dir.join(child));
            }
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The names of the directories in `dir`, sorted (none if it is missing).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn containerd() {
    let c = Containerd::start();
    one_shot(&c);
    terminal(&c);
    detached(&c);
    c.stop_and_check();
}

/// `ctr run --rm`: output and exit codes through the shim.
fn one_shot(c: &Containerd) {
    let out = c.run(
        &["--rm"],
        "hull-test-once",
        &["sh", "-c", "echo hello; exit 3"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (3, "hello\n"),
        "{}",
        out.stderr
    );
    let out = c.run(&["--rm"], "hull-test-true", &["/bin/true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A start error: ctr fails (exit 1) with the runtime's message.
    let out = c.run(&["--rm"], "hull-test-nosuch", &["nosuch"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    assert_eq!(
        c.ok(&["container", "ls", "-q"]),
        "",
        "--rm left a container"
    );
}

/// `ctr run -t`: the process gets a pty (ctr needs a terminal itself, so
/// it runs under `script`).
fn terminal(c: &Containerd) {
    let mut line = vec!["ctr".to_string(), "run".into(), "--rm".into(), "-t".into()];
    line.extend(c.run_args("hull-test-tty"));
    line.extend([IMAGE.into(), "hull-test-tty".into()]);
    line.extend(["sh".into(), "-c".into(), "tty; exit 4".into()]);
    // One shell line for `script -c`: every word quoted, as the hull
    // binary's path may hold a space.
    let line: Vec<String> = line
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let mut cmd = c.ctr_cmd("script");
    cmd.args(["-qec", &line.join(" "), "/dev/null"]);
    let out = harness::run_for(&mut cmd, 60);
    assert_eq!(out.code, 4, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("/dev/pts/"),
        "ctr run -t: {:?}",
        out.stdout
    );
}

/// A detached task: exec (exit codes), ps, pause/resume (the freezer),
/// metrics (its cgroup), kill --all, delete.
fn detached(c: &Containerd) {
    let id = "hull-test-bg";
    let out = c.run(&["-d"], id, &["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(c.status(id), "RUNNING");

    assert_eq!(
        c.ctr(&["task", "exec", "--exec-id", "e0", id, "true"]).code,
        0
    );
    assert_eq!(
        c.ctr(&["task", "exec", "--exec-id", "e1", id, "sh", "-c", "exit 5"])
            .code,
        5
    );
    let out = c.ctr(&["task", "exec", "--exec-id", "e2", id, "nosuch"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e3",
        id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(
        out.stdout.contains(&format!("/{}/{id}", c.name)),
        "exec outside the cgroup: {}",
        out.stdout
    );

    // The init and its two sleeps.
    let ps = c.ok(&["task", "ps", id]);
    assert_eq!(ps.lines().skip(1).count(), 3, "task ps: {ps}");

    let pids = PathBuf::from("/sys/fs/cgroup/pids").join(&c.name).join(id);
    let freezer = PathBuf::from("/sys/fs/cgroup/freezer")
        .join(&c.name)
        .join(id);
    c.ok(&["task", "pause", id]);
    assert_eq!(c.status(id), "PAUSED");
    assert_eq!(harness::read_cgroup(&freezer, "freezer.state"), "FROZEN");
    c.ok(&["task", "resume", id]);
    assert_eq!(c.status(id), "RUNNING");
    assert_eq!(harness::read_cgroup(&freezer, "freezer.state"), "THAWED");

    let metrics = c.ok(&["task", "metrics", id]);
    let current = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pids.current"))
        .unwrap_or_else(|| panic!("no pids.current in {metrics}"));
    assert_eq!(current.trim(), "3", "{metrics}");
    assert_eq!(harness::read_cgroup(&pids, "pids.current"), "3");

    // kill --all reaches every process of the container: SIGTERM alone
    // would leave the init (a shell as pid 1 ignores it), but the sleeps die
    // of it and the init's `wait` returns.
    c.ok(&["task", "kill", "--all", id]);
    harness::wait(20, "the task stopped", || c.status(id) == "STOPPED");
    assert_eq!(harness::read_cgroup(&pids, "pids.current"), "0");
    c.ok(&["task", "delete", id]);
    c.ok(&["container", "delete", id]);
    assert!(!pids.exists(), "cgroup left: {}", pids.display());
}
