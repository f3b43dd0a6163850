//! `hull pause` and `hull resume`.

use std::path::Path;

use libcontainer::Container;

use crate::Outcome;

#[inline(never)]
pub fn pause(root: &Path, id: &str) -> Outcome {
    Container::load(root, id)?.pause()?;
    Ok(0)
}

#[inline(never)]
pub fn resume(root: &Path, id: &str) -> Outcome {
    Container::load(root, id)?.resume()?;
    Ok(0)
}
