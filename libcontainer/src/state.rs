//! The state store: one file per container under the state root, `<root>/<id>`,
//! holding its record (the fields of runc's `state.json` and what the runtime
//! needs later). A file that goes with a container is named `<root>/<id>@<what>`
//! (`@` is never part of an id, so no such name is a container's), such as
//! the exec fifo `<id>@exec.fifo` the init blocks on until `start`.
//!
//! A file, not a directory per container: a directory takes a disk block at
//! once, and freeing it on a filesystem mounted with online discard (ext4
//! `-o discard`) waits for the device, while a file written once and removed
//! before writeback never reaches the disk.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the fifo whose presence marks a created-but-not-started container is
/// (see [`companion`]).
pub const EXEC_FIFO: &str = "exec.fifo";
/// The companion [`Record::save`] writes before renaming it over the state.
pub(crate) const STATE_TMP: &str = "state.tmp";
/// The companion marking a container stopped by a checkpoint; it holds the
/// image directory's path.
pub const CHECKPOINTED: &str = "checkpointed";

/// A state file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot access state {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt state {}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Lifecycle status as the runtime spec (and runc) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        })
    }
}

/// Decodes the bytes of a state file as [`Record::load`] does and returns
/// its public part: the state file's parser, reachable without a state
/// root (for fuzzing).
pub fn decode_state(bytes: &[u8]) -> Result<State, serde_json::Error> {
    serde_json::from_slice::<Record>(bytes).map(|r| r.state)
}

/// The container's state in runc's JSON shape (what `hull state` prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container's init; 0 once stopped.
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 with nanoseconds in UTC.
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

/// What is persisted: the public state plus what the runtime needs later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(flatten)]
    pub state: State,
    /// Start time of the init (clock ticks since boot), so a recycled pid is
    /// never mistaken for the container.
    pub init_start_time: u64,
    /// The container's cgroup directories.
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// The config's hooks, for poststart and poststop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The network the container is connected by, for delete to disconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::NetworkRecord>,
}

impl Record {
    /// The record of container `id` while it is being made (created or
    /// restored): no init yet, its cgroup as placed.
    pub(crate) fn creating(
        id: &str,
        spec: &oci_spec::runtime::Spec,
        bundle: &Path,
        rootfs: &Path,
        cgroup: &crate::cgroups::Cgroup,
    ) -> Self {
        Record {
            state: State {
                oci_version: spec.version().clone(),
                id: id.to_owned(),
                pid: 0,
                status: Status::Creating,
                bundle: bundle.to_owned(),
                rootfs: rootfs.to_owned(),
                created: rfc3339_nanos(std::time::SystemTime::now()),
                owner: String::new(),
                annotations: spec
                    .annotations()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            },
            init_start_time: 0,
            cgroup: (!cgroup.dirs.is_empty()).then(|| cgroup.clone()),
            hooks: spec.hooks().clone(),
            network: None,
        }
    }

    /// Reads the state file `path`.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let bytes = fs::read(path).map_err(|source| StateError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the record to the state file `path` whole: into its
    /// temporary twin ([`temp_path`]), renamed over it, so a reader or a
    /// kill never meets a half-written record, only the empty file
    /// [`claim`] made, the old record or the new one. (No fsync: the state
    /// root is a tmpfs under /run that a host crash empties anyway.) A
    /// twin a kill leaves before the rename goes with the container.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let json = serde_json::to_vec(self).expect("state serializes");
        let tmp = temp_path(path);
        let io = |source| StateError::Io {
            path: tmp.clone(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(&json).map_err(io)?;
        fs::rename(&tmp, path).map_err(io)
    }

    /// Derives the live status the way runc does: stopped if the init is gone
    /// (or its pid now belongs to another process, or it is a zombie), created
    /// while the exec fifo `fifo` exists, running otherwise.
    pub fn current_status(&self, fifo: &Path) -> Status {
        if self.state.pid <= 0 {
            return Status::Stopped;
        }
        match proc_stat(self.state.pid) {
            Some((state, start))
                if start == self.init_start_time && state != 'Z' && state != 'X' => {}
            _ => return Status::Stopped,
        }
        if fifo.exists() {
            Status::Created
        } else if self.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            Status::Paused
        } else {
            Status::Running
        }
    }
}

/// Reads the state letter and start time (field 22) of `/proc/<pid>/stat`.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = crate::pseudo_file::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The state file of container `id` under `root`.
pub(crate) fn state_path(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// The file `what` that goes with container `id`: `<root>/<id>@<what>`.
pub fn companion(root: &Path, id: &str, what: &str) -> PathBuf {
    root.join(format!("{id}@{what}"))
}

/// The temporary twin [`Record::save`] writes before renaming it over the
/// state file `path`: `<root>/<id>@state.tmp`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!("@{STATE_TMP}"));
    path.with_file_name(name)
}

/// Whether the empty state file `path` was left by a create that died:
/// the create holds a lock on it ([`claim`]) until it has saved the
/// record, so an empty file nobody locks is abandoned, not in progress.
pub(crate) fn is_abandoned(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = File::open(path) else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
        return false;
    }
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) == 0 }
}

/// Removes the file `path` if it is there.
pub(crate) fn remove_if_present(path: &Path) -> crate::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::Error::io(path)(e)),
        _ => Ok(()),
    }
}

/// Creates the state root if needed (mode 0700) and claims `id` with an
/// empty state file (mode 0600), locked while the file is open, failing with [`crate::Error::Exists`] if
/// the container is already there.
pub(crate) fn claim(root: &Path, id: &str) -> crate::Result<(File, PathBuf)> {
    let path = state_path(root, id);
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
    };
    let made = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(crate::Error::io(root))?;
            create()
        }
        made => made,
    };
    match made {
        Ok(file) => {
            use std::os::fd::AsRawFd;
            // Held until the record is saved (see `is_abandoned`); the file
            // is new, so nobody else holds it.
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                return Err(crate::Error::io(&path)(std::io::Error::last_os_error()));
            }
            Ok((file, path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(crate::Error::Exists(id.to_owned()))
        }
        Err(e) => Err(crate::Error::io(&path)(e)),
    }
}

/// Formats a time as RFC 3339 with nanoseconds in UTC, as Go's `time.RFC3339Nano`
/// would print it (trailing zeros of the fraction dropped).
pub fn rfc3339_nanos(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let mut out = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_times_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_795_410_286, 123_456_700);
        assert_eq!(rfc3339_nanos(t), "2026-11-23T05:04:46.1234567Z");
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_nanos(leap), "2000-02-29T00:00:00Z");
    }

    fn record() -> Record {
        Record {
            state: State {
                oci_version: "1.0.2".into(),
                id: "t".into(),
                pid: 42,
                status: Status::Created,
                bundle: "/b".into(),
                rootfs: "/b/rootfs".into(),
                created: "2026-11-23T05:04:46Z".into(),
                owner: String::new(),
                annotations: BTreeMap::new(),
            },
            init_start_time: 7,
            cgroup: None,
            hooks: None,
            network: Some(crate::network::NetworkRecord {
                kind: "test".into(),
                record: serde_json::json!({ "where": "/run/test-net" }),
            }),
        }
    }

    #[test]
    fn state_json_has_runc_field_names() {
        let v = serde_json::to_value(&record().state).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        for k in [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} missing in {keys:?}");
        }
        assert!(!keys.contains(&"annotations".to_string()));
        assert_eq!(v["status"], "created");
    }

    #[test]
    fn record_round_trips_through_disk() {
        let root = std::env::temp_dir().join(format!("hull-unit-state-{}", std::process::id()));
        let r = record();
        let (file, path) = claim(&root, "t").unwrap();
        assert!(matches!(claim(&root, "t"), Err(crate::Error::Exists(_))));
        assert!(!is_abandoned(&path), "a claim in progress is locked");
        r.save(&path).unwrap();
        assert_eq!(Record::load(&path).unwrap(), r);
        assert!(!temp_path(&path).exists());
        drop(file);
        let (_, empty) = claim(&root, "dead").unwrap();
        assert!(is_abandoned(&empty), "an empty claim whose owner is gone");
        assert_eq!(companion(&root, "t", EXEC_FIFO), root.join("t@exec.fifo"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn status_is_stopped_for_dead_or_recycled_pid() {
        let fifo = std::env::temp_dir().join("hull-unit-no-such-fifo");
        let mut r = record();
        r.state.pid = 0;
        assert_eq!(r.current_status(&fifo), Status::Stopped);
        // Our own pid is alive, but with another start time it is not the container.
        r.state.pid = std::process::id() as i32;
        r.init_start_time = u64::MAX;
        assert_eq!(r.current_status(&fifo), Status::Stopped);
        r.init_start_time = proc_stat(r.state.pid).unwrap().1;
        assert_eq!(r.current_status(&fifo), Status::Running);
    }
}
