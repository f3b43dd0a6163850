//! cri_start SOCKET HANDLER NAME CGROUP_PARENT: one pod started the way
//! kubelet starts it, through containerd's CRI with runtime handler HANDLER:
//! RunPodSandbox, CreateContainer and StartContainer of a `sleep` container.
//! Prints the microseconds from the first request to StartContainer's answer
//! (the container is running), then both moments as microseconds since the
//! epoch (to place the runtime's calls), then stops and removes both (not
//! timed).
//! Uses the CRI client of the engine tests (tests/engines/cri/client.rs).

#[path = "../../tests/engines/cri/client.rs"]
mod client;

use std::time::Instant;

use k8s_cri::v1 as cri;

/// The image benches/engines.sh imports into containerd's `k8s.io` namespace.
const IMAGE: &str = "docker.io/library/hull-bench-busybox:latest";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, handler, name, cgroup_parent] = &args[..] else {
        eprintln!("usage: cri_start SOCKET HANDLER NAME CGROUP_PARENT");
        std::process::exit(2);
    };
    let mut c = client::Cri::connect(std::path::Path::new(socket));
    // The host's network (no CNI plugin in the figure), whose UTS
    // namespace goes with it: no hostname.
    let sandbox_config = client::pod_config(
        name,
        name,
        "hull-bench",
        cgroup_parent.clone(),
        cri::NamespaceMode::Node,
    );
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    let sandbox = c.run_sandbox(&sandbox_config, handler);
    let container = c.start_container(
        &sandbox,
        &sandbox_config,
        IMAGE,
        "sleep",
        &["sleep", "3600"],
    );
    let elapsed = started.elapsed();
    let since_epoch = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
    };
    println!(
        "{} {} {}",
        elapsed.as_micros(),
        since_epoch(started_at),
        since_epoch(started_at + elapsed)
    );

    c.remove_container(&container, 0);
    c.remove_sandbox(&sandbox);
}
