//! `hull events`: runc's JSON event lines, `{"type":"stats","id":…,"data":…}`
//! every interval and `{"type":"oom","id":…}` when the OOM killer fires.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use libcontainer::cgroups::oom::OomWatcher;
use libcontainer::{Container, Status};
use serde_json::json;

use crate::{Failure, Outcome};

#[inline(never)]
pub fn events(root: &Path, id: &str, once: bool, interval: &str) -> Outcome {
    let container = Container::load(root, id)?;
    let interval = parse_duration(interval)?;
    if container.status() == Status::Stopped {
        return Err(Failure::new(format!(
            "container with id {id} is not running"
        )));
    }
    let stats = |c: &Container| -> Result<(), Failure> {
        let data = serde_json::to_value(c.stats()?).map_err(|e| Failure::new(e.to_string()))?;
        emit(&json!({ "type": "stats", "id": id, "data": data }))
    };
    if once {
        stats(&container)?;
        return Ok(0);
    }
    let mut oom = OomWatcher::new(container.cgroup()?).map_err(|e| Failure::new(e.to_string()))?;
    let mut next = Instant::now();
    while container.status() != Status::Stopped {
        if Instant::now() >= next {
            stats(&container)?;
            next += interval;
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        let kills = match &mut oom {
            Some(w) => w.wait(wait).map_err(|e| Failure::new(e.to_string()))?,
            None => {
                std::thread::sleep(wait);
                0
            }
        };
        for _ in 0..kills {
            emit(&json!({ "type": "oom", "id": id }))?;
        }
    }
    Ok(0)
}

fn emit(event: &serde_json::Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{event}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(format!("write event: {e}")))
}

/// Go-style durations: `5s`, `500ms`, `1m`, `1.5s`.
fn parse_duration(s: &str) -> Result<Duration, Failure> {
    let bad = || Failure::new(format!("invalid interval {s:?}"));
    let split = s.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
    let n: f64 = s[..split].parse().map_err(|_| bad())?;
    let secs = match &s[split..] {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
