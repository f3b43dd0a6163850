//! blockimg-serve [--read-only] SOURCE MOUNTPOINT: serves SOURCE (a qcow2
//! image, a raw file or an nbd://HOST:PORT/EXPORT) as a raw file mounted over the regular file
//! MOUNTPOINT until SIGTERM, SIGINT or SIGHUP. Prints "ready" on stdout
//! once the file can be opened; errors go to stderr with exit status 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: blockimg-serve [--read-only] SOURCE MOUNTPOINT";

fn main() -> ExitCode {
    let mut read_only = false;
    let mut paths = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--read-only") => read_only = true,
            Some(flag) if flag.starts_with('-') => {
                eprintln!("blockimg-serve: unknown flag {flag}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let [source, mountpoint] = &paths[..] else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let served = blockimg::device::open(source, read_only).and_then(|device| {
        blockimg::serve::serve_until_signalled(device, mountpoint, || {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "ready").and_then(|()| out.flush());
        })
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blockimg-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
