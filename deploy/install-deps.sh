#!/usr/bin/env bash
# Installs everything ctsync's build, tests and drills need, from Debian bookworm packages.
# Idempotent and non-interactive: packages already present are skipped, so running it twice
# is cheap. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  libboost-dev libprotobuf-dev protobuf-compiler libabsl-dev librocksdb-dev libssl-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing and sanitizer runtimes
  clang libclang-rt-14-dev
  # tests, oracle and drills
  python3 python3-scapy iproute2 iptables nftables conntrack conntrackd keepalived
  ethtool tcpdump socat iperf3 gnuplot-nox procps psmisc
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# keepalived and conntrackd are used only by drills and benchmarks, which start their own
# instances in namespaces; the packaged system services must not run on their own.
for svc in keepalived conntrackd; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
echo "install-deps: done"
