//! How the `hull` binary is linked in a release build: statically, at a fixed
//! address, with the functions a container start executes placed together.
//!
//! A container start executes hull twice (the caller's exec, then the re-exec
//! through a read-only mount for CVE-2019-5736), so whatever a fresh image
//! costs is paid twice per start:
//! - static linking drops the dynamic loader's work (mapping libc and
//!   libgcc_s, symbol lookup) and the shared libraries' pages from the peak
//!   RSS;
//! - a non-position-independent executable has no self-relocation: a PIE
//!   reads its relocation records (260 KB here) and copies the pages of
//!   pointer tables it patches (200 KB) at every start. The image loads at a
//!   fixed address, as most Go binaries (runc's included) do; heap, stack and
//!   mmap areas stay randomized;
//! - the kernel maps text in whole page-cache folios around each fault, so a
//!   start spread over the whole text keeps most of it resident: the
//!   functions listed in `start-path.order` (made by
//!   scripts/order-start-path.sh) go together, matched whatever
//!   hashes this build's dependencies give their names (build_order.rs).
//!
//! These are link-time choices for one binary, so they are made here rather
//! than with `-C target-feature=+crt-static` in the workspace's rustflags,
//! which would also apply to the proc-macro crates (they cannot be static).
//! The code stays position-independent (rustc's default); the linker resolves
//! its addresses at link time. rustc still names the shared C libraries
//! (`-lc`, `-lgcc_s`, `-lm`); a directory of one-line linker scripts under
//! those names, searched first, points each at its static archive.
//!
//! Skipped, with a warning, where the static archives are missing (glibc's
//! libc.a comes with libc6-dev / glibc-static). The ordering needs LLD, rustc's
//! default linker on x86-64 Linux since 1.90; with another linker the binary
//! is still static, only less compact at start.

use std::path::{Path, PathBuf};

use crate::build_order;
use std::process::Command;

/// Emits the link arguments for the `hull` binary of a release build.
pub fn configure(manifest_dir: &Path) {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    println!("cargo:rerun-if-changed=start-path.order");
    if env("PROFILE") != "release"
        || env("CARGO_CFG_TARGET_OS") != "linux"
        || env("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return;
    }
    for lib in ["libc.a", "libm.a", "libgcc_eh.a"] {
        if archive(lib).is_none() {
            println!("cargo:warning={lib} not found (glibc's and gcc's static libraries): hull is linked dynamically, and starts slower");
            return;
        }
    }
    let dir = PathBuf::from(env("OUT_DIR")).join("static-libs");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/static-libs");
    // `-l:NAME` finds the file NAME on the search path, so these do not find
    // themselves. libgcc_s's place is taken by the static unwinder.
    let scripts = [
        ("libc.so", "GROUP ( -l:libc.a -l:libgcc_eh.a -l:libgcc.a )"),
        ("libgcc_s.so", "GROUP ( -l:libgcc_eh.a -l:libgcc.a )"),
        ("libm.so", "INPUT ( -l:libm.a )"),
    ];
    for (name, script) in scripts {
        std::fs::write(dir.join(name), format!("{script}\n")).expect("write a linker script");
    }
    let mut args = vec![
        "-static".to_owned(),
        "-no-pie".to_owned(),
        format!("-L{}", dir.display()),
        // The static archives' debug info; the symbols stay (see the
        // workspace's release profile).
        "-Wl,--strip-debug".to_owned(),
    ];
    if uses_lld() {
        let list = std::fs::read_to_string(manifest_dir.join("start-path.order"))
            .expect("read start-path.order");
        let order = build_order::split(&list);
        let (exact, script) = (dir.join("start-path.exact"), dir.join("start-path.ld"));
        std::fs::write(&exact, order.exact).expect("write the ordering file");
        std::fs::write(&script, order.script).expect("write the linker script");
        args.push(format!("-Wl,--symbol-ordering-file={}", exact.display()));
        args.push(format!("-Wl,-T,{}", script.display()));
        // Names missing from the build (the start path changed since the
        // list was made) only cost that locality.
        args.push("-Wl,--no-warn-symbol-ordering".to_owned());
    }
    for arg in args {
        println!("cargo:rustc-link-arg-bin=hull={arg}");
    }
}

/// The path of a static archive the C compiler would link, if it has one.
fn archive(name: &str) -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(cc)
        .arg(format!("-print-file-name={name}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // Not found: the compiler prints the bare name back.
    path.is_absolute().then_some(path).filter(|p| p.exists())
}

/// Whether rustc links with its own LLD: its default for
/// x86_64-unknown-linux-gnu since 1.90, unless a linker (or linker flavor or
/// features) was chosen, which this does not try to interpret.
fn uses_lld() -> bool {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("TARGET") != "x86_64-unknown-linux-gnu"
        || !env("RUSTC_LINKER").is_empty()
        || env("CARGO_ENCODED_RUSTFLAGS").contains("linker")
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    // "rustc 1.95.0 (...)"
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
