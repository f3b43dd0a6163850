//! Creating images: empty ones of a virtual size, overlays on a backing
//! file (linked clones), and external snapshots.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::header::Header;
use super::tables::OFFSET_MASK;
use super::{probe_format, Image, MAX_L1_ENTRIES};
use crate::device::BlockDevice;
use crate::error::{Error, Result};

/// How an image is created.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// log2 of the cluster size: 9 (512 bytes) to 21 (2 MiB); qemu's
    /// default is 16.
    pub cluster_bits: u32,
    /// The backing file's name as stored in the image: relative names are
    /// relative to the image's directory.
    pub backing_file: Option<String>,
    /// "qcow2" or "raw"; probed from the file when `None`.
    pub backing_format: Option<String>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            cluster_bits: 16,
            backing_file: None,
            backing_format: None,
        }
    }
}

/// The clusters an empty image starts with, in order: the header, the
/// refcount table, the L1 table and the refcount blocks counting them.
struct Layout {
    table_clusters: u64,
    l1_entries: u64,
    l1_clusters: u64,
    blocks: u64,
}

impl Layout {
    /// Sizes the refcount table for the largest the image can grow to (every
    /// guest cluster and L2 table allocated), as hull never grows the table.
    fn new(size: u64, cluster_bits: u32) -> Result<Layout> {
        let cs = 1u64 << cluster_bits;
        let per_block = cs / 2;
        let l1_entries = size.div_ceil(cs * (cs / 8)).max(1);
        if l1_entries > MAX_L1_ENTRIES {
            return Err(Error::Invalid(format!(
                "virtual size {size} is too large for {cs}-byte clusters"
            )));
        }
        let l1_clusters = (l1_entries * 8).div_ceil(cs);
        let data = size.div_ceil(cs) + l1_entries;
        let mut table_clusters = 1;
        loop {
            let meta = 1 + table_clusters + l1_clusters;
            // Blocks count themselves too; one spare covers rounding.
            let all_blocks = (data + meta).div_ceil(per_block - 1) + 1;
            let need = (all_blocks * 8).div_ceil(cs);
            if need <= table_clusters {
                break;
            }
            table_clusters = need;
        }
        let meta = 1 + table_clusters + l1_clusters;
        let blocks = meta.div_ceil(per_block - 1);
        Ok(Layout {
            table_clusters,
            l1_entries,
            l1_clusters,
            blocks,
        })
    }
}

/// Creates a new qcow2 image of `size` bytes at `path`, which must not
/// exist. On failure nothing is left at `path`.
pub fn create(path: &Path, size: u64, options: &CreateOptions) -> Result<()> {
    if size == 0 || !size.is_multiple_of(512) {
        return Err(Error::Invalid(format!(
            "virtual size {size} is not a positive multiple of 512"
        )));
    }
    if !(9..=21).contains(&options.cluster_bits) {
        return Err(Error::Invalid(format!(
            "cluster_bits {} is outside 9..=21",
            options.cluster_bits
        )));
    }
    if let Some(format) = options.backing_format.as_deref() {
        if format != "qcow2" && format != "raw" {
            return Err(Error::Invalid(format!("backing format {format}")));
        }
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::file(path, e))?;
    let written = write_empty(&file, size, options).and_then(|()| {
        file.sync_all()?;
        // Open it back: checks what was written and that the backing
        // chain opens.
        Image::open(path, true).map(drop)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

fn write_empty(file: &File, size: u64, options: &CreateOptions) -> Result<()> {
    let layout = Layout::new(size, options.cluster_bits)?;
    let cs = 1u64 << options.cluster_bits;
    let header = Header {
        cluster_bits: options.cluster_bits,
        size,
        l1_size: layout.l1_entries as u32,
        l1_table_offset: (1 + layout.table_clusters) * cs,
        refcount_table_offset: cs,
        refcount_table_clusters: layout.table_clusters as u32,
        nb_snapshots: 0,
        snapshots_offset: 0,
        refcount_order: 4,
        autoclear_features: 0,
        backing_file: options.backing_file.clone(),
        backing_format: options.backing_format.clone(),
    };
    file.write_all_at(&header.encode()?, 0)?;
    let first_block = 1 + layout.table_clusters + layout.l1_clusters;
    let used = first_block + layout.blocks;
    // The refcount table: entry i points at block i.
    let mut table = vec![0u8; (layout.table_clusters * cs) as usize];
    for i in 0..layout.blocks {
        let block = ((first_block + i) * cs) & OFFSET_MASK;
        table[i as usize * 8..][..8].copy_from_slice(&block.to_be_bytes());
    }
    file.write_all_at(&table, cs)?;
    // The L1 table is all zeros: nothing is allocated yet.
    let l1 = vec![0u8; (layout.l1_clusters * cs) as usize];
    file.write_all_at(&l1, header.l1_table_offset)?;
    // Refcount blocks: one for each cluster used so far.
    let mut blocks = vec![0u8; (layout.blocks * cs) as usize];
    for i in 0..used as usize {
        blocks[i * 2..][..2].copy_from_slice(&1u16.to_be_bytes());
    }
    file.write_all_at(&blocks, first_block * cs)?;
    Ok(())
}

/// The name an overlay at `image` stores for `backing`: the file name when
/// both share a directory (so the pair can move together), else the
/// absolute path.
fn backing_name(image: &Path, backing: &Path) -> Result<String> {
    let abs = |p: &Path| -> Result<std::path::PathBuf> {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = parent.unwrap_or(Path::new("."));
        let dir = dir.canonicalize().map_err(|e| Error::file(dir, e))?;
        Ok(dir.join(
            p.file_name()
                .ok_or_else(|| Error::Invalid(format!("{} has no file name", p.display())))?,
        ))
    };
    let (image, backing) = (abs(image)?, abs(backing)?);
    let name = if image.parent() == backing.parent() {
        backing.file_name().unwrap().to_owned()
    } else {
        backing.into_os_string()
    };
    name.into_string()
        .map_err(|_| Error::Invalid("backing file path is not UTF-8".into()))
}

/// Creates an overlay at `image` over `backing` (a linked clone): reads see
/// the backing file until written; writes go to the overlay only. The
/// virtual size is the backing file's.
pub fn create_overlay(image: &Path, backing: &Path) -> Result<()> {
    let format = probe_format(backing)?;
    let size = match format.as_str() {
        "qcow2" => Image::open(backing, true)?.size(),
        _ => std::fs::metadata(backing)
            .map_err(|e| Error::file(backing, e))?
            .len(),
    };
    let options = CreateOptions {
        backing_file: Some(backing_name(image, backing)?),
        backing_format: Some(format),
        ..CreateOptions::default()
    };
    create(image, size, &options)
}

/// Takes an external snapshot: the image's current content moves to
/// `snapshot` (which then must not be written: clones and the image read
/// from it) and a new empty overlay over it takes the image's place. The
/// image must not be open. On failure the image is as it was.
pub fn snapshot(image: &Path, snapshot: &Path) -> Result<()> {
    Image::open(image, true)?;
    if snapshot.exists() {
        return Err(Error::Invalid(format!("{} exists", snapshot.display())));
    }
    std::fs::rename(image, snapshot).map_err(|e| Error::file(snapshot, e))?;
    if let Err(e) = create_overlay(image, snapshot) {
        let _ = std::fs::rename(snapshot, image);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_covers_the_largest_image() {
        for (size, bits) in [(1u64 << 30, 16), (64 << 20, 9), (1 << 40, 16), (512, 12)] {
            let l = Layout::new(size, bits).unwrap();
            let cs = 1u64 << bits;
            let worst = 1 + l.table_clusters + l.l1_clusters + size.div_ceil(cs) + l.l1_entries;
            let blocks = worst.div_ceil(cs / 2 - 1) + 1;
            assert!(l.table_clusters * cs / 8 >= blocks, "{size} {bits}");
            assert!(l.blocks * (cs / 2) >= 1 + l.table_clusters + l.l1_clusters + l.blocks);
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        let dir = std::env::temp_dir().join(format!("blockimg-create-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.qcow2");
        for size in [0, 1000] {
            assert!(matches!(
                create(&path, size, &CreateOptions::default()),
                Err(Error::Invalid(_))
            ));
            assert!(!path.exists());
        }
        let big = CreateOptions {
            cluster_bits: 9,
            ..CreateOptions::default()
        };
        assert!(matches!(
            create(&path, 1 << 50, &big),
            Err(Error::Invalid(_))
        ));
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
