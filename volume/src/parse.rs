//! The words a user gives: volume names, sizes, and `NAME:/PATH[:ro]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Result, VolumeError};

/// The annotation asking for volumes, as `-v` would: `NAME:/PATH[:ro]`,
/// several separated by commas.
pub const ANNOTATION: &str = "org.hull.volumes";

/// Checks a volume (or snapshot) name: a file name of letters, digits,
/// `_`, `.` and `-`, not starting with `.` or `-` (hull's temporary
/// directories start with `.`), at most 128 bytes.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why| {
        Err(VolumeError::InvalidName {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 128 {
        return bad("longer than 128 bytes");
    }
    if name.starts_with(['.', '-']) {
        return bad("starts with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return bad("only letters, digits, '_', '.' and '-' are allowed");
    }
    Ok(())
}

/// A size in bytes: a number, optionally with a binary suffix K, M, G or T
/// (upper or lower case, an optional `B` or `iB` after it).
pub fn parse_size(text: &str) -> Result<u64> {
    let invalid = || VolumeError::InvalidSize(text.to_owned());
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| invalid())?;
    n.checked_mul(1 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(invalid)
}

/// A container's use of a volume: which, where, and whether read-only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub name: String,
    pub destination: PathBuf,
    pub read_only: bool,
}

impl std::str::FromStr for Request {
    type Err = VolumeError;

    /// `NAME:/PATH`, `NAME:/PATH:ro` or `NAME:/PATH:rw`.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || VolumeError::InvalidRequest(s.to_owned());
        let mut parts = s.split(':');
        let (Some(name), Some(dest)) = (parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err(invalid()),
        };
        if parts.next().is_some() || !dest.starts_with('/') {
            return Err(invalid());
        }
        validate_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            destination: dest.into(),
            read_only,
        })
    }
}

/// The volumes a container asks for: the `-v` flags, else the
/// [`ANNOTATION`]. A volume named twice is refused (one container holds
/// one attachment of each).
pub fn requested(flags: &[String], annotations: &BTreeMap<String, String>) -> Result<Vec<Request>> {
    let words: Vec<&str> = match (flags.is_empty(), annotations.get(ANNOTATION)) {
        (false, _) => flags.iter().map(String::as_str).collect(),
        (true, Some(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect(),
        (true, None) => Vec::new(),
    };
    let mut requests: Vec<Request> = Vec::new();
    for w in words {
        let r: Request = w.parse()?;
        if requests.iter().any(|o| o.name == r.name) {
            return Err(VolumeError::Twice { name: r.name });
        }
        requests.push(r);
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("5G").unwrap(), 5 << 30);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "G", "0", "-1G", "1.5G", "1X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_plain_file_names() {
        validate_name("data-1.v2_x").unwrap();
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_parse_and_flags_win_over_the_annotation() {
        let r: Request = "db:/data:ro".parse().unwrap();
        assert_eq!(
            r,
            Request {
                name: "db".into(),
                destination: "/data".into(),
                read_only: true
            }
        );
        for bad in ["db", "db:data", "db:/data:rx", "db:/a:ro:x", ".x:/a"] {
            assert!(bad.parse::<Request>().is_err(), "{bad}");
        }
        let ann = BTreeMap::from([(ANNOTATION.to_owned(), "a:/a, b:/b:ro".to_owned())]);
        assert_eq!(requested(&[], &ann).unwrap().len(), 2);
        let flags = vec!["c:/c".to_owned()];
        assert_eq!(requested(&flags, &ann).unwrap()[0].name, "c");
        let twice = vec!["c:/c".to_owned(), "c:/d:ro".to_owned()];
        assert!(matches!(
            requested(&twice, &ann),
            Err(VolumeError::Twice { .. })
        ));
    }
}
