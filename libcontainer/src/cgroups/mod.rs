//! Cgroups v1, v2 and hybrid behind one small type, [`Cgroup`]: create,
//! apply, add a process, freeze/thaw, list pids, stats, destroy.
//!
//! Every layout is handled by the same code: a container owns one directory
//! in each v1 hierarchy and one in the cgroup2 hierarchy when the host has
//! one. Each resource goes to the v1 hierarchy of its controller if there is
//! one, else to cgroup2 if the controller is available there (on this kind
//! of hybrid host, hugetlb lives on cgroup2 and everything else on v1).
//!
//! With the systemd driver the directories are those of a transient scope
//! (see [`systemd`]); everything else works the same way.

mod device_transition;
mod devices;
mod devices_bpf;
mod fs;
mod hierarchy;
mod limits;
pub mod oom;
pub mod stats;
pub mod systemd;
mod unset;
mod v1;
mod v2;

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use devices::{controller_rules, effective_rules};
use hierarchy::own_cgroup;
use hierarchy::under;
pub use hierarchy::{Hierarchies, Layout};
pub use limits::asks_for_limits;

/// A cgroup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("invalid cgroup configuration: {0}")]
    Invalid(String),
    /// The kernel refused a memory limit below what is in use (EBUSY).
    #[error("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})")]
    MemoryInUse { limit: i64, usage: u64, peak: u64 },
    #[error("systemd cgroup driver requested for {0:?}, but systemd is not running on this host")]
    SystemdNotRunning(String),
    #[error("systemd unit {unit}: {source}")]
    Systemd {
        unit: String,
        source: systemd::ManagerError,
    },
    #[error("cannot load the device eBPF program: {0}")]
    Bpf(std::io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The container has no cgroup: it was made rootless, where the user
    /// may not create one.
    #[error("cannot {0}: the container has no cgroup (it was created rootless, without one)")]
    Missing(&'static str),
    /// Rootless, a cgroup could not be made and `linux.resources` needs one.
    #[error(
        "rootless: cannot create the cgroup {}: {source}; linux.resources sets limits, which \
         need a cgroup this user may write (remove them, or delegate a cgroup to the user)",
        path.display()
    )]
    RootlessLimits {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CgroupError {
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().to_owned();
        move |source| Self::Io { path, source }
    }

    /// Whether this is a cgroup directory that could not be made for want
    /// of permission (EACCES, EPERM, EROFS), as for an unprivileged user.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Io { source, .. } if is_permission_denied(source))
    }

    /// Whether the file or directory this error names no longer exists.
    fn is_not_found(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Write { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

/// One directory of the container's cgroup, in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// Controllers of the v1 hierarchy; empty for cgroup2.
    pub controllers: Vec<String>,
    pub path: PathBuf,
    /// The topmost directory this container created (removed on destroy).
    pub top: PathBuf,
}

impl CgroupDir {
    /// Whether this is the cgroup2 directory.
    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }
}

/// The container's cgroup across all hierarchies; persisted in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<CgroupDir>,
    /// The transient scope holding the container (systemd driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Scope>,
}

impl Cgroup {
    /// Where a container's cgroup goes, as runc decides it: `cgroupsPath`
    /// absolute under each hierarchy root, relative under the runtime's own
    /// cgroup, and `<id>` (relative) when absent. `slice:prefix:name` is the
    /// systemd syntax: the directories are the scope's, under each root.
    pub fn resolve(
        h: &Hierarchies,
        cgroups_path: Option<&str>,
        id: &str,
        systemd: bool,
    ) -> Result<Self, CgroupError> {
        let path = match cgroups_path {
            None | Some("") => id.to_owned(),
            Some(p) => p.to_owned(),
        };
        let scope = if systemd || path.contains(':') {
            if !Path::new("/run/systemd/system").is_dir() {
                return Err(CgroupError::SystemdNotRunning(path));
            }
            Some(systemd::parse(cgroups_path, id)?)
        } else {
            None
        };
        let path = scope.as_ref().map_or(path, |s| s.cgroup.clone());
        let rel = Path::new(&path);
        if rel.components().any(|c| c == Component::ParentDir) {
            return Err(CgroupError::Invalid(format!(
                "cgroupsPath {path:?} must not contain .."
            )));
        }
        let own = if rel.is_absolute() {
            String::new()
        } else {
            crate::pseudo_file::read_to_string("/proc/self/cgroup")
                .map_err(CgroupError::io("/proc/self/cgroup"))?
        };
        let place = |mount_point: &Path, controllers: &[String]| -> PathBuf {
            if rel.is_absolute() {
                under(mount_point, rel)
            } else {
                let base = own_cgroup(&own, controllers).unwrap_or("/");
                under(&under(mount_point, Path::new(base)), rel)
            }
        };
        let mut dirs: Vec<CgroupDir> =
            h.v1.iter()
                .map(|m| {
                    let path = place(&m.mount_point, &m.controllers);
                    CgroupDir {
                        controllers: m.controllers.clone(),
                        top: path.clone(),
                        path,
                    }
                })
                .collect();
        if let Some(v2) = &h.v2 {
            let path = place(&v2.mount_point, &[]);
            dirs.push(CgroupDir {
                controllers: Vec::new(),
                top: path.clone(),
                path,
            });
        }
        Ok(Self {
            dirs,
            systemd: scope,
        })
    }

    /// The caller's own cgroup in every hierarchy where `self` has no
    /// directory (rootless: where the init stays).
    pub fn own_where_missing(&self, h: &Hierarchies) -> Result<Self, CgroupError> {
        let own = crate::pseudo_file::read_to_string("/proc/self/cgroup")
            .map_err(CgroupError::io("/proc/self/cgroup"))?;
        let v1 = h.v1.iter().map(|m| (&m.mount_point, m.controllers.clone()));
        let v2 = h.v2.iter().map(|m| (&m.mount_point, Vec::new()));
        let dirs = v1
            .chain(v2)
            .filter(|(_, c)| !self.dirs.iter().any(|d| d.controllers == *c))
            .map(|(mount_point, controllers)| {
                let cgroup = own_cgroup(&own, &controllers).unwrap_or("/");
                let path = under(mount_point, Path::new(cgroup));
                CgroupDir {
                    controllers,
                    top: path.clone(),
                    path,
                }
            })
            .collect();
        Ok(Self {
            dirs,
            systemd: None,
        })
    }

    fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    fn v2_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.is_v2())
            .map(|d| d.path.as_path())
    }

    /// Creates the directories `which` selects (recording the topmost one
    /// made), inheriting cpusets on v1 and enabling the parent's controllers
    /// on cgroup2.
    pub fn create(&mut self, which: impl Fn(&CgroupDir) -> bool) -> Result<(), CgroupError> {
        for d in self.dirs.iter_mut().filter(|d| which(d)) {
            let mut top = d.path.clone();
            while let Some(parent) = top.parent() {
                if parent.exists() {
                    break;
                }
                top = parent.to_owned();
            }
            match std::fs::create_dir_all(&d.path) {
                Ok(()) => {}
                Err(e) => return Err(CgroupError::io(&d.path)(e)),
            }
            // After the directories exist, so a nested path's new parents
            // pass their controllers down too.
            if d.is_v2() {
                enable_controllers(&d.path)?;
            }
            d.top = top;
            if d.controllers.iter().any(|c| c == "cpuset") {
                v1::init_cpuset(&d.path)?;
            }
        }
        Ok(())
    }

    /// Rootless: creates the directories like [`Self::create`], but leaves
    /// out of the cgroup each one this user may not make, when `limits`
    /// (see [`asks_for_limits`]) is false; with limits that is an error.
    pub fn create_rootless(&mut self, limits: bool) -> Result<(), CgroupError> {
        let mut dirs = std::mem::take(&mut self.dirs).into_iter();
        for d in dirs.by_ref() {
            let mut one = Self {
                dirs: vec![d],
                systemd: None,
            };
            match one.create(|_| true) {
                Ok(()) => self.dirs.append(&mut one.dirs),
                Err(CgroupError::Io { path, source }) if is_permission_denied(&source) => {
                    if limits {
                        self.dirs.extend(dirs);
                        return Err(CgroupError::RootlessLimits { path, source });
                    }
                    tracing::debug!("rootless: no cgroup in {}: {source}", path.display());
                }
                Err(e) => {
                    self.dirs.append(&mut one.dirs);
                    self.dirs.extend(dirs);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The container's cgroup with sub-cgroups of it in place of its own
    /// directories, for `exec --cgroup` (runc's SubCgroupPaths): the key
    /// `""` names a sub-cgroup of every directory, another key one of the
    /// directory holding that controller (`unified` for cgroup2). The
    /// sub-cgroups must exist and lie inside the container's.
    pub fn sub(
        &self,
        paths: &std::collections::HashMap<String, String>,
    ) -> Result<Self, CgroupError> {
        let mut sub = self.clone();
        for (ctrl, rel) in paths {
            let rel_path = Path::new(rel.trim_start_matches('/'));
            if rel_path
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(CgroupError::Invalid(format!(
                    "sub-cgroup {rel:?} must lie inside the container's cgroup"
                )));
            }
            let mut matched = false;
            for d in sub.dirs.iter_mut().filter(|d| {
                ctrl.is_empty()
                    || d.controllers.iter().any(|c| c == ctrl)
                    || (d.is_v2() && ctrl == "unified")
            }) {
                d.path = d.path.join(rel_path);
                if !d.path.is_dir() {
                    return Err(CgroupError::Invalid(format!(
                        "sub-cgroup {} does not exist",
                        d.path.display()
                    )));
                }
                matched = true;
            }
            if !matched {
                return Err(CgroupError::Invalid(format!(
                    "unknown controller {ctrl:?} in the sub-cgroup paths"
                )));
            }
        }
        Ok(sub)
    }

    /// runc's checks of a cgroup that may exist already, before anything is
    /// made: processes in it are warned about (they become the container's
    /// neighbours); a frozen one is refused, as it would freeze the init.
    pub fn check_existing(&self) -> Result<(), CgroupError> {
        let probe = self
            .v1_dir("devices")
            .or_else(|| self.v2_dir())
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()));
        if let Some(d) = probe.filter(|d| d.exists()) {
            let n = procs_below(d);
            if n > 0 {
                tracing::warn!("container's cgroup is not empty: {n} process(es) found");
            }
        }
        if self.is_frozen() {
            return Err(CgroupError::Invalid(
                "container's cgroup unexpectedly frozen".into(),
            ));
        }
        Ok(())
    }

    /// Applies `linux.resources`, each to the hierarchy that has its
    /// controller, with runc's zeros left out (see [`unset`]); refuses what
    /// the kernel would refuse before writing anything.
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
            check_unified(h, res)?;
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

    /// An fd on the cgroup2 directory, for `clone3(CLONE_INTO_CGROUP)`;
    /// none with the systemd driver (the scope does not exist before the init).
    pub fn open_v2(&self) -> Result<Option<OwnedFd>, CgroupError> {
        if self.systemd.is_some() {
            return Ok(None);
        }
        self.v2_dir().map(open_dir).transpose()
    }

    /// Systemd driver: asks systemd to start the scope around `pid` (as
    /// systemd's pid namespace sees it) with the limits of `res`; a no-op
    /// for cgroupfs.
    pub fn start_scope(
        &self,
        pid: i32,
        id: &str,
        h: &Hierarchies,
        res: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let Some(scope) = &self.systemd else {
            return Ok(());
        };
        scope
            .start(pid as u32, id, h, res)
            .map_err(|source| CgroupError::Systemd {
                unit: scope.unit.clone(),
                source,
            })
    }

    /// Systemd driver: gives the scope unit the new limits of `update` too,
    /// so systemd does not put the old ones back; a no-op for cgroupfs.
    pub fn update_scope(&self, h: &Hierarchies, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(scope) = &self.systemd else {
            return Ok(());
        };
        unset::validate(&unset::effective(res))?;
        scope.update(h, res).map_err(|source| CgroupError::Systemd {
            unit: scope.unit.clone(),
            source,
        })
    }

    /// Moves the calling process (single-threaded: the container's init)
    /// into every directory. On v1 it writes `0` to `tasks`: a thread moving
    /// itself skips the global threadgroup lock, whose write side waits for
    /// an RCU grace period (~15 ms here) when any pid is written to
    /// `cgroup.procs`. cgroup2 is skipped when the clone already put it there.
    pub fn enter(&self, cloned_into_v2: bool) -> Result<(), CgroupError> {
        for d in &self.dirs {
            if !d.is_v2() {
                fs::write(&d.path, "tasks", 0)?;
            } else if !cloned_into_v2 {
                fs::write(&d.path, "cgroup.procs", 0)?;
            }
        }
        Ok(())
    }

    /// Freezes or thaws every process of the container and waits until done.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match self.freeze_or_thaw(frozen) {
            // systemd removes a scope's cgroup as soon as it empties, as after
            // `kill --all KILL` of a frozen container: nothing is left to thaw.
            Err(e) if !frozen && e.is_not_found() => Ok(()),
            done => done,
        }
    }

    fn freeze_or_thaw(&self, frozen: bool) -> Result<(), CgroupError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        if let Some(d) = self.v1_dir("freezer") {
            let want = if frozen { "FROZEN" } else { "THAWED" };
            fs::write(d, "freezer.state", want)?;
            while fs::read(d, "freezer.state")? != want {
                if Instant::now() > deadline {
                    return Err(CgroupError::Timeout(format!("freezer.state {want}")));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        } else if let Some(d) = self.v2_dir() {
            fs::write(d, "cgroup.freeze", u8::from(frozen))?;
            let want = format!("frozen {}", u8::from(frozen));
            while !fs::read(d, "cgroup.events")?.lines().any(|l| l == want) {
                if Instant::now() > deadline {
                    return Err(CgroupError::Timeout(want));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }

    /// Whether the container is frozen (paused).
    pub fn is_frozen(&self) -> bool {
        if let Some(d) = self.v1_dir("freezer") {
            matches!(
                fs::read(d, "freezer.state").as_deref(),
                Ok("FROZEN" | "FREEZING")
            )
        } else if let Some(d) = self.v2_dir() {
            fs::read(d, "cgroup.freeze").is_ok_and(|s| s == "1")
        } else {
            false
        }
    }

    /// Refuses a memory limit below what the container already uses.
    pub fn check_memory_limit(&self, limit: Option<i64>) -> Result<(), CgroupError> {
        let Some(limit) = limit.filter(|l| *l > 0) else {
            return Ok(());
        };
        let usage = match self.v1_dir("memory") {
            Some(d) => fs::read_u64(d, "memory.usage_in_bytes"),
            None => self
                .v2_dir()
                .and_then(|d| fs::read_u64(d, "memory.current")),
        };
        match usage {
            Some(u) if u > limit as u64 => Err(CgroupError::Invalid(format!(
                "memory limit {limit} is below the current usage {u}"
            ))),
            _ => Ok(()),
        }
    }

    /// The memory controller file the kernel updates on OOM: (dir, is_v1).
    pub fn memory_dir(&self) -> Option<(&Path, bool)> {
        self.v1_dir("memory").map(|d| (d, true)).or_else(|| {
            self.v2_dir()
                .filter(|d| d.join("memory.events").exists())
                .map(|d| (d, false))
        })
    }

    /// Every pid in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let d = self
            .v1_dir("pids")
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.v2_dir())
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()))
            .ok_or_else(|| CgroupError::Invalid("the container has no cgroup".into()))?;
        Ok(fs::read(d, "cgroup.procs")?
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect())
    }

    /// Removes every directory this container created, killing what is still
    /// inside (e.g. after a crash) so the directories can go. A systemd scope
    /// is stopped (once emptied, so systemd has nothing to wait for) first.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if self.is_frozen() {
            let _ = self.set_frozen(false);
        }
        let stopped = match &self.systemd {
            Some(scope) => {
                for d in &self.dirs {
                    kill_procs(&d.path);
                }
                scope.stop().map_err(|source| CgroupError::Systemd {
                    unit: scope.unit.clone(),
                    source,
                })
            }
            None => Ok(()),
        };
        for d in &self.dirs {
            remove_dir(&d.path)?;
            let mut p = d.path.as_path();
            while p != d.top {
                let Some(parent) = p.parent() else { break };
                p = parent;
                if let Err(e) = std::fs::remove_dir(p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        break; // in use by someone else: leave it
                    }
                }
            }
        }
        stopped
    }
}

fn is_permission_denied(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

fn open_dir(path: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(CgroupError::io(path))
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

/// How many processes `dir` and the cgroups below it hold.
fn procs_below(dir: &Path) -> usize {
    let own = fs::read(dir, "cgroup.procs")
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let below: usize = sub_cgroups(dir).iter().map(|d| procs_below(d)).sum();
    own + below
}

/// rmdir of a cgroup; EBUSY means processes or cgroups are left in it: the
/// ones the container made below its own are removed (deepest first, as
/// runc does) and the processes killed, then it is tried again.
fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                for child in sub_cgroups(path) {
                    remove_dir(&child)?;
                }
                kill_procs(path);
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(CgroupError::io(path)(e)),
        }
    }
}

/// The cgroups directly below `path`.
fn sub_cgroups(path: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// SIGKILLs every process in the cgroup at `path` (if it still exists).
fn kill_procs(path: &Path) {
    for pid in fs::read(path, "cgroup.procs")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Enables on every ancestor of `dir` the controllers it offers, so `dir`
/// gets their files (runc does the same). Failures only cost those files.
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let ancestors: Vec<&Path> = dir.ancestors().skip(1).collect();
    for a in ancestors.into_iter().rev() {
        let Ok(available) = fs::read(a, "cgroup.controllers") else {
            continue;
        };
        let enabled = fs::read(a, "cgroup.subtree_control").unwrap_or_default();
        for c in available.split_whitespace() {
            if !enabled.split_whitespace().any(|e| e == c) {
                if let Err(e) = fs::write(a, "cgroup.subtree_control", format!("+{c}")) {
                    tracing::debug!("{e}");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> Hierarchies {
        let mut h = Hierarchies::parse(
            "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        h.v2.as_mut().unwrap().controllers = vec!["hugetlb".into()];
        h
    }

    #[test]
    fn absent_path_is_the_id_under_our_own_cgroup() {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let cg = Cgroup::resolve(&hybrid(), None, "c1", false).unwrap();
        let mem = own_cgroup(&own, &["memory".into()]).unwrap_or("/");
        let want = under(
            &under(Path::new("/sys/fs/cgroup/memory"), Path::new(mem)),
            Path::new("c1"),
        );
        assert_eq!(cg.dirs[0].path, want);
        assert!(cg.dirs[1].path.ends_with("c1"));
    }

    #[test]
    fn absolute_and_bad_paths() {
        let cg = Cgroup::resolve(&hybrid(), Some("/a/b"), "c1", false).unwrap();
        assert_eq!(cg.dirs[0].path, Path::new("/sys/fs/cgroup/memory/a/b"));
        assert!(matches!(
            Cgroup::resolve(&hybrid(), Some("/a/../../x"), "c", false),
            Err(CgroupError::Invalid(_))
        ));
        assert!(matches!(
            Cgroup::resolve(&hybrid(), Some("system.slice:hull:c"), "c", false),
            Err(CgroupError::SystemdNotRunning(_))
        ));
    }

    #[test]
    fn thawing_a_removed_cgroup_is_done_freezing_it_is_an_error() {
        let gone = PathBuf::from("/nonexistent/hull-test-removed-scope");
        for controllers in [vec![], vec!["freezer".to_owned()]] {
            let cg = Cgroup {
                dirs: vec![CgroupDir {
                    controllers,
                    path: gone.clone(),
                    top: gone.clone(),
                }],
                systemd: None,
            };
            cg.set_frozen(false).unwrap();
            assert!(cg.set_frozen(true).unwrap_err().is_not_found());
        }
    }
}
