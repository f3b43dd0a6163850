//! Refcounts and cluster allocation. hull never frees a cluster: clusters
//! are taken at the end of the file, each with a refcount of one, so the
//! only refcount change is 0 to 1 and the file never has holes in use.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::header::Header;
use super::tables::{read_table, write_entry, OFFSET_MASK};
use crate::error::{Error, Result};

/// The refcount table (in memory) and the allocator's next free cluster.
pub struct Allocator {
    table: Vec<u64>,
    table_offset: u64,
    cluster_bits: u32,
    /// The index of the first cluster past everything in use.
    next_free: u64,
}

impl Allocator {
    /// Reads the refcount table; allocation starts at the end of the file.
    pub fn load(file: &File, header: &Header, file_len: u64) -> Result<Self> {
        let cs = header.cluster_size();
        let entries = header.refcount_table_clusters as u64 * cs / 8;
        if !header.refcount_table_offset.is_multiple_of(cs) || entries == 0 || entries > 1 << 24 {
            return Err(Error::Corrupt("refcount table placement".into()));
        }
        let table = read_table(file, header.refcount_table_offset, entries as usize)?;
        Ok(Allocator {
            table,
            table_offset: header.refcount_table_offset,
            cluster_bits: header.cluster_bits,
            next_free: file_len.div_ceil(cs),
        })
    }

    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// 16-bit refcounts per block.
    fn per_block(&self) -> u64 {
        self.cluster_size() / 2
    }

    /// The refcount of cluster `index`.
    pub fn get(&self, file: &File, index: u64) -> Result<u16> {
        let block = match self.table.get((index / self.per_block()) as usize) {
            Some(&entry) => entry & OFFSET_MASK,
            None => return Ok(0),
        };
        if block == 0 {
            return Ok(0);
        }
        let mut raw = [0u8; 2];
        file.read_exact_at(&mut raw, block + (index % self.per_block()) * 2)?;
        Ok(u16::from_be_bytes(raw))
    }

    /// Sets cluster `index`'s refcount to one, taking a new refcount block
    /// from the end of the file when its range has none yet.
    fn mark_used(&mut self, file: &File, index: u64) -> Result<()> {
        let slot = (index / self.per_block()) as usize;
        if slot >= self.table.len() {
            return Err(Error::Unsupported(
                "the refcount table is full (the image outgrew its refcount table)".into(),
            ));
        }
        if self.table[slot] & OFFSET_MASK == 0 {
            let block_index = self.next_free;
            self.next_free += 1;
            let block = block_index << self.cluster_bits;
            file.write_all_at(&vec![0u8; self.cluster_size() as usize], block)?;
            write_entry(file, self.table_offset, slot, block)?;
            self.table[slot] = block;
            // The block's own refcount: in its own range or a later one.
            self.mark_used(file, block_index)?;
        }
        let block = self.table[slot] & OFFSET_MASK;
        file.write_all_at(&1u16.to_be_bytes(), block + (index % self.per_block()) * 2)?;
        Ok(())
    }

    /// Takes a free cluster, marks it used and returns its host offset. Its
    /// content is the caller's to write. A cluster past the end of the file
    /// that is already counted (a write cut short before) is skipped: it
    /// stays leaked, which `qemu-img check` reports and repairs, rather
    /// than being handed out twice.
    pub fn allocate(&mut self, file: &File) -> Result<u64> {
        while self.get(file, self.next_free)? != 0 {
            self.next_free += 1;
        }
        let index = self.next_free;
        self.next_free += 1;
        self.mark_used(file, index)?;
        Ok(index << self.cluster_bits)
    }
}
