//! `criu swrk`: one CRIU process per request, spoken to over a
//! SOCK_SEQPACKET socketpair (its end is the child's fd 3), one protobuf
//! message per packet. While it works CRIU sends notifications (the
//! action scripts: `setup-namespaces`, `post-restore`, `orphan-pts-master`
//! with an fd attached, ...) that are answered before it goes on.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{
    recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use prost::Message;

use super::CheckpointError;

/// The messages of CRIU's `rpc.proto`, generated at build time.
#[allow(clippy::all, missing_docs)]
pub(crate) mod proto {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

pub(crate) use proto::{CriuOpts, CriuReq, CriuReqType, CriuResp};

/// The largest message CRIU sends (runc allows as much).
const MAX_MESSAGE: usize = 10 * 4096;

/// How the CRIU process is started besides `swrk 3`.
#[derive(Default)]
pub(crate) struct Spawn {
    /// Fds the child gets at 0, 1, 2 (none: the caller's own).
    pub stdio: Option<[OwnedFd; 3]>,
    /// Fds the child gets at 4, 5, ... (after the socket at 3).
    pub extra: Vec<OwnedFd>,
}

/// Starts `criu swrk`, sends `req` and answers its notifications with
/// `notify(script, pid, fd)` until the final answer, which is returned if
/// it reports success. `started(pid)` runs once CRIU exists, before the
/// request (restore moves CRIU into the container's cgroup there).
pub(crate) fn call(
    criu: &Path,
    req: &CriuReq,
    spawn: Spawn,
    log: Option<&Path>,
    started: impl FnOnce(u32) -> Result<(), CheckpointError>,
    mut notify: impl FnMut(&str, i32, Option<OwnedFd>) -> Result<(), CheckpointError>,
) -> Result<CriuResp, CheckpointError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(CheckpointError::rpc("socketpair"))?;
    let mut child = start(criu, theirs, spawn)?;
    let what = req.r#type().as_str_name();
    let result = started(child.id()).and_then(|()| converse(&ours, req, &mut notify));
    drop(ours);
    let status = child.wait();
    let resp = result?;
    if !resp.success {
        return Err(CheckpointError::Failed {
            what,
            errno: resp.cr_errno.unwrap_or(0),
            // CRIU's own message is its first error, which may be a
            // harmless one (see `first_error`).
            message: log
                .and_then(first_error)
                .or_else(|| resp.cr_errmsg.clone())
                .unwrap_or_default(),
            log: log.map(Path::to_owned),
        });
    }
    // A pre-dump's CRIU waits for more requests: its exit status says nothing.
    let ok = status.is_ok_and(|s| s.success());
    if !ok && req.r#type() != CriuReqType::PreDump {
        return Err(CheckpointError::Failed {
            what,
            errno: 0,
            message: "criu exited with an error".into(),
            log: log.map(Path::to_owned),
        });
    }
    Ok(resp)
}

/// Spawns `criu swrk 3` with the socket's other end at fd 3.
fn start(criu: &Path, theirs: OwnedFd, spawn: Spawn) -> Result<Child, CheckpointError> {
    let mut cmd = Command::new(criu);
    cmd.args(["swrk", "3"]);
    if let Some([i, o, e]) = spawn.stdio {
        cmd.stdin(Stdio::from(i))
            .stdout(Stdio::from(o))
            .stderr(Stdio::from(e));
    }
    // Every fd the child gets is first moved above the numbers it gets
    // them at, so no dup2 below overwrites another's source.
    let high = |fd: &OwnedFd| {
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(64))
            // SAFETY: F_DUPFD just made this fd, owned by no one else.
            .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) })
            .map_err(CheckpointError::rpc("duplicate an fd for criu"))
    };
    let sock = high(&theirs)?;
    let extra = spawn
        .extra
        .iter()
        .map(high)
        .collect::<Result<Vec<_>, _>>()?;
    let fds: Vec<RawFd> = std::iter::once(&sock)
        .chain(&extra)
        .map(AsRawFd::as_raw_fd)
        .collect();
    // SAFETY: between fork and exec only system calls run, on values made
    // before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::CriuMissing(criu.to_owned())
        } else {
            CheckpointError::CriuStart {
                path: criu.to_owned(),
                source,
            }
        }
    })?;
    drop((theirs, sock, extra));
    Ok(child)
}

/// Sends the request and reads answers until the last one.
fn converse(
    sock: &OwnedFd,
    req: &CriuReq,
    notify: &mut impl FnMut(&str, i32, Option<OwnedFd>) -> Result<(), CheckpointError>,
) -> Result<CriuResp, CheckpointError> {
    write(sock, req)?;
    loop {
        let (resp, fd) = read(sock)?;
        if !resp.success || resp.r#type() != CriuReqType::Notify {
            return Ok(resp);
        }
        let n = resp.notify.unwrap_or_default();
        notify(n.script(), n.pid(), fd)?;
        write(
            sock,
            &CriuReq {
                r#type: CriuReqType::Notify as i32,
                notify_success: Some(true),
                ..Default::default()
            },
        )?;
    }
}

fn write(sock: &OwnedFd, req: &CriuReq) -> Result<(), CheckpointError> {
    send(sock.as_raw_fd(), &req.encode_to_vec(), MsgFlags::empty())
        .map_err(CheckpointError::rpc("send a request to criu"))?;
    Ok(())
}

/// One answer, with the fd it carries if any.
fn read(sock: &OwnedFd) -> Result<(CriuResp, Option<OwnedFd>), CheckpointError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(CheckpointError::rpc("read criu's answer"))?;
    let mut fd = None;
    for c in msg
        .cmsgs()
        .map_err(CheckpointError::rpc("read criu's answer"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel just gave us this fd.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    let n = msg.bytes;
    if n == 0 {
        return Err(CheckpointError::Rpc(
            "criu closed the connection without an answer".into(),
        ));
    }
    if n == MAX_MESSAGE {
        return Err(CheckpointError::Rpc("criu's answer is too large".into()));
    }
    let resp = CriuResp::decode(&buf[..n])
        .map_err(|e| CheckpointError::Rpc(format!("cannot decode criu's answer: {e}")))?;
    Ok((resp, fd))
}

/// The first `Error` line of a CRIU log, as the reason of a failure
/// (the harmless RLIMIT_NOFILE complaint of an unprivileged-resource
/// sandbox skipped).
fn first_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter(|l| l.contains("Error (") && !l.contains("RLIMIT_NOFILE"))
        .map(|l| l.trim().to_owned())
        .next()
}

/// Asks CRIU whether it (and the kernel) can do what `wanted` sets.
pub(crate) fn features(
    criu: &Path,
    wanted: proto::CriuFeatures,
) -> Result<proto::CriuFeatures, CheckpointError> {
    let req = CriuReq {
        r#type: CriuReqType::FeatureCheck as i32,
        // CRIU before 2.12 crashed on a request without options.
        opts: Some(CriuOpts::default()),
        features: Some(wanted),
        ..Default::default()
    };
    let resp = call(
        criu,
        &req,
        Spawn::default(),
        None,
        |_| Ok(()),
        |_, _, _| Ok(()),
    )?;
    Ok(resp.features.unwrap_or_default())
}
