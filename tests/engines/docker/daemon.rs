//! A private dockerd: its own data root, exec root (and so its own
//! containerd), pidfile, socket, default bridge and cgroup parent, all named
//! `hull-test-*`, with hull as the default runtime and runc as a second one.
//!
//! It runs with `--iptables=false --ip-forward=false --ip-masq=false`: Docker
//! 20.10's chains (DOCKER, DOCKER-USER, ...) have fixed names shared with any
//! system daemon, it never removes them, and with ip-forward it sets the
//! FORWARD policy to DROP. Published ports then go through docker-proxy,
//! which is all a 127.0.0.1 port needs.

use std::path::PathBuf;
use std::process::Command;

use hull_tests::Out;

use crate::harness::{self, Daemon};

/// The image every Docker check runs: the fixture's busybox rootfs.
pub const IMAGE: &str = "hull-test-busybox";

/// Debian's docker.io CLI (not any other `docker` on PATH).
const CLI: &str = "/usr/bin/docker";

pub struct Docker {
    /// `hull-test-docker-<pid>`: cgroup parent and directory names.
    pub name: String,
    /// Data root, daemon.json, CLI config and scratch files.
    pub dir: PathBuf,
    /// Exec root: socket, pidfile, containerd state, netns files.
    pub exec_root: PathBuf,
    /// The default bridge (created here: dockerd only creates `docker0`).
    pub bridge: String,
    /// Deletes the default bridge however the test ends.
    _owned_bridge: harness::OwnedBridge,
    /// Docker's own iptables chains before the daemon started (there must
    /// be no new ones after it stopped).
    chains_before: Vec<String>,
    daemon: Daemon,
}

impl Docker {
    /// Starts the daemon and imports [`IMAGE`].
    pub fn start() -> Self {
        let hull = harness::hull();
        let dockerd = harness::engine_bin("/usr/sbin/dockerd", "docker.io");
        harness::engine_bin(CLI, "docker.io");
        harness::engine_bin("/usr/sbin/runc", "runc");
        let name = harness::private_name("docker");
        let dir = std::env::temp_dir().join(&name);
        let exec_root = PathBuf::from("/run").join(&name);
        let bridge = harness::ifname('d');
        std::fs::create_dir_all(dir.join("cli")).unwrap();
        std::fs::create_dir_all(&exec_root).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let owned_bridge =
            harness::OwnedBridge::create(&bridge, &format!("{}/24", harness::subnet_addr(0, 1)));

        let chains_before = harness::chains_named("DOCKER");
        let mut cmd = Command::new(dockerd);
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(exec_root.join("dockerd.pid"))
            .arg("--host")
            .arg(format!(
                "unix://{}",
                exec_root.join("docker.sock").display()
            ))
            .arg("--add-runtime")
            .arg(format!("hull={}", hull.display()))
            .args(["--default-runtime", "hull", "--bridge", &bridge])
            .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--cgroup-parent")
            .arg(format!("/{name}"))
            .args(["--storage-driver", "overlay2"]);
        let log = dir.join("dockerd.log");
        let sock = exec_root.join("docker.sock");
        let cli_env = Self::env(&exec_root, &dir);
        let daemon = Daemon::start(&mut cmd, log, || {
            sock.exists()
                && harness::run_for(
                    Command::new(CLI).envs(cli_env.clone()).args(["version"]),
                    30,
                )
                .code
                    == 0
        });
        let d = Docker {
            chains_before,
            name,
            dir,
            exec_root,
            bridge,
            _owned_bridge: owned_bridge,
            daemon,
        };
        d.ok(&[
            "import",
            crate::image::rootfs_tar(&d.dir).to_str().unwrap(),
            IMAGE,
        ]);
        d
    }

    fn env(exec_root: &std::path::Path, dir: &std::path::Path) -> Vec<(String, String)> {
        vec![
            (
                "DOCKER_HOST".into(),
                format!("unix://{}", exec_root.join("docker.sock").display()),
            ),
            (
                "DOCKER_CONFIG".into(),
                dir.join("cli").display().to_string(),
            ),
        ]
    }

    /// `docker ARGS...` against this daemon (killed after 180s).
    pub fn cli(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(CLI);
        cmd.envs(Self::env(&self.exec_root, &self.dir)).args(args);
        harness::run_for(&mut cmd, 180)
    }

    /// `docker ARGS...`, asserted to exit 0; its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.code,
            0,
            "docker {args:?}: stdout={} stderr={}\ndockerd: {}",
            out.stdout,
            out.stderr,
            self.daemon.log_tail()
        );
        out.stdout.trim().to_owned()
    }

    /// `docker inspect -f FORMAT OBJECT`.
    pub fn inspect(&self, object: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, object])
    }

    /// Removes every container and user network, stops the daemon and
    /// asserts that it left nothing: no container, shim, cgroup, veth,
    /// netns, mount, bridge or iptables chain.
    pub fn stop_and_check(mut self) {
        assert_eq!(self.ok(&["ps", "-aq"]), "", "containers left");
        // hull's state root for Docker's containers holds none any more
        // (its `.cache` of compiled seccomp filters is not container state).
        let state = self.exec_root.join("runtime-runc/moby");
        let states: Vec<_> = std::fs::read_dir(&state)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    .filter(|n| n != ".cache")
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            states.is_empty(),
            "hull state left in {}: {states:?}",
            state.display()
        );
        let ports = harness::ports_of(&self.bridge);
        assert!(ports.is_empty(), "veths left on {}: {ports:?}", self.bridge);
        // Docker garbage-collects the files of unmounted netns a minute
        // later; what matters is that none of them is still mounted.
        let netns = harness::mounts_under(&self.exec_root.join("netns"));
        assert_eq!(netns, [self.exec_root.join("netns/default")], "netns left");
        self.daemon.stop();
        // dockerd keeps two mounts of its own after it exits: the private
        // bind of its data root and its `default` netns file. Anything
        // else mounted there would be a container's.
        let own = [self.dir.join("data"), self.exec_root.join("netns/default")];
        let left: Vec<_> = harness::mounts_under(&self.dir)
            .into_iter()
            .chain(harness::mounts_under(&self.exec_root))
            .filter(|m| !own.contains(m))
            .collect();
        assert!(left.is_empty(), "mounts left: {left:?}");
        self.cleanup();
        assert_eq!(
            harness::chains_named("DOCKER"),
            self.chains_before,
            "iptables chains"
        );
        let (gw, net) = (harness::ifname('g'), harness::ifname('n'));
        harness::assert_nothing_left(&[&self.name, &self.bridge, &gw, &net]);
    }

    /// Removes what the daemon keeps after it exits, and what we made for it.
    fn cleanup(&mut self) {
        self.daemon.stop();
        harness::unmount_all(&self.dir);
        harness::unmount_all(&self.exec_root);
        harness::assert_cgroup_parent_empty(&self.name);
        harness::del_link(&self.bridge);
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Docker {
    /// After a failed check: remove the containers, leave any swarm, then
    /// clean up as far as possible (best effort; the failure is reported).
    fn drop(&mut self) {
        if !self.exec_root.exists() {
            return;
        }
        let _ = self.cli(&["swarm", "leave", "--force"]);
        let ids = self.cli(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.cli(&["rm", "-f", id]);
        }
        self.daemon.stop_quietly();
        harness::unmount_all(&self.dir);
        harness::unmount_all(&self.exec_root);
        for dir in harness::cgroup_dirs(&self.name) {
            let _ = std::fs::remove_dir(dir);
        }
        // The bridges of the user network and docker_gwbridge too, if a
        // failed check left their networks.
        for bridge in [&self.bridge, &harness::ifname('g'), &harness::ifname('n')] {
            harness::del_link(bridge);
        }
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
