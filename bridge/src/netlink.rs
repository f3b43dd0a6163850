//! A synchronous rtnetlink socket: one request, its acknowledgement (or the
//! kernel's errno), and dumps. No async runtime on the container start path.
//! The framing is `netlink-wire`'s; this names the operations in
//! [`NetError`]s.

use netlink_packet_core::{NetlinkPayload, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_wire::{RouteSocket, WireError};

use crate::NetError;

/// A route netlink socket bound in the network namespace it was opened in.
pub struct Route {
    socket: RouteSocket,
}

/// Flags for a request that creates a new object (fails if it exists).
pub const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

impl Route {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetError> {
        Ok(Self {
            socket: RouteSocket::open().map_err(wire_error)?,
        })
    }

    /// Sends `msg` and waits for the kernel's acknowledgement. `what` names
    /// the operation in errors.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<(), NetError> {
        self.socket
            .request(msg, flags)
            .map_err(wire_error)?
            .map_err(|errno| NetError::Netlink {
                what: what.to_owned(),
                errno,
            })
    }

    /// RTM_GETLINK for one link (by name or index in `msg`).
    pub fn get_link(&mut self, msg: LinkMessage) -> Result<LinkMessage, NetError> {
        let mut answer = Err(0);
        self.socket
            .exchange(RouteNetlinkMessage::GetLink(msg), 0, |p| match p {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    answer = Ok(m);
                    true
                }
                NetlinkPayload::Error(e) => {
                    answer = Err(netlink_wire::errno(&e).unwrap_or(0));
                    true
                }
                _ => false,
            })
            .map_err(wire_error)?;
        answer.map_err(|errno| NetError::Netlink {
            what: "get link".into(),
            errno,
        })
    }

    /// Sends a dump request and collects every reply message.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.socket
            .exchange(msg, NLM_F_DUMP, |p| match p {
                NetlinkPayload::Done(_) => true,
                NetlinkPayload::InnerMessage(m) => {
                    out.push(m);
                    false
                }
                NetlinkPayload::Error(e) => {
                    failed = netlink_wire::errno(&e);
                    failed.is_some()
                }
                _ => false,
            })
            .map_err(wire_error)?;
        match failed {
            Some(errno) => Err(NetError::Netlink {
                what: "dump".into(),
                errno,
            }),
            None => Ok(out),
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
}

fn wire_error(e: WireError) -> NetError {
    match e {
        WireError::Io { what, source } => NetError::io(format!("netlink {what}"))(source),
        WireError::Decode(message) => NetError::Decode(message),
    }
}
