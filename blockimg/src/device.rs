//! The block device a FUSE file serves: qcow2 images, raw files and NBD
//! exports all read and write at byte offsets of a fixed virtual size.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

/// A fixed-size array of bytes addressed by offset.
pub trait BlockDevice: Send {
    /// The virtual size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; the range must lie within [`Self::size`].
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// Writes `buf` at `offset`; the range must lie within [`Self::size`].
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<()>;
    /// Whether writes are refused.
    fn read_only(&self) -> bool;
}

/// Refuses an access that runs past `size` (or overflows).
pub(crate) fn check_range(offset: u64, len: usize, size: u64) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::OutOfRange {
            offset,
            len: len as u64,
            size,
        }),
    }
}

/// How long a lock held elsewhere is waited for before the image counts
/// as in use: a forked child holds its parent's locks until it execs.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Locks an image file for the life of `file`: shared for reading,
/// exclusive for writing, so a second writer (or a writer beside readers,
/// a snapshot of an image in use) is refused instead of corrupting it.
pub(crate) fn lock(file: &File, path: &Path, read_only: bool) -> Result<()> {
    use std::os::fd::AsRawFd;
    let kind = if read_only {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock(2) on an open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::file(path, err));
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::InUse(path.display().to_string()));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A raw image: a plain file whose bytes are the device's.
pub struct RawFile {
    file: File,
    size: u64,
    read_only: bool,
}

impl RawFile {
    /// Opens `path`; its current length is the device's size.
    pub fn open(path: &Path, read_only: bool) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        lock(&file, path, read_only)?;
        let size = file.metadata().map_err(|e| Error::file(path, e))?.len();
        Ok(RawFile {
            file,
            size,
            read_only,
        })
    }
}

impl BlockDevice for RawFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)?;
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        self.file.write_all_at(buf, offset)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file.sync_data()?;
        Ok(())
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

/// Opens what a volume's data is: an export at an `nbd://` URL, else a
/// qcow2 image or a raw file by its first bytes.
pub fn open(source: &Path, read_only: bool) -> Result<Box<dyn BlockDevice>> {
    if let Some(url) = source.to_str().filter(|s| s.starts_with("nbd://")) {
        let target = crate::nbd::Target::parse(url)?;
        let timeouts = crate::nbd::Timeouts::default();
        return Ok(Box::new(crate::nbd::NbdClient::connect(
            target, timeouts, read_only,
        )?));
    }
    Ok(match crate::qcow2::probe_format(source)?.as_str() {
        "qcow2" => Box::new(crate::qcow2::Image::open(source, read_only)?),
        _ => Box::new(RawFile::open(source, read_only)?),
    })
}
