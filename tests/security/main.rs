//! Regression tests for container escapes: each reproduces a published
//! runtime attack (named by its CVE) or a config other runtimes refuse, and
//! shows it blocked. One module per attack surface.

mod support;

mod cve_2019_5736;
mod cve_2025_31133;
mod cve_2025_52565;
