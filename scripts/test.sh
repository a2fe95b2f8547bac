#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
start=$(date +%s)
bash "$ROOT/scripts/install-deps.sh"
bash "$ROOT/scripts/build.sh"
built=$(date +%s)
echo "test.sh: build finished in $((built - start)) s"
ctest --test-dir "$BUILD" --output-on-failure
echo "test.sh: all tests passed; total $(( $(date +%s) - start )) s"
