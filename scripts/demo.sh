#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, then the product's main job on
# phantom data in a few minutes on a 2-core CPU:
#   1. a phantom cohort (8 subjects x 2 phases: 5 train, 1 val, 2 test subjects),
#   2. training of all stages (coarse network, AGCL pre-training, decoder) with a small model,
#   3. segmentation of the held-out test volumes,
#   4. evaluation (Dice, IoU, surface distances) and its per-organ Dice table,
#   5. overlay pictures of one test segmentation over its CT.
# Output folder: $AGCL_DEMO_DIR (default <repo>/out/demo). Device: $AGCL_DEVICE (cpu).
# The model is trained for a few minutes only: its Dice is far below the shipped
# models/phantom-demo.agcl (trained longer by scripts/train-demo-model.sh), which step 6 uses too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
OUT="${AGCL_DEMO_DIR:-$ROOT/out/demo}"
DEVICE="${AGCL_DEVICE:-cpu}"
bash "$ROOT/scripts/install-deps.sh"
bash "$ROOT/scripts/build.sh"
AGCL="$BUILD/apps/agcl/agcl"
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
"$AGCL" info | head -3

echo "== 1. phantom cohort"
"$AGCL" phantom --subjects 8 --modality both --size 96 96 40 --seed 1 --split 0.625:0.125:0.25 \
  --out "$OUT/phantom" > /dev/null
cut -d, -f1,5 "$OUT/phantom/manifest.csv" | sort -u | awk -F, '{ printf "%-12s %s\n", $1, $2 }'

echo "== 2. training (stage 0: coarse network, 1: AGCL pre-training, 2: decoder)"
# The shipped model's configuration with the coarse network at 8 mm instead of 6 x 6 x 8 mm: at
# 6 x 6 x 8 mm stage 0 costs twice as much per step and the demo would take ~6.5 minutes.
/usr/bin/python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c["coarse"]["spacing_mm"] = [8, 8, 8]; json.dump(c, open(sys.argv[2], "w"), indent=2)' \
  "$ROOT/models/phantom-demo.json" "$OUT/demo-config.json"
"$AGCL" train --manifest "$OUT/phantom/manifest.csv" --config "$OUT/demo-config.json" \
  --out "$OUT/run" --device "$DEVICE" --coarse-steps 400 --coarse-batch 1 \
  --pretrain-steps 150 --pretrain-batch 32 --decoder-steps 600 --decoder-batch 32 --log-every 25

echo "== 3. segmentation of the test volumes"
"$AGCL" segment --model "$OUT/run/model.agcl" --manifest "$OUT/phantom/manifest.csv" --split test \
  --device "$DEVICE" --out "$OUT/segmentations"

echo "== 4. evaluation"
"$AGCL" evaluate --pred "$OUT/segmentations" --manifest "$OUT/phantom/manifest.csv" --split test \
  --out "$OUT/evaluation.csv"

echo "== 5. overlays"
first=$(awk -F, 'NR > 1 && $5 == "test" { print $2; exit }' "$OUT/phantom/manifest.csv")
name=$(basename "$first" .nii.gz)
"$AGCL" overlay "$OUT/phantom/$first" "$OUT/segmentations/$name.nii.gz" --out "$OUT/overlays" --slices 3

if [ -f "$ROOT/models/phantom-demo.agcl" ]; then
  echo "== 6. the same test volumes with the shipped model (models/phantom-demo.agcl)"
  "$AGCL" segment --model "$ROOT/models/phantom-demo.agcl" --manifest "$OUT/phantom/manifest.csv" --split test \
    --device "$DEVICE" --out "$OUT/segmentations-shipped"
  "$AGCL" evaluate --pred "$OUT/segmentations-shipped" --manifest "$OUT/phantom/manifest.csv" --split test \
    --out "$OUT/evaluation-shipped.csv"
  echo "== 7. the demo's own model (segmentations) against the shipped one (segmentations-shipped), mean Dice"
  sed -n 3,5p "$OUT/evaluation.md"
  sed -n 5p "$OUT/evaluation-shipped.md"
fi
echo "demo: $(( $(date +%s) - start )) s after the build; results in $OUT (overlays in $OUT/overlays)"
