//! `/proc` or `/sys` as a symlink in the rootfs: following it moves the
//! procfs or sysfs mount elsewhere and leaves `/proc` to the image (which
//! let an image defeat AppArmor, CVE-2019-16884; runc refuses such a rootfs
//! since, "must be mounted on ordinary directory"). hull refuses it too.

use super::*;

/// A bundle with its own rootfs whose `dir` is a symlink to `target`.
fn with_symlink(name: &str, dir: &str, target: &Path) -> TestBundle {
    let mut b = TestBundle::new(name);
    let rootfs = b.own_rootfs();
    std::fs::remove_dir(rootfs.join(dir)).unwrap();
    std::os::unix::fs::symlink(target, rootfs.join(dir)).unwrap();
    b.sh("echo should-not-run");
    b
}

/// A host directory a symlink in the image names, empty, removed on drop.
struct HostDir(std::path::PathBuf);

impl HostDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn assert_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(&self.0).unwrap().collect();
        assert!(entries.is_empty(), "{} was written to", self.0.display());
        assert_no_mount(self.0.to_str().unwrap());
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const REFUSED: &str = "must be mounted on ordinary directory";

#[test]
fn proc_as_a_symlink_into_the_image_is_refused() {
    let b = with_symlink("proc-link-tmp", "proc", Path::new("/tmp/x"));
    assert_create_fails(&b, &["cannot mount proc on /proc", REFUSED]);
    // Nothing was made where the link points.
    assert!(!b.rootfs().join("tmp/x").exists());
}

#[test]
fn proc_as_a_symlink_to_a_host_path_is_refused() {
    let host = HostDir::new("proc-target");
    let b = with_symlink("proc-link-host", "proc", &host.0);
    assert_create_fails(
        &b,
        &["filesystem \"proc\" must be mounted on ordinary directory"],
    );
    host.assert_untouched();
    let inside = b.rootfs().join(host.0.strip_prefix("/").unwrap());
    assert!(!inside.exists(), "{} was created", inside.display());
}

#[test]
fn sys_as_a_symlink_is_refused() {
    let host = HostDir::new("sys-target");
    let b = with_symlink("sys-link", "sys", &host.0);
    assert_create_fails(&b, &["cannot mount sysfs on /sys", REFUSED]);
    host.assert_untouched();
}
