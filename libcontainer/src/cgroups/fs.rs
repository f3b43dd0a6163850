//! Reading and writing cgroup files with errors that name the file and value.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CgroupError;

thread_local! {
    /// While [`undo_on_error`] runs: each file written so far, with the
    /// value it had before its first write, in the order written.
    static JOURNAL: RefCell<Option<Vec<(PathBuf, String)>>> = const { RefCell::new(None) };
}

/// Writes `value` to `dir/file`.
pub fn write(dir: &Path, file: &str, value: impl std::fmt::Display) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let value = value.to_string();
    let before = JOURNAL.with_borrow(|j| {
        j.as_ref()
            .filter(|j| !j.iter().any(|(p, _)| *p == path))
            .and_then(|_| crate::pseudo_file::read_to_string(&path).ok())
    });
    std::fs::write(&path, &value).map_err(|source| CgroupError::Write {
        path: path.clone(),
        value,
        source,
    })?;
    if let Some(before) = before {
        JOURNAL.with_borrow_mut(|j| j.as_mut().map(|j| j.push((path, before))));
    }
    Ok(())
}

/// Runs `f`, and if it fails, writes back the earlier value of every file
/// it wrote (last written first, retracing the states the kernel accepted),
/// so that a failed `update` leaves the old limits in place. Files holding
/// several lines (keyed lists) cannot be written back whole and are left.
pub fn undo_on_error<T>(f: impl FnOnce() -> Result<T, CgroupError>) -> Result<T, CgroupError> {
    JOURNAL.set(Some(Vec::new()));
    let result = f();
    let written = JOURNAL.take().unwrap_or_default();
    if result.is_err() {
        for (path, before) in written.into_iter().rev() {
            let before = before.trim_end_matches('\n');
            if before.is_empty() || before.contains('\n') {
                tracing::warn!("cannot restore {}: not a single value", path.display());
                continue;
            }
            if let Err(e) = std::fs::write(&path, before) {
                tracing::warn!("cannot restore {} to {before:?}: {e}", path.display());
            }
        }
    }
    result
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_writes_the_earlier_values_back() {
        let dir = std::env::temp_dir().join(format!("hull-unit-undo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), "1\n").unwrap();
        std::fs::write(dir.join("b"), "max\n").unwrap();
        let failed = undo_on_error(|| {
            write(&dir, "a", 2)?;
            write(&dir, "b", 3)?;
            write(&dir, "a", 4)?;
            write(&dir, "missing/c", 5)
        });
        assert!(failed.is_err());
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!((read("a"), read("b")), ("1".into(), "max".into()));
        undo_on_error(|| write(&dir, "a", 7)).unwrap();
        assert_eq!(read("a"), "7");
        write(&dir, "b", 8).unwrap();
        assert_eq!(read("b"), "8");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
