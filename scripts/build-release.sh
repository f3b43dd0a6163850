#!/bin/bash
# build-release.sh: builds target/release/hull, statically linked (static-pie).
#
# A container start executes hull twice (the caller's exec, then the re-exec
# through a read-only mount for CVE-2019-5736), so the dynamic loader's work
# (mapping libc and libgcc_s, symbol lookup, relocation) was paid twice per
# start; static-pie drops it, and the shared libraries' pages from the peak RSS
# (benches/results/). Only the final crate gets `+crt-static`: set for the
# whole build it would also apply to proc-macro crates, which cannot be static.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo rustc --release -q -p runtime-cli --bin hull -- -C target-feature=+crt-static
