#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (every label but bench):
#   1. Release build: unit, oracle, integration (fault tests included) and drill tests;
#   2. ASan + UBSan build: the unit and integration tests again, so memory errors fail the run;
#   3. ThreadSanitizer build (only the threaded modules: sync, storage, the daemon, the
#      integration and fault tests, and conntrack for its event ring): their unit and
#      integration tests, so data races fail it;
#   4. every libFuzzer target (clang, ASan + UBSan) for CTSYNC_FUZZ_SECONDS (default 10) each.
# Exits non-zero on any failure. Drill and fault tests need root and network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
deploy/build.sh release
deploy/build.sh asan
deploy/build.sh tsan

status=0
step() { echo "== $1 ($(date -u +%H:%M:%S))"; }
step "Release: all tests except bench"
ctest --test-dir build -LE bench --output-on-failure -j2 || status=1
step "ASan+UBSan: unit and integration tests"
# Integration tests run one at a time here: they converge against real-time deadlines, and
# the sanitizers make every node several times slower.
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan -L unit --output-on-failure -j2 || status=1
ctest --test-dir build-asan -L integration --output-on-failure -j1 || status=1
step "ThreadSanitizer: sync, storage, ctsyncd, conntrack, integration and fault tests"
# Only the targets deploy/build.sh tsan builds have discovered tests; the others appear as
# <target>_NOT_BUILT without a label, so the label filter leaves them out.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
ctest --test-dir build-tsan -L unit --output-on-failure -j2 || status=1
ctest --test-dir build-tsan -L integration --output-on-failure -j1 || status=1
step "libFuzzer targets, ${CTSYNC_FUZZ_SECONDS:-10} s each"
deploy/fuzz.sh "${CTSYNC_FUZZ_SECONDS:-10}" || status=1
step "done"
exit $status
