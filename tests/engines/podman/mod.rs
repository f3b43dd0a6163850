//! Podman 4.3 with conmon (Debian's podman) driving hull: containers on a
//! private bridge network with a published port, exec, top, stats, pause,
//! update and stop, then a pod whose member joins the infra container's
//! namespaces, and a container checkpointed and restored (CRIU through
//! hull).

mod engine;

use engine::{Podman, IMAGE, INFRA_IMAGE};

use crate::harness;

#[test]
fn podman() {
    let p = Podman::start();
    one_shot(&p);
    web(&p);
    stop_with_trap(&p);
    pod(&p);
    checkpoint(&p);
    p.finish_and_check();
}

/// `podman run --rm`: output and exit codes through conmon.
fn one_shot(p: &Podman) {
    let parent = p.cgroup_parent();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--cgroup-parent", &parent, IMAGE];
        all.extend(args);
        p.cli(&all)
    };
    let out = run(&["sh", "-c", "echo hello; exit 3"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (3, "hello\n"),
        "{}",
        out.stderr
    );
    let out = run(&["nosuch"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    // The container is on the private network.
    let addr = p.ok(&[
        "run",
        "--rm",
        "--cgroup-parent",
        &parent,
        IMAGE,
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    // "inet 10.x.y." of the network's subnet.
    let net = harness::subnet_addr(3, 0);
    let inet = format!("inet {}", net.strip_suffix('0').unwrap());
    assert!(addr.contains(&inet), "{addr}");
}

/// A published busybox httpd, exec, top, stats, pause and update.
fn web(p: &Podman) {
    let parent = p.cgroup_parent();
    let port = hull_tests::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let name = "hull-test-web";
    p.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--cgroup-parent",
        &parent,
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "echo hull-podman-web > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    assert_eq!(harness::http_get(port).trim(), "hull-podman-web");

    assert_eq!(p.cli(&["exec", name, "true"]).code, 0);
    assert_eq!(p.cli(&["exec", name, "sh", "-c", "exit 4"]).code, 4);
    assert_eq!(p.cli(&["exec", name, "nosuch"]).code, 127);
    assert_eq!(p.cli(&["exec", name, "/etc/passwd"]).code, 126);
    let tty = p.ok(&["exec", "-t", name, "tty"]);
    assert!(tty.starts_with("/dev/pts/"), "exec -t: {tty:?}");

    let top = p.ok(&["top", name]);
    assert!(top.contains("httpd -f -p 80"), "top: {top}");
    let stats = p.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        name,
    ]);
    assert_eq!(stats, format!("{name} 1"));

    let pid = p.ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    let freezer = harness::cgroup_of(&pid, "freezer");
    assert!(
        freezer.starts_with(format!("/sys/fs/cgroup/freezer{parent}")),
        "{}",
        freezer.display()
    );
    p.ok(&["pause", name]);
    assert_eq!(
        p.ok(&["inspect", "-f", "{{.State.Status}}", name]),
        "paused"
    );
    assert_eq!(harness::read_cgroup(&freezer, "freezer.state"), "FROZEN");
    p.ok(&["unpause", name]);
    assert_eq!(harness::read_cgroup(&freezer, "freezer.state"), "THAWED");
    assert_eq!(harness::http_get(port).trim(), "hull-podman-web");

    // Podman 4.3's update takes memory and cpu (not pids).
    p.ok(&["update", "--memory", "64m", "--cpus", "0.5", name]);
    let memory = harness::cgroup_of(&pid, "memory");
    let cpu = harness::cgroup_of(&pid, "cpu");
    assert_eq!(
        harness::read_cgroup(&memory, "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(harness::read_cgroup(&cpu, "cpu.cfs_quota_us"), "50000");
    // (Podman 4.3's inspect does not show updated limits, with runc either.)

    p.ok(&["rm", "-f", "-t", "0", name]);
    assert!(!freezer.exists(), "cgroup left: {}", freezer.display());
}

/// `podman stop` delivers SIGTERM to a trapping init.
fn stop_with_trap(p: &Podman) {
    let name = "hull-test-trap";
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done";
    p.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--cgroup-parent",
        &p.cgroup_parent(),
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    harness::wait(20, "trap ready", || p.ok(&["logs", name]).contains("ready"));
    let t = std::time::Instant::now();
    p.ok(&["stop", "-t", "10", name]);
    assert!(
        t.elapsed().as_secs() < 8,
        "stop waited for the timeout: the trap missed SIGTERM"
    );
    assert_eq!(p.ok(&["inspect", "-f", "{{.State.ExitCode}}", name]), "7");
    assert!(p.ok(&["logs", name]).contains("got-term"));
    p.ok(&["rm", name]);
}

/// A pod: the infra container holds the network (with the published port),
/// IPC and UTS namespaces; a member joins them by path and serves the port.
fn pod(p: &Podman) {
    let port = hull_tests::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let pod = "hull-test-pod";
    p.ok(&[
        "pod",
        "create",
        "--name",
        pod,
        "--cgroup-parent",
        &p.cgroup_parent(),
        "--infra-image",
        INFRA_IMAGE,
        "-p",
        &publish,
    ]);
    p.ok(&[
        "run",
        "-d",
        "--pod",
        pod,
        "--name",
        "hull-test-member",
        IMAGE,
        "sh",
        "-c",
        "echo hull-podman-pod > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    assert_eq!(harness::http_get(port).trim(), "hull-podman-pod");
    let infra = p.ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", pod]);
    let infra_pid = p.ok(&["inspect", "-f", "{{.State.Pid}}", &infra]);
    let member_pid = p.ok(&["inspect", "-f", "{{.State.Pid}}", "hull-test-member"]);
    let ns = |pid: &str, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(
            ns(&infra_pid, kind),
            ns(&member_pid, kind),
            "{kind} namespace not shared"
        );
    }
    assert_ne!(
        ns(&infra_pid, "pid"),
        ns(&member_pid, "pid"),
        "pid namespace shared by default"
    );
    // The member's cgroup is under the pod's, under the private parent.
    let cgroup = harness::cgroup_of(&member_pid, "pids");
    assert!(
        cgroup.starts_with(format!("/sys/fs/cgroup/pids{}", p.cgroup_parent())),
        "{}",
        cgroup.display()
    );
    p.ok(&["pod", "stop", "-t", "5", pod]);
    p.ok(&["pod", "rm", pod]);
}

/// `podman container checkpoint` and `restore`: Podman runs `hull
/// checkpoint` and, through conmon, `hull restore`, which find CRIU on
/// PATH (the shared build first). The container's network namespace is
/// Podman's (external to the dump): Podman sets up a new one with the same
/// address for the restore. The count goes on from where it was, and the
/// published port answers again.
fn checkpoint(p: &Podman) {
    let criu = hull_tests::criu();
    let path = format!(
        "{}:{}",
        criu.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_criu = |args: &[&str]| {
        let out = harness::run_for(p.command().env("PATH", &path).args(args), 120);
        assert_eq!(
            out.code, 0,
            "podman {args:?}: stdout={} stderr={}",
            out.stdout, out.stderr
        );
        out.stdout.trim().to_owned()
    };
    let name = "hull-test-ckpt";
    let port = hull_tests::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let script = "echo hull-podman-ckpt > /tmp/index.html; httpd -p 80 -h /tmp; \
                  i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.1; done";
    p.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--cgroup-parent",
        &p.cgroup_parent(),
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let count = || -> u64 {
        p.cli(&["exec", name, "cat", "/tmp/c"])
            .stdout
            .trim()
            .parse()
            .unwrap_or(0)
    };
    harness::wait(20, "the counter to reach 10", || count() >= 10);
    assert_eq!(harness::http_get(port).trim(), "hull-podman-ckpt");
    let ip = p.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name]);

    with_criu(&["container", "checkpoint", name]);
    assert_eq!(
        p.ok(&["inspect", "-f", "{{.State.Status}}", name]),
        "exited"
    );
    with_criu(&["container", "restore", name]);
    assert_eq!(
        p.ok(&["inspect", "-f", "{{.State.Status}}", name]),
        "running"
    );
    // The first reading that works (an exec racing the restore reads
    // nothing); the counter is renamed into place, never seen half-written.
    let mut first = 0;
    harness::wait(10, "the restored counter to be readable", || {
        first = count();
        first > 0
    });
    assert!(first >= 10, "the count restarted: {first}");
    harness::wait(20, "the restored counter to go on", || count() > first + 3);
    assert_eq!(harness::http_get(port).trim(), "hull-podman-ckpt");
    assert_eq!(
        p.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name]),
        ip
    );
    p.ok(&["rm", "-f", "-t", "0", name]);
}
