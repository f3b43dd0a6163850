//! CNI errors: a code, a short message and details, printed on stdout as
//! `{"cniVersion", "code", "msg", "details"}` with a non-zero exit.

use std::io;

use bridge::IpamError;
use bridge::NetError;
use serde_json::{json, Value};

/// Error codes: 1–11 are the CNI 1.0.0 spec's, 100 and up are hull's.
pub mod code {
    /// The config's `cniVersion` is not one the plugin speaks.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A configuration key has a value hull does not support.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// A `CNI_*` environment variable is missing or invalid.
    pub const INVALID_ENV: u32 = 4;
    /// Reading the configuration from stdin failed.
    pub const IO_FAILURE: u32 = 5;
    /// The configuration is not the JSON it should be.
    pub const DECODE: u32 = 6;
    /// The configuration decodes but its values are invalid.
    pub const INVALID_CONFIG: u32 = 7;
    /// A transient conflict (busy kernel object, concurrent ruleset change).
    pub const TRY_AGAIN: u32 = 11;
    /// A networking step (netlink, nf_tables, state files) failed.
    pub const NETWORKING: u32 = 100;
    /// A host port to publish is taken.
    pub const PORT_IN_USE: u32 = 101;
    /// The network's subnet has no free address left.
    pub const NO_ADDRESS: u32 = 102;
    /// CHECK found the attachment missing or different from what ADD made.
    pub const CHECK_FAILED: u32 = 103;
    /// ADD for a container interface that is already attached.
    pub const ALREADY_ATTACHED: u32 = 104;
    /// A plugin role hull-cni only pretends to be (`host-local`).
    pub const NOT_IMPLEMENTED: u32 = 105;
}

/// A failed CNI operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    /// An error with `code` and message `msg`, without details.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// Adds details: the longer explanation.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// An invalid-configuration error (code 7).
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }

    /// A value hull deliberately does not support (code 2): `key` set to
    /// `value`, and why not.
    pub fn unsupported(key: &str, value: &str, why: &str) -> Self {
        Self::new(
            code::UNSUPPORTED_FIELD,
            format!("unsupported {key} = {value}: {why}"),
        )
    }

    /// A CHECK mismatch (code 103).
    pub fn check(msg: impl Into<String>) -> Self {
        Self::new(code::CHECK_FAILED, msg)
    }

    /// A networking failure while doing `what`, with the code its cause
    /// calls for.
    pub fn net(what: &str, err: NetError) -> Self {
        Self::new(net_code(&err), format!("{what}: {err}"))
    }

    /// The JSON the plugin prints for this error.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut v = json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if !self.details.is_empty() {
            v["details"] = json!(self.details);
        }
        v
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CNI error {}: {}", self.code, self.msg)
    }
}

/// The CNI code for a networking error.
fn net_code(err: &NetError) -> u32 {
    match err {
        NetError::Invalid(_) | NetError::NoSuchNetwork(_) | NetError::NetworkExists(_) => {
            code::INVALID_CONFIG
        }
        NetError::PortInUse(_) => code::PORT_IN_USE,
        NetError::Ipam(IpamError::Exhausted { .. }) | NetError::NoSubnet => code::NO_ADDRESS,
        NetError::Ipam(IpamError::InvalidOwner(_)) => code::INVALID_ENV,
        NetError::Netlink { errno, .. } if is_transient(*errno) => code::TRY_AGAIN,
        NetError::Firewall(e) if e.errno().is_some_and(is_transient) => code::TRY_AGAIN,
        NetError::Io { source, .. } if is_transient_io(source) => code::TRY_AGAIN,
        _ => code::NETWORKING,
    }
}

/// Errnos that mean "someone else is changing this right now".
pub fn is_transient(errno: i32) -> bool {
    [libc::EAGAIN, libc::EBUSY, libc::ERESTART, libc::EINTR].contains(&errno)
}

fn is_transient_io(err: &io::Error) -> bool {
    err.raw_os_error().is_some_and(is_transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let e = CniError::config("bad subnet").details("10.0.0.0/33");
        assert_eq!(
            e.to_json("0.4.0"),
            json!({"cniVersion": "0.4.0", "code": 7, "msg": "bad subnet", "details": "10.0.0.0/33"})
        );
        let plain = CniError::new(code::TRY_AGAIN, "busy").to_json("1.0.0");
        assert!(plain.get("details").is_none());
    }

    #[test]
    fn networking_errors_map_to_codes() {
        let code_of = |e| CniError::net("attach", e).code;
        assert_eq!(code_of(NetError::PortInUse("8080:80/tcp".into())), 101);
        assert_eq!(code_of(NetError::Invalid("x".into())), 7);
        assert_eq!(code_of(NetError::NoSubnet), 102);
        let busy = NetError::Netlink {
            what: "create veth".into(),
            errno: libc::EBUSY,
        };
        assert_eq!(code_of(busy), 11);
        assert_eq!(code_of(NetError::Missing("eth0".into())), 100);
    }
}
