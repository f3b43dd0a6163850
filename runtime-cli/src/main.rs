//! `hull`: the runc-compatible command line over libcontainer.
//!
//! `c_main` is the C `main` (`no_main`): hull runs twice per container
//! start (see [`seal_if_entering`]), and std's runtime set-up (a stack guard
//! found by reading `/proc/self/maps`, a signal stack, SIGSEGV and SIGBUS
//! handlers) was a dozen system calls of each. SIGPIPE is ignored as std
//! would, so a closed pipe is an error, not a kill.
// The unit-test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

mod cli;
mod commands;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod entry;
mod logging;
// The build script's list handling, tested with the crate's unit tests.
#[cfg(test)]
#[path = "../build_order.rs"]
mod build_order;

use cli::Cli;

/// A failed command: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<libcontainer::Error> for Failure {
    fn from(e: libcontainer::Error) -> Self {
        Self::new(e.to_string())
    }
}

/// What a command returns: the process exit code.
pub type Outcome = Result<i32, Failure>;

/// The subcommands whose processes enter a container.
const ENTERING: [&str; 3] = ["create", "run", "exec"];

/// Whether the entry point ahead of glibc already found this image sealed.
fn sealed_before_libc() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    return entry::found_sealed();
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    false
}

/// CVE-2019-5736: whatever enters a container runs from a sealed copy, so
/// `create`, `run` and `exec` re-execute first. That is decided from the raw
/// arguments, before the command line is parsed, so the image that is
/// replaced does no more than it must. A subcommand is always its own word
/// on the command line, so this may re-execute needlessly (a container named
/// `run`), never miss.
fn seal_if_entering() {
    let entering = std::env::args_os().any(|a| ENTERING.iter().any(|c| a == *c));
    if entering && !sealed_before_libc() {
        if let Err(e) = libcontainer::ensure_sealed() {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

// Under test the harness's `main` runs; this one only has to compile.
#[cfg_attr(not(test), unsafe(export_name = "main"))]
#[cfg_attr(test, allow(dead_code))]
extern "C" fn c_main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: setting a signal disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    seal_if_entering();
    let cli = match Cli::from_env() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(cli::usage(e)),
    };
    let to_file = match logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(to_file) => to_file,
        Err(e) => {
            eprintln!("cannot open log file: {e}");
            std::process::exit(1);
        }
    };
    let code = match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(f) => {
            tracing::error!("{}", f.message);
            if to_file {
                // runc: the log gets the formatted line, stderr the bare message.
                eprintln!("{}", f.message);
            }
            f.code
        }
    };
    std::process::exit(code);
}
