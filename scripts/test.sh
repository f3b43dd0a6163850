#!/bin/bash
# test.sh: the whole test suite (unit + privileged integration tests, as root;
# re-run with sudo if need be), then the startup benchmark in quick mode.
# Installs what it needs, builds once, then runs the tests in parallel.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/as-root.sh
as_root "$PWD/scripts/test.sh" "$@"

scripts/deps.sh
cargo build --workspace --all-targets
cargo build --release -p runtime-cli
# The fixture bundle lives outside the clone, where a container's mapped root
# and the rootless tests' user can reach it (see fixture() in tests/common).
HULL_TEST_FIXTURE=${HULL_TEST_FIXTURE:-${TMPDIR:-/tmp}/hull-test-fixture-$(printf %s "$PWD" | sha256sum | cut -c1-16)}
export HULL_TEST_FIXTURE
if [ -e "$HULL_TEST_FIXTURE" ] && { [ ! -O "$HULL_TEST_FIXTURE" ] || [ -n "$(find "$HULL_TEST_FIXTURE" -maxdepth 0 -perm /022)" ]; }; then
    echo "test.sh: $HULL_TEST_FIXTURE is not ours, or others may write to it: remove it" >&2
    exit 1
fi
if [ ! -f "$HULL_TEST_FIXTURE/config.json" ]; then
    rm -rf "$HULL_TEST_FIXTURE.tmp-$$"
    fixtures/make-bundle.sh "$HULL_TEST_FIXTURE.tmp-$$" target/debug/hull >/dev/null
    # Another run may have made it meanwhile; either copy is fine.
    mv -T "$HULL_TEST_FIXTURE.tmp-$$" "$HULL_TEST_FIXTURE" 2>/dev/null || rm -rf "$HULL_TEST_FIXTURE.tmp-$$"
fi
cargo test --workspace --no-fail-fast -- --test-threads "${TEST_THREADS:-8}"
# The startup benchmark in quick mode, so it cannot rot (goals are reported, not enforced).
QUICK=1 benches/startup.sh
