#!/bin/bash
# Side-by-side replication benchmark: conntrackd FT-FW (kernel tables in network namespaces,
# measured by the reference harness /work/shared/anchors/conntrackd/bench_repl.sh, which
# creates and deletes its own namespaces ctb-*) and ctsync (tests/bench/sync_bench: two
# in-process nodes over loopback UDP), for the same N, in the same run.
#
# With CHURN=1, also the update/delete churn on N flows: conntrackd by the reference's
# bench_churn.sh (its upd and del phases; the loss phase at 0% and 2 s of real connections
# keep it short), ctsync by sync_bench's BM_ChurnReplication.
#
# usage: [BUILD=build-dir] [ANCHORS=dir] [CHURN=1] tests/bench/repl_vs_conntrackd.sh N [N ...]
# Needs root for the conntrackd half (skipped with a note otherwise). Prints RESULT lines.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BUILD=${BUILD:-$root/build}
ANCHORS=${ANCHORS:-/work/shared/anchors/conntrackd}
bench="$BUILD/bin/sync_bench"
[ $# -ge 1 ] || set -- 100000
[ -x "$bench" ] || { echo "missing $bench: build the sync_bench target (Release)" >&2; exit 1; }

# The conntrackd harness leaves the kernel tearing down its namespaces and their conntrack
# tables for a while after it returns; ctsync measured then would share the CPUs with that.
# Before each measurement (either side's), wait at most 60 s for a second in which the CPUs
# are at least 90% idle.
cpu_times() {  # prints "busy idle" jiffies of all CPUs
  local _ u n s i w q sq st
  read -r _ u n s i w q sq st _ < /proc/stat
  echo $((u + n + s + q + sq + st)) $((i + w))
}
settle() {
  local _ busy0 idle0 busy1 idle1
  for _ in $(seq 60); do
    read -r busy0 idle0 < <(cpu_times)
    sleep 1
    read -r busy1 idle1 < <(cpu_times)
    [ $(( (busy1 - busy0) * 10 )) -le $(( busy1 - busy0 + idle1 - idle0 )) ] && return
  done
  echo "settle: the machine stayed busy; figures below may be low" >&2
}

for N in "$@"; do
  echo "=== N=$N"
  settle
  if [ "$(id -u)" = 0 ] && command -v conntrackd >/dev/null && [ -x "$ANCHORS/bench_repl.sh" ]; then
    # FT-FW over multicast: event path (injector-bound) and the bulk path (-B), which is
    # the figure comparable to ctsync's bulk replication.
    MODE=FTFW TRANSPORT=Multicast "$ANCHORS/bench_repl.sh" "$N" 2>&1 |
      sed -n 's/^/conntrackd: /; /RESULT\|time_to_backup\|sync_link\|rss_kb\|bulk(-B)/p'
  else
    echo "conntrackd: skipped (needs root, conntrackd and $ANCHORS/bench_repl.sh)"
  fi
  settle
  "$bench" --benchmark_filter="BM_BulkReplication/$N/" --benchmark_counters_tabular=true 2>&1 |
    sed 's/^/ctsync: /'
  [ "${CHURN:-0}" = 1 ] || continue
  settle
  if [ "$(id -u)" = 0 ] && command -v conntrackd >/dev/null && [ -x "$ANCHORS/bench_churn.sh" ]; then
    MODE=FTFW TRANSPORT=Multicast REAL_S=2 "$ANCHORS/bench_churn.sh" "$N" 0 2>&1 |
      sed -n 's/^/conntrackd: /; /RESULT\|upd:\|del:/p'
  else
    echo "conntrackd: churn skipped (needs root, conntrackd and $ANCHORS/bench_churn.sh)"
  fi
  settle
  "$bench" --benchmark_filter="BM_ChurnReplication/$N/" --benchmark_counters_tabular=true 2>&1 |
    sed 's/^/ctsync: /'
done
