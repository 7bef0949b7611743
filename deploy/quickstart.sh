#!/usr/bin/env bash
# The main job, from a fresh checkout: installs dependencies, builds (Release), and runs the
# failover drill (deploy/drill.sh) on its embedded default: two ctsyncd firewalls with
# keepalived in network namespaces, SNAT of a LAN to a WAN virtual IP, a TCP and a UDP
# stream through the NAT, 10k extra synced flows, and three rounds (kill -9 of the active,
# its links cut, cold restart of both). Prints a table per round and writes SVG plots.
# Needs root (network namespaces). Arguments go to deploy/drill.sh (e.g. --flows 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "quickstart: the failover drill builds network namespaces and needs root" >&2
  exit 1
fi
deploy/install-deps.sh
deploy/build.sh release
echo
echo "== ctsync failover drill (deploy/drill.sh $*)"
exec deploy/drill.sh --out "${CTSYNC_DRILL_OUT:-build/drill}" "$@"
