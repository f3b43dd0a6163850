//! Writing `linux.resources` into cgroup v1 controller directories.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxRdma,
};

use super::fs::{self, read, write};
use super::{device_rule, CgroupError};

pub fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if let Some(limit) = m.limit() {
        match m.swap() {
            // memsw must stay >= limit: try limit first, else memsw first.
            Some(swap) => {
                if write(dir, "memory.limit_in_bytes", limit).is_err() {
                    write(dir, "memory.memsw.limit_in_bytes", swap)?;
                    write(dir, "memory.limit_in_bytes", limit)?;
                } else {
                    write(dir, "memory.memsw.limit_in_bytes", swap)?;
                }
            }
            None => write(dir, "memory.limit_in_bytes", limit)?,
        }
    } else if let Some(swap) = m.swap() {
        write(dir, "memory.memsw.limit_in_bytes", swap)?;
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", r)?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::Invalid(format!(
                "memory.swappiness {s} is above 100"
            )));
        }
        write(dir, "memory.swappiness", s)?;
    }
    if let Some(k) = m.kernel_tcp() {
        write(dir, "memory.kmem.tcp.limit_in_bytes", k)?;
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

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares() {
        write(dir, "cpu.shares", s)?;
    }
    if let Some(p) = c.period() {
        write(dir, "cpu.cfs_period_us", p)?;
    }
    if let Some(q) = c.quota() {
        write(dir, "cpu.cfs_quota_us", q)?;
    }
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

/// The allow/deny list, rule by rule, as the devices controller applies it
/// (one rule per write; each file is opened once).
pub fn devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let mut allow = fs::Writer::new(dir, "devices.allow");
    let mut deny = fs::Writer::new(dir, "devices.deny");
    for r in rules {
        let list = if r.allow() { &mut allow } else { &mut deny };
        list.write(device_rule(r))?;
    }
    Ok(())
}
