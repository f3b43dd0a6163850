//! The processes of a container's own pid namespace, found through `/proc`:
//! what `kill --all` reaches in a container without a cgroup (rootless).

use std::os::unix::fs::MetadataExt;

/// The host pids of the processes in the pid namespace of `init`, none if
/// that is the caller's own namespace (its processes are not the
/// container's). Processes the caller may not inspect are left out.
pub(crate) fn members(init: i32) -> Vec<i32> {
    let ns = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let Some(theirs) = ns(&init.to_string()) else {
        return Vec::new();
    };
    if ns("self") == Some(theirs) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns(&pid.to_string()) == Some(theirs))
        .collect()
}
