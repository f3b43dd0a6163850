//! `checkpoint`: the container's process tree dumped to an image directory.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::image::{outside_stdio, Image};
use super::rpc::{self, proto, CriuOpts, CriuReq, CriuReqType};
use super::{
    common_opts, log_path, mounts, namespaces, open_dir, open_work_dir, CheckpointError, Criu,
    CriuFlags,
};
use crate::container::Container;
use crate::spec::Bundle;
use crate::state::{Status, CHECKPOINTED};

/// How to checkpoint (runc's `checkpoint` flags).
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub criu: Criu,
    pub image_path: PathBuf,
    /// Where CRIU writes its log and scratch files (default: the image path).
    pub work_path: Option<PathBuf>,
    /// A previous pre-dump's images, relative to `image_path`.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    /// Dump memory only, leaving the container running (iterative migration).
    pub pre_dump: bool,
    pub flags: CriuFlags,
    /// Where CRIU signals that the lazy-pages server is ready (a `\0`).
    pub status_fd: Option<i32>,
    /// `ADDRESS:PORT` of a page server to send the memory to.
    pub page_server: Option<(String, i32)>,
    /// The container's interfaces that are one end of a veth pair whose
    /// other end the runtime made on the host: a restore must say where
    /// that end goes back ([`super::VethPair`]).
    pub veths: Vec<String>,
}

impl Container {
    /// Dumps the running (or paused) container into `opts.image_path`.
    /// Unless `leave_running` or `pre_dump`, CRIU kills the processes
    /// afterwards and the container stays, `stopped`, with its cgroup
    /// gone, until a restore under its id takes its place or it is deleted
    /// (runc deletes it instead; keeping it lets the caller keep what the
    /// restore gives back, such as a network attachment).
    /// A checkpoint refused before CRIU ran leaves no image directory
    /// behind if it made one; after a CRIU failure the directory stays,
    /// for its log.
    pub fn checkpoint(&self, opts: &CheckpointOptions) -> crate::Result<()> {
        let made = !opts.image_path.exists();
        let result = checkpoint(self, opts);
        if made && matches!(&result, Err(e) if !matches!(e, CheckpointError::Failed { .. })) {
            let _ = std::fs::remove_dir_all(&opts.image_path);
        }
        result?;
        if !(opts.leave_running || opts.pre_dump) {
            self.release_checkpointed(&opts.image_path)?;
        }
        Ok(())
    }

    /// Whether the container is a stopped one a checkpoint left (see
    /// [`Container::checkpoint`]).
    pub fn is_checkpointed(&self) -> bool {
        self.status() == Status::Stopped && self.companion_path(CHECKPOINTED).exists()
    }

    /// Once CRIU has killed the processes: waits for the init to be gone,
    /// removes the cgroup and marks the container checkpointed.
    fn release_checkpointed(&self, image: &std::path::Path) -> crate::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status() != Status::Stopped {
            if Instant::now() > deadline {
                return Err(CheckpointError::Rpc(
                    "the container's init still runs after criu dumped it".into(),
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Ok(cg) = self.cgroup() {
            cg.destroy()?;
        }
        let marker = self.companion_path(CHECKPOINTED);
        std::fs::write(&marker, image.as_os_str().as_encoded_bytes())
            .map_err(crate::Error::io(&marker))
    }
}

fn checkpoint(c: &Container, opts: &CheckpointOptions) -> Result<(), CheckpointError> {
    let status = c.status();
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(CheckpointError::NotRunning(status));
    }
    let pid = c.init_pid().as_raw();
    check_features(opts)?;
    if let Some(p) = &opts.parent_path {
        if p.is_absolute() {
            return Err(CheckpointError::invalid(
                "--parent-path",
                "must be relative",
            ));
        }
        if !opts.image_path.join(p).is_dir() {
            return Err(CheckpointError::invalid(
                "--parent-path",
                format!("{} is not a directory", opts.image_path.join(p).display()),
            ));
        }
    }
    let state = c.state();
    let bundle = Bundle::load(&state.bundle)
        .map_err(|e| CheckpointError::invalid("bundle", e.to_string()))?;
    let image_dir = open_dir(&opts.image_path, true)?;
    let work_dir = open_work_dir(opts.work_path.as_ref())?;
    let mut o = CriuOpts {
        images_dir_fd: image_dir.as_raw_fd(),
        work_dir_fd: work_dir.as_ref().map(|d| d.as_raw_fd()),
        log_file: Some("dump.log".into()),
        pid: Some(pid),
        root: Some(state.rootfs.to_string_lossy().into_owned()),
        leave_running: Some(opts.leave_running),
        parent_img: opts
            .parent_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        track_mem: opts.parent_path.as_ref().map(|_| true),
        ..common_opts(&bundle.spec, &opts.flags)
    };
    if let Some((address, port)) = &opts.page_server {
        o.ps = Some(proto::CriuPageServerInfo {
            address: Some(address.clone()),
            port: Some(*port),
            ..Default::default()
        });
    }
    if let Ok(cg) = c.cgroup() {
        // CRIU freezes the tree with the freezer rather than ptrace.
        let freezer = cg
            .dirs
            .iter()
            .find(|d| d.controllers.iter().any(|x| x == "freezer"));
        o.freeze_cgroup = freezer.map(|d| d.path.to_string_lossy().into_owned());
    }
    o.external
        .extend(namespaces::external_for_dump(&bundle.spec)?);
    if !opts.pre_dump {
        let externals = mounts::externals(pid, &bundle.spec)?;
        o.ext_mnt = mounts::for_dump(&externals);
        let (stdio, files) = outside_stdio(pid, &mounts::mount_ids(pid)?)?;
        o.external.extend(files);
        Image {
            stdio,
            mounts: externals,
            veths: opts.veths.clone(),
        }
        .save(&opts.image_path)?;
    }
    let req = CriuReq {
        r#type: if opts.pre_dump {
            CriuReqType::PreDump
        } else {
            CriuReqType::Dump
        } as i32,
        opts: Some(o),
        ..Default::default()
    };
    let log = log_path(opts.work_path.as_ref(), &opts.image_path, "dump.log");
    let mut status_fd = opts.status_fd;
    rpc::call(
        &opts.criu.path,
        &req,
        rpc::Spawn::default(),
        Some(&log),
        |_| Ok(()),
        |script, _, _| {
            if script == "status-ready" {
                if let Some(fd) = status_fd.take() {
                    // SAFETY: the caller handed this fd over for this.
                    unsafe {
                        libc::write(fd, c"".as_ptr().cast(), 1);
                        libc::close(fd);
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Refuses, before anything is written, what CRIU or the kernel cannot do.
fn check_features(opts: &CheckpointOptions) -> Result<(), CheckpointError> {
    let track = opts.pre_dump || opts.parent_path.is_some();
    if track {
        let have = rpc::features(
            &opts.criu.path,
            proto::CriuFeatures {
                mem_track: Some(true),
                ..Default::default()
            },
        )?;
        if have.mem_track != Some(true) {
            let flag = if opts.pre_dump {
                "--pre-dump"
            } else {
                "--parent-path"
            };
            return Err(CheckpointError::Unsupported {
                flag,
                why: "it needs memory change tracking (soft-dirty page bits, \
                      CONFIG_MEM_SOFT_DIRTY), which this kernel lacks"
                    .into(),
            });
        }
    }
    if opts.flags.lazy_pages {
        super::check_lazy_pages(&opts.criu)?;
        if let Some(fd) = opts.status_fd {
            // SAFETY: F_GETFL on an fd number only reads its flags.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            if flags < 0 || flags & (libc::O_WRONLY | libc::O_RDWR) == 0 {
                return Err(CheckpointError::invalid(
                    "--status-fd",
                    format!("{fd} is not an fd open for writing"),
                ));
            }
        }
    }
    Ok(())
}
