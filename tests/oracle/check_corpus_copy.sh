#!/usr/bin/env bash
# Checks that the project's copy of the kernel corpus equals ../shared/oracle/scenarios.
# Exit 77 (skipped) when the shared corpus is not beside the checkout.
set -euo pipefail
copy=$1
shared=$2
if [[ ! -d $shared ]]; then
  echo "shared corpus not present at $shared: skipped"
  exit 77
fi
if diff -r -q "$shared" "$copy"; then
  echo "corpus copy is current ($(ls "$copy" | wc -l) scenarios)"
else
  echo "tests/oracle/scenarios differs from $shared: refresh it with" >&2
  echo "  rm -rf tests/oracle/scenarios && cp -r ../shared/oracle/scenarios tests/oracle/" >&2
  exit 1
fi
