//! runc's reading of `linux.resources`: in most numeric fields a zero (and
//! an empty cpuset string) means "not set", whatever the JSON says. Docker
//! relies on it: every config and `update` payload it sends carries
//! `"blockIO":{"weight":0}`, `"cpu":{"shares":0,"quota":0,"period":0}`, ...
//! Written as given, those zeros would set the lowest CPU weight, fail on a
//! blkio weight file the host lacks, or be refused (a 0 µs period).
//!
//! [`effective`] turns each such zero into `None`, field by field, exactly
//! where runc 1.1.5 ignores it; the writers then write every `Some`.
//! [`validate`] refuses, before the first write, what the kernel would
//! refuse half-way through.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources, LinuxWeightDevice,
    LinuxWeightDeviceBuilder,
};

use super::CgroupError;

/// Go's `int64(-1)` as the `uint64` swappiness runc compares with: "unset".
const SWAPPINESS_UNSET: u64 = u64::MAX;

/// The resources with runc's "zero is unset" fields made `None`.
pub fn effective(res: &LinuxResources) -> LinuxResources {
    let mut r = res.clone();
    r.set_memory(res.memory().as_ref().map(memory));
    r.set_cpu(res.cpu().as_ref().map(cpu));
    // pids.limit is not optional in the spec: 0 is its "no value".
    r.set_pids(res.pids().filter(|p| p.limit() != 0));
    r.set_block_io(res.block_io().as_ref().map(block_io));
    r.set_network(res.network().as_ref().map(network));
    r
}

fn non_zero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

fn memory(m: &LinuxMemory) -> LinuxMemory {
    let mut m = *m;
    m.set_limit(non_zero(m.limit()));
    m.set_reservation(non_zero(m.reservation()));
    m.set_swap(non_zero(m.swap()));
    m.set_kernel(non_zero(m.kernel()));
    m.set_kernel_tcp(non_zero(m.kernel_tcp()));
    m.set_swappiness(m.swappiness().filter(|s| *s != SWAPPINESS_UNSET));
    // runc writes memory.oom_control only to disable the killer.
    m.set_disable_oom_killer(m.disable_oom_killer().filter(|d| *d));
    m
}

/// `burst` and `idle` keep their value: runc (1.2, which added them) takes
/// them as pointers, where 0 is a setting.
fn cpu(c: &LinuxCpu) -> LinuxCpu {
    let mut c = c.clone();
    c.set_shares(non_zero(c.shares()));
    c.set_quota(non_zero(c.quota()));
    c.set_period(non_zero(c.period()));
    c.set_realtime_period(non_zero(c.realtime_period()));
    c.set_realtime_runtime(non_zero(c.realtime_runtime()));
    c.set_cpus(c.cpus().clone().filter(|s| !s.is_empty()));
    c.set_mems(c.mems().clone().filter(|s| !s.is_empty()));
    c
}

fn block_io(b: &LinuxBlockIo) -> LinuxBlockIo {
    let mut b = b.clone();
    b.set_weight(non_zero(b.weight()));
    b.set_leaf_weight(non_zero(b.leaf_weight()));
    let devices: Option<Vec<LinuxWeightDevice>> = b
        .weight_device()
        .as_ref()
        .map(|list| list.iter().filter_map(weight_device).collect());
    b.set_weight_device(devices);
    b
}

/// A device's weights without the zeros; none when both are zero.
fn weight_device(d: &LinuxWeightDevice) -> Option<LinuxWeightDevice> {
    let (weight, leaf) = (non_zero(d.weight()), non_zero(d.leaf_weight()));
    if weight.is_none() && leaf.is_none() {
        return None;
    }
    let mut b = LinuxWeightDeviceBuilder::default()
        .major(d.major())
        .minor(d.minor());
    if let Some(w) = weight {
        b = b.weight(w);
    }
    if let Some(w) = leaf {
        b = b.leaf_weight(w);
    }
    b.build().ok()
}

fn network(n: &LinuxNetwork) -> LinuxNetwork {
    let mut n = n.clone();
    n.set_class_id(non_zero(n.class_id()));
    n
}

/// The CFS period range the kernel accepts (1 ms to 1 s).
const PERIOD_US: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;
/// The smallest CFS quota the kernel accepts.
const MIN_QUOTA_US: i64 = 1_000;
/// The range the kernel clamps cpu.shares to (runc refuses what it clamps).
const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

/// Refuses values the kernel would refuse, before anything is written, so
/// that a create or `update` does not stop half-way. `res` is [`effective`].
pub fn validate(res: &LinuxResources) -> Result<(), CgroupError> {
    let invalid = |s: String| Err(CgroupError::Invalid(s));
    if let Some(m) = res.memory() {
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            return invalid(format!(
                "invalid memory swappiness value: {s} (valid range is 0-100)"
            ));
        }
        if let (Some(limit), Some(swap)) = (m.limit(), m.swap()) {
            if limit > 0 && swap > 0 && swap < limit {
                return invalid(format!(
                    "memory+swap limit {swap} should be >= memory limit {limit}"
                ));
            }
        }
    }
    if let Some(c) = res.cpu() {
        match c.shares() {
            Some(s) if s < *SHARES.start() => {
                return invalid(format!(
                    "cpu shares {s}: the minimum allowed cpu-shares is {}",
                    SHARES.start()
                ))
            }
            Some(s) if s > *SHARES.end() => {
                return invalid(format!(
                    "cpu shares {s}: the maximum allowed cpu-shares is {}",
                    SHARES.end()
                ))
            }
            _ => {}
        }
        if let Some(p) = c.period().filter(|p| !PERIOD_US.contains(p)) {
            return invalid(format!(
                "cpu period {p} is out of range (valid range is {}-{} µs)",
                PERIOD_US.start(),
                PERIOD_US.end()
            ));
        }
        if let Some(q) = c.quota().filter(|q| (1..MIN_QUOTA_US).contains(q)) {
            return invalid(format!(
                "cpu quota {q} is below the minimum of {MIN_QUOTA_US} µs"
            ));
        }
        if let (Some(p), Some(r)) = (c.realtime_period(), c.realtime_runtime()) {
            if r > 0 && r as u64 > p {
                return invalid(format!(
                    "cpu realtime runtime {r} is above the realtime period {p}"
                ));
            }
        }
    }
    if let Some(rules) = res.devices() {
        super::controller_rules(rules)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    /// Docker 20.10's `update --resources -` payload for `--memory 96m
    /// --memory-swap 192m --pids-limit 50`.
    const DOCKER_UPDATE: &str = r#"{"memory":{"limit":100663296,"reservation":0,"swap":201326592,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":50},"blockIO":{"weight":0}}"#;

    #[test]
    fn docker_zeros_are_unset() {
        let r = effective(&parse(DOCKER_UPDATE));
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(100_663_296));
        assert_eq!(m.swap(), Some(201_326_592));
        assert_eq!((m.reservation(), m.kernel()), (None, None));
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.shares(), c.quota(), c.period()), (None, None, None));
        assert_eq!(r.pids().unwrap().limit(), 50);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), None);
        validate(&r).unwrap();
    }

    #[test]
    fn every_zero_field_runc_ignores() {
        let r = effective(&parse(
            r#"{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0,
                "swappiness":18446744073709551615,"disableOOMKiller":false},
               "cpu":{"shares":0,"quota":0,"period":0,"realtimePeriod":0,
                "realtimeRuntime":0,"cpus":"","mems":"","burst":0,"idle":0},
               "pids":{"limit":0},
               "blockIO":{"weight":0,"leafWeight":0,
                "weightDevice":[{"major":8,"minor":0,"weight":0,"leafWeight":0},
                                {"major":8,"minor":16,"weight":0,"leafWeight":300}]},
               "network":{"classID":0}}"#,
        ));
        let m = r.memory().unwrap();
        assert_eq!(m, LinuxMemory::default());
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(c.shares(), None);
        assert_eq!((c.quota(), c.realtime_runtime()), (None, None));
        assert_eq!((c.period(), c.realtime_period()), (None, None));
        assert_eq!((c.cpus(), c.mems()), (&None, &None));
        assert_eq!((c.burst(), c.idle()), (Some(0), Some(0)), "pointer fields");
        assert!(r.pids().is_none());
        let b = r.block_io().as_ref().unwrap();
        assert_eq!((b.weight(), b.leaf_weight()), (None, None));
        let devices = b.weight_device().as_ref().unwrap();
        assert_eq!(devices.len(), 1, "{devices:?}");
        assert_eq!(devices[0].minor(), 16);
        assert_eq!(devices[0].weight(), None);
        assert_eq!(devices[0].leaf_weight(), Some(300));
        assert_eq!(r.network().as_ref().unwrap().class_id(), None);
    }

    #[test]
    fn negative_values_are_kept() {
        let r = effective(&parse(
            r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":-1,"realtimeRuntime":-1},
               "pids":{"limit":-1}}"#,
        ));
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(-1), Some(-1)));
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.quota(), c.realtime_runtime()), (Some(-1), Some(-1)));
        assert_eq!(r.pids().unwrap().limit(), -1);
        validate(&r).unwrap();
    }

    #[test]
    fn refuses_what_the_kernel_would() {
        for (json, says) in [
            (r#"{"memory":{"swappiness":101}}"#, "swappiness"),
            (
                r#"{"memory":{"limit":2097152,"swap":1048576}}"#,
                "should be >= memory limit",
            ),
            (r#"{"cpu":{"shares":1}}"#, "minimum allowed cpu-shares is 2"),
            (r#"{"cpu":{"shares":262145}}"#, "maximum allowed"),
            (r#"{"cpu":{"period":999}}"#, "cpu period 999"),
            (r#"{"cpu":{"period":1000001}}"#, "cpu period 1000001"),
            (r#"{"cpu":{"quota":999}}"#, "cpu quota 999"),
            (
                r#"{"cpu":{"realtimePeriod":1000,"realtimeRuntime":2000}}"#,
                "realtime",
            ),
        ] {
            let e = validate(&effective(&parse(json))).unwrap_err().to_string();
            assert!(e.contains(says), "{json}: {e}");
        }
        // A negative period is no u64: refused when the JSON is read.
        assert!(serde_json::from_str::<LinuxResources>(r#"{"cpu":{"period":-1}}"#).is_err());
    }
}
