//! User namespaces: the id maps of a new one, one made for an idmapped
//! mount, and the intermediate process that clones the init when the
//! user namespace is joined by path or the host's namespaces are (see
//! `namespaces`).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use super::clone;
use super::error::ProcessError;
use super::nsfile::open_fd;
use crate::spec::SpecError;

/// The `uid_map` and `gid_map` texts of `linux.uidMappings` and
/// `linux.gidMappings`, which a new user namespace needs and nothing else takes.
pub(super) fn id_maps(
    spec: &Spec,
    new_userns: bool,
) -> Result<Option<(String, String)>, ProcessError> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    match (new_userns, uid.is_empty(), gid.is_empty()) {
        (true, false, false) => {
            if crate::rootless::euid_is_unprivileged() {
                crate::rootless::check_own_ids(uid, gid)?;
            }
            Ok(Some((map_text(uid), map_text(gid))))
        }
        (true, ..) => Err(SpecError::Invalid(
            "a new user namespace needs both linux.uidMappings and linux.gidMappings".into(),
        )
        .into()),
        (false, true, true) => Ok(None),
        (false, ..) => Err(SpecError::Invalid(
            "linux.uidMappings and linux.gidMappings need a new user namespace in linux.namespaces"
                .into(),
        )
        .into()),
    }
}

/// `maps` as a `uid_map` or `gid_map` file takes them, a line each.
pub(super) fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the `uid_map` and `gid_map` of the new user namespace of `pid`
/// (each in one write, as the kernel requires). Unprivileged, `setgroups`
/// is denied first: the kernel takes a gid map from such a caller only then.
pub(super) fn write_maps(pid: Pid, uid_map: &str, gid_map: &str) -> Result<(), ProcessError> {
    let deny = crate::rootless::euid_is_unprivileged().then_some(("setgroups", "deny"));
    let maps = [("uid_map", uid_map), ("gid_map", gid_map)];
    for (file, text) in deny.into_iter().chain(maps) {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|source| ProcessError::IdMap { path, source })?;
    }
    Ok(())
}

/// A user namespace of its own with these maps, for an idmapped mount: a
/// child makes it and waits until the runtime has opened it (the namespace
/// lives on through the returned fd), then exits.
pub(super) fn user_namespace_with(uid_map: &str, gid_map: &str) -> Result<OwnedFd, ProcessError> {
    let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ProcessError::sys("pipe"))?;
    let write_end = tx.as_raw_fd();
    let holder = clone::clone_into(CloneFlags::CLONE_NEWUSER, None, |_| {
        // Returns once the runtime closes its end: read gives 0 or an error.
        let _ = nix::unistd::close(write_end);
        let _ = nix::unistd::read(rx.as_raw_fd(), &mut [0u8; 1]);
        0
    })?;
    drop(rx);
    let opened = write_maps(holder, uid_map, gid_map).and_then(|()| {
        open_fd(Path::new(&format!("/proc/{holder}/ns/user"))).map_err(ProcessError::sys(
            "open the user namespace of an idmapped mount",
        ))
    });
    drop(tx);
    let _ = waitpid(holder, None);
    opened
}

/// Clones like `namespaces::clone_in`, from an intermediate process that first joins
/// `user`, if given, then the namespaces `early`, so the new namespaces are
/// owned by `user` or by a new user namespace in `flags`. The init is cloned
/// with `CLONE_PARENT`: it is the caller's child. Not into a cgroup: the
/// init enters its cgroups itself.
pub(super) fn clone_from_middle(
    user: Option<BorrowedFd>,
    early: &[(CloneFlags, BorrowedFd)],
    flags: CloneFlags,
    child: impl FnOnce(bool) -> i32,
) -> Result<Pid, ProcessError> {
    let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ProcessError::sys("pipe"))?;
    let pipe = [rx.as_raw_fd(), tx.as_raw_fd()];
    // The init must not hold the pipe: the runtime reads it until the middle
    // process is gone.
    let init = move |into| {
        for fd in pipe {
            let _ = nix::unistd::close(fd);
        }
        child(into)
    };
    let middle = clone::clone_into(CloneFlags::empty(), None, |_| {
        // The pid of the init, or a negative step and the errno it failed with.
        let joined = user.map_or(Ok(()), |u| setns(u, CloneFlags::CLONE_NEWUSER));
        let report = match joined {
            Err(e) => [-1, e as i32],
            Ok(()) => match early.iter().try_for_each(|(f, ns)| setns(ns, *f)) {
                Err(e) => [-2, e as i32],
                Ok(()) => match clone::clone_into(flags | CloneFlags::CLONE_PARENT, None, init) {
                    Ok(pid) => [pid.as_raw(), 0],
                    Err(ProcessError::Sys { source, .. }) => [-3, source as i32],
                    Err(_) => [-3, 0],
                },
            },
        };
        let bytes: Vec<u8> = report.iter().flat_map(|v| v.to_ne_bytes()).collect();
        i32::from(nix::unistd::write(&tx, &bytes) != Ok(bytes.len()))
    })?;
    drop(tx);
    let mut bytes = [0u8; 8];
    let read = nix::unistd::read(rx.as_raw_fd(), &mut bytes);
    let _ = waitpid(middle, None);
    if read != Ok(bytes.len()) {
        return Err(ProcessError::InitDied);
    }
    let value = |i: usize| i32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let errno = nix::Error::from_raw(value(1));
    match value(0) {
        -1 => Err(ProcessError::sys("join the user namespace")(errno)),
        -2 => Err(ProcessError::sys("join namespace")(errno)),
        pid if pid <= 0 => Err(ProcessError::sys("clone")(errno)),
        pid => Ok(Pid::from_raw(pid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    #[test]
    fn maps_are_one_line_per_range() {
        let range = |c: u32, h: u32, n: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(c)
                .host_id(h)
                .size(n)
                .build()
                .unwrap()
        };
        let maps = [range(0, 100_000, 1000), range(1000, 1000, 1)];
        assert_eq!(map_text(&maps), "0 100000 1000\n1000 1000 1\n");
    }
}
