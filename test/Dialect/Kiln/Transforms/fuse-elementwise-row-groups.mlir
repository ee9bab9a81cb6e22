// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" %s -split-input-file | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise %s -split-input-file | FileCheck %s --check-prefix=PLAIN

// Row groups (the CPU pipeline's kiln-fuse-elementwise{row-groups=true}):
// a reduction over the last dim with keepdim whose result the chain
// broadcasts back over the same rows joins the chain's group.

// x - amax(x) and exp: the maximum joins the chain's kernel. Without row
// groups it bounds it (PLAIN).
// CHECK-LABEL: func.func @shift_by_max
// CHECK: %[[F:.*]] = kiln.fused(%arg0) : (tensor<64x128xf32>) -> tensor<64x128xf32> {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<64x128xf32>):
// CHECK-NEXT: %[[M:.*]] = kiln.amax %[[X]] {dims = array<i64: 1>, keepdim = true}
// CHECK-NEXT: %[[D:.*]] = kiln.sub %[[X]], %[[M]]
// CHECK-NEXT: %[[E:.*]] = kiln.exp %[[D]]
// CHECK-NEXT: kiln.yield %[[E]]
// CHECK: return %[[F]]
// PLAIN-LABEL: func.func @shift_by_max
// PLAIN: %[[M:.*]] = kiln.amax %arg0
// PLAIN: kiln.fused(%arg0, %[[M]])
func.func @shift_by_max(%x: tensor<64x128xf32>) -> tensor<64x128xf32> {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<64x128xf32>
  %d = kiln.sub %x, %m : tensor<64x128xf32>, tensor<64x1xf32>
  %e = kiln.exp %d : tensor<64x128xf32>
  return %e : tensor<64x128xf32>
}

// -----

// A layer norm: two reductions, the second reading the first's result,
// all in one kernel.
// CHECK-LABEL: func.func @layer_norm
// CHECK: %[[F:.*]] = kiln.fused(%arg0) : (tensor<64x128xf32>) -> tensor<64x128xf32> {
// CHECK: kiln.sum
// CHECK: kiln.sub
// CHECK: kiln.mul
// CHECK: kiln.sum
// CHECK: kiln.rsqrt
// CHECK: kiln.yield
// CHECK-NOT: kiln.fused
// CHECK: return %[[F]]
func.func @layer_norm(%x: tensor<64x128xf32>) -> tensor<64x128xf32> {
  %n = kiln.constant dense<128.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %s = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<64x128xf32>
  %m = kiln.div %s, %n : tensor<64x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<64x128xf32>, tensor<64x1xf32>
  %q = kiln.mul %d, %d : tensor<64x128xf32>, tensor<64x128xf32>
  %qs = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : tensor<64x128xf32>
  %v = kiln.div %qs, %n : tensor<64x1xf32>, tensor<f32>
  %ve = kiln.add %v, %eps : tensor<64x1xf32>, tensor<f32>
  %r = kiln.rsqrt %ve : tensor<64x1xf32>
  %y = kiln.mul %d, %r : tensor<64x128xf32>, tensor<64x1xf32>
  return %y : tensor<64x128xf32>
}

// -----

// softmax's gradient computed from x: the softmax joins the row group of
// the reduction after it (its row maximum and sum are computed with the
// row's reductions).
// CHECK-LABEL: func.func @softmax_gradient
// CHECK: %[[F:.*]] = kiln.fused(%arg0, %arg1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.softmax
// CHECK-NEXT: kiln.mul
// CHECK-NEXT: kiln.sum
// CHECK-NEXT: kiln.sub
// CHECK-NEXT: kiln.mul
// CHECK-NEXT: kiln.yield
// CHECK: return %[[F]]
// A softmax alone before a reduction-free chain stays an anchor.
// CHECK-LABEL: func.func @softmax_then_chain
// CHECK: kiln.fused(%arg0) : (tensor<64x128xf32>) -> tensor<64x128xf32>
// CHECK: kiln.softmax
// CHECK-NEXT: kiln.exp
func.func @softmax_gradient(%x: tensor<64x128xf32>, %g: tensor<64x128xf32>) -> tensor<64x128xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<64x128xf32>
  %p = kiln.mul %g, %y : tensor<64x128xf32>, tensor<64x128xf32>
  %s = kiln.sum %p {dims = array<i64: 1>, keepdim = true} : tensor<64x128xf32>
  %d = kiln.sub %g, %s : tensor<64x128xf32>, tensor<64x1xf32>
  %r = kiln.mul %y, %d : tensor<64x128xf32>, tensor<64x128xf32>
  return %r : tensor<64x128xf32>
}
func.func @softmax_then_chain(%x: tensor<64x128xf32>) -> tensor<64x128xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<64x128xf32>
  %e = kiln.exp %y : tensor<64x128xf32>
  return %e : tensor<64x128xf32>
}

// -----

// Not row groups: a reduction over dim 0 (its result runs along the rows),
// a row reduction without keepdim, and one the lowering would split across
// threads (few long rows: its order would differ from the unfused one).
// CHECK-LABEL: func.func @not_rows
// CHECK: kiln.amax %arg0 {dims = array<i64: 0>, keepdim = true}
// CHECK: kiln.amax %arg1 {dims = array<i64: 1>, keepdim = true}
// CHECK: return
func.func @not_rows(%x: tensor<64x128xf32>, %long: tensor<4x16384xf32>) -> (tensor<64x128xf32>, tensor<4x16384xf32>) {
  %m = kiln.amax %x {dims = array<i64: 0>, keepdim = true} : tensor<64x128xf32>
  %d = kiln.sub %x, %m : tensor<64x128xf32>, tensor<1x128xf32>
  %e = kiln.exp %d : tensor<64x128xf32>
  %lm = kiln.amax %long {dims = array<i64: 1>, keepdim = true} : tensor<4x16384xf32>
  %ld = kiln.sub %long, %lm : tensor<4x16384xf32>, tensor<4x1xf32>
  %le = kiln.exp %ld : tensor<4x16384xf32>
  return %e, %le : tensor<64x128xf32>, tensor<4x16384xf32>
}
