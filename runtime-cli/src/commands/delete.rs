//! `hull delete [--force]`.

use std::path::Path;

use libcontainer::{Container, Error};

use super::{network, volume};
use crate::cli::Cli;
use crate::Outcome;

pub fn delete(cli: &Cli, root: &Path, id: &str, force: bool) -> Outcome {
    match Container::load(root, id) {
        Ok(c) => {
            remove(cli, c, force)?;
        }
        Err(Error::NotExist) => {
            // What a create that never finished left (runc removes it too),
            // volumes last: their record goes after the state.
            if Container::remove_unfinished(root, id)? {
                volume::detach(root, id)?;
            }
            // containerd's shim deletes twice; runc answers the second call with success.
            if !force {
                return Err(Error::NotExist.into());
            }
        }
        // A state file that cannot be read (a garbled disk): `--force`
        // removes it, and the container's attachment in the network store
        // of this call's flags (the state named the store; it is lost).
        Err(e @ Error::State(_)) if force => {
            eprintln!("hull: {e}; removing it");
            network::teardown(cli)
                .disconnect_id(id)
                .map_err(network::net_err)?;
            volume::detach(root, id)?;
            Container::remove_broken(root, id)?;
        }
        Err(e) => return Err(e.into()),
    }
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
