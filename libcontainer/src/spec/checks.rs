//! The checks of a config's parts that would otherwise fail late (in the
//! init, after namespaces and cgroups were made) or not at all: each says
//! which key and value are wrong, before anything is created.

use std::collections::HashSet;

use oci_spec::runtime::{
    Hook, Hooks, Linux, LinuxIdMapping, LinuxNamespaceType, Mount, Process, Spec,
};

use super::SpecError;

/// The longest string execve(2) takes as one argument or environment
/// entry (MAX_ARG_STRLEN: 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The longest hostname sethostname(2) takes (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;

fn invalid<T>(msg: String) -> Result<T, SpecError> {
    Err(SpecError::Invalid(msg))
}

/// A value for an error message: in full if short, else its start and length.
fn shown(value: &str) -> String {
    match value.char_indices().nth(40) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &value[..end], value.len()),
    }
}

/// Arguments, environment, rlimits and the OOM score of a process.
pub(super) fn process(process: &Process) -> Result<(), SpecError> {
    for arg in process.args().iter().flatten() {
        if arg.len() > MAX_ARG_STRLEN {
            return invalid(format!(
                "process.args entry {} is too long (execve takes {MAX_ARG_STRLEN} bytes at most)",
                shown(arg)
            ));
        }
    }
    if let Some(arg) = process.args().iter().flatten().find(|a| a.contains('\0')) {
        return invalid(format!("process.args entry {} contains NUL", shown(arg)));
    }
    for entry in process.env().iter().flatten() {
        match entry.split_once('=') {
            None => return invalid(format!("process.env entry {} has no '='", shown(entry))),
            Some(("", _)) => {
                return invalid(format!("process.env entry {} has no name", shown(entry)))
            }
            _ if entry.contains('\0') => {
                return invalid(format!("process.env entry {} contains NUL", shown(entry)))
            }
            _ => {}
        }
        if entry.len() > MAX_ARG_STRLEN {
            return invalid(format!(
                "process.env entry {} is too long (execve takes {MAX_ARG_STRLEN} bytes at most)",
                shown(entry)
            ));
        }
    }
    let mut seen = HashSet::new();
    for r in process.rlimits().iter().flatten() {
        let name = r.typ().to_string();
        if !seen.insert(name.clone()) {
            return invalid(format!("process.rlimits: {name} is listed twice"));
        }
        if r.soft() > r.hard() {
            return invalid(format!(
                "process.rlimits: {name} soft limit {} is above its hard limit {}",
                r.soft(),
                r.hard()
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return invalid(format!("process.oomScoreAdj {adj} is outside -1000..1000"));
        }
    }
    Ok(())
}

/// The hostname, and the UTS namespace it needs.
pub(super) fn hostname(spec: &Spec, linux: &Linux) -> Result<(), SpecError> {
    let Some(name) = spec.hostname().as_deref().filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    if name.len() > HOST_NAME_MAX {
        return invalid(format!(
            "hostname {} is longer than {HOST_NAME_MAX} bytes",
            shown(name)
        ));
    }
    // New or joined (a pod's containers join their pause container's), as runc.
    let uts = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::Uts);
    if !uts {
        return invalid("a hostname needs a UTS namespace in linux.namespaces".into());
    }
    Ok(())
}

/// Namespace paths are absolute; a new user namespace has both id maps,
/// and maps come only with a user namespace (one joined by path ignores
/// them: a pod's containers pass the maps along).
pub(super) fn namespaces(linux: &Linux) -> Result<(), SpecError> {
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for ns in namespaces {
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return invalid(format!(
                    "namespace {:?} path {} is not absolute",
                    ns.typ(),
                    path.display()
                ));
            }
        }
    }
    // Some(true): a new one; Some(false): one joined by path.
    let userns = namespaces
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::User)
        .map(|ns| ns.path().is_none());
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    if userns == Some(true) && (uid.is_empty() || gid.is_empty()) {
        return invalid(
            "a new user namespace needs both linux.uidMappings and linux.gidMappings".into(),
        );
    }
    if userns.is_none() && !(uid.is_empty() && gid.is_empty()) {
        return invalid(
            "linux.uidMappings and linux.gidMappings need a new user namespace in linux.namespaces"
                .into(),
        );
    }
    id_maps("linux.uidMappings", uid)?;
    id_maps("linux.gidMappings", gid)
}

/// Each range is non-empty and within the 32-bit id space on both sides.
fn id_maps(key: &str, maps: &[LinuxIdMapping]) -> Result<(), SpecError> {
    for m in maps {
        if m.size() == 0 {
            return invalid(format!(
                "{key}: the range at containerID {} has size 0",
                m.container_id()
            ));
        }
        for (side, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if u64::from(start) + u64::from(m.size()) > 1 << 32 {
                return invalid(format!(
                    "{key}: {side} {start} + size {} is beyond the last id 4294967295",
                    m.size()
                ));
            }
        }
    }
    Ok(())
}

/// A mount either names a filesystem type or is a bind mount.
pub(super) fn mount(m: &Mount) -> Result<(), SpecError> {
    let has_type = m.typ().as_deref().is_some_and(|t| !t.is_empty());
    let bind = m
        .options()
        .iter()
        .flatten()
        .any(|o| o == "bind" || o == "rbind");
    if !has_type && !bind {
        return invalid(format!(
            "mount on {} has no type and is not a bind mount",
            m.destination().display()
        ));
    }
    Ok(())
}

/// `rootfsPropagation`, device paths and sysctl keys.
pub(super) fn linux(linux: &Linux) -> Result<(), SpecError> {
    if let Some(p) = linux.rootfs_propagation() {
        if crate::rootfs::rootfs_propagation(p).is_none() {
            return invalid(format!("unknown rootfsPropagation {}", shown(p)));
        }
    }
    for d in linux.devices().iter().flatten() {
        if !d.path().is_absolute() {
            return invalid(format!(
                "device path {} is not absolute",
                d.path().display()
            ));
        }
    }
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        if !sysctl_key_is_valid(key) {
            return invalid(format!("invalid sysctl key {}", shown(key)));
        }
    }
    Ok(())
}

/// A sysctl key names a file under /proc/sys: dot-separated non-empty
/// parts, none of them `..`, and no `/` (which would let the key walk
/// out of /proc/sys once dots become slashes).
fn sysctl_key_is_valid(key: &str) -> bool {
    !key.contains('/') && !key.contains('\0') && key.split('.').all(|p| !p.is_empty() && p != "..")
}

/// Hook paths are absolute and timeouts positive, as the runtime spec
/// requires.
pub(super) fn hooks(hooks: &Hooks) -> Result<(), SpecError> {
    #[allow(deprecated)]
    let stages: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (stage, list) in stages {
        for h in list.iter().flatten() {
            if !h.path().is_absolute() {
                return invalid(format!(
                    "{stage} hook path {} is not absolute",
                    h.path().display()
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return invalid(format!(
                    "{stage} hook {}: timeout must be greater than zero",
                    h.path().display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;

    /// The fixture-like spec with `edit` applied, checked.
    fn check(edit: impl FnOnce(&mut serde_json::Value)) -> Result<(), SpecError> {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"]},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}]}
        });
        edit(&mut v);
        let spec: Spec = serde_json::from_value(v).unwrap();
        super::super::validate(&spec)
    }

    fn refused(edit: impl FnOnce(&mut serde_json::Value), needle: &str) {
        match check(edit) {
            Err(SpecError::Invalid(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            other => panic!("{other:?}, expected an error with {needle:?}"),
        }
    }

    #[test]
    fn accepts_the_base() {
        check(|_| {}).unwrap();
    }

    #[test]
    fn refuses_bad_processes() {
        refused(
            |v| v["process"]["env"] = serde_json::json!(["X"]),
            "has no '='",
        );
        refused(
            |v| v["process"]["env"] = serde_json::json!(["=1"]),
            "has no name",
        );
        refused(|v| v["process"]["env"] = serde_json::json!(["A=\0"]), "NUL");
        refused(
            |v| v["process"]["args"] = serde_json::json!(["a\0b"]),
            "NUL",
        );
        refused(
            |v| {
                v["process"]["rlimits"] =
                    serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}])
            },
            "RLIMIT_NOFILE soft limit 2 is above its hard limit 1",
        );
        refused(
            |v| v["process"]["oomScoreAdj"] = serde_json::json!(-1001),
            "-1001",
        );
    }

    #[test]
    fn refuses_bad_linux_parts() {
        refused(
            |v| v["hostname"] = serde_json::json!("h".repeat(65)),
            "longer than 64",
        );
        refused(
            |v| {
                v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
                v["hostname"] = serde_json::json!("h");
            },
            "UTS namespace",
        );
        refused(
            |v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"type": "user"}));
                v["linux"]["uidMappings"] =
                    serde_json::json!([{"containerID": 1, "hostID": 4294967295u32, "size": 2}]);
                v["linux"]["gidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 0, "size": 1}]);
            },
            "hostID 4294967295 + size 2",
        );
        refused(
            |v| v["mounts"] = serde_json::json!([{"destination": "/m", "source": "x"}]),
            "no type",
        );
        refused(
            |v| v["linux"]["rootfsPropagation"] = serde_json::json!("x"),
            "rootfsPropagation",
        );
        refused(
            |v| v["hooks"] = serde_json::json!({"poststop": [{"path": "/x", "timeout": -1}]}),
            "timeout",
        );
        refused(
            |v| v["linux"]["sysctl"] = serde_json::json!({"a..b": "1"}),
            "sysctl",
        );
    }

    #[test]
    fn sysctl_keys() {
        for good in [
            "net.ipv4.ip_forward",
            "kernel.msgmax",
            "net.ipv4.conf.eth0.rp_filter",
        ] {
            assert!(sysctl_key_is_valid(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "net..ipv4",
            "net.ipv4.",
            ".net",
            "net/ipv4",
            "net.ipv4...kernel",
            "a\0b",
        ] {
            assert!(!sysctl_key_is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn long_values_are_shown_cut() {
        let long = "é".repeat(100_000);
        let s = shown(&long);
        assert!(s.len() < 200, "{s}");
        assert!(s.contains("200000 bytes"), "{s}");
    }
}
