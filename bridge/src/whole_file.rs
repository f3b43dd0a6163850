//! Files written whole: written unnamed (`O_TMPFILE`) in their directory,
//! then linked in under their name, so a kill at any point leaves either
//! no file or a complete one, and never a temporary file. A file replaced
//! (the store's JSON records) goes through a `.tmp` twin renamed over it,
//! which the record's removal also removes.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::NetError;

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

/// Writes `value` to `path` whole: written unnamed (`O_TMPFILE`), then
/// linked in as `path` when it is new, or as `<path>.tmp` renamed over it
/// when it is replaced. A kill leaves the old or the new file, at worst
/// beside the `.tmp` one, which the teardown of what `path` records removes
/// ([`remove_json`]). Called under the store's lock.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), NetError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let err = |what: &str| NetError::io(format!("{what} {}", path.display()));
    std::fs::create_dir_all(dir).map_err(NetError::io(format!("create {}", dir.display())))?;
    let json = serde_json::to_vec_pretty(value).expect("serializable");
    let file = unnamed(dir, &json).map_err(err("write"))?;
    match link(&file, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        r => return r.map_err(err("link")),
    }
    let tmp = temp_of(path);
    remove_file(&tmp)?;
    link(&file, &tmp).map_err(err("link"))?;
    std::fs::rename(&tmp, path).map_err(err("rename into"))
}

/// The name [`write_json`] gives a replacement of `path` before it is
/// renamed over it.
fn temp_of(path: &Path) -> PathBuf {
    path.with_extension("json.tmp")
}

/// Removes a file [`write_json`] wrote, and its temporary twin.
pub fn remove_json(path: &Path) -> Result<(), NetError> {
    remove_file(&temp_of(path))?;
    remove_file(path)
}

fn remove_file(path: &Path) -> Result<(), NetError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(NetError::io(format!("remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}
