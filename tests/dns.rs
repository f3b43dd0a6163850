//! Service discovery: the resolver hull runs per network. Containers find
//! each other by name, alias and service (busybox nslookup inside, through
//! the /etc/resolv.conf hull mounts, and dig from the host against the
//! gateway); SRV and PTR records; records following attach and detach
//! without a restart; the host view of published ports; forwarding to an
//! upstream (stubs of the test's own in a network namespace of the test,
//! no internet), the host's loopback nameservers skipped; malformed
//! queries; the resolver restarted when dead, surviving the hull that
//! started it, gone when the last container leaves (also after that hull
//! was killed mid-start) and after `network rm`. (The CNI plugin's result
//! pointing at it is tested with the CNI tests, tests/cni/resolver.rs.)
//!
//! Isolation: each test has its own `--net-root`, `--net-table` and
//! network `tNN-<pid mod 100000>` on 10.251.2N.0/24 or 10.251.30.0/24 (the
//! network lab's [`Net`]; those that turn on IPv6 forwarding, bind port 53
//! or replace /etc/resolv.conf do it in network and mount namespaces of
//! their own), host ports 28900+10·N…; a guard removes all of it, also on
//! failure.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hull_tests::net::{answers, assert_serves, dig, sock, wait_until, web_script, with_srv};
use hull_tests::netlab::{in_lab, sh, Ctr, Net};
use hull_tests::strace::{kill_points, killing_at, strace, traced_run, KillPoint};
use hull_tests::*;
use serde_json::{json, Value};

/// Test `n`'s network state, on 10.251.(20 + `n`).0/24; creates nothing yet.
fn dns_net(n: u8) -> Net {
    Net::on(&format!("dns{n}"), n, [10, 251, 20 + n])
}

/// The network's IPv4 gateway, where its resolver listens.
fn gateway(net: &Net) -> String {
    format!("{}.1", net.prefix_str())
}

/// The IPv6 gateway of test `n`'s dual-stack network (fd43:2`n`::/64).
fn gateway6(net: &Net) -> String {
    format!("fd43:2{}::1", net.n)
}

/// Host port `i` of test `n`: 28900 + 10·`n` + `i`.
fn dns_port(net: &Net, i: u16) -> u16 {
    28900 + 10 * u16::from(net.n) + i
}

/// A container `hull-test-<name>-<pid>` on `net` running `script`, with
/// `annotations` and `extra` flags for `run -d`.
fn run(net: &Net, name: &str, annotations: Value, script: &str, extra: &[&str]) -> Ctr {
    let mut c = net.ctr(name);
    c.sh(script).edit(|c| c["annotations"] = annotations);
    run_bundle(net, &c, extra).unwrap();
    c
}

/// `hull run -d --network NET EXTRA… ID` of `b`.
fn run_cmd(net: &Net, b: &TestBundle, extra: &[&str]) -> Command {
    let mut c = net.hull(b);
    c.args(["run", "-d", "--network", &net.name])
        .args(extra)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&b.id);
    c
}

/// [`run_cmd`] run; Err(stderr) on failure.
fn run_bundle(net: &Net, b: &TestBundle, extra: &[&str]) -> Result<(), String> {
    let out = output_via_files(&mut run_cmd(net, b, extra));
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out.stderr))
    }
}

/// `hull exec ID sh -c SCRIPT` in `b`: (exit code, stdout + stderr).
fn exec(b: &TestBundle, script: &str) -> (i32, String) {
    let out = b.cmd(&["exec", &b.id, "sh", "-c", script]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.code().unwrap_or(-1), all)
}

/// In the lab's thread: a mount namespace of its own (mounts not
/// propagated back) where `/etc/resolv.conf` is `file` and there is no
/// systemd-resolved list, so hull and the resolver it starts read the
/// test's nameservers only. Gone with the thread and the processes it
/// started.
fn own_resolv_conf(file: &std::path::Path) {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).unwrap();
    let check = |rc: i32, what: &str| {
        assert_eq!(rc, 0, "{what}: {}", std::io::Error::last_os_error());
    };
    // SAFETY: unshare and mount with valid C strings; they change this
    // thread's mount namespace only (CLONE_NEWNS implies CLONE_FS).
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS), "unshare");
        let root = c("/");
        let flags = libc::MS_REC | libc::MS_SLAVE;
        check(
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ),
            "make / a slave",
        );
        let src = c(file.to_str().unwrap());
        let dst = c("/etc/resolv.conf");
        check(
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ),
            "bind resolv.conf",
        );
        if std::path::Path::new("/run/systemd/resolve").is_dir() {
            let dir = c("/run/systemd/resolve");
            let tmpfs = c("tmpfs");
            check(
                libc::mount(
                    tmpfs.as_ptr(),
                    dir.as_ptr(),
                    tmpfs.as_ptr(),
                    0,
                    std::ptr::null(),
                ),
                "hide systemd-resolved's list",
            );
        }
    }
}

/// A link `hull-test-up` in the lab with `addr`/32: where stub upstreams
/// that are not on loopback listen. (A bridge without ports: this kernel
/// has no dummy links.)
fn lab_address(addr: &str) {
    sh("ip", &["link", "add", "hull-test-up", "type", "bridge"]);
    sh(
        "ip",
        &["addr", "add", &format!("{addr}/32"), "dev", "hull-test-up"],
    );
    sh("ip", &["link", "set", "hull-test-up", "up"]);
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

fn resolve_each_other_in_lab(_lab: PathBuf) {
    let net = dns_net(1);
    let s6 = format!("fd43:2{}::/64", net.n);
    net.create_with(&["--subnet", &s6]);
    let web = json!({
        "org.hull.dns.aliases": "db,primary",
        "org.hull.dns.service": "web",
        "org.hull.dns.ports": "http:80/tcp,metrics:9100/tcp:10:5"
    });
    let a = run(&net, "dns-a", web.clone(), "sleep 100", &[]);
    let b = run(
        &net,
        "dns-b",
        json!({"org.hull.dns.service": "web"}),
        "sleep 100",
        &[],
    );
    // The image has an /etc, so hull mounts its resolv.conf.
    let mut c = net.ctr("dns-c");
    assert!(c.rootfs().join("etc").is_dir());
    c.args(&["sleep", "100"]);
    run_bundle(&net, &c, &[]).unwrap();
    let (ip_a, ip_b) = (net.ip(&a.id).to_string(), net.ip(&b.id).to_string());

    let (code, conf) = exec(&c, "cat /etc/resolv.conf");
    assert_eq!(code, 0, "{conf}");
    assert!(
        conf.contains(&format!("nameserver {}\n", gateway(&net))),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("nameserver {}\n", gateway6(&net))),
        "{conf}"
    );
    assert!(conf.contains(&format!("search {}\n", net.name)), "{conf}");
    let (code, out) = exec(&c, "echo x >> /etc/resolv.conf");
    assert_ne!(code, 0, "resolv.conf is read-only: {out}");

    // Inside, with busybox nslookup and the mounted resolv.conf.
    for (name, want) in [
        (format!("{}.{}", a.id, net.name), vec![&ip_a]),
        (format!("db.{}", net.name), vec![&ip_a]),
        (format!("web.{}", net.name), vec![&ip_a, &ip_b]),
    ] {
        let (code, out) = exec(&c, &format!("nslookup -type=a {name}"));
        assert_eq!(code, 0, "nslookup {name}: {out}");
        for ip in want {
            assert!(out.contains(&format!("Address: {ip}")), "{name}: {out}");
        }
    }
    let srv = format!("_http._tcp.web.{}", net.name);
    let (code, out) = exec(&a, &format!("nslookup -type=srv {srv} {}", gateway(&net)));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("0 1 80 {}.{}", a.id, net.name)),
        "{out}"
    );
    let (code, out) = exec(&b, &format!("nslookup {ip_a} {}", gateway(&net)));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("name = {}.{}", a.id, net.name)),
        "{out}"
    );

    // From the host against the gateway, over both families and TCP.
    let gw = gateway(&net);
    assert_eq!(
        answers(&gw, &format!("_metrics._tcp.{}.{}", a.id, net.name), "SRV"),
        [format!("SRV 10 5 9100 {}.{}.", a.id, net.name)]
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
        .find(|x| x["container"] == a.id.as_str())
        .unwrap()["ip6"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answers(&gateway6(&net), &format!("primary.{}", net.name), "AAAA"),
        [format!("AAAA {ip6_a}")]
    );
    assert_eq!(
        answers(&gw, "-x", &ip6_a),
        [format!("PTR {}.{}.", a.id, net.name)]
    );
    assert_eq!(answers(&gw, &b.id, "A"), [format!("A {ip_b}")]);
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
    let net = dns_net(2);
    net.create_with(&[]);
    let first = run(&net, "dns-keep", json!({}), "sleep 100", &[]);
    let pid = net
        .resolver()
        .expect("a resolver once a container attached");
    let name = format!("hull-test-dns-come-{}.{}", std::process::id(), net.name);
    let gw = gateway(&net);
    let status = |n: &str| dig(&gw, 53, &[n, "A"]).0;
    assert_eq!(status(&name), "NXDOMAIN");
    for round in 0..2 {
        let c = run(
            &net,
            "dns-come",
            json!({"org.hull.dns.aliases": "comer"}),
            "sleep 100",
            &[],
        );
        let t = Instant::now();
        assert!(
            wait_until(1, || status(&format!("comer.{}", net.name)) == "NOERROR"),
            "round {round}: the alias did not appear"
        );
        assert_eq!(answers(&gw, &name, "A"), [format!("A {}", net.ip(&c.id))]);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        c.delete_and_check(true);
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
/// connects through it; PTR answers for the container's bridge address.
#[test]
fn host_view_answers_published_ports() {
    require("dig");
    let net = dns_net(3);
    let view = dns_port(&net, 0);
    let published = dns_port(&net, 1);
    net.create_with(&["--dns-host-port", &view.to_string()]);
    let mut b = net.ctr("dns-web");
    with_srv(&mut b);
    b.sh(&web_script("dns-host-view")).edit(|c| {
        c["annotations"] = json!({
            "org.hull.dns.service": "shop",
            "org.hull.dns.ports": "http:80/tcp"
        })
    });
    let publish = format!("127.0.0.1:{published}:80");
    run_bundle(&net, &b, &["-p", &publish]).unwrap();
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
    // PTR in the host view: the container's bridge address names it.
    let ip = net.ip(&b.id).to_string();
    let (status, ptr, _) = dig("127.0.0.1", view, &["-x", &ip]);
    assert_eq!(status, "NOERROR");
    assert_eq!(ptr, [format!("PTR {}.{}.", b.id, net.name)]);
    // Not 127.0.0.1, which the view answers A with: the subnet's free
    // addresses are NXDOMAIN.
    let free = format!("{}.250", net.prefix_str());
    let (status, _, _) = dig("127.0.0.1", view, &["-x", &free]);
    assert_eq!(status, "NXDOMAIN");
    // The bridge view still has the container port.
    let (_, inside, _) = dig(&gateway(&net), 53, &[&srv, "SRV"]);
    assert!(inside[0].contains(" 80 "), "{inside:?}");
}

/// A stub upstream on `addr` (in the lab): answers every A query with
/// `answer` (TTL 1234) and counts the queries it saw.
fn stub_upstream(
    addr: &str,
    answer: [u8; 4],
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sock = UdpSocket::bind(addr).unwrap();
    // The thread ends once the test has long stopped asking.
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
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
            r.extend_from_slice(&[0, 4]);
            r.extend_from_slice(&answer);
            let _ = sock.send_to(&r, peer);
        }
    });
    (port, seen)
}

/// Names that are not the network's are forwarded to the upstream named
/// with `--dns-upstream` (its answer's TTL kept); names in the network's
/// domain that do not exist are NXDOMAIN and never forwarded. The
/// upstream is a stub in the lab, on an address of a link there.
#[test]
fn forwards_other_names_upstream() {
    require("dig");
    in_lab(forwards_in_lab);
}

fn forwards_in_lab(_lab: PathBuf) {
    use std::sync::atomic::Ordering;
    lab_address("192.0.2.53");
    let (port, seen) = stub_upstream("192.0.2.53:0", [192, 0, 2, 7]);
    let net = dns_net(4);
    net.create_with(&["--dns-upstream", &format!("192.0.2.53:{port}")]);
    let c = run(&net, "dns-fwd", json!({}), "sleep 100", &[]);
    let (status, ans, _) = dig(&gateway(&net), 53, &["+ttlid", "example.test", "A"]);
    assert_eq!(status, "NOERROR");
    assert_eq!(ans, ["A 192.0.2.7"]);
    assert!(seen.load(Ordering::SeqCst) >= 1, "the stub was not asked");
    let out = Command::new("dig")
        .args([
            &format!("@{}", gateway(&net)),
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
    let (status, _, _) = dig(&gateway(&net), 53, &[&format!("ghost.{}", net.name), "A"]);
    assert_eq!(status, "NXDOMAIN");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        before,
        "a name of the network was forwarded"
    );
    // From inside too.
    let (code, out) = exec(&c, &format!("nslookup example.test {}", gateway(&net)));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("192.0.2.7"), "{out}");
}

/// A network without `--dns-upstream` forwards to the host's nameservers
/// but not to those on the host's loopback, although the resolver (in the
/// host's namespace) could reach them; with only loopback ones left (and
/// no systemd-resolved list), other names get SERVFAIL at once, not a
/// public fallback. The "host" is a lab with its own /etc/resolv.conf, a
/// stub on its loopback and one on a link address, both on port 53.
#[test]
fn host_loopback_nameservers_are_not_forwarded_to() {
    require("dig");
    in_lab(loopback_skipped_in_lab);
}

fn loopback_skipped_in_lab(_lab: PathBuf) {
    use std::io::{Seek, Write};
    use std::sync::atomic::Ordering;
    let conf = PathBuf::from(format!(
        "/tmp/hull-test-dns-resolv-{}.conf",
        std::process::id()
    ));
    std::fs::write(&conf, "nameserver 127.0.0.1\nnameserver 192.0.2.53\n").unwrap();
    // Rewritten through this handle, never through the path /etc/resolv.conf.
    let mut handle = std::fs::OpenOptions::new().write(true).open(&conf).unwrap();
    own_resolv_conf(&conf);
    std::fs::remove_file(&conf).unwrap();
    lab_address("192.0.2.53");
    let (_, on_loopback) = stub_upstream("127.0.0.1:53", [192, 0, 2, 1]);
    let (_, on_link) = stub_upstream("192.0.2.53:53", [192, 0, 2, 7]);
    // The loopback stub answers whoever asks on the host: skipping it is a choice.
    assert_eq!(
        dig("127.0.0.1", 53, &["direct.test", "A"]).1,
        ["A 192.0.2.1"]
    );
    let direct = on_loopback.load(Ordering::SeqCst);

    let net = dns_net(9);
    net.create_with(&[]);
    let _c = run(&net, "dns-up", json!({}), "sleep 100", &[]);
    let gw = gateway(&net);
    assert_eq!(dig(&gw, 53, &["example.test", "A"]).1, ["A 192.0.2.7"]);
    assert!(on_link.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        on_loopback.load(Ordering::SeqCst),
        direct,
        "forwarded to loopback"
    );

    // Only the loopback server left (the resolver reads the file per
    // query): SERVFAIL, at once.
    handle.set_len(0).unwrap();
    handle.rewind().unwrap();
    handle.write_all(b"nameserver 127.0.0.1\n").unwrap();
    drop(handle);
    let t = Instant::now();
    let (status, answers, _) = dig(&gw, 53, &["other.test", "A"]);
    assert_eq!(status, "SERVFAIL", "{answers:?}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(
        on_loopback.load(Ordering::SeqCst),
        direct,
        "forwarded to loopback"
    );
}

/// Malformed, truncated and oversized queries get FORMERR or nothing, and
/// the resolver keeps answering; it listens on the bridge only.
#[test]
fn malformed_queries_do_not_hurt() {
    require("dig");
    let net = dns_net(5);
    net.create_with(&[]);
    let c = run(&net, "dns-fuzz", json!({}), "sleep 100", &[]);
    let gw: SocketAddr = format!("{}:53", gateway(&net)).parse().unwrap();
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
    assert_eq!(answers(&gateway(&net), &c.id, "A").len(), 1);
    // Bound to the bridge: the gateway address reached over loopback is refused.
    let out = Command::new("dig")
        .args([
            &format!("@{}", gateway(&net)),
            "+tries=1",
            "+time=1",
            "-b",
            "127.0.0.1",
        ])
        .arg(&c.id)
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
/// of the hull that started it (a crashed hull takes nothing with it); it
/// goes by itself when the last container leaves, leaving no process,
/// socket or pid file, and the next attach starts another at once;
/// `network rm` leaves nothing of it.
#[test]
fn resolver_lifecycle() {
    require("dig");
    let net = dns_net(6);
    net.create_with(&[]);
    assert_eq!(net.resolver(), None, "no resolver before an attach");
    let a = run(&net, "dns-life-a", json!({}), "sleep 100", &[]);
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
    assert!(wait_until(5, || !alive(first)));
    assert_eq!(net.resolver(), None);
    let b = run(&net, "dns-life-b", json!({}), "sleep 100", &[]);
    let second = net.resolver().expect("restarted on the next attach");
    assert_ne!(second, first);
    assert_eq!(answers(&gateway(&net), &a.id, "A").len(), 1);
    drop(a);
    assert_eq!(net.resolver(), Some(second), "a container is left");
    drop(b);
    net.assert_resolver_gone(second, "after the last container left");
    // The next attach starts another, which answers at once.
    let c = run(&net, "dns-life-c", json!({}), "sleep 100", &[]);
    let third = net.resolver().expect("started again on an attach");
    assert_eq!(answers(&gateway(&net), &c.id, "A").len(), 1);
    drop(c);
    net.assert_resolver_gone(third, "after the last container left again");
    let out = net.cmd(&["network", "rm", &net.name]);
    assert!(out.status.success(), "network rm: {}", text(&out.stderr));
    assert_no_process(&net.root.to_string_lossy());
    assert!(
        !net.root.join("dns").join(&net.name).exists(),
        "DNS state left"
    );
}

/// Which of hull's own poll calls is its wait for the word of the
/// resolver it started: the one with the 5 s start timeout, in a trace of
/// `run -d`.
fn resolver_wait(trace: &str) -> KillPoint {
    kill_points(trace, |name, args| {
        (name == "poll" || name == "ppoll")
            && (args.contains("], 1, 5000)") || args.contains("{tv_sec=5, tv_nsec=0}"))
    })
    .into_iter()
    .next()
    .unwrap_or_else(|| panic!("no wait for the resolver in the trace:\n{trace}"))
}

/// hull killed right after it started the network's resolver, while it
/// waits for the resolver's word (its container recorded as attached, its
/// create never finished): the resolver lives on, detached; the `delete
/// --force` that cleans up after the crash detaches the container, and
/// the resolver, its network now empty, goes: no process, no socket on the
/// gateway, no pid file.
#[test]
fn resolver_goes_after_a_crash_of_the_hull_that_started_it() {
    require("dig");
    require("strace");
    let net = dns_net(10);
    net.create_with(&[]);
    // A traced run finds the kill point; its resolver goes with it.
    let mut probe = net.ctr("dns-crash-probe");
    probe.args(&["sleep", "100"]);
    let log = net.root.join("run.trace");
    let trace = traced_run(&run_cmd(&net, &probe, &[]), &log, "poll,ppoll");
    let wait = resolver_wait(&trace);
    let probed = net.resolver().expect("the traced run started a resolver");
    probe.delete_and_check(true);
    net.assert_resolver_gone(probed, "after the traced run's container left");

    let mut b = net.ctr("dns-crash");
    b.args(&["sleep", "100"]);
    let mut killed = strace(&run_cmd(&net, &b, &[]), &killing_at(&wait));
    let out = output_via_files(&mut killed);
    assert!(
        !out.status.success(),
        "hull was not killed: {}",
        text(&out.stderr)
    );
    let mut pid = None;
    assert!(
        wait_until(5, || {
            pid = net.resolver();
            pid.is_some()
        }),
        "the killed hull's resolver did not start"
    );
    let pid = pid.unwrap();
    assert!(alive(pid));
    let out = b.cmd(&["delete", "--force", &b.id]);
    assert!(
        out.status.success(),
        "delete --force: {}",
        text(&out.stderr)
    );
    b.assert_no_state();
    net.assert_resolver_gone(pid, "after delete --force of the killed hull's container");
    assert!(net.inspect()["containers"].as_array().unwrap().is_empty());
}

/// Bad DNS options of `network create` and a bad DNS annotation fail,
/// naming what is wrong, and leave nothing.
#[test]
fn bad_options_and_annotations_are_refused() {
    let net = dns_net(7);
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
    net.create_with(&[]);
    let mut b = TestBundle::new("dns-bad");
    b.args(&["true"])
        .edit(|c| c["annotations"] = json!({"org.hull.dns.ports": "http:99999/tcp"}));
    let err = run_bundle(&net, &b, &[]).unwrap_err();
    assert!(err.contains("org.hull.dns.ports"), "{err}");
    b.assert_no_state();
    assert!(net.inspect()["containers"].as_array().unwrap().is_empty());
    assert_eq!(net.resolver(), None);
}
