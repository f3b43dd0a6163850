//! `linux.sysctl`: which keys a container may set, and setting them.
//!
//! Most of `/proc/sys` is global to the host: a key written from the init
//! changes it for everyone. Only keys of a namespace the container has of
//! its own are accepted (the rules and error texts of runc 1.1.5), checked
//! before anything of the container is made.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::procfs::{ProcRoot, ProcfsError};
use crate::spec::SpecError;

/// The IPC namespace's keys besides `fs.mqueue.*`.
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Refuses every `linux.sysctl` key that would reach beyond the container's
/// own namespaces, or that is not a plain dotted name.
pub(crate) fn check(spec: &Spec) -> Result<(), SpecError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let Some(sysctl) = linux.sysctl().as_ref().filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let has = |t| namespaces.iter().any(|ns| ns.typ() == t);
    let mut own_net = None;
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let refuse = |why: &str| Err(SpecError::Invalid(format!("sysctl {key:?} {why}")));
        if key.split('.').any(|part| part.is_empty() || part == "..") || key.contains('/') {
            return refuse("is not a valid key (dot-separated names only)");
        }
        if IPC_KEYS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if !has(LinuxNamespaceType::Ipc) {
                return refuse("is not allowed in the hosts ipc namespace");
            }
            continue;
        }
        if key.starts_with("net.") {
            let own = match own_net {
                Some(own) => own,
                None => *own_net.insert(has_own_network(spec)?),
            };
            if !own {
                return refuse("not allowed in host network namespace");
            }
            continue;
        }
        if has(LinuxNamespaceType::Uts) {
            match key.as_str() {
                "kernel.domainname" => continue,
                "kernel.hostname" => {
                    return refuse("is not allowed as it conflicts with the OCI \"hostname\" field")
                }
                _ => {}
            }
        }
        return refuse("is not in a separate kernel namespace");
    }
    Ok(())
}

/// Whether the container gets a network namespace other than the runtime's:
/// a new one, or one given by a path that is not the runtime's own.
fn has_own_network(spec: &Spec) -> Result<bool, SpecError> {
    let net = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|n| n.iter().find(|ns| ns.typ() == LinuxNamespaceType::Network));
    let Some(net) = net else {
        return Ok(false);
    };
    let Some(path) = net.path() else {
        return Ok(true);
    };
    let id = |p: &Path| {
        nix::sys::stat::stat(p)
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(|e| SpecError::Invalid(format!("invalid netns path {}: {e}", p.display())))
    };
    Ok(id(path)? != id(Path::new("/proc/self/ns/net"))?)
}

/// Writes every `linux.sysctl` value through the container's procfs (keys
/// were checked by [`check`]).
pub(crate) fn apply(spec: &Spec) -> Result<(), ProcfsError> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc = ProcRoot::open()?;
    let mut entries: Vec<_> = sysctl.iter().collect();
    entries.sort();
    for (key, value) in entries {
        let path = PathBuf::from("sys").join(key.replace('.', "/"));
        proc.write(&path, value.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(namespaces: &str, key: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
            "linux":{{"namespaces":[{{"type":"mount"}}{namespaces}],
                      "sysctl":{{"{key}":"1"}}}}}}"#
        ))
        .unwrap()
    }

    fn refused(namespaces: &str, key: &str) -> String {
        match check(&spec(namespaces, key)) {
            Err(SpecError::Invalid(msg)) => msg,
            other => panic!("{key} with [{namespaces}] accepted: {other:?}"),
        }
    }

    #[test]
    fn namespaced_keys_need_their_namespace() {
        let ipc = r#",{"type":"ipc"}"#;
        let net = r#",{"type":"network"}"#;
        let uts = r#",{"type":"uts"}"#;
        check(&spec(ipc, "kernel.shmmax")).unwrap();
        check(&spec(ipc, "fs.mqueue.msg_max")).unwrap();
        check(&spec(net, "net.ipv4.ip_forward")).unwrap();
        check(&spec(uts, "kernel.domainname")).unwrap();
        assert!(refused("", "kernel.shmmax").contains("hosts ipc namespace"));
        assert!(refused("", "net.ipv4.ip_forward").contains("host network namespace"));
        assert!(refused("", "kernel.domainname").contains("not in a separate kernel namespace"));
        assert!(refused(uts, "kernel.hostname").contains("conflicts"));
        let all = format!("{ipc}{net}{uts}");
        assert!(refused(&all, "kernel.printk_ratelimit_burst").contains("separate kernel"));
    }

    #[test]
    fn the_runtimes_own_netns_by_path_is_the_hosts() {
        let own = r#",{"type":"network","path":"/proc/self/ns/net"}"#;
        assert!(refused(own, "net.ipv4.ip_forward").contains("host network namespace"));
        let missing = r#",{"type":"network","path":"/nonexistent-netns"}"#;
        assert!(refused(missing, "net.ipv4.ip_forward").contains("invalid netns path"));
    }

    #[test]
    fn keys_that_are_not_dotted_names_are_refused() {
        let ipc = r#",{"type":"ipc"}"#;
        for key in [
            "kernel/shmmax",
            "kernel..shmmax",
            "fs.mqueue...",
            ".kernel.sem",
        ] {
            assert!(refused(ipc, key).contains("not a valid key"), "{key}");
        }
    }
}
