//! A synchronous route netlink (`NETLINK_ROUTE`) socket: a request framed
//! with its sequence number, the replies to it picked out of the datagrams
//! the kernel sends back, acknowledgements and dumps. No async runtime, so
//! it can run on the container start path; shared by libcontainer (moving
//! `linux.netDevices` in) and bridge (veths, addresses, routes).

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

pub use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
pub use netlink_packet_route::RouteNetlinkMessage;

/// A payload the kernel sends in answer to a request.
pub type Payload = NetlinkPayload<RouteNetlinkMessage>;

/// Why an exchange with the kernel failed before it answered.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket could not be opened, written or read.
    #[error("netlink {what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    /// A reply could not be decoded.
    #[error("malformed netlink reply: {0}")]
    Decode(String),
}

/// What the kernel answered to a request it acknowledges: `Err(errno)` when
/// it refused it.
pub type Ack = Result<(), i32>;

/// A route netlink socket bound in the network namespace of the thread that
/// opened it.
pub struct RouteSocket {
    socket: Socket,
    seq: u32,
}

impl RouteSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, WireError> {
        let io = |what| move |source| WireError::Io { what, source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io("socket"))?;
        socket.bind_auto().map_err(io("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connect"))?;
        Ok(Self { socket, seq: 0 })
    }

    /// Sends `msg` with `flags`, then hands each payload answering it to
    /// `reply` until that says it was the last (returns true).
    pub fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        mut reply: impl FnMut(Payload) -> bool,
    ) -> Result<(), WireError> {
        let seq = self.send(msg, flags)?;
        loop {
            for answer in self.receive()? {
                if answer.header.sequence_number == seq && reply(answer.payload) {
                    return Ok(());
                }
            }
        }
    }

    /// Sends `msg` asking for an acknowledgement and waits for it.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<Ack, WireError> {
        let mut ack = Ok(());
        self.exchange(msg, flags | NLM_F_ACK, |p| match p {
            NetlinkPayload::Error(e) => {
                ack = errno(&e).map_or(Ok(()), Err);
                true
            }
            _ => false,
        })?;
        Ok(ack)
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, WireError> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|source| WireError::Io {
            what: "send",
            source,
        })?;
        Ok(self.seq)
    }

    /// The messages of the next datagram.
    fn receive(&mut self) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, WireError> {
        let (buf, _) = self
            .socket
            .recv_from_full()
            .map_err(|source| WireError::Io {
                what: "recv",
                source,
            })?;
        let mut offset = 0;
        let mut out = Vec::new();
        while offset < buf.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                .map_err(|e| WireError::Decode(e.to_string()))?;
            let len = msg.header.length as usize;
            out.push(msg);
            if len == 0 {
                break;
            }
            // Messages are 4-byte aligned in the datagram.
            offset += (len + 3) & !3;
        }
        Ok(out)
    }
}

/// The errno of an error payload; none for an acknowledgement.
pub fn errno(e: &netlink_packet_core::ErrorMessage) -> Option<i32> {
    e.code.map(|c| -c.get())
}
