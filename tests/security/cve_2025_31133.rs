//! CVE-2025-31133: masking with a `/dev/null` that is not the null device.
//!
//! The attack: a container whose `/dev` the runtime does not populate (a
//! bind-mounted `/dev`, or a racing volume) makes `/dev/null` a symlink to
//! `/proc/sys/kernel/core_pattern`. runc bind-mounted "/dev/null" over each
//! masked path, following the link, so a writable core_pattern appeared at
//! a masked path such as `/proc/timer_list`; writing a pipe handler there
//! runs a command as root on the host. hull opens `/dev/null` without
//! following links and refuses anything but the character device 1:3
//! (`RootfsError::NotDevNull`): create fails, nothing is left behind, and
//! core_pattern is untouched.

use std::os::unix::fs::symlink;

use hull_tests::*;

use super::support::{bind_dev, core_pattern, mknod_char};

/// `create` of `b` fails naming the fake /dev/null, leaving nothing behind.
fn assert_refused(b: &TestBundle) {
    let pattern = core_pattern();
    let out = Out::from(b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]));
    out.fails_with("/dev/null in the container is not the null device");
    b.assert_no_state();
    assert_no_process(&b.id);
    assert_no_mount(&b.id);
    assert_eq!(core_pattern(), pattern, "core_pattern changed");
}

#[test]
fn a_dev_null_symlink_to_core_pattern_is_refused() {
    let mut b = TestBundle::new("cve-2025-31133-link");
    let dev = bind_dev(&mut b);
    symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    b.args(&["true"]);
    assert_refused(&b);
}

#[test]
fn a_regular_file_as_dev_null_is_refused() {
    let mut b = TestBundle::new("cve-2025-31133-file");
    let dev = bind_dev(&mut b);
    std::fs::write(dev.join("null"), "").unwrap();
    b.args(&["true"]);
    assert_refused(&b);
}

/// The control: the same bound `/dev` with the real null device works, and
/// the masked path reads as empty, so the refusals above are the guard's.
#[test]
fn a_real_null_device_in_a_bound_dev_masks_as_usual() {
    let mut b = TestBundle::new("cve-2025-31133-real");
    let dev = bind_dev(&mut b);
    mknod_char(&dev.join("null"), 1, 3);
    b.sh("wc -c </proc/timer_list; grep -c timer_list /proc/self/mountinfo");
    let out = b.run_ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1"],
        "{out}"
    );
}
