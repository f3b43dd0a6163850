//! VXLAN overlay networks across hosts, coordinated through etcd.
//!
//! The lab: an "underlay" network namespace holding a bridge of the test's
//! own and a private etcd listening on it (10.247.0.254:2379), and three
//! network namespaces as hosts A, B and C (10.247.0.1-3), each joined to
//! the bridge by a veth pair and running hull with its own `--root`,
//! `--net-root` and `--net-table`. Nothing of it is in the machine's own
//! network namespace, so labs of parallel tests cannot collide; killing the
//! namespaces' holders (and the agents, by the pids they record) removes it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hull_tests::net::*;
use hull_tests::netlab::*;
use hull_tests::strace::{changes_host, kill_points, killing_at, logging, strace};
use hull_tests::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const RANGE: &str = "10.250.0.0/16";
const STORE: &str = "etcd://10.247.0.254:2379";
const ETCD_ADDR: &str = "10.247.0.254";
const VNI: u32 = 4242;
const NET: &str = "ovl";

// ---------------------------------------------------------------- the lab

/// The underlay, its etcd and the hosts.
struct Lab {
    dir: PathBuf,
    hosts: Vec<Host>,
    etcd: Option<Child>,
    underlay: Sandbox,
}

/// A host: a network namespace with hull state of its own.
struct Host {
    name: &'static str,
    sandbox: Sandbox,
    root: PathBuf,
    net_root: PathBuf,
    table: String,
    containers: Vec<TestBundle>,
}

impl Lab {
    fn new(test: &str) -> Self {
        require("etcd");
        require("etcdctl");
        let dir = PathBuf::from(format!("/tmp/hull-test-ovl-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let underlay = Sandbox::new();
        underlay.ip(&["link", "add", "hull-test-ul", "type", "bridge"]);
        underlay.ip(&[
            "addr",
            "add",
            &format!("{ETCD_ADDR}/24"),
            "dev",
            "hull-test-ul",
        ]);
        underlay.ip(&["link", "set", "hull-test-ul", "up"]);
        underlay.ip(&["link", "set", "lo", "up"]);
        let mut lab = Self {
            dir,
            hosts: Vec::new(),
            etcd: None,
            underlay,
        };
        lab.etcd = Some(lab.start_etcd());
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            lab.add_host(name, i as u8 + 1);
        }
        lab
    }

    fn start_etcd(&self) -> Child {
        let url = format!("http://{ETCD_ADDR}:2379");
        let log = std::fs::File::create(self.dir.join("etcd.log")).unwrap();
        let child = Command::new("nsenter")
            .args(["-t", &self.underlay.pid(), "-n", "etcd"])
            .args(["--name", "hull-test", "--data-dir"])
            .arg(self.dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let up = wait_until(20, || self.etcdctl(&["endpoint", "health"]).is_ok());
        assert!(up, "etcd did not start: {}", self.etcd_log());
        child
    }

    fn etcd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// `etcdctl ARGS` against the lab's etcd: stdout, or stderr as the error.
    fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("nsenter")
            .args(["-t", &self.underlay.pid(), "-n", "etcdctl"])
            .args([
                "--endpoints",
                &format!("{ETCD_ADDR}:2379"),
                "--dial-timeout",
                "2s",
            ])
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(text(&out.stderr))
        }
    }

    /// The store's keys under `/hull/`.
    fn keys(&self) -> Vec<String> {
        let out = self
            .etcdctl(&["get", "--prefix", "--keys-only", "/hull/"])
            .unwrap();
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn add_host(&mut self, name: &'static str, n: u8) {
        let sandbox = Sandbox::new();
        let end = format!("hull-test-{name}");
        let ul = self.underlay.pid();
        sh(
            "nsenter",
            &[
                "-t",
                &ul,
                "-n",
                "ip",
                "link",
                "add",
                &end,
                "type",
                "veth",
                "peer",
                "name",
                "eth1",
                "netns",
                &sandbox.pid(),
            ],
        );
        self.underlay
            .ip(&["link", "set", &end, "master", "hull-test-ul", "up"]);
        let addr = Ipv4Addr::new(10, 247, 0, n);
        sandbox.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth1"]);
        sandbox.ip(&["link", "set", "eth1", "up"]);
        sandbox.ip(&["link", "set", "lo", "up"]);
        let dir = self.dir.join(name);
        self.hosts.push(Host {
            name,
            sandbox,
            root: dir.join("root"),
            net_root: dir.join("net"),
            table: format!("hull_test_ovl_{name}"),
            containers: Vec::new(),
        });
    }

    fn host(&mut self, name: &str) -> &mut Host {
        self.hosts.iter_mut().find(|h| h.name == name).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            clean_up("a host of the lab", || h.clean());
        }
        if let Some(mut etcd) = self.etcd.take() {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Host {
    /// `hull --root … --net-root … --net-table … ARGS` inside the host.
    fn hull(&self, args: &[&str]) -> Out {
        output_via_files(&mut self.inside(&self.hull_cmd(args))).into()
    }

    /// `hull --root … --net-root … --net-table … ARGS`, to be run inside
    /// the host (by [`Host::inside`], traced or not).
    fn hull_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(hull_bin());
        c.arg("--root")
            .arg(&self.root)
            .arg("--net-root")
            .arg(&self.net_root)
            .arg("--net-table")
            .arg(&self.table)
            .args(args);
        c
    }

    /// `cmd` run in the host's network namespace.
    fn inside(&self, cmd: &Command) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.sandbox.pid(), "-n"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c
    }

    /// `network create --driver vxlan` of the lab's network, with `extra`.
    fn create(&self, extra: &[&str]) -> Out {
        let vni = VNI.to_string();
        let args = [
            "network", "create", "--driver", "vxlan", "--subnet", RANGE, "--vni", &vni, "--store",
            STORE,
        ];
        self.hull(&[&args[..], extra, &[NET]].concat())
    }

    fn inspect(&self) -> Value {
        serde_json::from_str(self.hull(&["network", "inspect", NET]).ok()).unwrap()
    }

    /// What `ip ARGS` prints inside the host.
    fn ip(&self, args: &[&str]) -> String {
        self.sandbox.ip_output(args)
    }

    /// The routes, neighbour and FDB entries on the VXLAN device.
    fn tables(&self) -> String {
        let dev = format!("hullvx{VNI}");
        if !self.ip(&["-o", "link"]).contains(&dev) {
            return String::new();
        }
        let fdb = Command::new("nsenter")
            .args([
                "-t",
                &self.sandbox.pid(),
                "-n",
                "bridge",
                "fdb",
                "show",
                "dev",
                &dev,
            ])
            .output()
            .unwrap();
        format!(
            "{}{}{}",
            self.ip(&["route", "show", "dev", &dev]),
            self.ip(&["neigh", "show", "dev", &dev]),
            text(&fdb.stdout)
        )
    }

    /// A bundle of this host named `name`.
    fn bundle(&self, name: &str) -> TestBundle {
        let mut b = TestBundle::new(&format!("ovl-{}-{name}", self.name));
        b.root = self.root.clone();
        b
    }

    /// Runs a container of `script` detached on the network (with `opts`
    /// for `run`); its IP.
    fn run(&mut self, name: &str, script: &str, srv: bool, opts: &[&str]) -> Ipv4Addr {
        let mut b = self.bundle(name);
        if srv {
            // A writable /srv big enough for a 1 MiB page.
            b.edit(|c| {
                c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                    "destination": "/srv",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "nodev", "mode=755", "size=4m"]
                }))
            });
        }
        b.sh(script);
        self.run_bundle(b, opts)
    }

    /// Runs bundle `b` detached on the network (with `opts` for `run`);
    /// its IP.
    fn run_bundle(&mut self, b: TestBundle, opts: &[&str]) -> Ipv4Addr {
        let dir = b.dir.to_str().unwrap().to_owned();
        let id = b.id.clone();
        self.containers.push(b);
        let run = ["run", "-d", "--bundle", &dir, "--network", NET];
        self.hull(&[&run[..], opts, &[&id]].concat()).ok();
        let v: Value = serde_json::from_str(self.hull(&["network", "inspect", NET]).ok()).unwrap();
        let att = v["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["container"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not on the network: {v}"));
        att["ip"].as_str().unwrap().parse().unwrap()
    }

    /// Runs a container of `script` in the foreground: (exit code, output).
    fn run_fg(&mut self, name: &str, script: &str) -> (i32, String) {
        let mut b = TestBundle::new(&format!("ovl-{}-{name}", self.name));
        b.root = self.root.clone();
        b.sh(script);
        let dir = b.dir.to_str().unwrap().to_owned();
        let id = b.id.clone();
        self.containers.push(b);
        let out = self.hull(&["run", "--bundle", &dir, "--network", NET, &id]);
        (out.code, format!("{}{}", out.stdout, out.stderr))
    }

    /// `delete --force` of every container run here: the outputs.
    fn delete_containers(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.containers)
            .iter()
            .map(|b| self.hull(&["delete", "--force", &b.id]))
            .collect()
    }

    /// The agent's pid, as `network inspect` says.
    fn agent_pid(&self) -> Option<i32> {
        let v = self.inspect();
        v["overlay"]["agent"]["pid"].as_i64().map(|p| p as i32)
    }

    /// The pid of the `i`th container run here.
    fn container_pid(&self, i: usize) -> i64 {
        let id = &self.containers[i].id;
        let v: Value = serde_json::from_str(self.hull(&["state", id]).ok()).unwrap();
        v["pid"].as_i64().unwrap()
    }

    /// `sh -c SCRIPT` in the `i`th container run here: (exit code, output).
    fn exec(&self, i: usize, script: &str) -> (i32, String) {
        let id = &self.containers[i].id;
        let out = self.hull(&["exec", id, "sh", "-c", script]);
        (out.code, format!("{}{}", out.stdout, out.stderr))
    }

    /// RX and TX bytes of the VXLAN device.
    fn vxlan_bytes(&self) -> (u64, u64) {
        let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", self.sandbox.pid())).unwrap();
        let line = dev
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("hullvx{VNI}:")))
            .expect("no VXLAN device");
        let f: Vec<u64> = line
            .split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (f[0], f[8])
    }

    /// Nothing of the network is left on this host: no device, bridge,
    /// state or agent.
    fn assert_nothing_left(&self, why: &str) {
        let links = self.ip(&["-o", "link"]);
        assert!(
            !links.contains("hullvx") && !links.contains("hull-ovl"),
            "{why}: {links}"
        );
        let record = self.net_root.join("networks").join(format!("{NET}.json"));
        assert!(!record.exists(), "{why}: {} left", record.display());
        let dir = self.net_root.join("overlay").join(NET);
        assert!(!dir.exists(), "{why}: {} left", dir.display());
        assert!(
            !self.net_root.join("dns").join(NET).exists(),
            "{why}: DNS state left"
        );
        self.hull(&["network", "inspect", NET])
            .fails_with("does not exist");
        let root = self.net_root.to_str().unwrap().to_owned();
        wait_for(
            || format!("{why}: an agent of this host's network is left"),
            || agents_with(&root).is_empty(),
        );
    }

    fn clean(&mut self) {
        self.delete_containers();
        let _ = self.hull(&["network", "rm", NET]);
        // An agent left by a failed step holds the netns: by its pid file.
        let pid_file = self.net_root.join("overlay").join(NET).join("agent.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            if agent_running(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Whether `pid` is a hull network agent (not a reused pid).
fn agent_running(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| text(&c).contains("agent"))
        .unwrap_or(false)
}

/// The pids of hull agents whose command line holds `text` (a host's
/// `--net-root`).
fn agents_with(text: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = text_of(&c);
                c.contains(text) && c.contains("agent")
            })
        })
        .collect()
}

/// A command line's arguments joined by spaces.
fn text_of(cmdline: &[u8]) -> String {
    cmdline
        .split(|b| *b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

fn peers(v: &Value) -> Vec<Value> {
    v["overlay"]["peers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn all_programmed(v: &Value, n: usize) -> bool {
    let p = peers(v);
    p.len() == n && p.iter().all(|p| p["state"] == "programmed")
}

/// A host's node subnet, from `network inspect`.
fn node_subnet(h: &Host) -> String {
    h.inspect()["overlay"]["node_subnet"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The prefix of a node subnet's routes as `ip route` prints them.
fn route_to(subnet: &str) -> String {
    format!("{subnet} via {}", subnet.split('/').next().unwrap())
}

// ---------------------------------------------------------------- tests

/// Containers on host A and host C reach each other by address across the
/// overlay (ping from the host, a TCP transfer between containers, the
/// client's own address seen by the server), through the VXLAN devices;
/// a port published on C answers on C's underlay address;
/// a host that leaves is removed from the others' tables; an agent killed
/// and started again converges; after `network rm` on every host nothing
/// is left, here or in the store.
#[test]
fn containers_on_two_hosts_reach_each_other() {
    let mut lab = Lab::new("e2e");
    for h in ["a", "b", "c"] {
        lab.host(h).create(&[]).ok();
    }
    let (sa, sb, sc) = (
        node_subnet(lab.host("a")),
        node_subnet(lab.host("b")),
        node_subnet(lab.host("c")),
    );
    assert!(sa != sb && sb != sc && sa != sc, "{sa} {sb} {sc}");
    for s in [&sa, &sb, &sc] {
        assert!(s.starts_with("10.250.") && s.ends_with("/24"), "{s}");
    }
    // Every host's VTEP is in the store, with its underlay address.
    assert_eq!(lab.keys().len(), 4, "{:?}", lab.keys());
    for h in ["a", "b", "c"] {
        let host = lab.host(h);
        wait_for(
            || format!("{h}: {}", host.inspect()),
            || all_programmed(&host.inspect(), 2),
        );
    }
    let a = lab.host("a");
    let v = a.inspect();
    assert_eq!(v["overlay"]["underlay"], "10.247.0.1");
    assert_eq!(v["overlay"]["device"], format!("hullvx{VNI}"));
    let link = a.ip(&["-d", "link", "show", &format!("hullvx{VNI}")]);
    assert!(
        link.contains("mtu 1450"),
        "MTU is the uplink's − 50: {link}"
    );
    assert!(link.contains(&format!("vxlan id {VNI}")), "{link}");
    assert!(link.contains("nolearning"), "{link}");
    let tables = a.tables();
    for s in [&sb, &sc] {
        assert!(tables.contains(&route_to(s)), "route to {s}: {tables}");
        assert!(tables.contains("onlink"), "{tables}");
    }
    assert!(
        tables.contains("dst 10.247.0.2") && tables.contains("dst 10.247.0.3"),
        "{tables}"
    );
    assert!(tables.contains("PERMANENT"), "{tables}");

    // A web server on C with a 1 MiB page, and A's containers.
    let c = lab.host("c");
    let srv = c.run(
        "srv",
        "dd if=/dev/zero of=/srv/big bs=1024 count=1024 2>/dev/null && \
         echo hello-ovl > /srv/index.html && exec httpd -f -p 80 -h /srv",
        true,
        &["-p", "18080:80"],
    );
    assert!(sc.starts_with(&srv.to_string()[..7]), "{srv} in {sc}");
    let before_c = c.vxlan_bytes();
    let a = lab.host("a");
    let before_a = a.vxlan_bytes();
    let ping = Command::new("nsenter")
        .args([
            "-t",
            &a.sandbox.pid(),
            "-n",
            "busybox",
            "ping",
            "-c",
            "3",
            "-W",
            "2",
        ])
        .arg(srv.to_string())
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ping from host A to C's container: {}",
        text(&ping.stdout)
    );
    let (code, out) = a.run_fg("get", &fetch_script(srv, 80, "hello-ovl"));
    assert_eq!(code, 0, "A's container to C's: {out}");
    let (code, out) = a.run_fg(
        "big",
        &format!(
            "n=$(printf 'GET /big HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {srv} 80 | wc -c); \
             echo got $n; [ $n -gt 1048576 ]"
        ),
    );
    assert_eq!(code, 0, "1 MiB from C's container: {out}");
    let (after_a, after_c) = (a.vxlan_bytes(), lab.host("c").vxlan_bytes());
    assert!(
        after_a.0 - before_a.0 > 1_048_576,
        "A's VXLAN RX: {before_a:?} → {after_a:?}"
    );
    assert!(
        after_c.1 - before_c.1 > 1_048_576,
        "C's VXLAN TX: {before_c:?} → {after_c:?}"
    );

    // C's published port answers on C's underlay address, from host A.
    let a_ns = lab.host("a").sandbox.netns();
    let got = in_netns(a_ns, || http_get(sock(Ipv4Addr::new(10, 247, 0, 3), 18080)));
    let page = got
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("published port: {e}"));
    assert!(page.contains("hello-ovl"), "{page}");

    // Not masqueraded: C's container sees A's container's own address.
    let c_pid = {
        let c = lab.host("c");
        let id = c.containers[0].id.clone();
        let v: Value = serde_json::from_str(c.hull(&["state", &id]).ok()).unwrap();
        v["pid"].as_i64().unwrap()
    };
    let server = accept_one(
        PathBuf::from(format!("/proc/{c_pid}/ns/net")),
        sock(srv, 7777),
    );
    let (code, out) = lab
        .host("a")
        .run_fg("src", &format!("echo from-a | nc -w 5 {srv} 7777"));
    assert_eq!(code, 0, "{out}");
    let (peer, said) = server.join().unwrap().expect("no connection from A");
    assert_eq!(said.trim(), "from-a");
    let sa_net: Vec<&str> = sa.split('.').take(3).collect();
    assert!(
        peer.ip()
            .to_string()
            .starts_with(&format!("{}.", sa_net.join("."))),
        "the server saw {peer}, not an address of A's node subnet {sa}"
    );

    // B leaves: A and C drop its entries within seconds.
    lab.host("b").hull(&["network", "rm", NET]).ok();
    for h in ["a", "c"] {
        let host = lab.host(h);
        wait_for(
            || format!("{h} still has B: {}", host.tables()),
            || !host.tables().contains("10.247.0.2") && !host.tables().contains(&route_to(&sb)),
        );
        assert_eq!(peers(&host.inspect()).len(), 1);
    }

    // A's agent dies; its tables are damaged meanwhile and B comes back.
    let a = lab.host("a");
    let old = a.agent_pid().expect("A's agent runs");
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    assert!(wait_until(5, || !agent_running(old)));
    assert_eq!(a.inspect()["overlay"]["agent"]["running"], false);
    let dev = format!("hullvx{VNI}");
    a.sandbox.ip(&["route", "flush", "dev", &dev]);
    lab.host("b").create(&[]).ok();
    let sb2 = node_subnet(lab.host("b"));
    // A container run on A starts the agent again, which converges.
    let a = lab.host("a");
    a.run("again", "exec sleep 600", false, &[]);
    let new = a.agent_pid().expect("the agent was started again");
    assert_ne!(new, old);
    wait_for(
        || format!("A: {}", a.tables()),
        || {
            let t = a.tables();
            t.contains(&route_to(&sc))
                && t.contains(&route_to(&sb2))
                && t.contains("dst 10.247.0.2")
        },
    );
    let (code, out) = a.run_fg("get2", &fetch_script(srv, 80, "hello-ovl"));
    assert_eq!(code, 0, "after the agent's restart: {out}");

    // Everything goes.
    for h in ["a", "b", "c"] {
        let host = lab.host(h);
        for out in host.delete_containers() {
            out.ok();
        }
        host.hull(&["network", "rm", NET]).ok();
        let links = host.ip(&["-o", "link"]);
        assert!(
            !links.contains("hullvx") && !links.contains("hull-ovl"),
            "{h}: {links}"
        );
        let routes = host.ip(&["route"]);
        assert!(!routes.contains("10.250."), "{h}: {routes}");
        let neigh = host.ip(&["neigh"]);
        assert!(!neigh.contains("10.250."), "{h}: {neigh}");
        assert!(!host.net_root.join("overlay").join(NET).exists());
    }
    assert_eq!(lab.keys(), Vec::<String>::new(), "keys left in the store");
}

/// The bridge and the containers' veths of an overlay network get the VXLAN
/// device's MTU (the uplink's − 50), as flannel sets it: a datagram that
/// fills the container's MTU, sent with DF (don't fragment), crosses to a
/// container on another host whole, and one byte more is refused by the
/// sender's own stack (EMSGSIZE) instead of vanishing on the underlay.
#[test]
fn containers_get_the_vxlan_mtu() {
    let mut lab = Lab::new("mtu");
    for h in ["a", "c"] {
        lab.host(h).create(&[]).ok();
    }
    let a = lab.host("a");
    wait_for(|| a.tables(), || a.tables().contains("dst 10.247.0.3"));
    let c = lab.host("c");
    let srv = c.run("udp", "exec sleep 600", false, &[]);
    let c_ns = PathBuf::from(format!("/proc/{}/ns/net", c.container_pid(0)));
    let a = lab.host("a");
    a.run("mtu", "exec sleep 600", false, &[]);
    let a_ns = PathBuf::from(format!("/proc/{}/ns/net", a.container_pid(0)));
    let bridge = a.ip(&["-o", "link", "show", "type", "bridge"]);
    assert!(bridge.contains("mtu 1450"), "the bridge: {bridge}");
    let veth = a.ip(&["-o", "link", "show", "type", "veth"]);
    assert!(veth.contains("mtu 1450"), "the host's veth: {veth}");
    let (code, eth0) = a.exec(0, "cat /sys/class/net/eth0/mtu");
    assert_eq!((code, eth0.trim()), (0, "1450"), "the container's eth0");

    // 1450 − 20 (IP) − 8 (UDP): the largest datagram that fits.
    const FITS: usize = 1422;
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let server = in_netns(c_ns, move || {
        let s = std::net::UdpSocket::bind(sock(srv, 9999)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bound_tx.send(()).unwrap();
        let mut buf = [0u8; 4096];
        s.recv(&mut buf)
    });
    bound_rx.recv().unwrap();
    let client = in_netns(a_ns, move || {
        use std::os::fd::AsRawFd;
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let df = libc::IP_PMTUDISC_DO;
        // SAFETY: setsockopt on a socket we own, with an int option.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&df as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IP_MTU_DISCOVER");
        s.connect(sock(srv, 9999)).unwrap();
        let too_big = s.send(&[1u8; FITS + 1]).map_err(|e| e.raw_os_error());
        let fits = s.send(&[7u8; FITS]).map_err(|e| e.to_string());
        (too_big, fits)
    });
    let (too_big, fits) = client.join().unwrap();
    assert_eq!(too_big, Err(Some(libc::EMSGSIZE)), "one byte over the MTU");
    assert_eq!(fits, Ok(FITS));
    let got = server.join().unwrap();
    assert_eq!(
        got.map_err(|e| e.to_string()),
        Ok(FITS),
        "C's container got the full-sized datagram"
    );
}

/// The embedded DNS answers names of containers on every host of the
/// network: C's agent publishes C's container (id, alias) in the store on
/// C's lease, A's agent hands it to A's resolver, and a container on A
/// resolves it by name; once C's container is deleted, the name is gone
/// from the store and from A's answers within seconds.
#[test]
fn names_resolve_across_hosts() {
    let mut lab = Lab::new("dns");
    for h in ["a", "c"] {
        lab.host(h).create(&[]).ok();
    }
    let c = lab.host("c");
    let mut b = c.bundle("far");
    b.sh("exec sleep 600");
    b.edit(|cfg| cfg["annotations"] = serde_json::json!({"org.hull.dns.aliases": "faraway"}));
    let far_id = b.id.clone();
    let far = c.run_bundle(b, &[]);
    let a = lab.host("a");
    let near = a.run("near", "exec sleep 600", false, &[]);
    let lookup = |a: &Host, name: &str| a.exec(0, &format!("nslookup {name}"));
    for name in [
        far_id.clone(),
        format!("{far_id}.{NET}"),
        format!("faraway.{NET}"),
    ] {
        wait_for(
            || format!("{name} from A: {:?}", lookup(a, &name)),
            || lookup(a, &name).1.contains(&far.to_string()),
        );
    }
    // A's own container still answers, and C sees A's.
    let (code, out) = lookup(a, &a.containers[0].id.clone());
    assert!(code == 0 && out.contains(&near.to_string()), "{out}");
    let dns_keys = |lab: &Lab| -> Vec<String> {
        lab.keys()
            .into_iter()
            .filter(|k| k.contains("/dns/"))
            .collect()
    };
    // A's agent publishes its own container within its half-second check.
    wait_for(
        || format!("not both containers in the store: {:?}", lab.keys()),
        || dns_keys(&lab).len() == 2,
    );

    // C's container goes: within seconds, so does its name.
    let start = Instant::now();
    for out in lab.host("c").delete_containers() {
        out.ok();
    }
    let a = lab.host("a");
    wait_for(
        || format!("{far_id} still resolves on A: {:?}", lookup(a, &far_id)),
        || !lookup(a, &far_id).1.contains(&far.to_string()),
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    let (code, out) = lookup(a, &format!("faraway.{NET}"));
    assert!(code != 0 && !out.contains(&far.to_string()), "{out}");
    assert_eq!(dns_keys(&lab).len(), 1, "{:?}", lab.keys());

    for h in ["a", "c"] {
        let host = lab.host(h);
        for out in host.delete_containers() {
            out.ok();
        }
        host.hull(&["network", "rm", NET]).ok();
        host.assert_nothing_left("after rm");
    }
    assert_eq!(lab.keys(), Vec::<String>::new(), "keys left in the store");
}

/// The syscalls a kill point may be (those that change something: files,
/// netlink, the store's socket, the agent's start), as in the crash-safety
/// suite.
const CHANGES: &str = "openat,mkdir,write,writev,rename,linkat,unlink,unlinkat,\
sendmsg,sendto,clone,clone3";

/// `network create --driver vxlan` killed at every step that changes
/// something (strace fault injection: a traced run lists the
/// state-changing calls, then each is hit with SIGKILL in a run of its
/// own): `network ls` shows the driver, and the next `network rm` leaves
/// nothing, here or in the store (a lease the killed create got but never
/// recorded holds no key). The network can be made again afterwards.
#[test]
fn a_killed_create_leaves_nothing_rm_cannot_finish() {
    require("strace");
    let lab = Lab::new("kill");
    let a = &lab.hosts[0];
    let create = |strace_args: &[String]| {
        let vni = VNI.to_string();
        let hull = a.hull_cmd(&[
            "network", "create", "--driver", "vxlan", "--subnet", RANGE, "--vni", &vni, "--store",
            STORE, NET,
        ]);
        output_via_files(&mut a.inside(&strace(&hull, strace_args)))
    };
    let trace = lab.dir.join("trace");
    let out = create(&logging(&trace, CHANGES));
    assert!(out.status.success(), "traced run: {}", text(&out.stderr));
    let ls = a.hull(&["network", "ls"]).ok().to_owned();
    let row: Vec<&str> = ls
        .lines()
        .find(|l| l.starts_with(NET))
        .unwrap_or_else(|| panic!("{ls}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "vxlan", "{ls}");
    a.hull(&["network", "rm", NET]).ok();
    a.assert_nothing_left("untouched");
    let trace = std::fs::read_to_string(&trace).unwrap();
    let points = kill_points(&trace, changes_host);
    assert!(!points.is_empty(), "no kill point in:\n{trace}");
    eprintln!("{} kill points", points.len());
    for p in points {
        let why = format!("killed at {p}");
        let out = create(&killing_at(&p));
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(9),
            "{why}: {}: {}",
            out.status,
            text(&out.stderr)
        );
        let rm = a.hull(&["network", "rm", NET]);
        assert!(
            rm.code == 0 || rm.stderr.contains("does not exist"),
            "{why}: network rm: {}",
            rm.stderr
        );
        a.assert_nothing_left(&why);
        // A lease granted but not yet recorded holds no key; one the agent
        // took in a race with rm runs out within its TTL.
        let clean = wait_until(15, || lab.keys().is_empty());
        assert!(clean, "{why}: keys left: {:?}", lab.keys());
    }
    a.create(&[]).ok();
    a.hull(&["network", "rm", NET]).ok();
    a.assert_nothing_left("made again");
    assert_eq!(lab.keys(), Vec::<String>::new());
}

/// A host that dies (its agent killed, never started again) loses its
/// lease after the TTL: the others drop its entries and its subnet is free.
#[test]
fn a_dead_host_is_dropped_when_its_lease_runs_out() {
    let lab = Lab::new("dead");
    let (a, b) = (&lab.hosts[0], &lab.hosts[1]);
    a.create(&[]).ok();
    b.create(&[]).ok();
    wait_for(|| a.tables(), || a.tables().contains("dst 10.247.0.2"));
    let pid = b.agent_pid().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let start = Instant::now();
    let gone = wait_until(30, || !a.tables().contains("dst 10.247.0.2"));
    assert!(gone, "B's entries stayed on A: {}", a.tables());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "dropped before the TTL: {took:?}"
    );
    assert_eq!(
        lab.keys().len(),
        2,
        "A's subnet and the config: {:?}",
        lab.keys()
    );
}

/// Bad input: each a clear error, exit 1, and nothing left behind (no
/// device, bridge, state, agent or key in the store).
#[test]
fn bad_input_leaves_nothing() {
    let lab = Lab::new("bad");
    let (a, b, c) = (&lab.hosts[0], &lab.hosts[1], &lab.hosts[2]);
    let nothing_left = |h: &Host| h.assert_nothing_left("bad input");

    // A store nobody answers at.
    let start = Instant::now();
    let vni = VNI.to_string();
    let out = a.hull(&[
        "network",
        "create",
        "--driver",
        "vxlan",
        "--subnet",
        RANGE,
        "--vni",
        &vni,
        "--store",
        "etcd://10.247.0.250:2379",
        "--underlay",
        "10.247.0.1",
        NET,
    ]);
    out.fails_with("did not answer within 3s");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    nothing_left(a);

    // Missing or misplaced options.
    a.hull(&[
        "network", "create", "--driver", "vxlan", "--subnet", RANGE, NET,
    ])
    .fails_with("--store");
    a.hull(&["network", "create", "--vni", "7", NET])
        .fails_with("--vni needs --driver vxlan");
    let with = |h: &Host, range: &str, vni: &str, store: &str| {
        h.hull(&[
            "network", "create", "--driver", "vxlan", "--subnet", range, "--vni", vni, "--store",
            store, NET,
        ])
    };
    with(a, RANGE, &vni, "http://x:1").fails_with("expected etcd://HOST:PORT");
    with(a, RANGE, "0", STORE).fails_with("--vni 0 must be 1-16777215");
    a.create(&["--node-prefix", "8"])
        .fails_with("--node-prefix 8");
    nothing_left(a);

    // An underlay address this host does not have.
    a.create(&["--underlay", "10.247.0.99"])
        .fails_with("no interface of this host has the underlay address 10.247.0.99");
    nothing_left(a);

    // A VNI another device of the host uses.
    c.sandbox.ip(&[
        "link",
        "add",
        "hull-test-vx",
        "type",
        "vxlan",
        "id",
        &vni,
        "dstport",
        "4789",
        "dev",
        "eth1",
    ]);
    c.create(&[])
        .fails_with(&format!("VNI {VNI} is already used by device hull-test-vx"));
    c.sandbox.ip(&["link", "del", "hull-test-vx"]);
    nothing_left(c);
    assert_eq!(lab.keys(), Vec::<String>::new());

    // A full range: a /23 holds two /24s, for A and B; C gets none.
    let small = "10.250.0.0/23";
    with(a, small, &vni, STORE).ok();
    // Twice on one host: the first stays as it was.
    with(a, small, &vni, STORE).fails_with("already exists");
    assert_eq!(a.inspect()["overlay"]["agent"]["running"], true);
    assert_eq!(lab.keys().len(), 2, "{:?}", lab.keys());
    with(b, small, &vni, STORE).ok();
    with(c, small, &vni, STORE).fails_with("no free /24 left in 10.250.0.0/23");
    nothing_left(c);
    assert_eq!(lab.keys().len(), 3, "{:?}", lab.keys());

    // Other options than the network's in the store.
    with(c, small, "7", STORE).fails_with("exists in the store with other options");
    nothing_left(c);
    assert_eq!(lab.keys().len(), 3, "{:?}", lab.keys());

    for h in [a, b] {
        h.hull(&["network", "rm", NET]).ok();
        nothing_left(h);
    }
    assert_eq!(lab.keys(), Vec::<String>::new());
}

/// The store goes away and comes back: meanwhile an attach on A starts
/// A's (killed) agent all the same and the container runs; once the store
/// is back, the agent is in step with it again (B leaving is seen).
#[test]
fn the_agent_rides_out_a_store_outage() {
    let mut lab = Lab::new("outage");
    lab.hosts[0].create(&[]).ok();
    lab.hosts[1].create(&[]).ok();
    let a = &lab.hosts[0];
    wait_for(|| a.tables(), || a.tables().contains("dst 10.247.0.2"));
    let old = a.agent_pid().unwrap();
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    assert!(wait_until(5, || !agent_running(old)));
    let mut etcd = lab.etcd.take().unwrap();
    etcd.kill().unwrap();
    etcd.wait().unwrap();

    let a = lab.host("a");
    let ip = a.run("outage", "exec sleep 600", false, &[]);
    assert!(ip.to_string().starts_with("10.250."), "{ip}");
    let v = a.inspect();
    assert_eq!(v["overlay"]["agent"]["running"], true, "{v}");
    assert!(v["overlay"]["store_error"].is_string(), "{v}");
    // What was programmed stays while the store is away.
    assert!(a.tables().contains("dst 10.247.0.2"), "{}", a.tables());

    lab.etcd = Some(lab.start_etcd());
    // B withdraws (its agent also reconnects): A drops it.
    lab.host("b").hull(&["network", "rm", NET]).ok();
    let a = lab.host("a");
    wait_for(
        || format!("A still has B: {}", a.tables()),
        || !a.tables().contains("10.247.0.2"),
    );
    let v = a.inspect();
    assert_eq!(peers(&v).len(), 0, "{v}");
    for out in a.delete_containers() {
        out.ok();
    }
    a.hull(&["network", "rm", NET]).ok();
    assert_eq!(lab.keys(), Vec::<String>::new());
}
