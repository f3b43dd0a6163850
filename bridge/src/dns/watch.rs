//! Waiting for the state directory to change: inotify, no polling.

use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::DnsError;

/// An inotify instance watching some directories for files coming and going.
pub struct Watcher {
    inotify: Inotify,
}

impl Watcher {
    /// Watches `dirs` (created if missing) for files created, renamed into
    /// place, written or removed, and for the directories' own removal.
    pub fn new(dirs: &[&Path]) -> Result<Self, DnsError> {
        let ioerr = |what, dir: &Path| DnsError::io(what, dir);
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC)
            .map_err(|e| ioerr("watch", Path::new("inotify"))(e.into()))?;
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF;
        for dir in dirs {
            std::fs::create_dir_all(dir).map_err(ioerr("create", dir))?;
            inotify
                .add_watch(*dir, flags)
                .map_err(|e| ioerr("watch", dir)(e.into()))?;
        }
        Ok(Self { inotify })
    }

    /// Blocks until something changed (one read takes every queued event,
    /// so a burst of changes makes one wake-up).
    pub fn wait(&self) -> Result<(), DnsError> {
        loop {
            match self.inotify.read_events() {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(DnsError::io("read", Path::new("inotify"))(e.into())),
            }
        }
    }
}
