//! The parent ↔ init sync channel: a SEQPACKET socketpair carrying small
//! typed messages, one datagram each (a tag byte, and for a failure the
//! [`InitError`] as JSON).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use super::error::{InitError, ProcessError};

/// What the init and its parent tell each other.
#[derive(Debug)]
pub(crate) enum Message {
    /// Init → parent: the container's namespaces exist; run the
    /// createRuntime and prestart hooks now (before pivot_root).
    RunHooks,
    /// Parent → init: those hooks succeeded.
    HooksDone,
    /// Parent → init: the cgroups are set up (with systemd: systemd has
    /// moved the init into its scope); the init may now enter them and go on.
    Placed,
    /// Parent → init, before `Placed`: the detached tree of the next
    /// idmapped bind mount.
    IdmappedMount(OwnedFd),
    /// Setup finished; the init now waits for `start`.
    Ready,
    /// Parent → init, after `Ready`: the container is recorded; the init no
    /// longer dies with the creating process.
    HandedOver,
    /// Setup failed; the init exits after sending this.
    Failed(InitError),
}

const IDMAPPED: u8 = b'I';
const RUN_HOOKS: u8 = b'H';
const HOOKS_DONE: u8 = b'D';
const PLACED: u8 = b'P';
const READY: u8 = b'R';
const HANDED_OVER: u8 = b'O';
const FAILED: u8 = b'F';

/// The longest datagram [`Channel::recv`] takes.
const MAX_DATAGRAM: usize = 8192;
/// The longest text of an [`InitError`] sent whole; longer ones are cut.
const MAX_TEXT: usize = 4096;

/// One end of the channel.
pub(crate) struct Channel(OwnedFd);

/// Creates a connected pair: `(parent end, init end)`, both close-on-exec.
pub(crate) fn pair() -> Result<(Channel, Channel), ProcessError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ProcessError::sys("socketpair"))?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), ProcessError> {
        let mut buf = Vec::new();
        let mut fds = Vec::new();
        match msg {
            Message::Ready => buf.push(READY),
            Message::HandedOver => buf.push(HANDED_OVER),
            Message::RunHooks => buf.push(RUN_HOOKS),
            Message::HooksDone => buf.push(HOOKS_DONE),
            Message::Placed => buf.push(PLACED),
            Message::IdmappedMount(fd) => {
                buf.push(IDMAPPED);
                fds.push(fd.as_raw_fd());
            }
            Message::Failed(e) => {
                buf.push(FAILED);
                serde_json::to_writer(&mut buf, &e.clone().shortened(MAX_TEXT))
                    .map_err(|_| ProcessError::Protocol)?;
            }
        }
        let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
            vec![]
        } else {
            vec![ControlMessage::ScmRights(&fds)]
        };
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&buf)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(ProcessError::sys("send on sync channel"))?;
        Ok(())
    }

    /// Receives one message; `None` when the other end closed without sending.
    pub fn recv(&self) -> Result<Option<Message>, ProcessError> {
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ProcessError::sys("recv on sync channel")(e)),
                Ok(m) => {
                    let fd = m.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                        _ => None,
                    });
                    break (m.bytes, fd);
                }
            }
        };
        Ok(match (&buf[..n], fd) {
            ([], _) => None,
            ([READY], _) => Some(Message::Ready),
            ([HANDED_OVER], _) => Some(Message::HandedOver),
            ([RUN_HOOKS], _) => Some(Message::RunHooks),
            ([HOOKS_DONE], _) => Some(Message::HooksDone),
            ([PLACED], _) => Some(Message::Placed),
            // SAFETY: the fd arrived with this message and belongs to us now.
            ([IDMAPPED], Some(fd)) => {
                Some(Message::IdmappedMount(unsafe { OwnedFd::from_raw_fd(fd) }))
            }
            ([FAILED, json @ ..], _) => Some(Message::Failed(
                serde_json::from_slice(json).map_err(|_| ProcessError::Protocol)?,
            )),
            _ => return Err(ProcessError::Protocol),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross_the_pair() {
        let (a, b) = pair().unwrap();
        let failed = InitError::Setgroups {
            count: 70_000,
            limit: Some(65_536),
            errno: libc::EINVAL,
        };
        b.send(&Message::Failed(failed.clone())).unwrap();
        let long = InitError::NotFound("x".repeat(100_000));
        b.send(&Message::Failed(long)).unwrap();
        b.send(&Message::Ready).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        b.send(&Message::IdmappedMount(file.into())).unwrap();
        assert!(matches!(a.recv().unwrap(), Some(Message::Failed(e)) if e == failed));
        assert!(
            matches!(a.recv().unwrap(), Some(Message::Failed(InitError::NotFound(t))) if t.len() == MAX_TEXT + 3)
        );
        assert!(matches!(a.recv().unwrap(), Some(Message::Ready)));
        let Some(Message::IdmappedMount(fd)) = a.recv().unwrap() else {
            panic!("no fd")
        };
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(link, std::path::Path::new("/dev/null"));
        drop(b);
        assert!(a.recv().unwrap().is_none());
    }
}
