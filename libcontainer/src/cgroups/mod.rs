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
mod dirs;
mod error;
mod fs;
mod hierarchy;
mod limits;
pub mod oom;
mod placement;
mod resources;
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
use dirs::{enable_controllers, kill_procs, open_dir, procs_below, remove_dir};
use error::is_permission_denied;
pub use error::CgroupError;
use hierarchy::own_cgroup;
use hierarchy::under;
pub use hierarchy::{Hierarchies, Layout};
pub use limits::asks_for_limits;
pub(crate) use placement::Placement;
pub use resources::check_unified;

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
