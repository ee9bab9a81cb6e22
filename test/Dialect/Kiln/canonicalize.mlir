// Folds and canonicalization patterns of the kiln ops. Every rewrite is
// exact: the result has the same bits as the original IR.
// RUN: kiln-opt %s -split-input-file -canonicalize | FileCheck %s

// x + (-0.0) and x - (+0.0) are exact identities for floats.
// CHECK-LABEL: func.func @add_sub_float_zero
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>)
// CHECK-NEXT: return %[[X]], %[[X]], %[[X]]
func.func @add_sub_float_zero(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %nz = kiln.full -0.0 : tensor<4xf32>
  %pz = kiln.full 0.0 : tensor<f32>
  %a = kiln.add %x, %nz : tensor<4xf32>, tensor<4xf32>
  %b = kiln.add %nz, %x : tensor<4xf32>, tensor<4xf32>
  %c = kiln.sub %x, %pz : tensor<4xf32>, tensor<f32>
  return %a, %b, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// x + (+0.0) is NOT folded for floats: -0.0 + 0.0 is +0.0.
// CHECK-LABEL: func.func @add_float_positive_zero_kept
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00>
// CHECK: kiln.add %{{.*}}, %[[Z]]
func.func @add_float_positive_zero_kept(%x: tensor<4xf32>) -> tensor<4xf32> {
  %z = kiln.zeros_like %x : tensor<4xf32>
  %a = kiln.add %x, %z : tensor<4xf32>, tensor<4xf32>
  return %a : tensor<4xf32>
}

// -----

// For integers x + 0 folds whatever the sign; zeros_like is a constant.
// CHECK-LABEL: func.func @add_int_zeros_like
// CHECK-SAME: (%[[X:.*]]: tensor<4xi64>)
// CHECK-NEXT: return %[[X]]
func.func @add_int_zeros_like(%x: tensor<4xi64>) -> tensor<4xi64> {
  %z = kiln.zeros_like %x : tensor<4xi64>
  %a = kiln.add %z, %x : tensor<4xi64>, tensor<4xi64>
  return %a : tensor<4xi64>
}

// -----

// Adding zeros that broadcast x to a larger shape must not fold: the result
// type differs from x's.
// CHECK-LABEL: func.func @add_zero_broadcasting_kept
// CHECK: kiln.add
func.func @add_zero_broadcasting_kept(%x: tensor<4xi64>) -> tensor<3x4xi64> {
  %z = kiln.full 0.0 : tensor<3x4xi64>
  %a = kiln.add %x, %z : tensor<4xi64>, tensor<3x4xi64>
  return %a : tensor<3x4xi64>
}

// -----

// Multiplying or dividing by one.
// CHECK-LABEL: func.func @mul_div_one
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf64>)
// CHECK-NEXT: return %[[X]], %[[X]], %[[X]]
func.func @mul_div_one(%x: tensor<2x3xf64>) -> (tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>) {
  %one = kiln.ones_like %x : tensor<2x3xf64>
  %s = kiln.full 1.0 : tensor<f64>
  %a = kiln.mul %x, %one : tensor<2x3xf64>, tensor<2x3xf64>
  %b = kiln.mul %s, %x : tensor<f64>, tensor<2x3xf64>
  %c = kiln.div %x, %s : tensor<2x3xf64>, tensor<f64>
  return %a, %b, %c : tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>
}

// -----

// Negation rewrites: x + (-y) -> x - y, (-y) + x -> x - y, x - (-y) -> x + y,
// and -(-x) -> x.
// CHECK-LABEL: func.func @neg_rewrites
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>, %[[Y:.*]]: tensor<4xf32>)
// CHECK-NOT: kiln.neg
// CHECK: %[[S1:.*]] = kiln.sub %[[X]], %[[Y]]
// CHECK-NEXT: %[[S2:.*]] = kiln.sub %[[X]], %[[Y]]
// CHECK-NEXT: %[[A:.*]] = kiln.add %[[X]], %[[Y]]
// CHECK-NEXT: return %[[S1]], %[[S2]], %[[A]], %[[X]]
func.func @neg_rewrites(%x: tensor<4xf32>, %y: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %n = kiln.neg %y : tensor<4xf32>
  %a = kiln.add %x, %n : tensor<4xf32>, tensor<4xf32>
  %b = kiln.add %n, %x : tensor<4xf32>, tensor<4xf32>
  %c = kiln.sub %x, %n : tensor<4xf32>, tensor<4xf32>
  %nx = kiln.neg %x : tensor<4xf32>
  %d = kiln.neg %nx : tensor<4xf32>
  return %a, %b, %c, %d : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// Idempotent ops collapse: abs(abs(x)), floor(floor(x)), relu(relu(x)).
// CHECK-LABEL: func.func @idempotent
// CHECK-COUNT-3: kiln.
// CHECK-NOT: kiln.
func.func @idempotent(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %a = kiln.abs %x : tensor<4xf32>
  %aa = kiln.abs %a : tensor<4xf32>
  %f = kiln.floor %x : tensor<4xf32>
  %ff = kiln.floor %f : tensor<4xf32>
  %r = kiln.relu %x : tensor<4xf32>
  %rr = kiln.relu %r : tensor<4xf32>
  return %aa, %ff, %rr : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// Creation ops fold to splat constants.
// CHECK-LABEL: func.func @creation_folds
// CHECK-DAG: kiln.constant dense<2.500000e+00> : tensor<2x2xf32>
// CHECK-DAG: kiln.constant dense<1> : tensor<3xi64>
// CHECK-DAG: kiln.constant dense<true> : tensor<2xi1>
// CHECK-NOT: kiln.full
// CHECK-NOT: kiln.ones_like
func.func @creation_folds(%x: tensor<3xi64>) -> (tensor<2x2xf32>, tensor<3xi64>, tensor<2xi1>) {
  %a = kiln.full 2.5 : tensor<2x2xf32>
  %b = kiln.ones_like %x : tensor<3xi64>
  %c = kiln.full 1.0 : tensor<2xi1>
  return %a, %b, %c : tensor<2x2xf32>, tensor<3xi64>, tensor<2xi1>
}

// -----

// reshape of reshape is one reshape; a reshape to the same type vanishes.
// CHECK-LABEL: func.func @reshape_reshape
// CHECK-SAME: (%[[X:.*]]: tensor<2x6xf32>)
// CHECK-NEXT: %[[R:.*]] = kiln.reshape %[[X]] : tensor<2x6xf32> -> tensor<3x4xf32>
// CHECK-NEXT: return %[[R]], %[[X]]
func.func @reshape_reshape(%x: tensor<2x6xf32>) -> (tensor<3x4xf32>, tensor<2x6xf32>) {
  %a = kiln.reshape %x : tensor<2x6xf32> -> tensor<12xf32>
  %b = kiln.reshape %a : tensor<12xf32> -> tensor<3x4xf32>
  %c = kiln.reshape %x : tensor<2x6xf32> -> tensor<2x6xf32>
  return %b, %c : tensor<3x4xf32>, tensor<2x6xf32>
}

// -----

// A reshaped dense constant is a constant of the new shape.
// CHECK-LABEL: func.func @reshape_constant
// CHECK-NEXT: %[[C:.*]] = kiln.constant dense<{{\[}}[1, 2], [3, 4]]> : tensor<2x2xi64>
// CHECK-NEXT: return %[[C]]
func.func @reshape_constant() -> tensor<2x2xi64> {
  %c = kiln.constant dense<[1, 2, 3, 4]> : tensor<4xi64>
  %r = kiln.reshape %c : tensor<4xi64> -> tensor<2x2xi64>
  return %r : tensor<2x2xi64>
}

// -----

// A reshape moves above the elementwise ops it reshapes (each maps
// elements on its own), down to the stored tensors, where it is a free
// view: the chain then fuses with what reads it. Rank-0 operands broadcast
// as before; a rank-0 result's operands are reshaped like it.
// (Each operand gets its own reshape; CSE merges them later.)
// CHECK-LABEL: func.func @reshape_of_elementwise
// CHECK:       %[[C:.*]] = kiln.constant dense<2.000000e+00> : tensor<f32>
// CHECK:       %[[G:.*]] = kiln.gt %{{.*}}, %{{.*}} : tensor<32xf32>, tensor<32xf32>
// CHECK:       %[[X:.*]] = kiln.reshape %arg0 : tensor<4x8xf32> -> tensor<32xf32>
// CHECK:       %[[E:.*]] = kiln.exp %[[X]] : tensor<32xf32>
// CHECK:       %[[M:.*]] = kiln.mul %[[E]], %[[C]] : tensor<32xf32>, tensor<f32>
// CHECK:       %[[Y:.*]] = kiln.reshape %arg1 : tensor<4x8xf32> -> tensor<32xf32>
// CHECK:       %[[W:.*]] = kiln.where %[[G]], %[[M]], %[[Y]] : tensor<32xi1>, tensor<32xf32>, tensor<32xf32>
// CHECK:       %[[S:.*]] = kiln.reshape %arg2 : tensor<f32> -> tensor<1xf32>
// CHECK:       %[[N:.*]] = kiln.neg %[[S]] : tensor<1xf32>
// CHECK:       return %[[W]], %[[N]]
func.func @reshape_of_elementwise(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>, %s: tensor<f32>) -> (tensor<32xf32>, tensor<1xf32>) {
  %c = kiln.constant dense<2.0> : tensor<f32>
  %e = kiln.exp %x : tensor<4x8xf32>
  %m = kiln.mul %e, %c : tensor<4x8xf32>, tensor<f32>
  %g = kiln.gt %x, %y : tensor<4x8xf32>, tensor<4x8xf32>
  %w = kiln.where %g, %m, %y : tensor<4x8xi1>, tensor<4x8xf32>, tensor<4x8xf32>
  %r = kiln.reshape %w : tensor<4x8xf32> -> tensor<32xf32>
  %n = kiln.neg %s : tensor<f32>
  %t = kiln.reshape %n : tensor<f32> -> tensor<1xf32>
  return %r, %t : tensor<32xf32>, tensor<1xf32>
}

// -----

// Not moved: an op with another user (it would be computed twice), an
// operand broadcast along a dim (not rank 0), an expand (its operand has
// another shape).
// CHECK-LABEL: func.func @reshape_of_elementwise_kept
// CHECK:       %[[E:.*]] = kiln.exp %arg0
// CHECK:       kiln.reshape %[[E]]
// CHECK:       %[[A:.*]] = kiln.add %arg0, %arg1
// CHECK:       kiln.reshape %[[A]]
// CHECK:       %[[X:.*]] = kiln.expand %arg1
// CHECK:       kiln.reshape %[[X]]
func.func @reshape_of_elementwise_kept(%x: tensor<4x8xf32>, %b: tensor<8xf32>) -> (tensor<32xf32>, tensor<4x8xf32>, tensor<32xf32>, tensor<32xf32>) {
  %e = kiln.exp %x : tensor<4x8xf32>
  %r = kiln.reshape %e : tensor<4x8xf32> -> tensor<32xf32>
  %a = kiln.add %x, %b : tensor<4x8xf32>, tensor<8xf32>
  %q = kiln.reshape %a : tensor<4x8xf32> -> tensor<32xf32>
  %x2 = kiln.expand %b : tensor<8xf32> -> tensor<4x8xf32>
  %p = kiln.reshape %x2 : tensor<4x8xf32> -> tensor<32xf32>
  return %r, %e, %q, %p : tensor<32xf32>, tensor<4x8xf32>, tensor<32xf32>, tensor<32xf32>
}

// -----

// expand of expand is one expand; expanding a splat is a splat.
// CHECK-LABEL: func.func @expand_folds
// CHECK-SAME: (%[[X:.*]]: tensor<3x1xf32>)
// CHECK-DAG: %[[E:.*]] = kiln.expand %[[X]] : tensor<3x1xf32> -> tensor<2x3x4xf32>
// CHECK-DAG: %[[C:.*]] = kiln.constant dense<7.000000e+00> : tensor<5x2xf32>
// CHECK: return %[[E]], %[[C]]
func.func @expand_folds(%x: tensor<3x1xf32>) -> (tensor<2x3x4xf32>, tensor<5x2xf32>) {
  %a = kiln.expand %x : tensor<3x1xf32> -> tensor<3x4xf32>
  %b = kiln.expand %a : tensor<3x4xf32> -> tensor<2x3x4xf32>
  %s = kiln.full 7.0 : tensor<f32>
  %c = kiln.expand %s : tensor<f32> -> tensor<5x2xf32>
  return %b, %c : tensor<2x3x4xf32>, tensor<5x2xf32>
}

// -----

// permute of permute composes; identity permutations (also written with
// negative dims) vanish.
// CHECK-LABEL: func.func @permute_folds
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT: %[[P:.*]] = kiln.permute %[[X]] [1, 2, 0] : tensor<2x3x4xf32>
// CHECK-NEXT: return %[[P]], %[[X]]
func.func @permute_folds(%x: tensor<2x3x4xf32>) -> (tensor<3x4x2xf32>, tensor<2x3x4xf32>) {
  // [2,0,1] gives 4x2x3; then [2,0,1] again gives 3x4x2 = x's dims [1,2,0].
  %a = kiln.permute %x [2, 0, 1] : tensor<2x3x4xf32>
  %b = kiln.permute %a [-1, 0, 1] : tensor<4x2x3xf32>
  %c = kiln.permute %x [0, -2, -1] : tensor<2x3x4xf32>
  return %b, %c : tensor<3x4x2xf32>, tensor<2x3x4xf32>
}

// -----

// A reduction of a permute reduces the permute's input over the permuted
// dims, and permutes its (smaller) result where the kept dims' order
// differs: no transposed copy of the input.
// CHECK-LABEL: func.func @reduction_of_permute
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4x5xf32>, %[[Y:.*]]: tensor<6x7xi64>)
// x^T summed along its rows is x summed along its columns.
// CHECK-NEXT: %[[T:.*]] = kiln.sum %[[X]] {dims = array<i64: 0, 1, 2>} : tensor<2x3x4x5xf32>
// p's dims 1 and 3 are x's dims 0 and 2 (in the same order): the kept
// dims come out as x's [3, 5] and are permuted to p's [5, 3].
// CHECK-NEXT: %[[A:.*]] = kiln.sum %[[X]] {dims = array<i64: 0, 2>} : tensor<2x3x4x5xf32>
// CHECK-NEXT: %[[AP:.*]] = kiln.permute %[[A]] [1, 0] : tensor<3x5xf32>
// With keepdim, the result is permuted like the input.
// CHECK-NEXT: %[[B:.*]] = kiln.mean %[[X]] {dims = array<i64: 0, 2>, keepdim = true} : tensor<2x3x4x5xf32>
// CHECK-NEXT: %[[BP:.*]] = kiln.permute %[[B]] [3, 0, 1, 2] : tensor<1x3x1x5xf32>
// A maximum does not depend on the order of the reduced dims (p's 0 and
// 1 are x's 3 and 0); the kept dims keep their order: no permute.
// CHECK-NEXT: %[[C:.*]] = kiln.amax %[[X]] {dims = array<i64: 0, 3>} : tensor<2x3x4x5xf32>
// CHECK-NEXT: %[[D:.*]] = kiln.argmax %[[X]] {dim = 1 : i64} : tensor<2x3x4x5xf32>
// CHECK-NEXT: %[[DP:.*]] = kiln.permute %[[D]] [2, 0, 1] : tensor<2x4x5xi64>
// CHECK-NEXT: %[[V:.*]], %[[I:.*]] = kiln.min %[[X]] {dim = 3 : i64, keepdim = true} : tensor<2x3x4x5xf32>
// CHECK-NEXT: %[[VP:.*]] = kiln.permute %[[V]] [3, 0, 1, 2] : tensor<2x3x4x1xf32>
// CHECK-NEXT: %[[IP:.*]] = kiln.permute %[[I]] [3, 0, 1, 2] : tensor<2x3x4x1xi64>
// An integer sum is exact in any order.
// CHECK-NEXT: %[[E:.*]] = kiln.sum %[[Y]] : tensor<6x7xi64>
// CHECK-NEXT: return %[[T]], %[[AP]], %[[BP]], %[[C]], %[[DP]], %[[VP]], %[[IP]], %[[E]]
func.func @reduction_of_permute(%x: tensor<2x3x4x5xf32>, %y: tensor<6x7xi64>)
    -> (tensor<5xf32>, tensor<5x3xf32>, tensor<5x1x3x1xf32>, tensor<3x4xf32>,
        tensor<5x2x4xi64>, tensor<1x2x3x4xf32>, tensor<1x2x3x4xi64>, tensor<i64>) {
  %p = kiln.permute %x [3, 0, 1, 2] : tensor<2x3x4x5xf32>
  %t = kiln.sum %p {dims = array<i64: -3, -2, -1>} : tensor<5x2x3x4xf32>
  %a = kiln.sum %p {dims = array<i64: 3, 1>} : tensor<5x2x3x4xf32>
  %b = kiln.mean %p {dims = array<i64: 1, 3>, keepdim = true} : tensor<5x2x3x4xf32>
  %c = kiln.amax %p {dims = array<i64: 0, 1>} : tensor<5x2x3x4xf32>
  %d = kiln.argmax %p {dim = -2 : i64} : tensor<5x2x3x4xf32>
  %v, %i = kiln.min %p {dim = 0 : i64, keepdim = true} : tensor<5x2x3x4xf32>
  %yt = kiln.permute %y [1, 0] : tensor<6x7xi64>
  %e = kiln.sum %yt : tensor<7x6xi64>
  return %t, %a, %b, %c, %d, %v, %i, %e : tensor<5xf32>, tensor<5x3xf32>,
      tensor<5x1x3x1xf32>, tensor<3x4xf32>, tensor<5x2x4xi64>,
      tensor<1x2x3x4xf32>, tensor<1x2x3x4xi64>, tensor<i64>
}

// -----

// NOT rewritten: a float sum, mean, product or norm rounds in the order of
// its reduced dims, and x's order of them differs from the permute's (p's
// dims 0 and 1 are x's 1 and 0: summed over x, the elements would be added
// in another order); the whole of a permute is reduced in its own order;
// argmax without dim indexes the permute's flattened elements; and the
// lowering adds along runs of consecutive reduced dims (reducedRuns), which
// a permute may join: NHWC seen as NCHW and averaged over (0, 2, 3) adds
// lines of H x W, NHWC over (0, 1, 2) one dim of N x H x W.
// CHECK-LABEL: func.func @reduction_of_permute_kept
// CHECK-COUNT-6: kiln.permute
// CHECK-NOT: kiln.permute
func.func @reduction_of_permute_kept(%x: tensor<2x3x4xf32>, %nhwc: tensor<2x4x5x3xf32>)
    -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>,
        tensor<3xf32>) {
  %p = kiln.permute %x [1, 0, 2] : tensor<2x3x4xf32>
  %a = kiln.sum %p {dims = array<i64: 0, 1>} : tensor<3x2x4xf32>
  %q = kiln.permute %x [1, 0, 2] : tensor<2x3x4xf32>
  %b = kiln.mean %q {dims = array<i64: 0, 1>} : tensor<3x2x4xf32>
  %r = kiln.permute %x [1, 0, 2] : tensor<2x3x4xf32>
  %c = kiln.norm %r {dims = array<i64: 0, 1>, p = 3.0 : f64} : tensor<3x2x4xf32>
  %s = kiln.permute %x [2, 1, 0] : tensor<2x3x4xf32>
  %d = kiln.prod %s : tensor<4x3x2xf32>
  %t = kiln.permute %x [2, 1, 0] : tensor<2x3x4xf32>
  %e = kiln.argmax %t : tensor<4x3x2xf32>
  %nchw = kiln.permute %nhwc [0, 3, 1, 2] : tensor<2x4x5x3xf32>
  %f = kiln.mean %nchw {dims = array<i64: 0, 2, 3>} : tensor<2x3x4x5xf32>
  return %a, %b, %c, %d, %e, %f : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>,
      tensor<f32>, tensor<i64>, tensor<3xf32>
}

// -----

// A reduction with keepdim also reduces the unit dims of its input: the
// same shape and values, and its reduced dims of [N, C, 1, 1] over C a
// trailing run (a row group's rows). Without keepdim they would be dropped
// from the result, so it stays; one reducing all dims (absent dims) too.
// CHECK-LABEL: func.func @keepdim_reduces_unit_dims
// CHECK: kiln.mean %arg0 {dims = array<i64: 1, 2, 3>, keepdim = true} : tensor<4x8x1x1xf32>
// CHECK: kiln.amax %arg0 {dims = array<i64: 0, 1, 2, 3>, keepdim = true} : tensor<4x8x1x1xf32>
// CHECK: kiln.sum %arg0 {dims = array<i64: 1>} : tensor<4x8x1x1xf32>
// CHECK: kiln.prod %arg0 {keepdim = true} : tensor<4x8x1x1xf32>
// CHECK: kiln.norm %arg1 {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
func.func @keepdim_reduces_unit_dims(%x: tensor<4x8x1x1xf32>, %y: tensor<4x8xf32>)
    -> (tensor<4x1x1x1xf32>, tensor<1x1x1x1xf32>, tensor<4x1x1xf32>,
        tensor<1x1x1x1xf32>, tensor<4x1xf32>) {
  %a = kiln.mean %x {dims = array<i64: 1>, keepdim = true} : tensor<4x8x1x1xf32>
  %b = kiln.amax %x {dims = array<i64: -3, 0>, keepdim = true} : tensor<4x8x1x1xf32>
  %c = kiln.sum %x {dims = array<i64: 1>} : tensor<4x8x1x1xf32>
  %d = kiln.prod %x {keepdim = true} : tensor<4x8x1x1xf32>
  %e = kiln.norm %y {dims = array<i64: 1>, keepdim = true, p = 2.0 : f64} : tensor<4x8xf32>
  return %a, %b, %c, %d, %e : tensor<4x1x1x1xf32>, tensor<1x1x1x1xf32>,
      tensor<4x1x1xf32>, tensor<1x1x1x1xf32>, tensor<4x1xf32>
}

// -----

// Two transposes cancel.
// CHECK-LABEL: func.func @transpose_twice
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @transpose_twice(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = kiln.permute %x [1, 0] : tensor<2x3xf32>
  %b = kiln.permute %a [1, 0] : tensor<3x2xf32>
  return %b : tensor<2x3xf32>
}

// -----

// where with a constant mask or equal branches picks a branch; a cast to the
// same type vanishes.
// CHECK-LABEL: func.func @where_cast_folds
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>, %[[Y:.*]]: tensor<4xf32>, %[[M:.*]]: tensor<4xi1>)
// CHECK-NEXT: return %[[X]], %[[Y]], %[[X]], %[[X]]
func.func @where_cast_folds(%x: tensor<4xf32>, %y: tensor<4xf32>, %m: tensor<4xi1>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %t = kiln.full 1.0 : tensor<4xi1>
  %f = kiln.full 0.0 : tensor<i1>
  %a = kiln.where %t, %x, %y : tensor<4xi1>, tensor<4xf32>, tensor<4xf32>
  %b = kiln.where %f, %x, %y : tensor<i1>, tensor<4xf32>, tensor<4xf32>
  %c = kiln.where %m, %x, %x : tensor<4xi1>, tensor<4xf32>, tensor<4xf32>
  %d = kiln.cast %x : tensor<4xf32> to tensor<4xf32>
  return %a, %b, %c, %d : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// equal of different shapes is false (torch.equal), of an integer or bool
// tensor with itself true; a float tensor with itself is kept (a NaN
// equals nothing).
// CHECK-LABEL: func.func @equal_folds
// CHECK-SAME: (%{{.*}}: tensor<2x3xf32>, %{{.*}}: tensor<3x2xf32>, %[[I:.*]]: tensor<4xi64>, %[[B:.*]]: tensor<4xi1>, %[[X:.*]]: tensor<4xf32>)
// CHECK-DAG: %[[F:.*]] = kiln.constant dense<false> : tensor<i1>
// CHECK-DAG: %[[T:.*]] = kiln.constant dense<true> : tensor<i1>
// CHECK-DAG: %[[E:.*]] = kiln.equal %[[X]], %[[X]] : tensor<4xf32>, tensor<4xf32>
// CHECK: return %[[F]], %[[T]], %[[T]], %[[E]]
func.func @equal_folds(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>, %i: tensor<4xi64>, %m: tensor<4xi1>, %x: tensor<4xf32>) -> (tensor<i1>, tensor<i1>, tensor<i1>, tensor<i1>) {
  %0 = kiln.equal %a, %b : tensor<2x3xf32>, tensor<3x2xf32>
  %1 = kiln.equal %i, %i : tensor<4xi64>, tensor<4xi64>
  %2 = kiln.equal %m, %m : tensor<4xi1>, tensor<4xi1>
  %3 = kiln.equal %x, %x : tensor<4xf32>, tensor<4xf32>
  return %0, %1, %2, %3 : tensor<i1>, tensor<i1>, tensor<i1>, tensor<i1>
}

// -----

// A where whose branch must broadcast to a larger shape is kept.
// CHECK-LABEL: func.func @where_broadcast_kept
// CHECK: kiln.where
func.func @where_broadcast_kept(%x: tensor<4xf32>, %y: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %t = kiln.full 1.0 : tensor<i1>
  %a = kiln.where %t, %x, %y : tensor<i1>, tensor<4xf32>, tensor<3x4xf32>
  return %a : tensor<3x4xf32>
}

// -----

// pow with a constant exponent is computed the way torch.pow computes it.
// CHECK-LABEL: func.func @pow_constant_exponents
func.func @pow_constant_exponents(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %c1 = kiln.constant dense<1.0> : tensor<f32>
  %c2 = kiln.constant dense<2.0> : tensor<f32>
  %c3 = kiln.constant dense<3.0> : tensor<f32>
  %ch = kiln.constant dense<0.5> : tensor<f32>
  %cmh = kiln.constant dense<-0.5> : tensor<f32>
  %cm1 = kiln.constant dense<-1.0> : tensor<f32>
  %cm2 = kiln.constant dense<-2.0> : tensor<f32>
  %c4 = kiln.constant dense<4.0> : tensor<f32>
  // CHECK-DAG: %[[ONE:.*]] = kiln.constant dense<1.000000e+00> : tensor<f32>
  // CHECK: %[[SQ:.*]] = kiln.mul %arg0, %arg0
  // CHECK: %[[SQ2:.*]] = kiln.mul %arg0, %arg0
  // CHECK: %[[CUBE:.*]] = kiln.mul %[[SQ2]], %arg0
  // CHECK: %[[SQRT:.*]] = kiln.sqrt %arg0
  // CHECK: %[[RSQRT:.*]] = kiln.rsqrt %arg0
  // CHECK: %[[RECIP:.*]] = kiln.div %[[ONE]], %arg0
  // CHECK: %[[SQ3:.*]] = kiln.mul %arg0, %arg0
  // CHECK: %[[RECIP2:.*]] = kiln.div %[[ONE]], %[[SQ3]]
  // Any other exponent stays a pow.
  // CHECK: %[[POW:.*]] = kiln.pow %arg0, %{{.*}}
  // CHECK: return %arg0, %[[SQ]], %[[CUBE]], %[[SQRT]], %[[RSQRT]], %[[RECIP]], %[[RECIP2]], %[[POW]]
  %0 = kiln.pow %x, %c1 : tensor<4xf32>, tensor<f32>
  %1 = kiln.pow %x, %c2 : tensor<4xf32>, tensor<f32>
  %2 = kiln.pow %x, %c3 : tensor<4xf32>, tensor<f32>
  %3 = kiln.pow %x, %ch : tensor<4xf32>, tensor<f32>
  %4 = kiln.pow %x, %cmh : tensor<4xf32>, tensor<f32>
  %5 = kiln.pow %x, %cm1 : tensor<4xf32>, tensor<f32>
  %6 = kiln.pow %x, %cm2 : tensor<4xf32>, tensor<f32>
  %7 = kiln.pow %x, %c4 : tensor<4xf32>, tensor<f32>
  return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// A scalar base raised to a tensor of exponents keeps its pow: x * x would
// have the base's (smaller) shape.
// CHECK-LABEL: func.func @pow_broadcast_base
func.func @pow_broadcast_base(%x: tensor<f32>) -> tensor<4xf32> {
  %c2 = kiln.constant dense<2.0> : tensor<4xf32>
  // CHECK: kiln.pow
  %0 = kiln.pow %x, %c2 : tensor<f32>, tensor<4xf32>
  return %0 : tensor<4xf32>
}
