//! Raw image files: made sparse with a filesystem in them, and copied
//! (reflinked where the host filesystem can share blocks, else copied
//! sparsely) for snapshots and clones.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::process::Command;

use crate::error::{Result, VolumeError};
use crate::record::Fs;

/// Makes the image `path` (which must not exist): a sparse file of `size`
/// bytes holding a new, empty `fs`. The image never grows past `size`, so
/// the filesystem's own limit is the volume's quota.
pub(crate) fn make(path: &Path, size: u64, fs: Fs) -> Result<()> {
    let file = new_file(path)?;
    file.set_len(size)
        .map_err(|e| full_or(path, "sizing the image", e))?;
    drop(file);
    mkfs(path, fs)
}

/// Copies the image `from` to the new file `to`: a reflink (shared blocks,
/// copy on write) where the host filesystem has them, else a copy of the
/// data that keeps the holes.
pub(crate) fn copy(from: &Path, to: &Path) -> Result<()> {
    let src = File::open(from).map_err(VolumeError::io(from))?;
    let dst = new_file(to)?;
    // SAFETY: FICLONE with two descriptors we own.
    if unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } == 0 {
        return Ok(());
    }
    sparse_copy(&src, &dst, from, to)
}

/// The bytes the image takes on the host's disk (less than its size while
/// sparse).
pub fn allocated(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(VolumeError::io(path))?;
    Ok(meta.blocks() * 512)
}

fn new_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| full_or(path, "creating the image", e))
}

/// Copies the data extents of `src` (found with SEEK_DATA / SEEK_HOLE)
/// into `dst`, then sizes `dst` as `src`, so holes stay holes.
fn sparse_copy(src: &File, dst: &File, from: &Path, to: &Path) -> Result<()> {
    let size = src.metadata().map_err(VolumeError::io(from))?.len();
    let seek = |whence, at: u64| {
        // SAFETY: lseek on a descriptor we own.
        let r = unsafe { libc::lseek(src.as_raw_fd(), at as libc::off_t, whence) };
        (r >= 0).then_some(r as u64)
    };
    let mut at = 0;
    while at < size {
        // No data after `at` (ENXIO): the rest is a hole.
        let Some(start) = seek(libc::SEEK_DATA, at) else {
            break;
        };
        let end = seek(libc::SEEK_HOLE, start).unwrap_or(size);
        let (mut off_in, mut off_out) = (start as i64, start as i64);
        let mut left = (end - start) as usize;
        while left > 0 {
            // SAFETY: copy_file_range between two descriptors we own, with
            // offsets of our own.
            let n = unsafe {
                libc::copy_file_range(
                    src.as_raw_fd(),
                    &mut off_in,
                    dst.as_raw_fd(),
                    &mut off_out,
                    left,
                    0,
                )
            };
            if n < 0 {
                return Err(full_or(
                    to,
                    "copying the image",
                    std::io::Error::last_os_error(),
                ));
            }
            if n == 0 {
                break;
            }
            left -= n as usize;
        }
        at = end;
    }
    dst.set_len(size)
        .map_err(|e| full_or(to, "copying the image", e))?;
    dst.sync_all().map_err(VolumeError::io(to))
}

/// Runs `mkfs` of `fs` on the image `path`.
pub(crate) fn mkfs(path: &Path, fs: Fs) -> Result<()> {
    let (program, package, args): (_, _, &[&str]) = match fs {
        // No blocks reserved for root: the whole size is the container's.
        Fs::Ext4 => ("mkfs.ext4", "e2fsprogs", &["-q", "-F", "-m", "0"]),
        Fs::Xfs => ("mkfs.xfs", "xfsprogs", &["-q", "-f"]),
    };
    let out = tool(program)
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VolumeError::ToolMissing { program, package },
            _ => VolumeError::io(Path::new(program))(e),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let output = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let errno = std::io::Error::from_raw_os_error(libc::ENOSPC);
    match host_full(path) || output.contains(&errno.to_string()) {
        true => Err(full_or(path, program, errno)),
        false => Err(VolumeError::Tool { program, output }),
    }
}

/// `program` from PATH, else from the sbin directories root's PATH has
/// (a caller's PATH may lack them).
fn tool(program: &str) -> Command {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    match on_path {
        true => Command::new(program),
        false => {
            let found = ["/usr/sbin", "/sbin"]
                .iter()
                .map(|d| Path::new(d).join(program))
                .find(|p| p.is_file());
            Command::new(found.unwrap_or_else(|| program.into()))
        }
    }
}

/// Whether the filesystem holding `path` has (nearly) no room left.
fn host_full(path: &Path) -> bool {
    free_bytes(path).is_some_and(|free| free < 1 << 20)
}

fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent()?;
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// [`VolumeError::HostFull`] for ENOSPC (and EDQUOT), else the I/O error.
fn full_or(path: &Path, what: &str, e: std::io::Error) -> VolumeError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => VolumeError::HostFull {
            path: path.parent().unwrap_or(path).to_owned(),
            available: free_bytes(path).unwrap_or(0),
            what: what.to_owned(),
        },
        _ => VolumeError::io(path)(e),
    }
}
