//! Service discovery: the resolver hull runs per network. Containers find
//! each other by name, alias and service (busybox nslookup inside, through
//! the /etc/resolv.conf hull mounts, and dig from the host against the
//! gateway); SRV and PTR records; records following attach and detach
//! without a restart; the host view of published ports; forwarding to an
//! upstream (a stub of the test's own on loopback, no internet); malformed
//! queries; the resolver restarted when dead, surviving the hull that
//! started it, and gone after `network rm`; the CNI plugin's result
//! pointing at it.
//!
//! Isolation: each test has its own `--net-root`, `--net-table` and
//! network `hull-test-dnsN-<pid>` on 10.251.2N.0/24 (the dual-stack one,
//! with fd43:21::/64, in a network namespace of its own),
//! host ports 28900+10·N…; a guard removes all of it, also on failure.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hull_tests::net::{assert_serves, sock, wait_until, web_script, with_srv};
use hull_tests::*;
use serde_json::{json, Value};

/// A test's network and its state, removed on drop.
struct Net {
    n: u8,
    root: PathBuf,
    table: String,
    name: String,
}

impl Net {
    fn new(n: u8) -> Self {
        let pid = std::process::id();
        let net = Self {
            n,
            root: PathBuf::from(format!("/tmp/hull-test-dns{n}-{pid}")),
            table: format!("hull_test_dns{n}_{pid}"),
            name: format!("hull-test-dns{n}-{}", pid % 100_000),
        };
        net.clean();
        net
    }

    fn hull(&self) -> Command {
        let mut c = Command::new(hull_bin());
        c.arg("--net-root")
            .arg(&self.root)
            .arg("--net-table")
            .arg(&self.table)
            .stdin(Stdio::null());
        c
    }

    fn cmd(&self, args: &[&str]) -> Output {
        output_via_files(self.hull().args(args))
    }

    /// `hull network create` of the network with `extra` flags.
    fn create(&self, extra: &[&str]) {
        let s4 = format!("10.251.2{}.0/24", self.n);
        let mut args = vec!["network", "create", "--subnet", &s4];
        args.extend(extra);
        args.push(&self.name);
        let out = self.cmd(&args);
        assert!(
            out.status.success(),
            "network create: {}",
            text(&out.stderr)
        );
    }

    fn gateway(&self) -> String {
        format!("10.251.2{}.1", self.n)
    }

    fn gateway6(&self) -> String {
        format!("fd43:2{}::1", self.n)
    }

    fn port(&self, i: u16) -> u16 {
        28900 + 10 * u16::from(self.n) + i
    }

    fn inspect(&self) -> Value {
        let out = self.cmd(&["network", "inspect", &self.name]);
        assert!(out.status.success(), "inspect: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The resolver's pid, as `network inspect` reports it (None: not running).
    fn resolver(&self) -> Option<i32> {
        let dns = &self.inspect()["dns"];
        dns["running"]
            .as_bool()
            .unwrap()
            .then(|| dns["pid"].as_i64().unwrap() as i32)
    }

    /// A container `hull-test-<name>-<pid>` on this network running
    /// `script`, with `annotations` and `extra` flags for `run -d`.
    fn run(&self, name: &str, annotations: Value, script: &str, extra: &[&str]) -> TestBundle {
        let mut b = TestBundle::new(name);
        b.sh(script).edit(|c| c["annotations"] = annotations);
        self.run_bundle(&b, extra).unwrap();
        b
    }

    /// `hull run -d --network NET EXTRA… ID` of `b`; Err(stderr) on failure.
    fn run_bundle(&self, b: &TestBundle, extra: &[&str]) -> Result<(), String> {
        let out = output_via_files(
            b.hull()
                .arg("--net-root")
                .arg(&self.root)
                .arg("--net-table")
                .arg(&self.table)
                .args(["run", "-d", "--network", &self.name])
                .args(extra)
                .arg("--bundle")
                .arg(&b.dir)
                .arg(&b.id),
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out.stderr))
        }
    }

    /// `hull exec ID sh -c SCRIPT` in `b`: (exit code, stdout + stderr).
    fn exec(&self, b: &TestBundle, script: &str) -> (i32, String) {
        let out = b.cmd(&["exec", &b.id, "sh", "-c", script]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        (out.status.code().unwrap_or(-1), all)
    }

    fn clean(&self) {
        assert!(self
            .root
            .to_string_lossy()
            .starts_with("/tmp/hull-test-dns"));
        if self
            .root
            .join("networks")
            .join(format!("{}.json", self.name))
            .exists()
        {
            let _ = self.cmd(&["network", "rm", &self.name]);
        }
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &self.table])
                .stderr(Stdio::null())
                .status();
        }
        // Removing the state makes a resolver left behind exit on its own.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        clean_up("the test network", || self.clean());
    }
}

/// Deletes the container (also if the test failed before).
struct Ctr(TestBundle);

impl Drop for Ctr {
    fn drop(&mut self) {
        clean_up("hull delete --force", || {
            let _ = self.0.cmd(&["delete", "--force", &self.0.id]);
        });
    }
}

/// `dig @server -p port ARGS`: (status, answer lines, additional lines).
fn dig(server: &str, port: u16, args: &[&str]) -> (String, Vec<String>, Vec<String>) {
    let out = Command::new("dig")
        .arg(format!("@{server}"))
        .args(["-p", &port.to_string(), "+tries=1", "+time=2", "+noall"])
        .args(["+comments", "+answer", "+additional"])
        .args(args)
        .output()
        .unwrap();
    let all = text(&out.stdout);
    let status = all
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("dig {args:?}: no status in {all}"))
        .to_owned();
    let (mut answers, mut additional, mut section) = (Vec::new(), Vec::new(), "");
    for line in all.lines() {
        if line.starts_with(";; ANSWER") {
            section = "answer";
        } else if line.starts_with(";; ADDITIONAL") {
            section = "additional";
        } else if line.starts_with(';') || line.trim().is_empty() {
            continue;
        } else {
            // "name ttl IN type data…" → "type data…"
            let f: Vec<&str> = line.split_whitespace().collect();
            let rec = f[3..].join(" ");
            match section {
                "answer" => answers.push(rec),
                "additional" => additional.push(rec),
                _ => {}
            }
        }
    }
    answers.sort();
    (status, answers, additional)
}

/// The answers to `dig @server NAME TYPE`, asserting NOERROR.
fn answers(server: &str, name: &str, ty: &str) -> Vec<String> {
    let (status, answers, _) = dig(server, 53, &[name, ty]);
    assert_eq!(status, "NOERROR", "{name} {ty}: {answers:?}");
    answers
}

fn ip_of(net: &Net, id: &str) -> String {
    let all = net.inspect();
    let att = all["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["container"] == id)
        .unwrap_or_else(|| panic!("{id} not attached: {all:#}"));
    att["ip"].as_str().unwrap().to_owned()
}

fn process_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

/// Runs `body` on a thread in a network namespace of its own, the "host"
/// of the test: a dual-stack network turns on IPv6 forwarding, which must
/// not happen in the real host's namespace. Processes it starts (hull,
/// the resolver, dig, containers) are born there.
fn in_lab(body: fn()) {
    let mut lab = Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ns = PathBuf::from(format!("/proc/{}/ns/net", lab.id()));
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(wait_until(10, || std::fs::read_link(&ns).is_ok_and(|l| l != ours)));
    let run = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&ns).unwrap();
        // SAFETY: setns on a file we own; it moves only this thread, which
        // ends with `body`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(up.unwrap().success());
        body()
    });
    let result = run.join();
    let _ = lab.kill();
    let _ = lab.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Two containers on a network find each other by name, alias and service
/// (inside, through the resolv.conf hull mounts); SRV answers carry the
/// declared ports, PTR the names; AAAA and the IPv6 listener on a
/// dual-stack network; TCP queries; a name of the network that does not
/// exist is NXDOMAIN.
#[test]
fn containers_resolve_each_other() {
    require("dig");
    in_lab(resolve_each_other_in_lab);
}

fn resolve_each_other_in_lab() {
    let net = Net::new(1);
    let s6 = format!("fd43:2{}::/64", net.n);
    net.create(&["--subnet", &s6]);
    let web = json!({
        "org.hull.dns.aliases": "db,primary",
        "org.hull.dns.service": "web",
        "org.hull.dns.ports": "http:80/tcp,metrics:9100/tcp:10:5"
    });
    let a = Ctr(net.run("dns-a", web.clone(), "sleep 100", &[]));
    let b = Ctr(net.run(
        "dns-b",
        json!({"org.hull.dns.service": "web"}),
        "sleep 100",
        &[],
    ));
    // The image has an /etc, so hull mounts its resolv.conf.
    let mut c = TestBundle::new("dns-c");
    assert!(c.rootfs().join("etc").is_dir());
    c.args(&["sleep", "100"]);
    net.run_bundle(&c, &[]).unwrap();
    let c = Ctr(c);
    let (ip_a, ip_b) = (ip_of(&net, &a.0.id), ip_of(&net, &b.0.id));

    let (code, conf) = net.exec(&c.0, "cat /etc/resolv.conf");
    assert_eq!(code, 0, "{conf}");
    assert!(
        conf.contains(&format!("nameserver {}\n", net.gateway())),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("nameserver {}\n", net.gateway6())),
        "{conf}"
    );
    assert!(conf.contains(&format!("search {}\n", net.name)), "{conf}");
    let (code, out) = net.exec(&c.0, "echo x >> /etc/resolv.conf");
    assert_ne!(code, 0, "resolv.conf is read-only: {out}");

    // Inside, with busybox nslookup and the mounted resolv.conf.
    for (name, want) in [
        (format!("{}.{}", a.0.id, net.name), vec![&ip_a]),
        (format!("db.{}", net.name), vec![&ip_a]),
        (format!("web.{}", net.name), vec![&ip_a, &ip_b]),
    ] {
        let (code, out) = net.exec(&c.0, &format!("nslookup -type=a {name}"));
        assert_eq!(code, 0, "nslookup {name}: {out}");
        for ip in want {
            assert!(out.contains(&format!("Address: {ip}")), "{name}: {out}");
        }
    }
    let srv = format!("_http._tcp.web.{}", net.name);
    let (code, out) = net.exec(&a.0, &format!("nslookup -type=srv {srv} {}", net.gateway()));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("0 1 80 {}.{}", a.0.id, net.name)),
        "{out}"
    );
    let (code, out) = net.exec(&b.0, &format!("nslookup {ip_a} {}", net.gateway()));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("name = {}.{}", a.0.id, net.name)),
        "{out}"
    );

    // From the host against the gateway, over both families and TCP.
    let gw = net.gateway();
    assert_eq!(
        answers(
            &gw,
            &format!("_metrics._tcp.{}.{}", a.0.id, net.name),
            "SRV"
        ),
        [format!("SRV 10 5 9100 {}.{}.", a.0.id, net.name)]
    );
    let (_, srv_answers, extra) = dig(&gw, 53, &[&srv, "SRV"]);
    assert_eq!(srv_answers.len(), 1, "b declares no ports: {srv_answers:?}");
    assert!(
        extra.contains(&format!("A {ip_a}")),
        "target address: {extra:?}"
    );
    let ip6_a = net.inspect()["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["container"] == a.0.id.as_str())
        .unwrap()["ip6"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answers(&net.gateway6(), &format!("primary.{}", net.name), "AAAA"),
        [format!("AAAA {ip6_a}")]
    );
    assert_eq!(
        answers(&gw, "-x", &ip6_a),
        [format!("PTR {}.{}.", a.0.id, net.name)]
    );
    assert_eq!(answers(&gw, &b.0.id, "A"), [format!("A {ip_b}")]);
    let mut both = answers(&gw, &format!("web.{}", net.name), "+tcp");
    both.sort();
    let mut want = vec![format!("A {ip_a}"), format!("A {ip_b}")];
    want.sort();
    assert_eq!(both, want);
    let (status, _, _) = dig(&gw, 53, &[&format!("nope.{}", net.name), "A"]);
    assert_eq!(status, "NXDOMAIN");
}

/// Records follow containers: a deleted container's name is NXDOMAIN and a
/// re-created one resolves, each within a second, by the same resolver
/// process (no restart).
#[test]
fn records_follow_attach_and_detach() {
    require("dig");
    let net = Net::new(2);
    net.create(&[]);
    let first = Ctr(net.run("dns-keep", json!({}), "sleep 100", &[]));
    let pid = net
        .resolver()
        .expect("a resolver once a container attached");
    let name = format!("hull-test-dns-come-{}.{}", std::process::id(), net.name);
    let gw = net.gateway();
    let status = |n: &str| dig(&gw, 53, &[n, "A"]).0;
    assert_eq!(status(&name), "NXDOMAIN");
    for round in 0..2 {
        let c = Ctr(net.run(
            "dns-come",
            json!({"org.hull.dns.aliases": "comer"}),
            "sleep 100",
            &[],
        ));
        let t = Instant::now();
        assert!(
            wait_until(1, || status(&format!("comer.{}", net.name)) == "NOERROR"),
            "round {round}: the alias did not appear"
        );
        assert_eq!(
            answers(&gw, &name, "A"),
            [format!("A {}", ip_of(&net, &c.0.id))]
        );
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        c.0.delete_and_check(true);
        let t = Instant::now();
        assert!(
            wait_until(1, || status(&name) == "NXDOMAIN"),
            "round {round}: the name stayed after delete"
        );
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(status(&format!("comer.{}", net.name)), "NXDOMAIN");
    }
    assert_eq!(net.resolver(), Some(pid), "the resolver was restarted");
    drop(first);
}

/// The host view: SRV of a published port answers with the host's address
/// and the published port, and a client that only knows the SRV name
/// connects through it.
#[test]
fn host_view_answers_published_ports() {
    require("dig");
    let net = Net::new(3);
    let view = net.port(0);
    let published = net.port(1);
    net.create(&["--dns-host-port", &view.to_string()]);
    let mut b = TestBundle::new("dns-web");
    with_srv(&mut b);
    b.sh(&web_script("dns-host-view")).edit(|c| {
        c["annotations"] = json!({
            "org.hull.dns.service": "shop",
            "org.hull.dns.ports": "http:80/tcp"
        })
    });
    let publish = format!("127.0.0.1:{published}:80");
    net.run_bundle(&b, &["-p", &publish]).unwrap();
    let _b = Ctr(b);
    let srv = format!("_http._tcp.shop.{}", net.name);
    let (status, answers, extra) = dig("127.0.0.1", view, &[&srv, "SRV"]);
    assert_eq!(status, "NOERROR");
    assert_eq!(answers.len(), 1, "{answers:?}");
    // "SRV prio weight port target": the client uses port and target's A.
    let fields: Vec<&str> = answers[0].split_whitespace().collect();
    let port: u16 = fields[3].parse().unwrap();
    assert_eq!(port, published, "{answers:?}");
    let addr: Ipv4Addr = extra
        .iter()
        .find_map(|r| r.strip_prefix("A "))
        .unwrap_or_else(|| panic!("no target address: {extra:?}"))
        .parse()
        .unwrap();
    assert_eq!(addr, Ipv4Addr::LOCALHOST);
    assert_serves(sock(addr, port), "dns-host-view");
    // The bridge view still has the container port.
    let (_, inside, _) = dig(&net.gateway(), 53, &[&srv, "SRV"]);
    assert!(inside[0].contains(" 80 "), "{inside:?}");
}

/// A stub upstream on loopback: answers every A query with 192.0.2.7
/// (TTL 1234) and counts the queries it saw.
fn stub_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            count.fetch_add(1, Ordering::SeqCst);
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80; // a response
            r[3] = 0x80; // recursion available, NOERROR
            r[6..8].copy_from_slice(&1u16.to_be_bytes()); // one answer
            r[8..12].fill(0); // no authority, no additional (drops EDNS)
            let qend = 12 + r[12..].iter().position(|b| *b == 0).unwrap() + 5;
            r.truncate(qend);
            // Name pointer to the question, A, IN, TTL 1234, 4 bytes.
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            r.extend_from_slice(&1234u32.to_be_bytes());
            r.extend_from_slice(&[0, 4, 192, 0, 2, 7]);
            let _ = sock.send_to(&r, peer);
        }
    });
    (port, seen)
}

/// Names that are not the network's are forwarded to the upstream (its
/// answer's TTL kept); names in the network's domain that do not exist
/// are NXDOMAIN and never forwarded.
#[test]
fn forwards_other_names_upstream() {
    use std::sync::atomic::Ordering;
    require("dig");
    let (port, seen) = stub_upstream();
    let net = Net::new(4);
    net.create(&["--dns-upstream", &format!("127.0.0.1:{port}")]);
    let c = Ctr(net.run("dns-fwd", json!({}), "sleep 100", &[]));
    let (status, ans, _) = dig(&net.gateway(), 53, &["+ttlid", "example.test", "A"]);
    assert_eq!(status, "NOERROR");
    assert_eq!(ans, ["A 192.0.2.7"]);
    let out = Command::new("dig")
        .args([
            &format!("@{}", net.gateway()),
            "+noall",
            "+answer",
            "example.test",
        ])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("1234"),
        "TTL kept: {}",
        text(&out.stdout)
    );
    let before = seen.load(Ordering::SeqCst);
    let (status, _, _) = dig(&net.gateway(), 53, &[&format!("ghost.{}", net.name), "A"]);
    assert_eq!(status, "NXDOMAIN");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        before,
        "a name of the network was forwarded"
    );
    // From inside too.
    let (code, out) = net.exec(&c.0, &format!("nslookup example.test {}", net.gateway()));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("192.0.2.7"), "{out}");
}

/// Malformed, truncated and oversized queries get FORMERR or nothing, and
/// the resolver keeps answering; it listens on the bridge only.
#[test]
fn malformed_queries_do_not_hurt() {
    require("dig");
    let net = Net::new(5);
    net.create(&[]);
    let c = Ctr(net.run("dns-fuzz", json!({}), "sleep 100", &[]));
    let gw: SocketAddr = format!("{}:53", net.gateway()).parse().unwrap();
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // A header announcing a question that is cut off: FORMERR, same id.
    sock.send_to(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'x'], gw)
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).expect("a FORMERR answer");
    assert!(n >= 12 && buf[..2] == [0xab, 0xcd], "{:?}", &buf[..n]);
    assert_eq!(buf[3] & 0x0f, 1, "rcode FORMERR");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..3000usize {
        let len = [0, 1, 11, 12, 13, 40, 512, 1400, 9000][i % 9];
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = sock.send_to(&junk, gw);
    }
    // Over TCP: a length larger than what follows, then a hang-up.
    if let Ok(mut t) = TcpStream::connect_timeout(&gw, Duration::from_secs(2)) {
        use std::io::Write;
        let _ = t.write_all(&[0xff, 0xff, 1, 2, 3]);
    }
    let pid = net.resolver().expect("the resolver survived");
    assert_eq!(answers(&net.gateway(), &c.0.id, "A").len(), 1);
    // Bound to the bridge: the gateway address reached over loopback is refused.
    let out = Command::new("dig")
        .args([
            &format!("@{}", net.gateway()),
            "+tries=1",
            "+time=1",
            "-b",
            "127.0.0.1",
        ])
        .arg(&c.0.id)
        .output()
        .unwrap();
    let answered = text(&out.stdout).contains("status: NOERROR");
    assert!(
        !answered,
        "answered a query that did not come over the bridge"
    );
    assert_eq!(net.resolver(), Some(pid));
}

/// A killed resolver is restarted by the next attach; it is not a child
/// of the hull that started it (a crashed hull takes nothing with it);
/// `network rm` stops it and leaves nothing: no process, no socket on the
/// gateway, no state.
#[test]
fn resolver_lifecycle() {
    require("dig");
    let net = Net::new(6);
    net.create(&[]);
    assert_eq!(net.resolver(), None, "no resolver before an attach");
    let a = Ctr(net.run("dns-life-a", json!({}), "sleep 100", &[]));
    let first = net.resolver().expect("started on the first attach");
    let stat = std::fs::read_to_string(format!("/proc/{first}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(ppid, std::process::id() as i32);
    let parent = std::fs::read_to_string(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    assert!(
        !parent.contains("hull"),
        "reparented away from hull: {parent}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(5, || process_gone(first)));
    assert_eq!(net.resolver(), None);
    let b = Ctr(net.run("dns-life-b", json!({}), "sleep 100", &[]));
    let second = net.resolver().expect("restarted on the next attach");
    assert_ne!(second, first);
    assert_eq!(answers(&net.gateway(), &a.0.id, "A").len(), 1);
    drop((a, b));
    let out = net.cmd(&["network", "rm", &net.name]);
    assert!(out.status.success(), "network rm: {}", text(&out.stderr));
    assert!(process_gone(second), "the resolver outlived network rm");
    assert_no_process(&net.root.to_string_lossy());
    assert!(
        !net.root.join("dns").join(&net.name).exists(),
        "DNS state left"
    );
    let gw53 = format!("{}:53", net.gateway());
    let ss = Command::new("ss").args(["-lnu"]).output().unwrap();
    assert!(
        !text(&ss.stdout).contains(&gw53),
        "a socket is left on {gw53}"
    );
}

/// Bad DNS options of `network create` and a bad DNS annotation fail,
/// naming what is wrong, and leave nothing.
#[test]
fn bad_options_and_annotations_are_refused() {
    let net = Net::new(7);
    for (flags, needle) in [
        (["--dns-upstream", "nowhere"], "--dns-upstream"),
        (["--dns-host-port", "0"], "--dns-host-port"),
    ] {
        let mut args = vec!["network", "create", "--subnet", "10.251.27.0/24"];
        args.extend(flags);
        args.push(&net.name);
        let out = net.cmd(&args);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
        let left = net.root.join("networks").join(format!("{}.json", net.name));
        assert!(!left.exists(), "network left after {flags:?}");
    }
    net.create(&[]);
    let mut b = TestBundle::new("dns-bad");
    b.args(&["true"])
        .edit(|c| c["annotations"] = json!({"org.hull.dns.ports": "http:99999/tcp"}));
    let err = net.run_bundle(&b, &[]).unwrap_err();
    assert!(err.contains("org.hull.dns.ports"), "{err}");
    b.assert_no_state();
    assert!(net.inspect()["containers"].as_array().unwrap().is_empty());
    assert_eq!(net.resolver(), None);
}

/// Runs hull-cni `command` for `eth0` of `container` in `netns` with
/// `conf`: whether it succeeded, and its JSON output.
fn cni(command: &str, container: &str, netns: &str, conf: &Value) -> (bool, Value) {
    use std::io::Write;
    let mut child = Command::new(workspace().join("target/debug/hull-cni"))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", netns)
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(conf.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json)
}

/// The CNI plugin's `hull` role: ADD starts the network's resolver and
/// points the result's `dns` at it, which answers for the container's id;
/// DEL removes the name; `network rm` of the plugin's store stops it.
#[test]
fn cni_plugin_result_points_at_the_resolver() {
    require("dig");
    let net = Net::new(8);
    let mut sandbox = Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ns = format!("/proc/{}/ns/net", sandbox.id());
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(wait_until(10, || std::fs::read_link(&ns).is_ok_and(|l| l != ours)));
    let id = unique("dns-cni");
    let conf = json!({
        "cniVersion": "1.0.0", "name": net.name, "type": "hull",
        "subnet": "10.251.28.0/24", "dataDir": net.root, "table": net.table
    });
    let (ok, r) = cni("ADD", &id, &ns, &conf);
    assert!(ok, "ADD failed: {r}");
    assert_eq!(
        r["dns"],
        json!({"nameservers": [net.gateway()], "search": [net.name]}),
        "{r:#}"
    );
    let name = format!("{id}.{}", net.name);
    assert_eq!(answers(&net.gateway(), &name, "A"), ["A 10.251.28.2"]);
    let pid = net.resolver().expect("the plugin started a resolver");
    let (ok, r) = cni("DEL", &id, &ns, &conf);
    assert!(ok, "DEL failed: {r}");
    assert!(wait_until(1, || dig(&net.gateway(), 53, &[&name, "A"]).0 == "NXDOMAIN"));
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    let out = net.cmd(&["network", "rm", &net.name]);
    assert!(out.status.success(), "network rm: {}", text(&out.stderr));
    assert!(
        wait_until(5, || process_gone(pid)),
        "the resolver outlived network rm"
    );
}
