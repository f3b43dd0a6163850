//! End-to-end tests: real container engines, installed from Debian, drive
//! hull. Each engine's test starts a private instance (its own roots,
//! sockets, bridges, cgroup parent, all named `hull-test-*`, hull as its
//! runtime: `$HULL` or target/debug/hull), runs its checks, stops it and
//! asserts it left nothing behind.
//!
//! One engine's part: `cargo test -p hull-tests --test engines docker` (or
//! `containerd`, `cri`, `podman`).

mod containerd;
mod cri;
mod docker;
mod harness;
mod image;
mod podman;
