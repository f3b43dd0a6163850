//! How the container's cgroup is made around its init, by driver and
//! privilege: one [`Placement`], whose steps the creating process runs
//! before and right after the clone.

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::{asks_for_limits, check_unified, Cgroup, CgroupDir, CgroupError, Hierarchies};
use crate::rootless;

/// The container's cgroup on its way to holding the init.
pub(crate) struct Placement {
    cgroup: Cgroup,
    strategy: Strategy,
    /// Whether anything was made that is ours to remove on failure.
    made: bool,
}

enum Strategy {
    /// systemd makes a transient scope around the cloned, waiting init; the
    /// directories it does not make are made in it then.
    Systemd,
    /// An unprivileged runtime makes the directories it may before the
    /// clone; the init stays in the runtime's own cgroup elsewhere.
    Rootless,
    /// The init is cloned straight into the cgroup2 directory, made first;
    /// the v1 directories and the limits are set up while it makes its
    /// network namespace, the costliest part of its start (see
    /// `process::namespaces`).
    Plain,
}

impl Placement {
    /// Checks `cgroup` before anything is made (runc's checks of an existing
    /// cgroup, and the `unified` keys this host can take) and chooses the
    /// strategy.
    pub(crate) fn new(
        cgroup: Cgroup,
        h: &Hierarchies,
        res: Option<&LinuxResources>,
    ) -> Result<Self, CgroupError> {
        cgroup.check_existing()?;
        if let Some(res) = res {
            check_unified(h, res)?;
        }
        let strategy = if cgroup.systemd.is_some() {
            Strategy::Systemd
        } else if rootless::euid_is_unprivileged() {
            Strategy::Rootless
        } else {
            Strategy::Plain
        };
        Ok(Self {
            cgroup,
            strategy,
            made: false,
        })
    }

    /// The container's cgroup as far as it is known (all of it once placed).
    pub(crate) fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// What was made so far, to remove if creating the container fails.
    pub(crate) fn made(&self) -> Option<&Cgroup> {
        self.made.then_some(&self.cgroup)
    }

    /// The container's cgroup, placed.
    pub(crate) fn into_cgroup(self) -> Cgroup {
        self.cgroup
    }

    /// Before the clone. Plain: makes the cgroup2 directory the init is
    /// cloned into; refused to a runtime that is rootless after all (root
    /// of a user namespace, say), the placement turns rootless. Rootless:
    /// makes what the user may, and returns the runtime's own cgroup where
    /// the container has none, for the init to stay in.
    pub(crate) fn before_clone(
        &mut self,
        h: &Hierarchies,
        res: Option<&LinuxResources>,
    ) -> Result<Option<Cgroup>, CgroupError> {
        if let Strategy::Plain = self.strategy {
            match self.cgroup.create(CgroupDir::is_v2) {
                Ok(()) => {
                    self.made = true;
                    return Ok(None);
                }
                Err(e) if e.is_permission_denied() && rootless::is_rootless() => {
                    self.strategy = Strategy::Rootless;
                }
                Err(e) => return Err(e),
            }
        }
        match self.strategy {
            Strategy::Rootless => {
                self.make_rootless(h, res)?;
                Ok(Some(self.cgroup.own_where_missing(h)?))
            }
            Strategy::Systemd | Strategy::Plain => Ok(None),
        }
    }

    /// Rootless: makes every directory this user may. Without limits in
    /// `res` the others are left out (all of them, typically: the container
    /// then has no cgroup); with limits they are an error. Device rules are
    /// not applied: the user namespace keeps the container from making
    /// nodes, and loading a device program needs privileges.
    fn make_rootless(
        &mut self,
        h: &Hierarchies,
        res: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let limits = res.filter(|r| asks_for_limits(r));
        let made = self.cgroup.create_rootless(limits.is_some());
        self.made = true;
        made?;
        if let Some(res) = limits {
            let mut res = res.clone();
            res.set_devices(None);
            self.cgroup.apply(h, &res)?;
        }
        Ok(())
    }

    /// While the cloned init `pid` waits, before it enters its cgroups:
    /// systemd starts the scope around it; the directories not made yet are
    /// made and `res` applied, device rules always.
    pub(crate) fn around_init(
        &mut self,
        pid: Pid,
        id: &str,
        h: &Hierarchies,
        res: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        let made_before: fn(&CgroupDir) -> bool = match self.strategy {
            Strategy::Rootless => return Ok(()),
            Strategy::Systemd => {
                self.cgroup.start_scope(pid.as_raw(), id, h, res)?;
                // Ours to stop from here on (not before: the unit may be another's).
                self.made = true;
                |_| false
            }
            Strategy::Plain => CgroupDir::is_v2,
        };
        self.cgroup.create(|d| !made_before(d))?;
        // The device rules always: with none in the spec the defaults still
        // follow a deny-all (as in runc), where a v1 cgroup left alone would
        // allow every device.
        let mut res = res.cloned().unwrap_or_default();
        if res.devices().is_none() {
            res.set_devices(Some(Vec::new()));
        }
        self.cgroup.apply(h, &res)
    }
}
