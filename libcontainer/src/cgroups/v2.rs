//! Writing `linux.resources` into a cgroup v2 directory, with runc's
//! conversions of v1-style values (shares → weight, memory+swap → swap).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::fs::{read, write};
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

/// OCI swap is memory+swap; memory.swap.max is swap alone. `None` when
/// there is nothing to write: swap unset (0), except with an unlimited
/// memory (runc: then both are unlimited).
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>, CgroupError> {
    let invalid = |s: String| Err(CgroupError::Invalid(s));
    match (swap, limit) {
        (None, Some(-1)) | (Some(-1), _) => Ok(Some("max".into())),
        (None, _) => Ok(None),
        (Some(_), None | Some(-1)) => {
            invalid("unable to set swap limit without memory limit".into())
        }
        (Some(_), Some(l)) if l < 0 => invalid(format!("invalid memory value: {l}")),
        (Some(s), Some(l)) if s < l => invalid(format!(
            "memory+swap limit {s} should be >= memory limit {l}"
        )),
        (Some(s), Some(l)) => Ok(Some((s - l).to_string())),
    }
}

// Every writer takes `linux.resources` as [`super::unset::effective`] made
// them: a `Some` is a value to write.

pub fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(swap) = swap_to_v2(m.swap(), m.limit())? {
        write(dir, "memory.swap.max", swap)?;
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
        write(dir, "cpu.max", cpu_max(c, &read(dir, "cpu.max")?))?;
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

/// cpu.max holds both quota and period: the one `c` leaves unset keeps its
/// `current` value (as runc's update keeps the old one), the period 100 ms
/// when there is none.
fn cpu_max(c: &LinuxCpu, current: &str) -> String {
    let mut now = current.split_whitespace();
    let (old_quota, old_period) = (now.next(), now.next().and_then(|p| p.parse().ok()));
    let quota = match c.quota() {
        Some(q) if q > 0 => q.to_string(),
        Some(_) => "max".into(),
        None => old_quota.unwrap_or("max").to_owned(),
    };
    let period = c.period().or(old_period).unwrap_or(100_000);
    format!("{quota} {period}")
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

/// `limit` is not 0 (unset): negative means none.
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
        // With the BFQ scheduler the blkio scale is kept as it is (runc).
        if dir.join("io.bfq.weight").exists() {
            write(dir, "io.bfq.weight", w)?;
        } else {
            write(
                dir,
                "io.weight",
                format!("default {}", blkio_weight_to_io(w)),
            )?;
        }
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
        assert_eq!(swap_to_v2(Some(-1), Some(100)).unwrap().unwrap(), "max");
        assert_eq!(swap_to_v2(Some(300), Some(100)).unwrap().unwrap(), "200");
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
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
        pids(&dir, -1).unwrap();
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

    #[test]
    fn swap_zero_is_unset_unless_memory_is_unlimited() {
        assert_eq!(swap_to_v2(None, Some(100)).unwrap(), None);
        assert_eq!(swap_to_v2(None, None).unwrap(), None);
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap().unwrap(), "max");
        assert_eq!(swap_to_v2(Some(100), Some(100)).unwrap().unwrap(), "0");
        assert!(swap_to_v2(Some(100), None).is_err());
    }

    #[test]
    fn cpu_max_keeps_what_is_not_given() {
        let c = |json: &str| serde_json::from_str::<LinuxCpu>(json).unwrap();
        assert_eq!(
            cpu_max(&c(r#"{"quota":50000}"#), "max 20000"),
            "50000 20000"
        );
        assert_eq!(
            cpu_max(&c(r#"{"period":30000}"#), "40000 100000"),
            "40000 30000"
        );
        assert_eq!(cpu_max(&c(r#"{"quota":-1}"#), "40000 50000"), "max 50000");
        assert_eq!(cpu_max(&c(r#"{"quota":50000}"#), ""), "50000 100000");
    }

    #[test]
    fn io_weight_goes_to_bfq_when_the_kernel_has_it() {
        let b: LinuxBlockIo = serde_json::from_str(r#"{"weight":500}"#).unwrap();
        let plain = scratch("io", &["io.weight"]);
        io(&plain, &b).unwrap();
        assert_eq!(
            std::fs::read_to_string(plain.join("io.weight")).unwrap(),
            "default 4950"
        );
        let bfq = scratch("bfq", &["io.weight", "io.bfq.weight"]);
        io(&bfq, &b).unwrap();
        assert_eq!(
            std::fs::read_to_string(bfq.join("io.bfq.weight")).unwrap(),
            "500"
        );
        assert_eq!(std::fs::read_to_string(bfq.join("io.weight")).unwrap(), "");
        std::fs::remove_dir_all(&plain).unwrap();
        std::fs::remove_dir_all(&bfq).unwrap();
    }
}
