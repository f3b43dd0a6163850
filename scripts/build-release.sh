#!/bin/bash
# build-release.sh: builds target/release/hull, statically linked and not
# position-independent.
#
# A container start executes hull twice (the caller's exec, then the re-exec
# through a read-only mount for CVE-2019-5736), so whatever a fresh hull image
# costs is paid twice per start. Static linking drops the dynamic loader's work
# (mapping libc and libgcc_s, symbol lookup) and the shared libraries' pages
# from the peak RSS; a fixed load address (relocation-model=static) also drops
# the static-pie self-relocation: 260 KB of relocation records read and 200 KB
# of pointer tables copied-on-write at every start (benches/results/). The
# image itself then loads at a fixed address (like most Go binaries, runc's
# included); the heap, stack and mmap areas stay randomized. Only the final
# crate gets these flags (with LTO it is where all code is generated): set for
# the whole build they would also apply to proc-macro crates, which cannot be
# static.
#
# The functions a container start executes (runtime-cli/start-path.order, made
# by scripts/order-start-path.sh) are placed first and together in the text:
# the kernel maps text in whole page-cache folios around each fault, so a start
# spread over the whole text kept most of it resident. Names missing from the
# build (the code changed since the list was made) are skipped by the linker;
# the start then only loses that locality.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo rustc --release -q -p runtime-cli --bin hull -- \
    -C target-feature=+crt-static -C relocation-model=static \
    -C link-arg=-Wl,--symbol-ordering-file="$PWD/runtime-cli/start-path.order" \
    -C link-arg=-Wl,--no-warn-symbol-ordering
BIN=target/release/hull
# Freshly linked (cargo relinks only after a change): check the order list
# against the build, then strip (see Cargo.toml; symbols are not loaded, so
# stripping only makes the file smaller).
if [ -n "$(readelf -S "$BIN" | grep "\.symtab")" ]; then
    ORDER=runtime-cli/start-path.order
    missing=$(nm --defined-only "$BIN" | awk '{print $3}' | sort -u | comm -13 - <(sort -u "$ORDER") | wc -l)
    total=$(wc -l <"$ORDER")
    if [ $((missing * 10)) -gt "$total" ]; then
        echo "build-release: $missing of the $total functions in $ORDER are not in this build;" \
            "the start path changed: rerun scripts/order-start-path.sh (until then a start maps more of the binary)" >&2
    fi
    strip "$BIN"
fi
