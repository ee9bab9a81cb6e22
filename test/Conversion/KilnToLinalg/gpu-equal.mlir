// The GPU compares tensors through kiln-decompose{target=cuda}'s sum: an
// equal left to its lowering is an error, not a call of the CPU runtime.
// RUN: %expect_exit 1 kiln-opt %s '--convert-kiln-to-linalg=target=cuda' 2>&1 | FileCheck %s
// The GPU pipeline decomposes it: no error, no runtime call.
// RUN: kiln-opt %s --kiln-gpu-pipeline | FileCheck %s --check-prefix=PIPELINE

// CHECK: error: 'kiln.equal' op has no GPU kernel of its own: run kiln-decompose{target=cuda} first (kiln-gpu-pipeline does)
// PIPELINE-NOT: kiln_rt_equal
// PIPELINE: gpu.binary
func.func @equal(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<i1> {
  %e = kiln.equal %a, %b : tensor<4xf32>, tensor<4xf32>
  return %e : tensor<i1>
}
