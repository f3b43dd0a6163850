//! LSM labels: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`, applied as runc 1.1.5 applies them, never dropped.
//!
//! - An AppArmor profile is requested for the next `execve` by writing
//!   `exec <profile>` to the task's AppArmor `exec` attribute (runc does not
//!   check whether AppArmor is enabled: on a kernel without it the write
//!   fails and so does the container).
//! - An SELinux process label is refused up front when SELinux is not
//!   enabled, with runc's text; otherwise it is written to the `exec`
//!   attribute, likewise for the next `execve`.
//! - The mount label goes into the `context=` option of the container's
//!   tmpfs and other filesystem mounts (not binds, proc, sysfs or mqueue),
//!   whether or not SELinux is enabled (runc does that too: a kernel without
//!   SELinux refuses the option); an mqueue mount is labelled as a file,
//!   where SELinux is enabled.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sys::statfs::{statfs, FsType};
use oci_spec::runtime::{Process, Spec};

use crate::procfs::{ProcRoot, ProcfsError};
use crate::spec::SpecError;

/// `SELINUX_MAGIC` of the kernel's headers.
const SELINUX_MAGIC: FsType = FsType(0xf97c_ff8c);

/// runc's text for an SELinux label on a host without SELinux.
const SELINUX_DISABLED: &str =
    "selinux label is specified in config, but selinux is disabled or not supported";

/// Refuses the spec's process label if SELinux is not enabled.
pub(crate) fn check(spec: &Spec) -> Result<(), SpecError> {
    match spec.process() {
        Some(p) => check_process(p),
        None => Ok(()),
    }
}

/// Refuses `process.selinuxLabel` if SELinux is not enabled.
pub(crate) fn check_process(process: &Process) -> Result<(), SpecError> {
    let wants_label = process
        .selinux_label()
        .as_deref()
        .is_some_and(|l| !l.is_empty());
    if wants_label && !selinux_enabled() {
        return Err(SpecError::Invalid(SELINUX_DISABLED.into()));
    }
    Ok(())
}

/// Whether SELinux is enabled: a writable selinuxfs is mounted and the
/// process has a label other than the one of a kernel without a policy.
fn selinux_enabled() -> bool {
    let selinuxfs = statfs("/sys/fs/selinux").is_ok_and(|s| {
        s.filesystem_type() == SELINUX_MAGIC
            && !s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
    });
    selinuxfs
        && crate::pseudo_file::read_to_string("/proc/self/attr/current")
            .is_ok_and(|l| l.trim_end_matches(['\0', '\n']) != "kernel")
}

/// A label that could not be applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LabelError {
    #[error("unable to apply apparmor profile: apparmor failed to apply profile: {0}")]
    AppArmor(ProcfsError),
    #[error("can't set process label: {0}")]
    SELinux(ProcfsError),
}

/// Requests the process's AppArmor profile and SELinux label for its
/// `execve`. Runs in the container's mount namespace, before the user and
/// capabilities change; the attribute files are reached through the
/// checked procfs (CVE-2025-52881: a mount over them must not take the write).
pub(crate) fn apply_for_exec(process: &Process) -> Result<(), LabelError> {
    let profile = process.apparmor_profile().as_deref().unwrap_or("");
    let label = process.selinux_label().as_deref().unwrap_or("");
    if profile.is_empty() && label.is_empty() {
        return Ok(());
    }
    let proc = ProcRoot::open().map_err(|e| match profile.is_empty() {
        true => LabelError::SELinux(e),
        false => LabelError::AppArmor(e),
    })?;
    if !profile.is_empty() {
        set_apparmor_exec(&proc, profile).map_err(LabelError::AppArmor)?;
    }
    if !label.is_empty() {
        proc.write(Path::new("thread-self/attr/exec"), label.as_bytes())
            .map_err(LabelError::SELinux)?;
    }
    Ok(())
}

/// Writes `exec <profile>` to the AppArmor `exec` attribute: the one of its
/// own directory where the kernel has it (stacked LSMs), else the shared one.
fn set_apparmor_exec(proc: &ProcRoot, profile: &str) -> Result<(), ProcfsError> {
    let own = Path::new("thread-self/attr/apparmor/exec");
    let attr = match proc.exists(own) {
        true => own,
        false => Path::new("thread-self/attr/exec"),
    };
    proc.write(attr, format!("exec {profile}").as_bytes())
}

/// The spec's `linux.mountLabel`, if set.
pub(crate) fn mount_label(spec: &Spec) -> Option<&str> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
}

/// Labels the file or directory `fd` (an `O_PATH` handle) with `label`
/// where SELinux is enabled; elsewhere there is nothing to label (runc's
/// `SetFileLabel` does nothing there either).
pub(crate) fn set_file_label(fd: &impl AsRawFd, label: &str) -> nix::Result<()> {
    if !selinux_enabled() {
        return Ok(());
    }
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: NUL-terminated path and name, and a value of `label.len()`
    // bytes, all outliving the call.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.selinux".as_ptr(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(nix::Error::last()),
    }
}

/// Mount data `data` with the mount label's `context=` option added.
pub(crate) fn with_mount_label(data: &str, label: Option<&str>) -> String {
    match (label, data.is_empty()) {
        (None, _) => data.to_owned(),
        (Some(l), true) => format!("context=\"{l}\""),
        (Some(l), false) => format!("{data},context=\"{l}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    fn fake_proc(name: &str, apparmor_dir: bool) -> (PathBuf, ProcRoot) {
        let dir = std::env::temp_dir().join(format!("hull-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let attr = dir.join("5/task/5/attr");
        std::fs::create_dir_all(&attr).unwrap();
        std::fs::write(attr.join("exec"), "").unwrap();
        if apparmor_dir {
            std::fs::create_dir_all(attr.join("apparmor")).unwrap();
            std::fs::write(attr.join("apparmor/exec"), "").unwrap();
        }
        symlink("5/task/5", dir.join("thread-self")).unwrap();
        let fd = std::fs::File::open(&dir).unwrap();
        (dir, ProcRoot::unchecked(fd.into()))
    }

    #[test]
    fn apparmor_uses_its_own_attr_directory_when_there_is_one() {
        let (dir, proc) = fake_proc("aa-own", true);
        set_apparmor_exec(&proc, "p1").unwrap();
        let attr = dir.join("5/task/5/attr");
        assert_eq!(
            std::fs::read(attr.join("apparmor/exec")).unwrap(),
            b"exec p1"
        );
        assert_eq!(std::fs::read(attr.join("exec")).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn apparmor_falls_back_to_the_shared_attr() {
        let (dir, proc) = fake_proc("aa-shared", false);
        set_apparmor_exec(&proc, "p2").unwrap();
        assert_eq!(
            std::fs::read(dir.join("5/task/5/attr/exec")).unwrap(),
            b"exec p2"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mount_label_is_appended_as_context() {
        assert_eq!(with_mount_label("mode=755", None), "mode=755");
        assert_eq!(with_mount_label("", Some("s0")), "context=\"s0\"");
        assert_eq!(
            with_mount_label("mode=755", Some("a:b:c:s0")),
            "mode=755,context=\"a:b:c:s0\""
        );
    }
}
