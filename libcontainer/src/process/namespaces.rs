//! Which namespaces the init gets: new ones are created by the clone itself,
//! existing ones (a `path` in the config) are joined with setns.
//!
//! Three are made by the init itself with `unshare` instead:
//! - the network namespace, the costliest to make (registering a loopback
//!   device and the per-namespace sysctls, about 0.6 ms here): the init makes
//!   it while the parent makes the cgroup directories, so the two overlap;
//! - the cgroup namespace, after the init has entered its cgroups, so that the
//!   namespace is rooted at the container's cgroup (on v1 the init enters
//!   them after the clone);
//! - a new time namespace: its clock offsets can only be set before any
//!   process has entered it, and a clone would enter it at once. So the init
//!   makes it (`unshare`, which only affects later children), writes
//!   `linux.timeOffsets` to `/proc/self/timens_offsets`, then enters it itself
//!   through `/proc/self/ns/time_for_children`, as runc does.
//!
//! A new user namespace comes with the clone, so every other new namespace
//! is owned by it. The parent writes its `uid_map` and `gid_map` before it
//! lets the init go on (see [`Plan::write_id_maps`]); until then the init
//! only makes its network namespace.
//!
//! A user namespace joined by path (a pod's) must own the init's new
//! namespaces too, but the runtime cannot enter it and come back. And the
//! init of a new user namespace has no capability left in the host's, so it
//! could not join the host's namespaces given by path. In both cases an
//! intermediate process joins the user namespace and the namespaces in
//! [`EARLY`], clones the init with `CLONE_PARENT` (so the init is still the
//! runtime's child) and exits. The mount and cgroup namespaces are joined by
//! the init as usual, once it is in its cgroups.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{setresgid, setresuid, Gid, Pid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::clone;
use super::error::{InitError, InitStep, ProcessError};
use super::nsfile::open_fd;
use super::userns::{clone_from_middle, id_maps, write_maps};
use crate::spec::SpecError;

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    use LinuxNamespaceType as T;
    match t {
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespaces an intermediate process joins before the clone.
const EARLY: CloneFlags = CloneFlags::CLONE_NEWNET
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));

/// The namespace plan of one container.
pub(crate) struct Plan {
    /// Namespaces created new by the clone.
    new: CloneFlags,
    /// Existing namespaces to join, opened up front so a bad path fails
    /// early; the user namespace is apart, it is joined before the clone.
    join: Vec<(CloneFlags, OwnedFd)>,
    /// A user namespace to join.
    join_user: Option<OwnedFd>,
    /// A new time namespace, with the `timens_offsets` text to give it.
    new_time: Option<String>,
    /// The `uid_map` and `gid_map` texts of a new user namespace.
    id_maps: Option<(String, String)>,
}

impl Plan {
    pub fn new(spec: &Spec) -> Result<Self, ProcessError> {
        let mut plan = Plan {
            new: CloneFlags::empty(),
            join: Vec::new(),
            join_user: None,
            new_time: None,
            id_maps: None,
        };
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default();
        for ns in namespaces {
            let f = flag(ns.typ());
            match ns.path() {
                None if ns.typ() == LinuxNamespaceType::Time => {
                    plan.new_time = Some(String::new());
                }
                None => plan.new |= f,
                Some(path) => {
                    let fd = open_fd(path).map_err(|source| ProcessError::Namespace {
                        path: path.clone(),
                        source,
                    })?;
                    if f == CloneFlags::CLONE_NEWUSER {
                        plan.join_user = Some(fd);
                    } else {
                        plan.join.push((f, fd));
                    }
                }
            }
        }
        let offsets = spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref());
        if let Some(offsets) = offsets.filter(|o| !o.is_empty()) {
            let text = plan.new_time.as_mut().ok_or_else(|| {
                SpecError::Invalid(
                    "linux.timeOffsets needs a new time namespace (one without a path)".into(),
                )
            })?;
            *text = timens_offsets(offsets)?;
        }
        if plan.join_user.is_none() {
            // A joined user namespace has its maps already: the config's,
            // if any, describe them and are not written again.
            plan.id_maps = id_maps(spec, plan.new.contains(CloneFlags::CLONE_NEWUSER))?;
        }
        if plan.id_maps.is_some() && plan.join.iter().any(|(f, _)| !EARLY.contains(*f)) {
            // The init joins these, and has no capability left in the host's
            // user namespace they belong to.
            return Err(SpecError::Invalid(
                "a mount or cgroup namespace joined by path cannot be combined with a new user namespace"
                    .into(),
            )
            .into());
        }
        Ok(plan)
    }

    /// In the init, once its id maps are written and it is in its cgroups
    /// (the host's cgroup files are host root's to write): becomes root of
    /// its new user namespace, so what it makes there is owned by the
    /// container's root. It keeps the capabilities the clone gave it.
    pub fn become_userns_root(&self) -> nix::Result<()> {
        if self.id_maps.is_some() || self.join_user.is_some() {
            let (uid, gid) = (Uid::from_raw(0), Gid::from_raw(0));
            setresgid(gid, gid, gid)?;
            setresuid(uid, uid, uid)?;
        }
        Ok(())
    }

    /// In the parent, right after the clone: gives the init's new user
    /// namespace its id maps.
    pub fn write_id_maps(&self, init: Pid) -> Result<(), ProcessError> {
        match &self.id_maps {
            Some((uid_map, gid_map)) => write_maps(init, uid_map, gid_map),
            None => Ok(()),
        }
    }

    /// Whether the init gets a cgroup namespace of its own.
    pub fn new_cgroupns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWCGROUP)
    }

    /// Clones the init into its new namespaces (but those it makes itself)
    /// and the pid namespace to join.
    pub fn clone_with(
        &self,
        cgroup: Option<BorrowedFd>,
        child: impl FnOnce(bool) -> i32,
    ) -> Result<Pid, ProcessError> {
        let pid_join = self
            .join
            .iter()
            .find(|(f, _)| *f == CloneFlags::CLONE_NEWPID)
            .map(|(_, fd)| fd.as_fd());
        let flags = self.new - (CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWCGROUP);
        if !self.has_middle() {
            return clone_in(pid_join, flags, cgroup, child);
        }
        let early = self.join.iter().filter(|(f, _)| EARLY.contains(*f));
        let early: Vec<_> = early.map(|(f, fd)| (*f, fd.as_fd())).collect();
        clone_from_middle(
            self.join_user.as_ref().map(|u| u.as_fd()),
            &early,
            flags,
            child,
        )
    }

    /// Whether an intermediate process clones the init (see the module doc).
    fn has_middle(&self) -> bool {
        self.join_user.is_some() || (self.id_maps.is_some() && !self.join.is_empty())
    }

    /// In the init: makes its new network namespace, if it gets one.
    pub fn unshare_network(&self) -> nix::Result<()> {
        self.unshare_if_new(CloneFlags::CLONE_NEWNET)
    }

    /// In the init, once in its cgroups: makes its new cgroup namespace, if it gets one.
    pub fn unshare_cgroup(&self) -> nix::Result<()> {
        self.unshare_if_new(CloneFlags::CLONE_NEWCGROUP)
    }

    fn unshare_if_new(&self, flag: CloneFlags) -> nix::Result<()> {
        if self.new.contains(flag) {
            unshare(flag)?;
        }
        Ok(())
    }

    /// In the init: joins the namespaces given by path but those joined
    /// before the clone (pid, and the early ones of an intermediate process).
    pub fn join_existing(&self) -> nix::Result<()> {
        let before_clone = match self.has_middle() {
            true => EARLY,
            false => CloneFlags::CLONE_NEWPID,
        };
        for (f, fd) in &self.join {
            if !before_clone.contains(*f) {
                setns(fd.as_fd(), *f)?;
            }
        }
        Ok(())
    }

    /// In the init (single-threaded, before `pivot_root`): makes the new
    /// time namespace, sets its clock offsets and enters it.
    pub fn enter_new_time(&self) -> Result<(), InitError> {
        let Some(offsets) = &self.new_time else {
            return Ok(());
        };
        let step = InitStep::TimeNamespace;
        let time = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        unshare(time).map_err(InitError::context(step, "cannot create a time namespace"))?;
        if !offsets.is_empty() {
            crate::procfs::ProcRoot::open()
                .and_then(|proc| proc.write(Path::new("self/timens_offsets"), offsets.as_bytes()))
                .map_err(InitError::context(
                    step,
                    format!("cannot set the time offsets {offsets:?}"),
                ))?;
        }
        let ns = open_fd(Path::new("/proc/self/ns/time_for_children")).map_err(
            InitError::context(step, "cannot open the new time namespace"),
        )?;
        setns(ns.as_fd(), time).map_err(InitError::context(
            step,
            "cannot enter the new time namespace",
        ))
    }
}

/// Clones like [`clone::clone_into`], inside the existing pid namespace
/// `pid_ns` if given: the caller joins it around the clone (setns on a pid
/// namespace only affects later children) and returns to its own after.
///
/// Returning needs CAP_SYS_ADMIN over the user namespace that owns the
/// caller's own pid namespace, which root of another user namespace lacks
/// (rootless podman runs the runtime so, and its containers' pid namespaces
/// are that user namespace's): a setns to the pid namespace the caller is
/// already in checks just that, and when refused an intermediate process
/// joins the pid namespace and clones (not into `cgroup`: the child enters
/// its cgroups itself).
pub(crate) fn clone_in(
    pid_ns: Option<BorrowedFd>,
    flags: CloneFlags,
    cgroup: Option<BorrowedFd>,
    child: impl FnOnce(bool) -> i32,
) -> Result<Pid, ProcessError> {
    let restore = match pid_ns {
        Some(fd) => {
            let own = open_fd(Path::new("/proc/self/ns/pid"))
                .map_err(ProcessError::sys("open /proc/self/ns/pid"))?;
            match setns(own.as_fd(), CloneFlags::CLONE_NEWPID) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) => {
                    let join = [(CloneFlags::CLONE_NEWPID, fd)];
                    return clone_from_middle(None, &join, flags, child);
                }
                Err(e) => return Err(ProcessError::sys("join own pid namespace")(e)),
            }
            setns(fd, CloneFlags::CLONE_NEWPID).map_err(ProcessError::sys("join pid namespace"))?;
            Some(own)
        }
        None => None,
    };
    let result = clone::clone_into(flags, cgroup, child);
    if let Some(own) = restore {
        setns(own.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(ProcessError::sys("return to own pid namespace"))?;
    }
    result
}

/// `linux.timeOffsets` as `/proc/self/timens_offsets` takes them: one
/// `<clock> <secs> <nanosecs>` line per clock (`monotonic`, `boottime`).
fn timens_offsets(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<String, ProcessError> {
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by_key(|(clock, _)| clock.as_str());
    let mut text = String::new();
    for (clock, offset) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(SpecError::Invalid(format!(
                "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
            ))
            .into());
        }
        let (secs, nanos) = (offset.secs().unwrap_or(0), offset.nanosecs().unwrap_or(0));
        if nanos >= 1_000_000_000 {
            return Err(SpecError::Invalid(format!(
                "linux.timeOffsets: {clock} nanosecs {nanos} is not below one second"
            ))
            .into());
        }
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    Ok(text)
}
