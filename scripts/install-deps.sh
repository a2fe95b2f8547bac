#!/usr/bin/env bash
# Installs every dependency of AGCL for ITK from Debian 12 packages.
# Idempotent; runs as root with no prompt (uses sudo when not root and sudo exists).
# Nothing is downloaded from anywhere but Debian's archive.
set -euo pipefail

PACKAGES=(
  # toolchain (a fresh Debian 12 has no compiler)
  build-essential cmake ninja-build ccache git pkg-config
  # ITK 5.2 (+ gdcm tools, which silence ITK configure warnings)
  libinsighttoolkit5-dev libgdcm-tools
  # LibTorch 1.13 (CPU) and a BLAS for it
  libtorch-dev libopenblas0-pthread
  # Gloo's headers for c10d's ProcessGroupGloo (distributed training; the library itself is in LibTorch)
  libgloo-dev
  # tests, benchmarks, CLI, JSON, wrapping (no Eigen: no file of ours uses it; ITK's -dev package
  # pulls libeigen3-dev in for ITK itself)
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev swig
  # Python side: wrapping, reference checks, plots
  python3-dev python3-numpy python3-torch python3-scipy python3-pytest python3-matplotlib
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer; gcc's AddressSanitizer/UBSan come with gcc
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
