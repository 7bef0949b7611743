#!/bin/sh
# Container entrypoint of a ctsync node: the same steps as ctsyncd.service plus keepalived.
# Needs NET_ADMIN and NET_RAW, its own network namespace with the data interfaces (lan0,
# wan0, or CTSYNC_LAN / CTSYNC_WAN), /etc/ctsync/ctsyncd.conf and
# /etc/keepalived/keepalived.conf (mounted).
set -eu
LAN=${CTSYNC_LAN:-lan0}
WAN=${CTSYNC_WAN:-wan0}
# The kernel must neither forward nor see the data frames ctsyncd owns (only VRRP).
sysctl -q -w net.ipv4.ip_forward=0
nft -D LAN="$LAN" -D WAN="$WAN" -f /etc/ctsync/ctsync-ingress-guard.nft
/usr/local/bin/ctsyncd -c /etc/ctsync/ctsyncd.conf &
ctsyncd=$!
# keepalived only once ctsyncd answers, so its first notify finds the daemon.
i=0
until /usr/local/bin/ctsyncctl state >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 300 ] || { echo "entrypoint: ctsyncd did not start" >&2; exit 1; }
  kill -0 $ctsyncd 2>/dev/null || { echo "entrypoint: ctsyncd exited" >&2; exit 1; }
  sleep 0.1
done
keepalived --vrrp --dont-fork --log-console --no-syslog -f /etc/keepalived/keepalived.conf &
keepalived=$!
# If either dies the container exits (and keepalived's goodbye advert lets the peer take over).
trap 'kill $keepalived $ctsyncd 2>/dev/null' TERM INT
while kill -0 $ctsyncd 2>/dev/null && kill -0 $keepalived 2>/dev/null; do sleep 1; done
kill $keepalived $ctsyncd 2>/dev/null || true
wait
exit 1
