//! hull's firewall coexists with other users of netfilter, with both rule
//! sets active at the same time: the CNI reference plugins (`bridge` +
//! `portmap` + `host-local`, which program iptables-nft) and Docker-style
//! iptables-nft chains (`HULLTEST-DOCKER` in the filter and nat tables: a
//! DNAT of a host port and FORWARD-path rules, one of them a DROP).
//!
//! The test shows that
//! - the other rules are present and in force while a hull container
//!   publishes a port (their ports answer, their DROP drops, their counters
//!   count), and hull's published port answers on 127.0.0.1 and the
//!   container's address at the same time;
//! - hull's teardown (`hull delete`, `hull network rm`) leaves every other
//!   table byte-for-byte as it was (`nft -s -j list table …` and
//!   `iptables-save`), the conntrack entry of a connection held open to the
//!   CNI port, and the others' ports keep working;
//! - a CNI DEL while a hull container runs, and a CNI ADD after it, leave
//!   hull's table byte-for-byte as it was, and hull's published port keeps
//!   working.
//!
//! Isolation: the whole scenario runs on a thread of its own that has
//! unshared its network namespace (lo up). Everything the test starts from
//! there (hull, the CNI plugins, iptables, nft, ip) and every socket it
//! opens lives in that namespace: the `ip filter` / `ip nat` tables that
//! iptables-nft creates, both bridges and hull's table are the namespace's
//! own and go with it. The host's links, routes and firewall are never
//! touched (the main thread checks at the end that none of the test's links
//! or its hull table showed up on the host). hull's side is a
//! [`Net`] of the network lab, test number 40: hull network `t40-<pid mod 100000>`
//! (bridge `hull-t40-<pid mod 100000>`, 10.250.40.0/24), CNI bridge `hulltestcni40`
//! (10.251.40.0/24), host ports 28400…; a guard removes everything also
//! when the test fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use hull_tests::net::*;
use hull_tests::netlab::{del_link, link_in_netns, Ctr, Net};
use hull_tests::*;
use serde_json::{json, Value};

const N: u8 = 40;
const CNI_BRIDGE: &str = "hulltestcni40";
const CNI_SUBNET: &str = "10.251.40.0/24";
const CNI_GW: Ipv4Addr = Ipv4Addr::new(10, 251, 40, 1);
const CNI_DIR: &str = "/usr/lib/cni";
/// The Docker-style chain this test creates in the filter and nat tables.
const CHAIN: &str = "HULLTEST-DOCKER";
const HULL_TAG: &str = "hello-hull40";
const CNI_TAG: &str = "hello-cni40";

/// hull's published port, the CNI portmap's, the Docker-style DNAT's.
fn ports() -> (u16, u16, u16) {
    (port(N), port(N) + 1, port(N) + 2)
}

// ---------------------------------------------------------------- helpers

/// Runs `prog ARGS` with stdin from /dev/null, capturing its output.
fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"))
}

/// Runs `prog ARGS`, asserts success, returns stdout.
fn must(prog: &str, args: &[&str]) -> String {
    let out = run(prog, args);
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `iptables -w -t TABLE ARGS`.
fn ipt(table: &str, args: &[&str]) -> Output {
    let mut all = vec!["-w", "-t", table];
    all.extend_from_slice(args);
    run("iptables", &all)
}

/// `iptables-save` without its timestamped comment lines.
fn iptables_save() -> String {
    must("iptables-save", &[])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `nft -s -j list table ip NAME` (stateless: no counter values), or None
/// if there is no such table.
fn nft_table(family: &str, name: &str) -> Option<String> {
    let out = run("nft", &["-s", "-j", "list", "table", family, name]);
    out.status.success().then(|| text(&out.stdout))
}

/// (target, packets) of every rule of CHAIN in `table`.
fn chain_counters(table: &str) -> Vec<(String, u64)> {
    let out = ipt(table, &["-L", CHAIN, "-v", "-x", "-n"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(2)?.to_string(), f.first()?.parse().ok()?))
        })
        .collect()
}

/// How many conntrack entries of the calling thread's namespace have all
/// of `fields` (e.g. `dport=80`).
fn conntrack_entries(fields: &[String]) -> usize {
    std::fs::read_to_string("/proc/thread-self/net/nf_conntrack")
        .unwrap()
        .lines()
        .filter(|l| {
            let have: Vec<&str> = l.split_whitespace().collect();
            fields.iter().all(|f| have.contains(&f.as_str()))
        })
        .count()
}

/// The network namespace of the calling thread.
fn own_netns() -> PathBuf {
    std::fs::read_link("/proc/thread-self/ns/net").unwrap()
}

// ---------------------------------------------------------------- the lab

/// Everything the scenario makes in its network namespace, removed again
/// on drop (also when the test fails): the CNI attachment (DEL) and its
/// server, the Docker-style chains and jumps, hull's network and table,
/// the bridges, and the state directories.
struct Lab {
    /// hull's `--net-root` and `--net-table`, the network and its bridge.
    net: Net,
    /// The CNI side: state dir (ipam, www), container id, the server
    /// holding the container's netns, the final ADD result (for DEL).
    cni_dir: PathBuf,
    cni_cid: String,
    cni_server: Option<Child>,
    cni_result: Option<Value>,
    /// Jump rules this test appended to built-in chains: (table, rule spec
    /// after `-A`), and the tables in which it created CHAIN.
    jumps: Vec<(&'static str, Vec<String>)>,
    chains: Vec<&'static str>,
}

impl Lab {
    fn new() -> Self {
        for program in ["cni-plugins", "iptables", "nft"] {
            require(program);
        }
        let pid = std::process::id();
        let lab = Self {
            net: Net::new("coexist", N),
            cni_dir: PathBuf::from(format!("/tmp/hull-test-cni-coexist-{pid}")),
            cni_cid: format!("hull-test-coexist-{pid}"),
            cni_server: None,
            cni_result: None,
            jumps: Vec::new(),
            chains: Vec::new(),
        };
        let _ = std::fs::remove_dir_all(&lab.cni_dir);
        lab
    }

    // ------------------------------------------------------------ hull

    /// `hull --net-root … --net-table … ARGS` (a network command).
    fn hull(&self, args: &[&str]) -> Out {
        Out::from(self.net.cmd(args))
    }

    fn hull_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 250, N, 1)
    }

    /// hull's table, stateless JSON (None: no table).
    fn hull_rules(&self) -> Option<String> {
        nft_table("ip", &self.net.table)
    }

    /// A hull web server container on the lab's network, published on
    /// host port `port`.
    fn start_web(&self, name: &str, port: u16) -> Ctr {
        let mut web = self.net.ctr(name);
        with_srv(&mut web);
        web.sh(&web_script(HULL_TAG));
        web.run_detached(&["--network", &self.net.name, "-p", &format!("{port}:80")]);
        web
    }

    // ------------------------------------------------------------ others

    /// Every table but hull's, each as `nft -s -j list table` prints it,
    /// plus `iptables-save` (nft's JSON shows iptables' xt matches only by
    /// name; iptables-save shows them in full).
    fn foreign_rules(&self) -> Vec<(String, String)> {
        let ours = format!("table ip {}", self.net.table);
        let mut v: Vec<(String, String)> = must("nft", &["list", "tables"])
            .lines()
            .filter(|l| *l != ours)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 3, "nft list tables: {l:?}");
                let rules = nft_table(f[1], f[2]).unwrap_or_else(|| panic!("{l} vanished"));
                (l.to_owned(), rules)
            })
            .collect();
        v.push(("iptables-save".into(), iptables_save()));
        v
    }

    /// The CNI reference plugin `plugin` with `CNI_COMMAND=cmd` and config
    /// `conf`; its stdout, or an error with its output.
    fn cni(&self, cmd: &str, plugin: &str, conf: &Value) -> Result<Value, String> {
        let netns = match &self.cni_server {
            Some(c) => format!("/proc/{}/ns/net", c.id()),
            None => String::new(),
        };
        let mut child = Command::new(Path::new(CNI_DIR).join(plugin))
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", &self.cni_cid)
            .env("CNI_NETNS", &netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{plugin}: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "CNI {cmd} {plugin}: {} {}",
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        if out.stdout.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{plugin} {cmd} result: {e}"))
    }

    fn bridge_conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "hulltestcni40",
            "type": "bridge",
            "bridge": CNI_BRIDGE,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": CNI_SUBNET, "gateway": CNI_GW.to_string() }]],
                "routes": [{ "dst": "0.0.0.0/0" }],
                "dataDir": self.cni_dir.join("ipam"),
            }
        })
    }

    fn portmap_conf(&self, prev: &Value) -> Value {
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": "hulltestcni40",
            "type": "portmap",
            "capabilities": { "portMappings": true },
            "snat": true,
            "runtimeConfig": { "portMappings": [
                { "hostPort": ports().1, "containerPort": 80, "protocol": "tcp" }
            ]},
        });
        if !prev.is_null() {
            conf["prevResult"] = prev.clone();
        }
        conf
    }

    /// Runs the chain bridge → portmap ADD for the CNI "container" (busybox
    /// httpd on port 80 in a netns of its own, from `unshare --net`, started
    /// on the first call). Returns its address.
    fn cni_add(&mut self) -> Ipv4Addr {
        if self.cni_server.is_none() {
            let www = self.cni_dir.join("www");
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), format!("{CNI_TAG}\n")).unwrap();
            let child = Command::new("unshare")
                .args(["--net", "busybox", "httpd", "-f", "-p", "80", "-h"])
                .arg(&www)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let ns = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
            self.cni_server = Some(child);
            // unshare(2) happens after the spawn: wait for the new netns.
            let ours = own_netns();
            wait_for(
                || "unshare --net to make a netns".into(),
                || std::fs::read_link(&ns).is_ok_and(|l| l != ours),
            );
        }
        // From here on, cleanup must DEL (even if the ADD fails half-way).
        self.cni_result = Some(Value::Null);
        let first = self.cni("ADD", "bridge", &self.bridge_conf()).unwrap();
        self.cni_result = Some(first.clone());
        let result = self
            .cni("ADD", "portmap", &self.portmap_conf(&first))
            .unwrap();
        let result = if result.is_null() { first } else { result };
        self.cni_result = Some(result.clone());
        let addr = result["ips"][0]["address"].as_str().unwrap();
        addr.split('/').next().unwrap().parse().unwrap()
    }

    /// The chain's DEL (portmap, then bridge), as a runtime does it.
    fn cni_del(&mut self) -> Result<(), String> {
        let Some(prev) = self.cni_result.take() else {
            return Ok(());
        };
        let a = self.cni("DEL", "portmap", &self.portmap_conf(&prev));
        let mut conf = self.bridge_conf();
        if !prev.is_null() {
            conf["prevResult"] = prev;
        }
        let b = self.cni("DEL", "bridge", &conf);
        a.and(b).map(|_| ())
    }

    /// Creates CHAIN in `table` (asserting it did not exist).
    fn new_chain(&mut self, table: &'static str) {
        let out = ipt(table, &["-N", CHAIN]);
        assert!(out.status.success(), "-N {CHAIN}: {}", text(&out.stderr));
        self.chains.push(table);
    }

    /// `iptables -t TABLE -A RULE…`; a rule in a built-in chain is
    /// remembered, to be deleted exactly (`-D`) again.
    fn append(&mut self, table: &'static str, rule: &[&str]) {
        let mut args = vec!["-A"];
        args.extend_from_slice(rule);
        let out = ipt(table, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        if rule[0] != CHAIN {
            self.jumps
                .push((table, rule.iter().map(|s| s.to_string()).collect()));
        }
    }

    /// Docker-style rules for the CNI container at `ip`, like Docker's for
    /// docker0: in filter, FORWARD to the bridge jumps to CHAIN, which
    /// accepts DNATed traffic to the published port and (like Docker's
    /// network isolation) drops anything else from hull's subnet; in nat,
    /// local destinations jump to CHAIN, which DNATs host port `h` to
    /// `ip:80`.
    fn add_docker_rules(&mut self, ip: Ipv4Addr, h: u16) {
        let dst = format!("{ip}/32");
        let hull_net = format!("10.250.{N}.0/24");
        let h = h.to_string();
        let to = format!("{ip}:80");
        self.new_chain("filter");
        self.append("filter", &["FORWARD", "-o", CNI_BRIDGE, "-j", CHAIN]);
        #[rustfmt::skip]
        self.append("filter", &[
            CHAIN, "-d", &dst, "!", "-i", CNI_BRIDGE, "-o", CNI_BRIDGE, "-p", "tcp",
            "-m", "tcp", "--dport", "80", "-m", "conntrack", "--ctstate", "DNAT",
            "-j", "ACCEPT",
        ]);
        self.append(
            "filter",
            &[CHAIN, "-s", &hull_net, "-o", CNI_BRIDGE, "-j", "DROP"],
        );
        self.new_chain("nat");
        #[rustfmt::skip]
        self.append("nat", &[
            "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN,
        ]);
        #[rustfmt::skip]
        self.append("nat", &[
            "OUTPUT", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL",
            "-j", CHAIN,
        ]);
        #[rustfmt::skip]
        self.append("nat", &[
            CHAIN, "!", "-i", CNI_BRIDGE, "-p", "tcp", "-m", "tcp", "--dport", &h,
            "-j", "DNAT", "--to-destination", &to,
        ]);
    }

    /// Deletes exactly the rules and chains `add_docker_rules` made: the
    /// jumps by their spec, then CHAIN (flushed first: it is ours). Never
    /// flushes a chain or table the test did not create.
    fn remove_docker_rules(&mut self) {
        for (table, rule) in self.jumps.drain(..).rev() {
            let mut args = vec!["-D"];
            args.extend(rule.iter().map(String::as_str));
            let _ = ipt(table, &args);
        }
        for table in self.chains.drain(..) {
            let _ = ipt(table, &["-F", CHAIN]);
            let _ = ipt(table, &["-X", CHAIN]);
        }
    }

    /// Removes whatever is left; never panics (it runs in Drop).
    fn cleanup(&mut self) {
        // hull: the network (its containers are gone: their guards drop
        // first), then anything a failed rm left.
        self.net.clean();
        // CNI: DEL while the netns still exists, then the server.
        let _ = self.cni_del();
        if let Some(mut c) = self.cni_server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.remove_docker_rules();
        del_link(CNI_BRIDGE);
        let _ = std::fs::remove_dir_all(&self.cni_dir);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        clean_up("the lab", || self.cleanup());
    }
}

// ---------------------------------------------------------------- the test

#[test]
fn hull_and_iptables_nft_rules_coexist() {
    let host_ns = own_netns();
    let worker = std::thread::Builder::new()
        .name("coexist-netns".into())
        .spawn(scenario_in_own_netns)
        .unwrap();
    let result = worker.join();
    // Whatever happened over there, the host saw none of it.
    assert_eq!(own_netns(), host_ns);
    let pid = std::process::id();
    for link in [CNI_BRIDGE, &format!("hull-t{N}-{:05}", pid % 100_000)] {
        assert!(
            !Path::new("/sys/class/net").join(link).exists(),
            "{link} exists on the host"
        );
    }
    assert!(
        nft_table("ip", &format!("hull_test_coexist_{pid}")).is_none(),
        "hull's table of this test exists on the host"
    );
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn scenario_in_own_netns() {
    // SAFETY: unshare(CLONE_NEWNET) moves only this thread (the test's own)
    // into a new network namespace; it stays there until it ends.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    assert_ne!(
        own_netns(),
        std::fs::read_link("/proc/self/ns/net").unwrap(),
        "still in the host's network namespace"
    );
    must("ip", &["link", "set", "lo", "up"]);
    for p in ["bridge", "portmap", "host-local"] {
        assert!(
            Path::new(CNI_DIR).join(p).exists(),
            "{CNI_DIR}/{p} missing: run scripts/deps.sh (containernetworking-plugins)"
        );
    }
    let (h_hull, h_cni, h_docker) = ports();
    let localhost = Ipv4Addr::LOCALHOST;

    let mut lab = Lab::new();

    // ---- the others: CNI bridge + portmap, then Docker-style chains.
    let cni_ip = lab.cni_add();
    lab.add_docker_rules(cni_ip, h_docker);
    assert_serves(sock(cni_ip, 80), CNI_TAG);
    assert_serves(sock(localhost, h_cni), CNI_TAG);

    // ---- hull, at the same time.
    lab.net.create();
    let web = lab.start_web("coexist-web", h_hull);
    let hull_ip = lab.net.ip(&web.id);
    let hull_gw = lab.hull_gateway();

    // ---- (A) both in force.
    assert_serves(sock(localhost, h_hull), HULL_TAG);
    assert_serves(sock(hull_ip, 80), HULL_TAG);
    assert_serves(sock(CNI_GW, h_hull), HULL_TAG);
    assert_serves(sock(localhost, h_cni), CNI_TAG);
    assert_serves(sock(cni_ip, 80), CNI_TAG);
    // The Docker-style DNAT (nat OUTPUT; not for 127.0.0.0/8, like Docker's).
    assert_serves(sock(hull_gw, h_docker), CNI_TAG);
    // Forwarded from a hull container: DNATed by the Docker-style rule,
    // accepted by its FORWARD rule, masqueraded by hull...
    let mut cli = lab.net.ctr("coexist-cli");
    cli.sh(&fetch_script(hull_gw, h_docker, CNI_TAG));
    let (code, out, err) = cli.run_fg(&["--network", &lab.net.name]);
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    // ...and dropped by its isolation rule when not DNATed.
    cli.sh(&format!(
        "r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {cni_ip} 80 2>&1); \
         case \"$r\" in *{CNI_TAG}*) echo REACHED; exit 1;; esac; echo BLOCKED"
    ));
    let (code, out, err) = cli.run_fg(&["--network", &lab.net.name]);
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert_eq!(
        out.trim(),
        "BLOCKED",
        "the Docker-style DROP let a hull container through"
    );
    let filter = chain_counters("filter");
    assert!(
        matches!(filter.as_slice(), [(a, n), (d, m)] if a == "ACCEPT" && *n > 0 && d == "DROP" && *m > 0),
        "{CHAIN} in filter did not count both the accepted and the dropped traffic: {filter:?}"
    );
    let nat = chain_counters("nat");
    assert!(
        matches!(nat.as_slice(), [(d, n)] if d == "DNAT" && *n >= 2),
        "{CHAIN} in nat did not DNAT: {nat:?}"
    );

    // ---- (B) hull's teardown leaves the others' tables as they were, and
    // their connections: one to the CNI port stays open across it.
    let mut held = TcpStream::connect(sock(localhost, h_cni)).unwrap();
    let held_entry = [
        format!("sport={}", held.local_addr().unwrap().port()),
        format!("dport={h_cni}"),
    ];
    assert_eq!(conntrack_entries(&held_entry), 1, "no entry for {held:?}");
    let before = lab.foreign_rules();
    let all: String = before.iter().map(|(_, r)| r.as_str()).collect();
    for needle in [
        "CNI-HOSTPORT-DNAT",
        "CNI-DN-",
        CHAIN,
        "DNAT --to-destination",
    ] {
        assert!(all.contains(needle), "{needle} missing: {before:#?}");
    }
    assert!(lab.hull_rules().is_some(), "hull has no table");
    web.delete(true);
    drop(web);
    drop(cli);
    lab.hull(&["network", "rm", &lab.net.name]).ok();
    assert!(
        lab.hull_rules().is_none(),
        "hull's table left after network rm"
    );
    assert!(!link_in_netns(&lab.net.bridge), "hull's bridge left");
    let after = lab.foreign_rules();
    assert_eq!(
        before.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        after.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        "the set of other tables changed"
    );
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert!(
            b == a,
            "hull's teardown changed {what}:\nbefore:\n{b}\nafter:\n{a}"
        );
    }
    assert_eq!(
        conntrack_entries(&held_entry),
        1,
        "hull's teardown deleted the conntrack entry of a CNI connection"
    );
    held.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    held.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut resp = String::new();
    held.read_to_string(&mut resp).unwrap();
    assert!(resp.contains(CNI_TAG), "held connection answered {resp:?}");
    assert_serves(sock(localhost, h_cni), CNI_TAG);
    assert_serves(sock(cni_ip, 80), CNI_TAG);
    assert_serves(sock(CNI_GW, h_docker), CNI_TAG);

    // ---- (C) hull again, then the CNI DEL: hull's table stays as it was.
    lab.net.create();
    let web = lab.start_web("coexist-web2", h_hull);
    let hull_ip = lab.net.ip(&web.id);
    assert_serves(sock(localhost, h_hull), HULL_TAG);
    assert_serves(sock(localhost, h_cni), CNI_TAG);
    let hull_before = lab.hull_rules().expect("hull's table");
    assert!(
        hull_before.contains(&h_hull.to_string()),
        "no published port in hull's table: {hull_before}"
    );
    let docker_before: Vec<String> = iptables_save()
        .lines()
        .filter(|l| l.contains(CHAIN))
        .map(str::to_owned)
        .collect();
    lab.cni_del().expect("CNI DEL");
    assert!(
        try_get(sock(localhost, h_cni)).is_err(),
        "the CNI port still answers after DEL"
    );
    assert!(
        !iptables_save().contains("CNI-DN-"),
        "CNI DEL left its per-container chain"
    );
    let hull_after = lab
        .hull_rules()
        .expect("hull's table gone after the CNI DEL");
    assert!(
        hull_before == hull_after,
        "the CNI DEL changed hull's table:\nbefore:\n{hull_before}\nafter:\n{hull_after}"
    );
    assert_serves(sock(localhost, h_hull), HULL_TAG);
    assert_serves(sock(hull_ip, 80), HULL_TAG);
    let docker_after: Vec<String> = iptables_save()
        .lines()
        .filter(|l| l.contains(CHAIN))
        .map(str::to_owned)
        .collect();
    assert_eq!(docker_before, docker_after, "the CNI DEL changed {CHAIN}");
    // And an ADD while hull's table is there leaves it as it was too.
    let cni_ip = lab.cni_add();
    assert_serves(sock(localhost, h_cni), CNI_TAG);
    assert_serves(sock(cni_ip, 80), CNI_TAG);
    let hull_after = lab
        .hull_rules()
        .expect("hull's table gone after the CNI ADD");
    assert!(
        hull_before == hull_after,
        "the CNI ADD changed hull's table:\nbefore:\n{hull_before}\nafter:\n{hull_after}"
    );
    assert_serves(sock(localhost, h_hull), HULL_TAG);

    // ---- the end: everything goes, as the guard would do it.
    web.delete(true);
    drop(web);
    lab.cleanup();
    let left = iptables_save();
    assert!(!left.contains(CHAIN), "{CHAIN} left: {left}");
    for link in [CNI_BRIDGE, lab.net.bridge.as_str()] {
        assert!(!link_in_netns(link), "{link} left");
    }
    assert!(lab.hull_rules().is_none(), "hull's table left");
    assert!(
        !lab.net.root.exists() && !lab.cni_dir.exists(),
        "state left"
    );
}
