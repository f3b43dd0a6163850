//! `hull-cni`: hull's CNI plugin (CNI spec 1.0.0).
//!
//! One executable, several roles chosen by the config's `type`: `hull`
//! (hull's native config) and, for compatibility with conflists written for
//! the reference plugins (so `fixtures/cni/smoke.sh`'s conflist runs
//! hull's networking unchanged), `bridge`, `portmap`, `loopback` and, by
//! executable name, `host-local`. See `cni/src/lib.rs`, and
//! `fixtures/cni/make-plugin-dir.sh` for a plugin directory of symlinks.
//!
//! `hull-cni --version` prints the version when run by hand.

use hull_cni as cni;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let program = args.first().map_or("hull-cni", String::as_str);
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
