//! Container id validation: ids become directory names under the state root.

use crate::error::{Error, Result};

/// The longest id: a file name (NAME_MAX, 255) with room for the
/// `@<what>` suffixes of the files kept beside the state.
const MAX_LEN: usize = 200;

/// Accepts ids made of ASCII letters, digits and `_ + - .`, except `.` and `..`
/// (the same set runc accepts), so an id can never name a path outside the root.
pub fn validate_id(id: &str) -> Result<()> {
    let reject = |reason| {
        Err(Error::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return reject("container id cannot be empty");
    }
    if id == "." || id == ".." {
        return reject("must not be . or ..");
    }
    // The id names files under the state root (`<id>`, `<id>@exec.fifo`,
    // ...) and a cgroup directory, each at most NAME_MAX (255) bytes long;
    // a longer id would get half-way through create before failing.
    if id.len() > MAX_LEN {
        return reject("longer than 200 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return reject("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{validate_id, MAX_LEN};

    #[test]
    fn accepts_usual_ids() {
        for id in ["a", "abc-123", "x_y+z.1", "bench-hull-1-a-10", "..."] {
            assert!(validate_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_path_like_and_empty_ids() {
        for id in ["", ".", "..", "a/b", "/", "../x", "a b", "a\0b", "é"] {
            assert!(validate_id(id).is_err(), "{id:?}");
        }
        assert!(validate_id(&"a".repeat(MAX_LEN)).is_ok());
        assert!(validate_id(&"a".repeat(MAX_LEN + 1)).is_err());
    }
}
