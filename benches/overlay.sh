#!/bin/bash
# overlay.sh: what a VXLAN overlay network costs, against one bridge.
#
#   sudo benches/overlay.sh            # SECS=10 s per iperf3 run, REPS=3, RUNS=10
#   sudo QUICK=1 benches/overlay.sh    # SECS=3, REPS=1, RUNS=3
#
# The lab: network namespaces hull-test-ovb-ul (a bridge and a private etcd
# on 10.246.0.254), hull-test-ovb-a and hull-test-ovb-b (hosts 10.246.0.1
# and .2), each host running hull with its own state; network `ovb` (range
# 10.251.0.0/16, VNI 4343) on both.
#   1. iperf3 TCP throughput (Gbit/s, median of REPS), from a container's
#      network namespace to another's: on one host (the same bridge), and
#      from host A to host B (across the overlay)
#   2. time from `hull run -d` on A to the container answering a ping from
#      host B (median, min, max of RUNS, ms): the agent's reaction is not in
#      it (the node subnet's route exists before), only the attach
# Everything goes when it ends. Root needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "overlay.sh: needs root" >&2; exit 1; }
scripts/deps.sh --check etcd etcdctl iperf3 jq ip busybox

if [ "${QUICK:-0}" = 1 ]; then
    SECS=${SECS:-3} REPS=${REPS:-1} RUNS=${RUNS:-3}
fi
SECS=${SECS:-10} REPS=${REPS:-3} RUNS=${RUNS:-10}

if [ -z "${HULL:-}" ]; then    # HULL=path/to/hull measures that binary instead
    cargo build --release -p runtime-cli >&2
    HULL=$PWD/target/release/hull
fi
WORK=$(mktemp -d /tmp/hull-test-ovb.XXXXXX)
NET=ovb STORE=etcd://10.246.0.254:2379
ETCD_PID=
in_ns() { local ns=$1; shift; ip netns exec "hull-test-ovb-$ns" "$@"; }
hull_on() { local h=$1; shift; in_ns "$h" "$HULL" --root "$WORK/$h/state" --net-root "$WORK/$h/net" --net-table hull_test_ovb "$@"; }

finish() {
    set +e
    for h in a b; do
        for id in $(hull_on "$h" list -q 2>/dev/null); do hull_on "$h" delete --force "$id"; done
        hull_on "$h" network rm "$NET" >/dev/null 2>&1
    done
    [ -n "$ETCD_PID" ] && kill "$ETCD_PID" && wait "$ETCD_PID" 2>/dev/null
    for ns in ul a b; do ip netns del "hull-test-ovb-$ns" 2>/dev/null; done
    rm -rf "$WORK"
}
trap finish EXIT

for ns in ul a b; do ip netns add "hull-test-ovb-$ns"; in_ns "$ns" ip link set lo up; done
in_ns ul ip link add hull-test-ul type bridge
in_ns ul ip addr add 10.246.0.254/24 dev hull-test-ul
in_ns ul ip link set hull-test-ul up
n=1
for h in a b; do
    in_ns ul ip link add "hull-test-$h" type veth peer name eth1 netns "hull-test-ovb-$h"
    in_ns ul ip link set "hull-test-$h" master hull-test-ul up
    in_ns "$h" ip addr add "10.246.0.$n/24" dev eth1
    in_ns "$h" ip link set eth1 up
    n=$((n + 1))
done
# Not through in_ns: $! must be etcd's own pid (ip netns exec execs it).
ip netns exec hull-test-ovb-ul etcd --name hull-test --data-dir "$WORK/etcd" \
    --listen-client-urls http://10.246.0.254:2379 --advertise-client-urls http://10.246.0.254:2379 \
    --listen-peer-urls http://127.0.0.1:2380 >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 50); do
    in_ns ul env ETCDCTL_API=3 etcdctl --endpoints 10.246.0.254:2379 endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done
for h in a b; do
    hull_on "$h" network create --driver vxlan --subnet 10.251.0.0/16 --vni 4343 --store "$STORE" "$NET" >/dev/null
done

fixtures/make-bundle.sh "$WORK/bundle" "$HULL" >/dev/null
jq '.process.args=["sleep","3600"] | .root.readonly=true' "$WORK/bundle/config.json" >"$WORK/c.json"
mv "$WORK/c.json" "$WORK/bundle/config.json"
run_on() { # HOST ID: runs a sleeping container; prints its init pid and address
    hull_on "$1" run -d --network "$NET" --bundle "$WORK/bundle" "$2" >/dev/null
    local pid ip
    pid=$(hull_on "$1" state "$2" | jq -r .pid)
    ip=$(hull_on "$1" network inspect "$NET" | jq -r --arg id "$2" '.containers[] | select(.container == $id) | .ip')
    echo "$pid $ip"
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

read -r SRV_PID SRV_IP < <(run_on b hull-test-ovb-srv)
read -r CLI_PID _ < <(run_on a hull-test-ovb-cli)
read -r NEAR_PID NEAR_IP < <(run_on a hull-test-ovb-near)
iperf() { # SERVER_PID SERVER_IP CLIENT_PID: Gbit/s
    nsenter -t "$1" -n iperf3 -s -1 -D -I "$WORK/iperf.pid" >/dev/null
    sleep 0.3
    nsenter -t "$3" -n iperf3 -c "$2" -t "$SECS" -J | jq '.end.sum_received.bits_per_second / 1e9'
}
echo "## iperf3 TCP, container to container (Gbit/s, median of $REPS x ${SECS}s)"
for r in $(seq "$REPS"); do iperf "$NEAR_PID" "$NEAR_IP" "$CLI_PID"; done | median | xargs printf 'same bridge (host A)     %.2f\n'
for r in $(seq "$REPS"); do iperf "$SRV_PID" "$SRV_IP" "$CLI_PID"; done | median | xargs printf 'across the overlay (A→B) %.2f\n'

echo "## hull run -d on A until host B pings the container (ms, $RUNS runs)"
times=()
for i in $(seq "$RUNS"); do
    id=hull-test-ovb-r$i
    t0=$(date +%s%N)
    read -r _ ip < <(run_on a "$id")
    until in_ns b busybox ping -c 1 -W 1 "$ip" >/dev/null 2>&1; do :; done
    times+=($(( ($(date +%s%N) - t0) / 1000000 )))
    hull_on a delete --force "$id"
done
printf '%s\n' "${times[@]}" | sort -g | awk '{v[NR]=$1} END {printf "median %d  min %d  max %d\n", v[int((NR+1)/2)], v[1], v[NR]}'
