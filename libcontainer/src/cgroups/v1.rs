//! Writing `linux.resources` into cgroup v1 controller directories.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxRdma,
};

use super::device_transition::{DeviceState, Rule};
use super::fs::{self, read, write};
use super::CgroupError;

// Every writer takes `linux.resources` as [`super::unset::effective`] made
// them: a `Some` is a value to write.

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

pub fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let mut swap = m.swap();
    // Unlimited memory with no word on swap means unlimited swap too (when
    // the kernel has swap accounting), as runc reads it.
    if m.limit() == Some(-1) && swap.is_none() && dir.join(MEMSW).exists() {
        swap = Some(-1);
    }
    match (m.limit(), swap) {
        (Some(limit), Some(swap)) => {
            // memsw must stay >= the limit at every step: raise memsw first
            // when the new one is above the current limit (runc's order).
            let current = number(dir, LIMIT)?;
            if swap == -1 || (swap > 0 && current < swap as u64) {
                write(dir, MEMSW, swap)?;
                set_limit(dir, limit)?;
            } else {
                set_limit(dir, limit)?;
                write(dir, MEMSW, swap)?;
            }
        }
        (Some(limit), None) => set_limit(dir, limit)?,
        (None, Some(swap)) => write(dir, MEMSW, swap)?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", r)?;
    }
    if let Some(s) = m.swappiness() {
        write(dir, "memory.swappiness", s)?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", 1)?;
    }
    if let Some(h) = m.use_hierarchy() {
        // Always on since Linux 6.0; only an explicit `false` can fail.
        write(dir, "memory.use_hierarchy", u8::from(h))?;
    }
    Ok(())
}

fn number(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(dir, file)?;
    text.parse().map_err(|_| {
        CgroupError::Invalid(format!(
            "{}: not a number: {text:?}",
            dir.join(file).display()
        ))
    })
}

/// memory.limit_in_bytes; EBUSY (usage above the new limit) as runc words it.
fn set_limit(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    match write(dir, LIMIT, limit) {
        Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
            Err(CgroupError::MemoryInUse {
                limit,
                usage: number(dir, "memory.usage_in_bytes")?,
                peak: number(dir, "memory.max_usage_in_bytes")?,
            })
        }
        done => done,
    }
}

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares() {
        write(dir, "cpu.shares", s)?;
    }
    cfs_bandwidth(dir, c.period(), c.quota())?;
    if let Some(b) = c.burst() {
        write(dir, "cpu.cfs_burst_us", b)?;
    }
    if let Some(p) = c.realtime_period() {
        write(dir, "cpu.rt_period_us", p)?;
    }
    if let Some(r) = c.realtime_runtime() {
        write(dir, "cpu.rt_runtime_us", r)?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", i)?;
    }
    Ok(())
}

/// Period and quota, period first. The kernel checks each write against the
/// other value and the parent's quota: a period below the current one can
/// make the old quota too large a share (EINVAL), so then the quota goes
/// first and the period after it (runc's retry).
fn cfs_bandwidth(dir: &Path, period: Option<u64>, quota: Option<i64>) -> Result<(), CgroupError> {
    let mut period_later = None;
    if let Some(p) = period {
        match write(dir, "cpu.cfs_period_us", p) {
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && quota.is_some() =>
            {
                period_later = Some(p);
            }
            done => done?,
        }
    }
    if let Some(q) = quota {
        write(dir, "cpu.cfs_quota_us", q)?;
    }
    if let Some(p) = period_later {
        write(dir, "cpu.cfs_period_us", p)?;
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

/// A new v1 cpuset starts empty and refuses tasks: inherit the parent's sets.
pub fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        inherit(dir, file)?;
    }
    Ok(())
}

/// The value of `file` in `dir`, copied from the nearest ancestor that has
/// one (filling the empty directories in between) when `dir`'s is empty.
fn inherit(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let value = read(dir, file)?;
    match dir.parent() {
        Some(parent) if value.is_empty() => {
            let value = inherit(parent, file)?;
            write(dir, file, &value)?;
            Ok(value)
        }
        _ => Ok(value),
    }
}

/// `limit` is not 0 (unset): negative means none.
pub fn pids(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    if limit > 0 {
        write(dir, "pids.max", limit)
    } else {
        write(dir, "pids.max", "max")
    }
}

pub fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // With the BFQ scheduler only the bfq files exist.
    let weight_file = if dir.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    if let Some(w) = b.weight() {
        write(dir, weight_file, w)?;
    }
    if let Some(w) = b.leaf_weight() {
        write(dir, "blkio.leaf_weight", w)?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                &format!("{weight_file}_device"),
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            write(
                dir,
                "blkio.leaf_weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    for (file, list) in [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ] {
        for d in list.iter().flatten() {
            write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for l in limits {
        write(
            dir,
            &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
            l.limit(),
        )?;
    }
    Ok(())
}

pub fn net_cls(dir: &Path, n: &LinuxNetwork) -> Result<(), CgroupError> {
    match n.class_id() {
        Some(id) => write(dir, "net_cls.classid", id),
        None => Ok(()),
    }
}

pub fn net_prio(dir: &Path, n: &LinuxNetwork) -> Result<(), CgroupError> {
    for p in n.priorities().iter().flatten() {
        write(
            dir,
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

/// `rdma.max` lines, the same format on v1 and v2.
pub fn rdma(
    dir: &Path,
    rdma: &std::collections::HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    for (device, r) in rdma {
        let mut line = device.clone();
        if let Some(h) = r.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        write(dir, "rdma.max", line)?;
    }
    Ok(())
}

/// Brings the devices controller from what `devices.list` shows to what
/// `rules` make, with the fewest writes (see [`super::device_transition`]),
/// one rule per write; a failure half-way writes the way back.
pub fn devices(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let target = DeviceState::from_rules(rules)?;
    let before = DeviceState::from_list(&read(dir, "devices.list")?)?;
    if let Err(e) = write_device_rules(dir, &before.transition(&target)) {
        if let Ok(now) = read(dir, "devices.list").and_then(|l| DeviceState::from_list(&l)) {
            if let Err(back) = write_device_rules(dir, &now.transition(&before)) {
                tracing::warn!("cannot restore the device rules: {back}");
            }
        }
        return Err(e);
    }
    // What the kernel holds now must be what was asked for (an allowing
    // default's exceptions are not listed: there only the default counts).
    let after = DeviceState::from_list(&read(dir, "devices.list")?)?;
    let matches = if target.allows_by_default() {
        after.allows_by_default()
    } else {
        after == target
    };
    if !matches {
        return Err(CgroupError::Invalid(format!(
            "{}: the devices cgroup does not hold the rules written",
            dir.display()
        )));
    }
    Ok(())
}

fn write_device_rules(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let mut allow = fs::Writer::new(dir, "devices.allow");
    let mut deny = fs::Writer::new(dir, "devices.deny");
    for r in rules {
        let list = if r.allow { &mut allow } else { &mut deny };
        list.write(r)?;
    }
    Ok(())
}
