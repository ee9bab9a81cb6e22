// Used by autodiff-invalid.mlir with --kiln-autodiff=functions=missing.
// expected-error @+1 {{kiln-autodiff: no function named '@missing' to differentiate}}
module {
  func.func @present(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
