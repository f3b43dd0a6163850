//! Namespaces the container joined by path (`linux.namespaces[].path`)
//! belong to someone else: CRIU must neither dump nor recreate them. A
//! joined network or pid namespace is dumped as external under a fixed
//! key and handed back on restore as an open fd under that key (runc's
//! scheme, so images move between the runtimes); the others are joined
//! again by path. Namespaces the container made itself are CRIU's to dump
//! and rebuild, the network namespace included: its links, addresses and
//! routes come back as they were.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::rpc::proto::{InheritFd, JoinNamespace};
use super::CheckpointError;

/// CRIU's name of a namespace type.
fn criu_name(t: LinuxNamespaceType) -> Option<&'static str> {
    Some(match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Time => "time",
        LinuxNamespaceType::Cgroup => return None,
    })
}

/// The key an external namespace is known by (runc's: `extRootNetNS`).
fn key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "extRootNetNS",
        _ => "extRootPidNS",
    }
}

/// The namespaces of `spec` given by path.
fn joined(spec: &Spec) -> impl Iterator<Item = (LinuxNamespaceType, std::path::PathBuf)> + '_ {
    spec.linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten())
        .filter_map(|n| n.path().clone().map(|p| (n.typ(), p)))
}

/// `--external net[ino]:extRootNetNS` (and pid) for joined namespaces.
pub(crate) fn external_for_dump(spec: &Spec) -> Result<Vec<String>, CheckpointError> {
    joined(spec)
        .filter(|(t, _)| matches!(t, LinuxNamespaceType::Network | LinuxNamespaceType::Pid))
        .map(|(t, path)| {
            let ino = std::fs::metadata(&path)
                .map_err(CheckpointError::io(&path))?
                .ino();
            Ok(format!(
                "{}[{ino}]:{}",
                criu_name(t).unwrap_or("net"),
                key(t)
            ))
        })
        .collect()
}

/// What restore tells CRIU about joined namespaces.
#[derive(Default)]
pub(crate) struct ForRestore {
    /// The keys of `fds`.
    pub inherit: Vec<InheritFd>,
    /// Open namespaces, to be passed to CRIU at `first_fd`, ...
    pub fds: Vec<OwnedFd>,
    /// Namespaces to join by path.
    pub join: Vec<JoinNamespace>,
}

/// The joined namespaces of `spec` for a restore whose CRIU gets the
/// namespace fds from `first_fd` on.
pub(crate) fn for_restore(spec: &Spec, first_fd: i32) -> Result<ForRestore, CheckpointError> {
    let ForRestore {
        mut inherit,
        mut fds,
        mut join,
    } = ForRestore::default();
    for (t, path) in joined(spec) {
        match t {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let f = std::fs::File::open(&path).map_err(CheckpointError::io(&path))?;
                inherit.push(InheritFd {
                    key: key(t).into(),
                    fd: first_fd + fds.len() as i32,
                });
                fds.push(OwnedFd::from(f));
            }
            _ => {
                let Some(ns) = criu_name(t) else {
                    return Err(CheckpointError::Unsupported {
                        flag: "a cgroup namespace path",
                        why: "CRIU cannot join an existing cgroup namespace".into(),
                    });
                };
                join.push(JoinNamespace {
                    ns: ns.into(),
                    ns_file: path.to_string_lossy().into_owned(),
                    extra_opt: None,
                });
            }
        }
    }
    Ok(ForRestore { inherit, fds, join })
}
