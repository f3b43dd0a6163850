//! The NBD wire protocol, client side: fixed newstyle negotiation (NBD_OPT_GO,
//! falling back to NBD_OPT_EXPORT_NAME) and simple replies to READ, WRITE,
//! FLUSH and DISC. Structured replies are never asked for, so never sent.

use std::io::{Read, Write};

use crate::error::{Error, Result};

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const OLDSTYLE: u64 = 0x0000_4202_8186_1253;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
const FLAG_NO_ZEROES: u16 = 1 << 1;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_FLAG_ERROR: u32 = 1 << 31;
const REP_ERR_UNSUP: u32 = REP_FLAG_ERROR | 1;
const INFO_EXPORT: u16 = 0;

/// Transmission flag: the export refuses writes.
pub const FLAG_READ_ONLY: u16 = 1 << 1;
/// Transmission flag: the server takes NBD_CMD_FLUSH.
pub const FLAG_SEND_FLUSH: u16 = 1 << 2;

/// The commands hull sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Read = 0,
    Write = 1,
    Disconnect = 2,
    Flush = 3,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Read => "read",
            Command::Write => "write",
            Command::Disconnect => "disconnect",
            Command::Flush => "flush",
        }
    }
}

/// What negotiation learnt about the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Export {
    pub size: u64,
    pub flags: u16,
}

fn read_u16(r: &mut impl Read) -> std::io::Result<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn send_option(w: &mut impl Write, option: u32, data: &[u8]) -> std::io::Result<()> {
    let mut msg = Vec::with_capacity(16 + data.len());
    msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
    msg.extend_from_slice(&option.to_be_bytes());
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(data);
    w.write_all(&msg)?;
    w.flush()
}

/// Negotiates `export` on a fresh connection.
pub fn handshake<S: Read + Write>(s: &mut S, export: &str) -> Result<Export> {
    if export.len() > 4096 {
        return Err(Error::Invalid("export name longer than 4096 bytes".into()));
    }
    if read_u64(s)? != NBDMAGIC {
        return Err(Error::Nbd("not an NBD server".into()));
    }
    match read_u64(s)? {
        IHAVEOPT => {}
        OLDSTYLE => return Err(Error::Nbd("oldstyle negotiation is not supported".into())),
        _ => return Err(Error::Nbd("bad negotiation magic".into())),
    }
    let server = read_u16(s)?;
    let no_zeroes = server & FLAG_NO_ZEROES != 0;
    let client = (server & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) as u32;
    s.write_all(&client.to_be_bytes())?;
    if server & FLAG_FIXED_NEWSTYLE != 0 {
        if let Some(found) = go(s, export)? {
            return Ok(found);
        }
    }
    export_name(s, export, no_zeroes)
}

/// NBD_OPT_GO: `None` if the server does not know the option.
fn go<S: Read + Write>(s: &mut S, export: &str) -> Result<Option<Export>> {
    let mut data = Vec::new();
    data.extend_from_slice(&(export.len() as u32).to_be_bytes());
    data.extend_from_slice(export.as_bytes());
    data.extend_from_slice(&0u16.to_be_bytes());
    send_option(s, OPT_GO, &data)?;
    let mut found = None;
    loop {
        if read_u64(s)? != OPT_REPLY_MAGIC {
            return Err(Error::Nbd("bad option reply magic".into()));
        }
        let option = read_u32(s)?;
        let kind = read_u32(s)?;
        let len = read_u32(s)? as usize;
        if option != OPT_GO || len > 64 << 10 {
            return Err(Error::Nbd("malformed option reply".into()));
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body)?;
        match kind {
            REP_ACK => {
                return found
                    .map(Some)
                    .ok_or_else(|| Error::Nbd("the server gave no export size".into()))
            }
            REP_INFO
                if body.len() >= 12 && u16::from_be_bytes([body[0], body[1]]) == INFO_EXPORT =>
            {
                found = Some(Export {
                    size: u64::from_be_bytes(body[2..10].try_into().unwrap()),
                    flags: u16::from_be_bytes([body[10], body[11]]),
                });
            }
            REP_INFO => {}
            REP_ERR_UNSUP => return Ok(None),
            kind if kind & REP_FLAG_ERROR != 0 => {
                let message = String::from_utf8_lossy(&body);
                return Err(Error::Nbd(format!(
                    "export {export:?} refused (reply {:#x}): {message}",
                    kind
                )));
            }
            _ => {}
        }
    }
}

/// NBD_OPT_EXPORT_NAME: a server that does not know the export just closes.
fn export_name<S: Read + Write>(s: &mut S, export: &str, no_zeroes: bool) -> Result<Export> {
    send_option(s, OPT_EXPORT_NAME, export.as_bytes())?;
    let refused = |e: std::io::Error| Error::Nbd(format!("export {export:?} refused: {e}"));
    let size = read_u64(s).map_err(refused)?;
    let flags = read_u16(s).map_err(refused)?;
    if !no_zeroes {
        s.read_exact(&mut [0u8; 124]).map_err(refused)?;
    }
    Ok(Export { size, flags })
}

/// Sends one request and reads its simple reply; a read's data goes to
/// `read_into`. An error the server reports is [`Error::NbdReply`]; a
/// broken or timed-out connection is [`Error::Io`].
pub fn request<S: Read + Write>(
    s: &mut S,
    command: Command,
    handle: u64,
    offset: u64,
    payload: &[u8],
    read_into: &mut [u8],
) -> Result<()> {
    let len = match command {
        Command::Read => read_into.len(),
        _ => payload.len(),
    };
    let mut msg = Vec::with_capacity(28 + payload.len());
    msg.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    msg.extend_from_slice(&(command as u16).to_be_bytes());
    msg.extend_from_slice(&handle.to_be_bytes());
    msg.extend_from_slice(&offset.to_be_bytes());
    msg.extend_from_slice(&(len as u32).to_be_bytes());
    msg.extend_from_slice(payload);
    s.write_all(&msg)?;
    s.flush()?;
    if command == Command::Disconnect {
        return Ok(());
    }
    if read_u32(s)? != SIMPLE_REPLY_MAGIC {
        return Err(Error::Nbd("bad reply magic".into()));
    }
    let errno = read_u32(s)?;
    if read_u64(s)? != handle {
        return Err(Error::Nbd("reply to another request".into()));
    }
    if errno != 0 {
        return Err(Error::NbdReply {
            what: command.name(),
            errno,
        });
    }
    if command == Command::Read {
        s.read_exact(read_into)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A scripted server: reads come from `input`, writes collect.
    struct Script {
        input: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn greeting(flags: u16) -> Vec<u8> {
        let mut v = NBDMAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&IHAVEOPT.to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        v
    }

    fn opt_reply(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut v = OPT_REPLY_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&OPT_GO.to_be_bytes());
        v.extend_from_slice(&kind.to_be_bytes());
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn go_reads_the_export_info() {
        let mut input = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        let mut info = INFO_EXPORT.to_be_bytes().to_vec();
        info.extend_from_slice(&(1u64 << 30).to_be_bytes());
        info.extend_from_slice(&(FLAG_SEND_FLUSH | 1).to_be_bytes());
        input.extend(opt_reply(REP_INFO, &info));
        input.extend(opt_reply(REP_ACK, &[]));
        let mut s = Script {
            input: Cursor::new(input),
            sent: Vec::new(),
        };
        let export = handshake(&mut s, "vol").unwrap();
        assert_eq!(export.size, 1 << 30);
        assert_eq!(export.flags & FLAG_SEND_FLUSH, FLAG_SEND_FLUSH);
        // Client flags, then IHAVEOPT, NBD_OPT_GO, length 9, name "vol", 0 infos.
        assert_eq!(&s.sent[..4], &3u32.to_be_bytes());
        assert_eq!(&s.sent[12..16], &OPT_GO.to_be_bytes());
        assert_eq!(&s.sent[20..27], b"\0\0\0\x03vol");
    }

    #[test]
    fn an_unsupported_go_falls_back_to_export_name() {
        let mut input = greeting(FLAG_FIXED_NEWSTYLE);
        input.extend(opt_reply(REP_ERR_UNSUP, &[]));
        input.extend_from_slice(&4096u64.to_be_bytes());
        input.extend_from_slice(&FLAG_READ_ONLY.to_be_bytes());
        input.extend_from_slice(&[0u8; 124]);
        let mut s = Script {
            input: Cursor::new(input),
            sent: Vec::new(),
        };
        let export = handshake(&mut s, "").unwrap();
        assert_eq!(export.size, 4096);
        assert_eq!(export.flags, FLAG_READ_ONLY);
    }

    #[test]
    fn an_unknown_export_is_an_error_naming_it() {
        let mut input = greeting(FLAG_FIXED_NEWSTYLE);
        input.extend(opt_reply(REP_FLAG_ERROR | 6, b"no such export"));
        let mut s = Script {
            input: Cursor::new(input),
            sent: Vec::new(),
        };
        let err = handshake(&mut s, "nope").unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(err.to_string().contains("no such export"), "{err}");
    }

    #[test]
    fn a_reply_error_is_typed_and_a_short_reply_is_io() {
        let mut input = SIMPLE_REPLY_MAGIC.to_be_bytes().to_vec();
        input.extend_from_slice(&5u32.to_be_bytes());
        input.extend_from_slice(&9u64.to_be_bytes());
        let mut s = Script {
            input: Cursor::new(input),
            sent: Vec::new(),
        };
        let err = request(&mut s, Command::Write, 9, 0, b"x", &mut []).unwrap_err();
        assert!(matches!(err, Error::NbdReply { errno: 5, .. }));
        assert_eq!(err.errno(), libc::EIO);
        let err = request(&mut s, Command::Read, 10, 0, &[], &mut [0u8; 4]).unwrap_err();
        assert!(matches!(err, Error::Io(_)));
    }
}
