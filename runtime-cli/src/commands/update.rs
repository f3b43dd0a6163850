//! `hull update`: runc's flags, or `-r FILE|-` with a JSON LinuxResources.

use std::io::Read;
use std::path::Path;

use libcontainer::oci_spec::runtime::LinuxResources;
use libcontainer::Container;
use serde_json::{json, Value};

use crate::cli::UpdateArgs;
use crate::{Failure, Outcome};

#[inline(never)]
pub fn update(root: &Path, args: &UpdateArgs) -> Outcome {
    let container = Container::load(root, &args.id)?;
    let resources = match &args.resources {
        Some(path) => read_resources(path)?,
        None => from_flags(args)?,
    };
    container.update(&resources)?;
    Ok(0)
}

fn read_resources(path: &Path) -> Result<LinuxResources, Failure> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| Failure::new(format!("read resources {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("malformed resources {}: {e}", path.display())))
}

/// The flags as runc 1.1.5 reads them: a size is `-1` or a positive one,
/// and an absent flag (like a 0) leaves its value as it is.
fn from_flags(a: &UpdateArgs) -> Result<LinuxResources, Failure> {
    if a.l3_cache_schema.is_some() {
        return Err(Failure::new(
            "Intel RDT/CAT: l3 cache schema is not enabled",
        ));
    }
    if a.mem_bw_schema.is_some() {
        return Err(Failure::new(
            "Intel RDT/MBA: memory bandwidth schema is not enabled",
        ));
    }
    let bytes = |v: &Option<String>| -> Result<Option<i64>, Failure> {
        v.as_deref().map(parse_bytes).transpose()
    };
    let mut r = json!({});
    let mut set = |section: &str, key: &str, v: Value| {
        if !v.is_null() {
            r[section][key] = v;
        }
    };
    set("memory", "limit", json!(bytes(&a.memory)?));
    set("memory", "swap", json!(bytes(&a.memory_swap)?));
    set(
        "memory",
        "reservation",
        json!(bytes(&a.memory_reservation)?),
    );
    set("memory", "kernel", json!(bytes(&a.kernel_memory)?));
    set("memory", "kernelTCP", json!(bytes(&a.kernel_memory_tcp)?));
    set("cpu", "shares", json!(a.cpu_shares));
    set("cpu", "quota", json!(a.cpu_quota));
    set("cpu", "period", json!(a.cpu_period));
    set("cpu", "realtimePeriod", json!(a.cpu_rt_period));
    set("cpu", "realtimeRuntime", json!(a.cpu_rt_runtime));
    set("cpu", "idle", json!(a.cpu_idle));
    set("cpu", "cpus", json!(a.cpuset_cpus));
    set("cpu", "mems", json!(a.cpuset_mems));
    set("pids", "limit", json!(a.pids_limit));
    set("blockIO", "weight", json!(a.blkio_weight));
    serde_json::from_value(r).map_err(|e| Failure::new(format!("invalid update: {e}")))
}

/// `512`, `100k`, `64M`, `1g`, `2GB` (powers of 1024, as Docker's units) or
/// -1 (no limit); other negative sizes are refused, as by runc.
pub fn parse_bytes(s: &str) -> Result<i64, Failure> {
    let bad = || Failure::new(format!("invalid size {s:?}"));
    if s == "-1" {
        return Ok(-1);
    }
    if s.trim_start().starts_with('-') {
        return Err(bad());
    }
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let n: f64 = digits.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((n * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_like_docker() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("100M").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("-2").is_err());
    }
}
