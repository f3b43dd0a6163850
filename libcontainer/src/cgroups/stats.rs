//! Resource usage in runc's `events --stats` JSON shape (runc's types/events.go).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::fs::{read_keyed, read_u64};
use super::Cgroup;

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// The cpuset controller's settings (v1), as runc reports them.
#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// One `stats` event's data.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Always empty: hull has no Intel RDT support (runc's key, kept for
    /// readers that expect it).
    pub intel_rdt: BTreeMap<String, u64>,
    /// Always null, as from runc: it reports interfaces only for the
    /// networks libcontainer itself sets up.
    pub network_interfaces: Option<Vec<u64>>,
}

/// `max`/unlimited reads as 0 in runc's limit fields only when absent; keep the number.
fn limit(v: Option<u64>) -> u64 {
    v.unwrap_or(0)
}

/// Reads every statistic the container's cgroup offers.
pub fn read(cg: &Cgroup) -> Stats {
    let mut s = Stats::default();
    let v2 = cg.v2_dir();
    let pick = |ctrl: &str, v2_file: &str| -> Option<(bool, &Path)> {
        cg.v1_dir(ctrl)
            .map(|d| (true, d))
            .or_else(|| v2.filter(|d| d.join(v2_file).exists()).map(|d| (false, d)))
    };
    if let Some((true, d)) = pick("cpuacct", "cpu.stat") {
        s.cpu.usage.total = read_u64(d, "cpuacct.usage").unwrap_or(0);
        s.cpu.usage.percpu = super::fs::read(d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // `cpu user system` then one line per CPU, in nanoseconds.
        for line in super::fs::read(d, "cpuacct.usage_all")
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if let [_, user, system] = f[..] {
                s.cpu.usage.percpu_user.push(user);
                s.cpu.usage.percpu_kernel.push(system);
            }
        }
        // cpuacct.stat is in USER_HZ (100/s) ticks; runc reports nanoseconds.
        for (k, v) in read_keyed(d, "cpuacct.stat") {
            match k.as_str() {
                "user" => s.cpu.usage.user = v * 10_000_000,
                "system" => s.cpu.usage.kernel = v * 10_000_000,
                _ => {}
            }
        }
    }
    match pick("cpu", "cpu.stat") {
        Some((true, d)) => {
            for (k, v) in read_keyed(d, "cpu.stat") {
                match k.as_str() {
                    "nr_periods" => s.cpu.throttling.periods = v,
                    "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                    "throttled_time" => s.cpu.throttling.throttled_time = v,
                    _ => {}
                }
            }
        }
        Some((false, d)) => {
            for (k, v) in read_keyed(d, "cpu.stat") {
                match k.as_str() {
                    "usage_usec" => s.cpu.usage.total = v * 1000,
                    "user_usec" => s.cpu.usage.user = v * 1000,
                    "system_usec" => s.cpu.usage.kernel = v * 1000,
                    "nr_periods" => s.cpu.throttling.periods = v,
                    "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                    "throttled_usec" => s.cpu.throttling.throttled_time = v * 1000,
                    _ => {}
                }
            }
        }
        None => {}
    }
    if let Some(d) = cg.v1_dir("cpuset") {
        s.cpuset = cpuset(d);
    }
    match pick("memory", "memory.current") {
        Some((true, d)) => {
            let entry = |prefix: &str| MemoryEntry {
                limit: limit(read_u64(d, &format!("{prefix}.limit_in_bytes"))),
                usage: read_u64(d, &format!("{prefix}.usage_in_bytes")).unwrap_or(0),
                max: read_u64(d, &format!("{prefix}.max_usage_in_bytes")).unwrap_or(0),
                failcnt: read_u64(d, &format!("{prefix}.failcnt")).unwrap_or(0),
            };
            s.memory.usage = entry("memory");
            s.memory.swap = entry("memory.memsw");
            s.memory.kernel = entry("memory.kmem");
            s.memory.kernel_tcp = entry("memory.kmem.tcp");
            s.memory.raw = read_keyed(d, "memory.stat").into_iter().collect();
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
        Some((false, d)) => {
            let events: BTreeMap<String, u64> =
                read_keyed(d, "memory.events").into_iter().collect();
            s.memory.usage = MemoryEntry {
                limit: limit(read_u64(d, "memory.max")),
                usage: read_u64(d, "memory.current").unwrap_or(0),
                max: read_u64(d, "memory.peak").unwrap_or(0),
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            s.memory.swap = MemoryEntry {
                limit: limit(read_u64(d, "memory.swap.max")),
                usage: read_u64(d, "memory.swap.current").unwrap_or(0),
                ..Default::default()
            };
            s.memory.raw = read_keyed(d, "memory.stat").into_iter().collect();
            s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        }
        None => {}
    }
    if let Some((_, d)) = pick("pids", "pids.current") {
        s.pids.current = read_u64(d, "pids.current").unwrap_or(0);
        s.pids.limit = read_u64(d, "pids.max")
            .filter(|v| *v != u64::MAX)
            .unwrap_or(0);
    }
    if let Some((true, d)) = pick("blkio", "io.stat") {
        s.blkio.io_service_bytes_recursive =
            blkio_entries(d, "blkio.throttle.io_service_bytes_recursive");
        s.blkio.io_serviced_recursive = blkio_entries(d, "blkio.throttle.io_serviced_recursive");
    }
    let hugetlb_dir = cg
        .v1_dir("hugetlb")
        .map(|d| (true, d))
        .or(v2.map(|d| (false, d)));
    if let Some((is_v1, d)) = hugetlb_dir {
        for size in hugepage_sizes(d, is_v1) {
            let entry = if is_v1 {
                Hugetlb {
                    usage: read_u64(d, &format!("hugetlb.{size}.usage_in_bytes")).unwrap_or(0),
                    max: read_u64(d, &format!("hugetlb.{size}.max_usage_in_bytes")).unwrap_or(0),
                    failcnt: read_u64(d, &format!("hugetlb.{size}.failcnt")).unwrap_or(0),
                }
            } else {
                let events: BTreeMap<String, u64> =
                    read_keyed(d, &format!("hugetlb.{size}.events"))
                        .into_iter()
                        .collect();
                Hugetlb {
                    usage: read_u64(d, &format!("hugetlb.{size}.current")).unwrap_or(0),
                    max: 0,
                    failcnt: events.get("max").copied().unwrap_or(0),
                }
            };
            s.hugetlb.insert(size, entry);
        }
    }
    s
}

fn cpuset(d: &Path) -> CpuSet {
    let list = |file: &str| -> Vec<u16> {
        super::fs::read(d, file)
            .ok()
            .and_then(|l| crate::sched::cpu_list(&l).ok())
            .map(|l| {
                l.into_iter()
                    .filter_map(|n| u16::try_from(n).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let flag = |file: &str| read_u64(d, &format!("cpuset.{file}")).unwrap_or(0);
    CpuSet {
        cpus: list("cpuset.cpus"),
        cpu_exclusive: flag("cpu_exclusive"),
        mems: list("cpuset.mems"),
        mem_hardwall: flag("mem_hardwall"),
        mem_exclusive: flag("mem_exclusive"),
        memory_migrate: flag("memory_migrate"),
        memory_spread_page: flag("memory_spread_page"),
        memory_spread_slab: flag("memory_spread_slab"),
        memory_pressure: flag("memory_pressure"),
        sched_load_balance: flag("sched_load_balance"),
        sched_relax_domain_level: super::fs::read(d, "cpuset.sched_relax_domain_level")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// `8:0 Read 4096` lines.
fn blkio_entries(dir: &Path, file: &str) -> Vec<BlkioEntry> {
    super::fs::read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (maj, min) = f.next()?.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: f.next()?.to_owned(),
                value: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Page sizes (`2MB`, `1GB`) that have hugetlb files in `dir`.
fn hugepage_sizes(dir: &Path, v1: bool) -> Vec<String> {
    let suffix = if v1 { ".limit_in_bytes" } else { ".max" };
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_owned())
        })
        .collect();
    sizes.sort();
    sizes
}
