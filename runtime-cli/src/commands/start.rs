//! `hull start`.

use std::path::Path;

use libcontainer::Container;

use crate::Outcome;

#[inline(never)]
pub fn start(root: &Path, id: &str) -> Outcome {
    Container::load(root, id)?.start()?;
    Ok(0)
}
