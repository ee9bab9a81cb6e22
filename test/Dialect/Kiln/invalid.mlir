// Every diagnostic of the kiln verifiers and type inference: each bad input
// gives exactly one error (verify-diagnostics rejects extra ones).
// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// The spec's bad-input cases first.

// k larger than the size of the dim.
func.func @topk_k_too_large(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.topk' op k (11) exceeds the size of dim 1 (10)}}
  %v, %i = "kiln.topk"(%x) {k = 11 : i64, dim = 1 : i64} : (tensor<4x10xf32>) -> (tensor<4x11xf32>, tensor<4x11xi64>)
  return
}

// -----

// dim out of range (rank 2 accepts [-2, 1]).
func.func @topk_dim_out_of_range(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.topk' op dim 2 is out of range for a rank-2 operand (expected to be in [-2, 1])}}
  %v, %i = "kiln.topk"(%x) {k = 1 : i64, dim = 2 : i64} : (tensor<4x10xf32>) -> (tensor<4x1xf32>, tensor<4x1xi64>)
  return
}

// -----

// Negative dims below -rank are out of range too.
func.func @softmax_dim_out_of_range(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.softmax' op dim -3 is out of range for a rank-2 operand (expected to be in [-2, 1])}}
  %y = "kiln.softmax"(%x) {dim = -3 : i64} : (tensor<4x10xf32>) -> tensor<4x10xf32>
  return
}

// -----

// A result type that does not match the inferred one names the expected type.
func.func @topk_mismatched_result(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.topk' op result #0 has type 'tensor<4x4xf32>', expected 'tensor<4x3xf32>'}}
  %v, %i = "kiln.topk"(%x) {k = 3 : i64, dim = 1 : i64} : (tensor<4x10xf32>) -> (tensor<4x4xf32>, tensor<4x4xi64>)
  return
}

// -----

// Only the indices result is wrong: it is named by its number.
func.func @max_mismatched_indices(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.max' op result #1 has type 'tensor<4x1xi64>', expected 'tensor<4xi64>'}}
  %v, %i = "kiln.max"(%x) {dim = 1 : i64} : (tensor<4x10xf32>) -> (tensor<4xf32>, tensor<4x1xi64>)
  return
}

// -----

// Mismatched result element type of a broadcasting op.
func.func @add_mismatched_result(%a: tensor<4xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.add' op result #0 has type 'tensor<4xf64>', expected 'tensor<4xf32>'}}
  %c = "kiln.add"(%a, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf64>
  return
}

// -----

// Index operands must have element type i64.
func.func @gather_wrong_index_type(%x: tensor<4x10xf32>, %i: tensor<4x3xi32>) {
  // expected-error @+1 {{'kiln.gather' op operand #1 must be statically shaped tensor of 64-bit signless integer values, but got 'tensor<4x3xi32>'}}
  %g = "kiln.gather"(%x, %i) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<4x3xi32>) -> tensor<4x3xf32>
  return
}

// -----

// A float index is rejected the same way.
func.func @take_float_index(%x: tensor<10xf32>, %i: tensor<3xf32>) {
  // expected-error @+1 {{'kiln.take' op operand #1 must be statically shaped tensor of 64-bit signless integer values, but got 'tensor<3xf32>'}}
  %t = "kiln.take"(%x, %i) : (tensor<10xf32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

// Shapes that do not broadcast.
func.func @add_not_broadcastable(%a: tensor<3xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.add' op operand shapes [3] and [4] are not broadcast-compatible}}
  %c = "kiln.add"(%a, %b) : (tensor<3xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

// Broadcasting is checked for comparisons as well.
func.func @gt_not_broadcastable(%a: tensor<2x3xf32>, %b: tensor<2x1x4xf32>) {
  // expected-error @+1 {{'kiln.gt' op operand shapes [2, 3] and [2, 1, 4] are not broadcast-compatible}}
  %c = "kiln.gt"(%a, %b) : (tensor<2x3xf32>, tensor<2x1x4xf32>) -> tensor<2x2x4xi1>
  return
}

// -----

// No implicit type promotion.
func.func @add_mixed_element_types(%a: tensor<3xf32>, %b: tensor<3xi64>) {
  // expected-error @+1 {{'kiln.add' op operands must have the same element type, got 'f32' and 'i64'}}
  %c = "kiln.add"(%a, %b) : (tensor<3xf32>, tensor<3xi64>) -> tensor<3xf32>
  return
}

// -----

// Float-only ops reject integers.
func.func @sqrt_of_integers(%a: tensor<3xi64>) {
  // expected-error @+1 {{'kiln.sqrt' op operand #0 must be statically shaped tensor of floating-point (f32 or f64) values, but got 'tensor<3xi64>'}}
  %c = "kiln.sqrt"(%a) : (tensor<3xi64>) -> tensor<3xi64>
  return
}

// -----

func.func @erf_of_integers(%a: tensor<3xi64>) {
  // expected-error @+1 {{'kiln.erf' op operand #0 must be statically shaped tensor of floating-point (f32 or f64) values, but got 'tensor<3xi64>'}}
  %c = kiln.erf %a : tensor<3xi64>
  return
}

// -----

func.func @erf_result_type(%a: tensor<3xf32>) {
  // expected-error @+1 {{'kiln.erf' op requires the same type for all operands and results}}
  %c = "kiln.erf"(%a) : (tensor<3xf32>) -> tensor<3xf64>
  return
}

// -----

// Dynamic shapes are not supported.
func.func @dynamic_shape(%a: tensor<?xf32>) {
  // expected-error @+1 {{'kiln.neg' op operand #0 must be statically shaped tensor of f32, f64 or i64 values, but got 'tensor<?xf32>'}}
  %c = "kiln.neg"(%a) : (tensor<?xf32>) -> tensor<?xf32>
  return
}

// -----

// The custom form infers result types, so operand types are checked there.
func.func @custom_form_dynamic(%a: tensor<?xf32>) {
  // expected-error @+1 {{'kiln.add' op lhs must be a statically shaped tensor, got 'tensor<?xf32>'}}
  %c = kiln.add %a, %a : tensor<?xf32>, tensor<?xf32>
  return
}

// -----

// Creation ops.

func.func @full_fractional_integer() {
  // expected-error @+1 {{'kiln.full' op value (1.5) must be integral for element type 'i64'}}
  %c = "kiln.full"() {value = 1.5 : f64} : () -> tensor<3xi64>
  return
}

// -----

func.func @full_bool_not_0_or_1() {
  // expected-error @+1 {{'kiln.full' op value (2) must be 0 or 1 for element type i1}}
  %c = "kiln.full"() {value = 2.0 : f64} : () -> tensor<3xi1>
  return
}

// -----

func.func @full_integer_overflow() {
  // expected-error @+1 {{'kiln.full' op value (1e+19) does not fit element type 'i64'}}
  %c = "kiln.full"() {value = 1.0e19 : f64} : () -> tensor<3xi64>
  return
}

// -----

func.func @constant_type_mismatch() {
  // expected-error @+1 {{'kiln.constant' op result #0 has type 'tensor<3xf32>', expected 'tensor<2xf32>'}}
  %c = "kiln.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<3xf32>
  return
}

// -----

func.func @constant_missing_value() {
  // expected-error @+1 {{'kiln.constant' op requires attribute 'value'}}
  %c = "kiln.constant"() : () -> tensor<3xf32>
  return
}

// -----

func.func @arange_rank() {
  // expected-error @+1 {{'kiln.arange' op result must be 1-D, got 'tensor<2x2xf32>'}}
  %r = "kiln.arange"() {start = 0.0 : f64} : () -> tensor<2x2xf32>
  return
}

// -----

func.func @arange_zero_step() {
  // expected-error @+1 {{'kiln.arange' op step must be non-zero}}
  %r = "kiln.arange"() {start = 0.0 : f64, step = 0.0 : f64} : () -> tensor<4xf32>
  return
}

// -----

func.func @arange_infinite_start() {
  // expected-error @+1 {{'kiln.arange' op start (inf) and step (1) must be finite}}
  %r = "kiln.arange"() {start = 0x7FF0000000000000 : f64} : () -> tensor<4xf32>
  return
}

// -----

func.func @arange_fractional_integer() {
  // expected-error @+1 {{'kiln.arange' op step (0.5) must be integral for element type 'i64'}}
  %r = "kiln.arange"() {start = 0.0 : f64, step = 0.5 : f64} : () -> tensor<4xi64>
  return
}

// -----

func.func @arange_bool() {
  // expected-error @+1 {{'kiln.arange' op result #0 must be statically shaped tensor of f32, f64 or i64 values, but got 'tensor<4xi1>'}}
  %r = "kiln.arange"() {start = 0.0 : f64} : () -> tensor<4xi1>
  return
}

// -----

// Elementwise ops.

func.func @clamp_no_bounds(%x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.clamp' op requires at least one of 'min' and 'max'}}
  %y = "kiln.clamp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @clamp_fractional_integer_bound(%x: tensor<4xi64>) {
  // expected-error @+1 {{'kiln.clamp' op max (2.5) must be integral for element type 'i64'}}
  %y = "kiln.clamp"(%x) {max = 2.5 : f64} : (tensor<4xi64>) -> tensor<4xi64>
  return
}

// -----

func.func @clamp_result_type(%x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.clamp' op requires the same type for all operands and results}}
  %y = "kiln.clamp"(%x) {min = 0.0 : f64} : (tensor<4xf32>) -> tensor<4xf64>
  return
}

// -----

func.func @where_not_mask(%c: tensor<4xf32>, %x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.where' op operand #0 must be statically shaped tensor of 1-bit signless integer values, but got 'tensor<4xf32>'}}
  %y = "kiln.where"(%c, %x, %x) : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @where_custom_not_mask(%c: tensor<4xf32>, %x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.where' op cond must have element type i1, got 'f32'}}
  %y = kiln.where %c, %x, %x : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  return
}

// -----

func.func @where_branch_types(%c: tensor<4xi1>, %x: tensor<4xf32>, %y: tensor<4xf64>) {
  // expected-error @+1 {{'kiln.where' op lhs and rhs must have the same element type, got 'f32' and 'f64'}}
  %z = "kiln.where"(%c, %x, %y) : (tensor<4xi1>, tensor<4xf32>, tensor<4xf64>) -> tensor<4xf32>
  return
}

// -----

func.func @where_not_broadcastable(%c: tensor<3xi1>, %x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.where' op operand types 'tensor<3xi1>', 'tensor<4xf32>' and 'tensor<4xf32>' are not broadcast-compatible}}
  %z = "kiln.where"(%c, %x, %x) : (tensor<3xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @cast_shape(%x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.cast' op requires the same shape for all operands and results}}
  %y = "kiln.cast"(%x) : (tensor<4xf32>) -> tensor<5xi64>
  return
}

// -----

func.func @equal_element_types(%x: tensor<4xf32>, %y: tensor<4xi64>) {
  // expected-error @+1 {{'kiln.equal' op operands must have the same element type, got 'f32' and 'i64'}}
  %b = "kiln.equal"(%x, %y) : (tensor<4xf32>, tensor<4xi64>) -> tensor<i1>
  return
}

// -----

// Shape ops.

func.func @reshape_count(%x: tensor<2x5xf32>) {
  // expected-error @+1 {{'kiln.reshape' op result type 'tensor<3x4xf32>' has 12 elements but the operand 'tensor<2x5xf32>' has 10}}
  %y = "kiln.reshape"(%x) : (tensor<2x5xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @reshape_element_type(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.reshape' op result element type 'f64' differs from the operand's 'f32'}}
  %y = "kiln.reshape"(%x) : (tensor<10xf32>) -> tensor<2x5xf64>
  return
}

// -----

func.func @expand_incompatible(%x: tensor<3x2xf32>) {
  // expected-error @+1 {{'kiln.expand' op operand type 'tensor<3x2xf32>' cannot be expanded to 'tensor<3x4xf32>' (each operand dim, aligned from the end, must be 1 or equal to the result dim)}}
  %y = "kiln.expand"(%x) : (tensor<3x2xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @expand_lower_rank(%x: tensor<3x2xf32>) {
  // expected-error @+1 {{'kiln.expand' op operand type 'tensor<3x2xf32>' cannot be expanded to 'tensor<2xf32>'}}
  %y = "kiln.expand"(%x) : (tensor<3x2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @expand_element_type(%x: tensor<2xf32>) {
  // expected-error @+1 {{'kiln.expand' op result element type 'i64' differs from the operand's 'f32'}}
  %y = "kiln.expand"(%x) : (tensor<2xf32>) -> tensor<3x2xi64>
  return
}

// -----

func.func @permute_length(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{'kiln.permute' op dims has 3 entries but the operand has rank 2}}
  %y = "kiln.permute"(%x) {dims = array<i64: 0, 1, 2>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @permute_repeated(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{'kiln.permute' op dim -2 appears more than once in dims}}
  %y = "kiln.permute"(%x) {dims = array<i64: 0, -2>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  return
}

// -----

func.func @permute_out_of_range(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{'kiln.permute' op dim 2 is out of range for a rank-2 operand (expected to be in [-2, 1])}}
  %y = "kiln.permute"(%x) {dims = array<i64: 2, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}

// -----

// matmul.

func.func @matmul_contracting(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{'kiln.matmul' op contracting dims differ: lhs 'tensor<2x3xf32>' has 3 columns but rhs 'tensor<4x5xf32>' has 4 rows}}
  %c = "kiln.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<2x3x4xf32>, %b: tensor<3x4x5xf32>) {
  // expected-error @+1 {{'kiln.matmul' op batch dims of 'tensor<2x3x4xf32>' and 'tensor<3x4x5xf32>' are not broadcast-compatible}}
  %c = "kiln.matmul"(%a, %b) : (tensor<2x3x4xf32>, tensor<3x4x5xf32>) -> tensor<2x3x5xf32>
  return
}

// -----

func.func @matmul_scalar(%a: tensor<f32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.matmul' op operands must be at least 1-D, got 'tensor<f32>' and 'tensor<4xf32>'}}
  %c = "kiln.matmul"(%a, %b) : (tensor<f32>, tensor<4xf32>) -> tensor<f32>
  return
}

// -----

func.func @matmul_element_types(%a: tensor<2x3xf32>, %b: tensor<3x2xf64>) {
  // expected-error @+1 {{'kiln.matmul' op operands must have the same element type, got 'f32' and 'f64'}}
  %c = "kiln.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x2xf64>) -> tensor<2x2xf32>
  return
}

// -----

// Reductions.

func.func @sum_repeated_dim(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.sum' op dim -1 appears more than once in dims}}
  %s = "kiln.sum"(%x) {dims = array<i64: 1, -1>} : (tensor<4x10xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @mean_dim_out_of_range(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.mean' op dim 5 is out of range for a rank-2 operand (expected to be in [-2, 1])}}
  %s = "kiln.mean"(%x) {dims = array<i64: 5>} : (tensor<4x10xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @mean_of_integers(%x: tensor<4xi64>) {
  // expected-error @+1 {{'kiln.mean' op operand #0 must be statically shaped tensor of floating-point (f32 or f64) values, but got 'tensor<4xi64>'}}
  %s = "kiln.mean"(%x) : (tensor<4xi64>) -> tensor<i64>
  return
}

// -----

func.func @amax_empty_dim(%x: tensor<4x0xf32>) {
  // expected-error @+1 {{'kiln.amax' op cannot reduce dim 1 of size 0: the reduction has no identity}}
  %s = "kiln.amax"(%x) {dims = array<i64: 1>} : (tensor<4x0xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @max_empty_dim(%x: tensor<0x3xf32>) {
  // expected-error @+1 {{'kiln.max' op cannot reduce dim 0 of size 0: the reduction has no identity}}
  %v, %i = "kiln.max"(%x) {dim = 0 : i64} : (tensor<0x3xf32>) -> (tensor<3xf32>, tensor<3xi64>)
  return
}

// -----

func.func @argmax_empty(%x: tensor<0x3xf32>) {
  // expected-error @+1 {{'kiln.argmax' op cannot reduce an empty tensor: the reduction has no identity}}
  %i = "kiln.argmax"(%x) : (tensor<0x3xf32>) -> tensor<i64>
  return
}

// -----

func.func @max_missing_dim(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.max' op requires attribute 'dim'}}
  %v, %i = "kiln.max"(%x) : (tensor<4x10xf32>) -> (tensor<f32>, tensor<i64>)
  return
}

// -----

func.func @argmin_dim_out_of_range(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.argmin' op dim -3 is out of range for a rank-2 operand (expected to be in [-2, 1])}}
  %i = "kiln.argmin"(%x) {dim = -3 : i64} : (tensor<4x10xf32>) -> tensor<4xi64>
  return
}

// -----

func.func @norm_p(%x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.norm' op p (0) must be greater than 0}}
  %n = "kiln.norm"(%x) {p = 0.0 : f64} : (tensor<4xf32>) -> tensor<f32>
  return
}

// -----

func.func @topk_negative_k(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.topk' op k (-1) must be non-negative}}
  %v, %i = "kiln.topk"(%x) {k = -1 : i64} : (tensor<10xf32>) -> (tensor<10xf32>, tensor<10xi64>)
  return
}

// -----

func.func @topk_rank0_k(%x: tensor<f32>) {
  // expected-error @+1 {{'kiln.topk' op k (0) must be 1 for a rank-0 operand}}
  %v, %i = "kiln.topk"(%x) {k = 0 : i64} : (tensor<f32>) -> (tensor<f32>, tensor<i64>)
  return
}

// -----

func.func @topk_bool(%x: tensor<10xi1>) {
  // expected-error @+1 {{'kiln.topk' op operand #0 must be statically shaped tensor of f32, f64 or i64 values, but got 'tensor<10xi1>'}}
  %v, %i = "kiln.topk"(%x) {k = 1 : i64} : (tensor<10xi1>) -> (tensor<1xi1>, tensor<1xi64>)
  return
}

// -----

func.func @kthvalue_k_zero(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.kthvalue' op k (0) is out of range for dim -1 of size 10 (expected 1 <= k <= 10)}}
  %v, %i = "kiln.kthvalue"(%x) {k = 0 : i64} : (tensor<4x10xf32>) -> (tensor<4xf32>, tensor<4xi64>)
  return
}

// -----

func.func @kthvalue_k_too_large(%x: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.kthvalue' op k (5) is out of range for dim 0 of size 4 (expected 1 <= k <= 4)}}
  %v, %i = "kiln.kthvalue"(%x) {k = 5 : i64, dim = 0 : i64} : (tensor<4x10xf32>) -> (tensor<10xf32>, tensor<10xi64>)
  return
}

// -----

// Indexing ops.

func.func @gather_rank(%x: tensor<4x10xf32>, %i: tensor<4xi64>) {
  // expected-error @+1 {{'kiln.gather' op index must have the same rank as the input (2), got 'tensor<4xi64>'}}
  %g = "kiln.gather"(%x, %i) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<4xf32>
  return
}

// -----

func.func @gather_index_too_large(%x: tensor<4x10xf32>, %i: tensor<5x3xi64>) {
  // expected-error @+1 {{'kiln.gather' op index size 5 at dim 0 exceeds the input size 4 (only dim 1 may be larger)}}
  %g = "kiln.gather"(%x, %i) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<5x3xi64>) -> tensor<5x3xf32>
  return
}

// -----

func.func @gather_dim(%x: tensor<4x10xf32>, %i: tensor<4x3xi64>) {
  // expected-error @+1 {{'kiln.gather' op dim 2 is out of range for a rank-2 operand (expected to be in [-2, 1])}}
  %g = "kiln.gather"(%x, %i) {dim = 2 : i64} : (tensor<4x10xf32>, tensor<4x3xi64>) -> tensor<4x3xf32>
  return
}

// -----

func.func @index_select_rank(%x: tensor<4x10xf32>, %i: tensor<2x2xi64>) {
  // expected-error @+1 {{'kiln.index_select' op index must be 1-D or rank 0, got 'tensor<2x2xi64>'}}
  %s = "kiln.index_select"(%x, %i) {dim = 0 : i64} : (tensor<4x10xf32>, tensor<2x2xi64>) -> tensor<4x10xf32>
  return
}

// -----

func.func @index_select_scalar_input(%x: tensor<f32>, %i: tensor<2xi64>) {
  // expected-error @+1 {{'kiln.index_select' op index must hold exactly one element for a rank-0 input, got 'tensor<2xi64>'}}
  %s = "kiln.index_select"(%x, %i) {dim = 0 : i64} : (tensor<f32>, tensor<2xi64>) -> tensor<f32>
  return
}

// -----

func.func @take_from_empty(%x: tensor<0xf32>, %i: tensor<2xi64>) {
  // expected-error @+1 {{'kiln.take' op cannot take from an empty input 'tensor<0xf32>'}}
  %t = "kiln.take"(%x, %i) : (tensor<0xf32>, tensor<2xi64>) -> tensor<2xf32>
  return
}

// -----

func.func @scatter_add_rank(%b: tensor<4x10xf32>, %i: tensor<4xi64>, %s: tensor<4x10xf32>) {
  // expected-error @+1 {{'kiln.scatter_add' op base, index and src must have the same rank, got 'tensor<4x10xf32>', 'tensor<4xi64>' and 'tensor<4x10xf32>'}}
  %r = "kiln.scatter_add"(%b, %i, %s) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<4xi64>, tensor<4x10xf32>) -> tensor<4x10xf32>
  return
}

// -----

func.func @scatter_add_src_too_small(%b: tensor<4x10xf32>, %i: tensor<4x3xi64>, %s: tensor<4x2xf32>) {
  // expected-error @+1 {{'kiln.scatter_add' op index size 3 at dim 1 exceeds the src size 2}}
  %r = "kiln.scatter_add"(%b, %i, %s) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x2xf32>) -> tensor<4x10xf32>
  return
}

// -----

func.func @scatter_add_base_too_small(%b: tensor<4x10xf32>, %i: tensor<5x3xi64>, %s: tensor<5x3xf32>) {
  // expected-error @+1 {{'kiln.scatter_add' op index size 5 at dim 0 exceeds the base size 4 (only dim 1 may be larger)}}
  %r = "kiln.scatter_add"(%b, %i, %s) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<5x3xi64>, tensor<5x3xf32>) -> tensor<4x10xf32>
  return
}

// -----

func.func @scatter_add_src_type(%b: tensor<4xf32>, %i: tensor<4xi64>, %s: tensor<4xf64>) {
  // expected-error @+1 {{'kiln.scatter_add' op src element type 'f64' differs from the base element type 'f32'}}
  %r = "kiln.scatter_add"(%b, %i, %s) {dim = 0 : i64} : (tensor<4xf32>, tensor<4xi64>, tensor<4xf64>) -> tensor<4xf32>
  return
}

// -----

func.func @index_add_src_shape(%b: tensor<5x3xf32>, %i: tensor<2xi64>, %s: tensor<3x3xf32>) {
  // expected-error @+1 {{'kiln.index_add' op src must have type 'tensor<2x3xf32>' (the base with dim 0 resized to the number of indices), got 'tensor<3x3xf32>'}}
  %r = "kiln.index_add"(%b, %i, %s) {dim = 0 : i64} : (tensor<5x3xf32>, tensor<2xi64>, tensor<3x3xf32>) -> tensor<5x3xf32>
  return
}

// -----

func.func @index_add_index_rank(%b: tensor<5x3xf32>, %i: tensor<2x1xi64>, %s: tensor<2x3xf32>) {
  // expected-error @+1 {{'kiln.index_add' op index must be 1-D or rank 0, got 'tensor<2x1xi64>'}}
  %r = "kiln.index_add"(%b, %i, %s) {dim = 0 : i64} : (tensor<5x3xf32>, tensor<2x1xi64>, tensor<2x3xf32>) -> tensor<5x3xf32>
  return
}

// -----

func.func @index_add_scalar_base(%b: tensor<f32>, %i: tensor<2xi64>, %s: tensor<f32>) {
  // expected-error @+1 {{'kiln.index_add' op index must hold exactly one element for a rank-0 base, got 'tensor<2xi64>'}}
  %r = "kiln.index_add"(%b, %i, %s) {dim = 0 : i64} : (tensor<f32>, tensor<2xi64>, tensor<f32>) -> tensor<f32>
  return
}

// -----

func.func @index_add_src_type(%b: tensor<5xi64>, %i: tensor<2xi64>, %s: tensor<2xf32>) {
  // expected-error @+1 {{'kiln.index_add' op src element type 'f32' differs from the base element type 'i64'}}
  %r = "kiln.index_add"(%b, %i, %s) {dim = 0 : i64} : (tensor<5xi64>, tensor<2xi64>, tensor<2xf32>) -> tensor<5xi64>
  return
}

// -----

func.func @put_counts(%b: tensor<2x3xf32>, %i: tensor<4xi64>, %s: tensor<3xf32>) {
  // expected-error @+1 {{'kiln.put' op index 'tensor<4xi64>' and src 'tensor<3xf32>' must have the same number of elements}}
  %r = "kiln.put"(%b, %i, %s) : (tensor<2x3xf32>, tensor<4xi64>, tensor<3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @put_src_type(%b: tensor<2x3xf32>, %i: tensor<4xi64>, %s: tensor<4xi64>) {
  // expected-error @+1 {{'kiln.put' op src element type 'i64' differs from the base element type 'f32'}}
  %r = "kiln.put"(%b, %i, %s) : (tensor<2x3xf32>, tensor<4xi64>, tensor<4xi64>) -> tensor<2x3xf32>
  return
}

// -----

func.func @put_into_empty(%b: tensor<0xf32>, %i: tensor<1xi64>, %s: tensor<1xf32>) {
  // expected-error @+1 {{'kiln.put' op cannot put into an empty base 'tensor<0xf32>'}}
  %r = "kiln.put"(%b, %i, %s) : (tensor<0xf32>, tensor<1xi64>, tensor<1xf32>) -> tensor<0xf32>
  return
}

// -----

// Neural-network ops.

func.func @mse_reduction(%x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.mse_loss' op reduction must be "mean", "sum" or "none", got "max"}}
  %l = "kiln.mse_loss"(%x, %x) {reduction = "max"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<f32>
  return
}

// -----

func.func @mse_shapes(%x: tensor<4xf32>, %t: tensor<5xf32>) {
  // expected-error @+1 {{'kiln.mse_loss' op operand shapes [4] and [5] are not broadcast-compatible}}
  %l = "kiln.mse_loss"(%x, %t) : (tensor<4xf32>, tensor<5xf32>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_target_shape(%x: tensor<8x5xf32>, %t: tensor<7xi64>) {
  // expected-error @+1 {{'kiln.cross_entropy' op target must have shape [8] for logits 'tensor<8x5xf32>', got 'tensor<7xi64>'}}
  %l = "kiln.cross_entropy"(%x, %t) : (tensor<8x5xf32>, tensor<7xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_logits_rank(%x: tensor<2x8x5xf32>, %t: tensor<2x8xi64>) {
  // expected-error @+1 {{'kiln.cross_entropy' op logits must be [C] or [N, C], got 'tensor<2x8x5xf32>'}}
  %l = "kiln.cross_entropy"(%x, %t) : (tensor<2x8x5xf32>, tensor<2x8xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_no_classes(%x: tensor<8x0xf32>, %t: tensor<8xi64>) {
  // expected-error @+1 {{'kiln.cross_entropy' op logits must have at least one class, got 'tensor<8x0xf32>'}}
  %l = "kiln.cross_entropy"(%x, %t) : (tensor<8x0xf32>, tensor<8xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_reduction(%x: tensor<8x5xf32>, %t: tensor<8xi64>) {
  // expected-error @+1 {{'kiln.cross_entropy' op reduction must be "mean", "sum" or "none", got "avg"}}
  %l = "kiln.cross_entropy"(%x, %t) {reduction = "avg"} : (tensor<8x5xf32>, tensor<8xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_float_target(%x: tensor<8x5xf32>, %t: tensor<8xf32>) {
  // expected-error @+1 {{'kiln.cross_entropy' op operand #1 must be statically shaped tensor of 64-bit signless integer values, but got 'tensor<8xf32>'}}
  %l = "kiln.cross_entropy"(%x, %t) : (tensor<8x5xf32>, tensor<8xf32>) -> tensor<f32>
  return
}

// -----

// The custom form infers result types while parsing: attributes are checked
// before inference reads them.

func.func @custom_missing_k(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.topk' op requires attribute 'k'}}
  %v, %i = kiln.topk %x : tensor<10xf32>
  return
}

// -----

func.func @custom_k_wrong_type(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.topk' op attribute 'k' failed to satisfy constraint: 64-bit signless integer attribute}}
  %v, %i = kiln.topk %x {k = "three"} : tensor<10xf32>
  return
}

// -----

func.func @custom_keepdim_wrong_type(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.sum' op attribute 'keepdim' failed to satisfy constraint: bool attribute}}
  %s = kiln.sum %x {keepdim = 3 : i64} : tensor<10xf32>
  return
}

// -----

func.func @custom_dims_wrong_type(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.amax' op attribute 'dims' failed to satisfy constraint: i64 dense array attribute}}
  %s = kiln.amax %x {dims = [0]} : tensor<10xf32>
  return
}

// -----

func.func @generic_k_wrong_type(%x: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.topk' op attribute 'k' failed to satisfy constraint: 64-bit signless integer attribute}}
  %v, %i = "kiln.topk"(%x) {k = 2.0 : f32} : (tensor<10xf32>) -> (tensor<2xf32>, tensor<2xi64>)
  return
}

// -----

// Element counts must fit comfortably in int64.
func.func @too_many_elements(%x: tensor<9223372036854775807x4xf32>) {
  // expected-error @+1 {{'kiln.reshape' op operand #0 type 'tensor<9223372036854775807x4xf32>' has more than 2^59 elements}}
  %y = "kiln.reshape"(%x) : (tensor<9223372036854775807x4xf32>) -> tensor<4xf32>
  return
}

// -----

// The same check guards inference while the custom form is parsed.
func.func @too_many_elements_custom(%x: tensor<4611686018427387904x2xf32>) {
  // expected-error @+1 {{'kiln.neg' op operand #0 type 'tensor<4611686018427387904x2xf32>' has more than 2^59 elements}}
  %y = kiln.neg %x : tensor<4611686018427387904x2xf32>
  return
}

// -----

func.func @too_many_elements_inferred(%x: tensor<4611686018427387904x2xf32>) {
  // expected-error @+1 {{'kiln.sum' op input type 'tensor<4611686018427387904x2xf32>' has more than 2^59 elements}}
  %z = kiln.sum %x : tensor<4611686018427387904x2xf32>
  return
}

// -----

// The limit is 2^59 elements (at most 2^62 bytes): 2^60 is over it.
func.func @over_the_limit(%x: tensor<f64>) {
  // expected-error @+1 {{'kiln.expand' op result #0 type 'tensor<1152921504606846976xf64>' has more than 2^59 elements}}
  %y = kiln.expand %x : tensor<f64> -> tensor<1152921504606846976xf64>
  return
}

// -----

// A zero size leaves no elements, but the other sizes still make strides:
// their product is bounded the same way, wherever the zero is.
func.func @too_large_empty_leading_zero(%x: tensor<0x4611686018427387904x4xf32>) {
  // expected-error @+1 {{'kiln.sum' op input type 'tensor<0x4611686018427387904x4xf32>' has nonzero sizes whose product exceeds 2^59}}
  %z = kiln.sum %x {dims = array<i64: 2>} : tensor<0x4611686018427387904x4xf32>
  return
}

// -----

func.func @too_large_empty_trailing_zero(%x: tensor<4611686018427387904x4x0xf32>) {
  // expected-error @+1 {{'kiln.neg' op operand #0 type 'tensor<4611686018427387904x4x0xf32>' has nonzero sizes whose product exceeds 2^59}}
  %y = "kiln.neg"(%x) : (tensor<4611686018427387904x4x0xf32>) -> tensor<4611686018427387904x4x0xf32>
  return
}

// -----

// kiln.fused: the region and the op must agree, and the region must be one
// of the three forms the lowering builds kernels for.
func.func @fused_arguments(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'kiln.fused' op region arguments must have the types of the operands}}
  %0 = kiln.fused(%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf64>):
    %e = kiln.cast %a : tensor<4xf64> to tensor<4xf32>
    kiln.yield %e : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @fused_terminator(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'kiln.fused' op region must end with kiln.yield}}
  %0 = "kiln.fused"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    %e = "kiln.exp"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  }) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @fused_yield_types(%x: tensor<4xf32>) -> tensor<4xf64> {
  // expected-error @+1 {{'kiln.fused' op kiln.yield operands must have the types of the results}}
  %0 = kiln.fused(%x) : (tensor<4xf32>) -> tensor<4xf64> {
  ^bb0(%a: tensor<4xf32>):
    %e = kiln.exp %a : tensor<4xf32>
    kiln.yield %e : tensor<4xf32>
  }
  return %0 : tensor<4xf64>
}

// -----

func.func @fused_no_results(%x: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.fused' op must have at least one result}}
  kiln.fused(%x) : (tensor<4xf32>) -> () {
  ^bb0(%a: tensor<4xf32>):
    kiln.yield
  }
  return
}

// -----

func.func @fused_elementwise_shapes(%x: tensor<4x8xf32>, %y: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>) {
  // expected-error @+1 {{'kiln.fused' op is one elementwise loop over its results, so they need one shape: result #1 has shape [8], result #0 [4, 8]}}
  %0:2 = kiln.fused(%x, %y) : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>) {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<8xf32>):
    %1 = kiln.exp %a : tensor<4x8xf32>
    %2 = kiln.exp %b : tensor<8xf32>
    kiln.yield %1, %2 : tensor<4x8xf32>, tensor<8xf32>
  }
  return %0#0, %0#1 : tensor<4x8xf32>, tensor<8xf32>
}

// -----

func.func @fused_view_row_group(%x: tensor<4x8xf32>) -> tensor<2x2x8xf32> {
  %0 = kiln.fused(%x) : (tensor<4x8xf32>) -> tensor<2x2x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %1 = kiln.exp %a : tensor<4x8xf32>
    // expected-error @+1 {{'kiln.reshape' op cannot be part of a row or column group, which evaluates its rows' chain itself; a view belongs to an elementwise loop or the chain of an op with FusesProducers (a reduction, softmax, selection or gather), which evaluates it where it reads}}
    %2 = kiln.reshape %1 : tensor<4x8xf32> -> tensor<2x2x8xf32>
    %3 = kiln.sum %2 {dims = array<i64: 2>, keepdim = true} : tensor<2x2x8xf32>
    %4 = kiln.sub %2, %3 : tensor<2x2x8xf32>, tensor<2x2x1xf32>
    kiln.yield %4 : tensor<2x2x8xf32>
  }
  return %0 : tensor<2x2x8xf32>
}

// -----

func.func @fused_view_epilogue(%x: tensor<4x8xf32>) -> tensor<2x2xf32> {
  %0 = kiln.fused(%x) : (tensor<4x8xf32>) -> tensor<2x2xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %1 = kiln.sum %a {dims = array<i64: 1>} : tensor<4x8xf32>
    // expected-error @+1 {{'kiln.reshape' op in a kiln.fused region must be in the input chain of kiln.sum, not in its epilogue, which is evaluated at the positions of its result}}
    %2 = kiln.reshape %1 : tensor<4xf32> -> tensor<2x2xf32>
    %3 = kiln.neg %2 : tensor<2x2xf32>
    kiln.yield %3 : tensor<2x2xf32>
  }
  return %0 : tensor<2x2xf32>
}

// -----

func.func @fused_matmul(%x: tensor<4x8xf32>, %y: tensor<8x8xf32>) -> tensor<4x8xf32> {
  %0 = kiln.fused(%x, %y) : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<8x8xf32>):
    // expected-error @+1 {{'kiln.matmul' op cannot be part of a kiln.fused region: it holds only elementwise ops, splat constants, ops with FusesProducers (reductions, softmaxes, selections, gathers), indexed reads and views}}
    %1 = kiln.matmul %a, %b : tensor<4x8xf32>, tensor<8x8xf32>
    kiln.yield %1 : tensor<4x8xf32>
  }
  return %0 : tensor<4x8xf32>
}

// -----

func.func @fused_dense_constant(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = kiln.fused(%x) : (tensor<2xf32>) -> tensor<2xf32> {
  ^bb0(%a: tensor<2xf32>):
    // expected-error @+1 {{'kiln.constant' op in a kiln.fused region must be a splat constant (a kernel reads other constants as operands)}}
    %c = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
    %1 = kiln.add %a, %c : tensor<2xf32>, tensor<2xf32>
    kiln.yield %1 : tensor<2xf32>
  }
  return %0 : tensor<2xf32>
}

// -----

// Two reductions, not both along the last dim: no row group.
func.func @fused_two_anchors(%x: tensor<8x8xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{'kiln.fused' op holds 2 ops with FusesProducers, but a kernel has one (a row group several reductions along the same last dims of rows of one shape; indexed reads may be evaluated in its chains)}}
  %0 = kiln.fused(%x) : (tensor<8x8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<8x8xf32>):
    %1 = kiln.sum %a {dims = array<i64: 0>} : tensor<8x8xf32>
    %2 = kiln.amax %a {dims = array<i64: 1>} : tensor<8x8xf32>
    %3 = kiln.add %1, %2 : tensor<8xf32>, tensor<8xf32>
    kiln.yield %3 : tensor<8xf32>
  }
  return %0 : tensor<8xf32>
}

// -----

func.func @fused_computed_index(%x: tensor<4x8xf32>, %i: tensor<4x2xi64>) -> tensor<4x2xf32> {
  %0 = kiln.fused(%x, %i) : (tensor<4x8xf32>, tensor<4x2xi64>) -> tensor<4x2xf32> {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<4x2xi64>):
    %1 = kiln.abs %b : tensor<4x2xi64>
    // expected-error @+1 {{'kiln.gather' op operand #1 in a kiln.fused region must be a block argument or a splat constant: only the first operand is computed by the fused chain}}
    %2 = kiln.gather %a, %1 {dim = 1 : i64} : tensor<4x8xf32>, tensor<4x2xi64>
    kiln.yield %2 : tensor<4x2xf32>
  }
  return %0 : tensor<4x2xf32>
}

// -----

func.func @fused_selection_epilogue(%x: tensor<4x8xf32>) -> tensor<4x2xf32> {
  // expected-error @+1 {{'kiln.fused' op must yield the results of kiln.topk as they are: it takes no elementwise epilogue}}
  %0 = kiln.fused(%x) : (tensor<4x8xf32>) -> tensor<4x2xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %v, %i = kiln.topk %a {k = 2 : i64, dim = 1 : i64} : tensor<4x8xf32>
    %1 = kiln.exp %v : tensor<4x2xf32>
    kiln.yield %1 : tensor<4x2xf32>
  }
  return %0 : tensor<4x2xf32>
}

// -----

func.func @fused_epilogue_shape(%x: tensor<4x8xf32>, %y: tensor<4x1xf32>) -> (tensor<4xf32>, tensor<4x4xf32>) {
  // expected-error @+1 {{'kiln.fused' op applies its epilogue to each element of kiln.sum's result, so every result needs its shape [4]: result #1 has shape [4, 4]}}
  %0:2 = kiln.fused(%x, %y) : (tensor<4x8xf32>, tensor<4x1xf32>) -> (tensor<4xf32>, tensor<4x4xf32>) {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<4x1xf32>):
    %1 = kiln.sum %a {dims = array<i64: 1>} : tensor<4x8xf32>
    %2 = kiln.add %1, %b : tensor<4xf32>, tensor<4x1xf32>
    kiln.yield %1, %2 : tensor<4xf32>, tensor<4x4xf32>
  }
  return %0#0, %0#1 : tensor<4xf32>, tensor<4x4xf32>
}

// -----

func.func @fused_row_group_dim(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = kiln.fused(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    // expected-error @+1 {{'kiln.sum' op in a row group must reduce the last dim, or the last few, of an input of the rows' shape [4, 8]}}
    %1 = kiln.sum %a {dims = array<i64: 0>, keepdim = true} : tensor<4x8xf32>
    %2 = kiln.sub %a, %1 : tensor<4x8xf32>, tensor<1x8xf32>
    kiln.yield %2 : tensor<4x8xf32>
  }
  return %0 : tensor<4x8xf32>
}

// -----

func.func @fused_row_group_softmax_dim(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = kiln.fused(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %1 = kiln.sum %a {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
    %2 = kiln.sub %a, %1 : tensor<4x8xf32>, tensor<4x1xf32>
    // expected-error @+1 {{'kiln.softmax' op in a row group must normalize the last dim of rows of the shape [4, 8], which its reductions reduce}}
    %3 = kiln.softmax %2 {dim = 0 : i64} : tensor<4x8xf32>
    kiln.yield %3 : tensor<4x8xf32>
  }
  return %0 : tensor<4x8xf32>
}

// -----

// Rows spanning the last two dims: every reduction reduces both.
func.func @fused_row_group_runs(%x: tensor<4x6x8xf32>) -> tensor<4x6x8xf32> {
  %0 = kiln.fused(%x) : (tensor<4x6x8xf32>) -> tensor<4x6x8xf32> {
  ^bb0(%a: tensor<4x6x8xf32>):
    %1 = kiln.sum %a {dims = array<i64: 2, 1>, keepdim = true} : tensor<4x6x8xf32>
    %2 = kiln.sub %a, %1 : tensor<4x6x8xf32>, tensor<4x1x1xf32>
    // expected-error @+1 {{'kiln.amax' op in a row group must reduce the last 2 dim(s), as its first reduction does, of an input of the rows' shape [4, 6, 8]}}
    %3 = kiln.amax %2 {dims = array<i64: 2>, keepdim = true} : tensor<4x6x8xf32>
    %4 = kiln.sub %2, %3 : tensor<4x6x8xf32>, tensor<4x6x1xf32>
    kiln.yield %4 : tensor<4x6x8xf32>
  }
  return %0 : tensor<4x6x8xf32>
}

// -----

// A softmax normalizes one dim; rows spanning two are not its rows.
func.func @fused_row_group_runs_softmax(%x: tensor<4x6x8xf32>) -> tensor<4x6x8xf32> {
  %0 = kiln.fused(%x) : (tensor<4x6x8xf32>) -> tensor<4x6x8xf32> {
  ^bb0(%a: tensor<4x6x8xf32>):
    %1 = kiln.sum %a {dims = array<i64: -2, -1>, keepdim = true} : tensor<4x6x8xf32>
    %2 = kiln.sub %a, %1 : tensor<4x6x8xf32>, tensor<4x1x1xf32>
    // expected-error @+1 {{'kiln.softmax' op in a row group must normalize the last dim of rows of the shape [4, 6, 8], which its reductions reduce}}
    %3 = kiln.softmax %2 {dim = 2 : i64} : tensor<4x6x8xf32>
    kiln.yield %3 : tensor<4x6x8xf32>
  }
  return %0 : tensor<4x6x8xf32>
}

// -----

// Per-row values of rows spanning two dims drop both.
func.func @fused_row_group_runs_shape(%x: tensor<4x6x8xf32>) -> (tensor<4x6x8xf32>, tensor<4x6xf32>) {
  // expected-error @+1 {{'kiln.fused' op is a row group over rows of shape [4, 6, 8], so each result has that shape or a row's: [4, 1, 1] or [4]; result #1 has shape [4, 6]}}
  %0:2 = kiln.fused(%x) : (tensor<4x6x8xf32>) -> (tensor<4x6x8xf32>, tensor<4x6xf32>) {
  ^bb0(%a: tensor<4x6x8xf32>):
    %1 = kiln.sum %a {dims = array<i64: 1, 2>, keepdim = true} : tensor<4x6x8xf32>
    %2 = kiln.sub %a, %1 : tensor<4x6x8xf32>, tensor<4x1x1xf32>
    %3 = kiln.sum %2 {dims = array<i64: 2>} : tensor<4x6x8xf32>
    kiln.yield %2, %3 : tensor<4x6x8xf32>, tensor<4x6xf32>
  }
  return %0#0, %0#1 : tensor<4x6x8xf32>, tensor<4x6xf32>
}

// -----

// A column group's results have the rows' shape or the columns'.
func.func @fused_column_group_results(%x: tensor<2x6x20xf32>, %y: tensor<6x1xf32>) -> (tensor<2x6x20xf32>, tensor<6x1xf32>) {
  // expected-error @+1 {{'kiln.fused' op is a column group over rows of shape [2, 6, 20], so each result has that shape or the columns': [2, 1, 20]; result #1 has shape [6, 1]}}
  %0:2 = kiln.fused(%x, %y) : (tensor<2x6x20xf32>, tensor<6x1xf32>) -> (tensor<2x6x20xf32>, tensor<6x1xf32>) {
  ^bb0(%a: tensor<2x6x20xf32>, %b: tensor<6x1xf32>):
    %1 = kiln.sum %a {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
    %2 = kiln.sub %a, %1 : tensor<2x6x20xf32>, tensor<2x1x20xf32>
    %3 = kiln.neg %b : tensor<6x1xf32>
    kiln.yield %2, %3 : tensor<2x6x20xf32>, tensor<6x1xf32>
  }
  return %0#0, %0#1 : tensor<2x6x20xf32>, tensor<6x1xf32>
}

// -----

// A column group evaluates its chain itself: no views inside.
func.func @fused_column_group_view(%x: tensor<2x6x20xf32>, %y: tensor<120xf32>) -> tensor<2x6x20xf32> {
  %0 = kiln.fused(%x, %y) : (tensor<2x6x20xf32>, tensor<120xf32>) -> tensor<2x6x20xf32> {
  ^bb0(%a: tensor<2x6x20xf32>, %b: tensor<120xf32>):
    // expected-error @+1 {{'kiln.reshape' op cannot be part of a row or column group, which evaluates its rows' chain itself; a view belongs to an elementwise loop or the chain of an op with FusesProducers (a reduction, softmax, selection or gather), which evaluates it where it reads}}
    %1 = kiln.reshape %b : tensor<120xf32> -> tensor<1x6x20xf32>
    %2 = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
    %3 = kiln.sub %a, %2 : tensor<2x6x20xf32>, tensor<2x1x20xf32>
    %4 = kiln.add %3, %1 : tensor<2x6x20xf32>, tensor<1x6x20xf32>
    kiln.yield %4 : tensor<2x6x20xf32>
  }
  return %0 : tensor<2x6x20xf32>
}

// -----

func.func @fused_row_group_selection(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = kiln.fused(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %1 = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
    // expected-error @+1 {{'kiln.argmax' op cannot be part of a row group, which holds only sum, prod, amax and amin along the rows, and softmax and log_softmax of them}}
    %2 = kiln.argmax %a {dim = 1 : i64, keepdim = true} : tensor<4x8xf32>
    %3 = kiln.cast %2 : tensor<4x1xi64> to tensor<4x1xf32>
    %4 = kiln.sub %a, %1 : tensor<4x8xf32>, tensor<4x1xf32>
    %5 = kiln.add %4, %3 : tensor<4x8xf32>, tensor<4x1xf32>
    kiln.yield %5 : tensor<4x8xf32>
  }
  return %0 : tensor<4x8xf32>
}

// -----

func.func @fused_row_group_results(%x: tensor<4x8xf32>, %y: tensor<1x8xf32>) -> (tensor<4x8xf32>, tensor<1x8xf32>) {
  // expected-error @+1 {{'kiln.fused' op is a row group over rows of shape [4, 8], so each result has that shape or a row's: [4, 1] or [4]; result #1 has shape [1, 8]}}
  %0:2 = kiln.fused(%x, %y) : (tensor<4x8xf32>, tensor<1x8xf32>) -> (tensor<4x8xf32>, tensor<1x8xf32>) {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<1x8xf32>):
    %1 = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
    %2 = kiln.sub %a, %1 : tensor<4x8xf32>, tensor<4x1xf32>
    %3 = kiln.neg %b : tensor<1x8xf32>
    kiln.yield %2, %3 : tensor<4x8xf32>, tensor<1x8xf32>
  }
  return %0#0, %0#1 : tensor<4x8xf32>, tensor<1x8xf32>
}

// -----

// A reduction without keepdim gives each row's value; broadcast against
// the rows it would line up with their columns.
func.func @fused_row_group_dropped_dim(%x: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4xf32>) {
  %0:2 = kiln.fused(%x) : (tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4xf32>) {
  ^bb0(%a: tensor<4x4xf32>):
    %1 = kiln.sum %a {dims = array<i64: 1>} : tensor<4x4xf32>
    %2 = kiln.exp %1 : tensor<4xf32>
    // expected-error @+1 {{'kiln.sub' op in a row group uses the per-row value of kiln.sum without keepdim, so its result must have the shape [4]}}
    %3 = kiln.sub %a, %2 : tensor<4x4xf32>, tensor<4xf32>
    kiln.yield %3, %2 : tensor<4x4xf32>, tensor<4xf32>
  }
  return %0#0, %0#1 : tensor<4x4xf32>, tensor<4xf32>
}

// -----

// An indexed read in a kernel's chain reads its operands as stored.
func.func @fused_indexed_read_computed_input(%x: tensor<8x4xf32>, %i: tensor<3xi64>) -> tensor<4xf32> {
  %0 = kiln.fused(%x, %i) : (tensor<8x4xf32>, tensor<3xi64>) -> tensor<4xf32> {
  ^bb0(%a: tensor<8x4xf32>, %b: tensor<3xi64>):
    %1 = kiln.exp %a : tensor<8x4xf32>
    // expected-error @+1 {{'kiln.index_select' op operand #0 in a kiln.fused region must be a block argument or a splat constant: an indexed read in a kernel's chain reads its input and index as stored}}
    %2 = kiln.index_select %1, %b {dim = 0 : i64} : tensor<8x4xf32>, tensor<3xi64>
    %3 = kiln.sum %2 {dims = array<i64: 0>} : tensor<3x4xf32>
    kiln.yield %3 : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @fused_take_computed_index(%x: tensor<8xf32>, %i: tensor<3xi64>) -> tensor<f32> {
  %0 = kiln.fused(%x, %i) : (tensor<8xf32>, tensor<3xi64>) -> tensor<f32> {
  ^bb0(%a: tensor<8xf32>, %b: tensor<3xi64>):
    %1 = kiln.neg %b : tensor<3xi64>
    // expected-error @+1 {{'kiln.take' op operand #1 in a kiln.fused region must be a block argument or a splat constant: an indexed read in a kernel's chain reads its input and index as stored}}
    %2 = kiln.take %a, %1 : tensor<8xf32>, tensor<3xi64>
    %3 = kiln.amax %2 : tensor<3xf32>
    kiln.yield %3 : tensor<f32>
  }
  return %0 : tensor<f32>
}

// -----

// take has no kernel of its own in a region: only an anchor's chain
// evaluates it.
func.func @fused_take_elementwise(%x: tensor<8xf32>, %i: tensor<3xi64>) -> tensor<3xf32> {
  %0 = kiln.fused(%x, %i) : (tensor<8xf32>, tensor<3xi64>) -> tensor<3xf32> {
  ^bb0(%a: tensor<8xf32>, %b: tensor<3xi64>):
    // expected-error @+1 {{'kiln.take' op in a kiln.fused region must be read by the chain of an op with FusesProducers (a reduction, softmax, selection or gather), which evaluates it where it reads}}
    %1 = kiln.take %a, %b : tensor<8xf32>, tensor<3xi64>
    %2 = kiln.exp %1 : tensor<3xf32>
    kiln.yield %2 : tensor<3xf32>
  }
  return %0 : tensor<3xf32>
}

// -----

// An indexed read after the anchor (in its epilogue) is taken for the
// anchor, and the reduction before it is then a second anchor.
func.func @fused_indexed_read_in_epilogue(%x: tensor<3x4xf32>, %y: tensor<8xf32>, %i: tensor<3xi64>) -> tensor<3xf32> {
  // expected-error @+1 {{'kiln.fused' op holds 2 ops with FusesProducers, but a kernel has one}}
  %0 = kiln.fused(%x, %y, %i) : (tensor<3x4xf32>, tensor<8xf32>, tensor<3xi64>) -> tensor<3xf32> {
  ^bb0(%a: tensor<3x4xf32>, %c: tensor<8xf32>, %b: tensor<3xi64>):
    %1 = kiln.sum %a {dims = array<i64: 1>} : tensor<3x4xf32>
    %2 = kiln.index_select %c, %b {dim = 0 : i64} : tensor<8xf32>, tensor<3xi64>
    %3 = kiln.add %1, %2 : tensor<3xf32>, tensor<3xf32>
    kiln.yield %3 : tensor<3xf32>
  }
  return %0 : tensor<3xf32>
}
