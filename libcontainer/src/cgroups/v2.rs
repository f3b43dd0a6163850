//! Writing `linux.resources` into a cgroup v2 directory, with runc's
//! conversions of v1-style values (shares → weight, memory+swap → swap).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::fs::write;
use super::CgroupError;

/// `max` for "no limit" (-1 or 0 where 0 means unset), else the number.
fn limit_value(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// cpu.shares (2..262144) → cpu.weight (1..10000), runc's formula.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// blkio.weight (10..1000) → io.weight (1..10000), runc's formula.
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// OCI swap is memory+swap; memory.swap.max is swap alone.
pub fn swap_to_v2(swap: i64, limit: Option<i64>) -> Result<String, CgroupError> {
    match (swap, limit) {
        (-1, _) => Ok("max".into()),
        (0, _) => Ok("0".into()),
        (_, None | Some(-1)) => Err(CgroupError::Invalid(
            "memory.swap needs a memory.limit on cgroup v2".into(),
        )),
        (s, Some(l)) if s < l => Err(CgroupError::Invalid(format!(
            "memory.swap {s} is below memory.limit {l}"
        ))),
        (s, Some(l)) => Ok((s - l).to_string()),
    }
}

pub fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(swap) = m.swap() {
        write(dir, "memory.swap.max", swap_to_v2(swap, m.limit())?)?;
    }
    if let Some(limit) = m.limit() {
        write(dir, "memory.max", limit_value(limit))?;
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.low", limit_value(r))?;
    }
    if m.swappiness().is_some() {
        tracing::warn!("memory.swappiness has no cgroup v2 equivalent; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!("disableOOMKiller has no cgroup v2 equivalent; ignored");
    }
    Ok(())
}

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares() {
        write(dir, "cpu.weight", shares_to_weight(s))?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_owned(),
        };
        let period = c.period().unwrap_or(100_000);
        write(dir, "cpu.max", format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", b)?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", i)?;
    }
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        return Err(CgroupError::Invalid(
            "realtime cpu limits are not supported on cgroup v2".into(),
        ));
    }
    Ok(())
}

pub fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus() {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

pub fn pids(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    write(
        dir,
        "pids.max",
        if limit > 0 {
            limit.to_string()
        } else {
            "max".into()
        },
    )
}

pub fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    if let Some(w) = b.weight() {
        write(
            dir,
            "io.weight",
            format!("default {}", blkio_weight_to_io(w)),
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                "io.weight",
                format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io(w)),
            )?;
        }
    }
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for d in list.iter().flatten() {
            write(
                dir,
                "io.max",
                format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for l in limits {
        write(
            dir,
            &format!("hugetlb.{}.max", l.page_size()),
            limit_value(l.limit()),
        )?;
    }
    Ok(())
}

/// `linux.resources.unified`: raw key → file writes, keys must name files in the dir.
pub fn unified(dir: &Path, map: &HashMap<String, String>) -> Result<(), CgroupError> {
    for (key, value) in map {
        if key.contains('/') || key.starts_with('.') || key.is_empty() {
            return Err(CgroupError::Invalid(format!("invalid unified key {key:?}")));
        }
        write(dir, key, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(500), 4950);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(swap_to_v2(-1, Some(100)).unwrap(), "max");
        assert_eq!(swap_to_v2(300, Some(100)).unwrap(), "200");
        assert!(swap_to_v2(50, Some(100)).is_err());
    }

    fn scratch(name: &str, files: &[&str]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hull-unit-v2-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
        dir
    }

    #[test]
    fn writes_memory_cpu_pids_files_of_a_cgroupfs_tree() {
        let dir = scratch(
            "files",
            &[
                "memory.max",
                "memory.swap.max",
                "memory.low",
                "cpu.weight",
                "cpu.max",
                "pids.max",
            ],
        );
        let m: LinuxMemory =
            serde_json::from_str(r#"{"limit":1048576,"swap":2097152,"reservation":1024}"#).unwrap();
        memory(&dir, &m).unwrap();
        let c: LinuxCpu =
            serde_json::from_str(r#"{"shares":1024,"quota":50000,"period":100000}"#).unwrap();
        cpu(&dir, &c).unwrap();
        pids(&dir, 0).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "1048576");
        assert_eq!(read("memory.swap.max"), "1048576");
        assert_eq!(read("memory.low"), "1024");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("pids.max"), "max");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_unified_keys_that_leave_the_directory() {
        let dir = scratch("unified", &[]);
        let map: HashMap<String, String> = [("../x".to_string(), "1".to_string())].into();
        assert!(unified(&dir, &map).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
