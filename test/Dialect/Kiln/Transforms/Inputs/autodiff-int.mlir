// Used by autodiff-invalid.mlir.
// expected-error @+1 {{cannot differentiate @indices: it needs a floating-point argument and a floating-point result}}
func.func @indices(%i: tensor<4xi64>) -> tensor<4xi64> {
  %y = kiln.neg %i : tensor<4xi64>
  return %y : tensor<4xi64>
}
