#!/bin/bash
# test.sh: the whole test suite (unit + privileged integration tests, as root).
# Installs what it needs, builds once, then runs the tests in parallel.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: the integration tests run real containers and need root" >&2; exit 1; }
scripts/deps.sh
cargo build --workspace --all-targets
scripts/build-release.sh
fixtures/make-bundle.sh target/hull-test-fixture target/debug/hull >/dev/null
cargo test --workspace --no-fail-fast -- --test-threads "${TEST_THREADS:-8}"
# The startup benchmark in quick mode, so it cannot rot (goals are reported, not enforced).
QUICK=1 benches/startup.sh
