#!/usr/bin/env bash
# The paper's Table III (PASCAL VOC 2012, DeepLabv3+ with CE loss, with and without AGCL
# pre-training) on synthetic scenes in VOC's layout (agcl scenes), all through our own pipeline
# (Documentation/experiments.md, "2D pictures: a Table III-style run"):
#   random-e2e      random initialisation, encoder and decoder trained end to end in stage 2
#                   (--mode random --finetune-encoder: the DeepLabv3+ baseline);
#   agcl-frozen     AGCL pre-training (stage 1), encoder frozen in stage 2 (the paper's protocol);
#   agcl-finetune   AGCL pre-training, encoder fine-tuned in stage 2 (at the decoder's rate, as the
#                   baseline's encoder).
# Every row: the same stage-2 loss, the pixel cross-entropy alone (--decoder-ce true
# --decoder-dice false, as Table III), from the same stage-0 coarse network of its seed; seeds
# 1, 2, 3 (stage 0, 1 and 2 of a row share the seed). mIoU on the val split (VOC's reported split,
# which is also the validation split of stage 2, as VOC practice has it).
#
#   scripts/scenes-study.sh [DIR]     (default <repo>/out/scenes-study; build first)
#
# Resumable (finished runs skipped, interrupted ones resumed). Results (evaluation Markdown and
# CSV, run times, and the stage 0 and 1 models as models/<run>.agcl) are copied to SCENES_PUBLISH (default <repo>/Documentation/scenes-study) as
# they come, and the table is written there as table.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
AGCL="$BUILD/apps/agcl/agcl"
STUDY="${1:-$ROOT/out/scenes-study}"
CONFIG="${SCENES_CONFIG:-$ROOT/models/scenes-demo.json}"
SEEDS="${SCENES_SEEDS:-1 2 3}"
TRAIN="${SCENES_TRAIN:-60}"
VAL="${SCENES_VAL:-20}"
# Stages 1 and 2 capped (their cohort-sized defaults, 1800 and 3600 steps here, take ~1 h each on
# the 2-core machine); the same for every row and seed.
read -r -a TRAIN_ARGS <<< "${SCENES_TRAIN_ARGS:---pretrain-steps 600 --decoder-steps 1000}"
PUBLISH="${SCENES_PUBLISH:-$ROOT/Documentation/scenes-study}"
mkdir -p "$STUDY/runs" "$STUDY/results" "$STUDY/segmentations" "$PUBLISH/results" "$PUBLISH/runs"
log() { echo "[$(date +%H:%M:%S)] $*"; }
publish() { local p; for p in "$@"; do cp "$STUDY/$p" "$PUBLISH/$p.partial" && mv "$PUBLISH/$p.partial" "$PUBLISH/$p"; done; }
for path in "$PUBLISH"/results/* "$PUBLISH"/runs/*.seconds; do # earlier sessions' results
  [ -f "$path" ] || continue
  relative="${path#"$PUBLISH"/}"
  [ -f "$STUDY/$relative" ] || cp "$path" "$STUDY/$relative"
done
for path in "$PUBLISH"/models/*.agcl; do # stage 0 and 1 models, shared by the rows of their seed
  [ -f "$path" ] || continue
  name="$(basename "$path" .agcl)"
  if [ ! -f "$STUDY/runs/$name/model.agcl" ]; then
    rm -rf "$STUDY/runs/$name"
    mkdir -p "$STUDY/runs/$name"
    cp "$path" "$STUDY/runs/$name/model.agcl"
  fi
done

if [ ! -f "$STUDY/manifest.csv" ]; then
  log "scenes: $TRAIN train, $VAL val, 160 x 120, 5 classes"
  rm -rf "$STUDY/scenes"
  "$AGCL" scenes --out "$STUDY/scenes" --train "$TRAIN" --val "$VAL" --size 160 120 --classes 5 --seed 2024 > /dev/null
  "$AGCL" voc-manifest "$STUDY/scenes" --out "$STUDY/manifest.partial.csv" > /dev/null
  mv "$STUDY/manifest.partial.csv" "$STUDY/manifest.csv"
fi
MANIFEST="$STUDY/manifest.csv"

# train NAME ARGS...: one run into runs/NAME (skipped when its model exists, resumed from its
# checkpoint when one exists); its wall time to runs/NAME.seconds.
train() {
  local name="$1"; shift
  local dir="$STUDY/runs/$name" resume=()
  if [ -f "$dir/model.agcl" ]; then return; fi
  if [ -f "$dir/checkpoint.agcl" ]; then resume=(--resume); log "train $name (resumed)"; else
    rm -rf "$dir"; log "train $name"; fi
  local start=$SECONDS
  "$AGCL" train --manifest "$MANIFEST" --config "$CONFIG" --out "$dir" --quiet --decoder-ce true --decoder-dice false \
    "$@" ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} ${resume[@]+"${resume[@]}"} >> "$STUDY/runs/$name.out" 2>&1 ||
    { tail -20 "$STUDY/runs/$name.out"; exit 2; }
  echo $((SECONDS - start)) >> "$STUDY/runs/$name.seconds"
  publish "runs/$name.seconds"
  case "$name" in # stage 0 and 1 models: kept with the results, restored on a new machine
    coarse-* | pre-*)
      mkdir -p "$PUBLISH/models"
      cp "$dir/model.agcl" "$PUBLISH/models/$name.agcl.partial" && mv "$PUBLISH/models/$name.agcl.partial" "$PUBLISH/models/$name.agcl" ;;
  esac
}
# evaluate NAME: segment the val split with runs/NAME/model.agcl -> results/NAME.md/.csv (mIoU),
# and the coarse network's own label maps -> results/NAME.coarse.md/.csv.
evaluate() {
  local name="$1" out="$STUDY/segmentations/$1"
  if [ -f "$STUDY/results/$name.csv" ]; then return; fi
  log "segment + evaluate $name"
  rm -rf "$out"
  "$AGCL" segment --model "$STUDY/runs/$name/model.agcl" --manifest "$MANIFEST" --split val --save-coarse \
    --out "$out" > "$out.out" 2>&1 || { tail -20 "$out.out"; exit 2; }
  mkdir -p "$out/coarse"
  for f in "$out"/*.coarse.png; do mv "$f" "$out/coarse/$(basename "$f" .coarse.png).png"; done
  cp "$out/settings.json" "$out/coarse/" # the class names for the table
  "$AGCL" evaluate --metric miou --pred "$out/coarse" --manifest "$MANIFEST" --split val \
    --out "$STUDY/results/$name.coarse.csv" > /dev/null
  "$AGCL" evaluate --metric miou --pred "$out" --manifest "$MANIFEST" --split val \
    --out "$STUDY/results/$name.partial.csv" > /dev/null
  mv "$STUDY/results/$name.partial.md" "$STUDY/results/$name.md"
  mv "$STUDY/results/$name.partial.csv" "$STUDY/results/$name.csv"
  publish "results/$name.coarse.md" "results/$name.coarse.csv" "results/$name.md" "results/$name.csv"
}

for seed in $SEEDS; do
  coarse="$STUDY/runs/coarse-s$seed/model.agcl"
  train "coarse-s$seed" --stage 0 --seed "$seed"
  train "random-e2e-s$seed" --stage 2 --init-from "$coarse" --mode random --finetune-encoder --seed "$seed"
  evaluate "random-e2e-s$seed"
  train "pre-agcl-s$seed" --stage 1 --init-from "$coarse" --mode agcl --seed "$seed"
  for protocol in frozen finetune; do
    extra=()
    [ "$protocol" = finetune ] && extra=(--finetune-encoder)
    train "agcl-$protocol-s$seed" --stage 2 --init-from "$STUDY/runs/pre-agcl-s$seed/model.agcl" --mode agcl \
      --seed "$seed" ${extra[@]+"${extra[@]}"}
    evaluate "agcl-$protocol-s$seed"
  done
done
log "table"
/usr/bin/python3 "$ROOT/scripts/scenes_report.py" "$PUBLISH" > "$PUBLISH/table.md.partial"
mv "$PUBLISH/table.md.partial" "$PUBLISH/table.md"
log "done: $PUBLISH/table.md"
