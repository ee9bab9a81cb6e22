// RUN: kiln-opt --kiln-autodiff --split-input-file --verify-diagnostics %s
// RUN: %expect_exit 1 kiln-opt --kiln-autodiff %s --split-input-file
// RUN: kiln-opt "--kiln-autodiff=functions=missing" %S/Inputs/autodiff-options.mlir --verify-diagnostics --split-input-file
// Functions kiln-autodiff cannot differentiate: one diagnostic each, at the
// op (or function) responsible, and no @f_vjp.

// A float result computed from the argument only through an integer.
func.func @argmax_cast(%x: tensor<4xf32>) -> tensor<f32> {
  %i = kiln.argmax %x : tensor<4xf32>
  // expected-error @+2 {{'kiln.cast' op has no gradient, but result #0 of @argmax_cast depends on the floating-point arguments only through it}}
  // expected-note @+1 {{its operand #0 has type 'tensor<i64>', which carries no gradient}}
  %y = kiln.cast %i : tensor<i64> to tensor<f32>
  %z = kiln.exp %y : tensor<f32>
  return %z : tensor<f32>
}

// -----

// ones_like reads only the shape of its operand.
func.func @ones_like(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+2 {{'kiln.ones_like' op has no gradient, but result #0 of @ones_like depends on the floating-point arguments only through it}}
  // expected-note @+1 {{it uses only the shape of its operand #0}}
  %y = kiln.ones_like %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// An op from another dialect on the path from the argument to the result.
func.func @foreign(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'arith.addf' op has no gradient rule, but @foreign needs one to differentiate its results}}
  %y = arith.addf %x, %x : tensor<4xf32>
  %z = kiln.exp %y : tensor<4xf32>
  return %z : tensor<4xf32>
}

// -----

// expected-error @+1 {{cannot differentiate @branches: only single-block functions are supported}}
func.func @branches(%x: tensor<4xf32>) -> tensor<4xf32> {
  cf.br ^next(%x : tensor<4xf32>)
^next(%y: tensor<4xf32>):
  return %y : tensor<4xf32>
}

// -----

// A result computed inside the branches of an scf.if: the op's regions use
// the argument, so the gradient path runs through it (its VJP used to be
// zeros).
func.func @branches(%x: tensor<4xf32>, %c: i1) -> tensor<4xf32> {
  // expected-error @+1 {{'scf.if' op has no gradient rule, but @branches needs one to differentiate its results}}
  %y = scf.if %c -> tensor<4xf32> {
    scf.yield %x : tensor<4xf32>
  } else {
    %z = kiln.exp %x : tensor<4xf32>
    scf.yield %z : tensor<4xf32>
  }
  return %y : tensor<4xf32>
}

// -----

// expected-error @+1 {{cannot add the gradient function '@taken_vjp': the module already has a symbol of that name}}
func.func @taken(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
func.func private @taken_vjp(%x: tensor<4xf32>) -> tensor<4xf32>

// -----

// Named explicitly (the RUN line below), a function without a float argument
// is an error; without `functions` it is skipped silently.
// RUN: kiln-opt "--kiln-autodiff=functions=indices" %S/Inputs/autodiff-int.mlir --verify-diagnostics
// RUN: kiln-opt --kiln-autodiff %S/Inputs/autodiff-int.mlir | FileCheck %s --check-prefix=SKIP
// SKIP-NOT: _vjp
