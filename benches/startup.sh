#!/bin/bash
# startup.sh — hull vs runc vs crun: container lifecycle timings, one interleaved run.
#
#   benches/startup.sh            full run (REPS=5 N=50), writes benches/results/startup-<date>.md
#   QUICK=1 benches/startup.sh    a few iterations (well under 2 min), prints the table (CI)
#
# Drives ../shared/tools/bench/run-all.sh (resolved from the workspace root) once
# per rep, with MODES="plain v1" LIMITS_TOO=1 on `target/release/hull runc crun`
# (the order rotated from rep to rep, so no runtime always goes first), plus seccomp
# variants (hull-v1-seccomp, crun-v1-seccomp, runc-v1-seccomp) on a bundle whose
# config.json carries podman's default profile converted to OCI
# (benches/seccomp_to_oci.py), then prints benches/report.py's table: each figure's
# median [min–max] per runtime, hull-v1/crun-v1 and hull-v1/runc-v1, and the goals.
# crun 1.8 refuses the host's v1/v2 hybrid layout, so its plain variants fail by
# design; the -v1 variants run each lifecycle.sh call in a private mount namespace
# whose cgroup2 mount is replaced by a tmpfs (HIDE_UNIFIED=1). Compare hull-v1
# with crun-v1 and runc-v1 only.
#
# Exits non-zero if any variant's run failed (other than crun's hybrid refusal);
# the goals are reported, not enforced.
#
# Environment:
#   QUICK=1            REPS=1 N=3 PAR=5 RSS_N=2 IDLE_N=2 (limits + seccomp included)
#   REPS N PAR RSS_N IDLE_N   override either mode's sizes (full: 5 50 100 10 20)
#   HULL=PATH          hull binary to measure (default: build target/release/hull)
#   SECCOMP=0          skip the seccomp variants
#   OUT=DIR            raw results (default /tmp/hull-bench-results/startup-<time>)
#   RESULTS=FILE       full mode's markdown (default benches/results/startup-<date>.md)
#   NOTE="..."         free text added to the results file (e.g. machine was busy)
set -euo pipefail

CALLER_PWD=$PWD
BENCHES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORKSPACE=$(dirname "$BENCHES")
TOOLS=$WORKSPACE/../shared/tools/bench
PROFILE=/usr/share/containers/seccomp.json

die() { echo "startup: $*" >&2; exit 1; }
log() { echo "startup: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (containers, cgroups, mount namespaces)"
[ -x "$TOOLS/run-all.sh" ] || die "shared benchmark tools not found at $TOOLS"
command -v python3 >/dev/null || die "python3 not found (needed for benches/report.py)"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1} N=${N:-3} PAR=${PAR:-5} RSS_N=${RSS_N:-2} IDLE_N=${IDLE_N:-2}
else
    REPS=${REPS:-5} N=${N:-50} PAR=${PAR:-100} RSS_N=${RSS_N:-10} IDLE_N=${IDLE_N:-20}
fi
export PAR RSS_N IDLE_N
SECCOMP=${SECCOMP:-1}

# ---- dependencies -------------------------------------------------------------
need=()
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v jq >/dev/null || need+=(jq)
command -v unshare >/dev/null || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
apt_install() {
    log "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}
if [ ${#need[@]} -gt 0 ]; then
    apt_install "${need[@]}" || die "cannot install ${need[*]} with apt-get"
fi
if [ "$SECCOMP" = 1 ] && [ ! -f "$PROFILE" ]; then
    apt_install golang-github-containers-common || log "WARNING: podman's seccomp profile not installable"
fi
for c in runc crun hyperfine jq unshare; do
    command -v "$c" >/dev/null || die "$c is missing (apt-get install -y runc crun hyperfine jq)"
done

OUT=${OUT:-/tmp/hull-bench-results/startup-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---- hull -----------------------------------------------------------------------
cd "$WORKSPACE"
if [ -n "${HULL:-}" ]; then
    [ -z "${HULL##/*}" ] || HULL=$CALLER_PWD/$HULL
    [ -x "$HULL" ] || die "HULL=$HULL is not executable"
else
    log "scripts/build-release.sh (static-pie target/release/hull)"
    "$WORKSPACE/scripts/build-release.sh" || die "building hull failed"
    HULL=target/release/hull
fi

# ---- seccomp bundle: the shared fixture + podman's default profile -------------
extra=()
SC_BUNDLE=
trap '[ -z "$SC_BUNDLE" ] || rm -rf "$SC_BUNDLE"' EXIT
if [ "$SECCOMP" = 1 ]; then
    if [ -f "$PROFILE" ]; then
        SC_BUNDLE=$(mktemp -d /tmp/bench-bundle-seccomp.XXXXXX)
        "$TOOLS/make-bundle.sh" "$SC_BUNDLE" >/dev/null
        python3 "$BENCHES/seccomp_to_oci.py" "$PROFILE" "$SC_BUNDLE/config.json" -o "$SC_BUNDLE/config.json"
        cp "$SC_BUNDLE/config.json" "$OUT/config-seccomp.json"
        sc="HIDE_UNIFIED=1 BUNDLE=$SC_BUNDLE"
        extra=("hull-v1-seccomp|$HULL|$sc" "crun-v1-seccomp|crun|$sc" "runc-v1-seccomp|runc|$sc")
    else
        log "WARNING: $PROFILE not available, seccomp variants skipped"
    fi
fi

# ---- the run ----------------------------------------------------------------------
read -r load_before _ </proc/loadavg
started=$(date -Is)
log "REPS=$REPS N=$N PAR=$PAR RSS_N=$RSS_N IDLE_N=$IDLE_N, raw results in $OUT"
# One run-all.sh pass per rep, the runtimes' order rotated from pass to pass:
# the first variants of a pass meet whatever kernel clean-up the previous pass
# left (network namespaces freed in the background, ext4 skipping recently
# freed inodes), so no runtime should always be first. Each pass's rep1 then
# becomes rep<k> of the run.
runtimes=("$HULL" runc crun)
rc=0
: >"$OUT/run.log"
for ((k = 1; k <= REPS; k++)); do
    shift_by=$(((k - 1) % 3))
    order=("${runtimes[@]:shift_by}" "${runtimes[@]:0:shift_by}")
    pass_extra=("${extra[@]:shift_by}" "${extra[@]:0:shift_by}")
    EXTRA_VARIANTS=$(IFS=';' && echo "${pass_extra[*]}")
    log "rep $k/$REPS: $(for r in "${order[@]}"; do printf '%s ' "$(basename "$r")"; done)"
    pass=$OUT/pass$k
    env REPS=1 N="$N" MODES="plain v1" LIMITS_TOO=1 OUT="$pass" EXTRA_VARIANTS="$EXTRA_VARIANTS" \
        "$TOOLS/run-all.sh" "${order[@]}" 2>&1 >/dev/null | tee -a "$OUT/run.log" >&2 || rc=$?
    [ -f "$pass/variants.txt" ] || die "run-all.sh produced no results in $pass"
    [ -f "$OUT/variants.txt" ] || cp "$pass/variants.txt" "$OUT/variants.txt"
    while read -r variant; do
        [ -d "$pass/$variant/rep1" ] || continue
        mkdir -p "$OUT/$variant"
        mv "$pass/$variant/rep1" "$OUT/$variant/rep$k"
    done <"$pass/variants.txt"
    rm -rf "$pass"
done
read -r load_after _ </proc/loadavg
[ "$rc" = 0 ] || log "run-all.sh exited $rc"

# lifecycle.sh removes its state root only when empty; hull keeps its seccomp
# filter cache in <root>/.cache, so remove roots that hold nothing else.
for meta in "$OUT"/*/rep*/meta.txt; do
    [ -f "$meta" ] || continue
    root=$(sed -n 's/^bundle: .*  root: \(\/tmp\/bench-state-[^ ]*\)  .*/\1/p' "$meta")
    [ -n "$root" ] || continue
    [ -d "$root" ] || continue
    if ! find "$root" -mindepth 1 -maxdepth 1 ! -name .cache | grep -q .; then
        rm -rf "$root"
        echo "removed state root $root left with only hull's .cache (seccomp filter cache)" >>"$OUT/startup-notes.txt"
    fi
done

report_rc=0
python3 "$BENCHES/report.py" --runtime "$(basename "$HULL")" "$OUT" >"$OUT/report.md" || report_rc=$?

machine() {
    echo "- date: $started → $(date -Is)"
    echo "- host: $(uname -a)"
    echo "- CPUs: $(nproc) × $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -r); cgroups: $(stat -f -c %T /sys/fs/cgroup) at /sys/fs/cgroup," \
        "cgroup2 at /sys/fs/cgroup/unified: $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null || echo none)"
    echo "- hull: $("$HULL" --version 2>&1 | head -1) ($(git -C "$WORKSPACE" describe --always --dirty 2>/dev/null || echo 'no git'))"
    echo "- runc: $(runc --version 2>&1 | head -1); crun: $(crun --version 2>&1 | head -1); $(hyperfine --version)"
    echo "- load average (1 min) before/after: $load_before / $load_after"
    echo "- sizes: REPS=$REPS N=$N PAR=$PAR RSS_N=$RSS_N IDLE_N=$IDLE_N; raw samples: $OUT"
}

if [ "$QUICK" = 1 ]; then
    cat "$OUT/report.md"
else
    RESULTS=${RESULTS:-$BENCHES/results/startup-$(date +%F).md}
    [ -z "${RESULTS##/*}" ] || RESULTS=$CALLER_PWD/$RESULTS
    if [ -e "$RESULTS" ] && [ -z "${RESULTS_OVERWRITE:-}" ]; then
        RESULTS=${RESULTS%.md}-$(date +%H%M%S).md
    fi
    mkdir -p "$(dirname "$RESULTS")"
    {
        echo "# hull startup benchmark — $(date +%F)"
        echo
        echo "Command: \`REPS=$REPS N=$N benches/startup.sh\`" \
            "(run-all.sh from ../shared/tools/bench once per rep, every variant interleaved," \
            "the runtimes' order rotated from rep to rep)."
        echo
        machine
        if [ -n "${NOTE:-}" ]; then echo; echo "Note: $NOTE"; fi
        echo
        cat "$OUT/report.md"
    } >"$RESULTS"
    cat "$OUT/report.md"
    log "results: $RESULTS"
fi
log "raw results: $OUT"
[ "$rc" = 0 ] || exit "$rc"
exit "$report_rc"
