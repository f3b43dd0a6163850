//! The container's external mounts: those whose source lies outside the
//! container (bind mounts from the host, cgroup v1 directories bound from
//! the host's hierarchies, device nodes bound from the host's `/dev`).
//! CRIU cannot dump what is behind them, so the dump names each by its
//! mount point, and the restore maps each mount point to the source the
//! new container gets (the bundle's bind source, the new cgroup directory,
//! the host's node). Masked paths are bound from the container's own
//! `/dev/null` and the rootfs is CRIU's `root`: neither is external.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::rpc::proto::ExtMountMap;
use super::CheckpointError;
use crate::cgroups::Cgroup;

/// One external mount, as the checkpoint records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct External {
    /// Mount point inside the container.
    pub dest: String,
    pub fstype: String,
    /// The superblock options (a cgroup v1 hierarchy's controllers).
    pub super_options: Vec<String>,
}

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountInfo {
    id: u32,
    dev: String,
    root: String,
    mount_point: String,
    fstype: String,
    super_options: Vec<String>,
}

fn parse(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let f: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    Some(MountInfo {
        id: f.first()?.parse().ok()?,
        dev: (*f.get(2)?).to_owned(),
        root: unescape(f.get(3)?),
        mount_point: unescape(f.get(4)?),
        fstype: (*r.first()?).to_owned(),
        super_options: r.get(2)?.split(',').map(String::from).collect(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount table of `pid`, paths as seen from its root.
fn table(pid: i32) -> Result<Vec<MountInfo>, CheckpointError> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = crate::pseudo_file::read_to_string(&path).map_err(CheckpointError::io(&path))?;
    Ok(text.lines().filter_map(parse).collect())
}

/// The ids of the mounts `pid` sees (a file on any other is outside).
pub(crate) fn mount_ids(pid: i32) -> Result<Vec<u32>, CheckpointError> {
    Ok(table(pid)?.into_iter().map(|m| m.id).collect())
}

/// Whether `inner` lies at or below `outer` (both absolute).
fn within(inner: &str, outer: &str) -> bool {
    outer == "/"
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The external mounts of the container whose init is `pid`: a mount is
/// external when the spec binds it, or when no other mount of the
/// container shows the filesystem part it shows (CRIU would then find no
/// "root" for it and refuse the dump).
pub(crate) fn externals(pid: i32, spec: &Spec) -> Result<Vec<External>, CheckpointError> {
    let all = table(pid)?;
    let binds: Vec<String> = spec_binds(spec).map(|(dest, _)| dest).collect();
    Ok(external_of(&all, &binds)
        .map(|m| External {
            dest: m.mount_point.clone(),
            fstype: m.fstype.clone(),
            super_options: m.super_options.clone(),
        })
        .collect())
}

/// The mounts of `all` that are external, `binds` being the spec's bind
/// mount points.
fn external_of<'a>(
    all: &'a [MountInfo],
    binds: &'a [String],
) -> impl Iterator<Item = &'a MountInfo> + 'a {
    all.iter().filter(move |m| {
        m.mount_point != "/"
            && (binds.contains(&m.mount_point)
                || (m.root != "/"
                    && !all
                        .iter()
                        .any(|o| o.id != m.id && o.dev == m.dev && within(&m.root, &o.root))))
    })
}

/// The spec's bind mounts: (destination, source as given).
fn spec_binds(spec: &Spec) -> impl Iterator<Item = (String, Option<PathBuf>)> + '_ {
    spec.mounts().iter().flatten().filter_map(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        bind.then(|| {
            (
                m.destination().to_string_lossy().into_owned(),
                m.source().clone(),
            )
        })
    })
}

/// The dump's map: each external mount stays what it is called.
pub(crate) fn for_dump(externals: &[External]) -> Vec<ExtMountMap> {
    externals
        .iter()
        .map(|e| ExtMountMap {
            key: e.dest.clone(),
            val: e.dest.clone(),
        })
        .collect()
}

/// The restore's map: each external mount's source for the new container
/// of `bundle` (its spec) and `cgroup`.
pub(crate) fn for_restore(
    externals: &[External],
    spec: &Spec,
    bundle: &Path,
    cgroup: Option<&Cgroup>,
) -> Result<Vec<ExtMountMap>, CheckpointError> {
    let binds: Vec<(String, Option<PathBuf>)> = spec_binds(spec).collect();
    externals
        .iter()
        .map(|e| {
            let source = if let Some((_, src)) = binds.iter().find(|(d, _)| *d == e.dest) {
                src.as_ref().map(|s| bundle.join(s))
            } else if e.fstype == "cgroup" || e.fstype == "cgroup2" {
                cgroup.and_then(|c| cgroup_source(e, c))
            } else if e.dest.starts_with("/dev/") && Path::new(&e.dest).exists() {
                Some(PathBuf::from(&e.dest))
            } else {
                None
            };
            let source = source.ok_or_else(|| CheckpointError::UnknownMount(e.dest.clone()))?;
            Ok(ExtMountMap {
                key: e.dest.clone(),
                val: source.to_string_lossy().into_owned(),
            })
        })
        .collect()
}

/// The new cgroup directory of the hierarchy a cgroup mount showed.
fn cgroup_source(e: &External, cgroup: &Cgroup) -> Option<PathBuf> {
    let dir = if e.fstype == "cgroup2" {
        cgroup.dirs.iter().find(|d| d.is_v2())
    } else {
        cgroup
            .dirs
            .iter()
            .find(|d| !d.is_v2() && d.controllers.iter().all(|c| e.super_options.contains(c)))
    };
    dir.map(|d| d.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
70 47 254:0 /b/rootfs / ro,relatime - ext4 /dev/vda rw
71 70 0:41 / /proc rw,relatime - proc proc rw
72 70 0:42 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755
53 71 0:42 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,mode=755
51 71 0:41 /sys /proc/sys ro,relatime - proc proc rw
78 77 0:29 /c1 /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu
90 70 254:0 /data/in\\040dir /mnt/data rw - ext4 /dev/vda rw
91 70 254:0 /b/rootfs/opt /opt2 rw - ext4 /dev/vda rw";

    #[test]
    fn parses_mountinfo_lines() {
        let m = parse(INFO.lines().nth(5).unwrap()).unwrap();
        assert_eq!(m.mount_point, "/sys/fs/cgroup/cpu");
        assert_eq!(m.root, "/c1");
        assert_eq!(m.fstype, "cgroup");
        assert_eq!(m.super_options, vec!["rw", "cpu"]);
        assert_eq!(
            parse(INFO.lines().nth(6).unwrap()).unwrap().root,
            "/data/in dir"
        );
    }

    #[test]
    fn external_are_mounts_no_other_mount_shows() {
        let all: Vec<MountInfo> = INFO.lines().filter_map(parse).collect();
        let external: Vec<&str> = external_of(&all, &[])
            .map(|m| m.mount_point.as_str())
            .collect();
        // Masks bound from the container's /dev and /proc binds are its own;
        // a bind of the rootfs' own subtree too.
        assert_eq!(external, vec!["/sys/fs/cgroup/cpu", "/mnt/data"]);
        // The spec's binds are external whatever they show.
        let binds = ["/opt2".to_string()];
        assert_eq!(external_of(&all, &binds).count(), 3);
    }

    #[test]
    fn within_is_by_path_component() {
        assert!(within("/a/b", "/a"));
        assert!(within("/a", "/a"));
        assert!(within("/x", "/"));
        assert!(!within("/ab", "/a"));
    }
}
