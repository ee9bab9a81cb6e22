#!/usr/bin/env bash
# Installs every Debian package Kiln's build, tests and benchmarks need.
# Idempotent: packages already installed are skipped; nothing is done when all are present.
set -euo pipefail

PACKAGES=(
  # Toolchain: LLVM/MLIR 22 (mlir-22-tools carries mlir-tblgen, which libmlir-22-dev does not pull in).
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  clang-22 lld-22 cmake ninja-build ccache make
  # OpenMP runtime: the worker threads of generated parallel loops.
  libomp-22-dev
  # Tests: lit/FileCheck come with llvm-22-tools; GoogleTest for the C++ API,
  # and clang's sanitizer runtimes for its ThreadSanitizer run.
  libgtest-dev libclang-rt-22-dev
  # Numerical oracle and benchmark baseline.
  python3 python3-numpy python3-torch
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
