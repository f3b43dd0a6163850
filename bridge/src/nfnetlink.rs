//! The netfilter netlink socket (`NETLINK_NETFILTER`) that the firewall
//! (nf_tables) and conntrack flushing talk through: one request and its
//! reply, datagrams in and out, and the framing of batches.

use std::io;
use std::num::NonZeroI32;

use netlink_packet_core::{
    DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// Why a firewall change failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The netlink socket could not be opened, written or read.
    #[error("netfilter netlink socket: {0}")]
    Socket(#[from] io::Error),
    /// The kernel refused a request; `what` names the request and its object.
    #[error("{what}: {}", io::Error::from_raw_os_error(*.errno))]
    Kernel { what: String, errno: i32 },
    /// The kernel's reply could not be understood.
    #[error("malformed netlink reply: {0}")]
    Reply(String),
}

impl NftError {
    /// The errno the kernel answered with, for [`NftError::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub(crate) fn kernel(what: impl Into<String>, code: NonZeroI32) -> Self {
        Self::Kernel {
            what: what.into(),
            errno: -code.get(),
        }
    }

    /// Whether the kernel answered `ENOENT`: the object is not there.
    pub(crate) fn is_enoent(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }
}

pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u8 = 16;
const NFNL_BATCH_GENID: u16 = 1;
/// Enough for the largest datagram the kernel sends (32 KiB dump chunks).
const RECV_BUFFER: usize = 64 * 1024;
/// The kernel answers within the send call; this only guards against bugs.
const REPLY_TIMEOUT: TimeVal = TimeVal::new(10, 0);

/// A `NETLINK_NETFILTER` socket, bound to the network namespace of the thread
/// that opened it.
pub(crate) struct NfSocket {
    socket: Socket,
    seq: u32,
    buffer: Vec<u8>,
}

impl NfSocket {
    pub(crate) fn open() -> Result<Self, NftError> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Acknowledgements without a copy of the request.
        socket.set_cap_ack(true)?;
        setsockopt(&socket, sockopt::ReceiveTimeout, &REPLY_TIMEOUT).map_err(io::Error::from)?;
        Ok(Self {
            socket,
            seq: 0,
            buffer: Vec::with_capacity(RECV_BUFFER),
        })
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// Sends one request (`flags` besides `NLM_F_REQUEST`: `NLM_F_DUMP` or
    /// `NLM_F_ACK`) and returns the reply's messages up to its end.
    pub(crate) fn request(
        &mut self,
        family: NetfilterProtoFamily,
        inner: impl Into<NetfilterMessageInner>,
        flags: u16,
        what: &str,
    ) -> Result<Vec<NetfilterMessage>, NftError> {
        let seq = self.next_seq();
        self.send(&[message(family, 0, inner.into(), NLM_F_REQUEST | flags, seq)])?;
        let mut replies = Vec::new();
        loop {
            for msg in self.recv()? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                let end = match msg.payload {
                    NetlinkPayload::InnerMessage(reply) => {
                        replies.push(reply);
                        continue;
                    }
                    NetlinkPayload::Error(e) => e.code,
                    NetlinkPayload::Done(done) => NonZeroI32::new(done.code),
                    _ => continue,
                };
                return match end {
                    None => Ok(replies),
                    Some(code) => Err(NftError::kernel(what, code)),
                };
            }
        }
    }

    pub(crate) fn send(
        &mut self,
        msgs: &[NetlinkMessage<NetfilterMessage>],
    ) -> Result<(), NftError> {
        let len = msgs.iter().map(|m| m.buffer_len()).sum();
        let mut buffer = vec![0; len];
        let mut offset = 0;
        for msg in msgs {
            msg.serialize(&mut buffer[offset..]);
            offset += msg.buffer_len();
        }
        self.reserve_send_buffer(len)?;
        self.socket.send(&buffer, 0)?;
        Ok(())
    }

    /// A batch travels in one datagram, which must fit the send buffer.
    fn reserve_send_buffer(&self, len: usize) -> Result<(), NftError> {
        // The kernel's margin for a netlink datagram; it reports the
        // buffer doubled and doubles what is set.
        const SLACK: usize = 32;
        let current = getsockopt(&self.socket, sockopt::SndBuf).map_err(io::Error::from)?;
        if len + SLACK > current {
            setsockopt(&self.socket, sockopt::SndBufForce, &(len + SLACK))
                .map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// The messages of one datagram.
    pub(crate) fn recv(&mut self) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, NftError> {
        self.buffer.clear();
        let len = self.socket.recv(&mut self.buffer, 0)?;
        let mut msgs = Vec::new();
        let mut offset = 0;
        while offset < len {
            let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&self.buffer[offset..len])
                .map_err(|e| NftError::Reply(e.to_string()))?;
            let msg_len = msg.header.length as usize;
            if msg_len == 0 {
                break;
            }
            offset += msg_len.next_multiple_of(4);
            msgs.push(msg);
        }
        Ok(msgs)
    }
}

/// A batch delimiter, addressed to the nf_tables subsystem.
pub(crate) fn control_message(
    control: ControlMessage,
    seq: u32,
) -> NetlinkMessage<NetfilterMessage> {
    let family = NetfilterProtoFamily::Unspec;
    message(
        family,
        NFNL_SUBSYS_NFTABLES,
        control.into(),
        NLM_F_REQUEST,
        seq,
    )
}

/// The batch-begin message; with a generation, the kernel refuses the batch
/// if the ruleset has moved on since.
pub(crate) fn batch_begin(generation: Option<u32>) -> ControlMessage {
    let genid = generation.map(|g| DefaultNla::new(NFNL_BATCH_GENID, g.to_be_bytes().to_vec()));
    ControlMessage::Other {
        message_type: NFNL_MSG_BATCH_BEGIN,
        attributes: genid.into_iter().collect(),
    }
}

/// One netfilter message to send, its header finished.
pub(crate) fn message(
    family: NetfilterProtoFamily,
    res_id: u16,
    inner: NetfilterMessageInner,
    flags: u16,
    seq: u32,
) -> NetlinkMessage<NetfilterMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let netfilter = NetfilterMessage::new(NetfilterHeader::new(family, 0, res_id), inner);
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(netfilter));
    msg.finalize();
    msg
}
