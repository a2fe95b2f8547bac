#!/usr/bin/env bash
# Configures and builds the project (Release, Ninja, ccache when installed).
# Build folder: $AGCL_BUILD_DIR, default <repo>/build. Extra CMake arguments pass through.
# $AGCL_BUILD_TARGETS (space-separated) builds only those targets (default: all).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
for tool in cmake ninja c++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build: '$tool' not found; run scripts/install-deps.sh (as root) first" >&2
    exit 1
  fi
done
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 "$@"
read -r -a targets <<< "${AGCL_BUILD_TARGETS:-}"
if (( ${#targets[@]} )); then
  cmake --build "$BUILD" --target "${targets[@]}"
else
  cmake --build "$BUILD"
fi
