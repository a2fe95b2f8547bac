#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and runs the most
# complete pipeline that exists so far: a synthetic CT volume goes through the
# image<->tensor bridge, is window-normalised by LibTorch and written back with
# its geometry; `agcl inspect` reports both volumes.
# Output folder: $AGCL_DEMO_DIR, default <repo>/out/demo. Device: $AGCL_DEVICE (cpu).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
OUT="${AGCL_DEMO_DIR:-$ROOT/out/demo}"
DEVICE="${AGCL_DEVICE:-cpu}"
bash "$ROOT/scripts/install-deps.sh"
bash "$ROOT/scripts/build.sh"
mkdir -p "$OUT"
AGCL="$BUILD/apps/agcl/agcl"
"$AGCL" info
"$BUILD/examples/WindowNormalizeOnDevice" "$OUT/windowed.nii.gz" --device "$DEVICE"
echo "--- input ---"
"$AGCL" inspect "$OUT/windowed_input.nii.gz" --device "$DEVICE"
echo "--- windowed (-175..275 HU -> 0..1) ---"
"$AGCL" inspect "$OUT/windowed.nii.gz" --device "$DEVICE"
echo "demo: results in $OUT"
