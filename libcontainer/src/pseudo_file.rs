//! Reading the kernel's pseudo-files (`/proc`, cgroupfs, sysctl).
//!
//! They report a size of 0, so `std::fs::read_to_string` first stats them
//! and then reads in steps that start at 32 bytes (mountinfo took 8 reads).
//! Reading into a page-sized buffer takes one call, plus the one that sees
//! the end.

use std::io::Read;
use std::path::Path;

/// The whole text of `path`.
pub(crate) fn read_to_string(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut text = String::with_capacity(4096);
    // Through `Take`, which has no size hint: no stat, no seek.
    std::fs::File::open(path)?
        .take(u64::MAX)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_pseudo_file_whole() {
        let text = super::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(
            text,
            std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        );
        assert!(text.ends_with('\n'));
    }
}
