//! SCMP_ACT_NOTIFY: the listener fd goes to the seccomp agent listening on
//! `listenerPath`, with the container's process state as JSON in the same
//! message (runc's seccomp agent protocol: `specs.ContainerProcessState`).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::json;

use super::SeccompError;

/// What the agent is told about the container.
pub struct AgentState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub bundle: &'a Path,
    pub metadata: Option<&'a str>,
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

/// Connects to the agent and sends the state with the listener fd attached.
pub fn send_to_agent(
    listener_path: &Path,
    fd: &OwnedFd,
    s: &AgentState,
) -> Result<(), SeccompError> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        SeccompError::Notify(format!("{what} {}: {e}", listener_path.display()))
    };
    let stream = UnixStream::connect(listener_path).map_err(|e| err("connect to", &e))?;
    let mut state = json!({
        "ociVersion": s.oci_version,
        "id": s.id,
        "status": "creating",
        "pid": s.pid,
        "bundle": s.bundle,
    });
    if let Some(a) = s.annotations {
        state["annotations"] = json!(a);
    }
    let msg = json!({
        "ociVersion": s.oci_version,
        "fds": ["seccompFd"],
        "pid": s.pid,
        "metadata": s.metadata.unwrap_or(""),
        "state": state,
    })
    .to_string();
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(msg.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| err("send listener fd to", &e))?;
    Ok(())
}
