//! Turns `start-path.order` into what the linker reads: a linker script for
//! Rust functions and a symbol-ordering file for the C library's.
//!
//! A Rust symbol's hash (`17h…E` in legacy names, the crate disambiguators
//! `Cs…_` in v0 ones) derives from cargo's `-C metadata`, which changes with
//! every dependency's version, the toolchain, the profile and features.
//! `cargo install` resolves the dependencies afresh (it ignores Cargo.lock),
//! and one new dependency of libcontainer renames every function in it: a
//! list of exact names then misses most of them, the start path spreads over
//! the whole text and the peak RSS of `run` nearly doubles. So
//! scripts/order-start-path.sh writes each Rust function whose name is unique
//! once its hashes are left out as a pattern with `*` for them (and for the
//! crate a generic or inline function was instantiated in, which moves with
//! the inlining of newer versions: every crate's copy is placed); only
//! instances of generic functions (their legacy names differ by the hash
//! alone) stay exact. The script matches each Rust name or pattern against
//! the function sections (`.text.NAME` or `.text.unlikely.NAME`, one per
//! function), in the list's order, into an output section placed just after
//! `.text`, so a command's functions sit together in the order it first runs
//! them; the C library's functions go first in `.text` through the ordering
//! file.

use std::fmt::Write as _;

/// The two linker inputs made from the list.
pub struct Order {
    /// The C library's names, one per line, for `--symbol-ordering-file`.
    pub exact: String,
    /// A linker script placing the sections the patterns match first.
    pub script: String,
}

/// The name of the output section holding the patterns' functions.
const SECTION: &str = ".text.hull_start";

/// What closes the script: where that section goes, and `.eh_frame_hdr`
/// moved after `.eh_frame`.
const TAIL: &str = "  }\n} INSERT AFTER .text;\n\
    SECTIONS {\n  .eh_frame_hdr : { *(.eh_frame_hdr) }\n} INSERT AFTER .eh_frame;\n";

/// Splits the list (one symbol or pattern per line) into a linker script for
/// the Rust names and an ordering file for the others.
pub fn split(list: &str) -> Order {
    let mut exact = String::new();
    let mut script = format!("SECTIONS {{\n  {SECTION} : {{\n");
    for name in list.lines().map(str::trim).filter(|n| !n.is_empty()) {
        if is_rust(name) {
            // LLVM names a function it deems cold `.text.unlikely.NAME`.
            writeln!(script, "    *(.text.{name} .text.*.{name})").expect("write to a String");
        } else {
            writeln!(exact, "{name}").expect("write to a String");
        }
    }
    // After `.text`, beside `.init`, `.fini` and the `.iplt` stubs a start
    // calls too; `.eh_frame` first, whose first word glibc's start-up reads,
    // so that it lies beside the read-only data that start-up reads as well.
    script.push_str(TAIL);
    Order { exact, script }
}

/// Whether NAME (or pattern) is a Rust symbol: rustc gives every function its
/// own section named after it, which the script can place. The C library's
/// archives hold several functions per `.text` section, which only the
/// ordering file can move.
fn is_rust(name: &str) -> bool {
    name.starts_with("_ZN") || name.starts_with("_R")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_go_to_the_script_in_order_and_c_names_to_the_ordering_file() {
        let order = split(
            "hull_entry\n_ZN4core3fmt5write17h*E\n\
             _ZN4core3ptr13drop_in_place17h0011223344556677E\n__libc_start_main\n\
             _RNvCs*_3std4exit*\n",
        );
        assert_eq!(order.exact, "hull_entry\n__libc_start_main\n");
        assert_eq!(
            order.script,
            "SECTIONS {\n  .text.hull_start : {\n    \
             *(.text._ZN4core3fmt5write17h*E .text.*._ZN4core3fmt5write17h*E)\n    \
             *(.text._ZN4core3ptr13drop_in_place17h0011223344556677E \
             .text.*._ZN4core3ptr13drop_in_place17h0011223344556677E)\n    \
             *(.text._RNvCs*_3std4exit* .text.*._RNvCs*_3std4exit*)\n"
                .to_owned()
                + TAIL
        );
    }
}
