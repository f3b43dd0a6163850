//! `restore`: a new container, state record and cgroup as `create` makes
//! them, whose processes CRIU rebuilds from an image directory.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::unistd::Pid;

use super::image::Image;
use super::rpc::{self, proto, CriuOpts, CriuReq, CriuReqType};
use super::{
    common_opts, log_path, mounts, namespaces, open_dir, open_work_dir, CheckpointError, Criu,
    CriuFlags,
};
use crate::builder::Cleanup;
use crate::cgroups::{Cgroup, Hierarchies};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::id::validate_id;
use crate::spec::Bundle;
use crate::state::{self, proc_stat, Record, Status, CHECKPOINTED};

/// How to restore (runc's `restore` flags).
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub criu: Criu,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// Receives the pty master of a container with a terminal.
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: CRIU restores the mount namespace
    /// itself, so there is no pivot_root to leave out.
    pub no_pivot: bool,
    pub flags: CriuFlags,
    /// `TYPE:NAME` of the LSM profile the restored processes get.
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    /// Where the host ends of the checkpoint's veth interfaces go back.
    pub veths: Vec<VethPair>,
}

/// A veth pair CRIU recreates: `inside` is the container's interface (as
/// dumped), `outside` the name its peer gets on the host, enslaved to
/// `bridge` if one is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethPair {
    pub inside: String,
    pub outside: String,
    pub bridge: Option<String>,
}

impl VethPair {
    /// CRIU's `--external veth[IN]:OUT[@BRIDGE]`.
    fn external(&self) -> String {
        let mut s = format!("veth[{}]:{}", self.inside, self.outside);
        if let Some(b) = &self.bridge {
            s.push('@');
            s.push_str(b);
        }
        s
    }
}

/// Restores the checkpoint in `opts.image_path` as container `id` of the
/// bundle `bundle`, under the state root `root`: a new container, or the
/// place of a container `id` a checkpoint stopped
/// ([`Container::is_checkpointed`]). The restored init is a child of the
/// caller. On error nothing is left behind (no state file, cgroup, mount or
/// process) and a checkpointed container is left as it was.
pub fn restore(root: &Path, id: &str, bundle: Bundle, opts: &RestoreOptions) -> Result<Container> {
    validate_id(id)?;
    let image = Image::load(&opts.image_path)?;
    if let Some(veth) = image
        .veths
        .iter()
        .find(|v| !opts.veths.iter().any(|p| &p.inside == *v))
    {
        return Err(CheckpointError::UnplacedVeth(veth.clone()).into());
    }
    if opts.flags.lazy_pages {
        super::check_lazy_pages(&opts.criu)?;
    }
    if bundle.wants_terminal() && opts.console_socket.is_none() {
        return Err(crate::SpecError::Invalid(
            "process.terminal is set but no console socket was given".into(),
        )
        .into());
    }
    // The claim's lock is held until this returns (see `state::is_abandoned`);
    // a checkpointed container's record is taken over instead.
    let (_claim, state_path, replaced) = match state::claim(root, id) {
        Ok((file, path)) => (file, path, None),
        Err(Error::Exists(_)) => {
            let (file, path, old) = take_over(root, id)?;
            (file, path, Some(old))
        }
        Err(e) => return Err(e),
    };
    let replaces = replaced.is_some();
    let mut guard = Guard {
        made: Cleanup::of_files(if replaces {
            Vec::new()
        } else {
            vec![state_path.clone(), state::temp_path(&state_path)]
        }),
        dir: None,
        mounted: false,
    };
    let container = restore_in(
        root,
        id,
        bundle,
        &image,
        opts,
        StateFile {
            path: &state_path,
            replaced,
        },
        &mut guard,
    )?;
    if replaces {
        state::remove_if_present(&state::companion(root, id, CHECKPOINTED))?;
    }
    guard.made.dismiss();
    Ok(container)
}

/// The state file a restore writes: a new one, or that of the
/// checkpointed container it takes the place of.
struct StateFile<'a> {
    path: &'a Path,
    replaced: Option<Container>,
}

/// Opens the state file of the checkpointed container `id` for a restore
/// to take its place, locked so that only one restore does; any other
/// container of that id is [`Error::Exists`]. Returns the container too.
fn take_over(root: &Path, id: &str) -> Result<(File, PathBuf, Container)> {
    let old = Container::load(root, id).map_err(|_| Error::Exists(id.to_owned()))?;
    if !old.is_checkpointed() {
        return Err(Error::Exists(id.to_owned()));
    }
    let path = state::state_path(root, id);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    // Held while the file is open: a second restore of the id fails here.
    // SAFETY: flock on an fd this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Exists(id.to_owned()));
    }
    Ok((file, path, old))
}

fn restore_in(
    root: &Path,
    id: &str,
    bundle: Bundle,
    image: &Image,
    opts: &RestoreOptions,
    state: StateFile,
    guard: &mut Guard,
) -> Result<Container> {
    let spec = &bundle.spec;
    let hierarchies = Hierarchies::detect()?;
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let mut cgroup = Cgroup::resolve(&hierarchies, cgroups_path.as_deref(), id, false)?;
    cgroup.check_existing()?;
    // Recorded before it is made, so a restore killed in between leaves a
    // cgroup `delete --force` finds. A checkpointed container's record
    // stays until the restore is done; the network it kept for the restore
    // stays recorded with the new one.
    let mut record = Record::creating(id, spec, &bundle.dir, &bundle.rootfs, &cgroup);
    match &state.replaced {
        Some(old) => record.network = old.network_record().cloned(),
        None => record.save(state.path)?,
    }
    cgroup.create(|_| true)?;
    guard.made.cgroup = Some(cgroup.clone());
    if let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        cgroup.apply(&hierarchies, res)?;
    }

    let image_dir = open_dir(&opts.image_path, false)?;
    let work_dir = open_work_dir(opts.work_path.as_ref())?;
    // CRIU wants the root to be a mount point whose parent is not
    // overmounted: the rootfs is bound onto this directory for the time of
    // the restore (the restored container gets a mount namespace of its
    // own). It is the runtime's mount namespace CRIU resolves the image
    // directory in (through /proc/<runtime>/fd), so the bind is made there.
    let mount_point = state::companion(root, id, crate::leftovers::CRIU_ROOT);
    std::fs::create_dir(&mount_point).map_err(Error::io(&mount_point))?;
    guard.dir = Some(mount_point.clone());
    mount(
        Some(&bundle.rootfs),
        &mount_point,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(Error::sys(format!(
        "bind {} for criu",
        bundle.rootfs.display()
    )))?;
    guard.mounted = true;
    let ns = namespaces::for_restore(spec, 4)?;
    let mut o = CriuOpts {
        images_dir_fd: image_dir.as_raw_fd(),
        work_dir_fd: work_dir.as_ref().map(|d| d.as_raw_fd()),
        log_file: Some("restore.log".into()),
        root: Some(mount_point.to_string_lossy().into_owned()),
        evasive_devices: Some(true),
        rst_sibling: Some(true),
        lsm_profile: opts.lsm_profile.clone(),
        lsm_mount_context: opts.lsm_mount_context.clone(),
        ext_mnt: mounts::for_restore(&image.mounts, spec, &bundle.dir, Some(&cgroup))?,
        inherit_fd: ns.inherit,
        join_ns: ns.join,
        ..common_opts(spec, &opts.flags)
    };
    // The init's stdio from outside the container becomes ours.
    for (fd, key) in image.stdio.iter().enumerate() {
        if let Some(key) = key {
            o.inherit_fd.push(proto::InheritFd {
                key: key.clone(),
                fd: fd as i32,
            });
        }
    }
    o.external.extend(opts.veths.iter().map(VethPair::external));
    o.cg_root = cgroup_roots(&cgroup, &hierarchies);
    let req = CriuReq {
        r#type: CriuReqType::Restore as i32,
        opts: Some(o),
        ..Default::default()
    };
    let log = log_path(opts.work_path.as_ref(), &opts.image_path, "restore.log");
    let spawn = rpc::Spawn {
        stdio: None,
        extra: ns.fds,
    };
    let mut restored = None;
    let result = rpc::call(
        &opts.criu.path,
        &req,
        spawn,
        Some(&log),
        |criu_pid| enter_cgroup(&cgroup, criu_pid),
        |script, pid, fd| {
            match script {
                "setup-namespaces" => run_hooks(&record, pid)?,
                "orphan-pts-master" => send_console(opts.console_socket.as_deref(), fd)?,
                "post-restore" => restored = Some(pid),
                _ => {}
            }
            Ok(())
        },
    );
    if let Some(pid) = restored {
        guard.made.pid = Some(Pid::from_raw(pid));
    }
    result?;
    let pid =
        restored.ok_or_else(|| CheckpointError::Rpc("criu reported no restored process".into()))?;
    record.state.pid = pid;
    record.state.status = Status::Running;
    record.init_start_time = proc_stat(pid)
        .ok_or(Error::Process(crate::ProcessError::InitDied))?
        .1;
    record.save(state.path)?;
    Ok(Container::new(root.to_owned(), record))
}

/// Moves CRIU into the new cgroup: what it forks is born there.
fn enter_cgroup(cgroup: &Cgroup, pid: u32) -> std::result::Result<(), CheckpointError> {
    for d in &cgroup.dirs {
        let procs = d.path.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(CheckpointError::io(procs))?;
    }
    Ok(())
}

/// Each v1 hierarchy's new cgroup, relative to the hierarchy's root: CRIU
/// puts the restored processes there rather than where they were dumped.
fn cgroup_roots(cgroup: &Cgroup, h: &Hierarchies) -> Vec<proto::CgroupRoot> {
    cgroup
        .dirs
        .iter()
        .filter(|d| !d.is_v2())
        .filter_map(|d| {
            let mount = h.v1_of(d.controllers.first()?)?;
            let rel = d.path.strip_prefix(&mount.mount_point).ok()?;
            Some(proto::CgroupRoot {
                ctrl: Some(d.controllers.join(",")),
                path: format!("/{}", rel.display()),
            })
        })
        .collect()
}

/// prestart and createRuntime hooks, once the namespaces exist (runc runs
/// them at the same point of a restore).
fn run_hooks(record: &Record, pid: i32) -> std::result::Result<(), CheckpointError> {
    let Some(hooks) = &record.hooks else {
        return Ok(());
    };
    let s = &record.state;
    let state = crate::hooks::HookState {
        oci_version: &s.oci_version,
        id: &s.id,
        status: "creating",
        pid,
        bundle: &s.bundle,
        annotations: (!s.annotations.is_empty()).then(|| serde_json::json!(s.annotations)),
    };
    for (stage, list) in [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
    ] {
        if let Some(list) = list {
            crate::hooks::run(stage, list, &state)
                .map_err(|e| CheckpointError::Rpc(e.to_string()))?;
        }
    }
    Ok(())
}

/// Hands the restored terminal's new pty master to the console socket.
fn send_console(
    socket: Option<&Path>,
    master: Option<OwnedFd>,
) -> std::result::Result<(), CheckpointError> {
    let master = master.ok_or_else(|| CheckpointError::Rpc("criu sent no pty master".into()))?;
    let socket = socket.ok_or_else(|| {
        CheckpointError::invalid(
            "--console-socket",
            "the container has a terminal; name a socket for it",
        )
    })?;
    let stream = UnixStream::connect(socket).map_err(CheckpointError::io(socket))?;
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(CheckpointError::rpc("send the pty master"))?;
    Ok(())
}

/// Undoes a half-made restore: what a failed create undoes, and CRIU's
/// root mount point (always: it is only needed during the restore).
struct Guard {
    made: Cleanup,
    /// CRIU's root mount point, and whether the rootfs is bound there.
    dir: Option<PathBuf>,
    mounted: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The restored processes and their cgroup first, as a create's.
        drop(std::mem::take(&mut self.made));
        if let Some(dir) = &self.dir {
            if self.mounted {
                let _ = umount2(dir, MntFlags::MNT_DETACH);
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}
