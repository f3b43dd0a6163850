//! Architectures a profile can name, with their audit tokens and syscall
//! tables (from the `syscalls` crate; x32 numbers are derived from x86_64's).

use std::str::FromStr;

use oci_spec::runtime::Arch as OciArch;

/// `__X32_SYSCALL_BIT`: x32 calls are x86_64's audit arch with this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture the generator supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    X32,
    X86,
    Aarch64,
}

/// The profile architectures the generator supports, and their `Arch`.
pub const SUPPORTED: [(OciArch, Arch); 4] = [
    (OciArch::ScmpArchX86_64, Arch::X86_64),
    (OciArch::ScmpArchX32, Arch::X32),
    (OciArch::ScmpArchX86, Arch::X86),
    (OciArch::ScmpArchAarch64, Arch::Aarch64),
];

impl Arch {
    pub fn from_oci(a: OciArch) -> Option<Self> {
        SUPPORTED
            .iter()
            .find(|(oci, _)| *oci == a)
            .map(|&(_, arch)| arch)
    }

    /// The architecture of this build.
    pub fn native() -> Self {
        if cfg!(target_arch = "aarch64") {
            Self::Aarch64
        } else if cfg!(target_arch = "x86") {
            Self::X86
        } else {
            Self::X86_64
        }
    }

    /// AUDIT_ARCH_* as seen in `seccomp_data.arch`.
    pub fn audit(self) -> u32 {
        match self {
            Self::X86_64 | Self::X32 => 0xC000_003E,
            Self::X86 => 0x4000_0003,
            Self::Aarch64 => 0xC000_00B7,
        }
    }

    /// The syscall number of `name`, if this architecture has it.
    pub fn syscall(self, name: &str) -> Option<u32> {
        match self {
            Self::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Self::X86 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Self::Aarch64 => syscalls::aarch64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Self::X32 => x32_special(name)
                .or_else(|| {
                    syscalls::x86_64::Sysno::from_str(name)
                        .ok()
                        .map(|s| s.id() as u32)
                })
                .map(|n| n | X32_SYSCALL_BIT),
        }
    }
}

/// x32 syscalls whose numbers differ from x86_64's (arch/x86/entry/syscalls/syscall_64.tbl, 512..547).
fn x32_special(name: &str) -> Option<u32> {
    const TABLE: [&str; 36] = [
        "rt_sigaction",
        "rt_sigreturn",
        "ioctl",
        "readv",
        "writev",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "execve",
        "ptrace",
        "rt_sigpending",
        "rt_sigtimedwait",
        "rt_sigqueueinfo",
        "sigaltstack",
        "timer_create",
        "mq_notify",
        "kexec_load",
        "waitid",
        "set_robust_list",
        "get_robust_list",
        "vmsplice",
        "move_pages",
        "preadv",
        "pwritev",
        "rt_tgsigqueueinfo",
        "recvmmsg",
        "sendmmsg",
        "process_vm_readv",
        "process_vm_writev",
        "setsockopt",
        "getsockopt",
        "io_setup",
        "io_submit",
        "execveat",
        "preadv2",
        "pwritev2",
    ];
    TABLE
        .iter()
        .position(|n| *n == name)
        .map(|i| 512 + i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_numbers_per_architecture() {
        assert_eq!(Arch::X86_64.syscall("mkdir"), Some(83));
        assert_eq!(Arch::X86.syscall("mkdir"), Some(39));
        assert_eq!(Arch::Aarch64.syscall("mkdirat"), Some(34));
        assert_eq!(Arch::Aarch64.syscall("mkdir"), None);
        assert_eq!(Arch::X32.syscall("mkdir"), Some(83 | X32_SYSCALL_BIT));
        assert_eq!(Arch::X32.syscall("execve"), Some(520 | X32_SYSCALL_BIT));
        assert_eq!(Arch::X86_64.syscall("no_such_call"), None);
    }
}
