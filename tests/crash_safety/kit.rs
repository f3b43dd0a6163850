//! What every scenario shares: starting and killing hull, a private
//! network (own `--net-root`, `--net-table`, subnet and ports), and the
//! leftover checks run after the clean-up command.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use hull_tests::*;

/// Starts `hull ARGS... --bundle DIR ID`, its output thrown away.
pub fn start(b: &TestBundle, args: &[&str]) -> Child {
    b.hull()
        .args(args)
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `cmd` (hull) with its stderr in the file `err`, not a pipe: a
/// container's init holds what it inherits, so a pipe would never reach its
/// end. The child and `err`.
pub fn spawn_logged(cmd: &mut Command, err: PathBuf) -> (Child, PathBuf) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    (child, err)
}

/// SIGKILLs `child` (hull) and reaps it.
pub fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Every cgroup directory named `id`, in any hierarchy (the default
/// cgroupsPath lies below the runtime's own cgroup).
pub fn cgroup_dirs(id: &str) -> Vec<String> {
    fn walk(dir: &Path, id: &str, depth: u32, found: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == id {
                found.push(e.path().display().to_string());
            } else if depth > 0 {
                walk(&e.path(), id, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 5, &mut found);
    found
}

/// Whether no process but this one has `needle` in its command line.
pub fn no_process(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|p| p != std::process::id())
        })
        .all(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
        })
}

/// The host end of container `id`'s `eth0` (as bridge names it).
pub fn veth(id: &str) -> String {
    bridge::veth_name(id, "eth0")
}

/// Whether the network interface `name` exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Every file below `dir` whose name says it is a temporary one.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(temp_files(&path));
        } else if e.file_name().to_string_lossy().contains("tmp") {
            found.push(path);
        }
    }
    found
}

/// A test's own network state: `--net-root`, `--net-table`, and a network
/// `<tag>-<pid mod 100000>` on 10.247.`n`.0/24 (bridge `hull-<name>`).
pub struct Net {
    pub n: u8,
    pub root: PathBuf,
    pub table: String,
    pub name: String,
}

impl Net {
    /// Test `tag`'s state (`tag`: a letter or two); makes nothing yet.
    pub fn new(tag: &str, n: u8) -> Self {
        let pid = std::process::id();
        let net = Self {
            n,
            root: PathBuf::from(format!("/tmp/hull-test-crashnet-{tag}{n}-{pid}")),
            table: format!("hull_test_crash_{tag}{n}_{pid}"),
            name: format!("{tag}{n}-{:05}", pid % 100_000),
        };
        net.clean();
        net
    }

    pub fn bridge(&self) -> String {
        format!("hull-{}", self.name)
    }

    pub fn subnet(&self) -> String {
        format!("10.247.{}.0/24", self.n)
    }

    /// `--net-root R --net-table T` on `c`.
    pub fn flags<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.arg("--net-root")
            .arg(&self.root)
            .arg("--net-table")
            .arg(&self.table)
    }

    /// `hull --net-root … --net-table … ARGS`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        output_via_files(self.flags(&mut Command::new(hull_bin())).args(args))
    }

    /// `hull network create --subnet … NAME`; asserts success.
    pub fn create(&self) {
        let subnet = self.subnet();
        Out::from(self.cmd(&["network", "create", "--subnet", &subnet, &self.name])).ok();
    }

    /// A bundle whose hull calls carry this network's flags.
    pub fn hull(&self, b: &TestBundle) -> Command {
        let mut c = b.hull();
        self.flags(&mut c);
        c
    }

    /// `nft list table ip T`, or "" without the table.
    pub fn ruleset(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &self.table])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// The lease files of the network: (address, owner).
    pub fn leases(&self) -> Vec<(String, String)> {
        let dir = self.root.join("leases").join(&self.name);
        let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.parse::<std::net::Ipv4Addr>().ok()?;
                Some((name, std::fs::read_to_string(e.path()).unwrap_or_default()))
            })
            .collect();
        v.sort();
        v
    }

    /// The attachment records of the store.
    pub fn attachment_files(&self) -> Vec<String> {
        let dir = self.root.join("attachments");
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Nothing of container `id` is left on this network: no veth, lease,
    /// attachment record, published `port` in the table, temporary file.
    pub fn assert_nothing_of(&self, id: &str, port: u16, why: &str) {
        assert!(!link_exists(&veth(id)), "{why}: veth {} left", veth(id));
        let leases = self.leases();
        assert!(
            leases.iter().all(|(_, owner)| owner != id),
            "{why}: lease left: {leases:?}"
        );
        let records = self.attachment_files();
        assert!(
            records.iter().all(|r| !r.starts_with(&format!("{id}."))),
            "{why}: attachment record left: {records:?}"
        );
        let rules = self.ruleset();
        assert!(
            !rules.contains(&format!(" {port} :")) && !rules.contains(&format!(" {port}:")),
            "{why}: port {port} still published:\n{rules}"
        );
        let temps: Vec<PathBuf> = temp_files(&self.root)
            .into_iter()
            .filter(|t| t.to_string_lossy().contains(id))
            .collect();
        assert_eq!(temps, Vec::<PathBuf>::new(), "{why}");
    }

    /// After `network rm`: no bridge, no rule of the network, no state.
    pub fn assert_removed(&self, why: &str) {
        assert!(!link_exists(&self.bridge()), "{why}: bridge left");
        let rules = self.ruleset();
        assert!(
            !rules.contains(&self.bridge()) && !rules.contains(&format!("10.247.{}.", self.n)),
            "{why}: rules of the network left:\n{rules}"
        );
        for dir in ["networks", "attachments", "firewall"] {
            let left: Vec<_> = std::fs::read_dir(self.root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(left.is_empty(), "{why}: {dir}/ holds {left:?}");
        }
        assert!(
            !self.root.join("leases").join(&self.name).exists(),
            "{why}: lease directory left"
        );
        assert_eq!(temp_files(&self.root), Vec::<PathBuf>::new(), "{why}");
    }

    /// Removes whatever the test's hull calls left.
    pub fn clean(&self) {
        assert!(self.table.starts_with("hull_test_"));
        if let Ok(d) = std::fs::read_dir(self.root.join("attachments")) {
            for e in d.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(".eth0.json") {
                    del_link(&veth(id));
                }
            }
        }
        let _ = self.cmd(&["network", "rm", &self.name]);
        del_link(&self.bridge());
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        clean_up("the test network", || self.clean());
    }
}

fn del_link(name: &str) {
    if link_exists(name) {
        let _ = Command::new("ip").args(["link", "del", name]).status();
    }
}

/// Nothing of the container of `b` is left on the host: process (its id or
/// `tag`, which its process and hooks carry), state file or temporary file
/// in the state root, cgroup, mount.
pub fn assert_no_container(b: &TestBundle, tag: &str, why: &str) {
    wait_for(
        || format!("{why}: a process of the container outlived delete --force"),
        || no_process(&b.id) && no_process(tag),
    );
    let left: Vec<_> = std::fs::read_dir(&b.root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".cache")
        .collect();
    assert!(left.is_empty(), "{why}: left in the state root: {left:?}");
    assert_eq!(cgroup_dirs(&b.id), Vec::<String>::new(), "{why}");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = info.lines().filter(|l| l.contains(&b.id)).collect();
    assert!(mounts.is_empty(), "{why}: mounts left: {mounts:?}");
}

/// `hull list` and `hull state ID` after a kill: neither crashes, and a
/// container that left a state file is listed.
pub fn assert_listable(net: &Net, b: &TestBundle, why: &str) {
    let list = Out::from(output_via_files(
        net.hull(b).args(["list", "--format", "json"]),
    ));
    assert_eq!(list.code, 0, "{why}: list failed: {}", list.stderr);
    let state = Out::from(output_via_files(net.hull(b).args(["state", &b.id])));
    assert!(
        matches!(state.code, 0 | 1) && !state.stderr.contains("panicked"),
        "{why}: state: {} {}",
        state.code,
        state.stderr
    );
    if b.root.join(&b.id).exists() {
        assert!(
            list.stdout.contains(&format!("\"id\":\"{}\"", b.id)),
            "{why}: a container with a state file is not listed: {}",
            list.stdout
        );
    }
}
