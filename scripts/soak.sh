#!/bin/bash
# soak.sh [N] [WORKERS]
#
# Runs N networked containers one after the other, then N more WORKERS at a
# time (defaults 1000 and 4): each `run -d` on a private network publishing
# a port, `exec`s into it, and is deleted with `delete --force`. Every 100
# containers and at the end it counts what hull keeps or makes (state files,
# leases, attachment records, nf_tables map elements, veths on the bridge,
# cgroups and mounts of its containers, processes and open files left in
# its directories) and fails if any count is above where it started.
#
# Uses $HULL (default target/release/hull, then target/debug/hull) and the
# test fixture bundle $HULL_TEST_FIXTURE (default: built in a temporary
# directory with fixtures/make-bundle.sh). Everything it makes is named
# hull-test-soak-<pid> (network 10.246.0.0/24, host ports 31000-31999) and
# removed at the end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/as-root.sh
. "$HERE/scripts/as-root.sh"
as_root "$0" "$@"

N=${1:-1000}
WORKERS=${2:-4}
HULL=${HULL:-}
if [ -z "$HULL" ]; then
    for c in "$HERE/target/release/hull" "$HERE/target/debug/hull"; do
        [ -x "$c" ] && { HULL=$c; break; }
    done
fi
[ -x "${HULL:-}" ] || { echo "soak: no hull binary (build it first or set HULL)" >&2; exit 1; }

TAG=hull-test-soak-$$
WORK=$(mktemp -d "/tmp/$TAG.XXXX")
ROOT=$WORK/state
NET_ROOT=$WORK/net
TABLE=hull_test_soak_$$
NET=soak-$(($$ % 100000))
BRIDGE=hull-$NET
hull() { "$HULL" --root "$ROOT" --net-root "$NET_ROOT" --net-table "$TABLE" "$@"; }

cleanup() {
    for id in $(hull list -q 2>/dev/null); do hull delete --force "$id" >/dev/null 2>&1 || true; done
    hull network rm "$NET" >/dev/null 2>&1 || true
    nft delete table ip "$TABLE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

FIXTURE=${HULL_TEST_FIXTURE:-}
if [ -z "$FIXTURE" ]; then
    FIXTURE=$WORK/fixture
    "$HERE/fixtures/make-bundle.sh" "$FIXTURE" "$HULL" >/dev/null
fi
BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE"
jq --arg rootfs "$FIXTURE/rootfs" \
    '.root = {path: $rootfs, readonly: true} | .process.args = ["sleep", "600"]' \
    "$FIXTURE/config.json" >"$BUNDLE/config.json"
hull network create --subnet 10.246.0.0/24 "$NET" >/dev/null

# one I: the life of container I, failing loudly.
one() {
    local id=$TAG-$1 port=$((31000 + $1 % 1000))
    hull run -d --network "$NET" -p "127.0.0.1:$port:80" --bundle "$BUNDLE" "$id" \
        </dev/null >/dev/null 2>"$WORK/err-$1" || { cat "$WORK/err-$1" >&2; return 1; }
    hull exec "$id" true 2>>"$WORK/err-$1" || { cat "$WORK/err-$1" >&2; return 1; }
    hull delete --force "$id" 2>>"$WORK/err-$1" || { cat "$WORK/err-$1" >&2; return 1; }
    rm -f "$WORK/err-$1"
}
export -f one hull
export HULL ROOT NET_ROOT TABLE NET TAG BUNDLE WORK

# counts: what hull keeps or makes, one "name=count" per word.
counts() {
    local state leases atts elems veths cgroups mounts procs fds resolver
    state=$(find "$ROOT" -mindepth 1 -maxdepth 1 ! -name .cache 2>/dev/null | wc -l)
    leases=$(find "$NET_ROOT/leases/$NET" -mindepth 1 ! -name lock ! -name last 2>/dev/null | wc -l)
    atts=$(find "$NET_ROOT/attachments" -mindepth 1 2>/dev/null | wc -l)
    elems=$({ nft -j list table ip "$TABLE" 2>/dev/null || echo '{"nftables":[]}'; } |
        jq '[.nftables[] | .map? // empty | (.elem // []) | length] | add // 0')
    veths=$(find "/sys/class/net/$BRIDGE/brif" -mindepth 1 2>/dev/null | wc -l)
    cgroups=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$TAG-*" 2>/dev/null | wc -l)
    mounts=$(grep -c "$TAG" /proc/self/mountinfo || true)
    # The network's resolver (one per network, from its first attach on)
    # is no leak: its process and files are not counted.
    resolver=$(cat "$NET_ROOT/dns/$NET/resolver.pid" 2>/dev/null || echo none)
    # "[h]": the grep's own command line does not match.
    procs=$(grep -l "[h]${TAG#h}" /proc/[0-9]*/cmdline 2>/dev/null |
        grep -v "^/proc/$$/" | grep -vc "^/proc/$resolver/" || true)
    fds=$(find /proc/[0-9]*/fd -lname "$WORK/*" 2>/dev/null |
        grep -v "^/proc/$$/" | grep -vc "^/proc/$resolver/" || true)
    echo "state=$state leases=$leases attachments=$atts elements=$elems veths=$veths" \
        "cgroups=$cgroups mounts=$mounts processes=$procs fds=$fds"
}

BASE=$(counts)
echo "soak: start: $BASE"
check() {
    local now
    now=$(counts)
    echo "soak: $1: $now"
    if [ "$now" != "$BASE" ]; then
        echo "soak: something grew after $1 (start: $BASE)" >&2
        exit 1
    fi
}

for i in $(seq 1 "$N"); do
    one "$i"
    [ $((i % 100)) -ne 0 ] || check "$i sequential"
done
[ $((N % 100)) -eq 0 ] || check "$N sequential"
seq $((N + 1)) $((2 * N)) | xargs -P "$WORKERS" -I{} bash -c 'one {}'
check "$N more, $WORKERS at a time"
echo "soak: nothing grew over $((2 * N)) containers"
