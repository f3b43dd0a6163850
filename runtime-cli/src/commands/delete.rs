//! `hull delete [--force]`.

use std::path::Path;

use libcontainer::{Container, Error};

use crate::Outcome;

pub fn delete(root: &Path, id: &str, force: bool) -> Outcome {
    match Container::load(root, id) {
        Ok(c) => c.delete(force)?,
        // containerd's shim deletes twice; runc answers the second call with success.
        Err(Error::NotExist) if force => {}
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
