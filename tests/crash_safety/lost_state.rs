//! A container whose state is gone or garbled while what it made is still
//! there (a state file removed by hand or by a tmpfs clean-up, a disk that
//! garbled it): `list` shows the id, and `delete --force ID` finds and
//! removes what is derivable from the id — processes and cgroups in every
//! hierarchy, the network (veth, lease, attachment, published port), the
//! files and mounts beside the state — without touching another
//! container's.

use std::path::Path;
use std::process::Command;

use hull_tests::netlab::{link_exists, veth_name};
use hull_tests::*;
use serde_json::Value;

use crate::kit::*;

/// `hull [net flags] run -d --network NET -p 127.0.0.1:PORT:80` of `b`
/// (or `create` when `verb` says so), asserted to succeed.
fn start_networked(net: &Net, b: &TestBundle, verb: &str, port: u16) {
    let publish = format!("127.0.0.1:{port}:80");
    let mut args = vec![verb];
    if verb == "run" {
        args.push("-d");
    }
    args.extend(["--network", &net.name, "-p", &publish, "--bundle"]);
    let dir = b.dir.to_str().unwrap();
    args.extend([dir, &b.id]);
    Out::from(output_via_files(net.hull(b).args(&args))).ok();
}

/// The entry for `id` of `list --format json` run by `hull` (a hull
/// command with its flags), and list's stderr.
fn listed(mut hull: Command, id: &str) -> (Option<Value>, String) {
    let out = Out::from(output_via_files(hull.args(["list", "--format", "json"])));
    let all: Value = serde_json::from_str(out.ok()).unwrap();
    let me = all
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == id).cloned());
    (me, out.stderr)
}

/// What the running container made is all there: process, cgroups, veth,
/// lease, attachment record, published port.
fn assert_made(net: &Net, b: &TestBundle, tag: &str, port: u16) {
    // `run -d` returns once the init is let go, maybe before it execs.
    wait_for(|| "the container does not run".into(), || !no_process(tag));
    assert!(
        !cgroup_dirs_named(&b.id).is_empty(),
        "no cgroup of the container"
    );
    assert!(link_exists(&veth_name(&b.id)), "no veth of the container");
    assert!(
        net.lease_owners().iter().any(|(_, owner)| owner == &b.id),
        "no lease"
    );
    assert!(
        net.ruleset().contains(&port.to_string()),
        "port {port} not published"
    );
}

/// `delete --force` after the state of `b` was lost to `lose`: the id is
/// listed as stopped first, then nothing of it is left, its port can be
/// published again and the network removed.
fn lose_state_then_force_delete(
    net: &Net,
    b: &TestBundle,
    tag: &str,
    port: u16,
    lose: impl FnOnce(&Path),
) {
    assert_made(net, b, tag, port);
    lose(&b.root.join(&b.id));
    let (me, warning) = listed(net.hull(b), &b.id);
    let me = me.unwrap_or_else(|| panic!("{} is not listed: {warning}", b.id));
    assert_eq!(me["status"], "stopped", "{me}");
    assert!(
        warning.contains(&b.id) && warning.contains("delete --force"),
        "list says nothing of {}: {warning}",
        b.id
    );
    Out::from(output_via_files(
        net.hull(b).args(["delete", "--force", &b.id]),
    ))
    .ok();
    assert_no_container(b, tag, "after delete --force");
    net.assert_nothing_of(&b.id, port, "after delete --force");
    assert_eq!(
        listed(net.hull(b), &b.id).0,
        None,
        "still listed after delete --force"
    );
    // The port is free: another container publishes it.
    let mut again = TestBundle::new(&format!("crash-lost-again{port}"));
    again.args(&["sleep", "30"]);
    start_networked(net, &again, "run", port);
    Out::from(output_via_files(
        net.hull(&again).args(["delete", "--force", &again.id]),
    ))
    .ok();
}

/// A sleep tag unique to this test process and `n`.
fn tag(n: u32) -> String {
    format!("43.{n}{}", std::process::id())
}

#[test]
fn a_running_networked_container_whose_state_file_is_removed() {
    let net = Net::new("lost40", 40);
    net.create();
    let mut b = TestBundle::new("crash-lost-rm");
    let tag = tag(1);
    b.args(&["sleep", &tag]);
    start_networked(&net, &b, "run", 30_200);
    lose_state_then_force_delete(&net, &b, &tag, 30_200, |state| {
        std::fs::remove_file(state).unwrap();
    });
    Out::from(net.cmd(&["network", "rm", &net.name])).ok();
    net.assert_removed("network rm after delete --force");
}

#[test]
fn a_created_networked_container_whose_state_file_is_garbled() {
    let net = Net::new("lost41", 41);
    net.create();
    let mut b = TestBundle::new("crash-lost-garbled");
    let tag = tag(2);
    b.args(&["sleep", &tag]);
    start_networked(&net, &b, "create", 30_201);
    // The init waits for start; a clone of `hull create`, its command line
    // names the id.
    let init = b.init_pid().to_string();
    lose_state_then_force_delete(&net, &b, &b.id, 30_201, |state| {
        std::fs::write(state, b"{\"ociVersion\":\"1.0.2\",\"id\":\"\0\xff").unwrap();
    });
    // Gone, or a zombie its new parent has not reaped yet.
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
    let alive = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z'));
    assert!(!alive, "the waiting init {init} outlived delete --force");
    Out::from(net.cmd(&["network", "rm", &net.name])).ok();
    net.assert_removed("network rm after delete --force");
}

/// The default cgroup of a lost id may be what another container of the
/// root chose as its `cgroupsPath`: that container, its processes and its
/// cgroup are not the lost id's to remove.
#[test]
fn another_containers_cgroup_at_the_lost_ids_path_is_left_alone() {
    let lost = TestBundle::new("crash-lost-id");
    let mut other = TestBundle::new("crash-lost-other");
    other.root = lost.root.clone();
    let tag = tag(3);
    other.args(&["sleep", &tag]);
    // Relative: below hull's own cgroup, where the lost id's would be.
    other.edit(|c| c["linux"]["cgroupsPath"] = Value::from(lost.id.as_str()));
    let dir = other.dir.to_str().unwrap().to_owned();
    Out::from(other.cmd(&["run", "-d", "--bundle", &dir, &other.id])).ok();
    let dirs = cgroup_dirs_named(&lost.id);
    assert!(!dirs.is_empty(), "the other container has no cgroup");
    // Leftovers of the lost id beside the state: its exec fifo.
    std::fs::write(lost.root.join(format!("{}@exec.fifo", lost.id)), b"").unwrap();
    Out::from(lost.cmd(&["delete", "--force", &lost.id])).ok();
    assert!(
        !lost.root.join(format!("{}@exec.fifo", lost.id)).exists(),
        "the lost id's fifo is left"
    );
    assert_eq!(
        cgroup_dirs_named(&lost.id),
        dirs,
        "another container's cgroup went"
    );
    assert!(!no_process(&tag), "another container's process was killed");
    assert_eq!(other.state()["status"], "running");
    Out::from(other.cmd(&["delete", "--force", &other.id])).ok();
    wait_for(
        || "the other container outlived its delete".into(),
        || no_process(&tag),
    );
    assert_eq!(
        cgroup_dirs_named(&lost.id),
        Vec::<std::path::PathBuf>::new()
    );
    other.assert_no_state();
}

/// A restore killed after it bound the rootfs for CRIU and before it wrote
/// the record leaves `<id>@criu-root` mounted: made here by hand (CRIU is
/// not needed to leave it; a tmpfs stands for the rootfs bind), listed,
/// then unmounted and removed.
#[test]
fn a_restores_mount_point_without_a_state_is_unmounted() {
    let b = TestBundle::new("crash-lost-mount");
    let point = b.root.join(format!("{}@criu-root", b.id));
    std::fs::create_dir_all(&point).unwrap();
    // A tmpfs of the test's own, not a bind of a real rootfs: if the mount
    // survived, the clean-up's recursive removal of the state root would
    // empty what it shows.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", &b.id])
        .arg(&point)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t tmpfs");
    let (me, warning) = listed(b.hull(), &b.id);
    assert_eq!(me.expect("not listed")["status"], "stopped");
    assert!(warning.contains("criu-root"), "{warning}");
    Out::from(b.cmd(&["delete", "--force", &b.id])).ok();
    assert_no_mount(&b.id);
    assert!(!point.exists(), "mount point left");
    b.assert_no_state();
}

/// A connect killed after it recorded a container's names for the
/// network's resolver and before its attachment record leaves only the
/// names (made here by hand): `delete --force` of the id removes them.
#[test]
fn resolver_names_left_by_a_killed_connect_go_with_delete_force() {
    let net = Net::new("lost42", 42);
    net.create();
    let id = format!("hull-test-ghost-{}", std::process::id());
    let members = net.root.join("dns").join(&net.name).join("members");
    std::fs::create_dir_all(&members).unwrap();
    let names = members.join(format!("{id}.json"));
    std::fs::write(&names, br#"{"aliases":["ghost"]}"#).unwrap();
    let root = std::env::temp_dir().join(format!("hull-test-ghost-root-{}", std::process::id()));
    let mut hull = Command::new(hull_bin());
    hull.arg("--root").arg(&root);
    let out = Out::from(output_via_files(
        net.flags(&mut hull).args(["delete", "--force", &id]),
    ));
    let _ = std::fs::remove_dir_all(&root);
    out.ok();
    assert!(!names.exists(), "the resolver names of {id} are left");
    Out::from(net.cmd(&["network", "rm", &net.name])).ok();
}
