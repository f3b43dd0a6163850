//! L1 and L2 tables: the two-level map from a guest cluster to the host
//! cluster holding its data.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};

/// Bits 9-55 of an L1 or L2 entry: the host offset.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bit 63: the cluster's refcount is exactly one, so it may be written in place.
pub const COPIED: u64 = 1 << 63;
/// Bit 62 of an L2 entry: the cluster is compressed.
const COMPRESSED: u64 = 1 << 62;
/// Bit 0 of an L2 entry (version 3): the cluster reads as zeros.
const ZERO: u64 = 1;
/// How many L2 tables stay in memory before the cache is emptied.
const L2_CACHE_TABLES: usize = 64;

/// Where a guest cluster's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Not in this image: the backing file's (or zeros without one).
    Unallocated,
    /// Reads as zeros; `host` is a cluster preallocated for it, if any.
    Zero { host: Option<u64>, copied: bool },
    /// At `host` in the image file.
    Data { host: u64, copied: bool },
    /// Compressed: hull neither reads nor writes these.
    Compressed,
}

/// Decodes an L2 entry, refusing a host offset that is not cluster-aligned.
pub fn decode_l2(entry: u64, cluster_size: u64) -> Result<Mapping> {
    if entry & COMPRESSED != 0 {
        return Ok(Mapping::Compressed);
    }
    let host = entry & OFFSET_MASK;
    let copied = entry & COPIED != 0;
    if !host.is_multiple_of(cluster_size) {
        return Err(Error::Corrupt(format!("unaligned data cluster {host:#x}")));
    }
    Ok(if entry & ZERO != 0 {
        Mapping::Zero {
            host: (host != 0).then_some(host),
            copied,
        }
    } else if host == 0 {
        Mapping::Unallocated
    } else {
        Mapping::Data { host, copied }
    })
}

/// Reads a table of `count` big-endian entries at `offset`.
pub fn read_table(file: &File, offset: u64, count: usize) -> Result<Vec<u64>> {
    let mut raw = vec![0u8; count * 8];
    file.read_exact_at(&mut raw, offset)
        .map_err(|e| Error::Corrupt(format!("table at {offset:#x}: {e}")))?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect())
}

/// Writes one entry of the table at `table` in place.
pub fn write_entry(file: &File, table: u64, index: usize, value: u64) -> Result<()> {
    file.write_all_at(&value.to_be_bytes(), table + index as u64 * 8)?;
    Ok(())
}

/// L2 tables read from the image, by host offset. Writes go through to the
/// file at once, so an entry can be dropped at any time.
#[derive(Default)]
pub struct L2Cache {
    tables: HashMap<u64, Vec<u64>>,
}

impl L2Cache {
    /// The L2 table at `offset`, read on first use.
    pub fn table(&mut self, file: &File, offset: u64, entries: usize) -> Result<&mut Vec<u64>> {
        if !self.tables.contains_key(&offset) {
            if self.tables.len() >= L2_CACHE_TABLES {
                self.tables.clear();
            }
            let table = read_table(file, offset, entries)?;
            self.tables.insert(offset, table);
        }
        Ok(self.tables.get_mut(&offset).unwrap())
    }

    /// Sets entry `index` of the table at `offset`, in memory and in the file.
    pub fn set(
        &mut self,
        file: &File,
        offset: u64,
        entries: usize,
        index: usize,
        value: u64,
    ) -> Result<()> {
        write_entry(file, offset, index, value)?;
        self.table(file, offset, entries)?[index] = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: u64 = 65536;

    #[test]
    fn l2_entries_decode() {
        assert_eq!(decode_l2(0, CS).unwrap(), Mapping::Unallocated);
        assert_eq!(
            decode_l2(COPIED | (5 * CS), CS).unwrap(),
            Mapping::Data {
                host: 5 * CS,
                copied: true
            }
        );
        assert_eq!(
            decode_l2(ZERO, CS).unwrap(),
            Mapping::Zero {
                host: None,
                copied: false
            }
        );
        assert_eq!(decode_l2(COMPRESSED | 77, CS).unwrap(), Mapping::Compressed);
        assert!(matches!(decode_l2(CS + 512, CS), Err(Error::Corrupt(_))));
    }
}
