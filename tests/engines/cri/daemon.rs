//! A private containerd with its CRI plugin: hull as the default runtime
//! handler (runc shim v2, `BinaryName` = hull, its own runtime root), the
//! CNI bridge and portmap plugins on a private bridge, subnet and IPAM
//! directory, and the busybox and sandbox images imported into the
//! `k8s.io` namespace.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{self, Daemon};

/// The images, named as CRI normalizes references.
pub const IMAGE: &str = "docker.io/library/hull-test-busybox:latest";
const PAUSE: &str = "docker.io/library/hull-test-pause:latest";

/// The CNI portmap plugin's chains shared by all its users; created on
/// first use, never removed by the plugin.
const HOSTPORT_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-MASQ",
    "CNI-HOSTPORT-SETMARK",
];

pub struct CriContainerd {
    /// `hull-test-cri-<pid>`: cgroup parent and directory names.
    pub name: String,
    dir: PathBuf,
    state: PathBuf,
    pub bridge: String,
    pub daemon: Daemon,
    netns_before: Vec<String>,
    hostport_before: bool,
}

impl CriContainerd {
    pub fn start() -> Self {
        let bin = harness::engine_bin("/usr/bin/containerd", "containerd");
        harness::engine_bin("/usr/lib/cni/portmap", "containernetworking-plugins");
        let name = harness::private_name("cri");
        let dir = std::env::temp_dir().join(&name);
        let state = PathBuf::from("/run").join(&name);
        let bridge = harness::ifname('c');
        std::fs::create_dir_all(dir.join("cni")).unwrap();
        // restrict_oom_score_adj: CRI gives sandboxes -998, and lowering
        // oom_score_adj needs CAP_SYS_RESOURCE, which this machine's root
        // lacks (runc fails the same way); the option caps it at ours.
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let config = format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             [grpc]\n  address = \"{state}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{state}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n\
             [{cri}]\n  sandbox_image = \"{PAUSE}\"\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n  restrict_oom_score_adj = true\n\
             [{cri}.containerd]\n  default_runtime_name = \"hull\"\n  snapshotter = \"overlayfs\"\n\
             [{cri}.containerd.runtimes.hull]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.hull.options]\n  BinaryName = \"{hull}\"\n  Root = \"{state}/hull\"\n\
             [{cri}.cni]\n  bin_dir = \"/usr/lib/cni\"\n  conf_dir = \"{dir}/cni\"\n",
            root = dir.join("root").display(),
            state = state.display(),
            hull = harness::hull().display(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let cni = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": harness::subnet(4)}]],
                        "dataDir": dir.join("ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        std::fs::write(dir.join("cni/10-hull-test.conflist"), cni.to_string()).unwrap();

        let hostport_before = !harness::chains_named("CNI-HOSTPORT-DNAT").is_empty();
        let netns_before = harness::netns_files("cni-");
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(dir.join("config.toml"));
        let sock = state.join("containerd.sock");
        let daemon = Daemon::start(&mut cmd, dir.join("containerd.log"), || sock.exists());
        let c = CriContainerd {
            name,
            dir,
            state,
            bridge,
            daemon,
            netns_before,
            hostport_before,
        };
        let pause = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];
        for (image, cmd) in [(IMAGE, &["sh"][..]), (PAUSE, &pause[..])] {
            let archive = crate::image::oci_archive(&c.dir, image, cmd);
            c.ctr(&["image", "import", archive.to_str().unwrap()]);
        }
        c
    }

    /// The CRI socket.
    pub fn socket(&self) -> PathBuf {
        self.state.join("containerd.sock")
    }

    /// `ctr -n k8s.io ARGS...`, asserted to succeed.
    fn ctr(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("/usr/bin/ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(["-n", "k8s.io"])
            .args(args);
        harness::run_for(&mut cmd, 120).ok().trim().to_owned()
    }

    /// The cgroup parent of the pod.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}/pod", self.name)
    }

    /// Stops containerd and asserts it left nothing: no container state,
    /// mount, netns, cgroup, CNI rule of the subnet; then removes the
    /// bridge, and the portmap plugin's shared chains if this test made them.
    pub fn stop_and_check(mut self) {
        assert_eq!(self.ctr(&["task", "ls", "-q"]), "", "tasks left");
        assert_eq!(self.ctr(&["container", "ls", "-q"]), "", "containers left");
        let hull_state = self.state.join("hull/k8s.io");
        let left = std::fs::read_dir(&hull_state)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "hull state left in {}", hull_state.display());
        self.daemon.stop();
        let mounts: Vec<_> = harness::mounts_under(&self.dir)
            .into_iter()
            .chain(harness::mounts_under(&self.state))
            .collect();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let netns: Vec<_> = harness::netns_files("cni-")
            .into_iter()
            .filter(|n| !self.netns_before.contains(n))
            .collect();
        assert!(netns.is_empty(), "netns left: {netns:?}");
        assert!(harness::ports_of(&self.bridge).is_empty(), "veths left");
        for table in ["filter", "nat"] {
            let rules = harness::host("iptables", &["-t", table, "-S"]).stdout;
            let ours: Vec<&str> = rules
                .lines()
                .filter(|l| l.contains(&harness::subnet(4)))
                .collect();
            assert!(ours.is_empty(), "CNI rules left in {table}: {ours:?}");
        }
        self.cleanup();
        harness::assert_cgroup_parent_empty(&self.name);
        harness::assert_nothing_left(&[&self.name, &self.bridge]);
    }

    /// Removes the bridge, the shared portmap chains (when this test made
    /// them), the directories.
    fn cleanup(&mut self) {
        self.daemon.stop_quietly();
        harness::del_link(&self.bridge);
        if !self.hostport_before {
            remove_hostport_chains();
        }
        harness::unmount_all(&self.dir);
        harness::unmount_all(&self.state);
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for CriContainerd {
    /// After a failed check: stop and remove the pods through CRI (which
    /// tears down their CNI networks and netns), then kill whatever is left
    /// with `ctr` (best effort).
    fn drop(&mut self) {
        if !self.state.exists() {
            return;
        }
        if let Ok(mut cri) = super::client::Cri::try_connect(&self.socket()) {
            remove_pods(&mut cri);
        }
        let ctr = |args: &[&str]| {
            let mut cmd = Command::new("/usr/bin/ctr");
            cmd.arg("--address")
                .arg(self.socket())
                .args(["-n", "k8s.io"])
                .args(args);
            harness::run_for(&mut cmd, 60)
        };
        for id in ctr(&["container", "ls", "-q"]).stdout.split_whitespace() {
            let _ = ctr(&["task", "kill", "--all", "--signal", "SIGKILL", id]);
            std::thread::sleep(std::time::Duration::from_millis(300));
            let _ = ctr(&["task", "delete", "--force", id]);
            let _ = ctr(&["container", "delete", id]);
        }
        self.cleanup();
        for dir in harness::cgroup_dirs(&self.name) {
            for sub in harness::subdirs_deepest_first(&dir) {
                let _ = std::fs::remove_dir(sub);
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Stops and removes every pod sandbox, ignoring failures.
fn remove_pods(c: &mut super::client::Cri) {
    use k8s_cri::v1 as cri;
    let req = cri::ListPodSandboxRequest::default();
    let Ok(pods) = c.try_call("ListPodSandbox", |mut s| async move {
        s.list_pod_sandbox(req).await
    }) else {
        return;
    };
    for pod in pods.items {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        };
        let _ = c.try_call("StopPodSandbox", |mut s| async move {
            s.stop_pod_sandbox(req).await
        });
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.id,
        };
        let _ = c.try_call("RemovePodSandbox", |mut s| async move {
            s.remove_pod_sandbox(req).await
        });
    }
}

/// Deletes the portmap plugin's shared chains and the jumps to them.
fn remove_hostport_chains() {
    let rules = harness::host("iptables", &["-t", "nat", "-S"]).stdout;
    for rule in rules.lines() {
        let builtin = ["-A PREROUTING ", "-A OUTPUT ", "-A POSTROUTING "];
        if builtin.iter().any(|b| rule.starts_with(b))
            && HOSTPORT_CHAINS
                .iter()
                .any(|c| rule.contains(&format!("-j {c}")))
        {
            let del = rule.replacen("-A ", "-D ", 1);
            let args = harness::iptables_args(&del);
            let mut all = vec!["-t", "nat"];
            all.extend(args.iter().map(String::as_str));
            harness::host("iptables", &all);
        }
    }
    for chain in HOSTPORT_CHAINS {
        harness::host("iptables", &["-t", "nat", "-F", chain]);
        harness::host("iptables", &["-t", "nat", "-X", chain]);
    }
}
