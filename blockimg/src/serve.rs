//! The FUSE server: a block device shown as one regular file of its virtual
//! size, mounted over an existing regular file (the FUSE root inode is that
//! file), so a loop device can be attached to the mountpoint itself.
//!
//! Every open is direct I/O: the kernel keeps no page cache of the file, so
//! what a reader sees is what the device has, and a device error (a remote
//! server gone) reaches the reader as EIO at once rather than at writeback.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    INodeNo, KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEmpty,
    ReplyOpen, ReplyWrite, Request, SessionACL, WriteFlags,
};

use crate::device::BlockDevice;
use crate::error::{Error, Result};

/// How long the kernel may trust the file's attributes: they never change.
const TTL: Duration = Duration::from_secs(3600);
/// The largest write the kernel sends in one request.
const MAX_WRITE: u32 = 1 << 20;

/// The filesystem: the root inode is the device's bytes.
struct DeviceFile {
    device: Mutex<Box<dyn BlockDevice>>,
    attr: FileAttr,
    read_only: bool,
}

impl DeviceFile {
    fn new(device: Box<dyn BlockDevice>) -> DeviceFile {
        let now = SystemTime::now();
        let read_only = device.read_only();
        let attr = FileAttr {
            ino: INodeNo::ROOT,
            size: device.size(),
            blocks: device.size().div_ceil(512),
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind: FileType::RegularFile,
            perm: if read_only { 0o400 } else { 0o600 },
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        DeviceFile {
            device: Mutex::new(device),
            attr,
            read_only,
        }
    }

    fn device(&self) -> std::sync::MutexGuard<'_, Box<dyn BlockDevice>> {
        // A panic while holding the lock leaves the device as it was: the
        // next request may go on.
        self.device.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

impl Filesystem for DeviceFile {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_WRITE);
        Ok(())
    }

    fn destroy(&mut self) {
        let _ = self.device().flush();
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino != INodeNo::ROOT {
            return reply.error(Errno::ENOENT);
        }
        reply.attr(&TTL, &self.attr);
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // The size is the device's: it neither grows nor shrinks.
        match size {
            Some(size) if size != self.attr.size => reply.error(Errno::EPERM),
            _ => reply.attr(&TTL, &self.attr),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let writing = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
        if writing && self.read_only {
            return reply.error(Errno::EROFS);
        }
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let end = offset.saturating_add(size as u64).min(self.attr.size);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        if buf.is_empty() {
            return reply.data(&[]);
        }
        match self.device().read_at(&mut buf, offset) {
            Ok(()) => reply.data(&buf),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Past the end is the quota: nothing is written there.
        if offset >= self.attr.size {
            return reply.error(Errno::ENOSPC);
        }
        let n = data.len().min((self.attr.size - offset) as usize);
        match self.device().write_at(&data[..n], offset) {
            Ok(()) => reply.written(n as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) does not promise durability; fsync does.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.device().flush() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }
}

fn config(read_only: bool) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("hull-volume".into()),
        MountOption::Subtype("blockimg".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
        if read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    // The loop driver and containers' users (other uids) read it too.
    config.acl = SessionACL::All;
    config
}

/// Checks that `mountpoint` is a regular file, the only kind the device
/// file can be mounted over.
fn check_mountpoint(mountpoint: &Path) -> Result<()> {
    let meta = std::fs::metadata(mountpoint).map_err(|e| Error::file(mountpoint, e))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{}: the mountpoint must be a regular file",
            mountpoint.display()
        )));
    }
    Ok(())
}

/// A device file served by a thread of this process; unmounted on
/// [`Served::stop`] or drop.
pub struct Served {
    session: BackgroundSession,
    mountpoint: PathBuf,
}

impl Served {
    /// Where the file is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts the file, flushes the device and ends the serving thread
    /// (see [`unmount_when_idle`] for a file still open).
    pub fn stop(self) -> Result<()> {
        unmount_when_idle(&self.mountpoint)?;
        self.session.join()?;
        Ok(())
    }
}

/// Mounts `device` as a file over the regular file `mountpoint` and serves
/// it from a background thread until the returned handle is stopped.
pub fn serve(device: Box<dyn BlockDevice>, mountpoint: &Path) -> Result<Served> {
    check_mountpoint(mountpoint)?;
    let config = config(device.read_only());
    let session = fuser::spawn_mount(DeviceFile::new(device), mountpoint, &config)
        .map_err(|e| Error::file(mountpoint, e))?;
    Ok(Served {
        session,
        mountpoint: mountpoint.to_owned(),
    })
}

/// The server process's body: mounts `device` over `mountpoint`, calls
/// `ready` once the file can be opened, and serves until SIGTERM, SIGINT or
/// SIGHUP (then unmounts and flushes) or until someone unmounts the file.
/// Blocks those signals in the calling thread and every thread it starts:
/// call it before starting others.
pub fn serve_until_signalled(
    device: Box<dyn BlockDevice>,
    mountpoint: &Path,
    ready: impl FnOnce(),
) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};

    check_mountpoint(mountpoint)?;
    let mut stop = SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        stop.add(signal);
    }
    stop.thread_block().map_err(std::io::Error::from)?;
    let config = config(device.read_only());
    let session = fuser::Session::new(DeviceFile::new(device), mountpoint, &config)
        .map_err(|e| Error::file(mountpoint, e))?;
    // SIGUSR1 is this function's own: it ends the waiter once the session
    // has ended by an unmount from outside.
    let target = mountpoint.to_owned();
    let waiter = std::thread::spawn(move || {
        if let Ok(signal) = stop.wait() {
            if signal != Signal::SIGUSR1 {
                let _ = unmount_when_idle(&target);
            }
        }
    });
    ready();
    let served = session.run();
    // SAFETY: pthread_kill on a thread that has not been joined yet.
    unsafe {
        libc::pthread_kill(
            std::os::unix::thread::JoinHandleExt::as_pthread_t(&waiter),
            libc::SIGUSR1,
        );
    }
    let _ = waiter.join();
    served.map_err(|e| Error::file(mountpoint, e))
}

/// How long [`unmount_when_idle`] waits for the file's last user.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Unmounts the device file at `mountpoint`, which ends its server. While
/// the file is open (a process forked with it, a loop device on it) the
/// unmount is retried for a moment, then made lazy: the file leaves the
/// namespace at once and the server ends when its last user closes it.
pub fn unmount_when_idle(mountpoint: &Path) -> Result<()> {
    use nix::errno::Errno as E;
    use nix::mount::{umount2, MntFlags};

    let deadline = std::time::Instant::now() + BUSY_WAIT;
    loop {
        match umount2(mountpoint, MntFlags::empty()) {
            Ok(()) | Err(E::EINVAL) | Err(E::ENOENT) => return Ok(()),
            Err(E::EBUSY) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(E::EBUSY) => return unmount(mountpoint),
            Err(e) => return Err(Error::file(mountpoint, e.into())),
        }
    }
}

/// Detaches the device file at `mountpoint` if one is mounted there, as
/// after its server was killed (its reads then fail with ENOTCONN). Lazy:
/// a loop device still on the file keeps it until it is released.
pub fn unmount(mountpoint: &Path) -> Result<()> {
    match nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::file(mountpoint, e.into())),
    }
}
