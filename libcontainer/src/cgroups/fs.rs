//! Reading and writing cgroup files with errors that name the file and value.

use std::io::Write;
use std::path::Path;

use super::CgroupError;

/// Writes `value` to `dir/file`.
pub fn write(dir: &Path, file: &str, value: impl std::fmt::Display) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let value = value.to_string();
    std::fs::write(&path, &value).map_err(|source| CgroupError::Write {
        path,
        value,
        source,
    })
}

/// One cgroup file taking several values, each in its own write(2) (as the
/// v1 devices lists want one rule per write), opened on the first.
pub struct Writer<'a> {
    dir: &'a Path,
    file: &'static str,
    open: Option<std::fs::File>,
}

impl<'a> Writer<'a> {
    /// A writer of `dir/file`; nothing is opened yet.
    pub fn new(dir: &'a Path, file: &'static str) -> Self {
        Self {
            dir,
            file,
            open: None,
        }
    }

    /// Writes `value` in one call.
    pub fn write(&mut self, value: impl std::fmt::Display) -> Result<(), CgroupError> {
        let value = value.to_string();
        let result = match &mut self.open {
            Some(f) => f.write_all(value.as_bytes()),
            None => std::fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join(self.file))
                .and_then(|mut f| {
                    f.write_all(value.as_bytes())?;
                    self.open = Some(f);
                    Ok(())
                }),
        };
        result.map_err(|source| CgroupError::Write {
            path: self.dir.join(self.file),
            value,
            source,
        })
    }
}

/// Reads `dir/file` as trimmed text.
pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    crate::pseudo_file::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(CgroupError::io(&path))
}

/// Reads `dir/file` as a number (`max` reads as `u64::MAX`).
pub fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    let s = read(dir, file).ok()?;
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, ...) as pairs.
pub fn read_keyed(dir: &Path, file: &str) -> Vec<(String, u64)> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}
