//! `hull delete [--force]`.

use std::path::Path;

use bridge::ContainerNetwork;
use libcontainer::{Container, Error, Leftovers};

use crate::{Failure, Outcome};

pub fn delete(root: &Path, id: &str, force: bool) -> Outcome {
    match Container::load(root, id) {
        Ok(c) => {
            remove(c, force)?;
        }
        // containerd's shim deletes twice; runc answers the second call
        // with success, after removing what a create that never finished
        // left beside the state (runc removes such a directory too).
        Err(Error::NotExist) if !force => {
            Container::remove_unfinished(root, id)?;
            return Err(Error::NotExist.into());
        }
        // No state, or one that cannot be read (a garbled disk, a file
        // removed by hand): `--force` removes what is derivable from the id.
        Err(Error::NotExist) => {
            remove_leftovers(root, id)?;
        }
        Err(e @ Error::State(_)) if force => {
            eprintln!("hull: {e}; removing it");
            remove_leftovers(root, id)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// Removes what container `id` left without a usable state, in the order
/// of a delete: its processes and cgroups, its network, the files beside
/// the state, the state file last. The network is found through the record
/// it keeps beside the state; without that record what a network store
/// holds of the id is not provably this root's container, and is left.
/// An id a create or restore is busy with is left alone.
fn remove_leftovers(root: &Path, id: &str) -> Outcome {
    let Some(left) = Leftovers::claim(root, id)? else {
        // Busy, or a container again: the usual delete (a no-op for a
        // create under way, which is not stopped for it).
        return match Container::load(root, id) {
            Ok(c) => remove(c, true),
            Err(_) => Ok(0),
        };
    };
    left.remove_cgroups()?;
    ContainerNetwork::disconnect_id(root, id).map_err(|e| Failure::new(e.to_string()))?;
    left.finish()?;
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
