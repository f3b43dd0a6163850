//! A private Podman: its own containers.conf and storage.conf, root,
//! runroot, tmpdir, network config directory with one bridge network
//! (`hull-test-*` bridge and name), cgroupfs under a private cgroup parent,
//! hull as the runtime (run through conmon), netavark as network backend.

use std::path::PathBuf;
use std::process::Command;

use hull_tests::Out;

use crate::harness;

/// The image every Podman check runs: the fixture's busybox rootfs.
pub const IMAGE: &str = "hull-test-busybox";
/// The same rootfs whose command stops at SIGTERM: the pod's infra
/// container (Podman's own pause image would need catatonit and a build).
pub const INFRA_IMAGE: &str = "hull-test-infra";
/// The private bridge network every container joins.
pub const NETWORK: &str = "hull-test-pnet";

/// netavark's chains shared by all its networks, which it creates on first
/// use and never removes.
const NETAVARK_GLOBAL: [(&str, &str); 4] = [
    ("filter", "NETAVARK_FORWARD"),
    ("nat", "NETAVARK-HOSTPORT-DNAT"),
    ("nat", "NETAVARK-HOSTPORT-MASQ"),
    ("nat", "NETAVARK-HOSTPORT-SETMARK"),
];

pub struct Podman {
    /// `hull-test-podman-<pid>`: cgroup parent and directory names.
    pub name: String,
    /// Configuration, storage root, network configs.
    dir: PathBuf,
    /// Runroot (and tmpdir): container state, conmon's files.
    runroot: PathBuf,
    /// The network's bridge.
    pub bridge: String,
    /// Netns files in /run/netns (Podman's fixed directory) before it ran.
    netns_before: Vec<String>,
    /// Whether netavark's shared chains existed before (another user's).
    netavark_before: bool,
}

impl Podman {
    pub fn start() -> Self {
        harness::engine_bin("/usr/bin/podman", "podman");
        harness::engine_bin("/usr/bin/conmon", "conmon");
        harness::engine_bin("/usr/lib/podman/netavark", "netavark");
        let name = harness::private_name("podman");
        let dir = std::env::temp_dir().join(&name);
        let runroot = PathBuf::from("/run").join(&name);
        let bridge = harness::ifname('p');
        std::fs::create_dir_all(dir.join("networks")).unwrap();
        std::fs::create_dir_all(runroot.join("tmp")).unwrap();
        // Podman asks for RLIMIT_NOFILE/NPROC of 1048576 by default, which
        // needs CAP_SYS_RESOURCE (this machine's root lacks it: runc fails
        // the same way); a lower limit needs no capability.
        let conf = format!(
            "[containers]\n\
             default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n\
             [network]\n\
             network_backend = \"netavark\"\n\
             network_config_dir = \"{dir}/networks\"\n\
             default_network = \"{NETWORK}\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{dir}/events.log\"\n",
            dir = dir.display(),
        );
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
            runroot.display(),
            dir.join("root").display()
        );
        std::fs::write(dir.join("storage.conf"), storage).unwrap();
        // Podman 4.3 cannot name a bridge in `network create`; its network
        // file can.
        let network = serde_json::json!({
            "name": NETWORK,
            "id": format!("{:064x}", std::process::id()),
            "driver": "bridge",
            "network_interface": bridge,
            "created": "2026-01-01T00:00:00Z",
            "subnets": [{"subnet": harness::subnet(3), "gateway": harness::subnet_addr(3, 1)}],
            "ipv6_enabled": false,
            "internal": false,
            "dns_enabled": false,
            "ipam_options": {"driver": "host-local"},
        });
        std::fs::write(
            dir.join("networks").join(format!("{NETWORK}.json")),
            network.to_string(),
        )
        .unwrap();
        let p = Podman {
            netns_before: harness::netns_files("netns-"),
            netavark_before: !harness::chains_named("NETAVARK_FORWARD").is_empty(),
            name,
            dir,
            runroot,
            bridge,
        };
        let tar = crate::image::rootfs_tar(&p.dir);
        p.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        let infra = r#"CMD ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]"#;
        p.ok(&[
            "import",
            "--change",
            infra,
            tar.to_str().unwrap(),
            INFRA_IMAGE,
        ]);
        p
    }

    /// `podman ARGS...` with this instance's roots and runtime (killed
    /// after 120s).
    pub fn cli(&self, args: &[&str]) -> Out {
        harness::run_for(self.command().args(args), 120)
    }

    /// `podman` with this instance's roots and runtime.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("/usr/bin/podman");
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--tmpdir")
            .arg(self.runroot.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs"])
            .arg("--runtime")
            .arg(harness::hull());
        cmd
    }

    /// `podman ARGS...`, asserted to exit 0; its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.code, 0,
            "podman {args:?}: stdout={} stderr={}",
            out.stdout, out.stderr
        );
        out.stdout.trim().to_owned()
    }

    /// `--cgroup-parent` for every container and pod.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    /// Asserts no container, pod, veth, netns, mount, cgroup or netavark
    /// chain of this instance is left, removing the instance's own files.
    pub fn finish_and_check(mut self) {
        assert_eq!(self.ok(&["ps", "-aq"]), "", "containers left");
        assert_eq!(self.ok(&["pod", "ps", "-q"]), "", "pods left");
        let ports = harness::ports_of(&self.bridge);
        assert!(ports.is_empty(), "veths left on {}: {ports:?}", self.bridge);
        let netns: Vec<String> = harness::netns_files("netns-")
            .into_iter()
            .filter(|n| !self.netns_before.contains(n))
            .collect();
        assert!(netns.is_empty(), "netns left: {netns:?}");
        let state = self.runroot.join("overlay-containers");
        let left = std::fs::read_dir(&state).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "container state left in {}", state.display());
        // The per-network chains are netavark's to remove; they mention
        // the subnet.
        for table in ["filter", "nat"] {
            let rules = harness::host("iptables", &["-t", table, "-S"]).stdout;
            let ours: Vec<&str> = rules
                .lines()
                .filter(|l| l.contains(&harness::subnet(3)))
                .collect();
            assert!(ours.is_empty(), "netavark rules left in {table}: {ours:?}");
        }
        // Podman has no daemon: storage is unmounted, only the storage
        // driver's own overlay home may stay mounted until we unmount it.
        let overlay_home = self.dir.join("root/overlay");
        let left: Vec<_> = harness::mounts_under(&self.dir)
            .into_iter()
            .chain(harness::mounts_under(&self.runroot))
            .filter(|m| *m != overlay_home)
            .collect();
        assert!(left.is_empty(), "mounts left: {left:?}");
        self.cleanup();
        let chains = harness::chains_named("NETAVARK");
        assert!(
            chains.is_empty() || self.netavark_before,
            "netavark chains left: {chains:?}"
        );
        harness::assert_nothing_left(&[&self.name, &self.bridge]);
    }

    /// The first steps of both clean-ups: removes the test's network, the
    /// bridge netavark leaves, its shared chains when this test created
    /// them, and the instance's mounts.
    fn remove_network_and_mounts(&self) {
        let _ = self.cli(&["network", "rm", "-f", NETWORK]);
        harness::del_link(&self.bridge);
        if !self.netavark_before {
            remove_netavark_global_chains();
        }
        harness::unmount_all(&self.dir);
        harness::unmount_all(&self.runroot);
    }

    /// Removes the instance's files, the bridge netavark leaves, its
    /// shared chains when this test created them, and the empty cgroup
    /// parent.
    fn cleanup(&mut self) {
        self.remove_network_and_mounts();
        // Podman keeps cgroups of its own under the parent: its conmons'
        // (`conmon`), and a removed pod's in the hierarchies it does not
        // manage (name=systemd, and the hybrid cgroup2 mount), as with runc.
        // They must hold no process and no container's cgroup.
        for dir in harness::cgroup_dirs(&self.name) {
            for sub in harness::subdirs_deepest_first(&dir) {
                let leaf = sub.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !leaf.starts_with("libpod-"),
                    "container cgroup left: {}",
                    sub.display()
                );
                let procs = harness::read_cgroup(&sub, "cgroup.procs");
                assert_eq!(procs, "", "processes left in {}", sub.display());
                std::fs::remove_dir(&sub).unwrap();
            }
        }
        harness::assert_cgroup_parent_empty(&self.name);
        let _ = std::fs::remove_dir_all(&self.runroot);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Podman {
    /// After a failed check: remove every container and pod (best effort).
    fn drop(&mut self) {
        if !self.dir.exists() {
            return;
        }
        let _ = self.cli(&["pod", "rm", "-a", "-f", "-t", "0"]);
        let _ = self.cli(&["rm", "-a", "-f", "-t", "0"]);
        self.remove_network_and_mounts();
        for dir in harness::cgroup_dirs(&self.name) {
            for sub in harness::subdirs_deepest_first(&dir) {
                let _ = std::fs::remove_dir(sub);
            }
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir_all(&self.runroot);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deletes netavark's shared chains and the jumps to them from the built-in
/// chains (only when this test created them: no other user has rules there).
fn remove_netavark_global_chains() {
    let filter = harness::host("iptables", &["-t", "filter", "-S"]).stdout;
    let nat = harness::host("iptables", &["-t", "nat", "-S"]).stdout;
    for (table, rules) in [("filter", &filter), ("nat", &nat)] {
        for rule in rules.lines() {
            let builtin = [
                "-A FORWARD ",
                "-A PREROUTING ",
                "-A OUTPUT ",
                "-A POSTROUTING ",
            ];
            if builtin.iter().any(|b| rule.starts_with(b))
                && NETAVARK_GLOBAL
                    .iter()
                    .any(|(_, c)| rule.ends_with(&format!("-j {c}")))
            {
                let args = harness::iptables_args(&rule.replacen("-A ", "-D ", 1));
                let mut all = vec!["-t", table];
                all.extend(args.iter().map(String::as_str));
                harness::host("iptables", &all);
            }
        }
    }
    for (table, chain) in NETAVARK_GLOBAL {
        harness::host("iptables", &["-t", table, "-F", chain]);
        harness::host("iptables", &["-t", table, "-X", chain]);
    }
}
