#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (every label but bench):
#   1. Release build: unit, oracle, integration and drill tests;
#   2. ASan + UBSan build: the unit tests again, so memory errors fail the run;
#   3. every libFuzzer target (clang, ASan + UBSan) for CTSYNC_FUZZ_SECONDS (default 10) each.
# Exits non-zero on any failure. Drill tests need root and network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
deploy/build.sh release
deploy/build.sh asan

status=0
echo "== Release: all tests except bench"
ctest --test-dir build -LE bench --output-on-failure -j2 || status=1
echo "== ASan+UBSan: unit tests"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j2 || status=1
echo "== libFuzzer targets, ${CTSYNC_FUZZ_SECONDS:-10} s each"
deploy/fuzz.sh "${CTSYNC_FUZZ_SECONDS:-10}" || status=1
exit $status
