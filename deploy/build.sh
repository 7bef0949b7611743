#!/usr/bin/env bash
# Configures and builds one tree. Usage: deploy/build.sh [release|asan|tsan]
#   release -> build/      (Release, everything incl. benchmarks)
#   asan    -> build-asan/ (Debug + AddressSanitizer + UndefinedBehaviorSanitizer)
#   tsan    -> build-tsan/ (RelWithDebInfo + ThreadSanitizer; only the threaded modules'
#                           tests: sync, storage, the daemon, integration and fault tests,
#                           and conntrack's, for the event ring's two-thread test)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=${CTSYNC_JOBS:-2}
targets=()
case "$kind" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DCTSYNC_SANITIZE=ON -DCTSYNC_BUILD_BENCH=OFF) ;;
  tsan)
    dir=build-tsan
    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTSYNC_TSAN=ON -DCTSYNC_BUILD_BENCH=OFF)
    targets=(--target ctsync_sync_tests ctsync_storage_tests ctsync_tools_ctsyncd_tests
             sync_integration_tests fault_tests ctsync_core_conntrack_tests) ;;
  *) echo "usage: $0 [release|asan|tsan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j"$jobs" "${targets[@]}"
