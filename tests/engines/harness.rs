//! What every engine's test needs: commands with a deadline, a private
//! daemon started and stopped, cgroup and network look-ups, and the checks
//! that an engine left nothing behind once it stopped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hull_tests::{text, Out};

/// Runs `cmd` (stdin from /dev/null, output through files: an engine's CLI
/// may leave a helper holding a pipe) and kills it after `secs` seconds.
pub fn run_for(cmd: &mut Command, secs: u64) -> Out {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base =
        std::env::temp_dir().join(format!("hull-test-engine-out-{}-{n}", std::process::id()));
    let (out, err) = (base.with_extension("stdout"), base.with_extension("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {secs}s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let take = |p: &Path| {
        let bytes = std::fs::read(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        text(&bytes)
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: take(&out),
        stderr: take(&err),
    }
}

/// The hull binary the engines run (`$HULL` or target/debug/hull, see
/// `hull_tests::hull_bin`) as an absolute path, a relative `$HULL` taken
/// from the workspace root: engines run it from directories of their own.
pub fn hull() -> PathBuf {
    let bin = hull_tests::workspace().join(hull_tests::hull_bin());
    std::fs::canonicalize(&bin).unwrap_or_else(|e| panic!("hull binary {}: {e}", bin.display()))
}

/// Runs a host tool (ip, iptables, umount ...) and returns its output.
pub fn host(prog: &str, args: &[&str]) -> Out {
    run_for(Command::new(prog).args(args), 60)
}

/// The path of an installed engine binary; fails, naming the package, when
/// it is missing (a missing engine is a failure, not a skip).
pub fn engine_bin(path: &str, package: &str) -> PathBuf {
    assert!(
        Path::new(path).exists(),
        "{path} missing: install Debian's {package} (scripts/deps.sh does)"
    );
    PathBuf::from(path)
}

/// A private name for one engine's resources in this test run:
/// `hull-test-<engine>-<pid>`.
pub fn private_name(engine: &str) -> String {
    hull_tests::unique(engine)
}

/// A network interface name (at most 15 bytes) unique to this run:
/// `hull-test-<tag><pid in hex>`.
pub fn ifname(tag: char) -> String {
    format!("hull-test-{tag}{:04x}", std::process::id() & 0xffff)
}

/// The /24 subnet number `k` of this test run: `10.(240+k).(pid % 256).0`.
/// Engines get their own (0: Docker's default bridge, 1: its
/// docker_gwbridge, 2: its user network, 3: Podman's network, 4: CRI's),
/// and two runs at once (in two worktrees) most likely differ.
pub fn subnet(k: u8) -> String {
    format!("{}.0/24", subnet_prefix(k))
}

/// Address `.n` in [`subnet`] `k`.
pub fn subnet_addr(k: u8, n: u8) -> String {
    format!("{}.{n}", subnet_prefix(k))
}

fn subnet_prefix(k: u8) -> String {
    format!("10.{}.{}", 240 + u32::from(k), std::process::id() % 256)
}

/// A UDP port in `range` free on all addresses when asked (Swarm's data
/// path port must be below the ephemeral range), from a start that depends
/// on the pid so that parallel runs do not all try the same.
pub fn free_udp_port(range: std::ops::Range<u16>) -> u16 {
    let span = range.end - range.start;
    let start = (std::process::id() % u32::from(span)) as u16;
    (0..span)
        .map(|i| range.start + (start + i) % span)
        .find(|p| std::net::UdpSocket::bind(("0.0.0.0", *p)).is_ok())
        .expect("a free UDP port")
}

/// The body of `GET /` (busybox httpd's index.html) on 127.0.0.1:`port`,
/// retried for up to 20s.
pub fn http_get(port: u16) -> String {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut last = String::new();
    let ok = hull_tests::net::wait_until(20, || match hull_tests::net::try_get(addr) {
        Ok(body) => {
            last = body;
            true
        }
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(ok, "GET {addr}: {last}");
    assert!(
        last.starts_with("HTTP/1.0 200") || last.starts_with("HTTP/1.1 200"),
        "{last}"
    );
    let (_, body) = last
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body: {last:?}"));
    body.to_owned()
}

/// Waits up to `secs` seconds for `cond`; panics naming `what`.
pub fn wait(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {secs}s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An engine daemon we started, with its output in a log file.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `log`, then waits up to 60s for `ready`.
    pub fn start(cmd: &mut Command, log: PathBuf, ready: impl FnMut() -> bool) -> Self {
        let out = File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let mut d = Daemon {
            child: Some(child),
            log,
        };
        let mut ready = ready;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready() {
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{cmd:?} exited ({status}): {}", d.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "{cmd:?} not ready: {}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, then waits up to 60s for a clean exit (asserted).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Daemons exit 0 on SIGTERM, or die of it.
                assert!(
                    status.success() || status.code().is_none(),
                    "daemon exited {status}: {}",
                    self.log_tail()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("daemon ignored SIGTERM for 60s: {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Daemon {
    /// Like [`Daemon::stop`] without asserting anything (for cleanup after
    /// a failure): SIGTERM, up to 30s, then SIGKILL.
    pub fn stop_quietly(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Mount points (from /proc/self/mountinfo) under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut hits: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    hits.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    hits
}

/// Unmounts everything under `dir` (what an engine keeps mounted for itself
/// after it stops: its data root's private bind, its default netns file).
pub fn unmount_all(dir: &Path) {
    for m in mounts_under(dir) {
        host("umount", &["-l", m.to_str().unwrap()]);
    }
}

/// The cgroup directories named `name` at the top of each v1 hierarchy (and
/// of the cgroup2 mount).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(name))
        .filter(|p| p.exists())
        .collect()
}

/// The directories below `dir` (not `dir` itself), deepest first.
pub fn subdirs_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                all.push(e.path());
                todo.push(e.path());
            }
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    all
}

/// Asserts the cgroup parent `name` holds no container's cgroup any more in
/// any hierarchy, then removes the (empty) parent itself.
pub fn assert_cgroup_parent_empty(name: &str) {
    for dir in cgroup_dirs(name) {
        let children: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            children.is_empty(),
            "cgroups left under {}: {children:?}",
            dir.display()
        );
        std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
    }
}

/// Nothing on the host mentions any of `names` any more: no process,
/// mount, cgroup, network interface or iptables rule.
pub fn assert_nothing_left(names: &[&str]) {
    let links = host("ip", &["-o", "link", "show"]).stdout;
    let rules: Vec<String> = ["filter", "nat"]
        .iter()
        .map(|t| host("iptables", &["-t", t, "-S"]).stdout)
        .collect();
    for name in names {
        hull_tests::assert_no_process(name);
        hull_tests::assert_no_mount(name);
        let cgroups = cgroup_dirs(name);
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        let left: Vec<&str> = links.lines().filter(|l| l.contains(name)).collect();
        assert!(left.is_empty(), "links left: {left:?}");
        for table in &rules {
            let left: Vec<&str> = table.lines().filter(|l| l.contains(name)).collect();
            assert!(left.is_empty(), "iptables rules left: {left:?}");
        }
    }
}

/// The iptables chains (filter and nat) whose name contains `needle`.
pub fn chains_named(needle: &str) -> Vec<String> {
    ["filter", "nat"]
        .iter()
        .flat_map(|t| {
            host("iptables", &["-t", t, "-S"])
                .stdout
                .lines()
                .filter(|l| l.starts_with("-N ") && l.contains(needle))
                .map(|l| format!("{t}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Network interfaces whose master is `bridge` (the veths of its containers).
pub fn ports_of(bridge: &str) -> Vec<String> {
    let out = host("ip", &["-o", "link", "show", "master", bridge]);
    out.stdout
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_owned())
        .collect()
}

/// A bridge made for an engine, deleted again when dropped (also when the
/// engine's start fails half-way).
pub struct OwnedBridge(String);

impl OwnedBridge {
    /// Creates bridge `name` with address `cidr`, up.
    pub fn create(name: &str, cidr: &str) -> Self {
        host("ip", &["link", "add", name, "type", "bridge"]).ok();
        let bridge = OwnedBridge(name.to_owned());
        host("ip", &["addr", "add", cidr, "dev", name]).ok();
        host("ip", &["link", "set", name, "up"]).ok();
        bridge
    }
}

impl Drop for OwnedBridge {
    fn drop(&mut self) {
        del_link(&self.0);
    }
}

/// `ip link del` of `ifname` if it exists (a bridge we created).
pub fn del_link(ifname: &str) {
    let _ = host("ip", &["link", "del", ifname]);
}

/// The directory of `pid`'s cgroup in the v1 hierarchy `controller`.
pub fn cgroup_of(pid: &str, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup for {pid}: {text}"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
}

/// The trimmed content of a cgroup file.
pub fn read_cgroup(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_owned()
}

/// Times `runs` calls of `f` and returns (mean, min, max) in milliseconds.
pub fn time_runs(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = ms.iter().sum::<f64>() / runs as f64;
    let min = ms.iter().cloned().fold(f64::MAX, f64::min);
    let max = ms.iter().cloned().fold(0.0, f64::max);
    (mean, min, max)
}

/// Splits an `iptables -S` rule into arguments (quoted comments kept whole).
pub fn iptables_args(rule: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in rule.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        args.push(cur);
    }
    args
}

/// The netns files in /run/netns (the fixed directory where Podman and
/// CRI put their containers' network namespaces) whose names start with
/// `prefix`: each engine's own (`netns-` Podman's, `cni-` containerd's),
/// so engines tested at once do not see each other's.
pub fn netns_files(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
