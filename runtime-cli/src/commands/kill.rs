//! `hull kill [--all] ID [SIGNAL]`.

use std::path::Path;

use libcontainer::{parse_signal, Container};

use crate::{Failure, Outcome};

#[inline(never)]
pub fn kill(root: &Path, id: &str, signal: Option<&str>, all: bool) -> Outcome {
    // runc's order: an unknown container is reported before a bad signal.
    let container = Container::load(root, id)?;
    let signal = match signal {
        None | Some("") => libc::SIGTERM,
        Some(s) => parse_signal(s).ok_or_else(|| Failure::new(format!("unknown signal {s:?}")))?,
    };
    if all {
        container.kill_all(signal)?;
    } else {
        container.kill(signal)?;
    }
    Ok(0)
}
