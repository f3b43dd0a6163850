//! `hull`: the runc-compatible command line over libcontainer.

mod cli;
mod commands;
mod logging;

use clap::Parser;

use cli::{Cli, Command};

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

fn main() {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        // CVE-2019-5736: whatever enters a container runs from a sealed copy.
        if let Err(e) = libcontainer::ensure_sealed() {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
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
