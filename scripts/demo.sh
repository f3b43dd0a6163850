#!/bin/bash
# demo.sh: builds hull and runs its main job: a busybox container from the
# fixture bundle, in its own namespaces, printing what it sees.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh
cargo build --release -p runtime-cli
HULL=$PWD/target/release/hull
BUNDLE=$PWD/target/demo-bundle
fixtures/make-bundle.sh "$BUNDLE" "$HULL" >/dev/null
jq '.process.args = ["sh", "-c", "echo \"hello from $(hostname): pid $$, uid $(id -u), $(ls /bin | wc -l) busybox applets\"; cat /proc/self/status | grep -E \"^(CapEff|NoNewPrivs)\""]' \
    "$BUNDLE/config.json" >"$BUNDLE/config.json.new" && mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"
"$HULL" --root /run/hull-demo run --bundle "$BUNDLE" "hull-demo-$$"
