//! Whether `linux.resources` asks for anything a cgroup must enforce.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::unset::effective;

/// Whether `res` sets a limit, weight or other setting that needs the
/// container's own cgroup. Device rules do not count: without a cgroup a
/// rootless container's user namespace already keeps it from making nodes
/// (runc ignores them there too). Nor do the zeros runc takes for "unset",
/// nor kernel memory, which runc ignores.
pub fn asks_for_limits(res: &LinuxResources) -> bool {
    let res = &effective(res);
    res.memory().as_ref().is_some_and(memory)
        || res.cpu().as_ref().is_some_and(cpu)
        || res.pids().is_some()
        || res.block_io().as_ref().is_some_and(block_io)
        || non_empty(res.hugepage_limits())
        || res
            .network()
            .as_ref()
            .is_some_and(|n| n.class_id().is_some() || non_empty(n.priorities()))
        || res.rdma().as_ref().is_some_and(|r| !r.is_empty())
        || res.unified().as_ref().is_some_and(|u| !u.is_empty())
}

fn memory(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
}

fn cpu(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
        || c.cpus().is_some()
        || c.mems().is_some()
}

fn block_io(b: &LinuxBlockIo) -> bool {
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || non_empty(b.weight_device())
        || non_empty(b.throttle_read_bps_device())
        || non_empty(b.throttle_write_bps_device())
        || non_empty(b.throttle_read_iops_device())
        || non_empty(b.throttle_write_iops_device())
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};

    #[test]
    fn device_rules_alone_are_no_limits() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .devices(vec![deny_all])
            .build()
            .unwrap();
        assert!(!asks_for_limits(&res));
        assert!(!asks_for_limits(&LinuxResources::default()));
    }

    #[test]
    fn a_memory_limit_is_one() {
        let memory = LinuxMemoryBuilder::default()
            .limit(1 << 20)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(memory)
            .build()
            .unwrap();
        assert!(asks_for_limits(&res));
    }

    #[test]
    fn docker_zeros_are_no_limits() {
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0},
               "cpu":{"shares":0,"quota":0,"period":0,"realtimePeriod":0,
                "realtimeRuntime":0,"cpus":"","mems":""},
               "pids":{"limit":0},"blockIO":{"weight":0,"leafWeight":0},
               "network":{"classID":0}}"#,
        )
        .unwrap();
        assert!(!asks_for_limits(&res));
        let pids: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":-1}}"#).unwrap();
        assert!(asks_for_limits(&pids));
    }
}
