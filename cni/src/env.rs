//! The `CNI_*` environment variables of one invocation. `CNI_ARGS` and
//! `CNI_PATH` are not needed: hull-cni never delegates to other plugins and
//! takes no per-container arguments.

use std::path::{Path, PathBuf};

use super::error::{code, CniError};

/// Linux's IFNAMSIZ minus the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// What `CNI_COMMAND` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Report the supported versions; needs nothing else.
    Version,
    /// Work on a container interface.
    Op(Op),
}

/// An operation on a container interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
    Check,
}

/// The container interface an ADD, DEL or CHECK is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`: the interface name inside the container.
    pub ifname: String,
    /// `CNI_NETNS`: required for ADD and CHECK, optional for DEL.
    netns: Option<PathBuf>,
}

impl Target {
    /// The container's network namespace (code 4 when DEL was called
    /// without one and the role needs it).
    pub fn netns(&self) -> Result<&Path, CniError> {
        self.netns
            .as_deref()
            .ok_or_else(|| invalid("CNI_NETNS", "is not set"))
    }

    /// The namespace path if one was given.
    pub fn netns_opt(&self) -> Option<&Path> {
        self.netns.as_deref()
    }
}

/// Reads `CNI_COMMAND`.
pub fn command(var: impl Fn(&str) -> Option<String>) -> Result<Command, CniError> {
    match var("CNI_COMMAND").as_deref() {
        Some("ADD") => Ok(Command::Op(Op::Add)),
        Some("DEL") => Ok(Command::Op(Op::Del)),
        Some("CHECK") => Ok(Command::Op(Op::Check)),
        Some("VERSION") => Ok(Command::Version),
        None => Err(invalid("CNI_COMMAND", "is not set")),
        Some(other) => Err(invalid(
            "CNI_COMMAND",
            &format!("{other:?} is not ADD, DEL, CHECK or VERSION"),
        )),
    }
}

/// Reads and validates the variables `op` needs. An empty variable counts
/// as unset.
pub fn target(op: Op, var: impl Fn(&str) -> Option<String>) -> Result<Target, CniError> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    let container_id =
        var("CNI_CONTAINERID").ok_or_else(|| invalid("CNI_CONTAINERID", "is not set"))?;
    check_container_id(&container_id)?;
    let ifname = var("CNI_IFNAME").ok_or_else(|| invalid("CNI_IFNAME", "is not set"))?;
    check_ifname(&ifname).map_err(|why| invalid("CNI_IFNAME", &format!("{ifname:?} {why}")))?;
    let netns = var("CNI_NETNS").map(PathBuf::from);
    if op != Op::Del {
        let ns = netns
            .as_deref()
            .ok_or_else(|| invalid("CNI_NETNS", "is not set"))?;
        if !ns.exists() {
            return Err(invalid(
                "CNI_NETNS",
                &format!("{}: no such file", ns.display()),
            ));
        }
    }
    Ok(Target {
        container_id,
        ifname,
        netns,
    })
}

/// The spec's rule: an alphanumeric character, then alphanumerics, `_`,
/// `.` or `-`.
fn check_container_id(id: &str) -> Result<(), CniError> {
    let mut bytes = id.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    if first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        Ok(())
    } else {
        Err(invalid(
            "CNI_CONTAINERID",
            &format!("{id:?} must be alphanumeric, then alphanumerics, '_', '.' or '-'"),
        ))
    }
}

/// A Linux interface name: 1–15 bytes, not `.` or `..`, without `/`, `:`
/// or whitespace. Returns why not.
pub fn check_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err("must be 1 to 15 bytes long");
    }
    if name == "." || name == ".." {
        return Err("must not be . or ..");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err("must not contain '/', ':' or whitespace");
    }
    Ok(())
}

fn invalid(var: &str, why: &str) -> CniError {
    CniError::new(code::INVALID_ENV, format!("{var} {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn commands() {
        assert_eq!(
            command(vars(&[("CNI_COMMAND", "ADD")])),
            Ok(Command::Op(Op::Add))
        );
        assert_eq!(
            command(vars(&[("CNI_COMMAND", "VERSION")])),
            Ok(Command::Version)
        );
        assert_eq!(command(vars(&[])).unwrap_err().code, 4);
        assert!(command(vars(&[("CNI_COMMAND", "GC")]))
            .unwrap_err()
            .msg
            .contains("CNI_COMMAND"));
    }

    #[test]
    fn del_needs_no_netns_but_add_does() {
        let env = [("CNI_CONTAINERID", "abc-1.x_y"), ("CNI_IFNAME", "eth0")];
        let del = target(Op::Del, vars(&env)).unwrap();
        assert_eq!(
            (del.container_id.as_str(), del.ifname.as_str()),
            ("abc-1.x_y", "eth0")
        );
        assert_eq!(del.netns().unwrap_err().code, 4);
        let add = target(Op::Add, vars(&env)).unwrap_err();
        assert!(add.msg.contains("CNI_NETNS"), "{add}");
        let with_ns = [&env[..], &[("CNI_NETNS", "/proc/self/ns/net")]].concat();
        let ok = target(Op::Check, vars(&with_ns)).unwrap();
        assert_eq!(ok.netns().unwrap(), Path::new("/proc/self/ns/net"));
        let gone = [&env[..], &[("CNI_NETNS", "/nonexistent/ns")]].concat();
        assert_eq!(target(Op::Add, vars(&gone)).unwrap_err().code, 4);
    }

    #[test]
    fn ids_and_ifnames_are_validated() {
        for (id, ifname) in [
            ("-abc", "eth0"),
            ("a/b", "eth0"),
            ("", "eth0"),
            ("abc", "a-very-long-ifname"),
            ("abc", "et h0"),
            ("abc", ".."),
        ] {
            let env = [("CNI_CONTAINERID", id), ("CNI_IFNAME", ifname)];
            let err = target(Op::Del, vars(&env)).unwrap_err();
            assert_eq!(err.code, 4, "{id:?} {ifname:?}");
        }
    }
}
