//! The process attributes of runtime-spec 1.2 and 1.3 that the kernel keeps
//! across `execve`: personality, scheduling policy, I/O priority, NUMA
//! memory policy and CPU affinity. Set in the container's process before
//! the user switch (as runc sets them; raising them needs privileges), the
//! final CPU affinity right before `execve`.

use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler, Spec,
};

/// An attribute the kernel or the config refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchedError {
    #[error("cannot set {what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn sys(what: &'static str, r: libc::c_long) -> Result<(), SchedError> {
    match r {
        -1 => Err(SchedError::Sys {
            what,
            source: nix::Error::last(),
        }),
        _ => Ok(()),
    }
}

/// Refuses what hull does not do, before anything is made: Intel RDT (no
/// resctrl support) and personality flags; and checks the CPU and node
/// lists.
pub(crate) fn check(spec: &Spec) -> Result<(), crate::SpecError> {
    let invalid = |m: &str| Err(crate::SpecError::Invalid(m.into()));
    if let Some(linux) = spec.linux() {
        if linux.intel_rdt().is_some() {
            return invalid("linux.intelRdt: Intel RDT (resctrl) is not supported by hull");
        }
        if linux
            .personality()
            .as_ref()
            .and_then(|p| p.flags().as_ref())
            .is_some_and(|f| !f.is_empty())
        {
            return invalid("linux.personality.flags are not supported");
        }
        if let Some(nodes) = linux
            .memory_policy()
            .as_ref()
            .and_then(|m| m.nodes().as_ref())
        {
            cpu_list(nodes)
                .map_err(|e| crate::SpecError::Invalid(format!("linux.memoryPolicy.nodes: {e}")))?;
        }
    }
    if let Some(a) = spec
        .process()
        .as_ref()
        .and_then(|p| p.exec_cpu_affinity().as_ref())
    {
        for list in [a.initial(), a.cpu_affinity_final()].into_iter().flatten() {
            cpu_list(list)
                .map_err(|e| crate::SpecError::Invalid(format!("process.execCPUAffinity: {e}")))?;
        }
    }
    Ok(())
}

/// Sets the container-wide attributes in the init: personality and memory
/// policy (inherited by everything it starts).
pub(crate) fn apply_to_container(spec: &Spec) -> Result<(), SchedError> {
    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        personality(p)?;
    }
    if let Some(m) = linux.and_then(|l| l.memory_policy().as_ref()) {
        memory_policy(m)?;
    }
    Ok(())
}

/// Sets the process's own attributes: scheduler and I/O priority.
pub(crate) fn apply(process: &Process) -> Result<(), SchedError> {
    if let Some(s) = process.scheduler() {
        scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        if !(0..=7).contains(&io.priority()) {
            return Err(SchedError::Invalid(format!(
                "process.ioPriority.priority {} is not 0-7",
                io.priority()
            )));
        }
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, value) with integers.
        let r = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | io.priority()) };
        sys("the I/O priority", r)?;
    }
    Ok(())
}

/// The CPU affinity of `which` list (`initial` when the process enters the
/// container, `final` right before `execve`).
pub(crate) fn set_affinity(
    affinity: Option<&ExecCPUAffinity>,
    initial: bool,
) -> Result<(), SchedError> {
    let list = affinity.and_then(|a| match initial {
        true => a.initial().as_deref(),
        false => a.cpu_affinity_final().as_deref(),
    });
    let Some(list) = list else { return Ok(()) };
    let cpus = cpu_list(list).map_err(SchedError::Invalid)?;
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpus {
        set.set(cpu).map_err(|source| SchedError::Sys {
            what: "the CPU affinity",
            source,
        })?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|source| {
        SchedError::Sys {
            what: "the CPU affinity",
            source,
        }
    })
}

fn personality(p: &LinuxPersonality) -> Result<(), SchedError> {
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) with an integer.
    let r = unsafe { libc::personality(persona) };
    sys("the personality", r as libc::c_long)
}

/// struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn scheduler(s: &Scheduler) -> Result<(), SchedError> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s.flags().iter().flatten().fold(0u64, |f, flag| {
        f | match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: sched_setattr(self, a live sched_attr of its size, 0).
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    sys("the scheduler", r)
}

fn memory_policy(m: &LinuxMemoryPolicy) -> Result<(), SchedError> {
    let mode = match m.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let flags = m.flags().iter().flatten().fold(0, |f, flag| {
        f | match flag {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        }
    });
    let nodes = match m.nodes() {
        Some(list) => cpu_list(list).map_err(SchedError::Invalid)?,
        None => Vec::new(),
    };
    let mut mask = [0u64; 16];
    for n in &nodes {
        let n = *n;
        if n >= 64 * mask.len() {
            return Err(SchedError::Invalid(format!(
                "NUMA node {n} is out of range"
            )));
        }
        mask[n / 64] |= 1 << (n % 64);
    }
    let (ptr, max) = match nodes.is_empty() {
        true => (std::ptr::null(), 0),
        false => (mask.as_ptr(), 64 * mask.len() + 1),
    };
    // SAFETY: set_mempolicy with a live mask of `max - 1` bits, or none.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, max) };
    sys("the memory policy", r)
}

/// A CPU or node list such as `0-3,7`.
pub(crate) fn cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid list {list:?}");
        let (lo, hi): (usize, usize) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n: usize = part.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_parsed_and_bad_ones_refused() {
        assert_eq!(cpu_list("0-2,5").unwrap(), [0, 1, 2, 5]);
        assert_eq!(cpu_list("1").unwrap(), [1]);
        for bad in ["3-1", "a", "1-", "99999"] {
            assert!(cpu_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_attr_struct_has_the_kernel_s_size() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 56);
    }
}
