#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang + ASan + UBSan in build-fuzz, writes
# the seed corpora, and runs each target for SECONDS (default 60).
#
#   deploy/fuzz.sh [SECONDS] [TARGET...]     e.g. deploy/fuzz.sh 20 rules_parser_fuzz
#
# Installs nothing (clang and libclang-rt-14-dev come from deploy/install-deps.sh).
# Corpora grow under build-fuzz/corpus/<target> (kept between runs, seeds added each run);
# crashing inputs land in build-fuzz/crashes/<target>/ and logs in build-fuzz/logs/.
# Exits non-zero if any target crashed in this run (or the build failed).
# Environment: FUZZ_JOBS (build parallelism, default 2), FUZZ_RSS_MB (default 2048),
# FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_PER_TARGET=${1:-60}
shift || true
ALL_TARGETS=(packet_pipeline_fuzz rules_parser_fuzz config_parser_fuzz sync_datagram_fuzz
             store_reader_fuzz flow_codec_fuzz)
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then TARGETS=("${ALL_TARGETS[@]}"); fi

if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]]; then
  echo "fuzz.sh: SECONDS must be a whole number, not '$SECONDS_PER_TARGET'" >&2
  exit 2
fi
for t in "${TARGETS[@]}"; do
  if [[ ! -f tests/fuzz/$t.cc ]]; then
    echo "fuzz.sh: unknown target $t (have: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done
for tool in clang clang++ cmake ninja python3; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool missing (run deploy/install-deps.sh)" >&2; exit 2; }
done

# The whole tree gets the fuzzer's coverage instrumentation and the sanitizers; -O1 keeps
# the executions per second reasonable while the stacks stay readable.
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCTSYNC_FUZZ=ON -DCTSYNC_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DCMAKE_PROJECT_INCLUDE="$ROOT/tests/fuzz/fuzz_hook.cmake" >/dev/null
ninja -C "$BUILD" -j"${FUZZ_JOBS:-2}" "${TARGETS[@]}"

python3 tests/fuzz/make_seeds.py "$BUILD/corpus" >/dev/null
mkdir -p "$BUILD/logs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
printf '%-22s %8s %10s %8s %s\n' target seconds execs cov result
for t in "${TARGETS[@]}"; do
  crashes=$BUILD/crashes/$t
  mkdir -p "$crashes" "$BUILD/corpus/$t"
  dict=()
  case $t in
    rules_parser_fuzz) dict=(-dict="$ROOT/tests/fuzz/rules.dict") ;;
    config_parser_fuzz) dict=(-dict="$ROOT/tests/fuzz/config.dict") ;;
  esac
  log=$BUILD/logs/$t.log
  before=$(find "$crashes" -type f | wc -l)
  rc=0
  "$BUILD/bin/$t" "$BUILD/corpus/$t" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if ((rc != 0)) || (($(find "$crashes" -type f | wc -l) > before)); then
    result="CRASH (rc=$rc, see $log and $crashes)"
    status=1
  fi
  printf '%-22s %8s %10s %8s %s\n' "$t" "$SECONDS_PER_TARGET" "${execs:-?}" "${cov:-?}" "$result"
done
exit $status
