#!/usr/bin/env bash
# `make demo`: an example graph through Kiln: parse the generic form,
# verify, print the readable form, compile it for this CPU and run it,
# and show the diagnostic a bad input gets.
set -euo pipefail
build=${1:-build}
opt="$build/bin/kiln-opt"
example=examples/topk.mlir

echo "== $example (as written) =="
cat "$example"
echo
echo "== parsed, verified and printed by kiln-opt =="
"$opt" "$example"
echo
echo "== generic form (what ops.md specifies; round-trips) =="
"$opt" "$example" --mlir-print-op-generic | "$opt" --mlir-print-op-generic
echo
echo "== compiled for this CPU and run by kiln-run (scores: 7i mod 11) =="
scores="$build/demo-scores.npy"
/usr/bin/python3 - "$scores" <<'PY'
import sys
import numpy as np
np.save(sys.argv[1], (np.arange(40, dtype=np.float32).reshape(4, 10) * 7) % 11)
PY
"$build/bin/kiln-run" "$example" --input="$scores" --print --stats
echo

echo "== a bad input: k larger than the dim (exit code 1, one diagnostic) =="
bad="$build/demo-bad-k.mlir"
cat > "$bad" <<'MLIR'
func.func @top11(%scores: tensor<4x10xf32>) -> tensor<4x11xf32> {
  %values, %indices = "kiln.topk"(%scores) {k = 11 : i64, dim = 1 : i64}
      : (tensor<4x10xf32>) -> (tensor<4x11xf32>, tensor<4x11xi64>)
  return %values : tensor<4x11xf32>
}
MLIR
status=0
"$opt" "$bad" > /dev/null || status=$?
echo "(kiln-opt exited with $status)"
if [ "$status" -ne 1 ]; then
  echo "demo: expected exit code 1 for an invalid k" >&2
  exit 1
fi
echo

echo "== the same ops from C++ (examples/api/gradients.cpp, the embedding API) =="
"$build/bin/kiln-example-gradients"
echo
echo "== fusion: a where/clamp/pow chain is one kernel =="
chain="$build/demo-chain.mlir"
cat > "$chain" <<'MLIR'
func.func @chain(%x: tensor<8xf32>) -> tensor<8xf32> {
  %z = kiln.constant dense<0.0> : tensor<f32>
  %two = kiln.constant dense<2.0> : tensor<f32>
  %m = kiln.gt %x, %z : tensor<8xf32>, tensor<f32>
  %c = kiln.clamp %x {min = -1.0 : f64, max = 1.0 : f64} : tensor<8xf32>
  %p = kiln.pow %c, %two : tensor<8xf32>, tensor<f32>
  %y = kiln.where %m, %p, %x : tensor<8xi1>, tensor<8xf32>, tensor<8xf32>
  return %y : tensor<8xf32>
}
MLIR
"$opt" "$chain" --kiln-fuse-elementwise
echo
echo "== the GPU backend: the same chain as one PTX kernel (LLVM's NVPTX backend) =="
"$build/bin/kiln-compile" "$chain" --target=cuda --emit=ptx | grep -E '^// kernel|^\.(version|target|visible)|ld\.global|st\.global'
xs="$build/demo-chain-x.npy"
/usr/bin/python3 -c "import numpy, sys; numpy.save(sys.argv[1], numpy.linspace(-2, 2, 8, dtype=numpy.float32))" "$xs"
status=0
"$build/bin/kiln-run" "$chain" --input="$xs" --target=cuda --print 2> "$build/demo-cuda.err" || status=$?
if [ "$status" -ne 0 ]; then
  echo "kiln-run --target=cuda: exit $status: $(cat "$build/demo-cuda.err")"
fi
