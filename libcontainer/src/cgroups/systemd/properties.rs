//! `linux.resources` as properties of the scope unit. systemd rewrites the
//! limits of the hierarchies it manages whenever it realizes a unit again
//! (`daemon-reload`, a sibling's change), and drops a v1 controller the unit
//! does not use: so the scope carries the limits hull writes itself, with
//! accounting on for every controller to keep each directory in place.

use oci_spec::runtime::LinuxResources;

use crate::cgroups::unset::effective;
use crate::cgroups::v2::swap_to_v2;
use crate::cgroups::Hierarchies;
use crate::dbus::Value;

/// systemd's "infinity" for `t` properties.
const INFINITY: u64 = u64::MAX;

/// The unit properties for `res` on this host's hierarchies.
pub(crate) fn from_resources(
    h: &Hierarchies,
    res: Option<&LinuxResources>,
) -> Vec<(&'static str, Value)> {
    let on_v1 = |c: &str| h.v1_of(c).is_some();
    let io_accounting = if on_v1("blkio") {
        "BlockIOAccounting"
    } else {
        "IOAccounting"
    };
    let mut props = vec![
        ("MemoryAccounting", Value::Bool(true)),
        ("CPUAccounting", Value::Bool(true)),
        ("TasksAccounting", Value::Bool(true)),
        (io_accounting, Value::Bool(true)),
    ];
    let Some(res) = res.map(effective) else {
        return props;
    };
    let v2_memory = !on_v1("memory");
    if let Some(m) = res.memory() {
        if let Some(limit) = m.limit() {
            let name = if v2_memory {
                "MemoryMax"
            } else {
                "MemoryLimit"
            };
            props.push((name, Value::U64(limit_value(limit))));
        }
        if v2_memory {
            if let Some(low) = m.reservation() {
                props.push(("MemoryLow", Value::U64(limit_value(low))));
            }
            // Invalid swap was refused before: nothing to set then.
            if let Ok(Some(swap)) = swap_to_v2(m.swap(), m.limit()) {
                let max = swap.parse().unwrap_or(INFINITY);
                props.push(("MemorySwapMax", Value::U64(max)));
            }
        }
    }
    if let Some(cpu) = res.cpu() {
        if let Some(shares) = cpu.shares() {
            props.push(if on_v1("cpu") {
                ("CPUShares", Value::U64(shares))
            } else {
                ("CPUWeight", Value::U64(shares_to_weight(shares)))
            });
        }
        // As runc: a period alone sets the period with an unlimited quota.
        if let Some(period) = cpu.period() {
            props.push(("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let period = cpu.period().unwrap_or(100_000);
            let quota = cpu.quota().unwrap_or(-1);
            props.push((
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            ));
        }
    }
    if let Some(weight) = res.block_io().as_ref().and_then(|b| b.weight()) {
        if on_v1("blkio") {
            props.push(("BlockIOWeight", Value::U64(weight.into())));
        }
    }
    // runc passes -1 (infinity) and positive limits; other negatives are
    // left out.
    if let Some(p) = res.pids().filter(|p| p.limit() > 0 || p.limit() == -1) {
        props.push(("TasksMax", Value::U64(limit_value(p.limit()))));
    }
    props
}

/// A byte or task limit: negative means none.
fn limit_value(limit: i64) -> u64 {
    if limit > 0 {
        limit as u64
    } else {
        INFINITY
    }
}

/// cgroup v1 shares (2..262144) as a cgroup2 weight (1..10000), as runc maps them.
fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// CFS quota per period (negative: none) as CPU time per second, rounded up to whole 10 ms
/// (systemd keeps it as a percentage, so the quota it writes is never below ours).
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota < 0 {
        return INFINITY;
    }
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.next_multiple_of(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};

    fn find<'a>(props: &'a [(&str, Value)], name: &str) -> Option<&'a Value> {
        props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn v1_and_v2_names_and_conversions() {
        let res = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(25_000i64)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let v1 = Hierarchies::parse(
            "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             2 0 0:2 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
        );
        let p = from_resources(&v1, Some(&res));
        assert_eq!(find(&p, "MemoryLimit"), Some(&Value::U64(1 << 20)));
        assert_eq!(find(&p, "CPUShares"), Some(&Value::U64(1024)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(250_000)));
        assert_eq!(find(&p, "BlockIOAccounting"), None);
        let v2 = Hierarchies::parse("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let p = from_resources(&v2, Some(&res));
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(1 << 20)));
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(find(&p, "IOAccounting"), Some(&Value::Bool(true)));
    }

    #[test]
    fn quotas_round_up_and_negative_limits_are_infinity() {
        assert_eq!(quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(quota_per_sec(-1, 100_000), INFINITY);
        assert_eq!(limit_value(-1), INFINITY);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn docker_zeros_set_no_property() {
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":0,"reservation":0,"swap":0},
               "cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":0},
               "blockIO":{"weight":0}}"#,
        )
        .unwrap();
        for h in [
            Hierarchies::parse(
                "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 2 0 0:2 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 3 0 0:3 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n",
            ),
            Hierarchies::parse("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
        ] {
            let p = from_resources(&h, Some(&res));
            assert_eq!(p, from_resources(&h, None), "{p:?}");
        }
    }

    #[test]
    fn period_alone_and_pids_as_runc() {
        let res: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"period":50000},"pids":{"limit":-1}}"#).unwrap();
        let v2 = Hierarchies::parse("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let p = from_resources(&v2, Some(&res));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576,"swap":3145728,"reservation":4096},"pids":{"limit":-2}}"#,
        )
        .unwrap();
        let p = from_resources(&v2, Some(&res));
        assert_eq!(find(&p, "MemorySwapMax"), Some(&Value::U64(2 << 20)));
        assert_eq!(find(&p, "MemoryLow"), Some(&Value::U64(4096)));
        assert_eq!(find(&p, "TasksMax"), None);
    }
}
