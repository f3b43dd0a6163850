//! Resource limits through Docker: the OOM killer, the pids limit, and
//! `docker update` of a running container read back from its cgroups.

use super::{Docker, IMAGE};
use crate::harness::{self, read_cgroup};

/// A container over its memory limit is OOM-killed: exit 137 and
/// `OOMKilled` in `docker inspect` (Docker reads the OOM event hull's
/// cgroup produced).
pub fn oom(d: &Docker) {
    let name = "hull-test-oom";
    let hog = "x=a; while true; do x=$x$x; done";
    let out = d.cli(&[
        "run",
        "--name",
        name,
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        IMAGE,
        "sh",
        "-c",
        hog,
    ]);
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert_eq!(
        d.inspect(name, "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    d.ok(&["rm", name]);
}

/// --pids-limit: the container sees its pids.max and cannot fork past it.
pub fn pids(d: &Docker) {
    let script = "cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 20); do sleep 1 & done; wait";
    let out = d.cli(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.stdout.lines().next(), Some("10"), "{}", out.stderr);
    assert!(
        out.stderr.contains("can't fork"),
        "no fork refused: {}",
        out.stderr
    );
}

/// `docker update` of memory, swap, pids and cpus on a running container:
/// the new values are in its cgroup files and in `docker inspect`.
pub fn update(d: &Docker) {
    let name = "hull-test-upd";
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let pid = d.inspect(name, "{{.State.Pid}}");
    let (memory, pids, cpu) = (
        harness::cgroup_of(&pid, "memory"),
        harness::cgroup_of(&pid, "pids"),
        harness::cgroup_of(&pid, "cpu"),
    );
    let read = || {
        [
            read_cgroup(&memory, "memory.limit_in_bytes"),
            read_cgroup(&memory, "memory.memsw.limit_in_bytes"),
            read_cgroup(&pids, "pids.max"),
            read_cgroup(&cpu, "cpu.cfs_quota_us"),
            read_cgroup(&cpu, "cpu.cfs_period_us"),
        ]
    };
    assert_eq!(read(), ["67108864", "134217728", "50", "50000", "100000"]);

    d.ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--pids-limit",
        "60",
        "--cpus",
        "1.5",
        name,
    ]);
    assert_eq!(read(), ["100663296", "201326592", "60", "150000", "100000"]);
    let config = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}";
    assert_eq!(d.inspect(name, config), "100663296 201326592 60 1500000000");
    // Still the same, running container.
    assert_eq!(
        d.inspect(name, "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    d.ok(&["rm", "-f", name]);
    assert!(!memory.exists(), "cgroup left: {}", memory.display());
}
