//! `cgroupsPath` in the systemd driver's syntax, `slice:prefix:name`, as
//! runc reads it: the unit `prefix-name.scope` in the slice `slice`.

use super::Scope;
use crate::cgroups::CgroupError;

/// The slice used when `slice` is empty.
const DEFAULT_SLICE: &str = "system.slice";
/// systemd's root slice.
const ROOT_SLICE: &str = "-.slice";
/// The prefix used when `cgroupsPath` is absent.
const DEFAULT_PREFIX: &str = "hull";

/// Reads `slice:prefix:name`; an absent or empty path means
/// `system.slice:hull:<id>`.
pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Scope, CgroupError> {
    let path = match cgroups_path {
        None | Some("") => format!("{DEFAULT_SLICE}:{DEFAULT_PREFIX}:{id}"),
        Some(p) => p.to_owned(),
    };
    let invalid = |why: &str| {
        CgroupError::Invalid(format!(
            "cgroupsPath {path:?} for the systemd driver: {why} (expected \"slice:prefix:name\", \
             e.g. \"system.slice:hull:{id}\")"
        ))
    };
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid("not three ':'-separated parts"));
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let slice_dir = expand_slice(slice).map_err(|why| invalid(&why))?;
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    for part in [prefix, name] {
        if !part.chars().all(unit_char) {
            return Err(invalid(&format!(
                "{part:?} may only hold letters, digits, '-', '_' and '.'"
            )));
        }
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit.len() > 255 {
        return Err(invalid("the unit name is longer than 255 bytes"));
    }
    Ok(Scope {
        cgroup: format!("{}/{unit}", slice_dir.trim_end_matches('/')),
        unit,
        slice: slice.to_owned(),
    })
}

/// The cgroup directory of a slice: `a-b.slice` is `/a.slice/a-b.slice`,
/// `-.slice` is `/`.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    if slice == ROOT_SLICE {
        return Ok("/".into());
    }
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(format!("the slice {slice:?} does not end in \".slice\""));
    };
    if base.is_empty()
        || base.starts_with('-')
        || base.ends_with('-')
        || base.contains("--")
        || !base.chars().all(unit_char)
    {
        return Err(format!("{slice:?} is not a valid slice name"));
    }
    let mut dir = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        dir.push('/');
        dir.push_str(&prefix);
        dir.push_str(".slice");
    }
    Ok(dir)
}

fn unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_to_nested_directories() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        for bad in [
            "system",
            ".slice",
            "-a.slice",
            "a-.slice",
            "a--b.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_name_a_scope_in_a_slice() {
        let s = parse(Some("user-1.slice:hull:c1"), "x").unwrap();
        assert_eq!(s.unit, "hull-c1.scope");
        assert_eq!(s.slice, "user-1.slice");
        assert_eq!(s.cgroup, "/user.slice/user-1.slice/hull-c1.scope");
        let s = parse(Some(":hull:c1"), "x").unwrap();
        assert_eq!(s.cgroup, "/system.slice/hull-c1.scope");
        let s = parse(Some("-.slice::c1"), "x").unwrap();
        assert_eq!(
            (s.unit.as_str(), s.cgroup.as_str()),
            ("c1.scope", "/c1.scope")
        );
        let s = parse(None, "abc").unwrap();
        assert_eq!(s.unit, "hull-abc.scope");
        assert_eq!(s.slice, "system.slice");
    }

    #[test]
    fn malformed_paths_say_what_is_expected() {
        for bad in [
            "/sys/fs/cgroup/x",
            "a:b",
            "a.slice:b:c:d",
            "system.slice:hull:",
            "nope:hull:c",
            "system.slice:hu/ll:c",
            "system.slice:hull:c d",
        ] {
            let e = parse(Some(bad), "c").unwrap_err().to_string();
            assert!(e.contains("slice:prefix:name"), "{bad}: {e}");
        }
    }
}
