//! `hull delete [--force]`.

use std::path::Path;

use libcontainer::{Container, Error};

use super::network;
use crate::cli::Cli;
use crate::Outcome;

pub fn delete(cli: &Cli, root: &Path, id: &str, force: bool) -> Outcome {
    match Container::load(root, id) {
        Ok(c) => {
            remove(cli, c, force)?;
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
        // removes it, and the container's attachment in the network store
        // of this call's flags (the state named the store; it is lost).
        Err(e @ Error::State(_)) if force => {
            eprintln!("hull: {e}; removing it");
            network::teardown(cli)
                .disconnect_id(id)
                .map_err(network::net_err)?;
            Container::remove_broken(root, id)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

/// Deletes the container; one hull connected is disconnected by the
/// delete, once stopped and before its state goes (last, so a delete
/// killed half-way leaves a container that `delete --force` finishes).
pub fn remove(cli: &Cli, container: Container, force: bool) -> Outcome {
    container
        .with_network(network::teardown(cli))
        .delete(force)?;
    Ok(0)
}
