//! A container that exists in the state store, and what can be done to it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::stats::{self, Stats};
use crate::cgroups::{Cgroup, CgroupError, Hierarchies};
use crate::error::{Error, Result, WrongStatus};
use crate::exec_fifo;
use crate::id::validate_id;
use crate::network::{Network, NetworkRecord};
use crate::process::{spawn_exec, ExecConfig};
use crate::state::{self, Record, State, Status, EXEC_FIFO};

/// An id whose state names no container that can be loaded, and why.
pub type Broken = (String, Error);

/// What [`Container::exec`] starts.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: oci_spec::runtime::Process,
    /// Where to send the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Fds 3.. of the caller passed on to the process.
    pub preserve_fds: u32,
    /// Allows exec into a paused container (the process starts frozen).
    pub ignore_paused: bool,
    /// Sub-cgroups of the container's to run the process in (see
    /// [`crate::cgroups::Cgroup::sub`]); empty for the container's own.
    pub sub_cgroups: std::collections::HashMap<String, String>,
}

/// Default state root, as `/run/runc` is runc's.
pub const DEFAULT_ROOT: &str = "/run/hull";

/// A handle on one container of the state store.
#[derive(Debug)]
pub struct Container {
    /// The state root.
    root: PathBuf,
    record: Record,
    /// The write end of the init's start pipe, until started (see
    /// [`crate::ContainerBuilder::start_in_process`]).
    start_line: Mutex<Option<OwnedFd>>,
    /// What disconnects the container on delete, if it is connected.
    network: Option<Arc<dyn Network>>,
}

impl Container {
    pub(crate) fn new(root: PathBuf, record: Record) -> Self {
        Self {
            root,
            record,
            start_line: Mutex::new(None),
            network: None,
        }
    }

    pub(crate) fn with_start_line(self, start_line: Option<OwnedFd>) -> Self {
        Self {
            start_line: Mutex::new(start_line),
            ..self
        }
    }

    pub(crate) fn with_network_handle(self, network: Arc<dyn Network>) -> Self {
        Self {
            network: Some(network),
            ..self
        }
    }

    /// Gives [`Container::delete`] the [`Network`] that connected the
    /// container: a container loaded from its state (rather than the one
    /// [`crate::ContainerBuilder::create`] returned) knows from its state
    /// that it is connected, and what to disconnect, but not the code
    /// that does it.
    pub fn with_network(self, network: impl Network + 'static) -> Self {
        self.with_network_handle(Arc::new(network))
    }

    /// The network the container is connected by, as its state keeps it.
    pub fn network_record(&self) -> Option<&NetworkRecord> {
        self.record.network.as_ref()
    }

    /// Opens the container `id` under the state root `root`. A state file
    /// still empty (a create that never finished) is no container, as runc
    /// takes a container directory without `state.json`.
    pub fn load(root: impl AsRef<Path>, id: &str) -> Result<Self> {
        validate_id(id)?;
        let root = root.as_ref();
        let path = state::state_path(root, id);
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() > 0) {
            return Err(Error::NotExist);
        }
        let record = Record::load(&path)?;
        Ok(Self::new(root.to_owned(), record))
    }

    /// Removes what a create of `id` that never finished left under `root`
    /// (its empty state file, exec fifo and the state's temporary twin), as
    /// runc's delete removes a container directory without `state.json`.
    /// A create still under way, or a container that exists, is left alone.
    /// Returns whether it found no create under way and no container (so
    /// what such a create recorded beside the state may be undone).
    pub fn remove_unfinished(root: impl AsRef<Path>, id: &str) -> Result<bool> {
        validate_id(id)?;
        let root = root.as_ref();
        let path = state::state_path(root, id);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == 0 && state::is_abandoned(&path) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => return Ok(false),
        }
        Self::remove_files(root, id)?;
        Ok(true)
    }

    fn remove_files(root: &Path, id: &str) -> Result<()> {
        let path = state::state_path(root, id);
        state::remove_if_present(&state::companion(root, id, EXEC_FIFO))?;
        state::remove_if_present(&state::temp_path(&path))?;
        state::remove_if_present(&path)
    }

    /// Every container under `root`, sorted by id. A missing root is empty.
    pub fn list(root: impl AsRef<Path>) -> Result<Vec<Self>> {
        Ok(Self::list_all(root)?.0)
    }

    /// Every container under `root`, and the ids whose state names no
    /// container that can be loaded, with why: left empty by a create that
    /// died, unreadable, or gone while files beside it are left. Both
    /// sorted by id; a create under way is in neither.
    pub fn list_all(root: impl AsRef<Path>) -> Result<(Vec<Self>, Vec<Broken>)> {
        let root = root.as_ref();
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()))
            }
            Err(e) => return Err(Error::io(root)(e)),
        };
        let (mut all, mut broken) = (Vec::new(), Vec::new());
        for e in entries.filter_map(|e| e.ok()) {
            let id = e.file_name().to_string_lossy().into_owned();
            if validate_id(&id).is_err() {
                continue;
            }
            match Self::load(root, &id) {
                Ok(c) => all.push(c),
                Err(Error::NotExist) => {
                    if state::is_abandoned(&e.path()) {
                        broken.push((id, Error::NotExist));
                    }
                }
                Err(err) => broken.push((id, err)),
            }
        }
        for (id, left) in crate::Leftovers::orphans(root) {
            broken.push((id, Error::StateLost(left)));
        }
        all.sort_by(|a, b| a.id().cmp(b.id()));
        broken.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((all, broken))
    }

    /// [`Container::companion_path`] of container `id` under `root`, for
    /// a caller that records beside the state before the container can be
    /// loaded (a volume attached during create).
    pub fn companion_in(root: impl AsRef<Path>, id: &str, what: &str) -> PathBuf {
        state::companion(root.as_ref(), id, what)
    }

    /// The file `what` kept with the container's state,
    /// `<root>/<id>@<what>`; its owner removes it.
    pub fn companion_path(&self, what: &str) -> PathBuf {
        state::companion(&self.root, self.id(), what)
    }

    /// The state root this container lives under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn id(&self) -> &str {
        &self.record.state.id
    }

    /// The init's host pid while it exists.
    pub fn pid(&self) -> Option<Pid> {
        (self.status() != Status::Stopped).then(|| Pid::from_raw(self.record.state.pid))
    }

    /// The init's pid as recorded, whatever its status: for the init's
    /// parent, which knows it is alive until it reaps it.
    pub fn init_pid(&self) -> Pid {
        Pid::from_raw(self.record.state.pid)
    }

    /// The annotations of the container's config.
    pub fn annotations(&self) -> &std::collections::BTreeMap<String, String> {
        &self.record.state.annotations
    }

    /// The live status, derived from the init process.
    pub fn status(&self) -> Status {
        self.record.current_status(&self.companion_path(EXEC_FIFO))
    }

    /// The state as `hull state` prints it (pid 0 once stopped).
    pub fn state(&self) -> State {
        let mut s = self.record.state.clone();
        s.status = self.status();
        if s.status == Status::Stopped {
            s.pid = 0;
        }
        s
    }

    /// Lets a created container run its process.
    pub fn start(&self) -> Result<()> {
        tracing::debug!(id = %self.id(), "starting the container");
        let start_line = self.start_line.lock().map_or(None, |mut l| l.take());
        if let Some(write_end) = start_line {
            exec_fifo::release_pipe(write_end)?;
            self.run_hooks("poststart", |h| h.poststart(), "running");
            return Ok(());
        }
        match self.status() {
            Status::Created => {}
            Status::Stopped => return Err(Error::WrongStatus(WrongStatus::StartStopped)),
            Status::Paused => return Err(Error::WrongStatus(WrongStatus::StartPaused)),
            Status::Running | Status::Creating => {
                return Err(Error::WrongStatus(WrongStatus::StartRunning))
            }
        }
        let fifo = self.companion_path(EXEC_FIFO);
        exec_fifo::release(&fifo)?;
        std::fs::remove_file(&fifo).map_err(Error::io(&fifo))?;
        self.run_hooks("poststart", |h| h.poststart(), "running");
        Ok(())
    }

    /// Starts a further process in the created or running container: it
    /// joins the init's namespaces and cgroups and gets the container's
    /// seccomp filter. Returns its pid; the caller is its parent (and must be
    /// single-threaded: the process is cloned from it).
    pub fn exec(&self, opts: ExecOptions) -> Result<Pid> {
        match self.status() {
            Status::Created | Status::Running => {}
            Status::Paused if opts.ignore_paused => {}
            Status::Paused => return Err(Error::WrongStatus(WrongStatus::ExecPaused)),
            Status::Stopped | Status::Creating => {
                return Err(Error::WrongStatus(WrongStatus::ExecStopped))
            }
        }
        crate::spec::validate_process(&opts.process)?;
        let init = self
            .pid()
            .ok_or(Error::WrongStatus(WrongStatus::ExecStopped))?;
        crate::labels::check_process(&opts.process)?;
        let bundle = crate::spec::Bundle::load(&self.record.state.bundle)?;
        let seccomp = crate::seccomp::for_container(&bundle.spec, &self.root)?;
        let terminal = opts.process.terminal().unwrap_or(false);
        let console = match (terminal, &opts.console_socket) {
            (true, Some(path)) => Some(std::os::fd::OwnedFd::from(
                std::os::unix::net::UnixStream::connect(path).map_err(Error::io(path))?,
            )),
            (true, None) => {
                return Err(crate::SpecError::Invalid(
                    "process.terminal is set but no console socket was given".into(),
                )
                .into())
            }
            (false, _) => None,
        };
        let seccomp_agent = crate::seccomp::agent_for(
            &bundle.spec,
            seccomp.as_ref(),
            &self.record.state.id,
            &self.record.state.bundle,
            "running",
        )?;
        let cfg = ExecConfig {
            init,
            process: opts.process,
            console,
            seccomp,
            seccomp_agent,
            preserve_fds: opts.preserve_fds,
        };
        let sub = match (&self.record.cgroup, opts.sub_cgroups.is_empty()) {
            (Some(cg), false) => Some(cg.sub(&opts.sub_cgroups)?),
            (None, false) => {
                return Err(crate::SpecError::Invalid(
                    "--cgroup: the container has no cgroup".into(),
                )
                .into())
            }
            (_, true) => None,
        };
        let cgroup = sub.as_ref().or(self.record.cgroup.as_ref());
        let pid = spawn_exec(&cfg, cgroup)?;
        tracing::debug!(id = %self.id(), pid = pid.as_raw(), "exec: the process is about to run");
        Ok(pid)
    }

    /// Runs a stage of hooks after which failures are only logged (poststart, poststop).
    fn run_hooks(
        &self,
        stage: &'static str,
        pick: impl Fn(&oci_spec::runtime::Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>,
        status: &str,
    ) {
        let Some(hooks) = self.record.hooks.as_ref().and_then(|h| pick(h).as_deref()) else {
            return;
        };
        let s = &self.record.state;
        let state = crate::hooks::HookState {
            oci_version: &s.oci_version,
            id: &s.id,
            status,
            pid: s.pid,
            bundle: &s.bundle,
            annotations: (!s.annotations.is_empty()).then(|| serde_json::json!(s.annotations)),
        };
        for e in crate::hooks::run_all(stage, hooks, &state) {
            tracing::warn!("{e}");
        }
    }

    /// Sends signal number `signal` to the init.
    pub fn kill(&self, signal: i32) -> Result<()> {
        let pid = self
            .pid()
            .ok_or(Error::WrongStatus(WrongStatus::NotRunning))?;
        send(pid, signal).map_err(Error::sys("unable to signal init"))?;
        self.thaw_for_signal(signal)
    }

    /// Sends `signal` to every process in the container's cgroup (`kill --all`),
    /// with the cgroup frozen meanwhile so no process forks out of the sweep
    /// (runc does the same). A stopped container is not an error (runc).
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if self.status() == Status::Stopped {
            return Ok(());
        }
        let Some(cg) = &self.record.cgroup else {
            return self.kill_pid_namespace(signal);
        };
        let was_paused = cg.is_frozen();
        let _ = cg.set_frozen(true);
        let mut result = Ok(());
        for pid in cg.pids()? {
            match send(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(e) => result = Err(Error::sys(format!("unable to signal pid {pid}"))(e)),
            }
        }
        if !was_paused || signal == Signal::SIGKILL as i32 {
            cg.set_frozen(false)?;
        }
        result
    }

    /// `kill --all` of a container without a cgroup (rootless): every
    /// process of the init's own pid namespace, as found in `/proc` (with
    /// no freezer, one forked meanwhile may be missed); only the init when
    /// it shares the runtime's pid namespace.
    fn kill_pid_namespace(&self, signal: i32) -> Result<()> {
        let init = self.record.state.pid;
        let mut pids = crate::pid_namespace::members(init);
        if pids.is_empty() {
            pids.push(init);
        }
        let mut result = Ok(());
        for pid in pids {
            match send(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(e) => result = Err(Error::sys(format!("unable to signal pid {pid}"))(e)),
            }
        }
        result
    }

    /// A frozen process only dies of SIGKILL once thawed.
    fn thaw_for_signal(&self, signal: i32) -> Result<()> {
        if signal == Signal::SIGKILL as i32 {
            if let Some(cg) = self.record.cgroup.as_ref().filter(|c| c.is_frozen()) {
                cg.set_frozen(false)?;
            }
        }
        Ok(())
    }

    /// Freezes every process of a running container.
    pub fn pause(&self) -> Result<()> {
        match self.status() {
            Status::Running | Status::Created => {}
            _ => return Err(Error::WrongStatus(WrongStatus::NotRunning)),
        }
        Ok(self
            .cgroup_to("pause the container (pausing needs the cgroup freezer)")?
            .set_frozen(true)?)
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<()> {
        if self.status() != Status::Paused {
            return Err(Error::WrongStatus(WrongStatus::NotPaused));
        }
        Ok(self.cgroup_to("resume the container")?.set_frozen(false)?)
    }

    /// The host pids of every process in the container's cgroup.
    pub fn processes(&self) -> Result<Vec<i32>> {
        if self.status() == Status::Stopped {
            return Ok(Vec::new());
        }
        Ok(self.cgroup_to("list the container's processes")?.pids()?)
    }

    /// Applies new resource limits to a live container (`update`). With
    /// `memory.checkBeforeUpdate` a limit below current usage is refused.
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        if self.status() == Status::Stopped {
            return Err(Error::WrongStatus(WrongStatus::NotRunning));
        }
        let cg = self.cgroup_to("update the container's resources")?;
        if let Some(m) = resources.memory() {
            if m.check_before_update() == Some(true) {
                cg.check_memory_limit(m.limit())?;
            }
        }
        let h = Hierarchies::detect()?;
        cg.update_scope(&h, resources)?;
        Ok(cg.update(&h, resources)?)
    }

    /// Resource usage in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<Stats> {
        Ok(stats::read(self.cgroup_to("read the container's stats")?))
    }

    /// The container's cgroup (none for a rootless one that could not make it).
    pub fn cgroup(&self) -> Result<&Cgroup> {
        self.cgroup_to("use the container's cgroup")
    }

    /// The container's cgroup, or an error saying it has none, for `what`.
    fn cgroup_to(&self, what: &'static str) -> Result<&Cgroup> {
        self.record
            .cgroup
            .as_ref()
            .ok_or(Error::Cgroup(CgroupError::Missing(what)))
    }

    /// Waits for the init to exit (the caller must be its parent, as after
    /// [`crate::ContainerBuilder::create`]) and returns its exit code, 128+N
    /// if it was killed by signal N.
    pub fn wait(&self) -> Result<i32> {
        loop {
            if let Some(code) = self.wait_with(WaitPidFlag::empty())? {
                return Ok(code);
            }
        }
    }

    /// Like [`Container::wait`] but returns `None` at once if the init still runs.
    pub fn try_wait(&self) -> Result<Option<i32>> {
        self.wait_with(WaitPidFlag::WNOHANG)
    }

    fn wait_with(&self, flags: WaitPidFlag) -> Result<Option<i32>> {
        let pid = Pid::from_raw(self.record.state.pid);
        match waitpid(pid, Some(flags)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as i32)),
            Ok(_) | Err(nix::Error::EINTR) => Ok(None),
            Err(e) => Err(Error::sys("wait for container init")(e)),
        }
    }

    /// Removes the container. A created container's init is killed first; a
    /// running or paused one only with `force`. A connected container is
    /// disconnected by its [`Network`] (see [`Container::with_network`]);
    /// without it, delete refuses before it changes anything.
    pub fn delete(self, force: bool) -> Result<()> {
        let network = self.network_to_disconnect()?;
        self.stop_for_delete(force)?;
        // Once no process of it is left; its record in the state goes last.
        if let Some((network, recorded)) = network {
            network
                .disconnect(&self, &recorded.record)
                .map_err(Error::Network)?;
        }
        // Also after a crash: whatever is left in the cgroup is killed there.
        if let Some(cg) = &self.record.cgroup {
            cg.destroy()?;
        }
        // A created container's fifo (and what a killed restore left) first:
        // the state goes last, so an interrupted delete can be run again.
        crate::leftovers::remove_companions(&self.root, self.id())?;
        let path = state::state_path(&self.root, self.id());
        std::fs::remove_file(&path).map_err(Error::io(&path))?;
        self.run_hooks("poststop", |h| h.poststop(), "stopped");
        Ok(())
    }

    /// The network that disconnects the container on delete and what it
    /// recorded; none if the container is not connected.
    fn network_to_disconnect(&self) -> Result<Option<(&dyn Network, &NetworkRecord)>> {
        let Some(recorded) = &self.record.network else {
            return Ok(None);
        };
        match self.network.as_deref() {
            Some(n) if n.kind() == recorded.kind => Ok(Some((n, recorded))),
            given => Err(Error::NetworkNotGiven {
                id: self.id().to_owned(),
                kind: recorded.kind.clone(),
                given: given.map(|n| n.kind().to_owned()),
            }),
        }
    }

    /// The first step of [`Container::delete`]: a created container's init
    /// is killed, a running or paused one only with `force`. Public for a
    /// caller that removes what it keeps beside the container (its
    /// volumes) once no process of it is left and before the state goes.
    pub fn stop_for_delete(&self, force: bool) -> Result<()> {
        let status = self.status();
        tracing::debug!(id = %self.id(), ?status, force, "deleting the container");
        match status {
            Status::Stopped => Ok(()),
            Status::Created => self.kill_and_wait(),
            _ if force => self.kill_and_wait(),
            _ => Err(Error::WrongStatus(WrongStatus::DeleteNotStopped {
                id: self.id().to_owned(),
                status,
            })),
        }
    }

    fn kill_and_wait(&self) -> Result<()> {
        let pid = Pid::from_raw(self.record.state.pid);
        match kill(pid, Signal::SIGKILL) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => return Err(Error::sys("unable to kill init")(e)),
        }
        self.thaw_for_signal(Signal::SIGKILL as i32)?;
        // Reap it if it is our child; otherwise its parent does.
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status() != Status::Stopped {
            if Instant::now() > deadline {
                return Err(Error::sys("init did not die after SIGKILL")(
                    nix::Error::ETIMEDOUT,
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
            let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        }
        Ok(())
    }
}

/// kill(2) with a raw signal number (0 and realtime signals included).
fn send(pid: Pid, signal: i32) -> nix::Result<()> {
    // SAFETY: kill with plain integers.
    if unsafe { libc::kill(pid.as_raw(), signal) } != 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}
