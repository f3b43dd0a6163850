//! Loop devices: an image file made a block device with one
//! `LOOP_CONFIGURE`, set to clear itself once nothing holds it, so a kill
//! between attaching and mounting leaves no device behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, VolumeError};

const LOOP_CONTROL: &str = "/dev/loop-control";
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;
const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64` of linux/loop.h.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of linux/loop.h.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A configured loop device, held open: it clears itself when this and
/// every other holder (a mount of it) are gone.
#[derive(Debug)]
pub struct LoopDevice {
    _device: File,
    pub path: PathBuf,
    /// Whether the kernel reads and writes the image with direct I/O (it
    /// falls back to the page cache when the backing file cannot).
    pub direct_io: bool,
}

/// Attaches `image` to a free loop device, read-only if `read_only`, with
/// direct I/O where the backing filesystem allows it.
pub fn attach(image: &Path, read_only: bool) -> Result<LoopDevice> {
    let backing = OpenOptions::new()
        .read(true)
        .write(!read_only)
        .custom_flags(libc::O_CLOEXEC)
        .open(image)
        .map_err(VolumeError::io(image))?;
    let control = File::open(LOOP_CONTROL).map_err(VolumeError::io(Path::new(LOOP_CONTROL)))?;
    let mut flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    if read_only {
        flags |= LO_FLAGS_READ_ONLY;
    }
    // Another process may take the free device between asking and
    // configuring it: then ask again.
    for _ in 0..64 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(VolumeError::sys("find a free loop device")(
                nix::Error::last(),
            ));
        }
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let device = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(VolumeError::io(&path))?;
        let config = config(&backing, image, flags);
        // SAFETY: LOOP_CONFIGURE reads a `struct loop_config` we own.
        if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config) } == 0 {
            let direct_io = std::fs::read_to_string(format!("/sys/block/loop{n}/loop/dio"))
                .is_ok_and(|s| s.trim() == "1");
            return Ok(LoopDevice {
                _device: device,
                path,
                direct_io,
            });
        }
        match nix::Error::last() {
            nix::Error::EBUSY => continue,
            e => {
                return Err(VolumeError::sys(format!(
                    "attach {} to {}",
                    image.display(),
                    path.display()
                ))(e))
            }
        }
    }
    Err(VolumeError::sys("find a free loop device")(
        nix::Error::EBUSY,
    ))
}

fn config(backing: &File, image: &Path, flags: u32) -> LoopConfig {
    use std::os::unix::ffi::OsStrExt;
    let mut file_name = [0u8; LO_NAME_SIZE];
    let name = image.as_os_str().as_bytes();
    let len = name.len().min(LO_NAME_SIZE - 1);
    file_name[..len].copy_from_slice(&name[..len]);
    LoopConfig {
        fd: backing.as_raw_fd() as u32,
        // The kernel's default: the backing device's logical block size
        // with direct I/O, else 512.
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags,
            file_name,
            crypt_name: [0; LO_NAME_SIZE],
            encrypt_key: [0; 32],
            init: [0; 2],
        },
        reserved: [0; 8],
    }
}

/// The loop devices whose backing file lies under `dir`: what a test or
/// an operator checks for leftovers.
pub fn backed_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|f| Path::new(f.trim()).starts_with(dir))
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .collect()
}
