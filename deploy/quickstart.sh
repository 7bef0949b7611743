#!/usr/bin/env bash
# The main job, from a fresh checkout: installs dependencies, builds (Release), and runs the
# most complete end-to-end thing ctsync does today: every recorded kernel scenario replayed
# through the engine (ctreplay) and compared with what the real kernel did.
# (Once the failover drill lands, this runs deploy/drill.sh instead.)
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
deploy/build.sh release
echo
echo "== ctreplay: the recorded kernel corpus (tests/oracle/scenarios) through ctsync's engine"
exec build/bin/ctreplay "$@" tests/oracle/scenarios
