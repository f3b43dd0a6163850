//! Switching to `process.user`: supplementary groups, gid, uid, umask.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::process::error::{InitError, InitStep};

/// The user switch failed: the init reports it as an [`InitError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    /// setgroups(2) refused the `count` additional gids.
    #[error("cannot set {count} additional gids: setgroups: {source}")]
    Setgroups { count: usize, source: nix::Error },
    #[error("cannot switch to {what}: {source}")]
    Switch { what: String, source: nix::Error },
}

impl From<IdentityError> for InitError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Setgroups { count, source } => InitError::Setgroups {
                count,
                limit: ngroups_max(),
                errno: source as i32,
            },
            e @ IdentityError::Switch { .. } => InitError::at(InitStep::User)(e),
        }
    }
}

/// How many supplementary groups the kernel takes (NGROUPS_MAX).
fn ngroups_max() -> Option<u64> {
    crate::pseudo_file::read_to_string("/proc/sys/kernel/ngroups_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Sets groups, gid and uid (in that order: after setresuid the right to
/// change groups is gone). Capabilities survive through PR_SET_KEEPCAPS,
/// which the caller sets.
pub(crate) fn switch_user(user: &User) -> Result<(), IdentityError> {
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|&g| Gid::from_raw(g))
        .collect();
    let err = |what: String| move |source| IdentityError::Switch { what, source };
    match setgroups(&groups) {
        // Rootless: the user namespace was made with setgroups denied (as an
        // unprivileged parent must), so the groups stay as they are; runc
        // skips them there too, and rootless podman's `--group-add` counts
        // on that.
        Err(nix::Error::EPERM) if setgroups_denied() => {}
        done => done.map_err(|source| IdentityError::Setgroups {
            count: groups.len(),
            source,
        })?,
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(err(format!("gid {gid}")))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(err(format!("uid {uid}")))
}

/// Whether this user namespace forbids setgroups(2).
fn setgroups_denied() -> bool {
    crate::pseudo_file::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// The home directory of `uid` from the container's `/etc/passwd`, or `/`.
pub(crate) fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/".to_owned())
}
