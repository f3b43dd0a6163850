//! `hull kill ID [SIGNAL]`.

use std::path::Path;

use libcontainer::nix::sys::signal::Signal;
use libcontainer::{parse_signal, Container};

use crate::{Failure, Outcome};

pub fn kill(root: &Path, id: &str, signal: Option<&str>, all: bool) -> Outcome {
    let signal = match signal {
        None | Some("") => Signal::SIGTERM,
        Some(s) => parse_signal(s).ok_or_else(|| Failure::new(format!("unknown signal {s:?}")))?,
    };
    let container = Container::load(root, id)?;
    if all {
        container.kill_all(signal)?;
    } else {
        container.kill(signal)?;
    }
    Ok(0)
}
