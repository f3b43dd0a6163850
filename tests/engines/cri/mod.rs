//! containerd's CRI driven the way kubelet drives it, with hull as the
//! runtime handler: a pod sandbox with a port mapping, a web container and
//! a second container in the pod's namespaces, ExecSync, an update of the
//! web container's resources, then stop and removal of everything.

mod client;
mod daemon;

use k8s_cri::v1 as cri;

use client::Cri;
use daemon::{CriContainerd, IMAGE};

use crate::harness;

#[test]
fn containerd_cri() {
    let d = CriContainerd::start();
    let mut c = Cri::connect(&d.socket());
    let port = hull_tests::free_port();
    let sandbox_config = sandbox_config(&d, port);
    let sandbox = c.run_sandbox(&sandbox_config, "");

    let web = c.start_container(
        &sandbox,
        &sandbox_config,
        IMAGE,
        "web",
        &["sh", "-c", HTTPD],
    );
    let probe = c.start_container(
        &sandbox,
        &sandbox_config,
        IMAGE,
        "probe",
        &["sleep", "100000"],
    );
    // The mapping reaches the web container through the pod's netns.
    assert_eq!(harness::http_get(port).trim(), "hull-cri");

    // ExecSync in the second container: same network namespace (the web
    // server on its loopback), exit codes and output come back.
    let (code, out, _) = exec_sync(&mut c, &probe, &["wget", "-qO-", "http://127.0.0.1/"]);
    assert_eq!((code, out.trim()), (0, "hull-cri"));
    assert_eq!(
        exec_sync(&mut c, &probe, &["sh", "-c", "echo oops >&2; exit 3"]),
        (3, String::new(), "oops\n".into())
    );
    // A command that cannot start is an error of the call (as with runc).
    let req = cri::ExecSyncRequest {
        container_id: probe.clone(),
        cmd: vec!["nosuch".into()],
        timeout: 30,
    };
    let err = c
        .try_call("ExecSync", |mut s| async move { s.exec_sync(req).await })
        .expect_err("exec of a missing command succeeded");
    assert!(err.message().contains("executable file not found"), "{err}");

    // UpdateContainerResources, read back from the cgroup files.
    let req = cri::UpdateContainerResourcesRequest {
        container_id: web.clone(),
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            ..Default::default()
        }),
        ..Default::default()
    };
    c.call("UpdateContainerResources", |mut s| async move {
        s.update_container_resources(req).await
    });
    let memory = format!("/sys/fs/cgroup/memory{}/{web}", d.cgroup_parent());
    let cpu = format!("/sys/fs/cgroup/cpu{}/{web}", d.cgroup_parent());
    let read = |dir: &str, file: &str| harness::read_cgroup(std::path::Path::new(dir), file);
    assert_eq!(
        read(&memory, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.shares"), "512");

    for id in [&web, &probe] {
        c.remove_container(id, 2);
    }
    assert!(
        !std::path::Path::new(&memory).exists(),
        "cgroup left: {memory}"
    );
    c.remove_sandbox(&sandbox);
    let req = cri::ListPodSandboxRequest::default();
    let pods = c.call("ListPodSandbox", |mut s| async move {
        s.list_pod_sandbox(req).await
    });
    assert!(pods.items.is_empty(), "sandboxes left: {:?}", pods.items);
    drop(c);
    d.stop_and_check();
}

const HTTPD: &str = "echo hull-cri > /tmp/index.html; exec httpd -f -p 80 -h /tmp";

/// The pod: a port mapping 127.0.0.1:`port` → 80, a private cgroup parent,
/// pod-wide network and IPC namespaces.
fn sandbox_config(d: &CriContainerd, port: u16) -> cri::PodSandboxConfig {
    let pod = client::pod_config(
        "hull-test-pod",
        &d.name,
        "hull-test",
        d.cgroup_parent(),
        cri::NamespaceMode::Pod,
    );
    cri::PodSandboxConfig {
        hostname: "hull-test-pod".into(),
        port_mappings: vec![cri::PortMapping {
            protocol: cri::Protocol::Tcp as i32,
            container_port: 80,
            host_port: i32::from(port),
            host_ip: "127.0.0.1".into(),
        }],
        ..pod
    }
}

/// ExecSync: (exit code, stdout, stderr).
fn exec_sync(c: &mut Cri, id: &str, cmd: &[&str]) -> (i32, String, String) {
    let req = cri::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 30,
    };
    let r = c.call("ExecSync", |mut s| async move { s.exec_sync(req).await });
    (
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}
