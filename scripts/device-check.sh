#!/bin/bash
# One pass of every GPU check on a lent GPU machine without LLVM (see
# docs/gpu.md): the numerical suites of test/GPU/numerics.test with
# kiln-run --target=cuda, the random programs, the 16-byte-access option's
# answers, then the GPU benchmarks with and without it. Run from the
# repository root with device-libs/ and build/bin carried; logs go to
# ${OUT:-gpu-scratch}/ (one per step) and a summary to stdout. Each step has
# its own time limit, so one hang cannot eat the whole lease.
#
#   scripts/device-check.sh            # everything (about 6-8 minutes)
#   scripts/device-check.sh bench      # only the benchmarks
set -u
cd "$(dirname "$0")/.."
. scripts/device-env.sh
logs=${OUT:-gpu-scratch}
mkdir -p "$logs"
export KILN_RUN=$PWD/build/bin/kiln-run KILN_OPT=$PWD/build/bin/kiln-opt
export KILN_CACHE_DIR=/tmp/kiln-device-cache
nvidia-smi -L 2>&1 | tee "$logs/device.txt"

step() { # name, seconds, command...
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  timeout "$seconds" "$@" >"$logs/$name.log" 2>&1
  local code=$?
  printf '%-28s exit %3d  %4ds  %s\n' "$name" "$code" $((SECONDS - start)) \
    "$(grep -E 'cases passed|FAIL' "$logs/$name.log" | tail -1)"
}

if [ "${1:-all}" != bench ]; then
  for suite in elementwise reductions selection indexing nn_linalg_shapes \
               index_errors large_kernels autodiff; do
    step "$suite" 240 env KILN_RUN_ARGS=--target=cuda \
      python3 test/Integration/$suite.py
  done
  step random_programs 240 env KILN_RUN_ARGS=--target=cuda \
    python3 test/Integration/random_programs.py
  # The 16-byte accesses (off by default until measured): same answers?
  for suite in elementwise large_kernels random_programs; do
    step "$suite-vectorize" 240 env \
      "KILN_RUN_ARGS=--target=cuda --gpu-vectorize" \
      python3 test/Integration/$suite.py
  done
fi
step bench 420 python3 bench/gpu.py
step bench-vectorize 240 python3 bench/gpu.py --only chain \
  --kiln-args=--gpu-vectorize
cat "$logs/bench.log" "$logs/bench-vectorize.log"
