//! The qcow2 header (version 3) and its extensions: parsed from and written
//! to the image's first cluster.

use crate::error::{Error, Result};

/// "QFI\xfb".
pub const MAGIC: u32 = 0x5146_49fb;
/// The length of the version 3 header hull writes: 104 bytes of fields, the
/// compression type byte, padded to a multiple of 8.
pub const HEADER_LEN: u32 = 112;
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;

/// Incompatible feature bits hull understands: none but "dirty" (refused).
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;

/// The fields of a qcow2 header hull reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub refcount_order: u32,
    /// Features a writer that does not know them must clear (qemu's
    /// persistent bitmaps): hull writes none, and refuses to write to an
    /// image that has some.
    pub autoclear_features: u64,
    pub backing_file: Option<String>,
    pub backing_format: Option<String>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

impl Header {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Parses the header from `buf`, the image's first cluster (or as much
    /// of it as the file holds). Refuses what hull cannot read safely.
    pub fn parse(buf: &[u8]) -> Result<Header> {
        if buf.len() < 72 || be32(buf, 0) != MAGIC {
            return Err(Error::NotQcow2("bad magic".into()));
        }
        let version = be32(buf, 4);
        if version != 2 && version != 3 {
            return Err(Error::Unsupported(format!("version {version}")));
        }
        let cluster_bits = be32(buf, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(Error::Corrupt(format!("cluster_bits {cluster_bits}")));
        }
        if be32(buf, 32) != 0 {
            return Err(Error::Unsupported("encryption".into()));
        }
        let (incompat, autoclear, refcount_order, header_len) = if version == 3 {
            if buf.len() < 104 {
                return Err(Error::Corrupt("short version 3 header".into()));
            }
            (be64(buf, 72), be64(buf, 88), be32(buf, 96), be32(buf, 100))
        } else {
            (0, 0, 4, 72)
        };
        if incompat & INCOMPAT_DIRTY != 0 {
            return Err(Error::Unsupported(
                "dirty image (lazy refcounts): run qemu-img check -r all".into(),
            ));
        }
        if incompat & INCOMPAT_CORRUPT != 0 {
            return Err(Error::Corrupt("the image is marked corrupt".into()));
        }
        if incompat & !(INCOMPAT_DIRTY | INCOMPAT_CORRUPT) != 0 {
            return Err(Error::Unsupported(format!(
                "incompatible features {incompat:#x}"
            )));
        }
        if refcount_order != 4 {
            return Err(Error::Unsupported(format!(
                "refcount width of {} bits",
                1u32 << refcount_order.min(31)
            )));
        }
        let cluster_size = 1usize << cluster_bits;
        let header_len = header_len as usize;
        if header_len < 72 || header_len > buf.len().min(cluster_size) {
            return Err(Error::Corrupt(format!("header length {header_len}")));
        }
        let mut header = Header {
            cluster_bits,
            size: be64(buf, 24),
            l1_size: be32(buf, 36),
            l1_table_offset: be64(buf, 40),
            refcount_table_offset: be64(buf, 48),
            refcount_table_clusters: be32(buf, 56),
            nb_snapshots: be32(buf, 60),
            snapshots_offset: be64(buf, 64),
            refcount_order,
            autoclear_features: autoclear,
            backing_file: None,
            backing_format: None,
        };
        if version == 3 {
            header.parse_extensions(&buf[header_len..])?;
        }
        let backing_offset = be64(buf, 8) as usize;
        let backing_len = be32(buf, 16) as usize;
        if backing_offset != 0 {
            let name = buf
                .get(backing_offset..backing_offset + backing_len)
                .filter(|_| backing_len <= 1023)
                .ok_or_else(|| Error::Corrupt("backing file name out of bounds".into()))?;
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| Error::Corrupt("backing file name is not UTF-8".into()))?;
            header.backing_file = Some(name);
        }
        Ok(header)
    }

    fn parse_extensions(&mut self, mut ext: &[u8]) -> Result<()> {
        loop {
            if ext.len() < 8 {
                return Err(Error::Corrupt(
                    "header extensions run off the cluster".into(),
                ));
            }
            let (kind, len) = (be32(ext, 0), be32(ext, 4) as usize);
            if kind == EXT_END {
                return Ok(());
            }
            let padded = len.div_ceil(8) * 8;
            let data = ext
                .get(8..8 + len)
                .ok_or_else(|| Error::Corrupt("header extension out of bounds".into()))?;
            if kind == EXT_BACKING_FORMAT {
                let format = String::from_utf8(data.to_vec())
                    .map_err(|_| Error::Corrupt("backing format is not UTF-8".into()))?;
                self.backing_format = Some(format);
            }
            ext = ext.get(8 + padded..).unwrap_or(&[]);
        }
    }

    /// Encodes the header, its extensions and the backing file name into a
    /// buffer of one cluster, as version 3 with 16-bit refcounts.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.cluster_size() as usize];
        put32(&mut buf, 0, MAGIC);
        put32(&mut buf, 4, 3);
        put32(&mut buf, 20, self.cluster_bits);
        put64(&mut buf, 24, self.size);
        put32(&mut buf, 36, self.l1_size);
        put64(&mut buf, 40, self.l1_table_offset);
        put64(&mut buf, 48, self.refcount_table_offset);
        put32(&mut buf, 56, self.refcount_table_clusters);
        put32(&mut buf, 60, self.nb_snapshots);
        put64(&mut buf, 64, self.snapshots_offset);
        put32(&mut buf, 96, self.refcount_order);
        put32(&mut buf, 100, HEADER_LEN);
        let mut at = HEADER_LEN as usize;
        if let Some(format) = &self.backing_format {
            put32(&mut buf, at, EXT_BACKING_FORMAT);
            put32(&mut buf, at + 4, format.len() as u32);
            let end = at + 8 + format.len();
            buf.get_mut(at + 8..end)
                .ok_or_else(|| Error::Invalid("backing format too long".into()))?
                .copy_from_slice(format.as_bytes());
            at += 8 + format.len().div_ceil(8) * 8;
        }
        // The end-of-extensions marker: eight zero bytes.
        at += 8;
        if let Some(name) = &self.backing_file {
            if name.is_empty() || name.len() > 1023 || at + name.len() > buf.len() {
                return Err(Error::Invalid(format!(
                    "backing file name of {} bytes",
                    name.len()
                )));
            }
            put64(&mut buf, 8, at as u64);
            put32(&mut buf, 16, name.len() as u32);
            buf[at..at + name.len()].copy_from_slice(name.as_bytes());
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            cluster_bits: 16,
            size: 1 << 30,
            l1_size: 2,
            l1_table_offset: 3 << 16,
            refcount_table_offset: 1 << 16,
            refcount_table_clusters: 1,
            nb_snapshots: 0,
            snapshots_offset: 0,
            refcount_order: 4,
            autoclear_features: 0,
            backing_file: Some("base.qcow2".into()),
            backing_format: Some("qcow2".into()),
        }
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let h = sample();
        assert_eq!(Header::parse(&h.encode().unwrap()).unwrap(), h);
    }

    #[test]
    fn bad_magic_is_not_qcow2() {
        let buf = vec![0u8; 512];
        assert!(matches!(Header::parse(&buf), Err(Error::NotQcow2(_))));
    }

    #[test]
    fn dirty_and_unknown_features_are_refused() {
        let mut buf = sample().encode().unwrap();
        put64(&mut buf, 72, INCOMPAT_DIRTY);
        assert!(matches!(Header::parse(&buf), Err(Error::Unsupported(_))));
        put64(&mut buf, 72, 1 << 4);
        assert!(matches!(Header::parse(&buf), Err(Error::Unsupported(_))));
    }

    #[test]
    fn backing_name_out_of_bounds_is_corrupt() {
        let mut buf = sample().encode().unwrap();
        put32(&mut buf, 16, 60000);
        assert!(matches!(Header::parse(&buf), Err(Error::Corrupt(_))));
    }
}
