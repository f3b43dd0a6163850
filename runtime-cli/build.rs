//! Links `hull` with its own entry point ahead of glibc's `_start` (see
//! src/entry.rs), on x86-64 Linux where that entry is written.
fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch == "x86_64" && os == "linux" {
        println!("cargo:rustc-link-arg-bin=hull=-Wl,--entry=hull_entry");
    }
    println!("cargo:rerun-if-changed=build.rs");
    // scripts/build-release.sh links with this list: relink when it changes.
    println!("cargo:rerun-if-changed=start-path.order");
}
