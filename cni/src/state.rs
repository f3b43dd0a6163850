//! Small state-file helpers: JSON files written whole, and flock'd
//! lock files.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{code, CniError};

/// An I/O failure on a state file (code 100).
pub fn io_error(action: &str, path: &Path, err: &io::Error) -> CniError {
    CniError::new(
        code::NETWORKING,
        format!("cannot {action} {}: {err}", path.display()),
    )
}

/// Writes `value` as JSON to `path` whole (see `whole_file`), creating
/// the directory if needed.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CniError> {
    bridge::whole_file::write_json(path, value)
        .map_err(|e| CniError::new(code::NETWORKING, e.to_string()))
}

/// Removes a file [`write_json`] wrote, and the temporary twin a kill may
/// have left; fine if they are gone.
pub fn remove_json(path: &Path) -> Result<(), CniError> {
    bridge::whole_file::remove_json(path)
        .map_err(|e| CniError::new(code::NETWORKING, e.to_string()))
}

/// The JSON in `path`, or `None` if there is no such file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, CniError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CniError::new(code::NETWORKING, format!("corrupt {}: {e}", path.display()))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, &e)),
    }
}

/// Removes `path`; fine if it is already gone.
pub fn remove(path: &Path) -> Result<(), CniError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path, &e)),
        _ => Ok(()),
    }
}

/// Takes an exclusive lock on `path` (created if missing), held until the
/// returned guard is dropped.
pub fn lock(path: &Path) -> Result<Flock<File>, CniError> {
    let mut file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error("open", path, &e))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(guard) => return Ok(guard),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(io_error("lock", path, &errno.into())),
        }
    }
}
