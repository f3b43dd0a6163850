//! hull-cni end to end: the built plugin, run the way a runtime runs it
//! (environment variables, config on stdin, JSON on stdout).
//!
//! The privileged test attaches a namespace made by `unshare --net sleep`
//! with a private data directory (`/tmp/hull-test-cni-<pid>`), bridge
//! (`hulltest<pid>`) and nf_tables table (`hull_test_cni_<pid>`), all
//! removed at the end. It is skipped when not run as root.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PLUGIN: &str = env!("CARGO_BIN_EXE_hull-cni");

/// What one plugin run printed, and whether it exited 0.
#[derive(Debug)]
struct Reply {
    json: Value,
    ok: bool,
}

/// Runs the plugin with `CNI_COMMAND=command`, the other `env` and `conf`
/// on stdin.
fn cni(command: &str, env: &[(&str, &str)], conf: &Value) -> Reply {
    let mut child = Command::new(PLUGIN)
        .env("CNI_COMMAND", command)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run hull-cni");
    let mut stdin = child.stdin.take().unwrap();
    // A plugin may answer without reading stdin (VERSION, or an error found
    // in the environment first) and exit: the pipe is then closed, which is
    // not a failure.
    match stdin.write_all(conf.to_string().as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write the config: {e}"),
        _ => drop(stdin),
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let json = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Reply {
        json,
        ok: out.status.success(),
    }
}

/// Runs a tool, returning its output.
fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn stdout_of(program: &str, args: &[&str]) -> String {
    String::from_utf8(tool(program, args).stdout).unwrap()
}

#[test]
fn version_and_errors_as_the_spec_says() {
    let version = cni("VERSION", &[], &json!({"cniVersion": "1.0.0"}));
    assert!(version.ok);
    assert_eq!(
        version.json,
        json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]})
    );

    let target = [("CNI_CONTAINERID", "hull-test-x"), ("CNI_IFNAME", "eth0")];
    let old = cni(
        "DEL",
        &target,
        &json!({"cniVersion": "0.1.0", "name": "n", "type": "hull"}),
    );
    assert!(!old.ok);
    assert_eq!(old.json["code"], 1);
    let no_ns = cni(
        "ADD",
        &target,
        &json!({"cniVersion": "0.4.0", "name": "n", "type": "hull"}),
    );
    assert_eq!((no_ns.ok, &no_ns.json["code"]), (false, &json!(4)));
    assert_eq!(no_ns.json["cniVersion"], "0.4.0");
    assert!(no_ns.json["msg"].as_str().unwrap().contains("CNI_NETNS"));
}

/// A private network namespace, network, bridge, table and data directory;
/// all removed on drop.
struct Lab {
    holder: Child,
    pid: u32,
    dir: PathBuf,
    table: String,
    bridge: String,
    network: String,
    container: String,
    third_octet: u32,
    host_port: u16,
}

impl Lab {
    fn new() -> Self {
        let pid = std::process::id();
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .expect("run unshare");
        let lab = Self {
            pid: holder.id(),
            holder,
            dir: PathBuf::from(format!("/tmp/hull-test-cni-{pid}")),
            table: format!("hull_test_cni_{pid}"),
            bridge: format!("hulltest{pid}"),
            network: format!("hull-test-{pid}"),
            container: format!("hull-test-cid-{pid}"),
            third_octet: pid % 256,
            host_port: u16::try_from(30000 + pid % 20000).unwrap(),
        };
        lab.wait_for_netns();
        lab
    }

    /// Waits until the holder has its own namespace.
    fn wait_for_netns(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let own = fs::read_link("/proc/self/ns/net").unwrap();
        while fs::read_link(self.netns()).ok().is_none_or(|ns| ns == own) {
            assert!(Instant::now() < deadline, "unshare never made a namespace");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid))
    }

    fn ip(&self, host: u32) -> String {
        format!("10.213.{}.{host}", self.third_octet)
    }

    fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": self.network,
            "type": "hull",
            "bridge": self.bridge,
            "subnet": format!("{}/24", self.ip(0)),
            "dataDir": self.dir,
            "table": self.table,
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [
                {"hostPort": self.host_port, "containerPort": 80, "protocol": "tcp"}
            ]}
        })
    }

    fn run(&self, command: &str, ifname: &str, conf: &Value) -> Reply {
        let netns = self.netns();
        let env = [
            ("CNI_CONTAINERID", self.container.as_str()),
            ("CNI_IFNAME", ifname),
            ("CNI_NETNS", netns.to_str().unwrap()),
            ("CNI_PATH", "/nonexistent"),
        ];
        cni(command, &env, conf)
    }

    /// `ip -o -4 addr` inside the namespace.
    fn addresses_inside(&self) -> String {
        let ns = format!("--net={}", self.netns().display());
        stdout_of("nsenter", &[&ns, "ip", "-o", "-4", "addr", "show"])
    }

    /// The published-port map for every host address.
    fn any_ports(&self) -> String {
        stdout_of("nft", &["list", "map", "ip", &self.table, "any_ports"])
    }

    fn lease(&self, ip: &str) -> PathBuf {
        self.dir.join("leases").join(&self.network).join(ip)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = tool("ip", &["link", "del", &self.bridge]);
        let _ = tool("nft", &["delete", "table", "ip", &self.table]);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn add_check_del_in_a_private_netns() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let lab = Lab::new();
    let conf = lab.conf();
    let (ip, gw) = (lab.ip(2), lab.ip(1));

    let lo = lab.run(
        "ADD",
        "lo",
        &json!({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}),
    );
    assert!(lo.ok, "{}", lo.json);
    assert_eq!(lo.json["ips"][0]["address"], "127.0.0.1/8");

    let add = lab.run("ADD", "eth1", &conf);
    assert!(add.ok, "ADD failed: {}", add.json);
    let r = &add.json;
    assert_eq!(r["cniVersion"], "1.0.0");
    assert_eq!(r["interfaces"][0]["name"], lab.bridge.as_str());
    assert_eq!(r["interfaces"][2]["name"], "eth1");
    assert_eq!(r["interfaces"][2]["sandbox"], lab.netns().to_str().unwrap());
    assert_eq!(r["interfaces"][2]["mac"].as_str().unwrap().len(), 17);
    assert_eq!(
        r["ips"],
        json!([{"address": format!("{ip}/24"), "gateway": gw, "interface": 2}])
    );
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": gw}]));
    let veth = r["interfaces"][1]["name"].as_str().unwrap().to_owned();
    assert!(r["interfaces"][1].get("sandbox").is_none());

    assert!(link_exists(&veth), "host veth {veth} missing");
    let inside = lab.addresses_inside();
    assert!(
        inside.contains(&format!("eth1    inet {ip}/24")),
        "{inside}"
    );
    assert_eq!(fs::read_to_string(lab.lease(&ip)).unwrap(), lab.container);
    assert!(
        lab.any_ports()
            .contains(&format!("{} : {ip} . 80", lab.host_port)),
        "{}",
        lab.any_ports()
    );

    let mut cached = conf.clone();
    cached["prevResult"] = r.clone();
    let check = lab.run("CHECK", "eth1", &cached);
    assert!(check.ok, "CHECK failed: {}", check.json);
    assert_eq!(check.json, Value::Null);
    let again = lab.run("ADD", "eth1", &conf);
    assert_eq!((again.ok, &again.json["code"]), (false, &json!(104)));

    for round in ["DEL", "second DEL"] {
        let del = lab.run("DEL", "eth1", &conf);
        assert!(del.ok, "{round} failed: {}", del.json);
    }
    assert!(!link_exists(&veth), "host veth {veth} still there");
    assert!(!lab.addresses_inside().contains(&ip));
    assert!(!lab.lease(&ip).exists(), "lease still there");
    assert!(!lab.any_ports().contains(&ip), "{}", lab.any_ports());
    let check = lab.run("CHECK", "eth1", &conf);
    assert_eq!((check.ok, &check.json["code"]), (false, &json!(103)));
    assert!(
        lab.run(
            "DEL",
            "lo",
            &json!({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"})
        )
        .ok
    );
}
