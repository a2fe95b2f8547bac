#!/usr/bin/env bash
# Builds the agcl core (no ITK) against the CUDA LibTorch of the machine's PyTorch
# and runs the core tests there. For a GPU machine with PyTorch, CMake and nvcc but
# no ITK and no package access; GoogleTest comes from source:
#   AGCL_GTEST_SOURCE_DIR (default build-gpu-deps/googletest, a copy of Debian's /usr/src/googletest).
# Make build-gpu-deps/ here first with scripts/prepare-gpu-deps.sh, then carry it to the GPU machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build-gpu}"
GTEST="${AGCL_GTEST_SOURCE_DIR:-$ROOT/build-gpu-deps/googletest}"
PY="${PYTHON:-python3}"
TORCH_PREFIX="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
"$PY" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "devices", torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
# Google Benchmark: a copied build (headers + libbenchmark.so) under $AGCL_BENCHMARK_ROOT, if any.
BENCH="${AGCL_BENCHMARK_ROOT:-$ROOT/build-gpu-deps/benchmark}"
BENCH_ARGS=(-DAGCL_BUILD_BENCHMARKS=OFF)
[ -f "$BENCH/lib/libbenchmark.so" ] && BENCH_ARGS=(-DAGCL_BUILD_BENCHMARKS=ON -DAGCL_BENCHMARK_ROOT="$BENCH")
# nlohmann-json (header-only): a copy of Debian's /usr/include/nlohmann under build-gpu-deps/json, if any.
JSON_ARGS=()
[ -d "${AGCL_JSON_INCLUDE_DIR:-$ROOT/build-gpu-deps/json}/nlohmann" ] && \
  JSON_ARGS=(-DAGCL_JSON_INCLUDE_DIR="${AGCL_JSON_INCLUDE_DIR:-$ROOT/build-gpu-deps/json}")
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DAGCL_CORE_ONLY=ON "${JSON_ARGS[@]}" \
  -DTorch_DIR="$TORCH_PREFIX/Torch" -DAGCL_GTEST_SOURCE_DIR="$GTEST" -DAGCL_USE_CCACHE=OFF "${BENCH_ARGS[@]}"
cmake --build "$BUILD" -j "$(nproc)"
"$BUILD/test/agclCoreTests"
if [ "${AGCL_GPU_BENCHMARK:-0}" = 1 ] && [ -x "$BUILD/benchmarks/agclCoreBenchmark" ]; then
  export LD_LIBRARY_PATH="$BENCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # AGCL_GPU_BENCHMARK_FILTER: a regular expression of the benchmarks to run (all by default;
  # the Python side-by-side step runs only when no filter is given).
  FILTER="${AGCL_GPU_BENCHMARK_FILTER:-}"
  AGCL_BENCH_DEVICE=cuda "$BUILD/benchmarks/agclCoreBenchmark" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true ${FILTER:+--benchmark_filter="$FILTER"}
  [ -z "$FILTER" ] && "$PY" "$ROOT/benchmarks/python/train_step_bench.py" --device cuda --steps 100
fi
