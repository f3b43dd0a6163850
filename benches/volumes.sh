#!/bin/bash
# volumes.sh: sequential and random read/write (fio) inside a container, on
# each kind of hull volume and on the host filesystem, in one run.
#
#   sudo benches/volumes.sh            # SIZE=1G per file, SECS=20 per job, REPS=3
#   sudo QUICK=1 benches/volumes.sh    # SIZE=128M, SECS=3, REPS=1
#   HULL=target/debug/hull ...         # that binary instead of a release build
#
# Backends (every one is a container running fio on /mnt):
#   host        a bind mount of a host directory: the baseline
#   raw-loop    `volume create --format raw`: a sparse image, loop device
#               with direct I/O, ext4
#   qcow2-fuse  `volume create --format qcow2`: the image served as a raw
#               file through hull's FUSE server, a loop device on that
#   remote-nbd  `volume create --remote nbd://127.0.0.1:PORT/EXPORT`: a qcow2
#               served by qemu-nbd, read by hull's NBD client
# A backend hull cannot make yet is reported as skipped with hull's reason.
# Jobs: seqread / seqwrite (1 MiB blocks), randread / randwrite (4 KiB,
# queue depth 16), all O_DIRECT, libaio. Output: one line per backend and
# job with MiB/s, IOPS, IOPS as a share of the host's and the
# 99th-percentile completion latency (µs), medians over the reps; with
# RESULTS=FILE also written there as markdown.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "volumes.sh: needs root" >&2; exit 1; }

if [ "${QUICK:-0}" = 1 ]; then
    SIZE=${SIZE:-128M} SECS=${SECS:-3} REPS=${REPS:-1}
fi
SIZE=${SIZE:-1G} SECS=${SECS:-20} REPS=${REPS:-3}
BACKENDS=${BACKENDS:-"host raw-loop qcow2-fuse remote-nbd"}
JOBS="seqread seqwrite randread randwrite"

need=()
command -v fio >/dev/null || need+=(fio)
command -v jq >/dev/null || need+=(jq)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
fi

if [ -z "${HULL:-}" ]; then
    cargo build --release -p runtime-cli >&2
    HULL=$PWD/target/release/hull
fi
# On the host's disk, not a tmpfs: the images must go where real ones do.
WORK=$(mktemp -d /var/tmp/hull-test-volbench.XXXXXX)
H=("$HULL" --root "$WORK/state" --volume-root "$WORK/volumes")
ID=hull-test-volbench
NBD_PID=
NBD_PORT=
cleanup() {
    "${H[@]}" delete --force "$ID" 2>/dev/null || true
    [ -n "$NBD_PID" ] && kill "$NBD_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A rootfs of the host's /usr (fio and its libraries), read-only.
fixtures/make-bundle.sh "$WORK/bundle" "$HULL" >/dev/null
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{proc,dev,sys,tmp,mnt,usr,etc}
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$ROOTFS/$l"; done
mkdir -p "$WORK/hostdir"

# config BACKEND: the bundle's config.json, fio's job file as the process.
config() {
    local extra='[]'
    if [ "$1" = host ]; then
        extra=$(jq -n --arg s "$WORK/hostdir" '[{destination:"/mnt",type:"bind",source:$s,options:["rbind","rw"]}]')
    fi
    jq --arg r "$ROOTFS" --argjson extra "$extra" --arg size "$SIZE" --arg secs "$SECS" '
        .root = {path: $r, readonly: true}
        | .mounts += [{destination:"/usr",type:"bind",source:"/usr",options:["rbind","ro"]}] + $extra
        | .process.args = ["fio", "--output-format=json", "--directory=/mnt", "--filename=fio.data",
            "--size=" + $size, "--runtime=" + $secs, "--time_based", "--direct=1",
            "--ioengine=libaio", "--group_reporting",
            "--name=seqwrite", "--rw=write", "--bs=1M", "--iodepth=4", "--stonewall",
            "--name=seqread", "--rw=read", "--bs=1M", "--iodepth=4", "--stonewall",
            "--name=randwrite", "--rw=randwrite", "--bs=4k", "--iodepth=16", "--stonewall",
            "--name=randread", "--rw=randread", "--bs=4k", "--iodepth=16", "--stonewall"]
        | .process.terminal = false' \
        "$WORK/bundle/config.json" >"$WORK/config.json"
    mkdir -p "$WORK/b-$1"
    cp "$WORK/config.json" "$WORK/b-$1/config.json"
}

# make_volume BACKEND: the volume `vol-BACKEND` (nothing for host); prints hull's
# refusal and returns 1 when it cannot.
make_volume() {
    local args
    case $1 in
        host) return 0 ;;
        raw-loop) args=(--format raw) ;;
        qcow2-fuse) args=(--format qcow2) ;;
        remote-nbd)
            [ -n "$NBD_PID" ] || { echo "qemu-nbd missing (qemu-utils)"; return 1; }
            args=(--remote "nbd://127.0.0.1:$NBD_PORT/vol")
            ;;
    esac
    # hull's message without its log decoration.
    "${H[@]}" volume create "vol-$1" --size 4G "${args[@]}" 2>&1 >/dev/null |
        sed 's/^time=.* msg="\(.*\)"$/\1/'
    return "${PIPESTATUS[0]}"
}

# The storage server of remote-nbd: qemu-nbd serving a qcow2 on 127.0.0.1.
if [[ " $BACKENDS " == *" remote-nbd "* ]] && command -v qemu-nbd >/dev/null; then
    qemu-img create -q -f qcow2 "$WORK/remote.qcow2" 4G
    # Persistent and shared: hull connects once to size the export, once
    # to format it, and once per attach.
    NBD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    qemu-nbd --fork --persistent --shared=4 --pid-file="$WORK/nbd.pid" -b 127.0.0.1 \
        -p "$NBD_PORT" -x vol -f qcow2 "$WORK/remote.qcow2"
    NBD_PID=$(cat "$WORK/nbd.pid")
fi

# run BACKEND REP: fio's JSON of one rep in $WORK/BACKEND.REP.json.
run() {
    local vol=()
    [ "$1" = host ] || vol=(-v "vol-$1:/mnt")
    rm -f "$WORK/hostdir/fio.data"
    "${H[@]}" run "${vol[@]}" --bundle "$WORK/b-$1" "$ID" >"$WORK/$1.$2.json"
}

declare -A SKIPPED
for b in $BACKENDS; do
    config "$b"
    if ! why=$(make_volume "$b"); then
        SKIPPED[$b]=$(echo "$why" | tail -1)
        echo "volumes.sh: $b skipped: ${SKIPPED[$b]}" >&2
    fi
done
for rep in $(seq 1 "$REPS"); do
    for b in $BACKENDS; do
        [ -z "${SKIPPED[$b]:-}" ] || continue
        echo "volumes.sh: rep $rep: $b" >&2
        run "$b" "$rep"
    done
done

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A HOST_IOPS
table() {
    echo "| backend | job | MiB/s | IOPS | × host | p99 latency (µs) |"
    echo "|---|---|---:|---:|---:|---:|"
    for b in $BACKENDS; do
        if [ -n "${SKIPPED[$b]:-}" ]; then
            echo "| $b | (skipped: ${SKIPPED[$b]}) | | | | |"
            continue
        fi
        for j in $JOBS; do
            local side=read
            [[ $j == *write ]] && side=write
            local f=(); for rep in $(seq 1 "$REPS"); do f+=("$WORK/$b.$rep.json"); done
            bw=$(jq -r --arg j "$j" --arg s "$side" '.jobs[] | select(.jobname==$j) | .[$s].bw / 1024' "${f[@]}" | median)
            iops=$(jq -r --arg j "$j" --arg s "$side" '.jobs[] | select(.jobname==$j) | .[$s].iops' "${f[@]}" | median)
            p99=$(jq -r --arg j "$j" --arg s "$side" '.jobs[] | select(.jobname==$j) | .[$s].clat_ns.percentile["99.000000"] / 1000' "${f[@]}" | median)
            [ "$b" = host ] && HOST_IOPS[$j]=$iops
            ratio=$(awk -v a="$iops" -v h="${HOST_IOPS[$j]:-}" 'BEGIN {if (h > 0) printf "%.2f", a / h; else print "-"}')
            printf '| %s | %s | %.0f | %.0f | %s | %.0f |\n' "$b" "$j" "$bw" "$iops" "$ratio" "$p99"
        done
    done
}

TABLE=$(table)
echo "$TABLE"
if [ -n "${RESULTS:-}" ]; then
    {
        echo "# Volume I/O: fio inside a container"
        echo
        echo "\`benches/volumes.sh\` (SIZE=$SIZE SECS=$SECS REPS=$REPS), $(uname -r), $(nproc) CPUs,"
        echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)."
        echo
        echo "$TABLE"
    } >"$RESULTS"
fi
