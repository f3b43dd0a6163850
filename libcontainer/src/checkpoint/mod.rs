//! Checkpoint and restore with CRIU, as runc does them: the container's
//! process tree is dumped to an image directory and rebuilt later as a new
//! container of the same bundle (possibly under another id).
//!
//! CRIU is driven through its RPC interface (`criu swrk` on a socketpair,
//! see [`rpc`]), not its command line: the RPC is what CRIU keeps stable
//! for runtimes, it passes fds (the image directory, a terminal's new pty
//! master) and reports progress as notifications the runtime answers
//! (hooks run at `setup-namespaces`, the restored pid comes with
//! `post-restore`). The messages are generated at build time with
//! prost-build from CRIU's `rpc.proto`, vendored unchanged in `proto/`.
//! The `rust-criu` crate was not used: its generated code is checked in
//! for one `protobuf` crate version and it exposes no notifications or fd
//! passing, which restore needs.
//!
//! What CRIU must be told so the restore rebuilds the same container:
//! the external mounts ([`mounts`]), the stdio that came from outside
//! ([`image`]), namespaces joined by path ([`namespaces`]), the cgroup
//! (the freezer for the dump; on restore CRIU runs in the new cgroup and
//! is given it as the cgroup root) and the console (CRIU keeps the pty
//! slave and hands over a new master, `orphan_pts_master`).
//!
//! The network namespace. A namespace the engine made and the container
//! joined by path (Podman, containerd, CNI) is the engine's: it is left
//! out of the dump and the engine hands a new, re-plumbed one to the
//! restore, as with runc ([`namespaces`]). A namespace the container made
//! itself is dumped by CRIU with its links, addresses, routes and sockets,
//! and rebuilt as it was on restore, rather than restored empty
//! (`--empty-ns network`) and wired again: that keeps whatever the
//! container set up inside it, and `--tcp-established` needs the sockets'
//! addresses to exist when CRIU repairs them, before the processes run.
//! An interface whose veth peer the runtime made on the host (a hull
//! network's `eth0`) is recorded in the image ([`CheckpointOptions::veths`]);
//! CRIU recreates the pair on restore with the peer back on the host under
//! the name and bridge the caller gives ([`VethPair`]). What lives only on
//! the host (the address lease, the published ports' rules) is the
//! caller's to keep: a checkpoint without `--leave-running` leaves the
//! container `stopped` rather than deleted, so that it is kept until a
//! restore under the same id takes the container's place or a delete
//! frees it.

mod dump;
mod error;
mod image;
mod mounts;
mod namespaces;
mod restore;
mod rpc;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use dump::CheckpointOptions;
pub use error::CheckpointError;
pub use restore::{restore, RestoreOptions, VethPair};

use rpc::proto::{self, CriuCgMode, CriuNetworkLockMethod, CriuOpts};

/// What `checkpoint` and `restore` both tell CRIU (runc's shared flags).
#[derive(Debug, Clone, Default)]
pub struct CriuFlags {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub cgroup_mode: Option<CgroupMode>,
    /// CLONE_NEW* bits of namespaces made empty on restore.
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

/// The CRIU binary to run (runc's `--criu`, default `criu` on `PATH`).
#[derive(Debug, Clone)]
pub struct Criu {
    pub path: PathBuf,
}

impl Default for Criu {
    fn default() -> Self {
        Self {
            path: PathBuf::from("criu"),
        }
    }
}

/// How CRIU treats cgroups (`--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl std::str::FromStr for CgroupMode {
    type Err = CheckpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "soft" => Self::Soft,
            "full" => Self::Full,
            "strict" => Self::Strict,
            "ignore" => Self::Ignore,
            _ => {
                return Err(CheckpointError::invalid(
                    "--manage-cgroups-mode",
                    format!("{s:?} (use soft, full, strict or ignore)"),
                ))
            }
        })
    }
}

/// The CLONE_NEW* bit of a namespace `--empty-ns` names (only the network
/// namespace, as in runc: the others cannot be left empty).
pub fn empty_ns_bit(name: &str) -> Result<u32, CheckpointError> {
    match name {
        "network" => Ok(libc::CLONE_NEWNET as u32),
        _ => Err(CheckpointError::invalid(
            "--empty-ns",
            format!("namespace {name:?} is not supported (only network is)"),
        )),
    }
}

/// The options dump and restore share.
fn common_opts(spec: &Spec, f: &CriuFlags) -> CriuOpts {
    let config_file = match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        // An empty annotation asks for no configuration file at all.
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    };
    CriuOpts {
        log_level: Some(4),
        manage_cgroups: Some(true),
        manage_cgroups_mode: f.cgroup_mode.map(|m| {
            let mode = match m {
                CgroupMode::Soft => CriuCgMode::Soft,
                CgroupMode::Full => CriuCgMode::Full,
                CgroupMode::Strict => CriuCgMode::Strict,
                CgroupMode::Ignore => CriuCgMode::Ignore,
            };
            mode as i32
        }),
        notify_scripts: Some(true),
        shell_job: Some(f.shell_job),
        tcp_established: Some(f.tcp_established),
        ext_unix_sk: Some(f.ext_unix_sk),
        file_locks: Some(f.file_locks),
        empty_ns: Some(f.empty_ns),
        orphan_pts_master: Some(true),
        auto_dedup: Some(f.auto_dedup),
        lazy_pages: Some(f.lazy_pages),
        // hull's own rules are nftables ones; no iptables needed.
        network_lock: Some(CriuNetworkLockMethod::Nftables as i32),
        config_file,
        ..Default::default()
    }
}

/// Opens (creating it 0700 if `create`) a directory CRIU gets by fd.
fn open_dir(path: &Path, create: bool) -> Result<OwnedFd, CheckpointError> {
    use std::os::unix::fs::DirBuilderExt;
    if create {
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
        {
            Ok(()) => {}
            Err(e) => return Err(CheckpointError::io(path)(e)),
        }
    }
    let dir = std::fs::File::open(path).map_err(CheckpointError::io(path))?;
    Ok(OwnedFd::from(dir))
}

/// CRIU's work directory (`--work-path`), made if missing and opened; none
/// when not given: CRIU then works in the image directory.
fn open_work_dir(work_path: Option<&PathBuf>) -> Result<Option<OwnedFd>, CheckpointError> {
    work_path.map(|p| open_dir(p, true)).transpose()
}

/// Where CRIU writes its log `name`: the work directory if one was given,
/// else the image directory.
fn log_path(work_path: Option<&PathBuf>, image_path: &Path, name: &str) -> PathBuf {
    work_path.map_or(image_path, PathBuf::as_path).join(name)
}

/// Refuses `--lazy-pages` unless CRIU and the kernel (userfaultfd) can.
fn check_lazy_pages(criu: &Criu) -> Result<(), CheckpointError> {
    let have = rpc::features(
        &criu.path,
        proto::CriuFeatures {
            lazy_pages: Some(true),
            ..Default::default()
        },
    )?;
    if have.lazy_pages != Some(true) {
        return Err(CheckpointError::Unsupported {
            flag: "--lazy-pages",
            why: "it needs userfaultfd, which CRIU reports unavailable".into(),
        });
    }
    Ok(())
}
