//! Creating the init with every requested namespace in one clone, placed in
//! its cgroup2 directory at clone time (`clone3(CLONE_INTO_CGROUP)`) when
//! there is one, so no separate cgroup attach is needed there.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::error::ProcessError;

/// struct clone_args (up to `cgroup`, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn raw_clone(flags: CloneFlags) -> i64 {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a null stack makes clone behave like fork: the child continues on
    // a copy of this stack.
    unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) }
}

fn raw_clone3(flags: CloneFlags, cgroup: BorrowedFd) -> i64 {
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: without CLONE_VM and with a null stack, clone3 behaves like fork.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    }
}

/// Clones the calling process like `fork`, adding `flags` (namespace flags)
/// so the child starts inside the new namespaces, and into `cgroup` when
/// given. The child runs `child` (told whether it was cloned into `cgroup`)
/// and exits with its return value. Returns the child's pid.
///
/// The caller must be single-threaded: after a raw clone only the calling
/// thread exists in the child, and a lock held by another thread (the
/// allocator's, say) would stay locked forever.
pub(crate) fn clone_into(
    flags: CloneFlags,
    cgroup: Option<BorrowedFd>,
    child: impl FnOnce(bool) -> i32,
) -> Result<Pid, ProcessError> {
    let (ret, into) = match cgroup {
        Some(fd) => match raw_clone3(flags, fd) {
            // Kernels or cgroups that refuse CLONE_INTO_CGROUP: attach later instead.
            -1 if matches!(
                nix::Error::last(),
                nix::Error::ENOSYS
                    | nix::Error::E2BIG
                    | nix::Error::EINVAL
                    | nix::Error::EBUSY
                    | nix::Error::EOPNOTSUPP
            ) =>
            {
                (raw_clone(flags), false)
            }
            r => (r, true),
        },
        None => (raw_clone(flags), false),
    };
    match ret {
        -1 => Err(ProcessError::sys("clone")(nix::Error::last())),
        0 => {
            let code = child(into);
            // SAFETY: terminating the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}
