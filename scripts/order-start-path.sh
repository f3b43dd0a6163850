#!/bin/bash
# order-start-path.sh: regenerates runtime-cli/start-path.order, the functions a
# container start executes, which a release build has the linker place together
# in the text (runtime-cli/build_link.rs).
#
# Why: the kernel maps a binary's text in runs of whole page-cache folios around
# each page fault, so a start's peak RSS follows how many folios its code is
# spread over, not how much of it runs. With the executed functions contiguous
# the peak RSS of `run` fell from 2.8-4.0 to 1.6-2.2 MiB (benches/README.md).
#
# How: a release build (its symbols are kept) gets a uprobe on every function (tracefs);
# `run`, `create`/`start`/`state`/`delete` and `run -d` of a /bin/true bundle run
# once on this host's cgroup layout and once with cgroup2 hidden (pure v1, as
# the benchmark's -v1 variants); the functions hit, in first-hit order, are the
# list. glibc's AVX/EVEX string functions cannot be single-stepped by uprobes on
# this VM (the process spins), so they are not probed; the variants the IFUNC
# resolvers return (uretprobes) are appended. Rust names are recorded with their hashes, which change
# with dependency versions, toolchain and profile; the build matches them with
# the hashes as wildcards (runtime-cli/build_order.rs), so the list goes stale
# only when the start path's functions change: rerun it then. Needs root and
# tracefs. HULL=PATH: probe that release build of this tree instead of building.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WS=$PWD
OUT=runtime-cli/start-path.order
T=/sys/kernel/tracing
GROUP=hullorder
WORK=$(mktemp -d /tmp/hull-order.XXXXXX)
BIN=$WORK/hull

die() { echo "order-start-path: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (uprobes, containers)"
MOUNTED_TRACEFS=0
if [ ! -e "$T/uprobe_events" ]; then
    mount -t tracefs nodev "$T" || die "cannot mount tracefs at $T"
    MOUNTED_TRACEFS=1
fi
[ -w "$T/uprobe_events" ] || die "no tracefs at $T"

BUFFER_KB=$(cat "$T/buffer_size_kb")
TRACING_ON=$(cat "$T/tracing_on")
cleanup() {
    echo 0 >"$T/events/$GROUP/enable" 2>/dev/null || true
    # Remove this script's probes only.
    local del
    for del in $(grep -oE "^[pr]:$GROUP/[fr][0-9]*" "$T/uprobe_events" 2>/dev/null | sed 's/^[pr]:/-:/'); do
        echo "$del" >>"$T/uprobe_events" 2>/dev/null || echo "order-start-path: cannot remove probe ${del#-:}" >&2
    done
    echo "$BUFFER_KB" >"$T/buffer_size_kb" 2>/dev/null || true
    echo "$TRACING_ON" >"$T/tracing_on" 2>/dev/null || true
    [ "$MOUNTED_TRACEFS" = 0 ] || umount "$T" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${HULL:-}" ]; then
    # A release build of this tree already made (its names are what count).
    cp "$HULL" "$BIN"
else
    echo "order-start-path: building a release hull" >&2
    cargo build --release -q -p runtime-cli --bin hull
    cp target/release/hull "$BIN"
fi
fixtures/make-bundle.sh "$WORK/bundle" "$BIN" >/dev/null
jq '.process.args = ["/bin/true"] | .process.terminal = false' "$WORK/bundle/config.json" >"$WORK/c.json"
mv "$WORK/c.json" "$WORK/bundle/config.json"
# The same with memory and pids limits, and with podman's default seccomp
# profile when it is installed (the benchmark's other variants).
mkdir "$WORK/full"
ln -s "$WORK/bundle/rootfs" "$WORK/full/rootfs"
jq '.linux.resources.memory.limit = 67108864 | .linux.resources.pids.limit = 64' \
    "$WORK/bundle/config.json" >"$WORK/full/config.json"
if [ -r /usr/share/containers/seccomp.json ]; then
    python3 benches/seccomp_to_oci.py /usr/share/containers/seccomp.json "$WORK/full/config.json" \
        -o "$WORK/full/config.json"
fi

# One probe per function, at its file offset (the binary is not position-independent).
python3 - "$BIN" "$GROUP" "$T/uprobe_events" "$WORK/names" <<'EOF'
import os, subprocess, sys
binary, group, events, names_out = sys.argv[1:5]
segs = []
for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout.splitlines():
    p = line.split()
    if p and p[0] == "LOAD" and "E" in "".join(p[6:-1]):
        segs.append((int(p[2], 16), int(p[1], 16), int(p[4], 16)))
# Not probed: the entry code that runs before the C library (its Rust part,
# before_libc, can be), and string functions a uprobe cannot single-step here.
skip = ("hull_entry", "_start", "_dl_relocate_static_pie", "__libc_setup_tls")
unsteppable = ("avx", "evex", "erms", "sse2", "ssse3", "_rtm")
fd = os.open(events, os.O_WRONLY | os.O_APPEND)
names, seen = [], set()
for line in subprocess.run(["nm", "-n", "-S", binary], capture_output=True, text=True).stdout.splitlines():
    p = line.split()
    if len(p) != 4 or p[2] not in "tT" or int(p[1], 16) == 0:
        continue
    addr, name = int(p[0], 16), p[3]
    if addr in seen or name in skip or (name.startswith("__") and any(u in name for u in unsteppable)):
        continue
    seen.add(addr)
    for va, off, size in segs:
        if va <= addr < va + size:
            try:
                os.write(fd, f"p:{group}/f{len(names)} {binary}:0x{addr - va + off:x}\n".encode())
                names.append(name)
                # An IFUNC resolver's return value is the string function
                # glibc picked for this CPU (those cannot be probed).
                if name.endswith("_ifunc"):
                    os.write(fd, f"r:{group}/r{len(names)} {binary}:0x{addr - va + off:x} ret=$retval:x64\n".encode())
            except OSError:
                pass
            break
open(names_out, "w").write("".join(f"f{i} {n}\n" for i, n in enumerate(names)))
EOF

# Every call of every probed function is logged (first hits are what count):
# a buffer that wraps would lose the earliest, so it is large and checked.
echo 262144 >"$T/buffer_size_kb"
echo 1 >"$T/tracing_on"
: >"$T/trace"
echo 1 >"$T/events/$GROUP/enable"
# First hits decide the order, so `run` (what the benchmark's back-to-back and
# RSS figures time; plain, then with limits and seccomp) goes first, on the benchmark's pure-v1 layout and then on
# this host's; the split lifecycle and `run -d` follow.
run_once() {
    "$BIN" --root "$WORK/state" run --bundle "$WORK/bundle" order-a >/dev/null
    "$BIN" --root "$WORK/state" run --bundle "$WORK/full" order-f >/dev/null
}
lifecycle() {
    local root=$WORK/state bundle=$WORK/bundle
    "$BIN" --root "$root" create --bundle "$bundle" --pid-file "$WORK/b.pid" order-b
    "$BIN" --root "$root" start order-b
    sleep 0.05
    "$BIN" --root "$root" state order-b >/dev/null
    "$BIN" --root "$root" delete order-b
    "$BIN" --root "$root" run -d --pid-file "$WORK/c.pid" --bundle "$bundle" order-c </dev/null >/dev/null
    sleep 0.05
    "$BIN" --root "$root" delete --force order-c
}
# on_both_layouts FN: FN with cgroup2 hidden (pure v1), then on this host's layout.
on_both_layouts() {
    if mountpoint -q /sys/fs/cgroup/unified; then
        timeout 120 unshare -m --propagation private bash -c \
            "umount /sys/fs/cgroup/unified && mount -t tmpfs hull-order /sys/fs/cgroup/unified && $1"
    fi
    timeout 120 bash -c "$1"
}
export -f run_once lifecycle
export BIN WORK
on_both_layouts run_once
on_both_layouts lifecycle
echo 0 >"$T/events/$GROUP/enable"
LOST=$(cat "$T"/per_cpu/cpu*/stats | awk '/^overrun:/ {n += $2} END {print n + 0}')
[ "$LOST" = 0 ] || die "the trace lost $LOST events (buffer_size_kb too small)"

python3 - "$T/trace" "$WORK/names" "$BIN" "$OUT" "$WS/scripts" <<'EOF'
import re, subprocess, sys
trace, names_file, binary, out, scripts = sys.argv[1:6]
sys.path.insert(0, scripts)
from start_path_names import pattern
names = dict(line.split() for line in open(names_file))
order, seen = [], set()
for line in open(trace):
    m = re.search(r" (f\d+): \(", line)
    if m and m.group(1) not in seen:
        seen.add(m.group(1))
        order.append(names[m.group(1)])
seen_names = set(order)
# The string functions were not probed: take the variants this CPU's IFUNC
# resolvers returned, else every AVX-512 and EVEX variant.
symbols = [line.split() for line in
           subprocess.run(["nm", binary], capture_output=True, text=True).stdout.splitlines()]
nm = [p[-1] for p in symbols if p]
by_addr = {}
for p in symbols:
    if len(p) == 3 and p[1] in "tTiW":
        by_addr.setdefault(int(p[0], 16), p[2])
picked = set()
for line in open(trace):
    m = re.search(r" r\d+: \(.*ret=0x([0-9a-f]+)", line)
    if m and int(m.group(1), 16) in by_addr:
        picked.add(by_addr[int(m.group(1), 16)])
strings = sorted(n for n in picked if n not in seen_names) or sorted(
    {n for n in nm if re.match(r"^__(mem|str|stp|wmem|wcs|raw|wcp)", n)
     and ("avx512" in n or "evex" in n)})
# The entry code (not probed) runs first at every start.
entry = [n for n in ("hull_entry", "_start", "__libc_setup_tls") if n in nm]
# Each Rust name as its hash-free pattern (scripts/start_path_names.py)
# when that pattern matches this function alone.
functions = [n for n in nm if n.startswith(("_ZN", "_R"))]
def listed(name):
    p = pattern(name)
    if p is None:
        return name
    rx = re.compile(re.escape(p).replace(r"\*", ".*") + r"\Z")
    return p if all(pattern(f) == p for f in functions if rx.match(f)) else name
# Copies in several crates share one pattern: listed once, where first hit.
entries = list(dict.fromkeys(listed(n) for n in order))
with open(out, "w") as f:
    f.write("".join(n + "\n" for n in entry + entries + strings))
wild = sum("*" in e for e in entries)
print(f"order-start-path: {len(order)} functions hit ({wild} as hash-free patterns),"
      f" {len(strings)} string functions; wrote {out}", file=sys.stderr)
EOF
