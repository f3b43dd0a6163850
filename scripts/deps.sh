#!/bin/bash
# deps.sh: installs the Debian packages hull's demo and tests need, if missing.
set -euo pipefail

need=()
command -v busybox >/dev/null && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v iptables >/dev/null || need+=(iptables)
command -v socat >/dev/null || need+=(socat)
# The CNI reference plugins (tests/coexist.rs runs bridge, portmap, host-local).
for p in bridge portmap host-local; do
    [ -x "/usr/lib/cni/$p" ] || { need+=(containernetworking-plugins); break; }
done
command -v unshare >/dev/null || need+=(util-linux)
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v mount >/dev/null || need+=(mount)
# The systemd driver's tests boot systemd in throwaway namespaces (fixtures/systemd/boot.sh);
# installing the packages does not start either of them.
[ -x /usr/lib/systemd/systemd ] || need+=(systemd)
[ -x /usr/bin/dbus-daemon ] || need+=(dbus)
command -v script >/dev/null || need+=(bsdutils)
# Podman's default seccomp profile (tests/seccomp.rs runs containers under it).
[ -f /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
# The engines tests/engines drives with hull (each started privately by the test).
engines=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || engines+=(docker.io)
[ -x /usr/bin/containerd ] && [ -x /usr/bin/ctr ] || engines+=(containerd)
[ -x /usr/bin/containerd-shim-runc-v2 ] || engines+=(containerd)
command -v podman >/dev/null || engines+=(podman)
[ -x /usr/bin/conmon ] || [ -x /usr/libexec/podman/conmon ] || engines+=(conmon)
[ -x /usr/sbin/runc ] || engines+=(runc)
# protoc: the CRI client of tests/engines is generated from CRI's .proto at build time.
command -v protoc >/dev/null || need+=(protobuf-compiler)
need+=("${engines[@]}")
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Installing an engine must not start it as a system service: refuse
    # service starts for the duration (Debian's policy-rc.d convention),
    # unless a policy is already in place.
    if [ ${#engines[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -q >/dev/null
    apt-get install -y -q "${need[@]}" >/dev/null
fi
