#!/usr/bin/env bash
# Trains the shipped models/phantom-demo.agcl: scripts/segmentation-quality.sh's 100% run (the
# phantom study cohort, models/phantom-demo.json, the trainer's default cohort-sized steps),
# then copies its model to models/phantom-demo.agcl. About 30 minutes on the 2-core CPU.
#
#   scripts/train-demo-model.sh [DIR]      (default <repo>/out/study; build first)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STUDY="${1:-$ROOT/out/study}"
FRACTIONS=1.0 bash "$ROOT/scripts/segmentation-quality.sh" "$STUDY"
cp "$STUDY/quality/run-f10/model.agcl" "$ROOT/models/phantom-demo.agcl"
echo "models/phantom-demo.agcl <- $STUDY/quality/run-f10/model.agcl"
