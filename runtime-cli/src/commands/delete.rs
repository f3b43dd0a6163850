//! `hull delete [--force]`.

use std::path::Path;

use libcontainer::{Container, Error, Leftovers};

use super::{network, volume};
use crate::cli::Cli;
use crate::Outcome;

#[inline(never)]
pub fn delete(cli: &Cli, root: &Path, id: &str, force: bool) -> Outcome {
    match Container::load(root, id) {
        Ok(c) => {
            remove(cli, c, force)?;
        }
        // containerd's shim deletes twice; runc answers the second call
        // with success, after removing what a create that never finished
        // left beside the state (runc removes such a directory too),
        // volumes last: their record goes after the state.
        Err(Error::NotExist) if !force => {
            if Container::remove_unfinished(root, id)? {
                volume::detach(root, id)?;
            }
            return Err(Error::NotExist.into());
        }
        // No state, or one that cannot be read (a garbled disk, a file
        // removed by hand): `--force` removes what is derivable from the id.
        Err(Error::NotExist) => {
            remove_leftovers(cli, root, id)?;
        }
        Err(e @ Error::State(_)) if force => {
            eprintln!("hull: {e}; removing it");
            remove_leftovers(cli, root, id)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// Removes what container `id` left without a usable state, in the order
/// of a delete: its processes and cgroups, its attachment in the network
/// store of this call's flags (the state named the store; it is lost), its
/// volumes, the files beside the state, the state file last. An id a create or restore
/// is busy with is left alone.
fn remove_leftovers(cli: &Cli, root: &Path, id: &str) -> Outcome {
    let Some(left) = Leftovers::claim(root, id)? else {
        // Busy, or a container again: the usual delete (a no-op for a
        // create under way, which is not stopped for it).
        return match Container::load(root, id) {
            Ok(c) => remove(cli, c, true),
            Err(_) => Ok(0),
        };
    };
    left.remove_cgroups()?;
    network::teardown(cli)
        .disconnect_id(id)
        .map_err(network::net_err)?;
    volume::detach(root, id)?;
    left.finish()?;
    Ok(0)
}

/// Deletes the container; its volumes are detached and one hull
/// connected is disconnected, once it is stopped and before its state goes
/// (last, so a delete killed half-way leaves a container that
/// `delete --force` finishes).
pub fn remove(cli: &Cli, container: Container, force: bool) -> Outcome {
    if volume::holds_volumes(container.root(), container.id()) {
        container.stop_for_delete(force)?;
        volume::detach(container.root(), container.id())?;
    }
    container
        .with_network(network::teardown(cli))
        .delete(force)?;
    Ok(0)
}
