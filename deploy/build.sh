#!/usr/bin/env bash
# Configures and builds one tree. Usage: deploy/build.sh [release|asan]
#   release -> build/      (Release, everything incl. benchmarks)
#   asan    -> build-asan/ (Debug + AddressSanitizer + UndefinedBehaviorSanitizer)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=${CTSYNC_JOBS:-2}
case "$kind" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DCTSYNC_SANITIZE=ON -DCTSYNC_BUILD_BENCH=OFF) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j"$jobs"
