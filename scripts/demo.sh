#!/usr/bin/env bash
# `make demo`: shows Kiln's IR on an example. Until the JIT lands this is
# the front end: parse the generic form, verify, print the readable form,
# canonicalize, and show a diagnostic for a bad input.
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
