//! What the crate's tests share: scratch directories, deterministic data,
//! and qemu's tools as the judge of what hull writes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory named `hull-test-blockimg-*`, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("hull-test-blockimg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails the test with the install hint when a qemu tool is missing.
pub fn need(tool: &str) {
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/deps.sh");
    let out = Command::new(deps).args(["--check", tool]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `len` bytes of a xorshift stream seeded by `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs a command, panicking with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-img check` must find no error and no leak.
pub fn qemu_check(image: &Path) {
    let out = run(Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(image));
    assert!(out.contains("No errors were found"), "{out}");
}

/// `qemu-img info`'s JSON, which must parse as qcow2 of `size` bytes.
pub fn qemu_info(image: &Path, size: u64) -> String {
    let out = run(Command::new("qemu-img")
        .args(["info", "-f", "qcow2", "--output=json"])
        .arg(image));
    assert!(out.contains("\"format\": \"qcow2\""), "{out}");
    assert!(out.contains(&format!("\"virtual-size\": {size},")), "{out}");
    assert!(out.contains("\"compat\": \"1.1\""), "{out}");
    out
}

/// The guest's bytes as qemu sees them: `qemu-img convert -O raw`.
pub fn qemu_raw(image: &Path, scratch: &Scratch) -> Vec<u8> {
    let raw = scratch.path("converted.raw");
    let _ = std::fs::remove_file(&raw);
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(image)
        .arg(&raw));
    let data = std::fs::read(&raw).unwrap();
    std::fs::remove_file(&raw).unwrap();
    data
}
