//! The parent ↔ init sync channel: a SEQPACKET socketpair carrying small
//! typed messages, one datagram each (a tag byte and a UTF-8 payload).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use super::ProcessError;

/// What the init and its parent tell each other.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// Parent → init: the init is in its cgroups; go on with setup.
    Proceed,
    /// Setup finished; the init now waits for `start`.
    Ready,
    /// Setup failed; the init exits after sending this.
    Failed(String),
    /// `process.args[0]` was not found; the init exits after sending this.
    NotFound(String),
}

const PROCEED: u8 = b'P';
const READY: u8 = b'R';
const FAILED: u8 = b'F';
const NOT_FOUND: u8 = b'N';

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
        match msg {
            Message::Proceed => buf.push(PROCEED),
            Message::Ready => buf.push(READY),
            Message::Failed(text) | Message::NotFound(text) => {
                buf.push(if matches!(msg, Message::Failed(_)) {
                    FAILED
                } else {
                    NOT_FOUND
                });
                buf.extend_from_slice(text.as_bytes());
            }
        }
        send(self.0.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)
            .map_err(ProcessError::sys("send on sync channel"))?;
        Ok(())
    }

    /// Receives one message; `None` when the other end closed without sending.
    pub fn recv(&self) -> Result<Option<Message>, ProcessError> {
        let mut buf = [0u8; 8192];
        let n = loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => break r.map_err(ProcessError::sys("recv on sync channel"))?,
            }
        };
        Ok(match buf[..n] {
            [] => None,
            [PROCEED] => Some(Message::Proceed),
            [READY] => Some(Message::Ready),
            [FAILED, ref text @ ..] => Some(Message::Failed(String::from_utf8_lossy(text).into())),
            [NOT_FOUND, ref text @ ..] => {
                Some(Message::NotFound(String::from_utf8_lossy(text).into()))
            }
            _ => return Err(ProcessError::Protocol),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_the_pair() {
        let (a, b) = pair().unwrap();
        b.send(&Message::Failed("no such file".into())).unwrap();
        b.send(&Message::Ready).unwrap();
        assert_eq!(
            a.recv().unwrap(),
            Some(Message::Failed("no such file".into()))
        );
        assert_eq!(a.recv().unwrap(), Some(Message::Ready));
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }
}
