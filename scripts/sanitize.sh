#!/usr/bin/env bash
# Builds the project with AddressSanitizer + UndefinedBehaviorSanitizer (AGCL_SANITIZE) in its own
# folder and runs the tests under them.
#   scripts/sanitize.sh          every test: GoogleTest suites, CLI and kill tests, then the
#                                Python and downstream tests with the sanitizer runtime preloaded
#   scripts/sanitize.sh --ci     what CI runs: the GoogleTest suites and the CLI tests
# Build folder: $AGCL_SANITIZE_BUILD_DIR, default <repo>/build-asan. Run scripts/install-deps.sh first.
# A finding ends its test with exit code 99 (and a report on stderr), so it cannot pass as an
# expected error exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AGCL_SANITIZE_BUILD_DIR:-$ROOT/build-asan}"
MODE="${1:-all}"
case "$MODE" in
  all|--ci) ;;
  *) echo "sanitize.sh: unknown argument '$MODE' (expected --ci or nothing)" >&2; exit 2 ;;
esac
start=$(date +%s)
# Benchmarks are not tests. In CI only what its tests run is built (not the Python module, the
# examples, agcl-slicer or the memory check, whose tests run by hand), with line tables only
# (-g1: file:line stacks, a quarter less compiler time); a target missing from this list makes
# its test fail ("Unable to find executable"), it cannot pass unbuilt.
extra=(-DAGCL_SANITIZE=address,undefined -DAGCL_BUILD_BENCHMARKS=OFF)
targets=""
if [[ "$MODE" == --ci ]]; then
  extra+=(-DAGCL_WRAP_PYTHON=OFF -DAGCL_BUILD_EXAMPLES=OFF -DAGCL_SANITIZE_DEBUG=-g1)
  targets="agclCoreTests agclDistributedTests agclITKTests agcl agclMakeCliTestImages agclCliTestData"
  for name in model_bundle model_config manifest checkpoint evaluation; do
    targets+=" agclFuzzReplay_$name"
  done
else
  extra+=(-DAGCL_WRAP_PYTHON=ON -DAGCL_BUILD_EXAMPLES=ON -DAGCL_SANITIZE_DEBUG=-g)
fi
AGCL_BUILD_DIR="$BUILD" AGCL_BUILD_TARGETS="$targets" bash "$ROOT/scripts/build.sh" "${extra[@]}"
built=$(date +%s)
echo "sanitize.sh: build finished in $((built - start)) s"

SUPP="$ROOT/test/sanitizers"
common="exitcode=99:abort_on_error=0:print_summary=1"
export ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="$common:print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp"

# Native tests: GoogleTest suites, fuzz replays, CLI tests (and, by hand, the kill tests). Not the
# memory check: it measures resident memory, which under ASan is the sanitizer's (shadow memory and
# a quarantine of freed blocks), not the filter's.
# CI leaves out the 2-process training test (cli.train_distributed: ~370 s under the sanitizers on
# 2 cores, within CI's budget only without it); its primitives (agclDistributedTests) stay.
if [[ "$MODE" == --ci ]]; then
  ctest --test-dir "$BUILD" --output-on-failure -E '^(python|downstream|kill)\.|^itk\.segmentation_memory$|^cli\.train_distributed$'
else
  ctest --test-dir "$BUILD" --output-on-failure -E '^(python|downstream)\.|^itk\.segmentation_memory$'
  # Python: the interpreter is not instrumented, so the runtime is preloaded; CPython keeps much of
  # its memory to the end on purpose, so leak checks are off there.
  preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
  ASAN_OPTIONS="$common:detect_leaks=0" LD_PRELOAD="$preload" \
    ctest --test-dir "$BUILD" --output-on-failure -R '^(python|downstream)\.'
fi
echo "sanitize.sh: all tests passed under address,undefined; total $(( $(date +%s) - start )) s"
