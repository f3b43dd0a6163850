//! Working inside another network namespace from the calling thread.

use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{setns, CloneFlags};

use crate::NetError;

/// Runs `f` with the calling thread switched into the network namespace
/// `ns`, then switches back. Netlink sockets opened inside `f` stay bound to
/// `ns`. Only this thread moves, so other threads are unaffected.
pub fn within<T>(ns: &File, f: impl FnOnce() -> Result<T, NetError>) -> Result<T, NetError> {
    let own = File::open("/proc/thread-self/ns/net")
        .map_err(NetError::io("open own network namespace"))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("enter network namespace")(e.into()))?;
    let result = f();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("return to own network namespace")(e.into()))?;
    result
}
