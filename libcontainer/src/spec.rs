//! Loading `config.json` from a bundle and checking what the runtime relies on.

mod checks;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

/// A bundle whose configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed {}: {source}", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The top level of `config.json` is not an object (an array, say).
    #[error("malformed {}: the config is not a JSON object", .0.display())]
    NotAnObject(PathBuf),
    #[error("unsupported spec version {0:?}: only 1.x is supported")]
    UnsupportedVersion(String),
    #[error("rootfs {} does not exist or is not a directory", .0.display())]
    MissingRootfs(PathBuf),
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// A validated spec together with the absolute paths it refers to.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute, symlink-free path of the root filesystem.
    pub rootfs: PathBuf,
    /// The parsed `config.json`.
    pub spec: Spec,
}

impl Bundle {
    /// Reads `dir/config.json`, resolves `root.path` against `dir` and validates both.
    pub fn load(dir: &Path) -> Result<Self, SpecError> {
        let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("config.json");
        let text = std::fs::read(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        // serde takes a struct from an array of its fields too: `[]` would
        // be a config with every field empty.
        if text.trim_ascii_start().first().is_some_and(|b| *b != b'{') {
            return Err(SpecError::NotAnObject(path));
        }
        let spec: Spec = serde_json::from_slice(&text)
            .map_err(|source| SpecError::Malformed { path, source })?;
        validate(&spec)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| SpecError::Invalid("root is missing".into()))?;
        let rootfs = dir.join(root.path());
        let rootfs = match std::fs::canonicalize(&rootfs) {
            Ok(p) if p.is_dir() => p,
            _ => return Err(SpecError::MissingRootfs(rootfs)),
        };
        Ok(Self { dir, rootfs, spec })
    }

    /// Whether `process.terminal` asks for a terminal.
    pub fn wants_terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .is_some_and(|p| p.terminal() == Some(true))
    }
}

/// Checks the parts of a spec that the runtime cannot work without.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(SpecError::UnsupportedVersion(version.clone()));
    }
    let invalid = |msg: &str| Err(SpecError::Invalid(msg.to_owned()));
    let Some(process) = spec.process() else {
        return invalid("process is missing");
    };
    validate_process(process)?;
    let Some(linux) = spec.linux() else {
        return invalid("linux section is missing");
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    if !namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Mount)
    {
        return invalid("a mount namespace is required");
    }
    for (i, ns) in namespaces.iter().enumerate() {
        if namespaces[..i].iter().any(|o| o.typ() == ns.typ()) {
            return Err(SpecError::Invalid(format!(
                "namespace {:?} is listed twice",
                ns.typ()
            )));
        }
    }
    if let Some(mounts) = spec.mounts() {
        for m in mounts {
            if !m.destination().is_absolute() {
                return Err(SpecError::Invalid(format!(
                    "mount destination {} is not absolute",
                    m.destination().display()
                )));
            }
            checks::mount(m)?;
        }
    }
    checks::namespaces(linux)?;
    checks::hostname(spec, linux)?;
    checks::linux(linux)?;
    if let Some(hooks) = spec.hooks() {
        checks::hooks(hooks)?;
    }
    if let Some(profile) = linux.seccomp() {
        crate::seccomp::validate(profile).map_err(|e| SpecError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// Checks a process to run (`process` of a config, or `exec --process`).
pub fn validate_process(process: &Process) -> Result<(), SpecError> {
    let invalid = |msg: &str| Err(SpecError::Invalid(msg.to_owned()));
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return invalid("process.args must not be empty"),
    }
    if !process.cwd().is_absolute() {
        return invalid("process.cwd must be an absolute path");
    }
    checks::process(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const GOOD: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    #[test]
    fn accepts_minimal_spec() {
        validate(&spec(GOOD)).unwrap();
    }

    #[test]
    fn rejects_other_major_versions() {
        for v in ["2.0.0", "0.1.0", ""] {
            let s = GOOD.replace("1.0.2", v);
            assert!(matches!(
                validate(&spec(&s)),
                Err(SpecError::UnsupportedVersion(_))
            ));
        }
    }

    #[test]
    fn rejects_empty_args_relative_cwd_and_missing_mount_ns() {
        for (from, to) in [
            (r#"["sh"]"#, "[]"),
            (r#""cwd":"/""#, r#""cwd":"tmp""#),
            (r#"{"type":"mount"},"#, ""),
            (r#"{"type":"pid"}"#, r#"{"type":"mount"}"#),
        ] {
            let s = GOOD.replace(from, to);
            assert!(
                matches!(validate(&spec(&s)), Err(SpecError::Invalid(_))),
                "{s}"
            );
        }
    }
}
