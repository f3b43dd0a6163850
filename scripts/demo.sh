#!/bin/bash
# demo.sh: builds hull and runs its main job: a busybox web server in a hull
# container on the default bridge network, published on 127.0.0.1:8080,
# fetched with curl, then cleaned up. Runs as root (re-run with sudo if need be).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/as-root.sh
as_root "$PWD/scripts/demo.sh" "$@"

scripts/deps.sh
cargo build --release -p runtime-cli
HULL=$PWD/target/release/hull
BUNDLE=$PWD/target/demo-bundle
ID=hull-demo-$$
fixtures/make-bundle.sh "$BUNDLE" "$HULL" >/dev/null
# The rootfs stays read-only; the page lives on a tmpfs at /srv.
jq '.process.args = ["sh", "-c", "echo \"hello from $(hostname), a hull container at $(ip -4 -o addr show eth0 | awk '\''{print $4}'\'')\" > /srv/index.html; exec httpd -f -p 80 -h /srv"]
    | .mounts += [{"destination": "/srv", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755", "size=1m"]}]' \
    "$BUNDLE/config.json" >"$BUNDLE/config.json.new" && mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"

cleanup() {
    "$HULL" delete --force "$ID" 2>/dev/null || true
    "$HULL" network rm hull 2>/dev/null || true
}
trap cleanup EXIT

"$HULL" run --detach --bundle "$BUNDLE" --publish 127.0.0.1:8080:80 "$ID"
for _ in $(seq 50); do
    if curl -fsS -m 2 http://127.0.0.1:8080/; then exit 0; fi
    sleep 0.1
done
echo "demo: no answer on 127.0.0.1:8080" >&2
exit 1
