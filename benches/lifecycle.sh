#!/bin/bash
# lifecycle.sh RUNTIME [N]: times one runc-compatible runtime (hull, runc,
# crun) through a container's lifecycle on a busybox `/bin/true` bundle.
#
# Figures (samples in $OUT/samples.tsv as "figure<TAB>value<TAB>us|KiB"):
#   a.run        foreground `run`, a new id each time, N times (a `delete` is
#                timed in if the runtime left state behind)
#   a.run.hf     the same command under `hyperfine -N` (fixed id, 3 warm-ups);
#                a.run.hf.cpu: its mean user+system CPU time per run
#   b.create b.start b.exit b.state b.delete b.total
#                the split lifecycle, N times: `create --pid-file`, `start`,
#                the init gone, `state` (until it says stopped), `delete`
#   c.launch c.exited c.delete c.total
#                PAR `run -d` at once, all returned (launch), all inits gone
#                (exited), PAR `delete` at once; total: first start to last delete
#   c.fg.total   PAR foreground `run` at once, to the last exit
#   d.rss.run    peak RSS of `run` (GNU time's %M: ru_maxrss of the runtime and
#                the children it reaped), RSS_N times
#   e.run.idle   `run` after IDLE_GAP s of quiet, IDLE_N times: the first cgroup
#                attach after idling waits for an RCU grace period on this
#                kernel, which back-to-back loops hide
# Prints a summary (figure, n, median, min, max in ms or MiB) on stdout.
#
# Environment:
#   BUNDLE=DIR         bundle to run (default: fixtures/make-bundle.sh + /bin/true)
#   PAR=100 RSS_N=10 IDLE_N=20 IDLE_GAP=0.2   sizes of parts c, d and e
#   SKIP="a b c d e"   parts to leave out
#   HIDE_UNIFIED=1     run in a private mount namespace whose cgroup2 mount at
#                      /sys/fs/cgroup/unified is covered by a tmpfs (crun 1.8
#                      refuses the v1/v2 hybrid layout; this shows it pure v1)
#   RUNTIME_FLAGS=".." global flags before the subcommand
#   LABEL=name         names the ids and state root (default: the runtime's name)
#   OUT=DIR            where samples.tsv, notes.txt and meta.txt go
# Containers are `bench-<label>-<pid>-*` in a state root of their own, all
# force-deleted when the script ends, however it ends. Exits 1 on a failure
# (noted as "FAIL: ..." in notes.txt and on stderr).
set -uo pipefail
export LC_ALL=C

[ $# -ge 1 ] || { echo "usage: $0 RUNTIME [N]" >&2; exit 2; }
BENCHES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${HIDE_UNIFIED:-0}" = 1 ] && [ -z "${LIFECYCLE_UNIFIED_HIDDEN:-}" ]; then
    # The tmpfs lives and dies with the private mount namespace.
    exec unshare --mount --propagation private -- env LIFECYCLE_UNIFIED_HIDDEN=1 bash -c '
        umount /sys/fs/cgroup/unified &&
            mount -t tmpfs -o size=16m,mode=755 hull-bench-unified /sys/fs/cgroup/unified &&
            exec "$0" "$@"' "${BASH_SOURCE[0]}" "$@"
fi

RT=$(command -v "$1") || { echo "lifecycle: runtime '$1' not found" >&2; exit 1; }
RT=$(readlink -f "$RT")
N=${2:-50}
PAR=${PAR:-100} RSS_N=${RSS_N:-10} IDLE_N=${IDLE_N:-20} IDLE_GAP=${IDLE_GAP:-0.2}
LABEL=${LABEL:-$(basename "$RT")}
read -r -a FLAGS <<<"${RUNTIME_FLAGS:-}"
OUT=${OUT:-/tmp/hull-bench-results/$LABEL-$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/samples.tsv"
: >"$OUT/notes.txt"

WORK=$(mktemp -d "/tmp/hull-bench-$LABEL.XXXXXX")
ROOT=$WORK/state
IDS=bench-$LABEL-$$
mkdir -p "$ROOT"
mkfifo "$WORK/never"
exec {QUIET}<>"$WORK/never" # reads on it only ever time out: a sleep without a fork

rt() { "$RT" --root "$ROOT" "${FLAGS[@]}" "$@"; }
note() { echo "$*" >>"$OUT/notes.txt"; echo "lifecycle[$LABEL]: $*" >&2; }
fail() { note "FAIL: $*"; exit 1; }
sample() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$OUT/samples.tsv"; }
now() { local _now=$EPOCHREALTIME; printf -v "$1" "%s" "${_now/./}"; } # microseconds
nap() { read -r -t "$1" -u "$QUIET" _ || true; }
skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
first_error() { head -c 300 "$1" 2>/dev/null | tr '\n' ' '; }

# gone PID: the process has exited (a zombie counts: nobody may reap it soon).
gone() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) }
    [[ $stat == [ZX]* ]]
}

# wait_gone PID: polls every 0.2 ms, for up to 60 s.
wait_gone() {
    local start t
    now start
    while ! gone "$1"; do
        now t
        ((t - start < 60000000)) || return 1
        nap 0.0002
    done
}

# pid_from FILE: the pid a runtime wrote (without a newline).
pid_from() {
    pid=
    read -r pid 2>/dev/null <"$1"
    [[ $pid =~ ^[0-9]+$ ]]
}

finish() {
    local id n=0
    wait
    for id in $(ls "$ROOT" 2>/dev/null); do
        [[ $id == bench-* ]] || continue
        rt delete --force "$id" >/dev/null 2>&1 || note "cleanup: delete --force $id failed"
        n=$((n + 1))
    done
    [ "$n" = 0 ] || note "cleanup: force-deleted $n container(s) left behind"
    rm -rf "$WORK"
}
trap finish EXIT
trap 'exit 130' INT TERM

if [ -z "${BUNDLE:-}" ]; then
    BUNDLE=$WORK/bundle
    "$BENCHES/../fixtures/make-bundle.sh" "$BUNDLE" >/dev/null || fail "cannot build a bundle"
    jq '.process.args = ["/bin/true"]' "$BUNDLE/config.json" >"$WORK/config.json" &&
        mv "$WORK/config.json" "$BUNDLE/config.json" || fail "cannot edit the bundle"
fi
BUNDLE=$(cd "$BUNDLE" && pwd)
{
    echo "runtime: $RT ($("$RT" --version 2>&1 | head -1))"
    echo "label: $LABEL  N=$N PAR=$PAR RSS_N=$RSS_N IDLE_N=$IDLE_N HIDE_UNIFIED=${HIDE_UNIFIED:-0} flags: ${RUNTIME_FLAGS:-}"
    echo "bundle: $BUNDLE  date: $(date -Is)  kernel: $(uname -r)"
    echo "/sys/fs/cgroup/unified here: $(stat -f -c %T /sys/fs/cgroup/unified 2>&1)"
} >"$OUT/meta.txt"

rt run --bundle "$BUNDLE" "$IDS-smoke" >"$WORK/err" 2>&1 || fail "the first run failed: $(first_error "$WORK/err")"
rt delete --force "$IDS-smoke" >/dev/null 2>&1

# run ID: a foreground run, and its delete if the runtime left state.
timed_run() {
    rt run --bundle "$BUNDLE" "$1" >/dev/null 2>"$WORK/err" || fail "run $1: $(first_error "$WORK/err")"
    if [ -e "$ROOT/$1" ]; then
        left=$((left + 1))
        rt delete "$1" >/dev/null 2>"$WORK/err" || fail "delete $1: $(first_error "$WORK/err")"
    fi
}

if ! skipped a; then
    left=0
    for ((i = 1; i <= N; i++)); do
        now t0
        timed_run "$IDS-a-$i"
        now t1
        sample a.run $((t1 - t0)) us
    done
    [ "$left" = 0 ] || note "a: state left after a foreground run $left times (its delete timed in)"
    command=$(printf '%q ' "$RT" --root "$ROOT" "${FLAGS[@]}" run --bundle "$BUNDLE" "$IDS-hf")
    if hyperfine -N --warmup 3 --runs "$N" --export-json "$WORK/hf.json" "$command" >"$WORK/hf.log" 2>&1; then
        jq -r '.results[0].times[] | . * 1e6 | floor' "$WORK/hf.json" | while read -r us; do
            sample a.run.hf "$us" us
        done
        sample a.run.hf.cpu "$(jq -r '.results[0] | (.user + .system) * 1e6 | floor' "$WORK/hf.json")" us
    else
        fail "a: hyperfine: $(tail -3 "$WORK/hf.log" | tr '\n' ' ')"
    fi
fi

if ! skipped b; then
    for ((i = 1; i <= N; i++)); do
        id=$IDS-b-$i
        now t0
        rt create --bundle "$BUNDLE" --pid-file "$WORK/b.pid" "$id" >/dev/null 2>"$WORK/err" ||
            fail "create $id: $(first_error "$WORK/err")"
        now t1
        rt start "$id" >/dev/null 2>"$WORK/err" || fail "start $id: $(first_error "$WORK/err")"
        now t2
        pid_from "$WORK/b.pid" || fail "create $id wrote no pid file"
        wait_gone "$pid" || fail "$id (pid $pid) did not exit"
        now t3
        state_us=0
        while :; do
            now s0
            rt state "$id" >"$WORK/state.json" 2>"$WORK/err" || fail "state $id: $(first_error "$WORK/err")"
            now s1
            state_us=$((state_us + s1 - s0))
            [ "$(jq -r .status "$WORK/state.json")" = stopped ] && break
        done
        now t5
        rt delete "$id" >/dev/null 2>"$WORK/err" || fail "delete $id: $(first_error "$WORK/err")"
        now t6
        sample b.create $((t1 - t0)) us
        sample b.start $((t2 - t1)) us
        sample b.exit $((t3 - t2)) us
        sample b.state "$state_us" us
        sample b.delete $((t6 - t5)) us
        sample b.total $((t3 - t0 + state_us + t6 - t5)) us
    done
fi

# together CMD...: runs `rt CMD... <id>` for the PAR ids $IDS-<part>-<i> at
# once and waits for all; fails naming the first error.
together() {
    local part=$1 i p bad=0 pids=()
    shift
    for ((i = 1; i <= PAR; i++)); do
        "$RT" --root "$ROOT" "${FLAGS[@]}" "${@//@I/$i}" "$IDS-$part-$i" </dev/null >/dev/null 2>"$WORK/$part-$i.err" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
    [ "$bad" = 0 ] || fail "$part: $bad of $PAR failed: $(cat "$WORK/$part"-*.err | head -c 300)"
}

if ! skipped c; then
    now t0
    together c run -d --bundle "$BUNDLE" --pid-file "$WORK/c-@I.pid"
    now t1
    for ((i = 1; i <= PAR; i++)); do
        pid_from "$WORK/c-$i.pid" || fail "c: no pid file for $i"
        wait_gone "$pid" || fail "c: container $i (pid $pid) did not exit"
    done
    now t2
    together c delete
    now t3
    sample c.launch $((t1 - t0)) us
    sample c.exited $((t2 - t0)) us
    sample c.delete $((t3 - t2)) us
    sample c.total $((t3 - t0)) us
    now t0
    together cf run --bundle "$BUNDLE"
    now t1
    sample c.fg.total $((t1 - t0)) us
    left=$(ls "$ROOT" | grep -c -- "^$IDS-cf-")
    [ "$left" = 0 ] || note "c: $left foreground runs left state behind (not timed)"
fi

if ! skipped d; then
    [ -x /usr/bin/time ] || fail "d: /usr/bin/time is missing (scripts/deps.sh installs it)"
    for ((i = 1; i <= RSS_N; i++)); do
        /usr/bin/time -f %M -o "$WORK/rss" "$RT" --root "$ROOT" "${FLAGS[@]}" run --bundle "$BUNDLE" "$IDS-d-$i" \
            >/dev/null 2>"$WORK/err" || fail "d: run: $(first_error "$WORK/err")"
        rt delete --force "$IDS-d-$i" >/dev/null 2>&1
        sample d.rss.run "$(tail -1 "$WORK/rss")" KiB
    done
fi

if ! skipped e; then
    left=0
    for ((i = 1; i <= IDLE_N; i++)); do
        nap "$IDLE_GAP"
        now t0
        timed_run "$IDS-e-$i"
        now t1
        sample e.run.idle $((t1 - t0)) us
    done
fi

# The summary: per figure n, median, min and max, in ms (MiB for RSS).
printf '%-14s %4s %9s %9s %9s  %s\n' figure n median min max unit
cut -f1 "$OUT/samples.tsv" | awk '!seen[$0]++' | while read -r figure; do
    awk -F'\t' -v f="$figure" '$1 == f { print $2, $3 }' "$OUT/samples.tsv" | sort -n | awk -v f="$figure" '
        { v[NR] = $1; unit = $2 }
        END {
            scale = unit == "KiB" ? 1024 : 1000; unit = unit == "KiB" ? "MiB" : "ms"
            mid = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-14s %4d %9.2f %9.2f %9.2f  %s\n", f, NR, mid / scale, v[1] / scale, v[NR] / scale, unit
        }'
done
