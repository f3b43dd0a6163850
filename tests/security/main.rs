//! Regression tests for container escapes: each reproduces a published
//! runtime attack (named by its CVE) or a config other runtimes refuse, and
//! shows it blocked. One module per attack surface.

mod support;

mod cve_2019_5736;
mod cve_2021_30465;
mod cve_2022_29162;
mod cve_2023_25809;
mod cve_2024_45310;
mod cve_2025_31133;
mod cve_2025_52565;
mod cve_2026_41579;
mod late_seccomp;
mod leaked_fds;
