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

/// A `qemu-nbd` serving an image on 127.0.0.1, started and stopped by pid.
pub struct QemuNbd {
    pub child: Option<std::process::Child>,
    pub port: u16,
    image: PathBuf,
    extra: Vec<String>,
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl QemuNbd {
    /// Serves `image` as export "vol"; `extra` are more qemu-nbd flags.
    pub fn start(image: &Path, extra: &[&str]) -> QemuNbd {
        need("qemu-nbd");
        let mut nbd = QemuNbd {
            child: None,
            port: free_port(),
            image: image.to_owned(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        nbd.restart();
        nbd
    }

    /// Starts qemu-nbd (again) on the same port; waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new("qemu-nbd")
            .args([
                "-f",
                "qcow2",
                "-b",
                "127.0.0.1",
                "-x",
                "vol",
                "--persistent",
            ])
            .args(["-p", &self.port.to_string()])
            .args(&self.extra)
            .arg(&self.image)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start qemu-nbd");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "qemu-nbd did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops it with `signal` (by pid) and reaps it.
    pub fn stop(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, signal) };
            child.wait().unwrap();
        }
    }

    pub fn url(&self) -> String {
        format!("nbd://127.0.0.1:{}/vol", self.port)
    }
}

impl Drop for QemuNbd {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
    }
}
