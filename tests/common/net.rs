//! Network test helpers shared by the networking tests: the per-test host
//! ports, HTTP probes of published ports, DNS probes of hull's resolver
//! (`dig`), and busybox web server and client scripts for containers.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{text, TestBundle};

/// The first host port of test `n`; a test uses `port(n)..port(n) + 10`.
pub fn port(n: u8) -> u16 {
    28000 + 10 * u16::from(n)
}

/// Waits (up to `secs`) until `cond` holds; whether it did.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.0 GET of `/`; the whole response.
pub fn try_get(addr: SocketAddr) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    if resp.starts_with("HTTP/1.") {
        Ok(resp)
    } else {
        Err(format!("not an HTTP response: {resp:?}"))
    }
}

/// GETs `http://addr/` until it answers (the server may still be starting),
/// for up to 15s; the response, or the last error.
pub fn http_get(addr: SocketAddr) -> Result<String, String> {
    let mut last = String::new();
    let answered = wait_until(15, || match try_get(addr) {
        Ok(r) => {
            last = r;
            true
        }
        Err(e) => {
            last = e;
            false
        }
    });
    if answered {
        Ok(last)
    } else {
        Err(format!("GET http://{addr}/: {last}"))
    }
}

/// Asserts that `http://addr/` serves a page containing `tag`.
pub fn assert_serves(addr: SocketAddr, tag: &str) {
    let resp = http_get(addr).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        resp.contains(tag),
        "http://{addr}/ answered without {tag:?}: {resp}"
    );
}

pub fn sock(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// A container script serving a page with `tag` on port 80 from a tmpfs at
/// /srv (see [`with_srv`]).
pub fn web_script(tag: &str) -> String {
    format!("echo {tag} > /srv/index.html && exec httpd -f -p 80 -h /srv")
}

/// A container script that GETs `http://ip:port/` with busybox nc (wget
/// segfaults on this host) until the page has `tag`, prints it, exit 0; or
/// prints the last answer and exits 1 after ~10s.
pub fn fetch_script(ip: impl std::fmt::Display, port: u16, tag: &str) -> String {
    format!(
        "i=0; while [ $i -lt 50 ]; do \
           r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port} 2>&1); \
           case \"$r\" in *{tag}*) echo \"GOT $r\"; exit 0;; esac; \
           i=$((i+1)); sleep 0.2; \
         done; echo \"FAILED, last answer: $r\"; exit 1"
    )
}

/// Adds a writable tmpfs at /srv (the fixture rootfs is read-only).
pub fn with_srv(b: &mut TestBundle) {
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/srv",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=755", "size=1m"]
        }))
    });
}

/// `dig @server -p port ARGS`: (status, answer lines, additional lines).
pub fn dig(server: &str, port: u16, args: &[&str]) -> (String, Vec<String>, Vec<String>) {
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
pub fn answers(server: &str, name: &str, ty: &str) -> Vec<String> {
    let (status, answers, _) = dig(server, 53, &[name, ty]);
    assert_eq!(status, "NOERROR", "{name} {ty}: {answers:?}");
    answers
}
