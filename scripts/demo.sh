#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and runs the most
# complete pipeline that exists so far: a phantom cohort (agcl phantom), then one
# of its volumes through the image<->tensor bridge, window-normalised by LibTorch
# and written back with its geometry; `agcl inspect` reports the volumes.
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
# 1. A phantom cohort: 4 subjects, both phases, at the demo size (3.6 x 3.6 x 6.2 mm voxels).
"$AGCL" phantom --subjects 4 --modality both --size 96 96 40 --seed 1 --out "$OUT/phantom"
echo "--- $OUT/phantom/manifest.csv ---"
cat "$OUT/phantom/manifest.csv"
# 2. One phantom volume through the bridge: window-normalised by LibTorch, written back with its geometry.
IMAGE="$OUT/phantom/images/subject_000_contrast.nii.gz"
"$AGCL" inspect "$IMAGE" --device "$DEVICE"
"$BUILD/examples/WindowNormalizeOnDevice" "$OUT/windowed.nii.gz" "$IMAGE" --device "$DEVICE"
echo "--- windowed (-175..275 HU -> 0..1) ---"
"$AGCL" inspect "$OUT/windowed.nii.gz" --device "$DEVICE"
echo "demo: results in $OUT (pictures in $OUT/phantom/pictures)"
