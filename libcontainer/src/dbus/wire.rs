//! The D-Bus wire format (little-endian): typed values, their signatures,
//! and marshalling with the alignment rules of the specification. Offsets
//! count from the start of the buffer, which callers keep 8-aligned with
//! the start of the message.

use super::DbusError;

/// A value hull sends or reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    U64(u64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// Element signature (needed when empty) and elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// The value's type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                format!(
                    "({})",
                    fields.iter().map(Value::signature).collect::<String>()
                )
            }
            Value::Variant(_) => "v".into(),
        }
    }

    /// The string of a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

/// Alignment of the type starting with `code`.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

/// Appends `v` to `buf`, aligned.
pub fn write(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Byte(b) => buf.push(*b),
        Value::Bool(b) => write_u32(buf, u32::from(*b)),
        Value::I32(n) => write_u32(buf, *n as u32),
        Value::U32(n) => write_u32(buf, *n),
        Value::U64(n) => {
            pad(buf, 8);
            buf.extend_from_slice(&n.to_le_bytes());
        }
        Value::Str(s) | Value::ObjectPath(s) => {
            write_u32(buf, s.len() as u32);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Signature(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Array(elem, items) => {
            write_u32(buf, 0);
            let len_at = buf.len() - 4;
            pad(buf, alignment(elem.as_bytes()[0]));
            let start = buf.len();
            for item in items {
                write(buf, item);
            }
            let len = (buf.len() - start) as u32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Value::Struct(fields) => {
            pad(buf, 8);
            for f in fields {
                write(buf, f);
            }
        }
        Value::Variant(inner) => {
            write(buf, &Value::Signature(inner.signature()));
            write(buf, inner);
        }
    }
}

fn write_u32(buf: &mut Vec<u8>, n: u32) {
    pad(buf, 4);
    buf.extend_from_slice(&n.to_le_bytes());
}

/// Reads values of a signature from a buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from offset `pos` (alignment counts from offset 0).
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// Reads every complete type of `signature`, in order.
    pub fn read_all(&mut self, signature: &str) -> Result<Vec<Value>, DbusError> {
        let mut sig = signature.as_bytes();
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (one, rest) = split_type(sig)?;
            out.push(self.read(one)?);
            sig = rest;
        }
        Ok(out)
    }

    /// Reads one value of the single complete type `sig`.
    fn read(&mut self, sig: &[u8]) -> Result<Value, DbusError> {
        self.align(alignment(sig[0]))?;
        Ok(match sig[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b't' | b'x' => Value::U64(u64::from_le_bytes(self.take(8)?.try_into().unwrap())),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.string(len)?;
                if sig[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::ObjectPath(s)
                }
            }
            b'g' => {
                let len = usize::from(self.take(1)?[0]);
                Value::Signature(self.string(len)?)
            }
            b'v' => {
                let inner = self.read(b"g")?;
                let inner_sig = inner.as_str().unwrap_or_default().as_bytes().to_vec();
                let (one, rest) = split_type(&inner_sig)?;
                if !rest.is_empty() {
                    return Err(DbusError::Malformed("variant of several types"));
                }
                Value::Variant(Box::new(self.read(one)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(alignment(elem[0]))?;
                let end = self.pos + len;
                if end > self.buf.len() {
                    return Err(DbusError::Malformed("array past the end"));
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.read(elem)?);
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' | b'{' => {
                let mut inner = &sig[1..sig.len() - 1];
                let mut fields = Vec::new();
                while !inner.is_empty() {
                    let (one, rest) = split_type(inner)?;
                    fields.push(self.read(one)?);
                    inner = rest;
                }
                Value::Struct(fields)
            }
            _ => return Err(DbusError::Malformed("unsupported type in signature")),
        })
    }

    fn align(&mut self, align: usize) -> Result<(), DbusError> {
        let next = self.pos.next_multiple_of(align);
        self.take(next - self.pos).map(|_| ())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self.pos + n;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(DbusError::Malformed("value past the end"))?;
        self.pos = end;
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    /// `len` bytes of UTF-8 and the terminating NUL.
    fn string(&mut self, len: usize) -> Result<String, DbusError> {
        let bytes = self.take(len + 1)?;
        String::from_utf8(bytes[..len].to_vec())
            .map_err(|_| DbusError::Malformed("non-UTF-8 string"))
    }
}

/// Splits the first complete type off a signature.
fn split_type(sig: &[u8]) -> Result<(&[u8], &[u8]), DbusError> {
    let bad = DbusError::Malformed("bad signature");
    let len = match sig.first().ok_or(bad)? {
        b'a' => 1 + split_type(&sig[1..])?.0.len(),
        open @ (b'(' | b'{') => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut depth = 0;
            let mut end = None;
            for (i, c) in sig.iter().enumerate() {
                if *c == *open {
                    depth += 1;
                } else if *c == close {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
            }
            end.ok_or(DbusError::Malformed("unbalanced signature"))?
        }
        _ => 1,
    };
    Ok(sig.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_structs_are_padded_and_round_trip() {
        let v = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("Delegate".into()),
                    Value::Variant(Box::new(Value::Bool(true))),
                ]),
                Value::Struct(vec![
                    Value::Str("PIDs".into()),
                    Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(7)]))),
                ]),
            ],
        );
        assert_eq!(v.signature(), "a(sv)");
        let mut buf = vec![0u8]; // misaligned start: the length field is padded to 4
        write(&mut buf, &v);
        assert_eq!(&buf[..4], &[0, 0, 0, 0]);
        // The array length excludes the padding to the first struct (offset 8).
        let len = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - 8);
        // "Delegate": len 8, bytes, NUL, then variant sig "b" at offset 21, bool aligned to 24.
        assert_eq!(&buf[8..12], &8u32.to_le_bytes());
        assert_eq!(&buf[21..24], b"\x01b\0");
        let back = Reader::new(&buf, 4).read_all("a(sv)").unwrap();
        assert_eq!(back, vec![v]);
    }

    #[test]
    fn empty_arrays_keep_their_alignment() {
        let mut buf = Vec::new();
        write(&mut buf, &Value::Array("(sa(sv))".into(), vec![]));
        assert_eq!(buf, [0, 0, 0, 0, 0, 0, 0, 0]);
        let back = Reader::new(&buf, 0).read_all("a(sa(sv))").unwrap();
        assert_eq!(back, vec![Value::Array("(sa(sv))".into(), vec![])]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut buf = Vec::new();
        write(&mut buf, &Value::Str("org.freedesktop.systemd1".into()));
        assert!(Reader::new(&buf[..10], 0).read_all("s").is_err());
        assert!(Reader::new(&buf, 0).read_all("a(s").is_err());
    }
}
