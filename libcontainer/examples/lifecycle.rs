//! The whole lifecycle through the library: create, start, optionally
//! SIGKILL, wait for the exit code, delete.
//!
//! ```text
//! cargo run -p libcontainer --example lifecycle -- BUNDLE ROOT ID [kill]
//! ```
//!
//! Prints `exit=<code>` (128+N if the process died of signal N).

use std::process::ExitCode;

use libcontainer::nix::sys::signal::Signal;
use libcontainer::{Container, ContainerBuilder};

fn main() -> ExitCode {
    // Protect this binary (CVE-2019-5736) before anything else; re-executes.
    if let Err(e) = libcontainer::ensure_sealed() {
        eprintln!("lifecycle: {e}");
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bundle, root, id, kill) = match args.as_slice() {
        [bundle, root, id] => (bundle, root, id, false),
        [bundle, root, id, k] if k == "kill" => (bundle, root, id, true),
        _ => {
            eprintln!("usage: lifecycle BUNDLE ROOT ID [kill]");
            return ExitCode::from(2);
        }
    };
    match lifecycle(bundle, root, id, kill) {
        Ok(code) => {
            println!("exit={code}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lifecycle: {e}");
            ExitCode::FAILURE
        }
    }
}

fn lifecycle(bundle: &str, root: &str, id: &str, kill: bool) -> libcontainer::Result<i32> {
    let container = ContainerBuilder::new(id, bundle).root(root).create()?;
    container.start()?;
    if kill {
        container.kill(Signal::SIGKILL as i32)?;
    }
    let code = container.wait()?;
    Container::load(root, id)?.delete(false)?;
    Ok(code)
}
