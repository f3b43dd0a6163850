//! The host's cgroup layout: which hierarchies are mounted where.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// The three layouts a host can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a cgroup2 mount (typically `/sys/fs/cgroup/unified`).
    Hybrid,
    /// A single cgroup2 hierarchy.
    Unified,
}

/// A mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// Controllers bound to it (`cpu`, `cpuacct`, or `name=systemd`).
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Mount {
    pub mount_point: PathBuf,
    /// Controllers usable on it (those not bound to a v1 hierarchy).
    pub controllers: Vec<String>,
}

/// All cgroup hierarchies visible to this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    pub v1: Vec<V1Mount>,
    pub v2: Option<V2Mount>,
}

impl Hierarchies {
    /// Reads `/proc/self/mountinfo` and the cgroup2 root's `cgroup.controllers`.
    pub fn detect() -> Result<Self, CgroupError> {
        let info = crate::pseudo_file::read_to_string("/proc/self/mountinfo")
            .map_err(CgroupError::io("/proc/self/mountinfo"))?;
        let mut h = Self::parse(&info);
        if let Some(v2) = &mut h.v2 {
            let path = v2.mount_point.join("cgroup.controllers");
            let text = crate::pseudo_file::read_to_string(&path).map_err(CgroupError::io(&path))?;
            v2.controllers = text.split_whitespace().map(String::from).collect();
        }
        Ok(h)
    }

    /// The hierarchies named in mountinfo text (v2 controllers left empty).
    pub fn parse(mountinfo: &str) -> Self {
        let mut h = Hierarchies {
            v1: Vec::new(),
            v2: None,
        };
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or("");
            let super_opts = right.nth(1).unwrap_or("");
            let mount_point = PathBuf::from(mount_point);
            match fstype {
                "cgroup" => {
                    let controllers: Vec<String> = super_opts
                        .split(',')
                        .filter(|o| is_controller_option(o))
                        .map(String::from)
                        .collect();
                    if !h.v1.iter().any(|m| m.controllers == controllers) {
                        h.v1.push(V1Mount {
                            controllers,
                            mount_point,
                        });
                    }
                }
                "cgroup2" if h.v2.is_none() => {
                    h.v2 = Some(V2Mount {
                        mount_point,
                        controllers: Vec::new(),
                    })
                }
                _ => {}
            }
        }
        h
    }

    pub fn layout(&self) -> Layout {
        match (self.v1.is_empty(), &self.v2) {
            (false, None) => Layout::Legacy,
            (false, Some(_)) => Layout::Hybrid,
            (true, _) => Layout::Unified,
        }
    }

    /// The v1 hierarchy holding `controller`, if any.
    pub fn v1_of(&self, controller: &str) -> Option<&V1Mount> {
        self.v1
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
    }

    /// Whether `controller` is usable on the cgroup2 hierarchy.
    pub fn on_v2(&self, controller: &str) -> bool {
        self.v1_of(controller).is_none()
            && self
                .v2
                .as_ref()
                .is_some_and(|v2| v2.controllers.iter().any(|c| c == controller))
    }
}

fn is_controller_option(o: &str) -> bool {
    !matches!(
        o,
        "rw" | "ro"
            | "xattr"
            | "clone_children"
            | "noprefix"
            | "cpuset_v2_mode"
            | "favordynmods"
            | ""
    ) && !o.starts_with("release_agent=")
}

/// This process's own cgroup in the hierarchy with `controllers` (empty for
/// cgroup2), from `/proc/self/cgroup` text.
pub fn own_cgroup<'a>(proc_cgroup: &'a str, controllers: &[String]) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut a: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
        let mut b: Vec<&str> = controllers.iter().map(String::as_str).collect();
        a.sort_unstable();
        b.sort_unstable();
        (a == b).then_some(path)
    })
}

/// `base` joined with an absolute cgroup path.
pub fn under(base: &Path, cgroup: &Path) -> PathBuf {
    base.join(cgroup.strip_prefix("/").unwrap_or(cgroup))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn detects_the_three_layouts() {
        let h = Hierarchies::parse(HYBRID);
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(
            h.v1_of("cpuacct").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            h.v1_of("name=systemd").unwrap().controllers,
            vec!["name=systemd"]
        );
        let legacy: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(Hierarchies::parse(&legacy).layout(), Layout::Legacy);
        let unified = "31 1 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Hierarchies::parse(unified).layout(), Layout::Unified);
    }

    #[test]
    fn controllers_bound_to_v1_are_not_v2() {
        let mut h = Hierarchies::parse(HYBRID);
        h.v2.as_mut().unwrap().controllers = vec!["hugetlb".into(), "memory".into()];
        assert!(h.on_v2("hugetlb"));
        assert!(!h.on_v2("memory"));
        assert!(!h.on_v2("pids"));
    }

    #[test]
    fn finds_own_cgroup() {
        let pc = "4:memory:/process_api/x\n2:cpu,cpuacct:/a\n0::/u\n";
        assert_eq!(own_cgroup(pc, &["memory".into()]), Some("/process_api/x"));
        assert_eq!(
            own_cgroup(pc, &["cpuacct".into(), "cpu".into()]),
            Some("/a")
        );
        assert_eq!(own_cgroup(pc, &[]), Some("/u"));
    }
}
