//! One DNS message in, one out: decoding a query, answering it from a
//! [`Zone`], and the small client behind `hull dns query`.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

pub use hickory_proto::op::ResponseCode;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
pub use hickory_proto::rr::RecordType;
use hickory_proto::rr::{DNSClass, Name};

use super::zone::{Answer, Zone};
use super::DnsError;

/// The largest UDP answer sent to a client with EDNS (the DNS flag day's
/// safe size); without EDNS it is 512.
const MAX_UDP: u16 = 1232;

/// What to do with a received message.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// Send these bytes back.
    Send(Vec<u8>),
    /// Not the network's name: pass the query on to an upstream server.
    Forward,
    /// Not worth an answer (not a query, or too short to hold a header).
    Drop,
}

/// The reply to `packet` from `zone`; `tcp` lifts the UDP size limit.
pub fn respond(zone: &Zone, packet: &[u8], tcp: bool) -> Reply {
    let req = match Message::from_vec(packet) {
        Ok(m) => m,
        // A header's worth of bytes names an id to answer FORMERR to.
        Err(_) if packet.len() >= 12 && packet[2] & 0x80 == 0 => {
            let id = u16::from_be_bytes([packet[0], packet[1]]);
            return encode(
                Message::error_msg(id, OpCode::Query, ResponseCode::FormErr),
                tcp,
                512,
            );
        }
        Err(_) => return Reply::Drop,
    };
    let meta = req.metadata;
    if meta.message_type != MessageType::Query {
        return Reply::Drop;
    }
    let mut resp = Message::response(meta.id, meta.op_code);
    resp.metadata.recursion_desired = meta.recursion_desired;
    resp.metadata.recursion_available = true;
    if req.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP);
        resp.set_edns(edns);
    }
    let limit = req.max_payload().min(MAX_UDP);
    if meta.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return encode(resp, tcp, limit);
    }
    let [query] = req.queries.as_slice() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return encode(resp, tcp, limit);
    };
    resp.add_query(query.clone());
    if query.query_class() != DNSClass::IN {
        return Reply::Forward;
    }
    match zone.lookup(query.name(), query.query_type()) {
        Answer::Forward => return Reply::Forward,
        Answer::Records(answers, extra) => {
            resp.metadata.authoritative = true;
            resp.add_answers(answers);
            resp.add_additionals(extra);
        }
        Answer::NoData => resp.metadata.authoritative = true,
        Answer::NxDomain => {
            resp.metadata.authoritative = true;
            resp.metadata.response_code = ResponseCode::NXDomain;
        }
    }
    encode(resp, tcp, limit)
}

/// A SERVFAIL answer to `query` (an upstream failed), if it decodes.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(query).ok()?;
    let mut resp = Message::error_msg(
        req.metadata.id,
        req.metadata.op_code,
        ResponseCode::ServFail,
    );
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_queries(req.queries);
    resp.to_vec().ok()
}

/// The bytes of `msg`; over UDP, when longer than `limit`, the truncated
/// message instead (the client retries over TCP).
fn encode(msg: Message, tcp: bool, limit: u16) -> Reply {
    let Ok(bytes) = msg.to_vec() else {
        return Reply::Drop;
    };
    if tcp || bytes.len() <= usize::from(limit) {
        return Reply::Send(bytes);
    }
    msg.truncate().to_vec().map_or(Reply::Drop, Reply::Send)
}

/// Asks `server` over UDP for `name`'s records of type `ty` (the
/// debugging aid `hull dns query`).
pub fn ask(server: SocketAddr, name: &str, ty: RecordType) -> Result<Message, DnsError> {
    let fqdn = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let name = Name::from_ascii(&fqdn)?;
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, ty));
    let bytes = msg.to_vec()?;
    let local = super::local_addr_for(server);
    let what = server.to_string();
    let sock = UdpSocket::bind(local).map_err(|e| DnsError::Listen {
        addr: local,
        source: e,
    })?;
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .and_then(|()| sock.send_to(&bytes, server))
        .map_err(|e| DnsError::NoAnswer(format!("{what}: {e}")))?;
    let mut buf = [0u8; 65535];
    loop {
        let (n, from) = sock
            .recv_from(&mut buf)
            .map_err(|e| DnsError::NoAnswer(format!("{what}: {e}")))?;
        if from != server {
            continue;
        }
        let reply = Message::from_vec(&buf[..n]).map_err(|e| DnsError::Wire(e.into()))?;
        if reply.metadata.id == msg.metadata.id {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_queries_get_formerr_or_nothing() {
        let zone = Zone::default();
        assert_eq!(respond(&zone, b"", false), Reply::Drop);
        assert_eq!(respond(&zone, &[1, 2, 3], false), Reply::Drop);
        // A header claiming a question that is not there.
        let bad = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a'];
        let Reply::Send(out) = respond(&zone, &bad, false) else {
            panic!("no answer");
        };
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (0x1234, ResponseCode::FormErr)
        );
        // A response is never answered (no loops between resolvers).
        let mut resp = bad;
        resp[2] |= 0x80;
        assert_eq!(respond(&zone, &resp, false), Reply::Drop);
        // Random bytes of every length never panic.
        let mut x: u32 = 0x1234_5678;
        for len in 0..600 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = respond(&zone, &junk, len % 2 == 0);
        }
    }

    #[test]
    fn outside_names_are_forwarded() {
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::A,
        ));
        assert_eq!(
            respond(&Zone::default(), &q.to_vec().unwrap(), false),
            Reply::Forward
        );
    }
}
