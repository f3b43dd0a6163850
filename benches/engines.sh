#!/bin/bash
# engines.sh HULL [ROUNDS]: what a container start costs through the engines
# people run, with hull, runc and crun as each engine's runtime.
#
# Each engine is started once, private (its own roots, sockets and cgroup
# parent, all named hull-bench-*), with every runtime registered under its
# own name; then ROUNDS rounds (default 20), each timing one start per engine
# and runtime, the runtimes' order rotated from round to round:
#   docker   `docker run --rm --network none IMG /bin/true` (dockerd 20.10,
#            runtimes --add-runtime hull / crun, runc its default)
#   ctr      `ctr run --rm --runc-binary RT IMG ID /bin/true` (containerd 1.6,
#            containerd-shim-runc-v2)
#   podman   `podman run --rm --network none --runtime NAME IMG /bin/true`
#            (podman 4.3 + conmon; containers.conf names the runtimes)
#   cri      RunPodSandbox + CreateContainer + StartContainer until it
#            answers, with the runtime handler named hull, runc or crun, on
#            the same containerd as ctr (its CRI plugin; host network, so no
#            CNI plugin runs: benches/network.sh measures those), by
#            benches/examples/cri_start.rs through the tests' CRI client
# Then TRACE_ROUNDS rounds (default 3) with every runtime behind a wrapper
# that logs when each runtime call starts and ends (registered as
# <name>-traced; the wrapper's own fork and exec, about 1 ms a call, is in
# those rounds only): where an engine's time goes besides the runtime.
#
# Everything runs in a private mount namespace whose cgroup2 mount at
# /sys/fs/cgroup/unified is covered by a tmpfs (a pure cgroup-v1 view, as
# startup.sh's -v1 variants): crun 1.8 refuses this host's hybrid layout.
#
# Output in $OUT (default /tmp/hull-bench-results/engines-<time>):
#   samples.tsv   engine<TAB>runtime<TAB>microseconds
#   trace.tsv     engine<TAB>runtime<TAB>round<TAB>what<TAB>start_us<TAB>end_us
#                 (what: "total" for the client call, else the runtime call)
# benches/engines_report.py OUT prints the tables. Needs root.
set -uo pipefail
export LC_ALL=C

[ $# -ge 1 ] || { echo "usage: $0 HULL [ROUNDS]" >&2; exit 2; }
BENCHES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORKSPACE=$(dirname "$BENCHES")

if [ -z "${ENGINES_UNIFIED_HIDDEN:-}" ]; then
    exec unshare --mount --propagation private -- env ENGINES_UNIFIED_HIDDEN=1 bash -c '
        if mountpoint -q /sys/fs/cgroup/unified; then
            umount /sys/fs/cgroup/unified &&
                mount -t tmpfs -o size=16m,mode=755 hull-bench-unified /sys/fs/cgroup/unified || exit 1
        fi
        exec "$0" "$@"' "${BASH_SOURCE[0]}" "$@"
fi

HULL=$(readlink -f "$1")
ROUNDS=${2:-20}
TRACE_ROUNDS=${TRACE_ROUNDS:-3}
RUNC=$(command -v runc) CRUN=$(command -v crun)
DOCKER=/usr/bin/docker # Debian's docker.io CLI, whatever else is on PATH
OUT=${OUT:-/tmp/hull-bench-results/engines-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/samples.tsv"
: >"$OUT/trace.tsv"

die() { echo "engines: $*" >&2; exit 1; }
log() { echo "engines: $*" >&2; }
for p in "$DOCKER" /usr/sbin/dockerd /usr/bin/containerd /usr/bin/ctr /usr/bin/podman /usr/bin/conmon "$RUNC" "$CRUN"; do
    [ -x "$p" ] || die "$p is missing (scripts/deps.sh installs the engines)"
done
[ -x "$HULL" ] || die "$HULL is not executable"

NAME=hull-bench-$$
W=$(mktemp -d "/tmp/$NAME.XXXXXX")
RUN=/run/$NAME
mkdir -p "$RUN" "$W/bin"
RUNDIRS_BEFORE=$(ls -d /run/docker /run/docker/plugins /run/containerd /run/containerd/s 2>/dev/null)
DPID= CPID=

now() { local _now=$EPOCHREALTIME; printf -v "$1" "%s" "${_now/./}"; }

# ---- runtimes: by name, and the traced wrappers ------------------------------
declare -A RT=([hull]=$HULL [runc]=$RUNC [crun]=$CRUN)
RUNTIMES=(hull runc crun)
# The wrapper logs "<start_us> <end_us> <args>" for every call of the
# runtime, then exits with its status. Engines keep their environment for
# the runtime; the log path is written into the wrapper itself.
for rt in "${RUNTIMES[@]}"; do
    cat >"$W/bin/$rt-traced" <<EOF
#!/bin/bash
s=\$EPOCHREALTIME
"${RT[$rt]}" "\$@"
rc=\$?
e=\$EPOCHREALTIME
echo "\${s/./} \${e/./} \$*" >>"$W/calls.log"
exit \$rc
EOF
    chmod +x "$W/bin/$rt-traced"
done

# ---- teardown, however it ends ------------------------------------------------
finish() {
    set +e
    if [ -n "$DPID" ]; then
        for id in $(docker_cli ps -aq 2>/dev/null); do docker_cli rm -f "$id" >/dev/null 2>&1; done
        kill "$DPID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ -n "$CPID" ]; then
        ctr_ns default task ls -q 2>/dev/null | while read -r id; do ctr_ns default task kill -s KILL "$id"; done
        for ns in default k8s.io; do
            for id in $(ctr_ns "$ns" container ls -q 2>/dev/null); do
                ctr_ns "$ns" task delete --force "$id" >/dev/null 2>&1
                ctr_ns "$ns" container delete "$id" >/dev/null 2>&1
            done
        done
        kill "$CPID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    fi
    podman_cli rm -af >/dev/null 2>&1
    for m in $(awk -v w="$W" -v r="$RUN" 'index($5, w) == 1 || index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    rm -rf "$W" "$RUN"
    for d in /run/containerd/s /run/containerd /run/docker/plugins /run/docker; do
        grep -qx "$d" <<<"$RUNDIRS_BEFORE" || rmdir "$d" 2>/dev/null
    done
    for c in /sys/fs/cgroup/*/"$NAME"; do
        [ -d "$c" ] || continue
        find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
    done
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---- the image: the fixture's busybox rootfs ---------------------------------
"$WORKSPACE/fixtures/make-bundle.sh" "$W/bundle" "$HULL" >/dev/null || die "cannot build the fixture rootfs"
tar -C "$W/bundle/rootfs" -cf "$W/rootfs.tar" . || die "cannot pack the rootfs"
IMAGE=hull-bench-busybox
PAUSE=hull-bench-pause

# ---- docker: one dockerd (and its own containerd) -----------------------------
docker_cli() { DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$W/docker-cli "$DOCKER" "$@"; }
echo '{}' >"$W/daemon.json"
/usr/sbin/dockerd --config-file "$W/daemon.json" --data-root "$W/docker" --exec-root "$RUN/docker" \
    --pidfile "$RUN/dockerd.pid" --host "unix://$RUN/docker.sock" \
    --add-runtime "hull=$HULL" --add-runtime "crun=$CRUN" \
    --add-runtime "hull-traced=$W/bin/hull-traced" --add-runtime "runc-traced=$W/bin/runc-traced" \
    --add-runtime "crun-traced=$W/bin/crun-traced" \
    --bridge none --iptables=false --ip-forward=false --ip-masq=false \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$NAME/docker" \
    --storage-driver overlay2 >"$W/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do docker_cli version >/dev/null 2>&1 && break; sleep 0.1; done
docker_cli version >/dev/null 2>&1 || die "dockerd did not start: $(tail -5 "$W/dockerd.log")"
# An imported image has no environment: CRI (unlike docker and podman)
# then gives the process no PATH.
ENV_PATH='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
docker_cli import --change "$ENV_PATH" "$W/rootfs.tar" "$IMAGE" >/dev/null || die "docker import failed"
docker_cli import --change "$ENV_PATH" --change 'CMD ["sh", "-c", "trap \"exit 0\" TERM; while :; do sleep 1; done"]' \
    "$W/rootfs.tar" "$PAUSE" >/dev/null || die "docker import failed"
docker_cli save -o "$W/images.tar" "$IMAGE" "$PAUSE" || die "docker save failed"

# ---- containerd with its CRI plugin: ctr and CRI -------------------------------
CRI='plugins."io.containerd.grpc.v1.cri"'
{
    echo "version = 2"
    echo "root = \"$W/containerd\""
    echo "state = \"$RUN/containerd\""
    echo "[grpc]"
    echo "  address = \"$RUN/containerd.sock\""
    echo "[ttrpc]"
    echo "  address = \"$RUN/containerd.sock.ttrpc\""
    echo "[$CRI]"
    echo "  sandbox_image = \"docker.io/library/$PAUSE:latest\""
    echo "  stream_server_address = \"127.0.0.1\""
    echo "  stream_server_port = \"0\""
    # Sandboxes get oom_score_adj -998, which needs CAP_SYS_RESOURCE.
    echo "  restrict_oom_score_adj = true"
    echo "[$CRI.containerd]"
    echo "  default_runtime_name = \"runc\""
    echo "  snapshotter = \"overlayfs\""
    for rt in "${RUNTIMES[@]}"; do
        for name in "$rt" "$rt-traced"; do
            bin=${RT[$rt]}
            [ "$name" = "$rt" ] || bin=$W/bin/$name
            echo "[$CRI.containerd.runtimes.$name]"
            echo "  runtime_type = \"io.containerd.runc.v2\""
            echo "[$CRI.containerd.runtimes.$name.options]"
            echo "  BinaryName = \"$bin\""
            echo "  Root = \"$RUN/rt-$name\""
        done
    done
    echo "[$CRI.cni]"
    echo "  bin_dir = \"/usr/lib/cni\""
    echo "  conf_dir = \"$W/cni\""
} >"$W/containerd.toml"
mkdir -p "$W/cni"
/usr/bin/containerd --config "$W/containerd.toml" >"$W/containerd.log" 2>&1 &
CPID=$!
ctr_ns() { local ns=$1; shift; /usr/bin/ctr --address "$RUN/containerd.sock" -n "$ns" "$@"; }
for _ in $(seq 300); do ctr_ns default version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_ns default version >/dev/null 2>&1 || die "containerd did not start: $(tail -5 "$W/containerd.log")"
for ns in default k8s.io; do
    ctr_ns "$ns" image import "$W/images.tar" >/dev/null || die "ctr image import failed"
done
CTR_IMAGE=docker.io/library/$IMAGE:latest

# ---- podman: configuration naming the runtimes --------------------------------
mkdir -p "$W/podman" "$RUN/podman/tmp"
{
    echo "[containers]"
    # Podman's default rlimits need CAP_SYS_RESOURCE, which root lacks here.
    echo 'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]'
    echo "[engine]"
    echo 'cgroup_manager = "cgroupfs"'
    echo 'events_logger = "file"'
    echo "events_logfile_path = \"$W/podman/events.log\""
    echo 'runtime_supports_json = ["crun", "runc", "hull", "crun-traced", "runc-traced", "hull-traced"]'
    echo "[engine.runtimes]"
    for rt in "${RUNTIMES[@]}"; do
        echo "$rt = [\"${RT[$rt]}\"]"
        echo "$rt-traced = [\"$W/bin/$rt-traced\"]"
    done
} >"$W/podman/containers.conf"
printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' "$RUN/podman/run" "$W/podman/root" \
    >"$W/podman/storage.conf"
podman_cli() {
    CONTAINERS_CONF=$W/podman/containers.conf CONTAINERS_STORAGE_CONF=$W/podman/storage.conf \
        /usr/bin/podman --root "$W/podman/root" --runroot "$RUN/podman/run" --tmpdir "$RUN/podman/tmp" \
        --cgroup-manager cgroupfs "$@"
}
podman_cli import "$W/rootfs.tar" "$IMAGE" >/dev/null || die "podman import failed"

# ---- the CRI client ------------------------------------------------------------
(cd "$WORKSPACE" && cargo build -q --release -p hull-benches --example cri_start) || die "building cri_start failed"
CRI_START=$WORKSPACE/target/release/examples/cri_start

# ---- one start per engine -----------------------------------------------------
# start ENGINE RUNTIME-NAME ID: one container start through ENGINE, timed
# from the client's exec to its exit; the time in $took (us).
start() {
    local engine=$1 name=$2 id=$3 rt=${2%-traced} t0 t1 rc=0
    now t0
    case $engine in
        docker) docker_cli run --rm --network none --runtime "$name" "$IMAGE" /bin/true >/dev/null 2>"$W/err" || rc=$? ;;
        ctr)
            local bin=${RT[$rt]}
            [ "$name" = "$rt" ] || bin=$W/bin/$name
            ctr_ns default run --rm --runc-binary "$bin" --cgroup "/$NAME/ctr/$id" "$CTR_IMAGE" "$id" /bin/true \
                >/dev/null 2>"$W/err" || rc=$?
            ;;
        podman) podman_cli run --rm --network none --cgroup-parent "/$NAME/podman" --runtime "$name" "$IMAGE" /bin/true \
            >/dev/null 2>"$W/err" || rc=$? ;;
        cri) "$CRI_START" "$RUN/containerd.sock" "$name" "$id" "/$NAME/cri" >"$W/cri.out" 2>"$W/err" || rc=$? ;;
    esac
    now t1
    took=$((t1 - t0))
    [ "$rc" = 0 ] || die "$engine with $name: exit $rc: $(head -c 400 "$W/err")"
    # The CRI figure is the client's own timing of the three calls (not the
    # process start and connection, nor the teardown it does afterwards).
    if [ "$engine" = cri ]; then read -r took t0 t1 <"$W/cri.out"; fi
    took_from=$t0 took_to=$t1
}

ENGINES=(docker ctr podman cri)
# Warm-up: one untimed start per engine and runtime (first use of each
# image, snapshot and runtime binary).
for e in "${ENGINES[@]}"; do
    for rt in "${RUNTIMES[@]}"; do start "$e" "$rt" "warm-$e-$rt"; done
done
log "ROUNDS=$ROUNDS TRACE_ROUNDS=$TRACE_ROUNDS, raw results in $OUT"
for ((k = 0; k < ROUNDS; k++)); do
    s=$((k % 3))
    order=("${RUNTIMES[@]:s}" "${RUNTIMES[@]:0:s}")
    for e in "${ENGINES[@]}"; do
        for rt in "${order[@]}"; do
            start "$e" "$rt" "b-$k-$rt"
            printf '%s\t%s\t%s\n' "$e" "$rt" "$took" >>"$OUT/samples.tsv"
        done
    done
done

# ---- where the time goes: the traced rounds --------------------------------------
for ((k = 0; k < TRACE_ROUNDS; k++)); do
    for e in "${ENGINES[@]}"; do
        for rt in "${RUNTIMES[@]}"; do
            : >"$W/calls.log"
            start "$e" "$rt-traced" "t-$k-$rt"
            # Calls made after the client returned (podman's cleanup, a
            # shim's delete) still count: wait a little for them.
            sleep 0.5
            printf '%s\t%s\t%s\ttotal\t%s\t%s\n' "$e" "$rt" "$k" "$took_from" "$took_to" >>"$OUT/trace.tsv"
            while read -r s1 e1 args; do
                what=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^(create|start|delete|kill|state|run|exec|features|pause|resume|ps|update)$/) {print $i; exit}}' <<<"$args")
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$e" "$rt" "$k" "${what:-other}" "$s1" "$e1" >>"$OUT/trace.tsv"
            done <"$W/calls.log"
        done
    done
done
{
    echo "docker: $(docker_cli version --format '{{.Server.Version}}' 2>/dev/null)"
    echo "containerd: $(/usr/bin/containerd --version | awk '{print $3}')"
    echo "podman: $(podman_cli --version | awk '{print $3}'); conmon: $(/usr/bin/conmon --version | head -1 | awk '{print $3}')"
} >"$OUT/versions.txt"
log "done"
