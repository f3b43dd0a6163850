#!/bin/bash
# dns.sh: queries per second, latency and memory of a hull network's resolver
# against dnsmasq serving the same records, in one run, with Debian's dnsperf.
#
#   sudo benches/dns.sh            # N=10 containers, REPS=3 rounds of SECS=10 s each
#   sudo QUICK=1 benches/dns.sh    # N=4, REPS=1, SECS=3, printed only
#
# N containers join a network (service `web`, an alias, an SRV port each);
# the query mix is their A records, the service's A, the SRV name and the
# containers' PTR records. dnsmasq listens on the same gateway address (port
# 5300) with the same records as host-record/srv-host entries; the two are
# measured alternately. Output: per round, each server's qps, average
# latency and lost queries, the medians and their ratio, then each one's
# RSS (now and peak). A full run writes it, with the date, commit and
# machine, to benches/results/dns.md (RESULTS=file to change; NOTE="..."
# adds a line); a quick one prints it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "dns.sh: needs root" >&2; exit 1; }

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    N=${N:-4} REPS=${REPS:-1} SECS=${SECS:-3}
fi
N=${N:-10} REPS=${REPS:-3} SECS=${SECS:-10}
started=$(date -Is)
commit=$(git describe --always --dirty 2>/dev/null || echo 'no git')
read -r load_before _ </proc/loadavg

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
fi

cargo build --release -p runtime-cli >&2
HULL=$PWD/target/release/hull
WORK=$(mktemp -d /tmp/hull-test-dnsbench.XXXXXX)
NET=hull-test-dnsbench
NETROOT=$WORK/net
H=("$HULL" --root "$WORK/state" --net-root "$NETROOT" --net-table hull_test_dnsbench)
DNSMASQ_PID=
cleanup() {
    [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null || true
    for i in $(seq 1 "$N"); do "${H[@]}" delete --force "hull-test-dnsbench-$i" 2>/dev/null || true; done
    "${H[@]}" network rm "$NET" 2>/dev/null || true
    nft delete table ip hull_test_dnsbench 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fixtures/make-bundle.sh "$WORK/bundle" "$HULL" >/dev/null
jq '.process.args=["sleep","3600"] | .root.readonly=true' "$WORK/bundle/config.json" >"$WORK/c.json"
mv "$WORK/c.json" "$WORK/bundle/config.json"
"${H[@]}" network create --subnet 10.251.29.0/24 "$NET" >/dev/null
GW=10.251.29.1
for i in $(seq 1 "$N"); do
    jq --arg a "alias$i" '.annotations={"org.hull.dns.service":"web","org.hull.dns.aliases":$a,
        "org.hull.dns.ports":"http:80/tcp"}' "$WORK/bundle/config.json" >"$WORK/bundle/c.json"
    mkdir -p "$WORK/b$i" && mv "$WORK/bundle/c.json" "$WORK/b$i/config.json"
    ln -s "$WORK/bundle/rootfs" "$WORK/b$i/rootfs"
    "${H[@]}" run -d --network "$NET" --bundle "$WORK/b$i" "hull-test-dnsbench-$i" >/dev/null
done

# The records, and the same as dnsmasq options.
QUERIES=$WORK/queries
OPTS=()
: >"$QUERIES"
while read -r id ip; do
    echo "$id.$NET A" >>"$QUERIES"
    echo "${ip//./ } PTR" | awk '{print $4"."$3"."$2"."$1".in-addr.arpa PTR"}' >>"$QUERIES"
    OPTS+=("--host-record=$id.$NET,$ip" "--host-record=web.$NET,$ip")
    OPTS+=("--srv-host=_http._tcp.web.$NET,$id.$NET,80")
done < <("${H[@]}" network inspect "$NET" | jq -r '.containers[] | "\(.container) \(.ip)"')
echo "web.$NET A" >>"$QUERIES"
echo "_http._tcp.web.$NET SRV" >>"$QUERIES"

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$GW" --port=5300 --local="/$NET/" --cache-size=0 "${OPTS[@]}" &
DNSMASQ_PID=$!
RESOLVER=$("${H[@]}" network inspect "$NET" | jq -r .dns.pid)
sleep 0.5

ROUNDS=$WORK/rounds
measure() { # NAME PORT
    dnsperf -s "$GW" -p "$2" -d "$QUERIES" -l "$SECS" -c 4 -q 200 2>&1 |
        awk -v n="$1" '/Queries per second/ {q=$4} /Average Latency/ {l=$4}
            /Queries lost/ {lost=$3} END {printf "%s %.0f %.3f %s\n", n, q, l*1000, lost}'
}
for r in $(seq 1 "$REPS"); do
    echo "$r $(measure hull 53)" >>"$ROUNDS"
    echo "$r $(measure dnsmasq 5300)" >>"$ROUNDS"
done
read -r load_after _ </proc/loadavg
rss() { # PID: "now / peak" in KiB
    awk '/VmRSS/ {now=$2} /VmHWM/ {peak=$2} END {printf "%d / %d", now, peak}' "/proc/$1/status"
}

report() {
    echo "| round | server | qps | avg latency (ms) | lost |"
    echo "|---|---|---|---|---|"
    awk '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$ROUNDS"
    echo
    echo "| server | median qps | median latency (ms) | RSS now / peak (KiB) |"
    echo "|---|---|---|---|"
    for s in hull dnsmasq; do
        pid=$RESOLVER
        [ "$s" = dnsmasq ] && pid=$DNSMASQ_PID
        printf '| %s | %s | %s | %s |\n' "$s" \
            "$(awk -v s="$s" '$2==s {print $3}' "$ROUNDS" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
            "$(awk -v s="$s" '$2==s {print $4}' "$ROUNDS" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
            "$(rss "$pid")"
    done
    echo
    awk '$2=="hull" {h[++i]=$3} $2=="dnsmasq" {d[++j]=$3}
        END {for (k=1; k<=i; k++) r=r (k>1 ? ", " : "") sprintf("%.2f", h[k]/d[k]);
             print "hull/dnsmasq qps per round: " r}' "$ROUNDS"
}

machine() {
    echo "- date: $started → $(date -Is)"
    echo "- commit: $commit"
    echo "- machine: $(uname -srm), $(nproc) × $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
        "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo);" \
        "load average (1 min) before/after: $load_before / $load_after"
    echo "- software: $("$HULL" --version 2>&1 | head -1)," \
        "dnsperf $(dpkg-query -W -f='${Version}' dnsperf 2>/dev/null || echo '?')," \
        "dnsmasq $(dpkg-query -W -f='${Version}' dnsmasq-base 2>/dev/null || echo '?')"
    echo "- sizes: N=$N containers, REPS=$REPS rounds of SECS=$SECS s, dnsperf -c 4 -q 200," \
        "$(wc -l <"$QUERIES") query names"
    [ -z "${NOTE:-}" ] || echo "- note: $NOTE"
}

if [ "$QUICK" = 1 ]; then
    report
else
    RESULTS=${RESULTS:-benches/results/dns.md}
    mkdir -p "$(dirname "$RESULTS")"
    {
        echo "# hull's resolver against dnsmasq"
        echo
        echo "Command: \`sudo benches/dns.sh\` (benches/README.md says what is measured)."
        echo "Goal: at least dnsmasq's rate at under 5 MiB RSS."
        echo
        machine
        echo
        report
    } >"$RESULTS"
    cat "$RESULTS"
fi
