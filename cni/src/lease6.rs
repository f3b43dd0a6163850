//! IPv6 lease files in host-local's layout (the `bridge` role).
//!
//! hull's IPAM leases the IPv4 address, `<ipam.dataDir>/<network>/<ip>`,
//! and the IPv6 address is its twin, so that one file covers both for
//! hull. host-local (or anyone reading the directory) would not know the
//! twin is taken: the `bridge` role also writes `<network>/<ip6>`, holding
//! the container id like the IPv4 file, after the attach, and removes it
//! before the detach releases the IPv4 lease (so it never removes the file
//! of a container that got the address since).

use std::fs;
use std::io;
use std::path::PathBuf;

use bridge::Attachment;

use super::config::Layout;
use super::error::CniError;
use super::state;

/// The IPv6 lease file of `att`: only a dual-stack attachment in
/// host-local's layout has one.
fn file(layout: &Layout, att: &Attachment) -> Option<PathBuf> {
    let (Layout::HostLocal(dir), Some(ip6)) = (layout, att.ip6) else {
        return None;
    };
    Some(dir.join(&att.network).join(ip6.to_string()))
}

/// Writes the IPv6 lease file of `att` whole (see `whole_file`), in place
/// of a stale one: a kill leaves no temporary file.
pub fn write(layout: &Layout, att: &Attachment) -> Result<(), CniError> {
    let Some(path) = file(layout, att) else {
        return Ok(());
    };
    let create = || bridge::whole_file::create(&path, att.container.as_bytes());
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            state::remove(&path)?;
            create()
        }
        r => r,
    }
    .map_err(|e| state::io_error("write", &path, &e))
}

/// Removes the IPv6 lease file of `att` if it is the container's; fine if
/// it is gone.
pub fn remove(layout: &Layout, att: &Attachment) -> Result<(), CniError> {
    match file(layout, att) {
        Some(path) if owner(&path)?.as_deref() == Some(att.container.as_str()) => {
            state::remove(&path)
        }
        _ => Ok(()),
    }
}

/// CHECK: the container holds its IPv6 lease file.
pub fn check(layout: &Layout, att: &Attachment) -> Result<(), CniError> {
    let Some(path) = file(layout, att) else {
        return Ok(());
    };
    if owner(&path)?.as_deref() != Some(att.container.as_str()) {
        return Err(CniError::check(format!(
            "{} holds no lease file {}",
            att.container,
            path.display()
        )));
    }
    Ok(())
}

/// Whose lease `path` is; `None` if there is none.
fn owner(path: &std::path::Path) -> Result<Option<String>, CniError> {
    match fs::read_to_string(path) {
        Ok(owner) => Ok(Some(owner)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state::io_error("read", path, &e)),
    }
}
