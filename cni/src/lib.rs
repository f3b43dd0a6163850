//! hull's CNI plugin (spec 1.0.0; configs of 0.3.0–1.0.0 accepted): one
//! executable whose role is the config's `type`.
//!
//! - `hull`: hull's native plugin. ADD creates the network on first use and
//!   attaches the container with its `runtimeConfig.portMappings`; DEL
//!   detaches; CHECK checks. The subnets are `subnet` and, for a dual-stack
//!   network, `subnet6`, or an `ipam` section like the `bridge` role's.
//! - Compatibility roles, so that a conflist written for the reference
//!   plugins (`containernetworking-plugins`) runs hull's networking
//!   unchanged, e.g. `fixtures/cni/smoke.sh`'s:
//!   - `bridge`: the reference bridge plugin's keys, with hull's IPAM in
//!     place of host-local (leases as `<ipam.dataDir>/<network>/<ip>`, for
//!     both addresses of a dual-stack network: `ipam.ranges` with an IPv4
//!     and an IPv6 range set); attaches without ports;
//!   - `portmap`: publishes `runtimeConfig.portMappings` to the address of
//!     `prevResult` in hull's nf_tables table;
//!   - `loopback`: brings `lo` up;
//!   - `host-local` (chosen by the executable's name, since an IPAM plugin
//!     gets its parent's config): answers VERSION, refuses ADD, hull never
//!     delegates to it.
//!
//! Results and errors are printed on stdout; errors exit non-zero.

mod attach;
pub use attach::DNS_SERVE;
mod config;
mod env;
mod error;
mod iface;
mod lease6;
mod loopback;
mod portmap;
mod ranges;
mod result;
mod state;

use std::io::Read;
use std::path::Path;

use serde_json::json;

use self::config::{Config, NetSpec, PortmapSpec, DEFAULT_VERSION, SUPPORTED_VERSIONS};
use self::env::{Command, Op, Target};
use self::error::{code, CniError};
use self::result::CniResult;

/// The executable name of the `host-local` role.
const HOST_LOCAL: &str = "host-local";

/// What the plugin prints on stdout, and whether it succeeded.
#[derive(Debug)]
pub struct Reply {
    pub stdout: String,
    pub success: bool,
}

/// Runs one invocation: `program` is the executable's path (argv\[0\]),
/// `var` reads the environment, `stdin` holds the config.
pub fn run(program: &str, var: impl Fn(&str) -> Option<String>, stdin: impl Read) -> Reply {
    match execute(program, var, stdin) {
        Ok(stdout) => Reply {
            stdout,
            success: true,
        },
        Err((e, version)) => Reply {
            stdout: e.to_json(&version).to_string(),
            success: false,
        },
    }
}

/// What `--version` prints.
pub fn about(program: &str) -> String {
    format!(
        "hull CNI plugin {}, run as {}\nCNI protocol versions supported: {}",
        env!("CARGO_PKG_VERSION"),
        name_of(program),
        SUPPORTED_VERSIONS.join(", ")
    )
}

/// The invocation's output, or the error with the CNI version to report it
/// in.
fn execute(
    program: &str,
    var: impl Fn(&str) -> Option<String>,
    stdin: impl Read,
) -> Result<String, (CniError, String)> {
    let Plan::Act { op, version, job } = plan(program, var, stdin)? else {
        return Ok(version_info());
    };
    let result = job.act(op).map_err(|e| (e, version.clone()))?;
    Ok(result.map_or_else(String::new, |r| {
        serde_json::to_string(&r.into_version(&version)).expect("results serialize")
    }))
}

/// An invocation read and validated, before anything on the host is
/// touched.
#[derive(Debug)]
pub enum Plan {
    /// VERSION: needs nothing else.
    Version,
    /// ADD, DEL or CHECK of `job`, answered in the config's `version`.
    Act {
        op: Op,
        version: String,
        job: Box<Job>,
    },
}

/// What a role will work on, with its validated config.
#[derive(Debug)]
pub enum Job {
    Hull(NetSpec, Target),
    Bridge(NetSpec, Target),
    Portmap(PortmapSpec, Target),
    Loopback(Target),
    HostLocal,
}

/// Reads the environment and stdin into a [`Plan`] without acting on it;
/// on error, the CNI version to report it in. Separate from acting so that
/// all of an invocation's parsing can be exercised (fuzzed) on its own.
pub fn plan(
    program: &str,
    var: impl Fn(&str) -> Option<String>,
    stdin: impl Read,
) -> Result<Plan, (CniError, String)> {
    let in_version = |version: &str| {
        let version = version.to_owned();
        move |e: CniError| (e, version)
    };
    let op = match env::command(&var).map_err(in_version(DEFAULT_VERSION))? {
        Command::Version => return Ok(Plan::Version),
        Command::Op(op) => op,
    };
    let conf = read_config(stdin).map_err(in_version(DEFAULT_VERSION))?;
    let version = conf.version().to_owned();
    let job = Box::new(Job::of(program, op, &conf, var).map_err(in_version(&version))?);
    Ok(Plan::Act { op, version, job })
}

/// The answer to VERSION.
fn version_info() -> String {
    json!({ "cniVersion": DEFAULT_VERSION, "supportedVersions": SUPPORTED_VERSIONS }).to_string()
}

fn read_config(mut stdin: impl Read) -> Result<Config, CniError> {
    let mut bytes = Vec::new();
    stdin.read_to_end(&mut bytes).map_err(|e| {
        CniError::new(
            code::IO_FAILURE,
            format!("read the configuration from stdin: {e}"),
        )
    })?;
    Config::parse(&bytes)
}

/// A part hull-cni plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Hull,
    Bridge,
    Portmap,
    Loopback,
    HostLocal,
}

impl Role {
    /// The role of an invocation: `host-local` by the executable's name,
    /// the others by the config's `type`.
    fn of(program: &str, kind: &str) -> Result<Self, CniError> {
        if name_of(program) == HOST_LOCAL {
            return Ok(Self::HostLocal);
        }
        match kind {
            "hull" => Ok(Self::Hull),
            "bridge" => Ok(Self::Bridge),
            "portmap" => Ok(Self::Portmap),
            "loopback" => Ok(Self::Loopback),
            HOST_LOCAL => Ok(Self::HostLocal),
            other => Err(CniError::config(format!(
                "type {other:?}: hull-cni plays hull, bridge, portmap, loopback or host-local"
            ))),
        }
    }
}

fn name_of(program: &str) -> &str {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program)
}

impl Job {
    /// The role `program` and the config's `type` choose, with its config
    /// validated and the variables `op` needs read.
    fn of(
        program: &str,
        op: Op,
        conf: &Config,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CniError> {
        let target = || {
            if op == Op::Check {
                conf.check_supports_check()?;
            }
            env::target(op, &var)
        };
        Ok(match Role::of(program, &conf.common.kind)? {
            Role::Hull => Self::Hull(NetSpec::hull(conf)?, target()?),
            Role::Bridge => Self::Bridge(NetSpec::bridge(conf)?, target()?),
            Role::Portmap => Self::Portmap(PortmapSpec::parse(conf)?, target()?),
            Role::Loopback => Self::Loopback(target()?),
            Role::HostLocal => Self::HostLocal,
        })
    }

    /// Does `op`: the part that touches the host.
    fn act(&self, op: Op) -> Result<Option<CniResult>, CniError> {
        match self {
            Self::Hull(spec, target) | Self::Bridge(spec, target) => attach::run(op, spec, target),
            Self::Portmap(spec, target) => portmap::run(op, spec, target),
            Self::Loopback(target) => loopback::run(op, target),
            Self::HostLocal => host_local(op),
        }
    }
}

/// hull-cni is not an IPAM plugin: only DEL (of nothing) succeeds.
fn host_local(op: Op) -> Result<Option<CniResult>, CniError> {
    match op {
        Op::Del => Ok(None),
        Op::Add | Op::Check => Err(CniError::new(
            code::NOT_IMPLEMENTED,
            "hull-cni does not implement the host-local IPAM plugin",
        )
        .details(
            "hull's bridge role allocates addresses itself (hull's IPAM, leases under ipam.dataDir); \
             this executable only exists so that a plugin directory is complete",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn invoke(program: &str, command: &str, conf: &str) -> (Value, bool) {
        let var = |k: &str| match k {
            "CNI_COMMAND" => Some(command.to_owned()),
            "CNI_CONTAINERID" => Some("hull-test-unit".to_owned()),
            "CNI_IFNAME" => Some("eth0".to_owned()),
            _ => None,
        };
        let reply = run(program, var, conf.as_bytes());
        let json = if reply.stdout.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&reply.stdout).unwrap()
        };
        (json, reply.success)
    }

    #[test]
    fn version_needs_no_config() {
        let (v, ok) = invoke("/opt/cni/bin/bridge", "VERSION", "");
        assert!(ok);
        assert_eq!(
            v,
            json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]})
        );
    }

    #[test]
    fn errors_are_json_in_the_config_version() {
        let (v, ok) = invoke(
            "hull-cni",
            "DEL",
            r#"{"cniVersion":"0.4.0","name":"n","type":"weird"}"#,
        );
        assert!(!ok);
        assert_eq!(
            (v["code"].as_u64(), v["cniVersion"].as_str()),
            (Some(7), Some("0.4.0"))
        );
        let (v, _) = invoke("hull-cni", "DEL", "[");
        assert_eq!(
            (v["code"].as_u64(), v["cniVersion"].as_str()),
            (Some(6), Some("1.0.0"))
        );
        let (v, _) = invoke("hull-cni", "BOGUS", "{}");
        assert_eq!(v["code"], 4);
    }

    #[test]
    fn host_local_is_chosen_by_name_and_refuses_add() {
        let conf = r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#;
        let (v, ok) = invoke("/x/host-local", "ADD", conf);
        assert!(!ok);
        assert_eq!(v["code"], 105);
        let (_, ok) = invoke("/x/host-local", "DEL", conf);
        assert!(ok);
    }

    #[test]
    fn del_without_state_succeeds() {
        let conf = json!({
            "cniVersion": "1.0.0", "name": "n", "type": "hull",
            "dataDir": "/tmp/hull-test-cni-unit-nonexistent"
        });
        let (v, ok) = invoke("hull-cni", "DEL", &conf.to_string());
        assert!(ok, "{v}");
        assert!(!Path::new("/tmp/hull-test-cni-unit-nonexistent").exists());
    }
}
