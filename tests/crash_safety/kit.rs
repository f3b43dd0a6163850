//! What every scenario shares: starting and killing hull, a private
//! network (the network lab's [`Net`] on a subnet of this file's own), and
//! the leftover checks run after the clean-up command.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use hull_tests::netlab::Net;
use hull_tests::netlab::{link_exists, veth_name};
use hull_tests::*;

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

/// Test `tag`'s network number `n` (`tag`: a letter or two): the network
/// lab's [`Net`] on 10.247.`n`.0/24; makes nothing yet.
pub fn crash_net(tag: &str, n: u8) -> Net {
    Net::on(&format!("crash{tag}{n}"), n, [10, 247, n])
}

/// The leftover checks of a kill scenario, on its network.
pub trait Leftovers {
    /// Nothing of container `id` is left on this network: no veth, lease,
    /// attachment record, published `port` in the table, temporary file.
    fn assert_nothing_of(&self, id: &str, port: u16, why: &str);

    /// After `network rm`: no bridge, no rule of the network, no state.
    fn assert_removed(&self, why: &str);
}

impl Leftovers for Net {
    fn assert_nothing_of(&self, id: &str, port: u16, why: &str) {
        let veth = veth_name(id);
        assert!(!link_exists(&veth), "{why}: veth {veth} left");
        let leases = self.lease_owners();
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

    fn assert_removed(&self, why: &str) {
        assert!(!link_exists(&self.bridge), "{why}: bridge left");
        let rules = self.ruleset();
        assert!(
            !rules.contains(&self.bridge) && !rules.contains(&format!("{}.", self.prefix_str())),
            "{why}: rules of the network left:\n{rules}"
        );
        for dir in ["networks", "attachments", "firewall"] {
            let left = self.dir_names(&self.root.join(dir));
            assert!(left.is_empty(), "{why}: {dir}/ holds {left:?}");
        }
        assert!(
            !self.root.join("leases").join(&self.name).exists(),
            "{why}: lease directory left"
        );
        assert_eq!(temp_files(&self.root), Vec::<PathBuf>::new(), "{why}");
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
    let left = state_left(&b.root);
    assert!(left.is_empty(), "{why}: left in the state root: {left:?}");
    assert_eq!(cgroup_dirs_named(&b.id), Vec::<PathBuf>::new(), "{why}");
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
