//! libcontainer and bridge used as libraries: the `lifecycle` example of
//! the libcontainer crate drives a container from create to delete; the
//! `publish` example of the bridge crate does so with a published port,
//! and its delete alone disconnects the container; a container loaded from
//! its state is disconnected by the delete it gives its network to.
//!
//! The networked tests use `tests/common/netlab.rs`'s isolation: their own
//! `--net-root`, `--net-table`, network on 10.250.NN.0/24 and host ports.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use bridge::{ContainerNetwork, Store};
use hull_tests::net::*;
use hull_tests::netlab::*;
use hull_tests::*;
use libcontainer::{Container, Error, Network, NetworkError, Status};

/// The built example `name` of `package`. `cargo test -p hull-tests` does
/// not build another package's examples, so build it here (a no-op when
/// fresh).
fn build_example(package: &str, name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "-p", package, "--example", name])
        .current_dir(workspace())
        .stdout(Stdio::null())
        .status()
        .expect("run cargo build")
        .success();
    assert!(ok, "cargo build -p {package} --example {name} failed");
    let path = workspace().join("target/debug/examples").join(name);
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// The `lifecycle` example, built once.
fn example() -> &'static PathBuf {
    static EXAMPLE: OnceLock<PathBuf> = OnceLock::new();
    EXAMPLE.get_or_init(|| build_example("libcontainer", "lifecycle"))
}

/// Runs the example against the bundle; returns its stdout after asserting success.
fn run_example(b: &TestBundle, extra: &[&str]) -> String {
    let out = Command::new(example())
        .arg(&b.dir)
        .arg(&b.root)
        .arg(&b.id)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "example failed: {:?} stdout={} stderr={}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn library_lifecycle_reports_the_exit_code() {
    let mut b = TestBundle::new("lib-exit7");
    b.sh("exit 7");
    assert_eq!(run_example(&b, &[]), "exit=7\n");
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn library_lifecycle_kill_reports_137() {
    let mut b = TestBundle::new("lib-kill");
    b.args(&["sleep", "1000"]);
    assert_eq!(run_example(&b, &["kill"]), "exit=137\n");
    b.assert_no_state();
    assert_no_process(&b.id);
}

/// Nothing of container `c` is left on `net`: no state, veth, lease,
/// attachment record or published port.
fn assert_disconnected(net: &Net, c: &Ctr) {
    c.assert_no_state();
    assert_no_process(&c.id);
    let veth = veth_name(&c.id);
    assert!(!link_exists(&veth), "veth {veth} left");
    assert_eq!(net.leases(), Vec::<String>::new(), "lease left");
    assert_eq!(net.attachment_files(), Vec::<String>::new());
    assert_eq!(net.map_elements(), Some(0), "published port left");
}

/// A port published through the libraries alone (`ContainerBuilder::network`
/// with `bridge::ContainerNetwork`, the `publish` example): it serves on
/// 127.0.0.1; the example then stops the container and deletes it without
/// a call to disconnect it, and nothing of it is left.
#[test]
fn library_delete_disconnects_a_published_container() {
    let net = Net::new("libpub", 14);
    net.create();
    let h = port(14);
    let mut c = net.ctr("lib-pub");
    with_srv(&mut c);
    c.sh(&web_script("hello-lib14"));
    let mut example = Command::new(build_example("bridge", "publish"))
        .arg(&c.dir)
        .arg(&c.root)
        .arg(&c.id)
        .arg(&net.root)
        .arg(&net.table)
        .arg(&net.name)
        .arg(format!("127.0.0.1:{h}:80"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(example.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.starts_with("address=10.250.14."), "{line:?}");
    assert_eq!(net.attachment_files().len(), 1);
    assert_eq!(net.leases().len(), 1);
    assert!(link_exists(&veth_name(&c.id)));
    assert_eq!(net.map_elements(), Some(1));
    assert_serves(sock(Ipv4Addr::LOCALHOST, h), "hello-lib14");
    drop(example.stdin.take()); // end of input: the example stops the container
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(example.wait().unwrap().success(), "example failed: {rest}");
    assert_eq!(rest, "exit=137\n");
    assert_disconnected(&net, &c);
}

/// A network of another kind than the one that connected a container.
#[derive(Debug)]
struct Elsewhere;

impl Network for Elsewhere {
    fn kind(&self) -> &str {
        "elsewhere"
    }
    fn record(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn connect(&self, _: &Container) -> Result<(), NetworkError> {
        Err("Elsewhere connects nothing".into())
    }
    fn disconnect(&self, _: &Container, _: &serde_json::Value) -> Result<(), NetworkError> {
        Err("Elsewhere disconnects nothing".into())
    }
}

/// A networked container loaded from its state (made by `hull create
/// --network -p`): its delete without the network that connected it, or
/// with one of another kind, is refused with an error naming the network
/// and changes nothing; with a `ContainerNetwork` of another store (the
/// state names the one it is attached in) it removes everything.
#[test]
fn library_delete_of_a_loaded_container_needs_its_network() {
    let net = Net::new("libload", 15);
    net.create();
    let mut c = net.ctr("lib-load");
    c.args(&["sleep", "600"]);
    let publish = format!("127.0.0.1:{}:80", port(15));
    let (code, _, err) = c.launch(
        &["create"],
        &["--network", &net.name, "-p", &publish],
        "create",
    );
    assert_eq!(code, 0, "create: {err}");
    let load = || Container::load(&c.root, &c.id).unwrap();
    let record = load().network_record().cloned().expect("a network record");
    assert_eq!(record.kind, "hull-bridge");

    let e = load().delete(true).unwrap_err();
    assert!(matches!(e, Error::NetworkNotGiven { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&c.id) && message.contains("hull-bridge"),
        "{message}"
    );
    let e = load().with_network(Elsewhere).delete(true).unwrap_err();
    assert!(e.to_string().contains("not elsewhere"), "{e}");
    // Refused before anything changed.
    assert_eq!(load().status(), Status::Created);
    assert_eq!(net.attachment_files().len(), 1);
    assert_eq!(net.leases().len(), 1);
    assert!(link_exists(&veth_name(&c.id)));
    assert_eq!(net.map_elements(), Some(1));

    let elsewhere = net.root.join("not-this-one");
    let teardown = ContainerNetwork::new(Store::new(&elsewhere, "hull_test_unused"));
    load().with_network(teardown).delete(true).unwrap();
    assert_disconnected(&net, &c);
    assert!(!elsewhere.exists(), "the given store was used");
}
