//! Single containers through `docker run`: exit codes, a published port,
//! exec, top, stats, pause, the stop signals and the security options.

use std::time::Instant;

use super::{Docker, IMAGE};
use crate::harness;

/// A container serving `tag` at /index.html on port 80 with busybox httpd.
const HTTPD: &str = "echo $TAG > /tmp/index.html; exec httpd -f -p 80 -h /tmp";

/// One-shot containers: output and exit code come back through Docker.
pub fn one_shot(d: &Docker) {
    let out = d.cli(&["run", "--rm", IMAGE, "sh", "-c", "echo hello; exit 3"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (3, "hello\n"),
        "{}",
        out.stderr
    );
    d.ok(&["run", "--rm", IMAGE, "/bin/true"]);
    // Docker maps the runtime's start errors: not found 127, not executable 126.
    let out = d.cli(&["run", "--rm", IMAGE, "nosuch"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    let out = d.cli(&["run", "--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(out.code, 126, "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
}

/// A busybox httpd published on 127.0.0.1, then exec, top, stats and
/// pause/unpause against it.
pub fn published_port_exec_top_stats_pause(d: &Docker) {
    let port = hull_tests::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let name = "hull-test-web";
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "-e",
        "TAG=hull-docker-web",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(harness::http_get(port).trim(), "hull-docker-web");

    // exec: the process's exit code, or Docker's for a start error (with
    // Docker 20.10, exec reports 126 for a missing command as well: runc
    // gives the same).
    assert_eq!(d.cli(&["exec", name, "true"]).code, 0);
    assert_eq!(d.cli(&["exec", name, "sh", "-c", "exit 1"]).code, 1);
    assert_eq!(d.cli(&["exec", name, "/etc/passwd"]).code, 126);
    assert_eq!(d.cli(&["exec", name, "nosuch"]).code, 126);
    assert_eq!(d.cli(&["exec", name, "sh", "-c", "nosuch"]).code, 127);
    let tty = d.ok(&["exec", "-t", name, "tty"]);
    assert!(tty.starts_with("/dev/pts/"), "exec -t: {tty:?}");
    assert_eq!(d.cli(&["exec", name, "tty"]).stdout.trim(), "not a tty");

    let top = d.ok(&["top", name]);
    assert!(top.contains("httpd -f -p 80"), "top: {top}");
    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        name,
    ]);
    let fields: Vec<&str> = stats.split_whitespace().collect();
    assert_eq!(fields[..2], [name, "1"], "stats: {stats}");
    assert!(
        !fields[2].starts_with("0B"),
        "stats without memory use: {stats}"
    );

    let pid = d.inspect(name, "{{.State.Pid}}");
    let freezer = harness::cgroup_of(&pid, "freezer");
    d.ok(&["pause", name]);
    assert_eq!(d.inspect(name, "{{.State.Status}}"), "paused");
    assert_eq!(harness::read_cgroup(&freezer, "freezer.state"), "FROZEN");
    d.ok(&["unpause", name]);
    assert_eq!(d.inspect(name, "{{.State.Status}}"), "running");
    assert_eq!(harness::read_cgroup(&freezer, "freezer.state"), "THAWED");
    assert_eq!(harness::http_get(port).trim(), "hull-docker-web");

    d.ok(&["rm", "-f", name]);
    assert!(!freezer.exists(), "cgroup left: {}", freezer.display());
    // docker-proxy, which forwarded the port, is gone with the container.
    hull_tests::assert_no_process(&format!("-host-port {port} "));
}

/// `stop` delivers SIGTERM to a trapping init, `kill` SIGKILL, `restart`
/// starts a new init, `rm -f` removes a running container.
pub fn stop_kill_restart(d: &Docker) {
    let name = "hull-test-trap";
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done";
    d.ok(&["run", "-d", "--name", name, IMAGE, "sh", "-c", script]);
    let ready = |n: usize| {
        harness::wait(20, "trap ready", || {
            d.ok(&["logs", name]).matches("ready").count() >= n
        })
    };
    ready(1);
    let t = Instant::now();
    d.ok(&["stop", name]);
    assert!(
        t.elapsed().as_secs() < 8,
        "stop waited for the timeout: the trap missed SIGTERM"
    );
    assert_eq!(d.inspect(name, "{{.State.ExitCode}}"), "7");
    assert!(d.ok(&["logs", name]).contains("got-term"));

    d.ok(&["start", name]);
    ready(2);
    d.ok(&["kill", name]);
    assert_eq!(
        d.inspect(name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );

    d.ok(&["start", name]);
    ready(3);
    let before = d.inspect(name, "{{.State.Pid}}");
    d.ok(&["restart", "-t", "5", name]);
    assert_eq!(d.inspect(name, "{{.State.Status}}"), "running");
    assert_ne!(
        d.inspect(name, "{{.State.Pid}}"),
        before,
        "restart kept the old init"
    );
    d.ok(&["rm", "-f", name]);
    assert_eq!(
        d.ok(&["ps", "-aq", "--filter", &format!("name={name}")]),
        ""
    );
}

/// --network host, --read-only, --user, --cap-drop ALL and a seccomp profile.
pub fn options(d: &Docker) {
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let net = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_eq!(net, host_net.to_str().unwrap(), "--network host");

    let out = d.cli(&["run", "--rm", "--read-only", IMAGE, "touch", "/x"]);
    assert_eq!(out.code, 1, "--read-only: {}", out.stderr);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );

    let ids = d.ok(&[
        "run",
        "--rm",
        "--user",
        "65534:65534",
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(ids, "65534\n65534");

    let caps = "grep -E '^Cap(Eff|Bnd)' /proc/self/status";
    let none = d.ok(&["run", "--rm", "--cap-drop", "ALL", IMAGE, "sh", "-c", caps]);
    assert_eq!(none, "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000");
    let default = d.ok(&["run", "--rm", IMAGE, "sh", "-c", caps]);
    assert_ne!(default, none, "default capabilities are not empty");

    // A profile refusing mkdir: the container's mkdir fails, the default's works.
    let profile = d.dir.join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = d.cli(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        IMAGE,
        "mkdir",
        "/tmp/d",
    ]);
    assert_eq!(out.code, 1, "seccomp profile: {}", out.stderr);
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    d.ok(&["run", "--rm", IMAGE, "mkdir", "/tmp/d"]);
}

/// A user-defined bridge network: a client reaches a server by its name
/// (Docker's embedded DNS), then the network and its bridge go away.
pub fn user_network(d: &Docker) {
    let (net, bridge) = ("hull-test-net", harness::ifname('n'));
    let opt = format!("com.docker.network.bridge.name={bridge}");
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &harness::subnet(2),
        "-o",
        &opt,
        net,
    ]);
    let srv = "hull-test-srv";
    d.ok(&[
        "run",
        "-d",
        "--name",
        srv,
        "--network",
        net,
        "-e",
        "TAG=hull-docker-net",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(harness::ports_of(&bridge).len(), 1, "one veth on {bridge}");
    let url = format!("http://{srv}/index.html");
    let mut got = String::new();
    // The server may not be listening yet.
    harness::wait(20, "the client reaching the server by name", || {
        let out = d.cli(&["run", "--rm", "--network", net, IMAGE, "wget", "-qO-", &url]);
        got = out.stdout.clone() + &out.stderr;
        out.code == 0
    });
    assert_eq!(got.trim(), "hull-docker-net");
    d.ok(&["rm", "-f", srv]);
    assert!(
        harness::ports_of(&bridge).is_empty(),
        "veths left on {bridge}"
    );
    d.ok(&["network", "rm", net]);
}
