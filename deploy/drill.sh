#!/usr/bin/env bash
# ctsync failover drill: proves that NATed flows survive the loss of the active firewall.
#
# Builds, with network namespaces (all named ctd-*), a client on a LAN segment, a server on a
# WAN segment, and two ctsync firewalls (fw1, fw2) on both segments plus a dedicated sync link;
# keepalived (VRRP) on the firewalls decides which one is active and calls ctsyncctl through
# deploy/keepalived/ctsync-notify.sh. A TCP stream and a UDP stream run from the client to the
# server through the NAT while the drill breaks the active node in several ways (rounds):
#   kill   kill -9 fw1's ctsyncd and keepalived                     (fw2 must take over)
#   cut    set fw1's links down                                      (fw2 must take over)
#   cold   kill both nodes' daemons at once and start them again    (flows come back from
#          storage and sync; fw2 carries the traffic before, fw1 wins the election after)
# Before each round the pair is brought back to its baseline (restart, links up, resync,
# planned switchover to the node that must be active). Each round is reported as a table
# (survival, longest gap, NAT tuple before/after, flows per node, time to promotion) and an
# SVG of each stream's throughput; see deploy/drill/README.md.
#
# usage: deploy/drill.sh [--flows N] [--rounds kill,cut,cold] [--no-sync] [--expect-dead]
#                        [--out DIR] [--keep] [--advert-int S] [--pps N]
#                        [--ctsyncd PATH] [--ctsyncctl PATH]
#        deploy/drill.sh --cleanup      (remove namespaces and processes left by --keep)
# Exit: 0 every stream that should survive did (with --expect-dead: every stream died in
# every round, which is what the --no-sync control must show); 1 otherwise; 2 set-up error;
# 77 this machine cannot run a drill (not root, a tool missing): ctest counts it as skipped.
# Needs root. Touches nothing outside its namespaces, its --out directory and /run/ctd-drill.*.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIT=$ROOT/deploy/drill
NOTIFY=$ROOT/deploy/keepalived/ctsync-notify.sh
GUARD=$ROOT/deploy/systemd/ctsync-ingress-guard.nft

FLOWS=10000
ROUNDS=kill,cut,cold
SYNC=1
EXPECT_DEAD=0
OUT=$ROOT/build/drill
KEEP=0
ADVERT=0.1
PPS=20000
CTSYNCD=$ROOT/build/bin/ctsyncd
CTSYNCCTL=$ROOT/build/bin/ctsyncctl
NAMESPACES=(ctd-lan ctd-wan ctd-client ctd-server ctd-fw1 ctd-fw2)

usage() { sed -n '/^# usage:/,/^# Exit:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cleanup_leftovers() {
  local ns
  for ns in "${NAMESPACES[@]}"; do
    [[ -e /run/netns/$ns ]] || continue
    # Everything running in one of the drill's namespaces was started by a drill.
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

while (($#)); do
  case $1 in
    --flows) FLOWS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-sync) SYNC=0; shift ;;
    --expect-dead) EXPECT_DEAD=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --advert-int) ADVERT=$2; shift 2 ;;
    --pps) PPS=$2; shift 2 ;;
    --ctsyncd) CTSYNCD=$2; shift 2 ;;
    --ctsyncctl) CTSYNCCTL=$2; shift 2 ;;
    --cleanup)
      exec 8>/run/ctd-drill.lock
      flock -n 8 || { echo "drill: a drill is running; not cleaning up" >&2; exit 2; }
      cleanup_leftovers
      rm -rf /run/ctd-drill.??????
      exit 0
      ;;
    -h | --help) usage ;;
    *) echo "drill: unknown argument $1" >&2; usage ;;
  esac
done

fail_setup() { echo "drill: $*" >&2; exit 2; }
skip() { echo "drill: SKIP: $*" >&2; exit 77; }  # the environment cannot run a drill
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
[[ $FLOWS =~ ^[0-9]+$ ]] || fail_setup "--flows wants a number"
IFS=, read -r -a ROUND_LIST <<<"$ROUNDS"
for r in "${ROUND_LIST[@]}"; do
  [[ $r == kill || $r == cut || $r == cold ]] || fail_setup "unknown round '$r' (kill, cut, cold)"
done
for c in ip nft keepalived flock setsid python3 gnuplot; do
  command -v "$c" >/dev/null || skip "missing '$c' (deploy/install-deps.sh installs it)"
done
[[ -x $CTSYNCD ]] || fail_setup "no ctsyncd at $CTSYNCD (build first: deploy/build.sh release)"
[[ -x $CTSYNCCTL ]] || fail_setup "no ctsyncctl at $CTSYNCCTL"
CTSYNCD=$(readlink -f "$CTSYNCD")
CTSYNCCTL=$(readlink -f "$CTSYNCCTL")
PY=$(command -v python3)

# One drill at a time: the namespace names are fixed.
exec 8>/run/ctd-drill.lock
flock -n 8 || fail_setup "another drill is running (/run/ctd-drill.lock)"
cleanup_leftovers

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT"/{nodes,streams,events,plots} "$OUT"/report.* "$OUT"/drill.log
mkdir -p "$OUT"/{nodes/fw1,nodes/fw2,streams,events,plots}
# Unix socket paths are limited to 108 bytes, so sockets live in a short private directory.
RUN=$(mktemp -d /run/ctd-drill.XXXXXX)

declare -A PGID=()
now() { date +%s.%N; }
say() { printf '%s drill: %s\n' "$(date +%T.%3N)" "$*" | tee -a "$OUT/drill.log" >&2; }

cleanup() {
  local rc=$?
  set +e
  if ((KEEP)); then
    say "kept namespaces and processes (--keep); remove with: $0 --cleanup"
  else
    for k in "${!PGID[@]}"; do kill -9 -- "-${PGID[$k]}" 2>/dev/null; done
    cleanup_leftovers
    rm -rf "$RUN"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg KEY NAMESPACE LOG CMD...: starts CMD in the namespace as its own process group,
# so that killing KEY kills everything it spawned (keepalived's VRRP child, notify scripts).
start_bg() {
  local key=$1 ns=$2 log=$3
  shift 3
  # 8>&-: the drill's lock stays with this script; a child still dying after the drill
  # ends (a kill -9 does not wait) must not make the next drill find it taken.
  setsid ip netns exec "$ns" "$@" >>"$log" 2>&1 </dev/null 8>&- &
  PGID[$key]=$!
  disown  # its death is expected and checked with kill -0; no job-control noise
}
# stop_bg KEY [SIGNAL]: signals the group and waits (up to 5 s) for its leader to go.
stop_bg() {
  local key=$1 sig=${2:-TERM} pid=${PGID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -"$sig" -- "-$pid" 2>/dev/null || true
  # Gone = no member left that is not a zombie (reaping orphans is up to PID 1).
  for _ in $(seq 50); do ps -o stat= -g "$pid" 2>/dev/null | grep -qv '^Z' || break; sleep 0.1; done
  kill -9 -- "-$pid" 2>/dev/null || true
  unset "PGID[$key]"
}
running() { [[ -n ${PGID[$1]:-} ]] && kill -0 "${PGID[$1]}" 2>/dev/null; }

# wait_for SECONDS CMD...: polls CMD every 0.1 s; non-zero if it never succeeded.
wait_for() {
  local deadline
  deadline=$(awk -v n="$(now)" -v t="$1" 'BEGIN { printf "%.3f", n + t }')
  shift
  until "$@"; do
    awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }' && return 1
    sleep 0.1
  done
}

ctl() { local node=$1; shift; ip netns exec "ctd-$node" "$CTSYNCCTL" -S "$RUN/$node.sock" "$@"; }
node_state() { ctl "$1" state 2>/dev/null | tr -d '[:space:]' || true; }
is_active() { [[ $(node_state "$1") == active ]]; }
is_backup() { [[ $(node_state "$1") == backup ]]; }
other() { [[ $1 == fw1 ]] && echo fw2 || echo fw1; }
count_flows() { ctl "$1" dump "$2" 2>/dev/null | grep -c . || true; }
active_node() {
  local n
  for n in fw1 fw2; do is_active "$n" && { echo "$n"; return; }; done
  echo none
}

# ---------------------------------------------------------------- topology
mac() { printf '02:00:c7:%02x:%02x:%02x' "$1" "$2" "$3"; }

setup_topology() {
  say "building namespaces ${NAMESPACES[*]}"
  local ns
  for ns in "${NAMESPACES[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
      net.ipv6.conf.default.disable_ipv6=1
  done
  for seg in lan wan; do
    ip -n "ctd-$seg" link add br0 type bridge stp_state 0 mcast_snooping 0
    ip -n "ctd-$seg" link set br0 up
  done
  # port-name namespace peer-name peer-mac
  local spec
  for spec in "lan p-client ctd-client eth0 $(mac 0 1 10)" \
              "lan p-fw1 ctd-fw1 lan0 $(mac 1 1 1)" "lan p-fw2 ctd-fw2 lan0 $(mac 2 1 1)" \
              "wan p-server ctd-server eth0 $(mac 0 2 20)" \
              "wan p-fw1 ctd-fw1 wan0 $(mac 1 2 1)" "wan p-fw2 ctd-fw2 wan0 $(mac 2 2 1)"; do
    read -r seg port peer_ns peer mac_addr <<<"$spec"
    ip -n "ctd-$seg" link add "$port" type veth peer name "$peer" netns "$peer_ns"
    ip -n "$peer_ns" link set "$peer" address "$mac_addr"
    ip -n "ctd-$seg" link set "$port" master br0 up
    ip -n "$peer_ns" link set "$peer" up
  done
  ip -n ctd-fw1 link add sync0 type veth peer name sync0 netns ctd-fw2
  ip -n ctd-fw1 link set sync0 address "$(mac 1 3 1)" up
  ip -n ctd-fw2 link set sync0 address "$(mac 2 3 1)" up

  ip -n ctd-client addr add 192.0.2.10/24 dev eth0
  ip -n ctd-client route add default via 192.0.2.1
  # The flow generator's replies (from server ports 7000+) have no socket: drop them before
  # the client answers each with an ICMP port unreachable.
  ip netns exec ctd-client nft -f - <<'EOF'
table inet ctd_client {
  chain input { type filter hook input priority 0; policy accept; udp sport 7000-7999 drop; }
}
EOF
  ip -n ctd-server addr add 198.51.100.20/24 dev eth0
  ip -n ctd-server route add 203.0.113.0/24 dev eth0

  local n id
  for n in fw1 fw2; do
    id=${n#fw}
    ip -n "ctd-$n" addr add "192.0.2.$((id + 1))/24" dev lan0
    ip -n "ctd-$n" addr add "198.51.100.$((id + 1))/24" dev wan0
    ip -n "ctd-$n" addr add "203.0.113.$((248 + id))/30" dev sync0
    # ctsyncd forwards; the kernel must not, and sees only VRRP on the data links.
    ip netns exec "ctd-$n" sysctl -qw net.ipv4.ip_forward=0
    ip netns exec "ctd-$n" nft -D LAN=lan0 -D WAN=wan0 -f "$GUARD"
  done
}

write_configs() {
  local n id key=$RUN/sync.key
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key"
  echo >>"$key"
  chmod 600 "$key"
  local ct_max=$((FLOWS * 2 + 65536))
  for n in fw1 fw2; do
    id=${n#fw}
    mkdir -p "$OUT/nodes/$n/storage"
    sed -e "s|@NODE_ID@|$id|; s|@SOCK@|$RUN/$n.sock|; s|@LAN_ADDR@|192.0.2.$((id + 1))|" \
        -e "s|@WAN_ADDR@|198.51.100.$((id + 1))|; s|@RULES@|$KIT/rules.v4|" \
        -e "s|@CT_MAX@|$ct_max|; s|@STORAGE@|$OUT/nodes/$n/storage|" \
        "$KIT/ctsyncd.conf.in" >"$OUT/nodes/$n/ctsyncd.conf"
    if ((SYNC)); then
      cat >>"$OUT/nodes/$n/ctsyncd.conf" <<EOF
sync-key-file $key
sync-mode reliable
sync-link udp local 203.0.113.$((248 + id)) port 3780 peer 203.0.113.$((248 + 3 - id))
EOF
    fi
    sed -e "s|@NODE@|ctd-$n|; s|@NOTIFY@|$NOTIFY|; s|@CTL@|$CTSYNCCTL|; s|@SOCK@|$RUN/$n.sock|" \
        -e "s|@NOTIFY_LOG@|$OUT/nodes/$n/notify.log|; s|@ADVERT@|$ADVERT|" \
        -e "s|@PRIORITY@|$((id == 1 ? 150 : 100))|" \
        "$KIT/keepalived.conf.in" >"$OUT/nodes/$n/keepalived.conf"
  done
}

# ---------------------------------------------------------------- nodes
start_ctsyncd() {
  local n=$1
  say "$n: starting ctsyncd"
  echo "=== $(date -u +%FT%T.%3NZ) start" >>"$OUT/nodes/$n/ctsyncd.log"
  start_bg "$n-ctsyncd" "ctd-$n" "$OUT/nodes/$n/ctsyncd.log" \
    "$CTSYNCD" -c "$OUT/nodes/$n/ctsyncd.conf"
}
wait_ctsyncd() {
  local n=$1
  if ! wait_for 30 is_backup_or_active "$n"; then
    tail -20 "$OUT/nodes/$n/ctsyncd.log" >&2
    fail_setup "$n: ctsyncd did not come up"
  fi
}
is_backup_or_active() { local s; s=$(node_state "$1"); [[ $s == backup || $s == active ]]; }
start_keepalived() {
  local n=$1
  say "$n: starting keepalived"
  # A crashed keepalived leaves its pid files; a pid reused since would block the start.
  rm -f "$RUN/$n-keepalived.pid" "$RUN/$n-vrrp.pid"
  start_bg "$n-keepalived" "ctd-$n" "$OUT/nodes/$n/keepalived.log" keepalived --vrrp --dont-fork \
    --log-console --log-detail --no-syslog -f "$OUT/nodes/$n/keepalived.conf" \
    -p "$RUN/$n-keepalived.pid" -r "$RUN/$n-vrrp.pid"
}
kill_node() {  # a crash: no goodbye advert, no demote
  local n=$1
  stop_bg "$n-keepalived" 9
  stop_bg "$n-ctsyncd" 9
}
links() {
  local n=$1 state=$2 l
  for l in lan0 wan0 sync0; do ip -n "ctd-$n" link set "$l" "$state"; done
}

# Waits until the backup holds the active node's flows (sync) and returns the seconds waited.
wait_sync() {
  local active=$1 backup t0 want
  backup=$(other "$active")
  t0=$(now)
  ((SYNC)) || { echo 0; return; }
  # Within 1%: the live table may hold a few flows that are not replicated yet or any more.
  want=$(($(count_flows "$active" live) * 99 / 100))
  # Each check dumps the whole external cache, so poll once a second, not faster.
  local limit=$((60 + FLOWS / 10000)) waited=0
  until synced "$backup" "$want"; do
    if ((waited >= limit)); then
      say "WARNING: $backup holds $(count_flows "$backup" external) of $want flows after ${limit}s"
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}
synced() { (($(count_flows "$1" external) >= $2)); }

# Brings both nodes up (daemons, links) with $1 active, by a planned switchover if needed.
baseline() {
  local want=$1 n returned=()
  for n in fw1 fw2; do
    if ! ip -n "ctd-$n" link show lan0 | grep -q 'state UP'; then
      say "$n: links up"
      links "$n" up
      returned+=("$n")
    fi
    running "$n-ctsyncd" || { start_ctsyncd "$n"; returned+=("$n"); }
  done
  for n in fw1 fw2; do wait_ctsyncd "$n"; done
  # A node that comes back asks its peer for everything it missed (conntrackd -n).
  if ((SYNC)); then
    for n in "${returned[@]}"; do
      ctl "$n" -n >/dev/null 2>&1 || say "$n: resync request failed"
    done
  fi
  local act
  act=$(active_node)
  if [[ $act == none ]]; then
    # Nobody active (first start, or both restarted): the keepalived of the node that must
    # win starts first; its shorter master-down timer (higher priority) makes it MASTER.
    running "$want-keepalived" || start_keepalived "$want"
    wait_for 15 is_active "$want" || fail_setup "$want did not become active"
  fi
  for n in fw1 fw2; do running "$n-keepalived" || start_keepalived "$n"; done
  act=$(active_node)
  if [[ $act != "$want" ]]; then
    say "planned switchover $act -> $want (stop $act's keepalived: priority-0 advert)"
    wait_sync "$act" >/dev/null
    # Live streams make the switchover an event of the report: it must not hurt them either.
    local observe=0 t_fail
    ((GEN > 0)) && ! stream_dead && observe=1
    ((observe)) && event_begin "switchover-to-$want" switchover "$act" "$want"
    t_fail=$(now)
    stop_bg "$act-keepalived" TERM
    wait_for 15 is_active "$want" || fail_setup "switchover to $want failed"
    wait_for 10 is_backup "$act" || say "WARNING: $act still $(node_state "$act") after switchover"
    start_keepalived "$act"
    ((observe)) && event_observe "$t_fail" "$want"
  fi
  local peer
  peer=$(other "$want")
  wait_for 10 is_backup "$peer" || say "WARNING: $peer is $(node_state "$peer")"
}

# ---------------------------------------------------------------- traffic
GEN=0
start_servers() {
  local s=$OUT/streams
  start_bg server-tcp ctd-server "$s/server-tcp.err" \
    "$PY" "$KIT/stream.py" tcp-server --port 5001 --log "$s/tcp.log"
  start_bg server-udp ctd-server "$s/server-udp.err" \
    "$PY" "$KIT/stream.py" udp-server --port 5002 --log "$s/udp-sent.log"
  start_bg responder ctd-server "$s/responder.err" "$PY" "$KIT/flowgen.py" respond --flows "$FLOWS"
  start_bg arp-client ctd-client "$s/arp.err" \
    "$PY" "$KIT/arpwatch.py" --dev eth0 --log "$s/arp-lan.log"
  start_bg arp-server ctd-server "$s/arp.err" \
    "$PY" "$KIT/arpwatch.py" --dev eth0 --log "$s/arp-wan.log"
  sleep 0.5
}
start_streams() {
  # The previous generation is dead: its clients would only keep knocking.
  stop_bg "tcp-$GEN" KILL
  stop_bg "udp-$GEN" KILL
  GEN=$((GEN + 1))
  local s=$OUT/streams
  say "starting streams generation $GEN (tcp client port $((40000 + GEN)), udp $((41000 + GEN)))"
  start_bg "tcp-$GEN" ctd-client "$s/tcp-client-$GEN.err" "$PY" "$KIT/stream.py" tcp-client \
    --server 198.51.100.20 --port 5001 --bind-port $((40000 + GEN)) --gen "$GEN" \
    --log "$s/tcp-client-$GEN.log"
  start_bg "udp-$GEN" ctd-client "$s/udp-client-$GEN.err" "$PY" "$KIT/stream.py" udp-client \
    --server 198.51.100.20 --port 5002 --bind-port $((41000 + GEN)) --gen "$GEN" \
    --log "$s/udp-$GEN.log"
  wait_for 15 streams_flowing || fail_setup "streams of generation $GEN do not flow (see $s)"
}
# delivered LOG COLUMN T OFFSET: the log (tcp.log: records of the current generation only)
# has a data record whose COLUMN (1 = arrival, 4 = send time) is later than T + OFFSET.
delivered() {
  [[ -f $1 ]] || return 1
  local g=
  [[ $1 == */tcp.log ]] && g=$GEN
  tail -n 2000 "$1" | awk -v c="$2" -v t="$3" -v o="$4" -v g="$g" \
    '$3 ~ /^[0-9]+$/ && (g == "" || $2 == g) && $c > t + o { f = 1 } END { exit !f }'
}
# Both streams of the current generation delivered a record in the last second.
streams_flowing() {
  local t
  t=$(now)
  delivered "$OUT/streams/tcp.log" 1 "$t" -1 && delivered "$OUT/streams/udp-$GEN.log" 1 "$t" -1
}
# A TCP error was logged, or a stream delivered nothing in the last 10 s.
stream_dead() {
  local t
  t=$(now)
  grep -q ERROR "$OUT/streams/tcp-client-$GEN.log" 2>/dev/null && return 0
  ! delivered "$OUT/streams/tcp.log" 1 "$t" -10 ||
    ! delivered "$OUT/streams/udp-$GEN.log" 1 "$t" -10
}
# Records sent after T arrived on both streams.
resumed_after() {
  delivered "$OUT/streams/tcp.log" 4 "$1" 0 && delivered "$OUT/streams/udp-$GEN.log" 4 "$1" 0
}

# The first run sends every flow twice (replied and still active after 2 s = ASSURED, long
# timeout); later runs refresh the same flows once, so they are alive at each failure.
generate_flows() {  # PASSES
  ((FLOWS > 0)) || { echo '{"flows": 0, "seconds": 0}'; return; }
  ip netns exec ctd-client "$PY" "$KIT/flowgen.py" send --flows "$FLOWS" --pps "$PPS" --passes "$1"
}

# ---------------------------------------------------------------- events (rounds, switchovers)
EV=0
EVDIR=
event_begin() {  # NAME KIND FROM TO
  EV=$((EV + 1))
  EVDIR=$OUT/events/$(printf '%02d' "$EV")-$1
  mkdir -p "$EVDIR"
  {
    echo "name=$1"; echo "kind=$2"; echo "from=$3"; echo "expected_active=$4"
    echo "gen=$GEN"; echo "sync=$SYNC"; echo "flows_requested=$FLOWS"
  } >"$EVDIR/event.env"
  snapshot before
}
# snapshot TAG: flow counts and the streams' table lines on each node that answers.
snapshot() {
  local tag=$1 n tmp
  for n in fw1 fw2; do
    echo "state_${tag}_$n=$(node_state "$n")" >>"$EVDIR/event.env"
    if is_backup_or_active "$n"; then
      for cache in live external; do
        tmp=$EVDIR/$tag-$n-$cache.txt
        ctl "$n" dump "$cache" >"$tmp.all" 2>/dev/null || true
        echo "flows_${tag}_${n}_$cache=$(grep -c . "$tmp.all" || true)" >>"$EVDIR/event.env"
        grep -E "sport=(4[01]0[0-9][0-9]) dport=500[12] " "$tmp.all" >"$tmp" || true
        rm -f "$tmp.all"
      done
    fi
  done
}
# event_observe T_FAIL EXPECTED_ACTIVE: waits for the promotion, then until both streams
# flow again (records sent after the promotion arrive, and still arrive 3 s later) or one
# of them is dead (TCP error, or 10 s without a record), then records the result.
event_observe() {
  local t_fail=$1 want=$2 t_prom deadline
  echo "t_fail=$t_fail" >>"$EVDIR/event.env"
  wait_for 20 is_active "$want" || say "WARNING: $want not active 20 s after the failure"
  t_prom=$(now)
  deadline=$(awk -v t="$t_fail" 'BEGIN { printf "%.3f", t + 40 }')
  while awk -v n="$(now)" -v e="$deadline" 'BEGIN { exit !(n < e) }'; do
    if resumed_after "$t_prom" && streams_flowing; then
      sleep 3
      streams_flowing && break
    fi
    stream_dead && break
    sleep 0.2
  done
  echo "t_end=$(now)" >>"$EVDIR/event.env"
  echo "active_after=$(active_node)" >>"$EVDIR/event.env"
  snapshot after
}
run_round() {
  local round=$1 want from action_to
  case $round in
    kill | cut) want=fw1 ;;
    cold) want=fw2 ;;  # fw1 knows the flows only as backup: storage and sync must carry them
  esac
  say "=== round $round: baseline ($want active)"
  baseline "$want"
  if ((GEN == 0)) || stream_dead; then start_streams; fi
  say "generating $FLOWS flows"
  local gen_json sync_s
  local passes=1
  [[ $EV == 0 ]] && passes=2
  gen_json=$(generate_flows "$passes")
  say "flowgen: $gen_json"
  sync_s=$(wait_sync "$want")
  say "backup holds $(count_flows "$(other "$want")" external) external flows (waited ${sync_s}s)"
  from=$want
  action_to=$(other "$want")
  [[ $round == cold ]] && action_to=fw1
  event_begin "$round" round "$from" "$action_to"
  echo "flowgen=$gen_json" >>"$EVDIR/event.env"
  echo "sync_wait_s=$sync_s" >>"$EVDIR/event.env"
  local t_fail
  t_fail=$(now)
  case $round in
    kill)
      say "kill -9 fw1 ctsyncd + keepalived"
      kill_node fw1
      ;;
    cut)
      say "cutting fw1's links"
      links fw1 down
      ;;
    cold)
      say "cold restart: kill -9 both nodes, start both"
      kill_node fw1
      kill_node fw2
      start_ctsyncd fw1
      start_ctsyncd fw2
      wait_ctsyncd fw1
      wait_ctsyncd fw2
      # Both keepalived start as BACKUP with nopreempt, so the first to time out wins; their
      # master-down timers differ by ~20 ms only. fw1 "boots faster" to make the winner, and
      # with it the test (fw1 held the flows only as backup), deterministic.
      start_keepalived fw1
      wait_for 10 is_active fw1 || say "WARNING: fw1 not active 10 s after its keepalived started"
      start_keepalived fw2
      ;;
  esac
  event_observe "$t_fail" "$action_to"
}

# ---------------------------------------------------------------- main
say "ctsync drill: flows=$FLOWS rounds=$ROUNDS sync=$SYNC advert_int=$ADVERT out=$OUT"
say "ctsyncd=$CTSYNCD ctsyncctl=$CTSYNCCTL"
T0=$(now)
setup_topology
write_configs
start_servers
for r in "${ROUND_LIST[@]}"; do run_round "$r"; done
say "rounds done in $(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s; analysing"
{
  echo "t0=$T0"; echo "sync=$SYNC"; echo "expect_dead=$EXPECT_DEAD"; echo "flows=$FLOWS"
  echo "advert_int=$ADVERT"; echo "rounds=$ROUNDS"
} >"$OUT/drill.env"
set +e
"$PY" "$KIT/analyze.py" --out "$OUT" $( ((EXPECT_DEAD)) && echo --expect-dead)
rc=$?
set -e
exit $rc
