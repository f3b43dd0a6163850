#!/bin/bash
# startup.sh — hull vs runc vs crun: container lifecycle timings, one interleaved run.
#
#   benches/startup.sh            full run: the runtimes (REPS=5 N=50), then the same
#                                 runtimes through docker, ctr, podman and CRI
#                                 (benches/engines.sh), then network set-up, teardown and
#                                 throughput (benches/network.sh); writes benches/results/startup.md
#   QUICK=1 benches/startup.sh    the runtimes only, a few iterations, -v1 variants only
#                                 (~20 s), prints the table (CI)
#
# Runs benches/lifecycle.sh on `target/release/hull`, runc and crun, each in the
# variants <rt>, <rt>-v1, <rt>-lim and <rt>-v1-lim (-lim: a bundle with memory
# and pids limits; -v1: HIDE_UNIFIED=1, the cgroup2 mount hidden), plus
# hull-v1-seccomp, crun-v1-seccomp and runc-v1-seccomp on a bundle whose
# config.json carries podman's default profile converted to OCI
# (benches/seccomp_to_oci.py). Every variant runs once per rep, interleaved,
# the runtimes' order rotated from rep to rep (so no runtime always goes
# first), then benches/report.py prints each figure's median [min–max] per
# runtime, hull-v1/crun-v1 and hull-v1/runc-v1, and the goals.
# crun 1.8 refuses the host's v1/v2 hybrid layout, so its plain variants fail by
# design; compare hull-v1 with crun-v1 and runc-v1 only.
#
# Exits non-zero if any variant's run failed (other than crun's hybrid refusal);
# the goals are reported, not enforced.
#
# Environment:
#   QUICK=1            REPS=1 N=3 PAR=5 RSS_N=2 IDLE_N=2 MODES=v1 (limits + seccomp included)
#   MODES="plain v1"   which of the plain and -v1 variants to run
#   REPS N PAR RSS_N IDLE_N   override either mode's sizes (full: 5 50 100 10 20)
#   HULL=PATH          hull binary to measure (default: `cargo build --release`'s target/release/hull)
#   ENGINE_ROUNDS=20   engines.sh's rounds (full mode; 0 skips the engines)
#   NETWORK=1          run network.sh (full mode; 0 skips it)
#   SECCOMP=0          skip the seccomp variants
#   OUT=DIR            raw results (default /tmp/hull-bench-results/startup-<time>)
#   RESULTS=FILE       full mode's markdown (default benches/results/startup.md, replaced)
#   NOTE="..."         free text for the results file (e.g. what else loaded the machine)
set -euo pipefail

CALLER_PWD=$PWD
BENCHES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORKSPACE=$(dirname "$BENCHES")
PROFILE=/usr/share/containers/seccomp.json

die() { echo "startup: $*" >&2; exit 1; }
log() { echo "startup: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (containers, cgroups, mount namespaces)"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1} N=${N:-3} PAR=${PAR:-5} RSS_N=${RSS_N:-2} IDLE_N=${IDLE_N:-2} MODES=${MODES:-v1}
else
    REPS=${REPS:-5} N=${N:-50} PAR=${PAR:-100} RSS_N=${RSS_N:-10} IDLE_N=${IDLE_N:-20} MODES=${MODES:-plain v1}
fi
export PAR RSS_N IDLE_N
SECCOMP=${SECCOMP:-1}

# ---- dependencies -------------------------------------------------------------
"$WORKSPACE/scripts/deps.sh" || die "scripts/deps.sh could not install what is missing"
"$WORKSPACE/scripts/deps.sh" --check runc crun hyperfine jq unshare time busybox python3 ||
    die "missing programs (above)"
if [ "$SECCOMP" = 1 ]; then
    "$WORKSPACE/scripts/deps.sh" --check seccomp-profile || die "podman's seccomp profile is missing (or SECCOMP=0)"
fi

OUT=${OUT:-/tmp/hull-bench-results/startup-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---- hull -----------------------------------------------------------------------
cd "$WORKSPACE"
if [ -n "${HULL:-}" ]; then
    [ -z "${HULL##/*}" ] || HULL=$CALLER_PWD/$HULL
    [ -x "$HULL" ] || die "HULL=$HULL is not executable"
else
    log "cargo build --release -p runtime-cli"
    cargo build -q --release -p runtime-cli || die "building hull failed"
    HULL=$WORKSPACE/target/release/hull
fi
# What is measured: the binary's linking, and how much of the start-path list
# (runtime-cli/start-path.order) its functions match, compared as the list
# was made (scripts/start_path_names.py): names still missing mean the start
# path changed since the list was made, and a start then maps more of the
# binary.
ORDER=$WORKSPACE/runtime-cli/start-path.order
describe_hull() {
    local link=dynamic kind=position-independent listed found
    readelf -lW "$HULL" 2>/dev/null | grep -q 'INTERP' || link=static
    readelf -hW "$HULL" 2>/dev/null | grep -q 'Type:.*EXEC' && kind="fixed address"
    printf '%s (%s, %s, %s bytes)' "${HULL#"$WORKSPACE"/}" "$link" "$kind" "$(stat -c %s "$HULL")"
    if read -r found listed < <(python3 "$WORKSPACE/scripts/start_path_names.py" "$ORDER" "$HULL" 2>/dev/null); then
        printf '; start path: %s of %s listed functions in the build' "$found" "$listed"
        [ $((found * 10)) -ge $((listed * 9)) ] || printf ' (STALE: rerun scripts/order-start-path.sh)'
    else
        printf '; no symbols: start-path order unknown'
    fi
}
HULL_BUILD=$(describe_hull)
log "hull: $HULL_BUILD"

# ---- bundles: /bin/true; with limits; with podman's seccomp profile ----------
BUNDLES=$(mktemp -d /tmp/hull-bench-bundles.XXXXXX)
trap 'rm -rf "$BUNDLES"' EXIT
# bundle NAME JQ-FILTER: the fixture bundle with `process.args = ["/bin/true"]`
# and FILTER applied to its config.json.
bundle() {
    fixtures/make-bundle.sh "$BUNDLES/$1" "$HULL" >/dev/null || die "cannot build the $1 bundle"
    jq ".process.args = [\"/bin/true\"] | $2" "$BUNDLES/$1/config.json" >"$BUNDLES/$1.json" &&
        mv "$BUNDLES/$1.json" "$BUNDLES/$1/config.json" || die "cannot edit the $1 bundle"
}
bundle plain .
bundle lim '.linux.resources.memory.limit = 67108864 | .linux.resources.pids.limit = 64'
variants=() # label|runtime|environment, per runtime in turn
for rt in "$HULL" runc crun; do
    name=$(basename "$rt")
    group=()
    for lim in "" -lim; do
        dir=$BUNDLES/plain
        [ -z "$lim" ] || dir=$BUNDLES/lim
        for mode in $MODES; do
            case $mode in
                plain) group+=("$name$lim|$rt|BUNDLE=$dir HIDE_UNIFIED=0") ;;
                v1) group+=("$name-v1$lim|$rt|BUNDLE=$dir HIDE_UNIFIED=1") ;;
                *) die "MODES: unknown mode $mode (plain, v1)" ;;
            esac
        done
    done
    if [ "$SECCOMP" = 1 ]; then
        group+=("$name-v1-seccomp|$rt|BUNDLE=$BUNDLES/seccomp HIDE_UNIFIED=1")
    fi
    variants+=("$(IFS=';' && echo "${group[*]}")")
done
if [ "$SECCOMP" = 1 ]; then
    bundle seccomp .
    python3 "$BENCHES/seccomp_to_oci.py" "$PROFILE" "$BUNDLES/seccomp/config.json" -o "$BUNDLES/seccomp/config.json"
    cp "$BUNDLES/seccomp/config.json" "$OUT/config-seccomp.json"
fi

# ---- the run ----------------------------------------------------------------------
read -r load_before _ </proc/loadavg
started=$(date -Is)
commit=$(git -C "$WORKSPACE" describe --always --dirty 2>/dev/null || echo 'no git')
log "REPS=$REPS N=$N PAR=$PAR RSS_N=$RSS_N IDLE_N=$IDLE_N MODES=$MODES, raw results in $OUT"
# Every variant once per rep, the runtimes' order rotated from rep to rep: the
# first variants of a rep meet whatever kernel clean-up the previous one left
# (network namespaces freed in the background, ext4 skipping recently freed
# inodes), so no runtime should always be first.
: >"$OUT/variants.txt"
for group in "${variants[@]}"; do tr ';' '\n' <<<"$group" | cut -d'|' -f1 >>"$OUT/variants.txt"; done
for ((k = 1; k <= REPS; k++)); do
    shift_by=$(((k - 1) % 3))
    order=("${variants[@]:shift_by}" "${variants[@]:0:shift_by}")
    IFS=';' read -r -a rep_variants <<<"$(IFS=';' && echo "${order[*]}")"
    log "rep $k/$REPS: $(for v in "${rep_variants[@]}"; do printf '%s ' "${v%%|*}"; done)"
    for v in "${rep_variants[@]}"; do
        IFS='|' read -r label rt envs <<<"$v"
        dir=$OUT/$label/rep$k
        mkdir -p "$dir"
        # shellcheck disable=SC2086 # envs is a list of VAR=value words
        status=0
        env $envs LABEL="$label" OUT="$dir" "$BENCHES/lifecycle.sh" "$rt" "$N" >"$dir/summary.txt" 2>"$dir/stderr.txt" ||
            status=$?
        echo "$status" >"$dir/rc"
        sed -n "s/^FAIL/  [$label rep$k] FAIL/p" "$dir/notes.txt" >&2
    done
done
report_rc=0
python3 "$BENCHES/report.py" --runtime "$(basename "$HULL")" "$OUT" >"$OUT/report.md" || report_rc=$?

if [ "$QUICK" != 1 ]; then
    # The same runtimes through the engines, then the network, in this run.
    ENGINE_ROUNDS=${ENGINE_ROUNDS:-20}
    if [ "$ENGINE_ROUNDS" -gt 0 ]; then
        log "engines: benches/engines.sh $HULL $ENGINE_ROUNDS"
        if OUT=$OUT/engines "$BENCHES/engines.sh" "$HULL" "$ENGINE_ROUNDS" >"$OUT/engines.log" 2>&1; then
            python3 "$BENCHES/engines_report.py" "$OUT/engines" "$OUT" >"$OUT/engines.md" || report_rc=1
        else
            log "engines.sh failed: $(tail -3 "$OUT/engines.log")"
            report_rc=1
        fi
    fi
    if [ "${NETWORK:-1}" = 1 ]; then
        log "network: benches/network.sh"
        "$BENCHES/network.sh" >"$OUT/network.md" 2>"$OUT/network.log" || {
            log "network.sh failed: $(tail -3 "$OUT/network.log")"
            report_rc=1
        }
    fi
fi
read -r load_after _ </proc/loadavg

machine() {
    echo "- date: $started → $(date -Is)"
    echo "- commit: $commit"
    echo "- machine: $(uname -srm), $(nproc) × $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
        "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo);" \
        "cgroup v1 at /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified: $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null || echo none);" \
        "load average (1 min) before/after: $load_before / $load_after"
    echo "- hull binary: $HULL_BUILD"
    echo "- runtimes: $("$HULL" --version 2>&1 | head -1), $(runc --version 2>&1 | head -1)," \
        "$(crun --version 2>&1 | head -1); $(hyperfine --version)"
    if [ -s "$OUT/engines/versions.txt" ]; then
        echo "- engines: $(paste -sd';' "$OUT/engines/versions.txt" | sed 's/;/; /g')"
    fi
    echo "- sizes: REPS=$REPS N=$N PAR=$PAR RSS_N=$RSS_N IDLE_N=$IDLE_N ENGINE_ROUNDS=${ENGINE_ROUNDS:-0}"
    [ -z "${NOTE:-}" ] || echo "- note: $NOTE"
}

if [ "$QUICK" = 1 ]; then
    # A smoke run: one rep of N runs, so ratios are indicative only, and the
    # machine's load (another suite beside it) moves every runtime alike.
    echo "quick run (REPS=$REPS N=$N, ratios indicative only); load average $load_before / $(cut -d' ' -f1 /proc/loadavg)"
    echo "hull: $HULL_BUILD"
    echo
    cat "$OUT/report.md"
else
    RESULTS=${RESULTS:-$BENCHES/results/startup.md}
    [ -z "${RESULTS##/*}" ] || RESULTS=$CALLER_PWD/$RESULTS
    mkdir -p "$(dirname "$RESULTS")"
    {
        echo "# hull benchmark"
        echo
        echo "Command: \`sudo benches/startup.sh\` (benches/README.md says what each figure is)."
        echo
        machine
        echo
        echo "## Runtimes: benches/lifecycle.sh for every variant once per rep, interleaved"
        echo
        cat "$OUT/report.md"
        if [ -s "$OUT/engines.md" ]; then
            echo
            echo "## Engines: benches/engines.sh, each engine started once, the runtimes interleaved"
            echo
            cat "$OUT/engines.md"
        fi
        if [ -s "$OUT/network.md" ]; then
            echo
            echo "## Network: benches/network.sh, the CNI reference plugins and hull's"
            echo
            echo '```'
            # The plugin directory is a temporary one: say what it holds.
            sed -E 's#plugins: /tmp/hull-bench-cni\.[A-Za-z0-9]+#plugins: hull-cni (fixtures/cni/make-plugin-dir.sh)#' "$OUT/network.md"
            echo '```'
        fi
    } >"$RESULTS"
    cat "$OUT/report.md"
    [ ! -s "$OUT/engines.md" ] || cat "$OUT/engines.md"
    log "results: $RESULTS"
fi
log "raw results: $OUT"
exit "$report_rc"
