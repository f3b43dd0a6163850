//! `hull delete [--force]`.

use std::path::Path;

use libcontainer::{Container, Error};

use super::network;
use crate::Outcome;

pub fn delete(root: &Path, id: &str, force: bool) -> Outcome {
    match Container::load(root, id) {
        Ok(c) => {
            remove(c, force)?;
        }
        Err(Error::NotExist) => {
            // What a create that never finished left (runc removes it too).
            Container::remove_unfinished(root, id)?;
            // containerd's shim deletes twice; runc answers the second call with success.
            if !force {
                return Err(Error::NotExist.into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// Deletes the container, then its network attachment if it has one.
pub fn remove(container: Container, force: bool) -> Outcome {
    let attachment = network::recorded(&container);
    container.delete(force)?;
    network::disconnect(attachment)?;
    Ok(0)
}
