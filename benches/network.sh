#!/bin/bash
# network.sh: network setup/teardown latency and published-port throughput of
# hull's networking against the CNI reference plugins, measured one after the
# other by benches/cni.sh on the same chain (bridge + portmap, the conflist
# of fixtures/cni/chain.sh): once with Debian's reference plugins (/usr/lib/cni),
# once with hull-cni in those roles (fixtures/cni/make-plugin-dir.sh).
#
#   sudo benches/network.sh            # RUNS=25 SECS=5 IPERF_REPS=3 NET_IPERF_REPS=15 NET_IPERF_SECS=3
#   sudo QUICK=1 benches/network.sh    # RUNS=3 SECS=1 IPERF_REPS=1 NET_IPERF_REPS=1 NET_IPERF_SECS=1
# Output: both reports, the ADD/DEL medians side by side, then hull's library
# attach/detach, per-port publishing cost and 127.0.0.1-published vs direct
# iperf3 throughput, alternating (bridge/examples/netbench.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "network.sh: needs root" >&2; exit 1; }

if [ "${QUICK:-0}" = 1 ]; then
    RUNS=${RUNS:-3} SECS=${SECS:-1} IPERF_REPS=${IPERF_REPS:-1}
    NET_IPERF_REPS=${NET_IPERF_REPS:-1} NET_IPERF_SECS=${NET_IPERF_SECS:-1}
fi
RUNS=${RUNS:-25} SECS=${SECS:-5} IPERF_REPS=${IPERF_REPS:-3}
NET_IPERF_REPS=${NET_IPERF_REPS:-15} NET_IPERF_SECS=${NET_IPERF_SECS:-3}

need=()
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
for c in iperf3 socat curl jq; do command -v "$c" >/dev/null || need+=("$c"); done
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
fi

cargo build --release -p hull-cni >&2
cargo build --release -p bridge --example netbench >&2
PLUGINS=$(mktemp -d /tmp/hull-bench-cni.XXXXXX)
trap 'rm -rf "$PLUGINS"' EXIT
fixtures/cni/make-plugin-dir.sh "$PLUGINS" "$PWD/target/release/hull-cni" >/dev/null

run() { # LABEL DIR
    echo "## $1"
    benches/cni.sh "$2" "$RUNS" "$SECS" "$IPERF_REPS" 2>&1 | tee "$PLUGINS/$1.log"
    # hull keeps a network's rules after its last DEL (like a bridge's). The
    # bench network's store went with the script's state dir: drop hull's
    # table if the bench network is all it holds.
    if [ "$1" = hull ] && nft list table ip hull 2>/dev/null | grep -q 'hull net hull-test-br1' \
        && ! nft list table ip hull | grep 'comment "hull net' | grep -vq 'hull net hull-test-br1'; then
        nft delete table ip hull
    fi
}
run reference /usr/lib/cni
run hull "$PLUGINS"
echo "## ADD/DEL through the CNI chain (median ms): reference vs hull"
paste <(grep -Ei '(chain|plugins) (add|del)' "$PLUGINS/reference.log") <(grep -Ei '(chain|plugins) (add|del)' "$PLUGINS/hull.log") || true
echo "## hull's library without a plugin process (in a throwaway network namespace)"
# ... and published 127.0.0.1 port vs direct throughput, alternating runs.
target/release/examples/netbench "$RUNS" "$NET_IPERF_REPS" "$NET_IPERF_SECS"
