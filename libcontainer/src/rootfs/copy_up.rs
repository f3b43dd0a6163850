//! `tmpcopyup`: a tmpfs that starts with a copy of what the image has at its
//! mount point, as runc and crun do (podman asks for it on its tmpfs mounts).
//! The image's directory is opened before the tmpfs covers it, and copied
//! through that handle: entries are opened relative to their directory and
//! never followed, so a symlink in the image copies as a symlink.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::dir::Dir;
use nix::fcntl::{readlinkat, AtFlags, OFlag};

use super::safe_path::open_at;
use nix::sys::stat::{fchmod, fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

/// Opens directory `name` of `dir` for reading, without following a symlink.
fn open_dir(dir: &impl AsRawFd, name: &std::ffi::CStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    open_at(dir, name, flags, Mode::empty())
}

/// The directory at the O_PATH handle `at`, open for reading.
pub(crate) fn open_source(at: &OwnedFd) -> nix::Result<OwnedFd> {
    open_dir(at, c".")
}

/// Copies the tree of directory `src` into directory `dst` (the fresh
/// tmpfs), with modes and owners, and gives `dst` the mode and owner of `src`.
pub(crate) fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> nix::Result<()> {
    let st = nix::sys::stat::fstat(src.as_raw_fd())?;
    fchmod(
        dst.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )?;
    fchown(
        dst.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    copy_entries(src, dst)
}

fn copy_entries(src: &OwnedFd, dst: &OwnedFd) -> nix::Result<()> {
    let listing = Dir::from_fd(nix::unistd::dup(src.as_raw_fd())?)?;
    for entry in listing.into_iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let (s, d) = (Some(src.as_raw_fd()), Some(dst.as_raw_fd()));
        let st = fstatat(s, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        match kind {
            SFlag::S_IFDIR => {
                mkdirat(d, name, mode)?;
                let (from, to) = (open_dir(src, name)?, open_dir(dst, name)?);
                copy_entries(&from, &to)?;
            }
            SFlag::S_IFREG => {
                let read = OFlag::O_RDONLY | OFlag::O_NOFOLLOW;
                let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
                let mut from = File::from(open_at(src, name, read, Mode::empty())?);
                let mut to = File::from(open_at(dst, name, create, mode)?);
                std::io::copy(&mut from, &mut to)
                    .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            }
            SFlag::S_IFLNK => symlinkat(readlinkat(s, name)?.as_os_str(), d, name)?,
            SFlag::S_IFSOCK => continue,
            _ => mknodat(d, name, kind, mode, st.st_rdev)?,
        }
        let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
        fchownat(d, name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}
