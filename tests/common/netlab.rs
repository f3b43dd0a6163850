//! The lab of the networking tests: a test's network state (`Net`), its
//! containers (`Ctr`), network namespaces standing in for other hosts
//! (`Sandbox`, `Uplink`), probes of links and namespaces, and the guards
//! that remove all of it, also when a test fails.

use crate::net::*;
use crate::*;
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether the host link `name` exists (sysfs shows the host's
/// namespace; see [`link_in_netns`] for a lab's).
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether link `name` exists in the calling thread's network namespace
/// (`/sys/class/net` shows the namespace sysfs was mounted in, not this).
pub fn link_in_netns(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Runs `ip ARGS` (or any tool); panics on failure.
pub fn sh(prog: &str, args: &[&str]) {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        text(&out.stderr)
    );
}

/// Deletes link `name` of the calling thread's network namespace if it
/// exists (only names this file made).
pub fn del_link(name: &str) {
    let _ = Command::new("ip")
        .args(["link", "del", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The interfaces of the network namespace of process `pid`.
pub fn netns_links(pid: i32) -> Vec<String> {
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    let mut v: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_owned())
        .collect();
    v.sort();
    v
}

/// The host-side veth name hull gives a container's eth0 (bridge's FNV-1a
/// naming), to check that no such link exists for a container that was
/// never attached or failed to attach.
pub fn veth_name(container: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in container.bytes().chain([0]).chain(*b"eth0") {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("vhull{h:08x}")
}

/// Runs `f` on a thread that has joined the network namespace `ns`
/// (`/proc/PID/ns/net`); sockets it opens live there.
pub fn in_netns<T: Send + 'static>(
    ns: PathBuf,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    std::thread::spawn(move || {
        let file = File::open(&ns).unwrap_or_else(|e| panic!("open {}: {e}", ns.display()));
        // SAFETY: setns on a file descriptor we own; it changes only this
        // thread's network namespace, and the thread ends with `f`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns {}: {}",
            ns.display(),
            std::io::Error::last_os_error()
        );
        f()
    })
}

/// Listens on `addr` in network namespace `ns` (returns once it does) and
/// accepts one connection within 30s: its peer and the first line it sent.
pub fn accept_one(ns: PathBuf, addr: SocketAddr) -> JoinHandle<Option<(SocketAddr, String)>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = in_netns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match l.accept() {
                Ok((mut s, peer)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut got = Vec::new();
                    let mut buf = [0u8; 256];
                    while !got.contains(&b'\n') {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                        }
                    }
                    return Some((peer, text(&got)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    ready_rx.recv().expect("the server thread failed to listen");
    server
}

// ---------------------------------------------------------------- guards

/// A test's network state: its `--net-root`, `--net-table` and (unless it
/// is the default network) its network `tNN-<pid mod 100000>` on
/// 10.250.NN.0/24 (or the /24 a test file chose with [`Net::on`]).
/// Dropping it removes whatever is left: veths of leftover attachments, the
/// network, its bridge, the nf_tables table and the state directory.
pub struct Net {
    pub n: u8,
    pub root: PathBuf,
    pub table: String,
    pub name: String,
    pub bridge: String,
    /// The first three octets of the network's IPv4 /24.
    pub prefix: [u8; 3],
}

impl Net {
    /// The state of test `test` (letters and digits) number `n`, on
    /// 10.250.`n`.0/24; creates nothing yet.
    pub fn new(test: &str, n: u8) -> Self {
        Self::on(test, n, [10, 250, n])
    }

    /// Like [`Net::new`], on the /24 `prefix`.0 (a test file's own range,
    /// so that its networks never overlap another file's).
    pub fn on(test: &str, n: u8, prefix: [u8; 3]) -> Self {
        let pid = std::process::id();
        let net = Self {
            n,
            root: PathBuf::from(format!("/tmp/hull-test-net-{test}-{pid}")),
            table: format!("hull_test_{test}_{pid}"),
            // Short enough that the bridge is `hull-<name>` (IFNAMSIZ).
            name: format!("t{n:02}-{:05}", pid % 100_000),
            bridge: format!("hull-t{n:02}-{:05}", pid % 100_000),
            prefix,
        };
        net.clean();
        net
    }

    /// Test `test`'s state for hull's default network ("hull", bridge
    /// `hull0`). The caller holds [`Hull0Lock`] and has checked that hull0
    /// does not exist.
    pub fn default_network(test: &str, n: u8) -> Self {
        let pid = std::process::id();
        let net = Self {
            n,
            root: PathBuf::from(format!("/tmp/hull-test-net-{test}-{pid}")),
            table: format!("hull_test_{test}_{pid}"),
            name: "hull".into(),
            bridge: "hull0".into(),
            prefix: [10, 250, n],
        };
        net.clean();
        net
    }

    /// `hull network create --subnet 10.250.n.0/24 NAME`.
    pub fn create(&self) {
        self.create_with(&[]);
    }

    /// `hull network create --subnet 10.250.n.0/24 --subnet fd42:n::/64 NAME`.
    pub fn create_dual_stack(&self) {
        self.create_with(&["--subnet", &format!("fd42:{}::/64", self.n)]);
    }

    /// `hull network create --subnet <subnet> EXTRA… NAME`; asserts success.
    pub fn create_with(&self, extra: &[&str]) {
        let subnet = self.subnet();
        let args = ["network", "create", "--subnet", &subnet];
        let out = self.cmd(&[&args[..], extra, &[&self.name]].concat());
        assert!(
            out.status.success(),
            "network create: {}",
            text(&out.stderr)
        );
    }

    /// The network's IPv4 subnet, `a.b.c.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}.0/24", self.prefix_str())
    }

    /// The first three octets of the subnet as text, `a.b.c`.
    pub fn prefix_str(&self) -> String {
        let [a, b, c] = self.prefix;
        format!("{a}.{b}.{c}")
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.inspect()["network"]["gateway"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// `--net-root R --net-table T` on `c`.
    pub fn flags<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.arg("--net-root")
            .arg(&self.root)
            .arg("--net-table")
            .arg(&self.table)
    }

    /// `hull --net-root … --net-table … ARGS` (a network command), its
    /// output through files (a resolver it starts keeps what it inherits).
    pub fn cmd(&self, args: &[&str]) -> Output {
        output_via_files(self.flags(&mut Command::new(hull_bin())).args(args))
    }

    /// `hull --root … --net-root … --net-table …` for bundle `b`.
    pub fn hull(&self, b: &TestBundle) -> Command {
        let mut c = b.hull();
        self.flags(&mut c);
        c
    }

    /// `hull network inspect NAME` parsed.
    pub fn inspect(&self) -> Value {
        let out = self.cmd(&["network", "inspect", &self.name]);
        assert!(
            out.status.success(),
            "network inspect: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The attachment of container `id`, from `network inspect`.
    pub fn attachment(&self, id: &str) -> Value {
        let all = self.inspect();
        all["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["container"] == id)
            .unwrap_or_else(|| panic!("{id} not attached: {all:#}"))
            .clone()
    }

    /// Container `id`'s address on the network.
    pub fn ip(&self, id: &str) -> Ipv4Addr {
        self.attachment(id)["ip"].as_str().unwrap().parse().unwrap()
    }

    /// The resolver's pid, as `network inspect` reports it (None: not running).
    pub fn resolver(&self) -> Option<i32> {
        let dns = &self.inspect()["dns"];
        dns["running"]
            .as_bool()
            .unwrap()
            .then(|| dns["pid"].as_i64().unwrap() as i32)
    }

    /// Asserts that the resolver `pid` is gone (within 5 s) and left no
    /// pid file and no socket on the gateway (`prefix`.1:53).
    pub fn assert_resolver_gone(&self, pid: i32, why: &str) {
        assert!(
            wait_until(5, || !alive(pid)),
            "{why}: the resolver {pid} is left"
        );
        let pid_file = self.root.join("dns").join(&self.name).join("resolver.pid");
        assert!(!pid_file.exists(), "{why}: its pid file is left");
        assert_eq!(self.resolver(), None, "{why}");
        let gw53 = format!("{}.1:53", self.prefix_str());
        for proto in ["-lnu", "-lnt"] {
            let ss = Command::new("ss").arg(proto).output().unwrap();
            assert!(
                !text(&ss.stdout).contains(&gw53),
                "{why}: a socket is left on {gw53} ({proto})"
            );
        }
    }

    /// The leased addresses (files named by an address) of the network.
    pub fn leases(&self) -> Vec<String> {
        self.dir_names(&self.root.join("leases").join(&self.name))
            .into_iter()
            .filter(|n| n.parse::<Ipv4Addr>().is_ok())
            .collect()
    }

    /// The leases of the network: (address, the container holding it).
    pub fn lease_owners(&self) -> Vec<(String, String)> {
        let dir = self.root.join("leases").join(&self.name);
        self.leases()
            .into_iter()
            .map(|ip| {
                let owner = std::fs::read_to_string(dir.join(&ip)).unwrap_or_default();
                (ip, owner)
            })
            .collect()
    }

    /// The attachment records in the state directory.
    pub fn attachment_files(&self) -> Vec<String> {
        self.dir_names(&self.root.join("attachments"))
    }

    pub fn dir_names(&self, dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The ports enslaved to the network's bridge.
    pub fn bridge_ports(&self) -> Vec<String> {
        self.dir_names(&Path::new("/sys/class/net").join(&self.bridge).join("brif"))
    }

    /// `nft list table ip TABLE` as text, or "" without the table.
    pub fn ruleset(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &self.table])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// `nft -j list table ip TABLE`, or None if there is no such table.
    pub fn nft(&self) -> Option<Value> {
        self.nft_family("ip")
    }

    /// `nft -j list table FAMILY TABLE`, or None if there is no such table.
    pub fn nft_family(&self, family: &str) -> Option<Value> {
        let out = Command::new("nft")
            .args(["-j", "list", "table", family, &self.table])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// How many elements the maps of the test's table hold (None: no table).
    pub fn map_elements(&self) -> Option<usize> {
        self.map_elements_in("ip")
    }

    /// [`Net::map_elements`] of the table of `family` (`ip` or `ip6`).
    pub fn map_elements_in(&self, family: &str) -> Option<usize> {
        let v = self.nft_family(family)?;
        Some(
            v["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| o.get("map"))
                .map(|m| m["elem"].as_array().map_or(0, Vec::len))
                .sum(),
        )
    }

    /// A container `hull-test-<name>-<pid>` whose hull calls use this state.
    pub fn ctr(&self, name: &str) -> Ctr {
        Ctr {
            b: TestBundle::new(name),
            net_root: self.root.clone(),
            net_table: self.table.clone(),
        }
    }

    /// Removes everything the test's hull calls may have left.
    pub fn clean(&self) {
        assert!(self
            .root
            .to_string_lossy()
            .starts_with("/tmp/hull-test-net-"));
        assert!(self.table.starts_with("hull_test_"));
        // Veths of attachments left behind by a failing test.
        if let Ok(d) = std::fs::read_dir(self.root.join("attachments")) {
            for e in d.filter_map(|e| e.ok()) {
                let att: Option<Value> = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(v) = att.as_ref().and_then(|a| a["host_veth"].as_str()) {
                    if v.starts_with("vhull") {
                        del_link(v);
                    }
                }
            }
        }
        for net in self.dir_names(&self.root.join("networks")) {
            if let Some(name) = net.strip_suffix(".json") {
                let _ = self.cmd(&["network", "rm", name]);
            }
        }
        del_link(&self.bridge);
        for family in ["ip", "ip6"] {
            if self.nft_family(family).is_some() {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, &self.table])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        clean_up("the test network's state", || self.clean());
    }
}

/// A test bundle whose hull calls carry its test's `--net-root` and
/// `--net-table`; `delete --force` with them when dropped (before the
/// bundle's own cleanup).
pub struct Ctr {
    pub b: TestBundle,
    pub net_root: PathBuf,
    pub net_table: String,
}

impl Deref for Ctr {
    type Target = TestBundle;
    fn deref(&self) -> &TestBundle {
        &self.b
    }
}

impl DerefMut for Ctr {
    fn deref_mut(&mut self) -> &mut TestBundle {
        &mut self.b
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        clean_up("hull delete --force", || {
            let _ = self.hull_cmd(&["delete", "--force", &self.b.id]);
        });
    }
}

impl Ctr {
    /// `hull --root … --net-root … --net-table …`.
    pub fn hull_net(&self) -> Command {
        let mut c = self.b.hull();
        c.arg("--net-root")
            .arg(&self.net_root)
            .arg("--net-table")
            .arg(&self.net_table);
        c
    }

    pub fn hull_cmd(&self, args: &[&str]) -> Output {
        self.hull_net()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `hull SUB --bundle DIR OPTS… ID` with stdio in files of the
    /// bundle (a container holds on to what it inherits), killing it after
    /// 60s; (exit code, stdout, stderr).
    pub fn launch(&self, sub: &[&str], opts: &[&str], log: &str) -> (i32, String, String) {
        let out_path = self.dir.join(format!("{log}.out"));
        let err_path = self.dir.join(format!("{log}.err"));
        let mut child = self
            .hull_net()
            .args(sub)
            .arg("--bundle")
            .arg(&self.dir)
            .args(opts)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let mut status = None;
        wait_until(60, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hull {sub:?} {opts:?} {} did not finish in 60s", self.id);
        };
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default(),
        )
    }

    /// `hull run -d … OPTS ID`; Err(stderr) if it fails.
    pub fn try_run_detached(&self, opts: &[&str]) -> Result<(), String> {
        match self.launch(&["run", "-d"], opts, "run-d") {
            (0, _, _) => Ok(()),
            (code, _, err) => Err(format!("exit {code}: {err}")),
        }
    }

    pub fn run_detached(&self, opts: &[&str]) {
        self.try_run_detached(opts)
            .unwrap_or_else(|e| panic!("run -d {} failed: {e}", self.id));
    }

    /// `hull run … OPTS ID` in the foreground: (exit code, stdout, stderr).
    pub fn run_fg(&self, opts: &[&str]) -> (i32, String, String) {
        self.launch(&["run"], opts, "run")
    }

    /// The container's init pid, from `hull state`.
    pub fn pid(&self) -> i32 {
        let out = self.hull_cmd(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }

    /// `hull delete [--force] ID`, asserting exit 0.
    pub fn delete(&self, force: bool) {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(&self.id);
        let out = self.hull_cmd(&args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            text(&out.stderr)
        );
    }
}

/// A network namespace of its own, held by a `sleep` we started with
/// `unshare --net` (killed on drop, which ends the namespace and every
/// link, address and nf_tables table in it).
pub struct Sandbox {
    pub child: Child,
}

// A sandbox starts a process: not a default value.
#[allow(clippy::new_without_default)]
impl Sandbox {
    pub fn new() -> Self {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let sandbox = Self { child };
        // unshare(2) happens after the spawn: wait for the new netns.
        let ns = sandbox.netns();
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert!(
            wait_until(10, || std::fs::read_link(&ns).is_ok_and(|l| l != ours)),
            "unshare --net did not make a netns"
        );
        sandbox
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.child.id()))
    }

    /// Runs `ip ARGS` inside; panics on failure.
    pub fn ip(&self, args: &[&str]) {
        let pid = self.pid();
        sh("nsenter", &[&["-t", &pid, "-n", "ip"], args].concat());
    }

    /// What `ip ARGS` prints inside.
    pub fn ip_output(&self, args: &[&str]) -> String {
        let pid = self.pid();
        let out = Command::new("nsenter")
            .args([&["-t", &pid, "-n", "ip"], args].concat())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `body` on a thread in a [`Sandbox`] of its own (whose namespace
/// it is given, lo up), the "host" of the test: a dual-stack network turns
/// on IPv6 forwarding, which must not happen in the real host's namespace.
/// Processes it starts (hull, a resolver, plugins, containers) are born
/// there.
pub fn in_lab(body: fn(PathBuf)) {
    let lab = Sandbox::new();
    let ns = lab.netns();
    let run = in_netns(lab.netns(), move || {
        sh("ip", &["link", "set", "lo", "up"]);
        body(ns)
    });
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Another "host": a [`Sandbox`] joined to this one by veth `hulltestupN`
/// (10.249.N.1 here, 10.249.N.2 there). Dropping it removes the veth and
/// the sandbox.
pub struct Uplink {
    pub sandbox: Sandbox,
    pub host_if: String,
    pub here: Ipv4Addr,
    pub there: Ipv4Addr,
}

impl Uplink {
    pub fn new(n: u8) -> Self {
        let host_if = format!("hulltestup{n}");
        let peer_if = format!("hulltestpe{n}");
        del_link(&host_if);
        let up = Self {
            sandbox: Sandbox::new(),
            host_if: host_if.clone(),
            here: Ipv4Addr::new(10, 249, n, 1),
            there: Ipv4Addr::new(10, 249, n, 2),
        };
        let pid = up.sandbox.pid();
        sh(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns", &pid,
            ],
        );
        sh(
            "ip",
            &["addr", "add", &format!("{}/24", up.here), "dev", &host_if],
        );
        sh("ip", &["link", "set", &host_if, "up"]);
        let there = format!("{}/24", up.there);
        up.sandbox.ip(&["addr", "add", &there, "dev", &peer_if]);
        up.sandbox.ip(&["link", "set", &peer_if, "up"]);
        up.sandbox.ip(&["link", "set", "lo", "up"]);
        up
    }

    pub fn netns(&self) -> PathBuf {
        self.sandbox.netns()
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        clean_up("the uplink veth", || del_link(&self.host_if));
    }
}

/// Serializes the tests that use the host-global bridge name `hull0`.
pub struct Hull0Lock {
    pub _flock: Flock<File>,
}

impl Hull0Lock {
    pub fn take() -> Self {
        let f = File::create("/tmp/hull-test-hull0.lock").unwrap();
        let flock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("lock /tmp/hull-test-hull0.lock");
        Self { _flock: flock }
    }
}
