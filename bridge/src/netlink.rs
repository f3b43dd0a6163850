//! A synchronous rtnetlink socket: one request, its acknowledgement (or the
//! kernel's errno), and dumps. No async runtime on the container start path.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::NetError;

/// A route netlink socket bound in the network namespace it was opened in.
pub struct Route {
    socket: Socket,
    seq: u32,
}

/// Flags for a request that creates a new object (fails if it exists).
pub const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

impl Route {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetError::io("netlink socket"))?;
        socket.bind_auto().map_err(NetError::io("netlink bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetError::io("netlink connect"))?;
        Ok(Self { socket, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, NetError> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(NetError::io("netlink send"))?;
        Ok(self.seq)
    }

    /// Sends `msg` and waits for the kernel's acknowledgement. `what` names
    /// the operation in errors.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<(), NetError> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != seq {
                    continue;
                }
                if let NetlinkPayload::Error(e) = reply.payload {
                    return match e.code {
                        None => Ok(()),
                        Some(code) => Err(NetError::Netlink {
                            what: what.to_owned(),
                            errno: -code.get(),
                        }),
                    };
                }
            }
        }
    }

    /// RTM_GETLINK for one link (by name or index in `msg`).
    pub fn get_link(&mut self, msg: LinkMessage) -> Result<LinkMessage, NetError> {
        let seq = self.send(RouteNetlinkMessage::GetLink(msg), 0)?;
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => return Ok(m),
                    NetlinkPayload::Error(e) => {
                        return Err(NetError::Netlink {
                            what: "get link".into(),
                            errno: -e.code.map_or(0, |c| c.get()),
                        })
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends a dump request and collects every reply message.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        loop {
            for reply in self.receive()? {
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(NetError::Netlink {
                            what: "dump".into(),
                            errno: -e.code.map_or(0, |c| c.get()),
                        })
                    }
                    _ => {}
                }
            }
        }
    }

    /// Destination subnets of the IPv4 routes in the main table.
    pub fn ipv4_route_destinations(&mut self) -> Result<Vec<crate::Subnet>, NetError> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
        let mut req = RouteMessage::default();
        req.header.address_family = netlink_packet_route::AddressFamily::Inet;
        let mut out = Vec::new();
        for m in self.dump(RouteNetlinkMessage::GetRoute(req))? {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.table != RouteMessage::default().header.table && r.header.table != 254 {
                continue;
            }
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            let dst = dst.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            if let Ok(s) = crate::Subnet::new(dst, r.header.destination_prefix_length) {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn receive(&mut self) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, NetError> {
        let (buf, _) = self
            .socket
            .recv_from_full()
            .map_err(NetError::io("netlink recv"))?;
        let mut offset = 0;
        let mut out = Vec::new();
        while offset < buf.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                .map_err(|e| NetError::Decode(e.to_string()))?;
            let len = msg.header.length as usize;
            out.push(msg);
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
        }
        Ok(out)
    }
}
