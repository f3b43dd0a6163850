//! Test harness: the hull binary, the fixture bundle, per-test bundles and
//! state roots (all named `hull-test-*`), removed again when a test ends.

pub mod cni;
pub mod net;
pub mod netlab;
pub mod strace;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The hull binary under test: `$HULL`, else `target/debug/hull`.
pub fn hull_bin() -> PathBuf {
    std::env::var_os("HULL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/debug/hull"))
}

/// The fixture bundle (busybox rootfs + `hull spec` config), built once.
///
/// It lives in [`fixture_dir`], outside the workspace, because a container's
/// mapped root and the rootless tests' unprivileged user must reach it: a
/// clone under a private home (`/root` is 0700) is out of their reach.
pub fn fixture() -> &'static Path {
    static FIXTURE: OnceLock<PathBuf> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = fixture_dir();
        check_fixture_owner(&dir);
        if !dir.join("config.json").exists() {
            let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
            let status = Command::new(workspace().join("fixtures/make-bundle.sh"))
                .arg(&tmp)
                .arg(hull_bin())
                .stdout(Stdio::null())
                .status()
                .expect("run fixtures/make-bundle.sh");
            assert!(status.success(), "fixture build failed");
            // Another test process may have won the race; either copy is fine.
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        dir
    })
}

/// Where [`fixture`] lives: `$HULL_TEST_FIXTURE`, else
/// `<temp dir>/hull-test-fixture-<hash>`, the hash being the first 16 hex
/// digits of the SHA-256 of the workspace's path (as `scripts/test.sh`
/// computes it), so two clones never share one.
pub fn fixture_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HULL_TEST_FIXTURE") {
        return PathBuf::from(dir);
    }
    let mut sha = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    {
        use std::io::Write;
        use std::os::unix::ffi::OsStrExt;
        let mut stdin = sha.stdin.take().unwrap();
        stdin.write_all(workspace().as_os_str().as_bytes()).unwrap();
    }
    let out = sha.wait_with_output().expect("sha256sum");
    assert!(out.status.success(), "sha256sum failed");
    let hash = text(&out.stdout[..16]);
    std::env::temp_dir().join(format!("hull-test-fixture-{hash}"))
}

/// The fixture directory, if it exists, must be ours and writable by no one
/// else: it sits in a world-writable temp dir, and its rootfs is what every
/// container runs.
fn check_fixture_owner(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    let ours = meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw();
    assert!(
        ours && meta.mode() & 0o022 == 0,
        "{} is not a directory of ours writable only by us (uid {}, mode {:o}): remove it",
        dir.display(),
        meta.uid(),
        meta.mode() & 0o7777
    );
}

/// A unique name for a test resource: `hull-test-<name>-<pid>`.
pub fn unique(name: &str) -> String {
    format!("hull-test-{name}-{}", std::process::id())
}

/// A scratch bundle with its own config.json and state root. The rootfs is
/// the shared fixture's unless [`TestBundle::own_rootfs`] copies it.
pub struct TestBundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub id: String,
    pub config: Value,
    /// The hull binary [`TestBundle::hull`] runs (default [`hull_bin`]).
    pub bin: PathBuf,
    /// The uid and gid [`TestBundle::hull`] runs hull as, when not root's
    /// (with no supplementary groups).
    pub user: Option<(u32, u32)>,
}

impl TestBundle {
    pub fn new(name: &str) -> Self {
        Self::new_in(name, &std::env::temp_dir())
    }

    /// Like [`TestBundle::new`], with the bundle and state root under `base`.
    pub fn new_in(name: &str, base: &Path) -> Self {
        let id = unique(name);
        let dir = base.join(format!("{id}-bundle"));
        let root = base.join(format!("{id}-state"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string(fixture().join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["root"]["path"] = Value::from(fixture().join("rootfs").to_str().unwrap());
        config["root"]["readonly"] = Value::from(true);
        let b = Self {
            dir,
            root,
            id,
            config,
            bin: hull_bin(),
            user: None,
        };
        b.save();
        b
    }

    /// Gives this bundle a private, writable copy of the rootfs.
    pub fn own_rootfs(&mut self) -> PathBuf {
        let rootfs = self.dir.join("rootfs");
        let ok = Command::new("cp")
            .args(["-a"])
            .arg(fixture().join("rootfs"))
            .arg(&rootfs)
            .status()
            .unwrap()
            .success();
        assert!(ok, "copy rootfs");
        self.config["root"]["path"] = Value::from("rootfs");
        self.config["root"]["readonly"] = Value::from(false);
        self.save();
        rootfs
    }

    /// The rootfs directory this bundle uses.
    pub fn rootfs(&self) -> PathBuf {
        let p = PathBuf::from(self.config["root"]["path"].as_str().unwrap());
        if p.is_absolute() {
            p
        } else {
            self.dir.join(p)
        }
    }

    /// Sets `process.args` and writes config.json.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = Value::from(args.to_vec());
        self.save();
        self
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Edits the config with `f` and writes it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// A `hull --root <root>` command.
    pub fn hull(&self) -> Command {
        let mut c = self.hull_without_root();
        c.arg("--root").arg(&self.root);
        c
    }

    /// A `hull` command with hull's default state root.
    pub fn hull_without_root(&self) -> Command {
        let mut c = Command::new(&self.bin);
        if let Some((uid, gid)) = self.user {
            // std drops the supplementary groups too when root sets a uid.
            std::os::unix::process::CommandExt::uid(&mut c, uid);
            std::os::unix::process::CommandExt::gid(&mut c, gid);
        }
        c
    }

    /// Runs `hull --root <root> ARGS...` and captures its output (through
    /// files: see [`output_via_files`]).
    pub fn cmd(&self, args: &[&str]) -> Output {
        output_via_files(self.hull().args(args))
    }

    /// `hull run` of this bundle in the foreground; returns (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let out = self.cmd(&["run", "--bundle", self.dir.to_str().unwrap(), &self.id]);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Like [`TestBundle::run`] but asserts success and returns stdout.
    pub fn run_ok(&self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "run failed: stdout={out} stderr={err}");
        out
    }

    /// `hull create`; asserts success. Output goes to files: the created init
    /// inherits hull's stdio and would keep a pipe open until it exits.
    pub fn create(&self) {
        let log = self.dir.join("create.log");
        let status = self
            .hull()
            .args(["create", "--bundle", self.dir.to_str().unwrap(), &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "create failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Where a detached container's stdout and stderr go (see [`TestBundle::detached`]).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("detached.log")
    }

    /// `hull ARGS... --bundle DIR ID` for a container that outlives the call
    /// (`create`, `run -d`); asserts success. Its stdio goes to
    /// [`TestBundle::log_path`]: a pipe of ours would be held open by the container.
    pub fn detached(&self, args: &[&str]) {
        let out = std::fs::File::create(self.log_path()).unwrap();
        let status = self
            .hull()
            .args(args)
            .arg("--bundle")
            .arg(&self.dir)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        assert!(status.success(), "hull {args:?} failed: {}", self.log());
    }

    /// Starts `hull --root <root> ARGS... --bundle DIR ID` quietly (see
    /// [`spawn_quiet`]).
    pub fn start_quiet(&self, args: &[&str]) -> Child {
        spawn_quiet(
            self.hull()
                .args(args)
                .arg("--bundle")
                .arg(&self.dir)
                .arg(&self.id),
        )
    }

    /// What the detached container has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The container's init pid from `hull state`.
    pub fn init_pid(&self) -> i32 {
        let pid = self.state()["pid"].as_i64().unwrap();
        assert!(pid > 0, "no init pid");
        pid as i32
    }

    /// `hull delete [--force]`, then checks that no state or process of the
    /// container is left.
    pub fn delete_and_check(&self, force: bool) {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(&self.id);
        let out = self.cmd(&args);
        assert!(out.status.success(), "delete: {}", text(&out.stderr));
        self.assert_no_state();
        assert_no_process(&self.id);
    }

    /// `hull state` parsed.
    pub fn state(&self) -> Value {
        let out = self.cmd(&["state", &self.id]);
        assert!(out.status.success(), "state failed: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The state root holds no container any more (hull's `.cache` of
    /// compiled seccomp filters is not container state).
    pub fn assert_no_state(&self) {
        let left = state_left(&self.root);
        assert!(left.is_empty(), "state left behind: {left:?}");
    }
}

impl Drop for TestBundle {
    fn drop(&mut self) {
        match try_output_via_files(self.hull().args(["delete", "--force", &self.id])) {
            Ok(out) if !out.status.success() && !text(&out.stderr).contains("does not exist") => {
                eprintln!(
                    "clean-up: hull delete --force {}: {}",
                    self.id,
                    text(&out.stderr).trim()
                );
            }
            Ok(_) => {}
            Err(e) => eprintln!("clean-up: cannot run {}: {e}", self.bin.display()),
        }
        let _ = std::fs::remove_dir_all(&self.root);
        // Unmount anything a failing test may have left under the bundle first.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("clean-up: remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// A TCP port on 127.0.0.1 nothing listens on when asked (for a server the
/// test starts; nothing else here picks ports from the kernel's ephemeral
/// range on purpose).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// What the state root `root` holds but hull's `.cache` (compiled seccomp
/// filters, not container state): what containers left. Empty when `root`
/// does not exist.
pub fn state_left(root: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".cache")
        .collect()
}

/// Runs `cmd` with stdin from /dev/null and stdout and stderr captured
/// through temporary files, not pipes: a container's process inherits hull's
/// stdio (as with runc), so a pipe would stay open as long as it runs.
pub fn output_via_files(cmd: &mut Command) -> Output {
    try_output_via_files(cmd).unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

/// Starts `cmd` with stdin from /dev/null and its output thrown away: a
/// process the test stops itself (a hull killed part-way, a server), whose
/// output nobody reads (a pipe would be held open by a container's init).
pub fn spawn_quiet(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `cmd` with `input` on its stdin (then closed) and its output
/// captured through pipes: for a command that starts no container, such as
/// `update --resources -`.
pub fn output_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// [`output_via_files`] that returns the error of a command that could not
/// be started (not found, not executable) instead of panicking.
pub fn try_output_via_files(cmd: &mut Command) -> std::io::Result<Output> {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("hull-test-out-{}-{n}", std::process::id()));
    let (out, err) = (base.with_extension("stdout"), base.with_extension("stderr"));
    let take = |p: &Path| {
        let bytes = std::fs::read(p);
        let _ = std::fs::remove_file(p);
        bytes
    };
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .status();
    let (stdout, stderr) = (take(&out), take(&err));
    Ok(Output {
        status: status?,
        stdout: stdout?,
        stderr: stderr?,
    })
}

/// Runs a clean-up step of a `Drop`: a failure is logged to stderr and the
/// clean-up goes on. A panic here while the test is already failing would
/// abort the whole test binary and hide its other tests' results.
pub fn clean_up(what: &str, step: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).is_err() {
        eprintln!("clean-up: {what} failed (see the message above); going on");
    }
}

/// Fails the test, with what to do, unless `program` is installed:
/// `scripts/deps.sh --check` answers from the same list `scripts/deps.sh`
/// installs.
pub fn require(program: &str) {
    let out = Command::new(workspace().join("scripts/deps.sh"))
        .args(["--check", program])
        .output()
        .expect("run scripts/deps.sh --check");
    assert!(
        out.status.success(),
        "{program} is needed: {}",
        text(&out.stderr).trim()
    );
}

/// What a finished `hull` command left: exit code, stdout, stderr.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts exit 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout={} stderr={}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts exit 1 with `needle` on stderr and nothing on stdout.
    pub fn fails_with(&self, needle: &str) {
        assert_eq!(
            self.code, 1,
            "expected exit 1; stdout={} stderr={}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr {:?} lacks {needle:?}",
            self.stderr
        );
        assert_eq!(self.stdout, "", "stdout of a failure");
    }
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Self {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: text(&o.stdout),
            stderr: text(&o.stderr),
        }
    }
}

/// `hull --root <root> ARGS...` of bundle `b`, its output as an [`Out`].
pub fn hull(b: &TestBundle, args: &[&str]) -> Out {
    Out::from(b.cmd(args))
}

/// `b`'s directory, as the argument of `--bundle`.
pub fn bundle_arg(b: &TestBundle) -> &str {
    b.dir.to_str().unwrap()
}

/// Polls `hull state` (up to 20s) until it reports `status`; returns that
/// state.
pub fn wait_status(b: &TestBundle, status: &str) -> Value {
    let last = std::cell::RefCell::new(Value::Null);
    wait_for(
        || format!("{} to be {status}; last state: {}", b.id, last.borrow()),
        || {
            let out = hull(b, &["state", &b.id]);
            if out.code == 0 {
                *last.borrow_mut() = serde_json::from_str(&out.stdout).unwrap();
            }
            last.borrow()["status"] == status
        },
    );
    last.into_inner()
}

/// Waits (up to 20s) until `hull state` says stopped.
pub fn wait_stopped(b: &TestBundle) {
    wait_status(b, "stopped");
}

/// Whether process `pid` exists and is neither a zombie nor dead.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Every directory under /sys/fs/cgroup (twelve levels deep at most) whose
/// name is `name`.
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    cgroup_dirs_where(&|n| n == name)
}

/// Every directory under /sys/fs/cgroup (twelve levels deep at most) whose
/// name mentions `needle`.
pub fn cgroup_dirs_mentioning(needle: &str) -> Vec<PathBuf> {
    cgroup_dirs_where(&|n| n.contains(needle))
}

/// No cgroup directory's name mentions `needle` (a container's id).
pub fn assert_no_cgroup(needle: &str) {
    let left = cgroup_dirs_mentioning(needle);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// The cgroup directories whose names satisfy `wanted`; below a match the
/// walk does not go on.
fn cgroup_dirs_where(wanted: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: u32, wanted: &dyn Fn(&str) -> bool, hits: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if wanted(&e.file_name().to_string_lossy()) {
                hits.push(e.path());
            } else if depth > 0 {
                walk(&e.path(), depth - 1, wanted, hits);
            }
        }
    }
    let mut hits = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 12, wanted, &mut hits);
    hits
}

/// `chown -R uid:uid path` (a rootless test's bundle or runtime dir).
pub fn chown_r(path: &Path, uid: u32) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown {}", path.display());
}

/// Waits (up to 20s) until `cond` holds, else panics with `what()`.
pub fn wait_for(what: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: {}",
            what()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Lossy UTF-8 of command output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// No process whose command line mentions `needle` exists (a leaked init).
pub fn assert_no_process(needle: &str) {
    let left = processes_mentioning(needle);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Whether no process but this one mentions `needle` in its command line.
pub fn no_process(needle: &str) -> bool {
    processes_mentioning(needle).is_empty()
}

/// The processes but this one whose command line mentions `needle`: (pid,
/// command line with spaces for NULs).
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// No mount of the host mentions `needle`.
pub fn assert_no_mount(needle: &str) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let hits: Vec<&str> = info.lines().filter(|l| l.contains(needle)).collect();
    assert!(hits.is_empty(), "mounts left behind: {hits:?}");
}

/// Receives one fd sent with SCM_RIGHTS on `stream` (a console socket's
/// pty master).
pub fn recv_fd(stream: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    recv_master(stream).0
}

/// `hull create --console-socket SOCK --bundle DIR ID` of `b`, SOCK being
/// where `listener` is bound, asserted to succeed: the pty master hull sent
/// there, with its name (see [`recv_master`]).
pub fn create_with_console(
    b: &TestBundle,
    listener: &std::os::unix::net::UnixListener,
) -> (std::os::fd::OwnedFd, String) {
    let addr = listener.local_addr().unwrap();
    let sock = addr.as_pathname().unwrap().to_str().unwrap();
    let out = b.cmd(&[
        "create",
        "--console-socket",
        sock,
        "--bundle",
        b.dir.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let (stream, _) = listener.accept().unwrap();
    recv_master(&stream)
}

/// The pty master a `--console-socket` receives, with the name hull sends
/// beside it.
pub fn recv_master(stream: &std::os::unix::net::UnixStream) -> (std::os::fd::OwnedFd, String) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg on the console socket");
    let len = msg.bytes;
    let mut fd = None;
    for cmsg in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            assert_eq!(fds.len(), 1, "expected one fd, got {fds:?}");
            // SAFETY: the fd was just received and belongs to nobody else.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let fd = fd.expect("no SCM_RIGHTS message on the console socket");
    (fd, String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// The CRIU binary the checkpoint tests run: `$HULL_TEST_CRIU`, else the
/// shared build beside the workspace (CRIU 4.1 or newer is needed on this
/// kernel); fails the test, saying so, if there is none.
pub fn criu() -> PathBuf {
    // `$HULL_TEST_CRIU`, else the shared build in `shared/tools/criu` beside
    // the clone or beside one of its parents.
    let beside = |dir: &Path| dir.join("shared/tools/criu/bin/criu");
    let path = std::env::var_os("HULL_TEST_CRIU")
        .map(PathBuf::from)
        .or_else(|| {
            workspace()
                .ancestors()
                .skip(1)
                .map(beside)
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| beside(&workspace().join("..")));
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
