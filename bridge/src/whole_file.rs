//! Files written whole: written unnamed (`O_TMPFILE`) in their directory,
//! then linked in under their name, so a kill at any point leaves either
//! no file or a complete one, and never a temporary file.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates the file `path` holding `contents`, whole or not at all;
/// `AlreadyExists` if it exists.
pub fn create(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    link(&unnamed(dir, contents)?, path)
}

/// An unnamed file in `dir` (mode 0644) holding `contents`.
pub(crate) fn unnamed(dir: &Path, contents: &[u8]) -> io::Result<File> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)?;
    file.write_all(contents)?;
    Ok(file)
}

/// Links the [`unnamed`] file in as `to`; `AlreadyExists` if `to` exists.
pub(crate) fn link(file: &File, to: &Path) -> io::Result<()> {
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        None,
        Path::new(&from),
        None,
        to,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)
}
