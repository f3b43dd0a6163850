//! Rootless: the runtime run without privileges over the host, as by an
//! unprivileged user. It can then only map its own uid and gid into a new
//! user namespace, and usually cannot make cgroups.

use nix::unistd::{getegid, geteuid};
use oci_spec::runtime::LinuxIdMapping;

/// The id maps of the new user namespace that an unprivileged caller cannot
/// write itself (it may map only its own uid and gid, once each).
#[derive(Debug, thiserror::Error)]
#[error(
    "rootless: {kind} maps {maps:?} need privileges; an unprivileged user may only map its \
     own {kind} {own} (size 1), and hull does not call newuidmap/newgidmap"
)]
pub struct UnmappableIds {
    kind: &'static str,
    maps: String,
    own: u32,
}

/// Whether the effective uid is not root: the cheap test, taken on every start.
pub fn euid_is_unprivileged() -> bool {
    !geteuid().is_root()
}

/// Whether the runtime lacks privileges over the host: it is not root, or it
/// is root of a user namespace other than the initial one, or has no
/// CAP_SYS_ADMIN. Reads `/proc` when the euid is 0: for error paths.
pub fn is_rootless() -> bool {
    euid_is_unprivileged() || uid_map_is_identity() != Some(true) || !has_sys_admin()
}

/// Whether the runtime runs as root of a user namespace other than the
/// initial one, as under rootless podman: `/proc/self/uid_map` is readable
/// and is not the identity map (runc's `userns.RunningInUserNS`).
pub fn in_child_user_namespace() -> bool {
    uid_map_is_identity() == Some(false)
}

/// Whether `/proc/self/uid_map` maps every id onto itself, as only the
/// initial user namespace does; `None` if it cannot be read.
fn uid_map_is_identity() -> Option<bool> {
    let map = crate::pseudo_file::read_to_string("/proc/self/uid_map").ok()?;
    Some(map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

fn has_sys_admin() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false)
}

/// Checks that an unprivileged caller may write these maps itself: one
/// range of size 1 onto its own effective uid (`uid`) or gid.
pub(crate) fn check_own_ids(
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<(), UnmappableIds> {
    let check = |kind, maps: &[LinuxIdMapping], own: u32| match maps {
        [m] if m.host_id() == own && m.size() == 1 => Ok(()),
        _ => Err(UnmappableIds {
            kind,
            maps: maps
                .iter()
                .map(|m| format!("{} {} {}", m.container_id(), m.host_id(), m.size()))
                .collect::<Vec<_>>()
                .join(", "),
            own,
        }),
    };
    check("uid", uid_maps, geteuid().as_raw())?;
    check("gid", gid_maps, getegid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn map(host: u32, size: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(size)
            .build()
            .unwrap()
    }

    #[test]
    fn only_the_callers_own_ids_once_each() {
        let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
        check_own_ids(&[map(uid, 1)], &[map(gid, 1)]).unwrap();
        let wide = check_own_ids(&[map(uid, 65536)], &[map(gid, 1)]).unwrap_err();
        assert!(wide.to_string().contains("uid maps \"0 "), "{wide}");
        assert!(wide.to_string().contains("newuidmap/newgidmap"));
        let other = check_own_ids(&[map(uid, 1)], &[map(gid + 1, 1)]).unwrap_err();
        assert!(
            other.to_string().starts_with("rootless: gid maps"),
            "{other}"
        );
        assert!(check_own_ids(&[map(uid, 1), map(uid, 1)], &[map(gid, 1)]).is_err());
    }
}
