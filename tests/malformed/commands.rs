//! Commands on ids that do not exist, ids that are not ids, and commands
//! in a status where they make no sense.

use hull_tests::*;
use serde_json::Value;

/// A command on a container id, and what it must say.
pub(crate) struct CommandCase {
    pub name: &'static str,
    /// The arguments; `ID` is replaced by the container's id.
    pub args: &'static [&'static str],
    pub needles: &'static [&'static str],
}

/// Every command on an id that does not exist.
pub(crate) const UNKNOWN_ID_CASES: &[CommandCase] = &[
    CommandCase {
        name: "state",
        args: &["state", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "start",
        args: &["start", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "kill",
        args: &["kill", "ID", "KILL"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "kill-all",
        args: &["kill", "--all", "ID", "TERM"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "pause",
        args: &["pause", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "resume",
        args: &["resume", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "exec",
        args: &["exec", "ID", "true"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "ps",
        args: &["ps", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "events",
        args: &["events", "--stats", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "update",
        args: &["update", "--pids-limit", "10", "ID"],
        needles: &["container does not exist"],
    },
    CommandCase {
        name: "delete",
        args: &["delete", "ID"],
        needles: &["container does not exist"],
    },
];

/// Container ids that are not ids, for `create` (and `run`).
/// A bad id: the case's name, the id, what the error must say.
pub(crate) type IdCase = (&'static str, fn() -> String, &'static [&'static str]);

pub(crate) const BAD_IDS: &[IdCase] = &[
    (
        "dotdot-slash",
        || "../hull-test-mf-escape".into(),
        &["invalid container ID format", "../hull-test-mf-escape"],
    ),
    ("empty", String::new, &["container id cannot be empty"]),
    ("slash", || "/".into(), &["invalid container ID format"]),
    (
        "too-long",
        || "a".repeat(2000),
        &["invalid container ID format", "longer than 200 bytes"],
    ),
    (
        "longer-than-a-file-name",
        || "a".repeat(250),
        &["invalid container ID format", "longer than 200 bytes"],
    ),
    ("space", || "a b".into(), &["invalid container ID format"]),
];

/// A container kept in one status for the wrong-state cases.
pub(crate) struct Held {
    pub b: TestBundle,
}

impl Held {
    pub fn new(name: &str, status: &str) -> Self {
        let mut b = TestBundle::new(&format!("mf-{name}"));
        match status {
            "created" => {
                b.args(&["sleep", "1000"]);
                b.create();
            }
            "running" | "paused" => {
                b.args(&["sleep", "1000"]);
                b.detached(&["run", "-d"]);
            }
            "stopped" => {
                b.args(&["true"]);
                b.detached(&["run", "-d"]);
                wait_for(
                    || "container to stop".into(),
                    || b.state()["status"] == "stopped",
                );
            }
            _ => unreachable!(),
        }
        if status == "paused" {
            Out::from(b.cmd(&["pause", &b.id])).ok();
        }
        assert_eq!(b.state()["status"], status);
        Self { b }
    }

    /// The processes in the container's cgroup (its pids controller).
    pub fn processes(&self) -> Vec<String> {
        let out = Out::from(self.b.cmd(&["ps", "--format", "json", &self.b.id]));
        out.ok();
        let mut pids: Vec<String> = serde_json::from_str::<Vec<Value>>(&out.stdout)
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect();
        pids.sort();
        pids
    }
}

/// A command in a status where it makes no sense.
pub(crate) struct StateCase {
    /// Which held container: created, running, stopped or paused.
    pub status: &'static str,
    pub case: CommandCase,
}

pub(crate) const WRONG_STATE_CASES: &[StateCase] = &[
    StateCase {
        status: "running",
        case: CommandCase {
            name: "start-running",
            args: &["start", "ID"],
            needles: &["cannot start an already running container"],
        },
    },
    StateCase {
        status: "stopped",
        case: CommandCase {
            name: "start-stopped",
            args: &["start", "ID"],
            needles: &["cannot start a container that has stopped"],
        },
    },
    StateCase {
        status: "paused",
        case: CommandCase {
            name: "start-paused",
            args: &["start", "ID"],
            needles: &["cannot start a container in the paused state"],
        },
    },
    StateCase {
        status: "stopped",
        case: CommandCase {
            name: "pause-stopped",
            args: &["pause", "ID"],
            needles: &["container not running"],
        },
    },
    StateCase {
        status: "running",
        case: CommandCase {
            name: "resume-running",
            args: &["resume", "ID"],
            needles: &["container not paused"],
        },
    },
    StateCase {
        status: "created",
        case: CommandCase {
            name: "resume-created",
            args: &["resume", "ID"],
            needles: &["container not paused"],
        },
    },
    StateCase {
        status: "stopped",
        case: CommandCase {
            name: "exec-stopped",
            args: &["exec", "ID", "true"],
            needles: &["cannot exec in a stopped container"],
        },
    },
    StateCase {
        status: "paused",
        case: CommandCase {
            name: "exec-paused",
            args: &["exec", "ID", "true"],
            needles: &["cannot exec in a paused container"],
        },
    },
    StateCase {
        status: "running",
        case: CommandCase {
            name: "delete-running",
            args: &["delete", "ID"],
            needles: &["cannot delete container", "not stopped: running"],
        },
    },
    StateCase {
        status: "paused",
        case: CommandCase {
            name: "delete-paused",
            args: &["delete", "ID"],
            needles: &["cannot delete container", "not stopped: paused"],
        },
    },
    StateCase {
        status: "stopped",
        case: CommandCase {
            name: "kill-stopped",
            args: &["kill", "ID", "TERM"],
            needles: &["container not running"],
        },
    },
    StateCase {
        status: "stopped",
        case: CommandCase {
            name: "update-stopped",
            args: &["update", "--pids-limit", "10", "ID"],
            needles: &["container not running"],
        },
    },
    StateCase {
        status: "stopped",
        case: CommandCase {
            name: "events-stopped",
            args: &["events", "--stats", "ID"],
            needles: &["container with id", "is not running"],
        },
    },
    StateCase {
        status: "running",
        case: CommandCase {
            name: "create-existing",
            args: &["create", "--bundle", "BUNDLE", "ID"],
            needles: &["container with given ID already exists"],
        },
    },
    StateCase {
        status: "running",
        case: CommandCase {
            name: "exec-bad-process-file",
            args: &["exec", "--process", "/nonexistent-process.json", "ID"],
            needles: &["/nonexistent-process.json"],
        },
    },
    StateCase {
        status: "running",
        case: CommandCase {
            name: "exec-process-relative-cwd",
            args: &["exec", "--process", "PROCESS", "ID"],
            needles: &["process.cwd must be an absolute path"],
        },
    },
    StateCase {
        status: "running",
        case: CommandCase {
            name: "kill-bad-signal",
            args: &["kill", "ID", "SIGBOGUS"],
            needles: &["SIGBOGUS"],
        },
    },
];
