//! `hull-cni`: hull's CNI plugin (CNI spec 1.0.0).
//!
//! One executable, several roles chosen by the config's `type`: `hull`
//! (hull's native config) and, for compatibility with conflists written for
//! the reference plugins (so `fixtures/cni/smoke.sh`'s conflist runs
//! hull's networking unchanged), `bridge`, `portmap`, `loopback` and, by
//! executable name, `host-local`. See `cni/src/lib.rs`, and
//! `fixtures/cni/make-plugin-dir.sh` for a plugin directory of symlinks.
//!
//! `hull-cni --version` prints the version when run by hand;
//! `hull-cni dns-serve STORE NETWORK --ready-fd FD` is a network's resolver,
//! which the `hull` role starts on ADD.

use hull_cni as cni;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let program = args.first().map_or("hull-cni", String::as_str);
    // Started by an ADD, so with its CNI_COMMAND: checked first.
    if args.get(1).map(String::as_str) == Some(cni::DNS_SERVE) {
        return dns_serve(&args[2..]);
    }
    let by_hand = std::env::var_os("CNI_COMMAND").is_none();
    if by_hand && matches!(args.get(1).map(String::as_str), Some("--version" | "-v")) {
        println!("{}", cni::about(program));
        return ExitCode::SUCCESS;
    }
    let reply = cni::run(program, |k| std::env::var(k).ok(), std::io::stdin().lock());
    let mut out = std::io::stdout().lock();
    if !reply.stdout.is_empty() {
        let _ = writeln!(out, "{}", reply.stdout);
    }
    let _ = out.flush();
    if reply.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `dns-serve STORE NETWORK [--ready-fd FD]`: serves until the network goes.
fn dns_serve(args: &[String]) -> ExitCode {
    let (Some(store), Some(net)) = (args.first(), args.get(1)) else {
        eprintln!("usage: hull-cni dns-serve STORE NETWORK [--ready-fd FD]");
        return ExitCode::FAILURE;
    };
    let ready = match args.get(2..) {
        Some([flag, fd]) if flag == "--ready-fd" => fd.parse().ok(),
        _ => None,
    };
    match bridge::dns::serve(std::path::Path::new(store), net, ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hull-cni dns-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
