//! A single-node Swarm: a replicated service whose task containers hull
//! runs, scaled, force-updated (rolling) and removed.
//!
//! The ingress routing mesh load-balances with IPVS, which this kernel
//! lacks (no /proc/sys/net/ipv4/vs), so the service publishes its port in
//! host mode: each task gets its own host port on the default bridge.

use std::collections::BTreeSet;

use super::{Docker, IMAGE};
use crate::harness;

const SERVICE: &str = "hull-test-svc";

pub fn service(d: &Docker) {
    // Swarm attaches its tasks' gateways to `docker_gwbridge`; made here
    // first, it gets a private bridge name and subnet instead of the shared
    // default ones.
    let gw = harness::ifname('g');
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &harness::subnet(1),
        "-o",
        &format!("com.docker.network.bridge.name={gw}"),
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "docker_gwbridge",
    ]);
    let listen = format!("127.0.0.1:{}", hull_tests::free_port());
    let data_port = harness::free_udp_port(20000..49151);
    d.ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        "127.0.0.1",
        "--listen-addr",
        &listen,
        "--data-path-port",
        &data_port.to_string(),
    ]);

    d.ok(&[
        "service",
        "create",
        "--detach=false",
        "--quiet",
        "--no-resolve-image",
        "--name",
        SERVICE,
        "--replicas",
        "3",
        "--stop-grace-period",
        "1s",
        "--publish",
        "mode=host,target=80",
        IMAGE,
        "sh",
        "-c",
        "hostname > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    let first = serving_tasks(d, 3);

    d.ok(&[
        "service",
        "scale",
        "--detach=false",
        &format!("{SERVICE}=5"),
    ]);
    let scaled = serving_tasks(d, 5);
    assert!(first.is_subset(&scaled), "scaling replaced running tasks");

    // A forced update replaces every task, one at a time.
    d.ok(&[
        "service",
        "update",
        "--detach=false",
        "--quiet",
        "--force",
        SERVICE,
    ]);
    let updated = serving_tasks(d, 5);
    assert!(
        updated.is_disjoint(&scaled),
        "update --force kept tasks: {updated:?}"
    );

    d.ok(&["service", "rm", SERVICE]);
    harness::wait(60, "the service's containers removed", || {
        tasks(d).is_empty()
    });
    d.ok(&["swarm", "leave", "--force"]);
    d.ok(&["network", "rm", "docker_gwbridge"]);
}

/// The running task containers of the service.
fn tasks(d: &Docker) -> BTreeSet<String> {
    let filter = format!("label=com.docker.swarm.service.name={SERVICE}");
    d.ok(&["ps", "-q", "--no-trunc", "--filter", &filter])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Waits for exactly `n` running tasks, each answering with its own
/// hostname (its short container id) on its host port; returns their ids.
fn serving_tasks(d: &Docker, n: usize) -> BTreeSet<String> {
    harness::wait(60, &format!("{n} running tasks"), || tasks(d).len() == n);
    let ids = tasks(d);
    for id in &ids {
        let port = d.inspect(
            id,
            r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
        );
        let port: u16 = port
            .parse()
            .unwrap_or_else(|_| panic!("task {id} port {port:?}"));
        assert_eq!(
            harness::http_get(port).trim(),
            &id[..12],
            "task {id} on port {port}"
        );
    }
    ids
}
