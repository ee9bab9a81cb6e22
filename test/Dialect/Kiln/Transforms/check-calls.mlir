// RUN: kiln-opt --kiln-check-calls --split-input-file --verify-diagnostics %s
// RUN: %expect_exit 1 kiln-opt --kiln-cpu-pipeline %s --split-input-file
// RUN: %expect_exit 1 kiln-opt --kiln-gpu-pipeline %s --split-input-file
// Calls that `inline` leaves and Kiln cannot compile: one diagnostic per
// bad call, at the call. Both pipelines run the check right after inlining.

// A function that calls itself would recurse until the stack overflows.
func.func @self(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{calls @self recursively: a kiln graph cannot recurse}}
  %y = call @self(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Mutual recursion: both calls are on the cycle.
func.func @even(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{calls @odd recursively: a kiln graph cannot recurse}}
  %y = call @odd(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}
func.func private @odd(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{calls @even recursively: a kiln graph cannot recurse}}
  %y = call @even(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// A declaration has no code to compile, and Kiln links nothing.
func.func private @extern(tensor<4xf32>) -> tensor<4xf32>
func.func @calls_extern(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{calls @extern, which has no body: every function a graph calls must be defined in the module}}
  %y = call @extern(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}
