//! `hull delete [--force]`.

use std::path::Path;

use bridge::ContainerNetwork;
use libcontainer::{Container, Error};

use crate::{Failure, Outcome};

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
        // A state file that cannot be read (a garbled disk): `--force`
        // removes it with what is recorded beside it.
        Err(e @ Error::State(_)) if force => {
            eprintln!("hull: {e}; removing it");
            ContainerNetwork::disconnect_id(root, id).map_err(|e| Failure::new(e.to_string()))?;
            Container::remove_broken(root, id)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// Deletes the container and its network attachment if it has one: the
/// attachment goes once the container is stopped, before the state, which
/// goes last, so a delete killed half-way leaves a container that
/// `delete --force` finishes.
pub fn remove(container: Container, force: bool) -> Outcome {
    if ContainerNetwork::is_connected(&container) {
        container.stop_for_delete(force)?;
        ContainerNetwork::disconnect(&container).map_err(|e| Failure::new(e.to_string()))?;
    }
    container.delete(force)?;
    Ok(0)
}
