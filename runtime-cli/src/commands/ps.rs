//! `hull ps`: the host's `ps` output, filtered to the container's processes
//! (runc's approach), or the pids as JSON.

use std::path::Path;
use std::process::Command;

use libcontainer::Container;

use crate::cli::ListFormat;
use crate::{Failure, Outcome};

#[inline(never)]
pub fn ps(root: &Path, id: &str, format: ListFormat, args: &[String]) -> Outcome {
    let pids = Container::load(root, id)?.processes()?;
    if format == ListFormat::Json {
        println!(
            "{}",
            serde_json::to_string(&pids).map_err(|e| Failure::new(e.to_string()))?
        );
        return Ok(0);
    }
    let args: Vec<&str> = if args.is_empty() {
        vec!["-ef"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Failure::new(format!("cannot run ps: {e}")))?;
    if !out.status.success() {
        return Err(Failure::new(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{}", filter(&text, &pids)?);
    Ok(0)
}

/// Keeps the header and the lines whose PID column is one of `pids`.
fn filter(ps_output: &str, pids: &[i32]) -> Result<String, Failure> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Failure::new("couldn't find PID field in ps output"))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_pids() {
        let ps = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 other\n";
        assert_eq!(
            filter(ps, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter("UID CMD\n", &[1]).is_err());
    }
}
