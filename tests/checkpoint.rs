//! checkpoint / restore with CRIU: a container's processes dumped and
//! rebuilt with their memory, pid namespace, mounts and network namespace.
//!
//! CRIU 4.1 or newer is needed on this kernel (Debian's 3.17 cannot start:
//! it does not know the `[vvar_vclock]` mapping); the tests use the build
//! `$HULL_TEST_CRIU` names, else the shared one beside the workspace, and
//! fail, saying so, if there is none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hull_tests::netlab::{link_exists, Net};
use hull_tests::*;

/// `hull --root <root> --criu <criu> ARGS...`.
fn hull(b: &TestBundle, args: &[&str]) -> Out {
    let mut cmd = b.hull();
    cmd.arg("--criu").arg(criu()).args(args);
    Out::from(output_via_files(&mut cmd))
}

/// `hull checkpoint FLAGS... --image-path <image> ID`, asserted to succeed.
fn checkpoint(b: &TestBundle, flags: &[&str]) {
    let image = image_dir(b);
    let mut args = vec!["checkpoint"];
    args.extend(flags);
    args.extend(["--image-path", image.to_str().unwrap(), &b.id]);
    hull(b, &args).ok();
}

/// A shell loop counting in memory and writing each value to `file`.
fn counter(file: &str) -> String {
    format!("i=0; while true; do i=$((i+1)); echo $i > {file}; sleep 0.05; done")
}

/// The counter's value, read through the init's root.
fn read_counter(pid: i32, file: &str) -> u64 {
    let path = format!("/proc/{pid}/root{file}");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Waits until the counter of `pid` has reached `n`.
fn count_to(pid: i32, file: &str, n: u64) {
    wait_for(
        || format!("counter of {pid} at {}", read_counter(pid, file)),
        || read_counter(pid, file) >= n,
    );
}

fn image_dir(b: &TestBundle) -> PathBuf {
    b.dir.join("image")
}

/// `hull restore -d --pid-file` of the image into `id`; returns the pid.
fn restore(b: &TestBundle, id: &str) -> i32 {
    restore_with(b, id, &[])
}

/// [`restore`] with more flags.
fn restore_with(b: &TestBundle, id: &str, flags: &[&str]) -> i32 {
    let pid_file = b.dir.join(format!("{id}.pid"));
    let image = image_dir(b);
    let mut args = vec!["restore", "-d"];
    args.extend(flags);
    args.extend([
        "--image-path",
        image.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--bundle",
        b.dir.to_str().unwrap(),
        id,
    ]);
    hull(b, &args).ok();
    std::fs::read_to_string(&pid_file).unwrap().parse().unwrap()
}

fn state_of(b: &TestBundle, id: &str) -> serde_json::Value {
    serde_json::from_str(hull(b, &["state", id]).ok()).unwrap()
}

#[test]
fn counter_continues_after_restore_in_its_pid_namespace() {
    let mut b = TestBundle::new("ckpt-counter");
    b.sh(&counter("/dev/shm/c"));
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    count_to(pid, "/dev/shm/c", 10);
    let image = image_dir(&b);
    hull(
        &b,
        &["checkpoint", "--image-path", image.to_str().unwrap(), &b.id],
    )
    .ok();
    // The processes and the cgroup are gone; the container stays, stopped
    // (runc deletes it), until restored or deleted.
    assert!(!alive(pid), "init {pid} still runs after checkpoint");
    let s = b.state();
    assert_eq!((&s["status"], &s["pid"]), (&"stopped".into(), &0.into()));
    let list = hull(&b, &["list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(list.ok()).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == b.id.as_str() && c["status"] == "stopped"),
        "{listed}"
    );
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{}", b.id)).exists());
    let at_dump = std::fs::read_dir(&image).unwrap().count();
    assert!(at_dump > 3, "image directory nearly empty");

    let restored = restore(&b, &b.id.clone());
    let s = b.state();
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"], restored, "state and pid file disagree");
    // Its memory came back: the count goes on from where it was, not from 0.
    let first = read_counter(restored, "/dev/shm/c");
    assert!(first >= 10, "counter restarted: {first}");
    count_to(restored, "/dev/shm/c", first + 5);
    // Still pid 1 of its own pid namespace.
    let status = std::fs::read_to_string(format!("/proc/{restored}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    // exec, pause and kill work on it, and delete cleans it up.
    assert!(
        hull(&b, &["exec", &b.id, "cat", "/dev/shm/c"])
            .ok()
            .trim()
            .parse::<u64>()
            .unwrap()
            >= first
    );
    hull(&b, &["pause", &b.id]).ok();
    assert_eq!(b.state()["status"], "paused");
    hull(&b, &["resume", &b.id]).ok();
    hull(&b, &["kill", &b.id, "KILL"]).ok();
    wait_for(|| "restored init to die".into(), || !alive(restored));
    b.delete_and_check(false);
    assert_no_mount(&b.id);
}

#[test]
fn leave_running_and_restore_into_a_new_id() {
    let mut b = TestBundle::new("ckpt-leave");
    b.sh(&counter("/dev/shm/c"));
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    count_to(pid, "/dev/shm/c", 5);
    let image = image_dir(&b);
    hull(
        &b,
        &[
            "checkpoint",
            "--leave-running",
            "--image-path",
            image.to_str().unwrap(),
            &b.id,
        ],
    )
    .ok();
    assert_eq!(b.state()["status"], "running");
    assert_eq!(b.init_pid(), pid);
    let at = read_counter(pid, "/dev/shm/c");
    count_to(pid, "/dev/shm/c", at + 3);

    // The same image restored beside it, as another container.
    let copy = format!("{}-copy", b.id);
    let restored = restore(&b, &copy);
    assert_ne!(restored, pid);
    assert_eq!(state_of(&b, &copy)["status"], "running");
    let first = read_counter(restored, "/dev/shm/c");
    assert!(first >= 5, "copy restarted its count: {first}");
    count_to(restored, "/dev/shm/c", first + 3);
    // Its own cgroup, named after the new id.
    let cgroup = std::fs::read_to_string(format!("/proc/{restored}/cgroup")).unwrap();
    assert!(cgroup.contains(&copy), "{cgroup}");
    hull(&b, &["delete", "--force", &copy]).ok();
    assert!(!alive(restored));
    assert!(alive(pid), "the original died with its copy");
}

#[test]
fn bind_mount_and_network_namespace_come_back() {
    let mut b = TestBundle::new("ckpt-bind");
    let data = b.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/data",
            "type": "bind",
            "source": "data",
            "options": ["rbind", "rw"]
        }));
    });
    // The loopback address is changed, so a fresh namespace would differ.
    // Output then goes to the container's own /dev/null: CRIU checks that a
    // regular file from outside (the log hull's stdout is here) has the
    // size it had at the dump, and `ip` may have written to it.
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_NET_ADMIN".into());
        }
    });
    b.sh(&format!(
        "ip addr add 127.0.0.7/8 dev lo && exec >/dev/null 2>&1 && {}",
        counter("/data/c")
    ));
    b.detached(&["run", "-d"]);
    let pid = b.init_pid();
    count_to(pid, "/data/c", 5);
    let netns_before = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let image = image_dir(&b);
    hull(
        &b,
        &["checkpoint", "--image-path", image.to_str().unwrap(), &b.id],
    )
    .ok();
    let at_dump: u64 = std::fs::read_to_string(data.join("c"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let later: u64 = std::fs::read_to_string(data.join("c"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(at_dump, later, "the count moved while checkpointed");

    let restored = restore(&b, &b.id.clone());
    // The bind mount shows the host directory again: the count goes on there.
    wait_for(
        || "the restored counter to write to the bind mount".into(),
        || {
            std::fs::read_to_string(data.join("c"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|n| n > at_dump)
        },
    );
    // A network namespace of its own, with the address it had.
    let netns_after = std::fs::read_link(format!("/proc/{restored}/ns/net")).unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(netns_after, host);
    assert_ne!(netns_after, netns_before, "not a new namespace");
    let addrs = hull(&b, &["exec", &b.id, "ip", "addr", "show", "lo"]);
    assert!(addrs.ok().contains("127.0.0.7"), "{}", addrs.stdout);
    b.delete_and_check(true);
    assert_no_mount(&b.id);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let mut b = TestBundle::new("ckpt-bad");
    b.args(&["sleep", "60"]);
    let image = image_dir(&b);
    let image_arg = image.to_str().unwrap().to_owned();

    // A restore from a directory without a checkpoint.
    hull(
        &b,
        &[
            "restore",
            "-d",
            "--image-path",
            &image_arg,
            "--bundle",
            b.dir.to_str().unwrap(),
            &b.id,
        ],
    )
    .fails_with("is not a checkpoint image directory");
    b.assert_no_state();
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{}", b.id)).exists());
    assert_no_mount(&b.id);

    // A created container is not running yet.
    b.create();
    hull(&b, &["checkpoint", "--image-path", &image_arg, &b.id])
        .fails_with("cannot checkpoint a container that is created");
    assert!(
        !image.exists(),
        "image directory made for a refused checkpoint"
    );
    hull(&b, &["start", &b.id]).ok();

    // No memory tracking on this kernel: pre-dump is refused, by name.
    hull(
        &b,
        &[
            "checkpoint",
            "--pre-dump",
            "--image-path",
            &image_arg,
            &b.id,
        ],
    )
    .fails_with("--pre-dump is not supported here");
    assert!(!image.exists());
    assert_eq!(b.state()["status"], "running");

    // No CRIU where --criu points.
    let mut cmd = b.hull();
    cmd.args([
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        &image_arg,
        &b.id,
    ]);
    Out::from(output_via_files(&mut cmd)).fails_with("criu not found at /nonexistent/criu");
    assert!(
        !image.exists(),
        "image directory left by a checkpoint without CRIU"
    );
    assert_eq!(b.state()["status"], "running");
    b.delete_and_check(true);
}

/// Test `n`'s hull network (the network lab's [`Net`] on 10.250.`n`.0/24),
/// created. Declared before the test's bundle, it is dropped after it: the
/// bundle's `delete --force` detaches the container first (its attachment
/// record names this state).
fn ckpt_net(n: u8) -> Net {
    let net = Net::new(&format!("ckpt{n}"), n);
    net.create();
    net
}

/// `hull run -d --network <net> -p 127.0.0.1:<host>:<port> ID`.
fn run_published(net: &Net, b: &TestBundle, host: u16, port: u16) {
    let mut cmd = net.hull(b);
    cmd.args(["run", "-d", "--network", &net.name, "-p"])
        .arg(format!("127.0.0.1:{host}:{port}"))
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&b.id);
    Out::from(output_via_files(&mut cmd)).ok();
}

/// The attachments of the network, from `network inspect`.
fn attachments(net: &Net) -> Vec<serde_json::Value> {
    net.inspect()["containers"].as_array().unwrap().clone()
}

/// A checkpointed container on a hull network keeps its address, lease and
/// published port while its process, cgroup and veth are gone; restored, it
/// answers on the port again from the same address; checkpointed again and
/// deleted, it frees them all.
#[test]
fn web_server_on_a_published_port_answers_after_restore() {
    use hull_tests::net::{assert_serves, port, sock, try_get, web_script, with_srv};
    let net = ckpt_net(30);
    let mut b = TestBundle::new("ckpt-web");
    with_srv(&mut b);
    b.sh(&format!(
        "exec >/dev/null 2>&1; {}",
        web_script("hull-ckpt-web")
    ));
    let h = port(30);
    run_published(&net, &b, h, 80);
    let site = sock(std::net::Ipv4Addr::LOCALHOST, h);
    assert_serves(site, "hull-ckpt-web");
    let attached = attachments(&net);
    assert_eq!(attached.len(), 1, "{attached:?}");
    let ip = attached[0]["ip"].as_str().unwrap().to_owned();
    let veth = attached[0]["host_veth"].as_str().unwrap().to_owned();
    assert!(net.ruleset().contains(&ip), "no forward to {ip}");

    checkpoint(&b, &[]);
    assert_eq!(b.state()["status"], "stopped");
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{}", b.id)).exists());
    assert!(!link_exists(&veth), "veth {veth} left while checkpointed");
    // What the restore gives back stays: attachment, lease, forward.
    assert_eq!(attachments(&net), attached);
    assert_eq!(net.leases(), vec![ip.clone()]);
    assert!(net.ruleset().contains(&ip), "forward to {ip} dropped");
    assert!(try_get(site).is_err(), "port answers while checkpointed");
    // Another container cannot take the id meanwhile.
    let taken = hull(
        &b,
        &["run", "-d", "--bundle", b.dir.to_str().unwrap(), &b.id],
    );
    taken.fails_with("already exists");

    // Under another id nothing would give it an address: refused, by name.
    let copy = format!("{}-copy", b.id);
    let image = image_dir(&b);
    hull(
        &b,
        &[
            "restore",
            "-d",
            "--image-path",
            image.to_str().unwrap(),
            "--bundle",
            b.dir.to_str().unwrap(),
            &copy,
        ],
    )
    .fails_with("interface eth0 of the checkpoint is one end of a veth pair");
    hull(&b, &["state", &copy]).fails_with("does not exist");
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/{copy}")).exists());

    let pid = restore(&b, &b.id.clone());
    assert_serves(site, "hull-ckpt-web");
    assert_eq!(b.state()["status"], "running");
    assert_eq!(b.state()["pid"], pid);
    let addr = hull(
        &b,
        &["exec", &b.id, "ip", "-o", "-4", "addr", "show", "eth0"],
    );
    assert!(
        addr.ok().contains(&format!("inet {ip}/")),
        "{}",
        addr.stdout
    );
    // The host end is back on the bridge, in hairpin mode.
    let master = std::fs::read_link(format!("/sys/class/net/{veth}/master")).unwrap();
    assert!(master.ends_with(&net.bridge), "{}", master.display());
    let hairpin = std::fs::read_to_string(format!("/sys/class/net/{veth}/brport/hairpin_mode"));
    assert_eq!(hairpin.unwrap().trim(), "1");

    // Checkpointed again, then deleted: everything goes.
    checkpoint(&b, &[]);
    hull(&b, &["delete", &b.id]).ok();
    b.assert_no_state();
    assert_eq!(attachments(&net), Vec::<serde_json::Value>::new());
    assert!(net.leases().is_empty(), "lease left: {:?}", net.leases());
    assert!(!net.ruleset().contains(&ip), "forward to {ip} left");
    assert!(!link_exists(&veth));
}

/// A TCP connection from the host to the published port of a container
/// survives `--tcp-established` checkpoint and restore: the same socket
/// talks before and after.
#[test]
fn established_tcp_connection_survives() {
    use std::io::{BufRead, BufReader, Write};
    let net = ckpt_net(31);
    let mut b = TestBundle::new("ckpt-tcp");
    // One connection, echoed line by line by `cat` on the socket.
    b.sh("exec >/dev/null 2>&1; exec nc -l -p 7000 -e cat");
    let h = hull_tests::net::port(31);
    run_published(&net, &b, h, 7000);
    let addr = hull_tests::net::sock(std::net::Ipv4Addr::LOCALHOST, h);
    let mut conn = None;
    wait_for(
        || format!("the echo server on {addr}"),
        || {
            let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                return false;
            };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut line = String::new();
            let echoed = s.write_all(b"before\n").is_ok()
                && BufReader::new(&s).read_line(&mut line).is_ok()
                && line == "before\n";
            if echoed {
                conn = Some(s);
            }
            echoed
        },
    );
    let mut conn = conn.unwrap();
    let local = conn.local_addr().unwrap();

    checkpoint(&b, &["--tcp-established"]);
    assert_eq!(b.state()["status"], "stopped");
    restore_with(&b, &b.id.clone(), &["--tcp-established"]);
    conn.write_all(b"after\n").unwrap();
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).unwrap();
    assert_eq!(line, "after\n", "the connection did not survive");
    assert_eq!(conn.local_addr().unwrap(), local);
    drop(conn);
    b.delete_and_check(true);
}

/// Reads `master` in a thread; each chunk comes on the channel.
fn reader(master: std::os::fd::OwnedFd) -> std::sync::mpsc::Receiver<String> {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = [0u8; 1024];
        // Ends with EIO once the slave is closed.
        while let Ok(n @ 1..) = f.read(&mut buf) {
            if tx.send(text(&buf[..n])).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads ticks from `rx` until one is at least `n`; the ticks seen.
fn ticks_to(rx: &std::sync::mpsc::Receiver<String>, n: u64) -> Vec<u64> {
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ticks: Vec<u64> = seen
            .split("tick ")
            .skip(1)
            .filter_map(|t| t.split_whitespace().next()?.parse().ok())
            .collect();
        if ticks.last().is_some_and(|&t| t >= n) {
            return ticks;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&chunk),
            Err(_) => panic!("no tick {n} on the terminal; got {seen:?}"),
        }
    }
}

/// A container with a terminal restores with `--console-socket`: the new
/// pty master goes there, and the shell goes on ticking on its terminal.
#[test]
fn terminal_restores_through_the_console_socket() {
    use std::os::unix::net::UnixListener;
    let mut b = TestBundle::new("ckpt-tty");
    b.edit(|c| c["process"]["terminal"] = serde_json::json!(true));
    b.sh("i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done");
    let first = b.dir.join("console-1.sock");
    let listener = UnixListener::bind(&first).unwrap();
    let (master, _) = create_with_console(&b, &listener);
    hull(&b, &["start", &b.id]).ok();
    let before = reader(master);
    let seen = ticks_to(&before, 5);
    let last = *seen.last().unwrap();

    checkpoint(&b, &[]);
    // The old master's reader ends: the terminal is gone with the processes.
    drop(before);

    let second = b.dir.join("console-2.sock");
    let listener = UnixListener::bind(&second).unwrap();
    let pid = restore_with(
        &b,
        &b.id.clone(),
        &["--console-socket", second.to_str().unwrap()],
    );
    let master = recv_fd(&listener.accept().unwrap().0);
    let after = ticks_to(&reader(master), last + 10);
    assert!(
        after.iter().all(|&t| t > last),
        "the count went back: {last} before, {after:?} after"
    );
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(tty.starts_with("/dev/pts/"), "{}", tty.display());
    b.delete_and_check(true);
}

/// `hull features` says checkpoint is enabled where runc's does (an
/// annotation: runc's document lists no commands), and `hull --help` lists
/// both commands.
#[test]
fn features_and_help_list_checkpoint_and_restore() {
    let b = TestBundle::new("ckpt-features");
    let doc: serde_json::Value = serde_json::from_str(hull(&b, &["features"]).ok()).unwrap();
    assert_eq!(doc["annotations"]["dev.hull.checkpoint.enabled"], "true");
    let help = hull(&b, &["--help"]);
    for command in ["checkpoint", "restore"] {
        assert!(
            help.ok()
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "{command} missing from --help: {}",
            help.stdout
        );
    }
}
