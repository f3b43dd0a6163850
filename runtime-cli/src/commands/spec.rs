//! `hull spec`: runc's default config.json (tab-indented, no trailing newline).

use std::path::Path;

use serde_json::{json, Value};

use crate::{Failure, Outcome};

const DEFAULT_SPEC: &str = include_str!("default-spec.json");

#[inline(never)]
pub fn spec(bundle: &Path, rootless: bool) -> Outcome {
    if !bundle.is_dir() {
        return Err(Failure::new(format!(
            "bundle directory {} does not exist",
            bundle.display()
        )));
    }
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Failure::new("File config.json exists. Remove it first"));
    }
    let mut spec: Value = serde_json::from_str(DEFAULT_SPEC).expect("default spec is valid JSON");
    if rootless {
        make_rootless(&mut spec);
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&spec, &mut ser).map_err(|e| Failure::new(e.to_string()))?;
    std::fs::write(&path, out)
        .map_err(|e| Failure::new(format!("write {}: {e}", path.display())))?;
    Ok(0)
}

/// The changes `runc spec --rootless` makes: map the caller to root in a user
/// namespace, no network namespace, no device cgroup rules, /sys as a bind.
fn make_rootless(spec: &mut Value) {
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let linux = &mut spec["linux"];
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(obj) = linux.as_object_mut() {
        obj.shift_remove("resources");
    }
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({ "type": "user" }));
    }
    for m in spec["mounts"].as_array_mut().into_iter().flatten() {
        if m["type"] == "devpts" {
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| o != "gid=5");
            }
        }
        if m["type"] == "sysfs" {
            *m = json!({
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_as_an_oci_spec() {
        let spec: libcontainer::oci_spec::runtime::Spec =
            serde_json::from_str(DEFAULT_SPEC).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("hull"));
    }

    #[test]
    fn rootless_spec_has_user_namespace_and_no_network() {
        let mut spec: Value = serde_json::from_str(DEFAULT_SPEC).unwrap();
        make_rootless(&mut spec);
        let types: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"user") && !types.contains(&"network"));
        assert!(spec["linux"].get("resources").is_none());
        assert_eq!(spec["linux"]["uidMappings"][0]["size"], 1);
    }
}
