//! Bind mounts the runtime makes for the init, as detached trees it hands
//! over to be attached in the order of `mounts`: idmapped ones (the `idmap`
//! and `ridmap` options), because `MOUNT_ATTR_IDMAP` needs CAP_SYS_ADMIN
//! over the source's filesystem, which the init of a user namespace lacks;
//! and, in a user namespace, every bind, because the container's root may
//! not reach a source the runtime can (see `rootfs::binds_made_by_runtime`).
//!
//! The ids are mapped through the mount's own `uidMappings` and
//! `gidMappings` when it has them (in a user namespace made for the purpose),
//! else through the container's user namespace.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::MsFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{Mount, Spec};

use super::error::ProcessError;
use super::nsfile::namespace_of;
use super::userns::{map_text, user_namespace_with};
use crate::mount_api;
use crate::rootfs::{bind_source, MountOptions, RootfsError};
use crate::spec::SpecError;

/// The trees of `spec`'s mounts the runtime makes, in order, for the init
/// `init` (whose user namespace, if it has one, is ready).
/// With `all_binds` every bind mount's tree is made, not only idmapped ones.
pub(crate) fn trees(
    spec: &Spec,
    bundle: &Path,
    init: Pid,
    all_binds: bool,
) -> Result<Vec<OwnedFd>, ProcessError> {
    let mut trees = Vec::new();
    let mut container_userns = None;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let is_bind = opts.bind || m.typ().as_deref() == Some("bind");
        let Some(recursive) = opts.idmap else {
            if all_binds && is_bind {
                trees.push(plain_tree(m, bundle, &opts)?);
            }
            continue;
        };
        let failed = |reason: String| ProcessError::Mount {
            kind: "idmapped",
            destination: m.destination().clone(),
            reason,
        };
        let invalid = |what: &str| -> ProcessError {
            SpecError::Invalid(format!(
                "idmapped mount on {}: {what}",
                m.destination().display()
            ))
            .into()
        };
        if !is_bind {
            return Err(invalid("idmap is for bind mounts only"));
        }
        let own;
        let userns = match own_maps(m).map_err(invalid)? {
            Some((uid_map, gid_map)) => {
                own = user_namespace_with(&uid_map, &gid_map)?;
                &own
            }
            None => {
                match &mut container_userns {
                    Some(fd) => &*fd,
                    slot => {
                        let (_, fd) = namespace_of(init, "user", libc::CLONE_NEWUSER)?.ok_or_else(
                        || invalid("needs a user namespace or uidMappings and gidMappings of its own"),
                    )?;
                        slot.insert(fd)
                    }
                }
            }
        };
        let source = bind_source(m, bundle).map_err(|e| source_failed(e, &failed))?;
        let tree = mount_api::clone_path(&source, opts.recursive)
            .and_then(|tree| mount_api::set_idmap(&tree, userns, recursive).map(|()| tree))
            .and_then(|tree| {
                let flags = opts.flags - MsFlags::MS_REMOUNT;
                mount_api::set_flags(&tree, flags, opts.cleared, false).map(|()| tree)
            })
            .map_err(|e| failed(format!("{}: {e}", source.display())))?;
        trees.push(tree);
    }
    Ok(trees)
}

/// A bind mount's tree with its flags, opened with the runtime's rights.
fn plain_tree(m: &Mount, bundle: &Path, opts: &MountOptions) -> Result<OwnedFd, ProcessError> {
    let failed = |reason: String| ProcessError::Mount {
        kind: "bind",
        destination: m.destination().clone(),
        reason,
    };
    let source = bind_source(m, bundle).map_err(|e| source_failed(e, &failed))?;
    mount_api::clone_path(&source, opts.recursive)
        .and_then(|tree| {
            let flags = opts.flags - MsFlags::MS_REMOUNT;
            mount_api::set_flags(&tree, flags, opts.cleared, false).map(|()| tree)
        })
        .map_err(|e| failed(format!("{}: {e}", source.display())))
}

/// `bind_source` failed: a mount with no source is a configuration error.
fn source_failed(e: RootfsError, failed: &impl Fn(String) -> ProcessError) -> ProcessError {
    match e {
        RootfsError::Config(text) => SpecError::Invalid(text).into(),
        e => failed(e.to_string()),
    }
}

/// The mount's own `uid_map` and `gid_map` texts, if it has mappings.
fn own_maps(m: &Mount) -> Result<Option<(String, String)>, &'static str> {
    match (m.uid_mappings().as_deref(), m.gid_mappings().as_deref()) {
        (None, None) => Ok(None),
        (Some(uid), Some(gid)) if !uid.is_empty() && !gid.is_empty() => {
            Ok(Some((map_text(uid), map_text(gid))))
        }
        _ => Err("uidMappings and gidMappings go together"),
    }
}
