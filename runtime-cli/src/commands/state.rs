//! `hull state`: pretty JSON, no trailing newline (as runc prints it).

use std::io::Write;
use std::path::Path;

use libcontainer::Container;

use crate::{Failure, Outcome};

#[inline(never)]
pub fn state(root: &Path, id: &str) -> Outcome {
    let state = Container::load(root, id)?.state();
    let json = serde_json::to_string_pretty(&state).map_err(|e| Failure::new(e.to_string()))?;
    std::io::stdout()
        .write_all(json.as_bytes())
        .map_err(|e| Failure::new(format!("write state: {e}")))?;
    Ok(0)
}
