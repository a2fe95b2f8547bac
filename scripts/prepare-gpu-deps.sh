#!/usr/bin/env bash
# Copies what scripts/gpu-core-check.sh needs on a GPU machine without packages into
# build-gpu-deps/ (git-ignored; pass it to the device tool as carry: ["build-gpu-deps"]):
# GoogleTest's source, Debian's Google Benchmark (headers + shared library) and nlohmann-json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build-gpu-deps"
rm -rf "$OUT"
mkdir -p "$OUT/benchmark/include" "$OUT/benchmark/lib" "$OUT/json"
cp -r /usr/src/googletest "$OUT/googletest"
cp -r /usr/include/benchmark "$OUT/benchmark/include/"
library=$(readlink -f /usr/lib/x86_64-linux-gnu/libbenchmark.so)
soname=$(objdump -p "$library" | awk '/SONAME/ {print $2}')
for name in libbenchmark.so "$soname"; do cp "$library" "$OUT/benchmark/lib/$name"; done
cp -r /usr/include/nlohmann "$OUT/json/"
du -sh "$OUT"
