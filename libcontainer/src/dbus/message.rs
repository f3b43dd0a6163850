//! D-Bus messages: the fixed header, the header fields, and the body.

use std::io::Read;

use super::wire::{self, Reader, Value};
use super::DbusError;

/// The message types of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

/// Header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SIGNATURE: u8 = 8;

/// Largest message the specification allows (128 MiB).
const MAX_MESSAGE: usize = 128 << 20;

/// One message, sent or received.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub kind: Option<Kind>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    /// A method call of `interface.member` on `path` at `destination`.
    pub fn call(destination: &str, path: &str, interface: &str, member: &str) -> Self {
        Self {
            kind: Some(Kind::MethodCall),
            path: Some(path.into()),
            interface: Some(interface.into()),
            member: Some(member.into()),
            destination: Some(destination.into()),
            ..Default::default()
        }
    }

    /// The message as bytes, with `serial`.
    pub fn encode(&self, serial: u32) -> Vec<u8> {
        let mut body = Vec::new();
        for v in &self.body {
            wire::write(&mut body, v);
        }
        let signature: String = self.body.iter().map(Value::signature).collect();
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| {
            fields.push(Value::Struct(vec![
                Value::Byte(code),
                Value::Variant(Box::new(v)),
            ]))
        };
        if let Some(p) = &self.path {
            field(PATH, Value::ObjectPath(p.clone()));
        }
        if let Some(i) = &self.interface {
            field(INTERFACE, Value::Str(i.clone()));
        }
        if let Some(m) = &self.member {
            field(MEMBER, Value::Str(m.clone()));
        }
        if let Some(d) = &self.destination {
            field(DESTINATION, Value::Str(d.clone()));
        }
        if !signature.is_empty() {
            field(SIGNATURE, Value::Signature(signature));
        }
        let kind = self.kind.unwrap_or(Kind::MethodCall) as u8;
        let mut out = vec![b'l', kind, 0, 1];
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        wire::write(&mut out, &Value::Array("(yv)".into(), fields));
        out.resize(out.len().next_multiple_of(8), 0);
        out.extend_from_slice(&body);
        out
    }

    /// Reads one whole message from `stream`.
    pub fn read_from(stream: &mut impl Read) -> Result<Self, DbusError> {
        let mut fixed = [0u8; 16];
        stream.read_exact(&mut fixed)?;
        if fixed[0] != b'l' {
            return Err(DbusError::Malformed(
                "big-endian messages are not supported",
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(fixed[i..i + 4].try_into().unwrap()) as usize;
        let (body_len, fields_len) = (u32_at(4), u32_at(12));
        let header_len = (16 + fields_len).next_multiple_of(8);
        if header_len + body_len > MAX_MESSAGE {
            return Err(DbusError::Malformed("message too long"));
        }
        let mut buf = vec![0u8; header_len + body_len];
        buf[..16].copy_from_slice(&fixed);
        stream.read_exact(&mut buf[16..])?;
        Self::decode(&buf, header_len)
    }

    fn decode(buf: &[u8], header_len: usize) -> Result<Self, DbusError> {
        let mut msg = Message {
            kind: match buf[1] {
                1 => Some(Kind::MethodCall),
                2 => Some(Kind::MethodReturn),
                3 => Some(Kind::Error),
                4 => Some(Kind::Signal),
                _ => None,
            },
            ..Default::default()
        };
        let mut signature = String::new();
        let fields = Reader::new(&buf[..header_len], 12).read_all("a(yv)")?;
        let Some(Value::Array(_, fields)) = fields.into_iter().next() else {
            return Err(DbusError::Malformed("no header fields"));
        };
        for f in fields {
            let Value::Struct(pair) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (pair.first(), pair.get(1))
            else {
                continue;
            };
            let text = v.as_str().map(String::from);
            match *code {
                PATH => msg.path = text,
                INTERFACE => msg.interface = text,
                MEMBER => msg.member = text,
                ERROR_NAME => msg.error_name = text,
                REPLY_SERIAL => msg.reply_serial = v.as_u32(),
                DESTINATION => msg.destination = text,
                SIGNATURE => signature = text.unwrap_or_default(),
                _ => {}
            }
        }
        msg.body = Reader::new(buf, header_len).read_all(&signature)?;
        Ok(msg)
    }

    /// The first body value as a string (an error's text, a returned path).
    pub fn first_str(&self) -> Option<&str> {
        self.body.first().and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips() {
        let mut m = Message::call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
        );
        m.body = vec![Value::Str("a.scope".into()), Value::Str("replace".into())];
        let bytes = m.encode(5);
        assert_eq!(&bytes[..4], &[b'l', 1, 0, 1]);
        assert_eq!(bytes.len() % 8, 0, "header + body: 8-aligned here");
        let back = Message::read_from(&mut bytes.as_slice()).unwrap();
        assert_eq!(back.kind, Some(Kind::MethodCall));
        assert_eq!(&bytes[8..12], &5u32.to_le_bytes());
        assert_eq!(back.member.as_deref(), Some("StopUnit"));
        assert_eq!(back.path.as_deref(), Some("/org/freedesktop/systemd1"));
        assert_eq!(back.body, m.body);
    }
}
