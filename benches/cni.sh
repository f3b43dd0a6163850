#!/bin/bash
# cni.sh PLUGIN_DIR [RUNS] [SECS] [REPS]: what a CNI plugin directory costs,
# on the conflist of fixtures/cni/chain.sh (bridge -> portmap), driven as a
# runtime drives it.
#   1. chain ADD and DEL latency: one cold run (it creates the bridge), then
#      RUNS warm ones (median, min, max; wall time including the driver, and
#      the plugin processes' own time alone)
#   2. iperf3 TCP throughput, SECS s per run, median of REPS (Gbit/s):
#      host loopback (the ceiling), host -> container over the bridge,
#      host -> 127.0.0.1:published port, container -> container, and an
#      outside client -> the uplink address's published port
# Everything is named hull-test-* (network namespaces hull-test-cb-*, bridge
# hull-test-br1, uplink veth hull-test-up2/3) or lives in a temporary
# directory, and goes when it ends; subnets 10.239.0.0/24 and 10.240.0.0/24.
# The host's ip_forward is restored. Root needed.
set -uo pipefail

DIR=$(realpath "${1:?usage: $0 PLUGIN_DIR [RUNS] [SECS] [REPS]}")
RUNS=${2:-25} SECS=${3:-5} REPS=${4:-3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/../scripts/deps.sh" --check ip jq || exit 2
command -v iperf3 >/dev/null || { echo "cni: iperf3 is missing (apt-get install iperf3)" >&2; exit 2; }

BRIDGE=hull-test-br1 SUBNET=10.239.0.0/24 GATEWAY=10.239.0.1 UPLINK=10.240.0.1 OUTSIDE=10.240.0.2
CNI_DIR=$DIR CNI_WORK=$(mktemp -d /tmp/hull-test-cni-bench.XXXXXX)
FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
source "$HERE/../fixtures/cni/chain.sh"
servers=() attached=()

finish() {
    local id
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    for id in "${attached[@]}"; do cni_chain DEL "$id" "$id" >/dev/null 2>&1; done
    for ns in $(ip netns list | awk '/^hull-test-cb-/ {print $1}'); do ip netns del "$ns"; done
    ip link del hull-test-up2 2>/dev/null
    ip link del "$BRIDGE" 2>/dev/null
    echo "$FORWARD" >/proc/sys/net/ipv4/ip_forward
    rm -rf "$CNI_WORK"
}
trap finish EXIT

now() { local _now=$EPOCHREALTIME; printf -v "$1" "%s" "${_now/./}"; }
# stats: "median M ms  min A  max B" of microsecond values on stdin.
stats() {
    sort -n | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median %.1f ms  min %.1f  max %.1f\n", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# $(uname -r), $(nproc) CPUs; plugins: $DIR"
echo "## chain ADD/DEL latency, $RUNS warm runs after a cold one"
adds=() dels=() plugin_adds=() plugin_dels=()
# The plugins' own time of a chain command (cni_plugin appends each one's).
export CNI_TIMES=$CNI_WORK/times
plugin_time() { awk '{ s += $1 } END { print s + 0 }' "$CNI_TIMES"; }
for ((i = 0; i <= RUNS; i++)); do
    id=hull-test-cb-lat$i
    ip netns add "$id"
    attached+=("$id")
    : >"$CNI_TIMES"
    now t0
    cni_chain ADD "$id" "$id" '[{"hostPort": 18239, "containerPort": 80, "protocol": "tcp"}]' >/dev/null ||
        { echo "cni: ADD failed" >&2; exit 1; }
    now t1
    plugin_add=$(plugin_time)
    : >"$CNI_TIMES"
    cni_chain DEL "$id" "$id" || { echo "cni: DEL failed" >&2; exit 1; }
    now t2
    plugin_del=$(plugin_time)
    attached=("${attached[@]:0:${#attached[@]}-1}")
    ip netns del "$id"
    if [ "$i" = 0 ]; then
        echo "cold run (bridge made): ADD $(((t1 - t0) / 1000)) ms, DEL $(((t2 - t1) / 1000)) ms"
    else
        adds+=($((t1 - t0)))
        dels+=($((t2 - t1)))
        plugin_adds+=("$plugin_add")
        plugin_dels+=("$plugin_del")
    fi
done
unset CNI_TIMES
echo "chain ADD $(printf '%s\n' "${adds[@]}" | stats)"
echo "chain DEL $(printf '%s\n' "${dels[@]}" | stats)"
# The same commands without the driver (jq and subshells between plugins).
echo "plugins ADD $(printf '%s\n' "${plugin_adds[@]}" | stats)"
echo "plugins DEL $(printf '%s\n' "${plugin_dels[@]}" | stats)"

echo "## iperf3 TCP, ${SECS}s a run, median of $REPS (Gbit/s)"
# attach ID PORTMAPPINGS: a network namespace on the chain, lo up.
attach() {
    ip netns add "$1" && attached+=("$1") &&
        cni_chain ADD "$1" "$1" "$2" >/dev/null && ip -n "$1" link set lo up
}
attach hull-test-cb-srv '[{"hostPort": 15239, "containerPort": 5201, "protocol": "tcp"}]' || exit 1
attach hull-test-cb-cli '[]' || exit 1
ip netns add hull-test-cb-ext
ip link add hull-test-up2 type veth peer name hull-test-up3 netns hull-test-cb-ext
ip addr add "$UPLINK/24" dev hull-test-up2 && ip link set hull-test-up2 up
ip -n hull-test-cb-ext addr add "$OUTSIDE/24" dev hull-test-up3 && ip -n hull-test-cb-ext link set hull-test-up3 up
SERVER=$(cni_ip hull-test-cb-srv)
ip netns exec hull-test-cb-srv iperf3 -s -p 5201 >/dev/null 2>&1 &
servers+=($!)
iperf3 -s -p 35239 -B 127.0.0.1 >/dev/null 2>&1 &
servers+=($!)
sleep 1

# throughput LABEL NETNS|"" HOST PORT
throughput() {
    local runs=() r
    for ((r = 0; r < REPS; r++)); do
        if [ -n "$2" ]; then
            ip netns exec "$2" iperf3 -c "$3" -p "$4" -t "$SECS" -J
        else
            iperf3 -c "$3" -p "$4" -t "$SECS" -J
        fi 2>/dev/null | jq '(.end.sum_received.bits_per_second // 0) / 1e9 * 100 | floor / 100' >"$CNI_WORK/bps"
        runs+=("$(cat "$CNI_WORK/bps")")
    done
    printf '%-52s median %6s  runs: %s\n' "$1" "$(printf '%s\n' "${runs[@]}" | median)" "${runs[*]}"
}
throughput "host loopback 127.0.0.1 (ceiling)" "" 127.0.0.1 35239
throughput "host -> container $SERVER over the bridge" "" "$SERVER" 5201
throughput "host -> 127.0.0.1:15239 (published)" "" 127.0.0.1 15239
throughput "container -> container over the bridge" hull-test-cb-cli "$SERVER" 5201
throughput "outside -> $UPLINK:15239 (published, forwarded)" hull-test-cb-ext "$UPLINK" 15239
