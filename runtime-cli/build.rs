//! Links `hull` with its own entry point ahead of glibc's `_start` (see
//! src/entry.rs), on x86-64 Linux where that entry is written; in a release
//! build, statically and in start-path order (see build_link.rs).
mod build_link;
mod build_order;

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch == "x86_64" && os == "linux" {
        println!("cargo:rustc-link-arg-bin=hull=-Wl,--entry=hull_entry");
    }
    // `hull --version` names the commit, as runc's does.
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HULL_COMMIT={commit}");
    // Rebuilt when HEAD moves: to another branch, or its branch to a new commit.
    let branch = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|b| b != "HEAD");
    for file in ["HEAD".to_owned()].into_iter().chain(branch) {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &file]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build_link.rs");
    println!("cargo:rerun-if-changed=build_order.rs");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    build_link::configure(std::path::Path::new(&manifest_dir));
}
