#!/usr/bin/env bash
# Builds the libFuzzer programs of test/fuzz (clang-14, the agcl core only, instrumented with
# AddressSanitizer + UndefinedBehaviorSanitizer + coverage) in build-fuzz, and runs each target for
# SECONDS (default 600) from its seed corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: model_bundle model_config manifest checkpoint evaluation
# Per target, out/fuzz/<target>/: log.txt (libFuzzer's report and final statistics), corpus/ (the
# inputs it found interesting) and crash-*/leak-*/timeout-*/oom-* files for findings. A finding's
# input belongs in test/fuzz/regressions/<target>/ once fixed (CTest's fuzz.<target> replays it).
# Limits per input: 25 s, 2048 MB. AGCL_FUZZ_JOBS=N runs N targets at once (default 1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
OUT="$ROOT/out/fuzz"
SECONDS_EACH="${1:-600}"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(model_bundle model_config manifest checkpoint evaluation)
for tool in clang-14 clang++-14 cmake ninja; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: '$tool' not found; run scripts/install-deps.sh" >&2; exit 1; }
done
CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DAGCL_CORE_ONLY=ON -DAGCL_FUZZ=ON -DAGCL_SANITIZE=address,undefined -DAGCL_BUILD_BENCHMARKS=OFF \
  -DAGCL_USE_PCH=OFF >/dev/null
cmake --build "$BUILD" --target $(printf 'agclFuzz_%s ' "${TARGETS[@]}")

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/test/sanitizers/ubsan.supp"
export LSAN_OPTIONS="suppressions=$ROOT/test/sanitizers/lsan.supp"
run() {
  local name="$1" dir="$OUT/$1"
  mkdir -p "$dir/corpus"
  local rc=0 seeds=("$ROOT/test/fuzz/corpus/$name")
  [[ -d "$ROOT/test/fuzz/regressions/$name" ]] && seeds+=("$ROOT/test/fuzz/regressions/$name")
  "$BUILD/test/fuzz/agclFuzz_$name" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" "${seeds[@]}" >"$dir/log.txt" 2>&1 || rc=$?
  local runs; runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log.txt" | grep -o '[0-9]*$' || echo '?')
  local findings; findings=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | wc -l)
  echo "fuzz $name: exit $rc, $runs inputs in ${SECONDS_EACH} s, $findings finding(s), corpus $(ls "$dir/corpus" | wc -l) files; log $dir/log.txt"
  return $rc
}
jobs_max="${AGCL_FUZZ_JOBS:-1}"
status=0
pids=()
for name in "${TARGETS[@]}"; do
  run "$name" &
  pids+=($!)
  if [[ ${#pids[@]} -ge $jobs_max ]]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
