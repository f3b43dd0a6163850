//! Creating the init with every requested namespace in one `clone`.

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::ProcessError;

/// Clones the calling process like `fork` (child on a copy of the stack), adding
/// `flags` (namespace flags) so the child starts inside the new namespaces.
/// The child runs `child` and exits with its return value; it never returns here.
///
/// The caller must be single-threaded: after a raw `clone` only the calling
/// thread exists in the child, and a lock held by another thread (the
/// allocator's, say) would stay locked forever.
pub(crate) fn clone_into(
    flags: CloneFlags,
    child: impl FnOnce() -> i32,
) -> Result<Pid, ProcessError> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a null stack makes clone behave like fork: the child continues on
    // a copy of this stack, then leaves through `_exit` without unwinding.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(ProcessError::sys("clone")(nix::Error::last())),
        0 => {
            let code = child();
            // SAFETY: terminating the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}
