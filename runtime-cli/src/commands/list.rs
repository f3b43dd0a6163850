//! `hull list`: runc's tabwriter table, `-q`, or `--format json`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use libcontainer::{Container, State, Status};

use super::network;
use crate::cli::{Cli, ListFormat};
use crate::{Failure, Outcome};

#[inline(never)]
pub fn list(cli: &Cli, root: &Path, format: ListFormat, quiet: bool) -> Outcome {
    let (containers, mut broken) = Container::list_all(root)?;
    // A container whose state file is gone while its network attachment
    // (which names this root) is left: shown, so `delete --force` is run.
    match network::teardown(cli).lost_in(root) {
        Ok(lost) => {
            for id in lost {
                if !broken.iter().any(|(b, _)| *b == id) {
                    let what = vec!["its network attachment".to_owned()];
                    broken.push((id, libcontainer::Error::StateLost(what)));
                }
            }
        }
        Err(e) => eprintln!("hull: cannot read the network store: {e}"),
    }
    let mut out = String::new();
    if quiet {
        let mut ids: Vec<&str> = containers.iter().map(|c| c.id()).collect();
        ids.extend(broken.iter().map(|(id, _)| id.as_str()));
        ids.sort();
        for id in ids {
            out.push_str(id);
            out.push('\n');
        }
    } else {
        let mut states: Vec<State> = containers
            .iter()
            .map(|c| {
                let mut s = c.state();
                s.owner = owner(&root.join(c.id()));
                s
            })
            .collect();
        states.extend(broken.iter().map(|(id, why)| stopped(root, id, why)));
        states.sort_by(|a, b| a.id.cmp(&b.id));
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

/// A container whose state file cannot be loaded (left empty by a create
/// that was killed, or unreadable), shown as stopped so that it is not
/// forgotten, with why on stderr.
fn stopped(root: &Path, id: &str, why: &libcontainer::Error) -> State {
    let why = match why {
        libcontainer::Error::NotExist => "a create that did not finish left it".to_owned(),
        e => e.to_string(),
    };
    eprintln!("hull: container {id} is broken ({why}); `hull delete --force {id}` removes it");
    State {
        oci_version: String::new(),
        id: id.to_owned(),
        pid: 0,
        status: Status::Stopped,
        bundle: Default::default(),
        rootfs: Default::default(),
        created: String::new(),
        annotations: Default::default(),
        owner: owner(&root.join(id)),
    }
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
