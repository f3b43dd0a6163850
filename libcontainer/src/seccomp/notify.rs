//! SCMP_ACT_NOTIFY: the listener fd goes to the seccomp agent listening on
//! `listenerPath`, with the container's process state as JSON in the same
//! message (runc's seccomp agent protocol: `specs.ContainerProcessState`).
//!
//! The filter is installed right before `execve`, after `start` when the
//! creating process may be gone, and after pivot_root when the agent's path
//! is out of reach. So the runtime connects to the agent before it clones
//! the process, which inherits the connection and sends the listener over
//! it once the filter is in place.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::json;

use super::SeccompError;

/// What the agent is told about the container.
pub struct AgentState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    /// `creating` for the init, `running` for an exec'd process.
    pub status: &'a str,
    pub bundle: &'a Path,
    pub metadata: Option<&'a str>,
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

/// A connection to the agent, made by the runtime before the clone.
#[derive(Debug)]
pub struct Agent {
    stream: UnixStream,
    path: String,
    /// The message without the pids, which the sender fills in.
    message: serde_json::Value,
}

impl Agent {
    /// Connects to the agent at `listener_path` (close-on-exec).
    pub fn connect(listener_path: &Path, s: &AgentState) -> Result<Self, SeccompError> {
        let path = listener_path.display().to_string();
        let stream = UnixStream::connect(listener_path)
            .map_err(|e| SeccompError::Notify(format!("connect to {path}: {e}")))?;
        let mut state = json!({
            "ociVersion": s.oci_version,
            "id": s.id,
            "status": s.status,
            "bundle": s.bundle,
        });
        if let Some(a) = s.annotations {
            state["annotations"] = json!(a);
        }
        let message = json!({
            "ociVersion": s.oci_version,
            "fds": ["seccompFd"],
            "metadata": s.metadata.unwrap_or(""),
            "state": state,
        });
        Ok(Agent {
            stream,
            path,
            message,
        })
    }

    /// The connection's fd, which must survive the closing of the
    /// runtime's fds until the listener is sent.
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Sends the state with `listener` attached: `pid` is the filtered
    /// process, `init_pid` the container's init (both as the host sees them).
    pub fn send(&self, listener: &OwnedFd, pid: i32, init_pid: i32) -> Result<(), SeccompError> {
        let mut msg = self.message.clone();
        msg["pid"] = json!(pid);
        msg["state"]["pid"] = json!(init_pid);
        let text = msg.to_string();
        let fds = [listener.as_raw_fd()];
        sendmsg::<()>(
            self.stream.as_raw_fd(),
            &[IoSlice::new(text.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| SeccompError::Notify(format!("send listener fd to {}: {e}", self.path)))?;
        Ok(())
    }
}
