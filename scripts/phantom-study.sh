#!/usr/bin/env bash
# The phantom study of Documentation/experiments.md: the paper's ablation (Table II, Fig. 5,
# the temperature study) reproduced on a phantom cohort with both modalities.
#
#   scripts/phantom-study.sh [STUDY_DIR]      (default <repo>/out/study; build first)
#
# Resumable: every run writes its results when it finishes and is skipped when they exist, so
# the study can be stopped and started again (a run interrupted half-way restarts from scratch;
# its own checkpoints are not reused). Runs:
#   - the coarse network (stage 0), once per label fraction (100%, 20% of the training subjects);
#   - per fraction, each pre-training mode (agcl, supcon, sscl, ce, none) on top of that coarse
#     network, stages 1 and 2 with identical settings; segmentation and evaluation of the test
#     subjects;
#   - the temperature study: agcl at 100% with T = 0.05, 0.5, 1.0 (0.1 is the main run);
#   - the report: scripts/study_report.py (Table II-style Markdown, p-values, box plots).
# Sizes are chosen for about 3 hours on a 2-core CPU; override with the variables below.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
AGCL="$BUILD/apps/agcl/agcl"
STUDY="${1:-$ROOT/out/study}"
SUBJECTS="${STUDY_SUBJECTS:-42}"          # x 2 phases
SPLIT="${STUDY_SPLIT:-0.571428:0.142857:0.285715}" # 24 train : 6 val : 12 test subjects
SIZE="${STUDY_SIZE:-96 96 40}"
COARSE_STEPS="${STUDY_COARSE_STEPS:-800}"
PRETRAIN_STEPS="${STUDY_PRETRAIN_STEPS:-600}"
DECODER_STEPS="${STUDY_DECODER_STEPS:-600}"
DEVICE="${AGCL_DEVICE:-cpu}"
CONFIG="${STUDY_CONFIG:-$ROOT/models/phantom-demo.json}"
mkdir -p "$STUDY"
log() { echo "[$(date +%H:%M:%S)] $*"; }

if [ ! -f "$STUDY/phantom/manifest.csv" ]; then
  log "cohort: $SUBJECTS subjects x 2 phases at $SIZE"
  rm -rf "$STUDY/phantom"
  # shellcheck disable=SC2086
  "$AGCL" phantom --subjects "$SUBJECTS" --modality both --size $SIZE --seed 2024 --split "$SPLIT" \
    --out "$STUDY/phantom" > /dev/null
fi
MANIFEST="$STUDY/phantom/manifest.csv"

# run NAME ARGS...: one training run into $STUDY/runs/NAME, skipped when its model exists.
train() {
  local name="$1"; shift
  local dir="$STUDY/runs/$name"
  if [ -f "$dir/model.agcl" ]; then return; fi
  log "train $name"
  rm -rf "$dir"
  "$AGCL" train --manifest "$MANIFEST" --config "$CONFIG" --out "$dir" --device "$DEVICE" --quiet "$@" \
    > "$STUDY/runs/$name.out" 2>&1 || { cat "$STUDY/runs/$name.out"; exit 2; }
}
# evaluate NAME: segment the test subjects with runs/NAME/model.agcl and evaluate them.
evaluate() {
  local name="$1"
  local result="$STUDY/results/$name.csv"
  if [ -f "$result" ]; then return; fi
  log "segment + evaluate $name"
  rm -rf "$STUDY/segmentations/$name"
  "$AGCL" segment --model "$STUDY/runs/$name/model.agcl" --manifest "$MANIFEST" --split test --device "$DEVICE" \
    --out "$STUDY/segmentations/$name" > "$STUDY/segmentations/$name.out" 2>&1 \
    || { cat "$STUDY/segmentations/$name.out"; exit 2; }
  mkdir -p "$STUDY/results"
  "$AGCL" evaluate --pred "$STUDY/segmentations/$name" --manifest "$MANIFEST" --split test \
    --out "$STUDY/results/$name.partial.csv" > /dev/null
  mv "$STUDY/results/$name.partial.md" "$STUDY/results/$name.md"
  mv "$STUDY/results/$name.partial.csv" "$result"
}
# embed NAME: the PCA picture and 1-NN separability of runs/NAME's encoder on the test patches.
embed() {
  local name="$1"
  if [ -f "$STUDY/embeddings/$name/embed.out" ]; then return; fi
  log "embed $name"
  mkdir -p "$STUDY/embeddings/$name"
  "$AGCL" embed --model "$STUDY/runs/$name/model.agcl" --manifest "$MANIFEST" --split test --device "$DEVICE" \
    --out "$STUDY/embeddings/$name" > "$STUDY/embeddings/$name/embed.partial" 2>&1 \
    || { cat "$STUDY/embeddings/$name/embed.partial"; exit 2; }
  mv "$STUDY/embeddings/$name/embed.partial" "$STUDY/embeddings/$name/embed.out"
}
mkdir -p "$STUDY/runs" "$STUDY/segmentations" "$STUDY/results"

STAGES12=(--pretrain-steps "$PRETRAIN_STEPS" --pretrain-batch 32 --decoder-steps "$DECODER_STEPS" --decoder-batch 32
  --patches-per-organ 24 --log-every 50 --validate-every 100 --checkpoint-every 100)
for fraction in 1.0 0.2; do
  tag="f${fraction/./}"
  train "coarse-$tag" --stage 0 --label-fraction "$fraction" --coarse-steps "$COARSE_STEPS" --coarse-lr 3e-3 \
    --coarse-batch 2 --log-every 50 --checkpoint-every 100
  for mode in agcl supcon sscl ce none; do
    train "$mode-$tag" --init-from "$STUDY/runs/coarse-$tag/model.agcl" --coarse-steps 0 \
      --label-fraction "$fraction" --mode "$mode" "${STAGES12[@]}"
    evaluate "$mode-$tag"
    embed "$mode-$tag"
  done
done
for temperature in 0.05 0.5 1.0; do
  name="agcl-f10-t${temperature/./}"
  train "$name" --init-from "$STUDY/runs/coarse-f10/model.agcl" --coarse-steps 0 --label-fraction 1.0 \
    --mode agcl --temperature "$temperature" "${STAGES12[@]}"
  evaluate "$name"
done
log "report"
/usr/bin/python3 "$ROOT/scripts/study_report.py" "$STUDY" --agcl "$AGCL"
log "done: $STUDY/report.md"
