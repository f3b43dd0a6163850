//! `hull list`: runc's tabwriter table, `-q`, or `--format json`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use libcontainer::{Container, State};

use crate::cli::ListFormat;
use crate::{Failure, Outcome};

pub fn list(root: &Path, format: ListFormat, quiet: bool) -> Outcome {
    let containers = Container::list(root)?;
    let mut out = String::new();
    if quiet {
        for c in &containers {
            out.push_str(c.id());
            out.push('\n');
        }
    } else {
        let states: Vec<State> = containers
            .iter()
            .map(|c| {
                let mut s = c.state();
                s.owner = owner(&root.join(c.id()));
                s
            })
            .collect();
        match format {
            ListFormat::Json if states.is_empty() => out.push_str("null\n"),
            ListFormat::Json => {
                out = serde_json::to_string(&states).map_err(|e| Failure::new(e.to_string()))?;
                out.push('\n');
            }
            ListFormat::Table => out = table(&states),
        }
    }
    print!("{out}");
    Ok(0)
}

/// The user owning a container's state file, by name where known.
fn owner(state: &Path) -> String {
    match std::fs::metadata(state).map(|m| m.uid()) {
        Ok(0) => "root".to_owned(),
        Ok(uid) => uid.to_string(),
        Err(_) => String::new(),
    }
}

/// Columns padded like Go's tabwriter with minwidth 12 and padding 3.
fn table(states: &[State]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if i == 5 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_runc_header() {
        assert_eq!(
            table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
