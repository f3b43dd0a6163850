//! Creating a container from a bundle.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cgroups::{Cgroup, Hierarchies, Placement};
use crate::container::{Container, DEFAULT_ROOT};
use crate::error::{Error, Result};
use crate::exec_fifo;
use crate::id::validate_id;
use crate::network::{Network, NetworkRecord};
use crate::process::{spawn_init, InitConfig};
use crate::spec::{Bundle, SpecError};
use crate::state::{self, proc_stat, Record, Status, EXEC_FIFO};
use crate::volumes::Volumes;

/// Builds a container from an OCI bundle: `ContainerBuilder::new(id, bundle)`,
/// optional settings, then [`ContainerBuilder::create`].
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    id: String,
    bundle: PathBuf,
    root: PathBuf,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    preserve_fds: u32,
    no_pivot: bool,
    no_new_keyring: bool,
    systemd_cgroup: bool,
    start_in_process: bool,
    preloaded: Option<Box<Bundle>>,
    network: Option<Arc<dyn Network>>,
    volumes: Option<Arc<dyn Volumes>>,
}

impl ContainerBuilder {
    /// A container `id` from the bundle directory `bundle`, state under `/run/hull`.
    pub fn new(id: impl Into<String>, bundle: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            bundle: bundle.into(),
            root: DEFAULT_ROOT.into(),
            pid_file: None,
            console_socket: None,
            preserve_fds: 0,
            no_pivot: false,
            no_new_keyring: false,
            systemd_cgroup: false,
            start_in_process: false,
            preloaded: None,
            network: None,
            volumes: None,
        }
    }

    /// Connects the container to `network` once it is created, before
    /// [`Container::start`] (e.g. `bridge::ContainerNetwork` for a bridge
    /// network with published ports); [`Container::delete`] disconnects it.
    /// If connecting fails, `create` fails and leaves nothing behind.
    pub fn network(mut self, network: impl Network + 'static) -> Self {
        self.network = Some(Arc::new(network));
        self
    }

    /// Attaches the container's `volumes` once its id is claimed, before
    /// the init is made, and adds their mounts to its config. If anything
    /// after fails, `create` detaches them again.
    pub fn volumes(mut self, volumes: impl Volumes + 'static) -> Self {
        self.volumes = Some(Arc::new(volumes));
        self
    }

    /// Uses a bundle the caller already loaded (with [`Bundle::load`])
    /// instead of reading its `config.json` again; the directory given to
    /// [`Self::new`] is then not read.
    pub fn preloaded(mut self, bundle: Bundle) -> Self {
        self.preloaded = Some(Box::new(bundle));
        self
    }

    /// The caller will start the container with [`Container::start`] on the
    /// value [`Self::create`] returns, as `run` does: the init then waits on
    /// an anonymous pipe instead of the exec fifo beside the state file, so
    /// no file is made and removed. Until it is started, other processes see
    /// the container as running (their `start` has no fifo to open); if the
    /// returned value is dropped unstarted, the init exits.
    pub fn start_in_process(mut self, yes: bool) -> Self {
        self.start_in_process = yes;
        self
    }

    /// The state root holding one directory per container.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// Writes the init's pid to this file once created.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// A unix socket that receives the pty master when `process.terminal` is set.
    pub fn console_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.console_socket = Some(path.into());
        self
    }

    /// Passes fds 3 .. 3+n of the caller on to the container process.
    pub fn preserve_fds(mut self, n: u32) -> Self {
        self.preserve_fds = n;
        self
    }

    /// Uses MS_MOVE + chroot instead of pivot_root.
    pub fn no_pivot(mut self, yes: bool) -> Self {
        self.no_pivot = yes;
        self
    }

    /// Keeps the caller's session keyring instead of a new one.
    pub fn no_new_keyring(mut self, yes: bool) -> Self {
        self.no_new_keyring = yes;
        self
    }

    /// Asks for the systemd cgroup driver (`cgroupsPath` as `slice:prefix:name`).
    pub fn systemd_cgroup(mut self, yes: bool) -> Self {
        self.systemd_cgroup = yes;
        self
    }

    /// Creates the container: its init is set up and waits for
    /// [`Container::start`]. The calling process becomes the init's parent
    /// and must be single-threaded (the init is cloned from it). On error
    /// nothing is left behind: no state file, no process.
    pub fn create(mut self) -> Result<Container> {
        validate_id(&self.id)?;
        let mut bundle = match self.preloaded.take() {
            Some(b) => *b,
            None => Bundle::load(&self.bundle)?,
        };
        // Checks that depend on the host, before anything is made.
        crate::sysctl::check(&bundle.spec)?;
        crate::sched::check(&bundle.spec)?;
        crate::net_devices::check(&bundle.spec)?;
        crate::labels::check(&bundle.spec)?;
        match (bundle.wants_terminal(), &self.console_socket) {
            (true, None) => {
                return Err(SpecError::Invalid(
                    "process.terminal is set but no console socket was given".into(),
                )
                .into())
            }
            (false, Some(_)) => {
                return Err(SpecError::Invalid(
                    "a console socket was given but process.terminal is not set".into(),
                )
                .into())
            }
            _ => {}
        }
        tracing::debug!(id = %self.id, bundle = %bundle.dir.display(), "creating the container");
        // The claim's lock is held until this returns (see `state::is_abandoned`).
        let (_claim, state_path) = state::claim(&self.root, &self.id)?;
        let mut guard = Cleanup::of_files(vec![state_path.clone(), state::temp_path(&state_path)]);
        if let Some(volumes) = &self.volumes {
            volumes
                .attach(&self.root, &self.id, &mut bundle.spec)
                .map_err(Error::Volume)?;
            let (volumes, root, id) = (volumes.clone(), self.root.clone(), self.id.clone());
            guard.detach = Some(Box::new(move || {
                if let Err(e) = volumes.detach(&root, &id) {
                    tracing::warn!(%id, "detaching the volumes of a failed create: {e}");
                }
            }));
        }
        let mut container = self.create_in(&state_path, bundle, &mut guard)?;
        if let Some(network) = &self.network {
            network.connect(&container).map_err(Error::Network)?;
            container = container.with_network_handle(network.clone());
        }
        tracing::debug!(id = %self.id, "created: the init waits for start");
        guard.dismiss();
        Ok(container)
    }

    /// Creates the container whose state file is `state` (claimed, empty).
    fn create_in(&self, state: &Path, bundle: Bundle, guard: &mut Cleanup) -> Result<Container> {
        // What the init waits on for `start`, and all else it needs.
        let (for_init, start_line) = self.start_line(guard)?;
        let mut cfg = self.init_config(bundle, for_init)?;
        let resources = cfg
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        // Where its cgroup goes, checked before anything is made.
        let cgroup = self.resolve_cgroup(&cfg.hierarchies, &cfg.spec)?;
        let mut placement = Placement::new(cgroup, &cfg.hierarchies, resources)?;
        // Recorded before anything is made, with no init yet: a create
        // killed from here on leaves a stopped container whose cgroups
        // `delete --force` finds and removes.
        let mut record = Record::creating(
            &self.id,
            &cfg.spec,
            &cfg.bundle,
            &cfg.rootfs,
            placement.cgroup(),
        );
        // The network too, before it makes anything (see `crate::network`).
        record.network = self.network.as_deref().map(NetworkRecord::of);
        record.save(state)?;
        // The cgroup as far as it is made before the clone.
        let own_cgroup = placement.before_clone(&cfg.hierarchies, resources);
        guard.cgroup = placement.made().cloned();
        cfg.own_cgroup = own_cgroup?;
        // The init cloned, placed in its cgroup and set up.
        let spawned = spawn_init(&cfg, &mut placement);
        guard.cgroup = placement.made().cloned();
        let (pid, handover) = spawned?;
        guard.pid = Some(pid);
        // Recorded as created, then handed over: it outlives us from here.
        self.record_created(&mut record, state, pid, placement.into_cgroup())?;
        handover.complete()?;
        Ok(Container::new(self.root.clone(), record).with_start_line(start_line))
    }

    /// Rewrites the record with the init's `pid` and the placed `cgroup`,
    /// status created; writes the pid file.
    fn record_created(
        &self,
        record: &mut Record,
        state: &Path,
        pid: Pid,
        cgroup: Cgroup,
    ) -> Result<()> {
        let start_time = proc_stat(pid.as_raw())
            .ok_or(Error::Process(crate::ProcessError::InitDied))?
            .1;
        record.state.pid = pid.as_raw();
        record.state.status = Status::Created;
        record.init_start_time = start_time;
        record.cgroup = (!cgroup.dirs.is_empty()).then_some(cgroup);
        record.save(state)?;
        if let Some(path) = &self.pid_file {
            write_pid_file(path, pid)?;
        }
        Ok(())
    }

    /// What the init waits on for `start`: the exec fifo beside the state
    /// file, or with [`Self::start_in_process`] a pipe, whose other end
    /// (returned second) the caller keeps.
    fn start_line(&self, guard: &mut Cleanup) -> Result<(OwnedFd, Option<OwnedFd>)> {
        if self.start_in_process {
            let (read, write) = exec_fifo::pipe()?;
            return Ok((read, Some(write)));
        }
        let fifo = state::companion(&self.root, &self.id, EXEC_FIFO);
        exec_fifo::create(&fifo)?;
        guard.files.push(fifo.clone());
        Ok((exec_fifo::open_for_init(&fifo)?, None))
    }

    /// Everything the init needs but the runtime's own cgroup (rootless).
    fn init_config(&self, bundle: Bundle, exec_fifo: OwnedFd) -> Result<InitConfig> {
        let console = match &self.console_socket {
            Some(path) => Some(OwnedFd::from(
                UnixStream::connect(path).map_err(Error::io(path))?,
            )),
            None => None,
        };
        let seccomp = crate::seccomp::for_container(&bundle.spec, &self.root)?;
        let seccomp_agent = crate::seccomp::agent_for(
            &bundle.spec,
            seccomp.as_ref(),
            &self.id,
            &bundle.dir,
            "creating",
        )?;
        Ok(InitConfig {
            rootfs: bundle.rootfs,
            bundle: bundle.dir,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            id: self.id.clone(),
            console,
            exec_fifo,
            seccomp,
            seccomp_agent,
            runtime_binds: crate::rootfs::binds_made_by_runtime(&bundle.spec),
            spec: bundle.spec,
            hierarchies: Hierarchies::detect()?,
            own_cgroup: None,
        })
    }

    /// Where the container's cgroup goes (`cgroupsPath`, the driver).
    fn resolve_cgroup(
        &self,
        hierarchies: &Hierarchies,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Cgroup> {
        let path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        Ok(Cgroup::resolve(
            hierarchies,
            path.as_deref(),
            &self.id,
            self.systemd_cgroup,
        )?)
    }
}

/// Writes `pid` (no newline, like runc) through a temporary file and a rename,
/// so a reader never sees a partial file.
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path)(std::io::ErrorKind::InvalidInput.into()))?;
    let tmp = path.with_file_name(format!(".{}", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
    write!(f, "{pid}").map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// Undoes a half-made container when creation (or a restore) fails: kills
/// its init, removes its cgroup and files.
#[derive(Default)]
pub(crate) struct Cleanup {
    /// The state file and the exec fifo.
    pub(crate) files: Vec<PathBuf>,
    pub(crate) pid: Option<Pid>,
    pub(crate) cgroup: Option<Cgroup>,
    /// Detaches the volumes, once the init is dead.
    pub(crate) detach: Option<Box<dyn FnOnce()>>,
}

impl Cleanup {
    /// Undoes `files` so far (the init and cgroup are added once made).
    pub(crate) fn of_files(files: Vec<PathBuf>) -> Self {
        Self {
            files,
            pid: None,
            cgroup: None,
            detach: None,
        }
    }

    /// The container is made: nothing of it is undone.
    pub(crate) fn dismiss(&mut self) {
        self.files.clear();
        self.pid = None;
        self.cgroup = None;
        self.detach = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup.destroy();
        }
        if let Some(detach) = self.detach.take() {
            detach();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}
