//! A blocking connection to a message bus: connect, authenticate
//! (SASL EXTERNAL), `Hello`, method calls, and the signals that arrive.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::message::{Kind, Message};
use super::wire::Value;
use super::DbusError;

const BUS: &str = "org.freedesktop.DBus";
const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// A connection to the bus, authenticated and registered with `Hello`.
pub struct Connection {
    reader: BufReader<UnixStream>,
    serial: u32,
    /// Signals read while waiting for a reply, oldest first.
    signals: VecDeque<Message>,
}

impl Connection {
    /// Connects to the system bus: `$DBUS_SYSTEM_BUS_ADDRESS`, else the
    /// standard socket. Every read waits at most `timeout`.
    pub fn system(timeout: Duration) -> Result<Self, DbusError> {
        let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .unwrap_or_else(|_| DEFAULT_SYSTEM_BUS.to_owned());
        let stream = connect(&address)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut conn = Self {
            reader: BufReader::new(stream),
            serial: 0,
            signals: VecDeque::new(),
        };
        conn.authenticate()?;
        conn.call(Message::call(BUS, "/org/freedesktop/DBus", BUS, "Hello"))?;
        Ok(conn)
    }

    /// SASL EXTERNAL with our effective uid (the bus checks it against the
    /// socket's peer credentials), then BEGIN.
    fn authenticate(&mut self) -> Result<(), DbusError> {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let stream = self.reader.get_mut();
        stream.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line.trim_end().to_owned()));
        }
        self.reader.get_mut().write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Sends a method call and waits for its reply; an error reply becomes
    /// [`DbusError::Remote`]. Signals read meanwhile are kept for
    /// [`Connection::next_signal`].
    pub fn call(&mut self, msg: Message) -> Result<Message, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        self.reader.get_mut().write_all(&msg.encode(serial))?;
        loop {
            let m = Message::read_from(&mut self.reader)?;
            match m.kind {
                Some(Kind::Signal) => self.signals.push_back(m),
                Some(Kind::MethodReturn) if m.reply_serial == Some(serial) => return Ok(m),
                Some(Kind::Error) if m.reply_serial == Some(serial) => {
                    return Err(DbusError::Remote {
                        name: m.error_name.clone().unwrap_or_default(),
                        message: m.first_str().unwrap_or_default().to_owned(),
                    })
                }
                _ => {}
            }
        }
    }

    /// Asks the bus to deliver the signals matching `rule` to us.
    pub fn add_match(&mut self, rule: &str) -> Result<(), DbusError> {
        let mut m = Message::call(BUS, "/org/freedesktop/DBus", BUS, "AddMatch");
        m.body = vec![Value::Str(rule.into())];
        self.call(m).map(|_| ())
    }

    /// The next signal: one kept from earlier, else the next one read.
    pub fn next_signal(&mut self) -> Result<Message, DbusError> {
        if let Some(m) = self.signals.pop_front() {
            return Ok(m);
        }
        loop {
            let m = Message::read_from(&mut self.reader)?;
            if m.kind == Some(Kind::Signal) {
                return Ok(m);
            }
        }
    }
}

/// Connects to the first `unix:path=` or `unix:abstract=` address of a
/// `;`-separated bus address.
fn connect(address: &str) -> Result<UnixStream, DbusError> {
    for entry in address.split(';') {
        let Some(params) = entry.strip_prefix("unix:") else {
            continue;
        };
        for kv in params.split(',') {
            match kv.split_once('=') {
                Some(("path", p)) => return Ok(UnixStream::connect(unescape(p))?),
                Some(("abstract", name)) => {
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(unescape(name))?;
                    return Ok(UnixStream::connect_addr(&addr)?);
                }
                _ => {}
            }
        }
    }
    Err(DbusError::Address(address.to_owned()))
}

/// Undoes the `%xx` escaping of address values.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(n) = u8::from_str_radix(hex, 16) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(unescape("/run/a%20b"), "/run/a b");
        assert_eq!(unescape("/run/x%2"), "/run/x%2");
        assert!(matches!(
            connect("tcp:host=localhost,port=1"),
            Err(DbusError::Address(_))
        ));
        assert!(matches!(
            connect("unix:path=/nonexistent/hull-test-bus"),
            Err(DbusError::Io(_))
        ));
    }
}
