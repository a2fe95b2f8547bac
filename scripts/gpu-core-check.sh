#!/usr/bin/env bash
# Builds the agcl core (no ITK) against the CUDA LibTorch of the machine's PyTorch
# and runs the core tests there. For a GPU machine with PyTorch, CMake and nvcc but
# no ITK and no package access; GoogleTest comes from source:
#   AGCL_GTEST_SOURCE_DIR (default build-gpu-deps/googletest, a copy of Debian's /usr/src/googletest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_BUILD_DIR:-$ROOT/build-gpu}"
GTEST="${AGCL_GTEST_SOURCE_DIR:-$ROOT/build-gpu-deps/googletest}"
PY="${PYTHON:-python3}"
TORCH_PREFIX="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
"$PY" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "devices", torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DAGCL_CORE_ONLY=ON \
  -DTorch_DIR="$TORCH_PREFIX/Torch" -DAGCL_GTEST_SOURCE_DIR="$GTEST" -DAGCL_USE_CCACHE=OFF
cmake --build "$BUILD" -j "$(nproc)"
"$BUILD/test/agclCoreTests"
