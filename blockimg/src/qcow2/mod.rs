//! hull's reader and writer of qcow2 (version 3) images: the guest's bytes
//! behind L1/L2 tables, clusters allocated at the end of the file with
//! refcounts, and a chain of backing files under an image for snapshots and
//! linked clones.
//!
//! Writes go to the file in an order that a killed writer cannot make
//! inconsistent: a cluster's refcount first, then its data, then the L2
//! entry pointing at it, so a kill leaves at worst a leaked cluster. As
//! with qemu's writeback cache, only what a flush covered survives a power
//! loss.
//!
//! Not supported (refused with [`Error::Unsupported`], never misread):
//! encryption, compressed clusters, external data files, extended L2
//! entries, refcounts other than 16 bits, and writing to an image with
//! internal snapshots.

mod create;
mod header;
mod refcount;
mod tables;

pub use create::{create, create_overlay, snapshot, CreateOptions};
pub use header::Header;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::device::{check_range, BlockDevice, RawFile};
use crate::error::{Error, Result};
use refcount::Allocator;
use tables::{decode_l2, read_table, write_entry, L2Cache, Mapping, COPIED, OFFSET_MASK};

/// How deep a chain of backing files may be: guards against a loop.
const MAX_BACKING_DEPTH: usize = 32;
/// The largest L1 table accepted, in entries (as qemu's limit: 32 MiB).
const MAX_L1_ENTRIES: u64 = 32 << 20 >> 3;

/// An open qcow2 image.
pub struct Image {
    file: File,
    path: PathBuf,
    header: Header,
    read_only: bool,
    l1: Vec<u64>,
    l2: L2Cache,
    alloc: Allocator,
    backing: Option<Box<dyn BlockDevice>>,
}

impl Image {
    /// Opens the image at `path` and its chain of backing files (those only
    /// for reading).
    pub fn open(path: &Path, read_only: bool) -> Result<Image> {
        Self::open_at_depth(path, read_only, 0)
    }

    fn open_at_depth(path: &Path, read_only: bool, depth: usize) -> Result<Image> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        crate::device::lock(&file, path, read_only)?;
        let file_len = file.metadata().map_err(|e| Error::file(path, e))?.len();
        let mut first = vec![0u8; (file_len.min(2 << 20)) as usize];
        file.read_exact_at(&mut first, 0)
            .map_err(|e| Error::file(path, e))?;
        let header = Header::parse(&first)?;
        if !read_only && header.nb_snapshots != 0 {
            return Err(Error::Unsupported(
                "writing to an image with internal snapshots".into(),
            ));
        }
        if !read_only && header.autoclear_features != 0 {
            // qemu's persistent bitmaps would go stale with hull's writes;
            // clearing the bit, as the format allows, leaves their
            // clusters leaked. Refused instead: qemu can remove them.
            return Err(Error::Unsupported(
                "writing to an image with persistent bitmaps \
                 (qemu-img bitmap --remove them first)"
                    .into(),
            ));
        }
        let cs = header.cluster_size();
        let needed_l1 = header.size.div_ceil(cs * (cs / 8));
        if (header.l1_size as u64) < needed_l1
            || header.l1_size as u64 > MAX_L1_ENTRIES
            || !header.l1_table_offset.is_multiple_of(cs)
        {
            return Err(Error::Corrupt("L1 table size or placement".into()));
        }
        let l1 = read_table(&file, header.l1_table_offset, header.l1_size as usize)?;
        let alloc = Allocator::load(&file, &header, file_len)?;
        let backing = match &header.backing_file {
            None => None,
            Some(name) => Some(open_backing(
                path,
                name,
                header.backing_format.as_deref(),
                depth + 1,
            )?),
        };
        Ok(Image {
            file,
            path: path.to_owned(),
            header,
            read_only,
            l1,
            l2: L2Cache::default(),
            alloc,
            backing,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The image file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cluster_size(&self) -> u64 {
        self.header.cluster_size()
    }

    fn l2_entries(&self) -> usize {
        (self.cluster_size() / 8) as usize
    }

    /// The L1 and L2 indices of the guest cluster holding `offset`.
    fn indices(&self, offset: u64) -> (usize, usize) {
        let cluster = offset >> self.header.cluster_bits;
        let per_l2 = self.l2_entries() as u64;
        ((cluster / per_l2) as usize, (cluster % per_l2) as usize)
    }

    /// Where the guest cluster holding `offset` is.
    fn lookup(&mut self, offset: u64) -> Result<Mapping> {
        let (l1_index, l2_index) = self.indices(offset);
        let l2 = self.l1[l1_index] & OFFSET_MASK;
        if l2 == 0 {
            return Ok(Mapping::Unallocated);
        }
        if !l2.is_multiple_of(self.cluster_size()) {
            return Err(Error::Corrupt(format!("unaligned L2 table {l2:#x}")));
        }
        let entries = self.l2_entries();
        let entry = self.l2.table(&self.file, l2, entries)?[l2_index];
        decode_l2(entry, self.cluster_size())
    }

    /// Reads guest bytes as the backing chain has them (zeros past its end).
    fn read_backing(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        buf.fill(0);
        if let Some(backing) = &mut self.backing {
            let size = backing.size();
            if offset < size {
                let n = buf.len().min((size - offset) as usize);
                backing.read_at(&mut buf[..n], offset)?;
            }
        }
        Ok(())
    }

    /// Reads the part of one guest cluster that `buf` covers.
    fn read_in_cluster(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        match self.lookup(offset)? {
            Mapping::Unallocated => self.read_backing(buf, offset),
            Mapping::Zero { .. } => {
                buf.fill(0);
                Ok(())
            }
            Mapping::Data { host, .. } => {
                let within = offset % self.cluster_size();
                self.file
                    .read_exact_at(buf, host + within)
                    .map_err(|e| Error::Corrupt(format!("data cluster {host:#x}: {e}")))
            }
            Mapping::Compressed => Err(Error::Unsupported("compressed clusters".into())),
        }
    }

    /// The L2 table for `l1_index`, allocated (zeroed) if there is none.
    fn l2_for_write(&mut self, l1_index: usize) -> Result<u64> {
        let entry = self.l1[l1_index];
        let l2 = entry & OFFSET_MASK;
        if l2 != 0 {
            if entry & COPIED == 0 {
                return Err(Error::Unsupported("writing to a shared L2 table".into()));
            }
            return Ok(l2);
        }
        let l2 = self.alloc.allocate(&self.file)?;
        let zeros = vec![0u8; self.cluster_size() as usize];
        self.file.write_all_at(&zeros, l2)?;
        let value = l2 | COPIED;
        write_entry(&self.file, self.header.l1_table_offset, l1_index, value)?;
        self.l1[l1_index] = value;
        Ok(l2)
    }

    /// Writes `data` within one guest cluster at `offset`: in place when the
    /// cluster is this image's alone, else into a new cluster filled first
    /// with what the guest saw there (copy on write), which the L2 entry
    /// points at only once its data is written.
    fn write_in_cluster(&mut self, data: &[u8], offset: u64) -> Result<()> {
        let cs = self.cluster_size();
        let within = offset % cs;
        let (l1_index, l2_index) = self.indices(offset);
        let l2 = self.l2_for_write(l1_index)?;
        let (host, fill) = match self.lookup(offset)? {
            Mapping::Data { host, copied: true } => {
                self.file.write_all_at(data, host + within)?;
                return Ok(());
            }
            Mapping::Zero {
                host: Some(host),
                copied: true,
            } => (host, None),
            Mapping::Zero { .. } => (self.alloc.allocate(&self.file)?, None),
            Mapping::Unallocated => (self.alloc.allocate(&self.file)?, Some(())),
            Mapping::Data { copied: false, .. } => {
                return Err(Error::Unsupported("writing to a shared cluster".into()))
            }
            Mapping::Compressed => return Err(Error::Unsupported("compressed clusters".into())),
        };
        let start = offset - within;
        let mut cluster = vec![0u8; cs as usize];
        if fill.is_some() && data.len() as u64 != cs {
            self.read_backing(&mut cluster, start)?;
        }
        cluster[within as usize..within as usize + data.len()].copy_from_slice(data);
        self.file.write_all_at(&cluster, host)?;
        let entries = self.l2_entries();
        self.l2
            .set(&self.file, l2, entries, l2_index, host | COPIED)?;
        Ok(())
    }

    /// The pieces of an access, each within one cluster: its range in the
    /// caller's buffer and its guest offset.
    fn split(&self, offset: u64, len: usize) -> Vec<(std::ops::Range<usize>, u64)> {
        let cs = self.cluster_size();
        let mut parts = Vec::new();
        let mut done = 0usize;
        while done < len {
            let at = offset + done as u64;
            let n = ((cs - at % cs) as usize).min(len - done);
            parts.push((done..done + n, at));
            done += n;
        }
        parts
    }
}

impl BlockDevice for Image {
    fn size(&self) -> u64 {
        self.header.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(offset, buf.len(), self.size())?;
        for (range, at) in self.split(offset, buf.len()) {
            self.read_in_cluster(&mut buf[range], at)?;
        }
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        check_range(offset, buf.len(), self.size())?;
        for (range, at) in self.split(offset, buf.len()) {
            self.write_in_cluster(&buf[range], at)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.read_only {
            self.file.sync_all()?;
        }
        Ok(())
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

/// Opens backing file `name` of the image at `image` (a relative name is
/// relative to the image's directory, as qemu has it), read-only.
fn open_backing(
    image: &Path,
    name: &str,
    format: Option<&str>,
    depth: usize,
) -> Result<Box<dyn BlockDevice>> {
    if depth > MAX_BACKING_DEPTH {
        return Err(Error::Invalid(format!(
            "backing chain deeper than {MAX_BACKING_DEPTH} (a loop?)"
        )));
    }
    let path = image
        .parent()
        .unwrap_or(Path::new("."))
        .join(Path::new(name));
    let format = match format {
        Some(format) => format.to_owned(),
        None => probe_format(&path)?,
    };
    match format.as_str() {
        "qcow2" => Ok(Box::new(Image::open_at_depth(&path, true, depth)?)),
        "raw" => Ok(Box::new(RawFile::open(&path, true)?)),
        other => Err(Error::Unsupported(format!("backing format {other}"))),
    }
}

/// "qcow2" if the file at `path` starts with the qcow2 magic, else "raw".
pub fn probe_format(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::file(path, e))?;
    let mut magic = [0u8; 4];
    let qcow2 =
        file.read_exact_at(&mut magic, 0).is_ok() && u32::from_be_bytes(magic) == header::MAGIC;
    Ok(if qcow2 { "qcow2" } else { "raw" }.to_owned())
}
