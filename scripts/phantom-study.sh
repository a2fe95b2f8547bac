#!/usr/bin/env bash
# The paper's study on the phantom cohort (Documentation/experiments.md, "The paper's study"):
# its pre-training modes (AGCL Eq. 3, SSCL Eq. 2, CE, and RI = random initialisation) under both
# protocols (the paper's: encoder frozen in stage 2; fine-tuned), from 3 training seeds each, and
# its Fig. 6 ablations (label fraction, temperature, pre-training modalities).
#
#   scripts/phantom-study.sh [STUDY_DIR]      (default <repo>/out/paper-study; build first)
#
# Resumable: a finished run is skipped, an interrupted one continues from its checkpoint
# (agcl train --resume), so the study can be stopped and started again at any moment. What the
# report needs (each evaluation's CSV, each run's wall time, the embeddings) is copied as it is
# made to STUDY_PUBLISH (default <repo>/Documentation/study, committed) and copied back from there
# when the study starts, so a row whose results are published is not run again, even on a new
# checkout without the study folder; the stage 0 and 1 models, which later rows share, are kept
# there too (models/<run>.agcl) and restored, stage 2 models are not. The parts
# run in the order of their priority (STUDY_PARTS chooses and orders them):
#   frozen      the main table: every mode x seeds 1, 2, 3 at 100% labels, encoder frozen;
#   finetune    the fine-tuned table: first the encoder's learning rate, chosen on the validation
#               subjects (mean Dice of agcl and random, seed 1, each rate of STUDY_ENCODER_LRS),
#               then every mode x seeds at that rate;
#   fractions   Fig. 6a: label fractions 10 / 20 / 50 % for agcl, sscl and random (frozen, seed 1);
#   temperature Fig. 6b: agcl at T = 0.05, 0.5, 1.0 (frozen; seeds 1-3 at 0.05 and 1.0, seed 1 at 0.5);
#   modality    Fig. 6c: agcl pre-trained on one modality (contrast, noncontrast; frozen, seed 1).
# Stage 0 is trained once per (label fraction, seed) and shared by the modes; stage 1 once per
# (mode, fraction, seed, temperature, modalities) and shared by the two protocols; all three
# stages of a row use the row's seed. Every run uses agcl train's default (cohort-sized) steps and
# the same learning rates, whatever the mode. Then scripts/study_report.py writes the tables.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build}"
AGCL="$BUILD/apps/agcl/agcl"
STUDY="${1:-$ROOT/out/paper-study}"
DEVICE="${AGCL_DEVICE:-cpu}"
CONFIG="${STUDY_CONFIG:-$ROOT/models/phantom-demo.json}"
SEEDS="${STUDY_SEEDS:-1 2 3}"
MODES="${STUDY_MODES:-agcl sscl ce random}"
ENCODER_LRS="${STUDY_ENCODER_LRS:-1e-4 1e-3}"
PARTS="${STUDY_PARTS:-frozen finetune fractions temperature modality}"
# For a quick check of the script itself (not for results): a smaller cohort and more train options,
# e.g. STUDY_SUBJECTS=14 STUDY_SIZE="48 48 24" STUDY_TRAIN_ARGS="--coarse-steps 4 --pretrain-steps 4 --decoder-steps 4".
SUBJECTS="${STUDY_SUBJECTS:-42}"
SIZE="${STUDY_SIZE:-96 96 40}"
read -r -a TRAIN_ARGS <<< "${STUDY_TRAIN_ARGS:-}"
PUBLISH="${STUDY_PUBLISH:-$ROOT/Documentation/study}"
mkdir -p "$STUDY/runs" "$STUDY/segmentations" "$STUDY/results" "$STUDY/embeddings"
log() { echo "[$(date +%H:%M:%S)] $*"; }
# publish RELATIVE_PATH...: copies the study's small result files to the published folder.
publish() {
  local path
  for path in "$@"; do
    mkdir -p "$(dirname "$PUBLISH/$path")"
    cp "$STUDY/$path" "$PUBLISH/$path.partial" && mv "$PUBLISH/$path.partial" "$PUBLISH/$path"
  done
}
# The published results of earlier sessions come back (never over the study's own files).
if [ -d "$PUBLISH" ]; then
  for path in "$PUBLISH"/results/* "$PUBLISH"/runs/*.seconds "$PUBLISH"/embeddings/*/*; do
    [ -f "$path" ] || continue
    relative="${path#"$PUBLISH"/}"
    mkdir -p "$(dirname "$STUDY/$relative")"
    [ -f "$STUDY/$relative" ] || cp "$path" "$STUDY/$relative"
  done
  # Stage 0 and 1 models (shared by later rows) come back too: a new machine does not train them again.
  for path in "$PUBLISH"/models/*.agcl; do
    [ -f "$path" ] || continue
    name="$(basename "$path" .agcl)"
    if [ ! -f "$STUDY/runs/$name/model.agcl" ]; then
      rm -rf "$STUDY/runs/$name"
      mkdir -p "$STUDY/runs/$name"
      cp "$path" "$STUDY/runs/$name/model.agcl"
    fi
  done
fi

if [ ! -f "$STUDY/phantom/manifest.csv" ]; then
  log "cohort: $SUBJECTS subjects x 2 phases at $SIZE (4 train : 1 val : 2 test subjects)"
  rm -rf "$STUDY/phantom"
  # shellcheck disable=SC2086
  "$AGCL" phantom --subjects "$SUBJECTS" --modality both --size $SIZE --seed 2024 --split 0.571428:0.142857:0.285715 \
    --out "$STUDY/phantom" > /dev/null
fi
MANIFEST="$STUDY/phantom/manifest.csv"

# train NAME ARGS...: one training run into runs/NAME (skipped when its model exists; continued
# from its checkpoint when one exists). Its output goes to runs/NAME.out, its wall time to
# runs/NAME.seconds.
train() {
  local name="$1"; shift
  local dir="$STUDY/runs/$name"
  if [ -f "$dir/model.agcl" ]; then return; fi
  local resume=()
  if [ -f "$dir/checkpoint.agcl" ]; then resume=(--resume); log "train $name (resumed)"; else
    rm -rf "$dir"; log "train $name"; fi
  local start=$SECONDS
  "$AGCL" train --manifest "$MANIFEST" --config "$CONFIG" --out "$dir" --device "$DEVICE" --quiet "$@" \
    ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} ${resume[@]+"${resume[@]}"} \
    >> "$STUDY/runs/$name.out" 2>&1 || { tail -20 "$STUDY/runs/$name.out"; exit 2; }
  echo $((SECONDS - start)) >> "$STUDY/runs/$name.seconds"
  publish "runs/$name.seconds"
  case "$name" in # stage 0 and 1 models are shared by later rows: kept with the results (~3.8 MB each)
    coarse-* | pre-*)
      mkdir -p "$PUBLISH/models"
      cp "$dir/model.agcl" "$PUBLISH/models/$name.agcl.partial" && mv "$PUBLISH/models/$name.agcl.partial" "$PUBLISH/models/$name.agcl" ;;
  esac
}
# evaluate NAME SPLIT: segment SPLIT with runs/NAME/model.agcl -> results/NAME.SPLIT.csv.
evaluate() {
  local name="$1" split="$2"
  local result="$STUDY/results/$name.$split.csv" out="$STUDY/segmentations/$name.$split"
  if [ -f "$result" ]; then return; fi
  log "segment + evaluate $name ($split)"
  rm -rf "$out"
  "$AGCL" segment --model "$STUDY/runs/$name/model.agcl" --manifest "$MANIFEST" --split "$split" --device "$DEVICE" \
    --out "$out" > "$out.out" 2>&1 || { tail -20 "$out.out"; exit 2; }
  "$AGCL" evaluate --pred "$out" --manifest "$MANIFEST" --split "$split" --out "$STUDY/results/$name.$split.partial.csv" \
    > /dev/null
  mv "$STUDY/results/$name.$split.partial.md" "$STUDY/results/$name.$split.md"
  mv "$STUDY/results/$name.$split.partial.csv" "$result"
  publish "results/$name.$split.md" "results/$name.$split.csv"
  rm -rf "$out" # the label maps (24 x ~30 KB) are not kept; the CSV holds every figure
}
# embed NAME: Fig. 3, the PCA of runs/NAME's representations of test patches and their 1-NN
# separability (agcl embed) -> embeddings/NAME.
embed() {
  local name="$1" dir="$STUDY/embeddings/$1"
  if [ -f "$dir/embed.out" ]; then return; fi
  log "embed $name"
  mkdir -p "$dir"
  "$AGCL" embed --model "$STUDY/runs/$name/model.agcl" --manifest "$MANIFEST" --split test --device "$DEVICE" \
    --out "$dir" > "$dir/embed.partial" 2>&1 || { tail -20 "$dir/embed.partial"; exit 2; }
  mv "$dir/embed.partial" "$dir/embed.out"
  publish "embeddings/$name/embedding.csv" "embeddings/$name/embed.out"
}
tag() { local f="$1"; echo "f${f/./}"; } # 1.0 -> f10, 0.2 -> f02

# coarse FRACTION SEED: stage 0, shared by every mode of that fraction and seed.
coarse() {
  train "coarse-$(tag "$1")-s$2" --stage 0 --label-fraction "$1" --seed "$2"
}
# pretrained MODE FRACTION SEED SUFFIX [ARGS...]: echoes the model stage 2 starts from: stage 1
# of MODE on top of the coarse run (random: the coarse run's model itself, untouched).
pretrained() {
  local mode="$1" fraction="$2" seed="$3" suffix="$4"; shift 4
  coarse "$fraction" "$seed" >&2
  local base="$STUDY/runs/coarse-$(tag "$fraction")-s$seed/model.agcl"
  if [ "$mode" = random ]; then echo "$base"; return; fi
  local name="pre-$mode$suffix-$(tag "$fraction")-s$seed"
  train "$name" --stage 1 --init-from "$base" --mode "$mode" --label-fraction "$fraction" --seed "$seed" "$@" >&2
  echo "$STUDY/runs/$name/model.agcl"
}
# row MODE PROTOCOL FRACTION SEED SUFFIX SPLITS [STAGE1 ARGS...]: stage 2 (frozen, or finetune
# at encoder rate $ENCODER_LR) into runs/MODE SUFFIX-PROTOCOL-FRACTION-sSEED, evaluated on SPLITS
# (test, val; "embed" there also makes the row's Fig. 3 embedding). Skipped when all are there.
row() {
  local mode="$1" protocol="$2" fraction="$3" seed="$4" suffix="$5" splits="$6"; shift 6
  local name="$mode$suffix-$protocol-$(tag "$fraction")-s$seed" stage2=() split missing=""
  if [ "$protocol" != frozen ]; then
    name="$mode$suffix-finetune-lr$ENCODER_LR-$(tag "$fraction")-s$seed"
    stage2=(--finetune-encoder --encoder-lr "$ENCODER_LR")
  fi
  for split in $splits; do
    if [ "$split" = embed ]; then [ -f "$STUDY/embeddings/$name/embed.out" ] || missing=1
    else [ -f "$STUDY/results/$name.$split.csv" ] || missing=1; fi
  done
  if [ -z "$missing" ]; then return; fi
  local from
  from="$(pretrained "$mode" "$fraction" "$seed" "$suffix" "$@")"
  # Stage 1's own options go to stage 2 as well: its frozen encoder's BatchNorm statistics are
  # re-estimated on stage 1's patches (e.g. one modality's only, for Fig. 6c).
  train "$name" --stage 2 --init-from "$from" --mode "$mode" --label-fraction "$fraction" --seed "$seed" \
    ${stage2[@]+"${stage2[@]}"} "$@"
  for split in $splits; do
    if [ "$split" = embed ]; then embed "$name"; else evaluate "$name" "$split"; fi
  done
}

for part in $PARTS; do
  case "$part" in
    frozen)
      for seed in $SEEDS; do
        for mode in $MODES; do
          if [ "$seed" = 1 ]; then row "$mode" frozen 1.0 1 "" "test val embed"
          else row "$mode" frozen 1.0 "$seed" "" "test val"; fi
        done
      done ;;
    finetune)
      # The encoder's rate: the best mean validation Dice over agcl and random (seed 1).
      for ENCODER_LR in $ENCODER_LRS; do
        for mode in agcl random; do row "$mode" finetune 1.0 1 "" val; done
      done
      ENCODER_LR="$(/usr/bin/python3 "$ROOT/scripts/study_report.py" "$STUDY" --choose-encoder-lr $ENCODER_LRS)"
      log "fine-tune protocol: encoder learning rate $ENCODER_LR (validation)"
      echo "$ENCODER_LR" > "$STUDY/results/encoder-lr.txt"
      publish results/encoder-lr.txt
      for seed in $SEEDS; do for mode in $MODES; do row "$mode" finetune 1.0 "$seed" "" "test val"; done; done ;;
    fractions)
      for fraction in 0.1 0.2 0.5; do for mode in agcl sscl random; do row "$mode" frozen "$fraction" 1 "" test; done; done ;;
    temperature)
      for seed in $SEEDS; do
        for t in 0.05 1.0; do row agcl frozen 1.0 "$seed" "-t${t/./}" test --temperature "$t"; done
      done
      row agcl frozen 1.0 1 "-t05" test --temperature 0.5 ;;
    modality)
      for m in contrast noncontrast; do row agcl frozen 1.0 1 "-$m" test --pretrain-modalities "$m"; done ;;
    *) echo "unknown study part '$part' (frozen, finetune, fractions, temperature, modality)" >&2; exit 1 ;;
  esac
  log "part $part done"
done
log "report"
/usr/bin/python3 "$ROOT/scripts/study_report.py" "$PUBLISH"
log "done: $PUBLISH/report.md"
