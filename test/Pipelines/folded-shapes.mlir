// RUN: %expect_exit 1 kiln-opt --kiln-cpu-pipeline %s 2>&1 | FileCheck %s
// RUN: %expect_exit 1 kiln-opt --kiln-gpu-pipeline %s 2>&1 | FileCheck %s
// Constant dynamic sizes of an IR file that canonicalize folds into a static
// shape beyond 2^59 elements: the pipelines check shapes again after
// folding (this one segfaulted kiln-run, its bytes wrapping around).

// CHECK: error: 'tensor.empty' op result #0 type 'tensor<1099511627776x1099511627776xf32>' has more than 2^59 elements
func.func @f() -> tensor<f32> {
  %s = arith.constant 1099511627776 : index
  %z = arith.constant 1.0 : f32
  %e0 = tensor.empty(%s, %s) : tensor<?x?xf32>
  %e = linalg.fill ins(%z : f32) outs(%e0 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %init = arith.constant dense<0.0> : tensor<f32>
  %r = linalg.reduce ins(%e : tensor<?x?xf32>) outs(%init : tensor<f32>) dimensions = [0, 1]
    (%a: f32, %b: f32) {
      %x = arith.addf %a, %b : f32
      linalg.yield %x : f32
    }
  return %r : tensor<f32>
}
