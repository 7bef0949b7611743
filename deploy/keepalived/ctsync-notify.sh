#!/bin/sh
# ctsync-notify.sh: keepalived notify hook for a ctsync firewall pair. keepalived (VRRP)
# decides which node is active; this script turns its decision into ctsyncctl commands:
#   MASTER               -> ctsyncctl promote  (peer flows go live first, then the node
#                                               answers for the VIPs and sends gratuitous ARP)
#   BACKUP, FAULT, STOP  -> ctsyncctl demote   (stop answering for the VIPs)
#
# keepalived.conf:  notify "/usr/local/lib/ctsync/ctsync-notify.sh --socket /run/ctsyncd.sock"
# keepalived appends: TYPE (GROUP|INSTANCE) NAME STATE PRIORITY.
#
# Options (before keepalived's arguments):
#   --ctl PATH      ctsyncctl binary (default: ctsyncctl on PATH)
#   --socket PATH   ctsyncd control socket (default /run/ctsyncd.sock)
#   --log FILE      append one timestamped line per step (default /var/log/ctsync-notify.log)
#
# keepalived starts notify scripts asynchronously, so two quick transitions could run at
# once; a lock serialises them and each invocation re-checks that its state is still the
# newest one written by keepalived before acting, so a stale MASTER never promotes after a
# newer BACKUP demoted.
# A promote is retried for a short while because keepalived may decide before ctsyncd has
# finished starting (cold start of both nodes); a failed promote is logged with rc != 0.
set -u

CTL=ctsyncctl
SOCK=/run/ctsyncd.sock
LOG=/var/log/ctsync-notify.log
while [ $# -gt 0 ]; do
  case "$1" in
    --ctl) CTL=$2; shift 2 ;;
    --socket) SOCK=$2; shift 2 ;;
    --log) LOG=$2; shift 2 ;;
    *) break ;;
  esac
done
TYPE=${1:-?}
NAME=${2:-?}
STATE=${3:-?}
PRIO=${4:-?}

now() { date +%s.%N; }
log() { echo "$(now) $TYPE $NAME $STATE $*" >>"$LOG"; }

# A sequence number per event, taken before the lock, orders the events as keepalived
# produced them.
SEQ_FILE=$LOG.seq
LOCK_FILE=$LOG.lock
exec 9>>"$LOCK_FILE"
flock 9
seq=$(( $(cat "$SEQ_FILE" 2>/dev/null || echo 0) + 1 ))
echo "$seq" >"$SEQ_FILE"
flock -u 9

case "$STATE" in
  MASTER) action=promote; tries=30 ;;
  BACKUP | FAULT | STOP) action=demote; tries=3 ;;
  *) log "ignored prio=$PRIO"; exit 0 ;;
esac

flock 9
if [ "$(cat "$SEQ_FILE")" != "$seq" ]; then
  # A newer transition was recorded while this one waited: it is the one that counts.
  log "$action skipped (superseded)"
  exit 0
fi
log "$action start prio=$PRIO"
n=0
rc=1
while [ $n -lt $tries ]; do
  n=$((n + 1))
  out=$("$CTL" -S "$SOCK" "$action" 2>&1)
  rc=$?
  [ $rc -eq 0 ] && break
  sleep 0.1
done
log "$action done rc=$rc attempts=$n${out:+ out=$(echo "$out" | tr '\n' ' ')}"
exit $rc
