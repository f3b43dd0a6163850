//! Regression tests for container escapes: each reproduces a published
//! runtime attack (named by its CVE) or a config other runtimes refuse, and
//! shows it blocked. One module per attack surface.

mod late_seccomp;
mod leaked_fds;
