//! Parsing `mounts[].options` into mount(2) flags the way runc does.

use nix::mount::MsFlags;

/// The options of one mount entry, split by how they are applied. Public
/// so that the parser can be fuzzed from outside the crate.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount (or bind remount) itself.
    pub flags: MsFlags,
    /// Flags explicitly cleared (e.g. `rw`, `suid`), kept to override inherited ones.
    pub cleared: MsFlags,
    /// Propagation changes, applied one by one after mounting.
    pub propagation: Vec<MsFlags>,
    /// Whether this is a bind mount (`bind` or `rbind`).
    pub bind: bool,
    /// Whether the bind is recursive (`rbind`).
    pub recursive: bool,
    /// An idmapped bind: `Some(false)` for `idmap` (its top mount),
    /// `Some(true)` for `ridmap` (every mount of the tree).
    pub idmap: Option<bool>,
    /// A tmpfs that starts with a copy of the directory it covers (`tmpcopyup`).
    pub copy_up: bool,
    /// The recursive attributes (`rro`, `rnosuid`, ...): mount_setattr
    /// attributes set and cleared on every mount of the tree.
    pub recursive_attrs: (u64, u64),
    /// Everything else, passed to the filesystem as its data string.
    pub data: String,
}

impl MountOptions {
    fn empty() -> Self {
        Self {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            bind: false,
            recursive: false,
            idmap: None,
            copy_up: false,
            recursive_attrs: (0, 0),
            data: String::new(),
        }
    }

    /// Splits `mounts[].options` into flags, propagation and data; never
    /// fails (unknown options go to the filesystem as data, as with runc).
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Self {
        let mut o = Self::empty();
        let mut data = Vec::new();
        for opt in options {
            let opt = opt.as_ref();
            if let Some((set, flag)) = flag_of(opt) {
                if set {
                    o.flags |= flag;
                    o.cleared -= flag;
                } else {
                    o.flags -= flag;
                    o.cleared |= flag;
                }
            } else if let Some(p) = propagation_of(opt) {
                o.propagation.push(p);
            } else if opt == "bind" {
                o.bind = true;
            } else if opt == "rbind" {
                o.bind = true;
                o.recursive = true;
            } else if opt == "idmap" || opt == "ridmap" {
                o.idmap = Some(opt == "ridmap");
            } else if opt == "tmpcopyup" {
                o.copy_up = true;
            } else if let Some((set, attr)) = recursive_attr_of(opt) {
                let (on, off) = &mut o.recursive_attrs;
                // The access-time mode is one field, cleared as a whole.
                if attr & libc::MOUNT_ATTR__ATIME == attr {
                    *off |= libc::MOUNT_ATTR__ATIME;
                    *on &= !libc::MOUNT_ATTR__ATIME;
                    if set {
                        *on |= attr;
                    }
                } else if set {
                    *on |= attr;
                    *off &= !attr;
                } else {
                    *off |= attr;
                    *on &= !attr;
                }
            } else if !opt.is_empty() && !is_ignored(opt) {
                data.push(opt);
            }
        }
        o.data = data.join(",");
        o
    }
}

/// Options that set (`true`) or clear (`false`) a mount flag.
const FLAGS: [(&str, bool, MsFlags); 29] = {
    use MsFlags as F;
    [
        ("defaults", true, F::empty()),
        ("ro", true, F::MS_RDONLY),
        ("rw", false, F::MS_RDONLY),
        ("nosuid", true, F::MS_NOSUID),
        ("suid", false, F::MS_NOSUID),
        ("nodev", true, F::MS_NODEV),
        ("dev", false, F::MS_NODEV),
        ("noexec", true, F::MS_NOEXEC),
        ("exec", false, F::MS_NOEXEC),
        ("sync", true, F::MS_SYNCHRONOUS),
        ("async", false, F::MS_SYNCHRONOUS),
        ("dirsync", true, F::MS_DIRSYNC),
        ("remount", true, F::MS_REMOUNT),
        ("mand", true, F::MS_MANDLOCK),
        ("nomand", false, F::MS_MANDLOCK),
        ("noatime", true, F::MS_NOATIME),
        ("atime", false, F::MS_NOATIME),
        ("nodiratime", true, F::MS_NODIRATIME),
        ("diratime", false, F::MS_NODIRATIME),
        ("relatime", true, F::MS_RELATIME),
        ("norelatime", false, F::MS_RELATIME),
        ("strictatime", true, F::MS_STRICTATIME),
        ("nostrictatime", false, F::MS_STRICTATIME),
        ("lazytime", true, F::MS_LAZYTIME),
        ("nolazytime", false, F::MS_LAZYTIME),
        ("iversion", true, F::MS_I_VERSION),
        ("noiversion", false, F::MS_I_VERSION),
        ("silent", true, F::MS_SILENT),
        ("loud", false, F::MS_SILENT),
    ]
};

/// Propagation options.
const PROPAGATION: [(&str, MsFlags); 8] = {
    use MsFlags as F;
    [
        ("private", F::MS_PRIVATE),
        ("rprivate", F::MS_PRIVATE.union(F::MS_REC)),
        ("shared", F::MS_SHARED),
        ("rshared", F::MS_SHARED.union(F::MS_REC)),
        ("slave", F::MS_SLAVE),
        ("rslave", F::MS_SLAVE.union(F::MS_REC)),
        ("unbindable", F::MS_UNBINDABLE),
        ("runbindable", F::MS_UNBINDABLE.union(F::MS_REC)),
    ]
};

/// Recursive attributes (Linux 5.12, nosymfollow 5.14): the option, whether
/// it sets (`true`) or clears the attribute, the attribute.
const RECURSIVE: [(&str, bool, u64); 16] = [
    ("rro", true, libc::MOUNT_ATTR_RDONLY),
    ("rrw", false, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", true, libc::MOUNT_ATTR_NOSUID),
    ("rsuid", false, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", true, libc::MOUNT_ATTR_NODEV),
    ("rdev", false, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", true, libc::MOUNT_ATTR_NOEXEC),
    ("rexec", false, libc::MOUNT_ATTR_NOEXEC),
    ("rrelatime", true, libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", false, libc::MOUNT_ATTR_RELATIME),
    ("rnoatime", true, libc::MOUNT_ATTR_NOATIME),
    ("ratime", false, libc::MOUNT_ATTR_NOATIME),
    ("rstrictatime", true, libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", false, libc::MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", true, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", false, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

fn recursive_attr_of(opt: &str) -> Option<(bool, u64)> {
    RECURSIVE
        .iter()
        .find(|(name, ..)| *name == opt)
        .map(|&(_, set, attr)| (set, attr))
}

/// Options that say how to bind, not how to mount.
const BIND: [&str; 5] = ["bind", "rbind", "idmap", "ridmap", "tmpcopyup"];

/// Every option `parse` gives a meaning, for `hull features`.
pub(crate) fn recognized() -> impl Iterator<Item = &'static str> {
    let flags = FLAGS.iter().map(|(name, ..)| *name);
    flags
        .chain(PROPAGATION.iter().map(|(name, _)| *name))
        .chain(RECURSIVE.iter().map(|(name, ..)| *name))
        .chain(BIND)
}

/// `(true, flag)` for an option that sets a flag, `(false, flag)` for one that clears it.
fn flag_of(opt: &str) -> Option<(bool, MsFlags)> {
    FLAGS
        .iter()
        .find(|(name, ..)| *name == opt)
        .map(|&(_, set, flag)| (set, flag))
}

fn propagation_of(opt: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(name, _)| *name == opt)
        .map(|&(_, flag)| flag)
}

/// Options runc accepts that mean nothing to mount(2) here.
fn is_ignored(opt: &str) -> bool {
    matches!(opt, "nofollow" | "auto" | "noauto" | "user" | "nouser")
}

/// Parses a `rootfsPropagation` value (`None` for an unknown one).
pub fn rootfs_propagation(value: &str) -> Option<MsFlags> {
    propagation_of(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursive_attributes_are_set_and_cleared() {
        let o = MountOptions::parse(&["rbind", "rro", "rnosuid", "rnoexec", "rexec", "rnoatime"]);
        let (on, off) = o.recursive_attrs;
        assert_eq!(
            on,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(off, libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME);
        assert!(o.data.is_empty(), "{:?}", o.data);
        let o = MountOptions::parse(&["ratime"]);
        assert_eq!(o.recursive_attrs, (0, libc::MOUNT_ATTR__ATIME));
    }

    #[test]
    fn splits_flags_propagation_and_data() {
        let o = MountOptions::parse(&[
            "nosuid",
            "noexec",
            "rbind",
            "ro",
            "rslave",
            "mode=755",
            "size=65536k",
            "shared",
            "ridmap",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert!(o.bind && o.recursive);
        assert_eq!(o.idmap, Some(true));
        assert_eq!(
            o.propagation,
            vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_SHARED]
        );
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = MountOptions::parse(&["ro", "rw", "noexec", "exec", "relatime"]);
        assert_eq!(o.flags, MsFlags::MS_RELATIME);
        assert!(o.cleared.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC));
        assert!(!o.bind);
    }
}
