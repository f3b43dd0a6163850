//! `hull checkpoint`: dumps a running container with CRIU; unless
//! `--leave-running` or `--pre-dump`, its processes and cgroup are gone
//! afterwards and it stays `stopped` (runc deletes it), keeping its network
//! attachment (address lease, published ports) for `hull restore` of the
//! same id; `hull delete` frees them.

use std::path::PathBuf;

use bridge::ContainerNetwork;
use libcontainer::checkpoint::{empty_ns_bit, CheckpointError, CheckpointOptions, Criu};
use libcontainer::Container;

use super::network;
use crate::cli::{CheckpointArgs, Cli, CriuFlags};
use crate::{Failure, Outcome};

#[inline(never)]
pub fn checkpoint(cli: &Cli, args: &CheckpointArgs) -> Outcome {
    let fail = |e: String| Failure::new(format!("hull checkpoint failed: {e}"));
    let mut opts = options(cli, args).map_err(|e| fail(e.to_string()))?;
    let container =
        Container::load(cli.state_root()?, &args.id).map_err(|e| fail(e.to_string()))?;
    let attachment = ContainerNetwork::recorded(&container);
    if let Some(a) = &attachment {
        opts.veths.push(a.ifname().to_owned());
    }
    container
        .checkpoint(&opts)
        .map_err(|e| fail(e.to_string()))?;
    match &attachment {
        Some(a) if !(args.leave_running || args.pre_dump) => {
            a.checkpointed().map_err(network::net_err)?
        }
        _ => {}
    }
    Ok(0)
}

fn options(cli: &Cli, args: &CheckpointArgs) -> Result<CheckpointOptions, CheckpointError> {
    let f = &args.criu;
    let page_server = match &args.page_server {
        Some(s) => Some(page_server(s)?),
        None => None,
    };
    Ok(CheckpointOptions {
        criu: criu(cli),
        image_path: image_path(f)?,
        work_path: f.work_path.clone(),
        parent_path: args.parent_path.clone(),
        leave_running: args.leave_running,
        pre_dump: args.pre_dump,
        flags: criu_flags(f)?,
        status_fd: (args.status_fd >= 0).then_some(args.status_fd),
        page_server,
        veths: Vec::new(),
    })
}

/// The flags `checkpoint` and `restore` share, as CRIU takes them.
pub(super) fn criu_flags(
    f: &CriuFlags,
) -> Result<libcontainer::checkpoint::CriuFlags, CheckpointError> {
    Ok(libcontainer::checkpoint::CriuFlags {
        tcp_established: f.tcp_established,
        ext_unix_sk: f.ext_unix_sk,
        shell_job: f.shell_job,
        file_locks: f.file_locks,
        cgroup_mode: f
            .manage_cgroups_mode
            .as_deref()
            .map(str::parse)
            .transpose()?,
        empty_ns: empty_ns(f)?,
        auto_dedup: f.auto_dedup,
        lazy_pages: f.lazy_pages,
    })
}

/// `--criu`, else `criu` on PATH.
pub(super) fn criu(cli: &Cli) -> Criu {
    cli.criu
        .clone()
        .map(|path| Criu { path })
        .unwrap_or_default()
}

/// `--image-path`, else `checkpoint` in the working directory (runc's default).
pub(super) fn image_path(f: &CriuFlags) -> Result<PathBuf, CheckpointError> {
    match &f.image_path {
        Some(p) => Ok(p.clone()),
        None => std::env::current_dir()
            .map(|d| d.join("checkpoint"))
            .map_err(|source| CheckpointError::Io {
                path: ".".into(),
                source,
            }),
    }
}

fn empty_ns(f: &CriuFlags) -> Result<u32, CheckpointError> {
    f.empty_ns
        .iter()
        .try_fold(0, |mask, ns| Ok(mask | empty_ns_bit(ns)?))
}

/// `ADDRESS:PORT`.
fn page_server(s: &str) -> Result<(String, i32), CheckpointError> {
    let bad = || CheckpointError::Invalid {
        flag: "--page-server",
        reason: format!("{s:?}: use ADDRESS:PORT"),
    };
    let (address, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if address.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((address.trim_matches(['[', ']']).to_owned(), i32::from(port)))
}
