//! Which namespaces the init gets: new ones are created by the clone itself,
//! existing ones (a `path` in the config) are joined with setns.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{clone, ProcessError};

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

/// The namespace plan of one container.
pub(crate) struct Plan {
    /// Namespaces created new by the clone.
    new: CloneFlags,
    /// Existing namespaces to join, opened up front so a bad path fails early.
    join: Vec<(CloneFlags, OwnedFd)>,
}

impl Plan {
    pub fn new(spec: &Spec) -> Result<Self, ProcessError> {
        let mut plan = Plan {
            new: CloneFlags::empty(),
            join: Vec::new(),
        };
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default();
        for ns in namespaces {
            let f = flag(ns.typ());
            if matches!(
                ns.typ(),
                LinuxNamespaceType::User | LinuxNamespaceType::Time
            ) {
                return Err(ProcessError::InitFailed(format!(
                    "{:?} namespaces are not supported yet",
                    ns.typ()
                )));
            }
            match ns.path() {
                None => plan.new |= f,
                Some(path) => {
                    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                        .map_err(|e| {
                            ProcessError::InitFailed(format!(
                                "cannot open namespace {}: {e}",
                                path.display()
                            ))
                        })?;
                    // SAFETY: freshly opened, owned here.
                    plan.join
                        .push((f, unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }));
                }
            }
        }
        Ok(plan)
    }

    /// Whether the init gets a cgroup namespace of its own.
    pub fn new_cgroupns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWCGROUP)
    }

    /// Clones the init. A pid namespace to join is entered by the parent around
    /// the clone (setns on a pid namespace only affects later children).
    pub fn clone_with(
        &self,
        cgroup: Option<std::os::fd::BorrowedFd>,
        child: impl FnOnce(bool) -> i32,
    ) -> Result<Pid, ProcessError> {
        let pid_join = self
            .join
            .iter()
            .find(|(f, _)| *f == CloneFlags::CLONE_NEWPID);
        let restore = match pid_join {
            Some((_, fd)) => {
                let own = open(
                    "/proc/self/ns/pid",
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(ProcessError::sys("open /proc/self/ns/pid"))?;
                setns(fd.as_fd(), CloneFlags::CLONE_NEWPID)
                    .map_err(ProcessError::sys("join pid namespace"))?;
                // SAFETY: freshly opened, owned here.
                Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(own) })
            }
            None => None,
        };
        let result = clone::clone_into(self.new, cgroup, child);
        if let Some(own) = restore {
            setns(own.as_fd(), CloneFlags::CLONE_NEWPID)
                .map_err(ProcessError::sys("return to own pid namespace"))?;
        }
        result
    }

    /// In the init: joins the namespaces given by path (except pid, joined at clone).
    pub fn join_existing(&self) -> nix::Result<()> {
        for (f, fd) in &self.join {
            if *f != CloneFlags::CLONE_NEWPID {
                setns(fd.as_fd(), *f)?;
            }
        }
        Ok(())
    }
}
