// RUN: kiln-opt --kiln-check-shapes --split-input-file --verify-diagnostics %s
// RUN: %expect_exit 1 kiln-opt --kiln-cpu-pipeline %s --split-input-file
// RUN: %expect_exit 1 kiln-opt --kiln-gpu-pipeline %s --split-input-file
// Shapes no kiln tensor can have (kiln::isAddressableShape), on ops the kiln
// verifiers do not see. Each crashed the lowering: a 2^64-element splat
// constant threw std::length_error in the LLVM translation, tensor.empty of
// 2^80 elements aborted kiln-run. Both pipelines run the check first.

func.func @constant() -> tensor<4xf32> {
  // expected-error @+1 {{'arith.constant' op result #0 type 'tensor<4611686018427387904x4xf32>' has more than 2^59 elements}}
  %c = arith.constant dense<1.0> : tensor<4611686018427387904x4xf32>
  %z = arith.constant dense<0.0> : tensor<4xf32>
  return %z : tensor<4xf32>
}

// -----

// A zero size leaves no elements, but the others still make strides.
func.func @empty() -> tensor<4xf32> {
  // expected-error @+1 {{'tensor.empty' op result #0 type 'tensor<1099511627776x1099511627776x0xf32>' has nonzero sizes whose product exceeds 2^59}}
  %e = tensor.empty() : tensor<1099511627776x1099511627776x0xf32>
  %z = arith.constant dense<0.0> : tensor<4xf32>
  return %z : tensor<4xf32>
}

// -----

// The signature is reported once, at the function; its body's uses of the
// argument are not reported again, the ops' results are.
// expected-error @+1 {{'func.func' op argument #0 type 'tensor<4611686018427387904x2xf32>' has more than 2^59 elements}}
func.func @signature(%x: tensor<4611686018427387904x2xf32>) -> tensor<2xf32> {
  %z = arith.constant dense<0.0> : tensor<2xf32>
  return %z : tensor<2xf32>
}

// -----

// Block arguments, here of a loop body: the value flowing in is reported at
// its op, the argument at its own location.
func.func @block_argument(%n: index) -> tensor<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{'tensor.empty' op result #0 type 'tensor<1099511627776x1099511627776xf32>' has more than 2^59 elements}}
  %e = tensor.empty() : tensor<1099511627776x1099511627776xf32>
  // expected-error @+1 {{'scf.for' op result #0 type 'tensor<1099511627776x1099511627776xf32>' has more than 2^59 elements}}
  %r = scf.for %i = %c0 to %n step %c1 iter_args(
      // expected-error @+1 {{block argument #1 type 'tensor<1099511627776x1099511627776xf32>' has more than 2^59 elements}}
      %a = %e) -> (tensor<1099511627776x1099511627776xf32>) {
    scf.yield %a : tensor<1099511627776x1099511627776xf32>
  }
  %z = arith.constant dense<0.0> : tensor<4xf32>
  return %z : tensor<4xf32>
}

// -----

// Dynamic sizes are left to the code that runs the function; the static
// ones are bounded.
func.func @dynamic(%x: tensor<?x4xf32>) -> tensor<4xf32> {
  %c = arith.constant 3 : index
  // expected-error @+1 {{'tensor.empty' op result #0 type 'tensor<?x4611686018427387904x2xf32>' has more than 2^59 elements}}
  %e = tensor.empty(%c) : tensor<?x4611686018427387904x2xf32>
  %z = arith.constant dense<0.0> : tensor<4xf32>
  return %z : tensor<4xf32>
}
