//! Writing `linux.resources` to the container's cgroup: each resource to
//! the hierarchy that has its controller.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{
    controller_rules, devices_bpf, effective_rules, fs, open_dir, unset, v1, v2, Cgroup,
    CgroupError, Hierarchies,
};

impl Cgroup {
    /// Applies `linux.resources`, each to the hierarchy that has its
    /// controller, with runc's zeros left out (see [`unset`]); refuses what
    /// the kernel would refuse before writing anything. `unified` keys are
    /// expected checked with [`check_unified`] (`create` does, before it
    /// makes anything).
    pub fn apply(&self, h: &Hierarchies, res: &LinuxResources) -> Result<(), CgroupError> {
        let res = unset::effective(res);
        unset::validate(&res)?;
        self.write(h, &res)
    }

    /// `update`: applies `res` like [`Self::apply`], and if a write fails,
    /// puts back what the earlier ones changed. Device rules change on v1
    /// only, by the fewest writes (the list sent again unchanged, as engines
    /// do, writes nothing); a cgroup2 device program can only be added to,
    /// each one narrowing the last, so there they stay as created.
    pub fn update(&self, h: &Hierarchies, res: &LinuxResources) -> Result<(), CgroupError> {
        check_unified(h, res)?;
        let mut res = unset::effective(res);
        unset::validate(&res)?;
        if self.v1_dir("devices").is_none() {
            res.set_devices(None);
        }
        fs::undo_on_error(|| self.write(h, &res))
    }

    /// Writes resources made [`unset::effective`] and validated.
    fn write(&self, h: &Hierarchies, res: &LinuxResources) -> Result<(), CgroupError> {
        let v2 = self.v2_dir();
        let route = |ctrl: &str| -> Option<(bool, &Path)> {
            if let Some(d) = self.v1_dir(ctrl) {
                Some((true, d))
            } else if h.on_v2(ctrl) {
                v2.map(|d| (false, d))
            } else {
                None
            }
        };
        // runc's error for a limit of a controller the host has not mounted.
        let unavailable = |ctrl: &str| {
            CgroupError::Invalid(format!(
                "cannot set {ctrl} limit: the {ctrl} controller is not available on this host"
            ))
        };
        if let Some(m) = res.memory() {
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                tracing::warn!("kernel memory settings are ignored (as by runc)");
            }
        }
        if let Some(m) = res.memory() {
            match route("memory") {
                Some((true, d)) => v1::memory(d, m)?,
                Some((false, d)) => v2::memory(d, m)?,
                None => return Err(unavailable("memory")),
            }
        }
        if let Some(c) = res.cpu() {
            let wants_cpu = c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_period().is_some()
                || c.realtime_runtime().is_some();
            if wants_cpu {
                match route("cpu") {
                    Some((true, d)) => v1::cpu(d, c)?,
                    Some((false, d)) => v2::cpu(d, c)?,
                    None => return Err(unavailable("cpu")),
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                match route("cpuset") {
                    Some((true, d)) => v1::cpuset(d, c)?,
                    Some((false, d)) => v2::cpuset(d, c)?,
                    None => return Err(unavailable("cpuset")),
                }
            }
        }
        if let Some(p) = res.pids() {
            match route("pids") {
                Some((true, d)) => v1::pids(d, p.limit())?,
                Some((false, d)) => v2::pids(d, p.limit())?,
                None => return Err(unavailable("pids")),
            }
        }
        if let Some(b) = res.block_io() {
            match route(if self.v1_dir("blkio").is_some() {
                "blkio"
            } else {
                "io"
            }) {
                Some((true, d)) => v1::blkio(d, b)?,
                Some((false, d)) => v2::io(d, b)?,
                None => return Err(unavailable("blkio")),
            }
        }
        if let Some(limits) = res.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
            match route("hugetlb") {
                Some((true, d)) => v1::hugetlb(d, limits)?,
                Some((false, d)) => v2::hugetlb(d, limits)?,
                None => return Err(unavailable("hugetlb")),
            }
        }
        if let Some(n) = res.network() {
            // v1-only controllers: cgroup2 has no equivalent.
            if n.class_id().is_some() {
                match route("net_cls") {
                    Some((true, d)) => v1::net_cls(d, n)?,
                    _ => return Err(unavailable("net_cls")),
                }
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                match route("net_prio") {
                    Some((true, d)) => v1::net_prio(d, n)?,
                    _ => return Err(unavailable("net_prio")),
                }
            }
        }
        if let Some(r) = res.rdma().as_ref().filter(|r| !r.is_empty()) {
            let (_, d) = route("rdma").ok_or_else(|| unavailable("rdma"))?;
            v1::rdma(d, r)?;
        }
        if let Some(u) = res.unified().as_ref().filter(|u| !u.is_empty()) {
            let d = v2.ok_or_else(|| {
                CgroupError::Invalid("linux.resources.unified needs cgroup v2".into())
            })?;
            v2::unified(d, u)?;
        }
        if let Some(rules) = res.devices() {
            let rules = effective_rules(rules);
            if let Some(d) = self.v1_dir("devices") {
                v1::devices(d, &controller_rules(&rules)?)?;
            } else if let Some(d) = v2 {
                devices_bpf::attach(&open_dir(d)?, &rules)?;
            }
        }
        Ok(())
    }
}

/// Refuses `linux.resources.unified` keys whose controller is not on
/// cgroup2 on this host (a v1 or hybrid host), before anything is written,
/// as runc does: the file would not exist in the container's cgroup2
/// directory.
pub fn check_unified(h: &Hierarchies, res: &LinuxResources) -> Result<(), CgroupError> {
    for key in res.unified().iter().flat_map(|u| u.keys()) {
        let ctrl = key.split('.').next().unwrap_or_default();
        let on_v2 = match ctrl {
            "cgroup" => h.v2.is_some(),
            _ => h.on_v2(ctrl),
        };
        if !on_v2 {
            return Err(CgroupError::Invalid(format!(
                "linux.resources.unified {key:?}: the {ctrl} controller is not on cgroup v2 on this host"
            )));
        }
    }
    Ok(())
}
