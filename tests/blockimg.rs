//! Volume images served as files (privileged: FUSE mounts and loop
//! devices). A qcow2 image is shown by blockimg's FUSE server as one raw
//! file; data written through that file, or through a loop device and an
//! ext4 filesystem on it, is what `qemu-img convert` reads back.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use blockimg::qcow2::{create, CreateOptions, Image};
use blockimg::{serve, BlockDevice, Error};
use hull_tests::{assert_no_mount, require, text, workspace};

const MIB: u64 = 1 << 20;

#[path = "../blockimg/tests/support.rs"]
mod support;

use support::{pattern, qemu_check, QemuNbd};

/// A scratch directory with an image and an empty file to mount over;
/// unmounts the file and removes it all on drop.
struct Scratch {
    base: support::Scratch,
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let base = support::Scratch::new(name);
        let dir = base.0.clone();
        File::create(dir.join("disk")).unwrap();
        Scratch { base, dir }
    }

    fn image(&self) -> PathBuf {
        self.dir.join("vol.qcow2")
    }

    fn disk(&self) -> PathBuf {
        self.dir.join("disk")
    }

    /// The served file ([`Scratch::disk`]), opened to read and write.
    fn open_disk(&self) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.disk())
            .unwrap()
    }

    fn qcow2(&self, size: u64) -> PathBuf {
        require("qemu-img");
        create(&self.image(), size, &CreateOptions::default()).unwrap();
        self.image()
    }

    /// The guest bytes as qemu reads them.
    fn qemu_raw(&self) -> Vec<u8> {
        support::qemu_raw(&self.image(), &self.base)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = serve::unmount(&self.disk());
    }
}

/// The server binary: `$BLOCKIMG_SERVE`, else the workspace's debug build
/// (`cargo build` makes it beside hull).
fn server_bin() -> PathBuf {
    std::env::var_os("BLOCKIMG_SERVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/debug/blockimg-serve"))
}

/// blockimg's server as a process: started with its "ready" line read.
fn spawn_server(source: &Path, disk: &Path, extra: &[&str]) -> Child {
    let bin = server_bin();
    let mut child = Command::new(&bin)
        .args(extra)
        .arg(source)
        .arg(disk)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run cargo build first)", bin.display()));
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line != "ready\n" {
        let out = child.wait_with_output().unwrap();
        panic!("server did not start: {}", text(&out.stderr));
    }
    child
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = format!(" {} ", path.display());
    info.lines().any(|l| l.contains(&needle))
}

#[test]
fn a_qcow2_image_is_served_as_a_raw_file_of_its_size() {
    let s = Scratch::new("blockimg-file");
    let size = 16 * MIB;
    let image = s.qcow2(size);
    let served = serve::serve(Box::new(Image::open(&image, false).unwrap()), &s.disk()).unwrap();
    let mut model = vec![0u8; size as usize];
    {
        let file = s.open_disk();
        assert_eq!(file.metadata().unwrap().len(), size);
        for (i, at) in [0u64, 65_535, 3 * MIB + 17, size - 70_000]
            .into_iter()
            .enumerate()
        {
            let data = pattern(i as u64, 70_000);
            file.write_all_at(&data, at).unwrap();
            model[at as usize..][..data.len()].copy_from_slice(&data);
        }
        file.sync_all().unwrap();
        let mut back = vec![0u8; size as usize];
        file.read_exact_at(&mut back, 0).unwrap();
        assert!(back == model, "the file reads back what was written");
        // The quota: nothing is written past the virtual size.
        let err = file.write_all_at(b"past the end", size).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        assert!(file.set_len(size * 2).is_err(), "the file cannot grow");
        assert_eq!(file.metadata().unwrap().len(), size);
    }
    served.stop().unwrap();
    assert!(!mounted(&s.disk()));
    qemu_check(&image);
    assert!(
        s.qemu_raw() == model,
        "qemu reads what went through the file"
    );
}

#[test]
fn a_read_only_file_refuses_writes() {
    let s = Scratch::new("blockimg-ro");
    let image = s.qcow2(MIB);
    Image::open(&image, false)
        .unwrap()
        .write_at(b"data", 100)
        .unwrap();
    let served = serve::serve(Box::new(Image::open(&image, true).unwrap()), &s.disk()).unwrap();
    let err = OpenOptions::new().write(true).open(s.disk()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let mut buf = [0u8; 4];
    File::open(s.disk())
        .unwrap()
        .read_exact_at(&mut buf, 100)
        .unwrap();
    assert_eq!(&buf, b"data");
    served.stop().unwrap();
    qemu_check(&image);
}

#[test]
fn bad_mountpoints_and_sources_are_refused_and_leave_nothing() {
    let s = Scratch::new("blockimg-bad");
    let image = s.qcow2(MIB);
    let device = Box::new(Image::open(&image, false).unwrap());
    let err = serve::serve(device, &s.dir).err().unwrap();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("regular file"), "{err}");
    assert!(!mounted(&s.dir));
    // The server process names a missing image and exits 1.
    let bin = server_bin();
    let missing = s.dir.join("missing.qcow2");
    let out = Command::new(bin)
        .arg(&missing)
        .arg(s.disk())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("missing.qcow2"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(!mounted(&s.disk()));
}

#[test]
fn the_server_stops_on_sigterm_and_a_killed_one_is_cleaned_up() {
    let s = Scratch::new("blockimg-proc");
    let image = s.qcow2(4 * MIB);
    let server = spawn_server(&image, &s.disk(), &[]);
    File::options()
        .write(true)
        .open(s.disk())
        .unwrap()
        .write_all_at(b"before sigterm", 0)
        .unwrap();
    signal(&server, libc::SIGTERM);
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!mounted(&s.disk()));
    qemu_check(&image);

    // Killed outright: the mount stays, dead (ENOTCONN), until unmounted.
    let mut server = spawn_server(&image, &s.disk(), &[]);
    File::options()
        .write(true)
        .open(s.disk())
        .unwrap()
        .write_all_at(b"before sigkill", MIB)
        .unwrap();
    signal(&server, libc::SIGKILL);
    server.wait().unwrap();
    let err = File::open(s.disk()).and_then(|f| f.read_exact_at(&mut [0u8; 1], 0));
    assert_eq!(err.unwrap_err().raw_os_error(), Some(libc::ENOTCONN));
    serve::unmount(&s.disk()).unwrap();
    assert!(!mounted(&s.disk()));
    assert_no_mount(&s.dir.display().to_string());
    // Both writes reached the image, which is consistent.
    qemu_check(&image);
    let raw = s.qemu_raw();
    assert_eq!(&raw[..14], b"before sigterm");
    assert_eq!(&raw[MIB as usize..][..14], b"before sigkill");
}

/// A loop device attached with LOOP_CONFIGURE, detached on drop.
struct Loop {
    dev: File,
    path: PathBuf,
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4c82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4c0a;
const LOOP_CLR_FD: libc::c_ulong = 0x4c01;

/// struct loop_config of <linux/loop.h>: the fd, a block size, a
/// loop_info64 (232 bytes, all zero here) and reserved space.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: [u8; 232],
    reserved: [u64; 8],
}

impl Loop {
    fn attach(backing: &Path) -> Loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(backing)
            .unwrap();
        let control = File::open("/dev/loop-control").unwrap();
        // Another test may take the free device between the two calls.
        for _ in 0..20 {
            // SAFETY: a request without arguments on /dev/loop-control.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
            assert!(n >= 0, "{}", std::io::Error::last_os_error());
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let dev = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let config = LoopConfig {
                fd: file.as_raw_fd() as u32,
                block_size: 0,
                info: [0; 232],
                reserved: [0; 8],
            };
            // SAFETY: LOOP_CONFIGURE reads a struct loop_config.
            let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, &config) };
            if rc == 0 {
                return Loop { dev, path };
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EBUSY),
                "LOOP_CONFIGURE: {err}"
            );
        }
        panic!("no free loop device");
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // SAFETY: LOOP_CLR_FD takes no argument.
        unsafe { libc::ioctl(self.dev.as_raw_fd(), LOOP_CLR_FD) };
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
}

#[test]
fn an_ext4_filesystem_on_a_loop_device_over_the_file_reaches_the_image() {
    require("mkfs.ext4");
    require("debugfs");
    let s = Scratch::new("blockimg-loop");
    let image = s.qcow2(64 * MIB);
    let server = spawn_server(&image, &s.disk(), &[]);
    let mnt = s.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    {
        let dev = Loop::attach(&s.disk());
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&dev.path));
        run(Command::new("mount").arg(&dev.path).arg(&mnt));
        std::fs::write(mnt.join("note"), "written through loop, FUSE and qcow2\n").unwrap();
        run(Command::new("umount").arg(&mnt));
    }
    signal(&server, libc::SIGTERM);
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_mount(&s.dir.display().to_string());
    qemu_check(&image);
    // qemu's view of the image holds the filesystem and the file.
    let raw = s.dir.join("fs.raw");
    std::fs::write(&raw, s.qemu_raw()).unwrap();
    let out = Command::new("debugfs")
        .args(["-R", "cat /note"])
        .arg(&raw)
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "written through loop, FUSE and qcow2\n");
}

#[test]
fn a_remote_export_is_served_as_a_file_and_survives_a_server_restart() {
    let s = Scratch::new("blockimg-nbd");
    let size = 8 * MIB;
    let image = s.qcow2(size);
    let mut nbd = QemuNbd::start(&image, &[]);
    let server = spawn_server(Path::new(&nbd.url()), &s.disk(), &[]);
    let file = s.open_disk();
    assert_eq!(file.metadata().unwrap().len(), size);
    let data = pattern(77, 300_000);
    file.write_all_at(&data, 3 * MIB + 1).unwrap();
    file.sync_all().unwrap();
    let mut back = vec![0u8; data.len()];
    file.read_exact_at(&mut back, 3 * MIB + 1).unwrap();
    assert!(back == data);

    // The storage server goes away: reads fail with EIO, soon, and the
    // file stays mounted.
    nbd.stop(libc::SIGKILL);
    let start = std::time::Instant::now();
    let err = file.read_exact_at(&mut back, 3 * MIB + 1).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert!(mounted(&s.disk()));

    // It comes back on the same port: the same file reads again.
    nbd.restart();
    back.fill(0);
    file.read_exact_at(&mut back, 3 * MIB + 1).unwrap();
    assert!(back == data, "flushed data is there after the restart");
    file.write_all_at(b"after restart", 0).unwrap();
    file.sync_all().unwrap();
    drop(file);

    signal(&server, libc::SIGTERM);
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!mounted(&s.disk()));
    nbd.stop(libc::SIGTERM);
    qemu_check(&image);
    let raw = s.qemu_raw();
    assert_eq!(&raw[..13], b"after restart");
    assert!(raw[3 * MIB as usize + 1..][..data.len()] == data[..]);
}

#[test]
fn a_server_killed_mid_write_leaves_a_consistent_image() {
    let s = Scratch::new("blockimg-kill");
    // Far more than the server writes before the kill.
    let size = 256 * MIB;
    let image = s.qcow2(size);
    let mut server = spawn_server(&image, &s.disk(), &[]);
    let file = s.open_disk();
    let writer = std::thread::spawn(move || {
        let chunk = pattern(5, MIB as usize);
        let mut written = 0u64;
        while written < size && file.write_all_at(&chunk, written).is_ok() {
            written += MIB;
        }
        written
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    signal(&server, libc::SIGKILL);
    server.wait().unwrap();
    let written = writer.join().unwrap();
    assert!(written < size, "the kill came after all {written} bytes");
    serve::unmount(&s.disk()).unwrap();
    assert!(!mounted(&s.disk()));
    // No error: at worst clusters taken but not yet mapped, which qemu
    // calls leaks ("no harm to data") and exits 3 for.
    let out = Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(&image)
        .output()
        .unwrap();
    let report = text(&out.stdout) + &text(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{report}");
    assert!(!report.contains("ERROR"), "{report}");
    // What was acknowledged is there, and the image takes writes again.
    let mut img = Image::open(&image, false).unwrap();
    let mut back = vec![0u8; MIB as usize];
    for at in (0..written).step_by(MIB as usize) {
        img.read_at(&mut back, at).unwrap();
        assert!(back == pattern(5, MIB as usize), "chunk at {at}");
    }
    img.write_at(b"again", size - 5).unwrap();
    img.flush().unwrap();
    drop(img);
    let out = Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        text(&out.stdout)
    );
}
