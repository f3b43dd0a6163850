//! LSM labels are applied or the container fails, as with runc 1.1.5; a
//! label is never silently dropped. This host has neither AppArmor nor
//! SELinux enabled, so what is checked here is runc's behaviour without
//! them (observed with Debian's runc 1.1.5 on the same host):
//!
//! - `process.apparmorProfile`: runc writes `exec <profile>` to the exec
//!   attribute without checking that AppArmor is enabled, and fails with
//!   "unable to apply apparmor profile: apparmor failed to apply profile:
//!   write /proc/self/attr/exec: invalid argument", exit 1;
//! - `process.selinuxLabel`: refused before anything is made, "selinux label
//!   is specified in config, but selinux is disabled or not supported", exit 1
//!   (`exec` refuses a process with one the same way);
//! - `linux.mountLabel`: added as `context="..."` to the tmpfs mounts, which
//!   a kernel without SELinux refuses: the `/dev` mount fails, "invalid
//!   argument", exit 1.
//!
//! Which attribute file AppArmor gets is unit-tested in libcontainer.

use super::*;

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

#[test]
fn an_apparmor_profile_is_applied_or_the_container_fails() {
    let mut b = TestBundle::new("apparmor");
    b.sh("echo should-not-run");
    b.edit(|c| c["process"]["apparmorProfile"] = json!("hull-test-no-such-profile"));
    // Without AppArmor the kernel refuses the write; with it, the profile
    // does not exist. Either way the container must not start unconfined.
    let why = if apparmor_enabled() {
        "No such file"
    } else {
        "Invalid argument"
    };
    assert_create_fails(
        &b,
        &[
            "unable to apply apparmor profile: apparmor failed to apply profile",
            "/proc/thread-self/attr/",
            why,
        ],
    );
}

#[test]
fn an_selinux_label_without_selinux_is_refused() {
    assert!(
        !selinux_enabled(),
        "written for a host without SELinux: with it the label would be applied"
    );
    let mut b = TestBundle::new("selinux");
    b.sh("echo should-not-run");
    b.edit(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"));
    assert_create_fails(
        &b,
        &["selinux label is specified in config, but selinux is disabled or not supported"],
    );
}

#[test]
fn exec_with_labels_is_refused_like_create() {
    assert!(
        !selinux_enabled() && !apparmor_enabled(),
        "written for a host without LSMs"
    );
    let mut b = TestBundle::new("labels-exec");
    b.args(&["sleep", "60"]);
    b.detached(&["run", "-d"]);
    let mut process = b.config["process"].clone();
    process["args"] = json!(["echo", "should-not-run"]);
    let exec_with = |field: &str, value: &str| {
        let mut p = process.clone();
        p[field] = json!(value);
        let path = b.dir.join("process.json");
        std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
        Out::from(b.cmd(&["exec", "--process", path.to_str().unwrap(), &b.id]))
    };
    // runc exits 255 here, as for every failed exec; hull's exec failures
    // exit 1 (not specific to labels), so only the messages are compared.
    let out = exec_with("selinuxLabel", "system_u:system_r:container_t:s0");
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("selinux label is specified in config"),
        "{}",
        out.stderr
    );
    let out = exec_with("apparmorProfile", "hull-test-no-such-profile");
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("apparmor failed to apply profile")
            && out.stderr.contains("Invalid argument"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    b.delete_and_check(true);
    assert_nothing_left(&b);
}

#[test]
fn a_mount_label_without_selinux_fails_the_tmpfs_mounts() {
    assert!(
        !selinux_enabled(),
        "written for a host without SELinux: with it the mounts would be labelled"
    );
    let mut b = TestBundle::new("mountlabel");
    b.sh("echo should-not-run");
    b.edit(|c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0"));
    assert_create_fails(&b, &["cannot mount /dev", "Invalid argument"]);
}
