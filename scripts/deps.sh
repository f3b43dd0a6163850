#!/bin/bash
# deps.sh: installs the Debian packages hull's demo, tests and quick benchmark
# need, if missing. One list (below) serves both installing and checking:
#
#   scripts/deps.sh                  install what is missing (root: apt-get)
#   scripts/deps.sh --check NAME...  exit 0 if each NAME is present, else name
#                                    the package and exit 1 (tests use this)
#   scripts/deps.sh --list           the names, one per line
set -euo pipefail

# NAME PACKAGE: what the tests, the demo and `QUICK=1 benches/startup.sh` use.
DEPS=(
    "busybox busybox-static"       # the fixture's rootfs: must be static
    "jq jq"
    "curl curl"
    "ip iproute2"
    "ss iproute2"
    "nft nftables"
    "iptables iptables"
    "socat socat"
    # tests/overlay.rs: a private etcd (v3 API) the hosts of an overlay
    # network agree through; iperf3 across it (benches/overlay.sh).
    "etcd etcd-server"
    "etcdctl etcd-client"
    "bridge iproute2"
    "iperf3 iperf3"
    "strace strace"                # tests/crash_safety: kills hull at each system call
    "dig dnsutils"                 # tests/dns.rs: queries from the host
    "cni-plugins containernetworking-plugins" # tests/cni/coexist.rs: bridge, portmap, host-local
    "unshare util-linux"
    "nsenter util-linux"
    "mount mount"
    "hyperfine hyperfine"
    "time time"                    # /usr/bin/time: peak RSS of a run
    "strace strace"                # tests/runc_parity: the writes an update makes
    "python3 python3"              # benches/report.py
    "runc runc"                    # the quick benchmark compares against it
    "crun crun"                    # and against crun
    # The systemd driver's tests boot systemd in throwaway namespaces
    # (fixtures/systemd/boot.sh); installing them starts neither.
    "systemd systemd"
    "dbus-daemon dbus"
    "script bsdutils"
    # Podman's default seccomp profile (tests/seccomp.rs, the quick benchmark).
    "seccomp-profile golang-github-containers-common"
    # The engines tests/engines drives with hull, each started privately by
    # the test (installing them starts no service: see below).
    "dockerd docker.io"
    "docker docker.io"
    "containerd containerd"
    "ctr containerd"
    "containerd-shim-runc-v2 containerd"
    "podman podman"
    "conmon conmon"
    # The CRI client of tests/engines is generated from CRI's .proto at build time.
    "protoc protobuf-compiler"
    # The run-time libraries of the CRIU build tests/checkpoint.rs runs
    # (../shared/tools/criu; see its README), by soname.
    "libbsd.so.0 libbsd0"
    "libgnutls.so.30 libgnutls30"
    "libnftables.so.1 libnftables1"
    "libprotobuf-c.so.1 libprotobuf-c1"
    "libnl-3.so.200 libnl-3-200"
    "libnet.so.1 libnet1"
    "libuuid.so.1 libuuid1"
    # blockimg's tests: qemu-img checks and converts the qcow2 images hull
    # writes; qemu-nbd serves one to hull's NBD client.
    "qemu-img qemu-utils"
    "qemu-io qemu-utils"
    "qemu-nbd qemu-utils"
    "mkfs.ext4 e2fsprogs"          # tests/blockimg: a filesystem on a volume
    "debugfs e2fsprogs"            # and reading it back out of the image
    "tar tar"
    "gzip gzip"
    # Volumes (tests/volumes.rs): the filesystems of their images, and the
    # I/O benchmark (benches/volumes.sh).
    "mkfs.ext4 e2fsprogs"
    "mkfs.xfs xfsprogs"
    "fio fio"
)

# have NAME: whether NAME is installed as the tests need it.
have() {
    case $1 in
        busybox) [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ;;
        cni-plugins)
            local p
            for p in bridge portmap host-local loopback; do
                [ -x "/usr/lib/cni/$p" ] || return 1
            done
            ;;
        time) [ -x /usr/bin/time ] ;;
        *.so.*) [[ $(ldconfig -p) == *$'\t'"$1 ("* ]] ;; # a library, by soname
        systemd) [ -x /usr/lib/systemd/systemd ] ;;
        dbus-daemon) [ -x /usr/bin/dbus-daemon ] ;;
        seccomp-profile) [ -f /usr/share/containers/seccomp.json ] ;;
        dockerd) [ -x /usr/sbin/dockerd ] ;;
        mkfs.*) [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
        conmon) [ -x /usr/bin/conmon ] || [ -x /usr/libexec/podman/conmon ] ;;
        *) command -v "$1" >/dev/null ;;
    esac
}

# package NAME: its package, or nothing if NAME is not in the list.
package() {
    local entry
    for entry in "${DEPS[@]}"; do
        if [ "${entry%% *}" = "$1" ]; then
            echo "${entry#* }"
            return
        fi
    done
}

case ${1:-} in
    --check)
        shift
        [ $# -gt 0 ] || { echo "usage: $0 --check NAME..." >&2; exit 2; }
        rc=0
        for name in "$@"; do
            pkg=$(package "$name")
            if [ -z "$pkg" ]; then
                echo "deps: $name is not in scripts/deps.sh's list" >&2
                rc=2
            elif ! have "$name"; then
                echo "deps: $name is missing: run scripts/deps.sh (as root) to install $pkg" >&2
                if [ "$rc" = 0 ]; then rc=1; fi
            fi
        done
        exit "$rc"
        ;;
    --list)
        for entry in "${DEPS[@]}"; do echo "${entry%% *}"; done
        exit 0
        ;;
    "") ;;
    *) echo "usage: $0 [--check NAME... | --list]" >&2; exit 2 ;;
esac

need=()
for entry in "${DEPS[@]}"; do
    have "${entry%% *}" && continue
    pkg=${entry#* }
    [[ " ${need[*]} " == *" $pkg "* ]] || need+=("$pkg")
done
[ ${#need[@]} -gt 0 ] || exit 0
[ "$(id -u)" = 0 ] || { echo "deps: missing ${need[*]}; run scripts/deps.sh as root to install them" >&2; exit 1; }
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Installing an engine must not start it as a system service: refuse
# service starts for the duration (Debian's policy-rc.d convention),
# unless a policy is already in place.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q >/dev/null
apt-get install -y -q "${need[@]}" >/dev/null
