//! The runtime's file descriptors, kept away from the container's code.
//!
//! The init and exec'd processes are clones of the runtime, so until
//! `execve` they hold every fd the runtime had open, host directories among
//! them (the cgroup directory, the rootfs, the state directory). A
//! `/proc/self/fd/N` magic link resolves to such an fd even after
//! pivot_root, so a `process.cwd` or `args[0]` naming one would reach the
//! host (CVE-2024-21626). Directory fds are closed before the chdir, the cwd
//! is then checked to lie inside the root, and everything else of the
//! runtime's is closed right before `execve` (closing, not close-on-exec:
//! the path of an `execve` is resolved while the fds are still open).

use std::os::fd::RawFd;

use nix::sys::stat::{fstat, SFlag};

/// Closes every directory fd (`O_PATH` ones included) numbered `first` or
/// above. CVE-2024-21626: a chdir to `/proc/self/fd/N` must not land in the
/// host; only a directory can be changed to, the rest goes at `execve`.
pub(super) fn close_directories_from(first: RawFd) -> nix::Result<()> {
    for fd in open_fds(first)? {
        if is_directory(fd) {
            // SAFETY: the fd belongs to the runtime's frames, which this
            // clone never returns to (it leaves with `_exit` or `execve`).
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

fn is_directory(fd: RawFd) -> bool {
    fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// Closes every fd numbered `first` or above but `keep`, for real: what is
/// left open is exactly what the container is given (stdio and the
/// preserved fds). CVE-2024-21626: an `execve` of `/proc/self/fd/N` would
/// run a host file. `close_range` may be refused by a seccomp profile
/// installed earlier (without no_new_privs it goes before the user
/// switch); then the open fds are read from `/proc/self/fd`, and if that is
/// refused too, every number up to the fd limit is closed.
pub(super) fn close_all_from(first: RawFd, keep: Option<RawFd>) -> nix::Result<()> {
    let ranges = match keep {
        Some(k) if k >= first => [(first, k - 1), (k + 1, RawFd::MAX)],
        _ => [(first, RawFd::MAX), (1, 0)],
    };
    let by_range = ranges
        .iter()
        .filter(|(lo, hi)| lo <= hi)
        .try_for_each(|&(lo, hi)| close_range(lo, hi));
    if by_range.is_ok() {
        return Ok(());
    }
    let fds = match open_fds(first) {
        Ok(fds) => fds,
        Err(_) => (first..fd_limit()).collect(),
    };
    for fd in fds.into_iter().filter(|&fd| Some(fd) != keep) {
        // SAFETY: as in `close_directories_from`.
        if unsafe { libc::close(fd) } == -1 {
            match nix::Error::last() {
                nix::Error::EBADF | nix::Error::EINTR => {}
                e => return Err(e),
            }
        }
    }
    Ok(())
}

fn close_range(lo: RawFd, hi: RawFd) -> nix::Result<()> {
    // SAFETY: close_range with no flags; see `close_directories_from`.
    match unsafe { libc::close_range(lo as u32, hi as u32, 0) } {
        0 => Ok(()),
        _ => Err(nix::Error::last()),
    }
}

/// The open fds numbered `first` or above, from `/proc/self/fd` (without
/// the fd that reads the directory).
fn open_fds(first: RawFd) -> nix::Result<Vec<RawFd>> {
    let dir = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let own = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut fds = Vec::new();
    for entry in dir {
        let entry = entry?;
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<RawFd>().ok())
        {
            if fd >= first && fd != own {
                fds.push(fd);
            }
        }
    }
    Ok(fds)
}

/// The soft limit on open fds (every fd is below it), 1024 if unknown.
fn fd_limit() -> RawFd {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft.min(1 << 20) as RawFd)
        .unwrap_or(1024)
}

/// CVE-2024-21626: the cwd, once changed to, must lie inside the
/// container's root. For a directory outside it (reached through an fd that
/// escaped the checks above, or a mount trick) the kernel's getcwd answers
/// a path starting "(unreachable)" or fails.
pub(super) fn cwd_is_inside_root() -> bool {
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is live and its length is passed.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    r > 0 && buf[0] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn directories_are_found_and_files_are_not() {
        let dir = std::fs::File::open("/").unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(is_directory(dir.as_raw_fd()));
        assert!(!is_directory(file.as_raw_fd()));
        let path = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        assert!(is_directory(path));
        let _ = nix::unistd::close(path);
        let listed = open_fds(3).unwrap();
        assert!(listed.contains(&dir.as_raw_fd()) && listed.contains(&file.as_raw_fd()));
    }

    #[test]
    fn the_current_directory_of_a_test_is_inside_its_root() {
        assert!(cwd_is_inside_root());
    }
}
