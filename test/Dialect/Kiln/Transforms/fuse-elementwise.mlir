// RUN: kiln-opt --kiln-fuse-elementwise %s | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise %s | kiln-opt | FileCheck %s

// kiln-fuse-elementwise: which ops share a kernel, and which must not.

// CHECK-LABEL: func.func @broadcast_chain
// CHECK: %[[F:.*]] = kiln.fused(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<8xf32>):
// CHECK-NEXT: %[[C:.*]] = kiln.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT: %[[A:.*]] = kiln.add %[[X]], %[[B]]
// CHECK-NEXT: %[[M:.*]] = kiln.mul %[[A]], %[[C]]
// CHECK-NEXT: %[[T:.*]] = kiln.tanh %[[M]]
// CHECK-NEXT: kiln.yield %[[T]]
// CHECK: return %[[F]]
// Broadcasting chain: a [4,8] input, an [8] bias and rank-0 constants.
func.func @broadcast_chain(%x: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %c = kiln.constant dense<0.5> : tensor<f32>
  %0 = kiln.add %x, %b : tensor<4x8xf32>, tensor<8xf32>
  %1 = kiln.mul %0, %c : tensor<4x8xf32>, tensor<f32>
  %2 = kiln.tanh %1 : tensor<4x8xf32>
  return %2 : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @mixed_types
// CHECK: kiln.fused(%arg0, %arg1) : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf64>
// CHECK: kiln.gt
// CHECK-NEXT: kiln.where
// CHECK-NEXT: kiln.cast
// CHECK-NEXT: kiln.exp
// CHECK-NEXT: kiln.yield
// Mixed element types: a comparison feeds where, a cast feeds arithmetic.
func.func @mixed_types(%x: tensor<16xf32>, %y: tensor<16xf32>) -> tensor<16xf64> {
  %m = kiln.gt %x, %y : tensor<16xf32>, tensor<16xf32>
  %w = kiln.where %m, %x, %y : tensor<16xi1>, tensor<16xf32>, tensor<16xf32>
  %d = kiln.cast %w : tensor<16xf32> to tensor<16xf64>
  %e = kiln.exp %d : tensor<16xf64>
  return %e : tensor<16xf64>
}

// CHECK-LABEL: func.func @diamond
// CHECK: kiln.fused(%arg0)
// CHECK: kiln.abs
// CHECK-NOT: kiln.abs
// CHECK: kiln.yield
// A value used twice inside one chain is computed once.
func.func @diamond(%x: tensor<16xf32>) -> tensor<16xf32> {
  %a = kiln.abs %x : tensor<16xf32>
  %s = kiln.sqrt %a : tensor<16xf32>
  %e = kiln.exp %a : tensor<16xf32>
  %r = kiln.add %s, %e : tensor<16xf32>, tensor<16xf32>
  return %r : tensor<16xf32>
}

// CHECK-LABEL: func.func @recompute_shared
// CHECK: %[[A:.*]] = kiln.fused(%arg0)
// CHECK: kiln.clamp
// CHECK: kiln.mul
// CHECK: %[[B:.*]] = kiln.fused(%arg0, %arg1)
// CHECK: kiln.clamp
// CHECK: kiln.add
// CHECK: return %[[A]], %[[B]]
// A producer with users in two chains: recomputing it from %x, which both
// chains read anyway, is cheaper than storing it, so each chain gets a copy.
// (The chains have different shapes, so they stay two loops.)
func.func @recompute_shared(%x: tensor<16xf32>, %y: tensor<4x16xf32>) -> (tensor<16xf32>, tensor<4x16xf32>) {
  %c = kiln.clamp %x {min = -1.0 : f64, max = 1.0 : f64} : tensor<16xf32>
  %a = kiln.mul %c, %x : tensor<16xf32>, tensor<16xf32>
  %b = kiln.add %c, %y : tensor<16xf32>, tensor<4x16xf32>
  return %a, %b : tensor<16xf32>, tensor<4x16xf32>
}

// CHECK-LABEL: func.func @merge_siblings
// CHECK: %[[K:.*]]:2 = kiln.fused(%arg0) : (tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
// CHECK-COUNT-1: kiln.clamp
// CHECK-NOT: kiln.clamp
// CHECK: kiln.mul
// CHECK: kiln.add
// CHECK: kiln.yield
// CHECK-NEXT: }
// CHECK-NEXT: return %[[K]]#1, %[[K]]#0
// The same chains with one shape: each recomputes the clamp, then the two
// loops become one (they read the same %x), computing the clamp once.
func.func @merge_siblings(%x: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  %c = kiln.clamp %x {min = -1.0 : f64, max = 1.0 : f64} : tensor<16xf32>
  %a = kiln.mul %c, %x : tensor<16xf32>, tensor<16xf32>
  %b = kiln.add %c, %x : tensor<16xf32>, tensor<16xf32>
  return %a, %b : tensor<16xf32>, tensor<16xf32>
}

// CHECK-LABEL: func.func @merge_at_most_8_results
// CHECK: kiln.fused(%arg0) : (tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
// CHECK: kiln.fused(%arg0) : (tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>)
// CHECK-NOT: kiln.fused
// CHECK: return
// Ten siblings reading %x: a kernel takes at most 8 results (each is a
// stream of stores; beyond 8 a merged loop measured no faster): the first
// eight share one loop, the last two another.
func.func @merge_at_most_8_results(%x: tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %c0 = kiln.constant dense<1.5> : tensor<f32>
  %r0 = kiln.mul %x, %c0 : tensor<64xf32>, tensor<f32>
  %c1 = kiln.constant dense<2.5> : tensor<f32>
  %r1 = kiln.mul %x, %c1 : tensor<64xf32>, tensor<f32>
  %c2 = kiln.constant dense<3.5> : tensor<f32>
  %r2 = kiln.mul %x, %c2 : tensor<64xf32>, tensor<f32>
  %c3 = kiln.constant dense<4.5> : tensor<f32>
  %r3 = kiln.mul %x, %c3 : tensor<64xf32>, tensor<f32>
  %c4 = kiln.constant dense<5.5> : tensor<f32>
  %r4 = kiln.mul %x, %c4 : tensor<64xf32>, tensor<f32>
  %c5 = kiln.constant dense<6.5> : tensor<f32>
  %r5 = kiln.mul %x, %c5 : tensor<64xf32>, tensor<f32>
  %c6 = kiln.constant dense<7.5> : tensor<f32>
  %r6 = kiln.mul %x, %c6 : tensor<64xf32>, tensor<f32>
  %c7 = kiln.constant dense<8.5> : tensor<f32>
  %r7 = kiln.mul %x, %c7 : tensor<64xf32>, tensor<f32>
  %c8 = kiln.constant dense<9.5> : tensor<f32>
  %r8 = kiln.mul %x, %c8 : tensor<64xf32>, tensor<f32>
  %c9 = kiln.constant dense<10.5> : tensor<f32>
  %r9 = kiln.mul %x, %c9 : tensor<64xf32>, tensor<f32>
  return %r0, %r1, %r2, %r3, %r4, %r5, %r6, %r7, %r8, %r9 : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}

// CHECK-LABEL: func.func @merge_blocked
// CHECK: %[[E:.*]] = kiln.exp %arg0
// CHECK: %[[M:.*]] = kiln.matmul %[[E]]
// CHECK: %[[T:.*]] = kiln.fused(%arg0, %[[M]])
// CHECK: return %[[E]], %[[T]]
// exp(x) and the tanh chain read the same %x, but the matmul between them
// reads exp's result: in one loop at the tanh's place, exp would come
// after its user. Not merged (the tanh chain reads the matmul's result).
func.func @merge_blocked(%x: tensor<16x16xf32>) -> (tensor<16x16xf32>, tensor<16x16xf32>) {
  %e = kiln.exp %x : tensor<16x16xf32>
  %m = kiln.matmul %e, %e : tensor<16x16xf32>, tensor<16x16xf32>
  %t = kiln.tanh %x : tensor<16x16xf32>
  %r = kiln.add %t, %m : tensor<16x16xf32>, tensor<16x16xf32>
  return %e, %r : tensor<16x16xf32>, tensor<16x16xf32>
}

// CHECK-LABEL: func.func @reduction
// CHECK: kiln.fused(%arg0) : (tensor<4x8xf32>) -> tensor<4xf32>
// CHECK: kiln.mul
// CHECK-NEXT: kiln.sum
// CHECK-NEXT: kiln.sqrt
// CHECK-NEXT: kiln.yield
// Reduction with a fused prologue and epilogue: sqrt(sum(x * x)).
func.func @reduction(%x: tensor<4x8xf32>) -> tensor<4xf32> {
  %sq = kiln.mul %x, %x : tensor<4x8xf32>, tensor<4x8xf32>
  %s = kiln.sum %sq {dims = array<i64: 1>} : tensor<4x8xf32>
  %r = kiln.sqrt %s : tensor<4xf32>
  return %r : tensor<4xf32>
}

// CHECK-LABEL: func.func @softmax_of_chain
// CHECK: kiln.fused(%arg0) : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK: kiln.gt
// CHECK: kiln.clamp
// CHECK: kiln.where
// CHECK-NEXT: kiln.softmax
// CHECK-NEXT: kiln.yield
// softmax of a where/clamp chain.
func.func @softmax_of_chain(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %z = kiln.constant dense<0.0> : tensor<f32>
  %m = kiln.gt %x, %z : tensor<4x8xf32>, tensor<f32>
  %c = kiln.clamp %x {min = -1.0 : f64, max = 1.0 : f64} : tensor<4x8xf32>
  %w = kiln.where %m, %c, %z : tensor<4x8xi1>, tensor<4x8xf32>, tensor<f32>
  %s = kiln.softmax %w {dim = 1 : i64} : tensor<4x8xf32>
  return %s : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @gather
// CHECK: kiln.fused(%arg0, %arg1) : (tensor<4x8xf32>, tensor<4x2xi64>) -> tensor<4x2xf32>
// CHECK: %[[E:.*]] = kiln.exp
// CHECK-NEXT: %[[G:.*]] = kiln.gather %[[E]]
// CHECK-NEXT: kiln.neg %[[G]]
// gather reads exp(x) where it gathers; the index is read as stored.
func.func @gather(%x: tensor<4x8xf32>, %i: tensor<4x2xi64>) -> tensor<4x2xf32> {
  %e = kiln.exp %x : tensor<4x8xf32>
  %g = kiln.gather %e, %i {dim = 1 : i64} : tensor<4x8xf32>, tensor<4x2xi64>
  %n = kiln.neg %g : tensor<4x2xf32>
  return %n : tensor<4x2xf32>
}

// CHECK-LABEL: func.func @embedding_bag
// CHECK: kiln.fused(%arg0, %arg1, %arg2) : (tensor<50x32xf32>, tensor<6xi64>, tensor<6x1xf32>) -> tensor<32xf32>
// CHECK-NEXT: ^bb0(%[[W:.*]]: tensor<50x32xf32>, %[[I:.*]]: tensor<6xi64>, %[[S:.*]]: tensor<6x1xf32>):
// CHECK-NEXT: %[[R:.*]] = kiln.index_select %[[W]], %[[I]]
// CHECK-NEXT: %[[M:.*]] = kiln.mul %[[R]], %[[S]]
// CHECK-NEXT: %[[SUM:.*]] = kiln.sum %[[M]]
// CHECK-NEXT: kiln.yield %[[SUM]]
// An indexed read of stored tensors in a reduction's chain, reading runs of
// 32 or more contiguous elements (rows of 32): the sum reads the selected
// rows in place (an embedding bag with per-sample weights), so they are
// never stored.
func.func @embedding_bag(%w: tensor<50x32xf32>, %i: tensor<6xi64>, %s: tensor<6x1xf32>) -> tensor<32xf32> {
  %r = kiln.index_select %w, %i {dim = 0 : i64} : tensor<50x32xf32>, tensor<6xi64>
  %m = kiln.mul %r, %s : tensor<6x32xf32>, tensor<6x1xf32>
  %b = kiln.sum %m {dims = array<i64: 0>} : tensor<6x32xf32>
  return %b : tensor<32xf32>
}

// CHECK-LABEL: func.func @selected_rows_then_topk
// CHECK: kiln.fused(%arg0, %arg1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.index_select
// CHECK-NEXT: kiln.topk
// A runtime kernel's tiles read them in place too.
func.func @selected_rows_then_topk(%x: tensor<4x3x32xf32>, %i: tensor<5xi64>) -> (tensor<5x3x2xf32>, tensor<5x3x2xi64>) {
  %t = kiln.index_select %x, %i {dim = 0 : i64} : tensor<4x3x32xf32>, tensor<5xi64>
  %v, %j = kiln.topk %t {k = 2 : i64, dim = 2 : i64} : tensor<5x3x32xf32>
  return %v, %j : tensor<5x3x2xf32>, tensor<5x3x2xi64>
}

// CHECK-LABEL: func.func @short_runs
// CHECK: %[[G:.*]] = kiln.gather %arg0, %arg1
// CHECK: %[[T:.*]] = kiln.take %arg0, %arg2
// CHECK: %[[S:.*]] = kiln.index_select %arg0, %arg3 {dim = 1 : i64}
// CHECK: %[[N:.*]] = kiln.index_select %arg4, %arg3 {dim = 0 : i64}
// CHECK: kiln.sum %[[G]]
// CHECK: kiln.amax %[[T]]
// CHECK: kiln.softmax %[[S]]
// CHECK: kiln.sum %[[N]] {dims = array<i64: 1>}
// Not fused: reads of runs shorter than 32 elements (gather and take choose
// each element; index_select along the innermost dim, or of slices of 16
// summed along them) keep their own kernels, which prefetch scattered
// reads or copy short slices whole for a consumer that vectorizes across
// them.
func.func @short_runs(%x: tensor<4x64xf32>, %g: tensor<4x3xi64>, %f: tensor<5xi64>, %i: tensor<3xi64>, %y: tensor<8x16xf32>) -> (tensor<4xf32>, tensor<f32>, tensor<4x3xf32>, tensor<3xf32>) {
  %0 = kiln.gather %x, %g {dim = 1 : i64} : tensor<4x64xf32>, tensor<4x3xi64>
  %1 = kiln.take %x, %f : tensor<4x64xf32>, tensor<5xi64>
  %2 = kiln.index_select %x, %i {dim = 1 : i64} : tensor<4x64xf32>, tensor<3xi64>
  %3 = kiln.index_select %y, %i {dim = 0 : i64} : tensor<8x16xf32>, tensor<3xi64>
  %4 = kiln.sum %0 {dims = array<i64: 1>} : tensor<4x3xf32>
  %5 = kiln.amax %1 : tensor<5xf32>
  %6 = kiln.softmax %2 {dim = 1 : i64} : tensor<4x3xf32>
  %7 = kiln.sum %3 {dims = array<i64: 1>} : tensor<3x16xf32>
  return %4, %5, %6, %7 : tensor<4xf32>, tensor<f32>, tensor<4x3xf32>, tensor<3xf32>
}

// CHECK-LABEL: func.func @short_rows_kept_columns
// CHECK: kiln.fused(%arg0, %arg1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.index_select
// CHECK-NEXT: kiln.sum
// CHECK: kiln.fused(%arg2, %arg1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.index_select
// CHECK-NEXT: kiln.amax
// CHECK: kiln.gather %arg0, %arg3
// CHECK-NOT: kiln.fused
// Fused however short the runs (16 and 2 elements), when the reduction
// keeps the last dim along which they lie: each selected row's columns are
// read as vectors. A gather's single elements (runs of 1) are not.
func.func @short_rows_kept_columns(%y: tensor<8x16xf32>, %i: tensor<3xi64>, %z: tensor<8x2xf32>, %g: tensor<3x16xi64>) -> (tensor<16xf32>, tensor<2xf32>, tensor<16xf32>) {
  %0 = kiln.index_select %y, %i {dim = 0 : i64} : tensor<8x16xf32>, tensor<3xi64>
  %1 = kiln.sum %0 {dims = array<i64: 0>} : tensor<3x16xf32>
  %2 = kiln.index_select %z, %i {dim = 0 : i64} : tensor<8x2xf32>, tensor<3xi64>
  %3 = kiln.amax %2 {dims = array<i64: 0>} : tensor<3x2xf32>
  %4 = kiln.gather %y, %g {dim = 0 : i64} : tensor<8x16xf32>, tensor<3x16xi64>
  %5 = kiln.sum %4 {dims = array<i64: 0>} : tensor<3x16xf32>
  return %1, %3, %5 : tensor<16xf32>, tensor<2xf32>, tensor<16xf32>
}

// CHECK-LABEL: func.func @bags_of_rows
// CHECK: kiln.fused(%arg0, %arg1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.index_select
// CHECK-NEXT: kiln.reshape
// CHECK-NEXT: kiln.sum
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused(%arg2)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.exp
// CHECK-NEXT: kiln.reshape
// CHECK-NEXT: kiln.softmax
// CHECK-NEXT: kiln.yield
// A reshape keeping the last dim joins the chain of a reduction or softmax
// as a view: bags of 4 selected rows of 16 (runs of 16, fused since the
// sum keeps the last dim along which they lie) summed without storing the
// selection, and a softmax of an elementwise chain split into 2x3 rows.
func.func @bags_of_rows(%w: tensor<10x16xf32>, %i: tensor<12xi64>, %x: tensor<6x8xf32>) -> (tensor<3x16xf32>, tensor<2x3x8xf32>) {
  %s = kiln.index_select %w, %i {dim = 0 : i64} : tensor<10x16xf32>, tensor<12xi64>
  %r = kiln.reshape %s : tensor<12x16xf32> -> tensor<3x4x16xf32>
  %b = kiln.sum %r {dims = array<i64: 1>} : tensor<3x4x16xf32>
  %e = kiln.exp %x : tensor<6x8xf32>
  %v = kiln.reshape %e : tensor<6x8xf32> -> tensor<2x3x8xf32>
  %m = kiln.softmax %v {dim = 2 : i64} : tensor<2x3x8xf32>
  return %b, %m : tensor<3x16xf32>, tensor<2x3x8xf32>
}

// CHECK-LABEL: func.func @permuted_heads
// CHECK: kiln.fused(%arg0)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.permute
// CHECK-NEXT: kiln.softmax
// CHECK-NEXT: kiln.yield
// CHECK: kiln.permute %{{.*}} [1, 0]
// CHECK: kiln.amax
// A permute copies on its own, so one keeping the last dim joins even
// reading a stored argument (heads of [B, L, H, D] as [B, H, L, D]: the
// softmax reads them in place, no transposed copy); a transpose of the last
// dim does not (the chain is stored, then transposed).
func.func @permuted_heads(%x: tensor<2x5x3x8xf32>, %y: tensor<4x8xf32>) -> (tensor<2x3x5x8xf32>, tensor<8x1xf32>) {
  %0 = kiln.permute %x [0, 2, 1, 3] : tensor<2x5x3x8xf32>
  %1 = kiln.softmax %0 {dim = 3 : i64} : tensor<2x3x5x8xf32>
  %2 = kiln.exp %y : tensor<4x8xf32>
  %3 = kiln.permute %2 [1, 0] : tensor<4x8xf32>
  %4 = kiln.amax %3 {dims = array<i64: 1>, keepdim = true} : tensor<8x4xf32>
  return %1, %4 : tensor<2x3x5x8xf32>, tensor<8x1xf32>
}

// CHECK-LABEL: func.func @views_in_loops
// CHECK: kiln.fused(%arg0, %arg1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.exp
// CHECK-NEXT: kiln.reshape
// CHECK-NEXT: kiln.mul
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused(%arg2, %arg3)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.permute
// CHECK-NEXT: kiln.add
// CHECK-NEXT: kiln.yield
// An elementwise loop reads through views as well: a chain reshaped
// (keeping the last dim) and multiplied, heads permuted and added, each one
// loop that stores neither the chain nor the transposed copy.
func.func @views_in_loops(%x: tensor<6x8xf32>, %y: tensor<2x3x8xf32>, %h: tensor<2x5x3x8xf32>, %b: tensor<2x3x5x8xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x5x8xf32>) {
  %0 = kiln.exp %x : tensor<6x8xf32>
  %1 = kiln.reshape %0 : tensor<6x8xf32> -> tensor<2x3x8xf32>
  %2 = kiln.mul %1, %y : tensor<2x3x8xf32>, tensor<2x3x8xf32>
  %3 = kiln.permute %h [0, 2, 1, 3] : tensor<2x5x3x8xf32>
  %4 = kiln.add %3, %b : tensor<2x3x5x8xf32>, tensor<2x3x5x8xf32>
  return %2, %4 : tensor<2x3x8xf32>, tensor<2x3x5x8xf32>
}

// CHECK-LABEL: func.func @views_not_fused
// CHECK-NOT: kiln.fused
// CHECK: kiln.reshape %arg0
// CHECK: kiln.sum
// CHECK: %[[E:.*]] = kiln.exp %arg1
// CHECK: %[[FLAT:.*]] = kiln.reshape %[[E]] : tensor<4x8xf32> -> tensor<32xf32>
// CHECK: kiln.amax %[[FLAT]]
// CHECK: %[[T:.*]] = kiln.tanh %arg1
// CHECK: %[[TV:.*]] = kiln.reshape %[[T]] : tensor<4x8xf32> -> tensor<2x2x8xf32>
// CHECK: kiln.sum %[[TV]]
// CHECK: kiln.sum %arg1
// CHECK: kiln.reshape
// CHECK: kiln.neg
// CHECK: return
// Not fused: a view of a stored argument (the sum reads it as stored; the
// view costs nothing); one that does not keep the last dim (elements
// would be read one at a time across it: the exps are stored); one with a
// second user (a view is not recomputed); one in a reduction's epilogue
// (evaluated at the result's positions).
func.func @views_not_fused(%x: tensor<8x4xf32>, %y: tensor<4x8xf32>) -> (tensor<2x4xf32>, tensor<f32>, tensor<2x8xf32>, tensor<2x2x8xf32>, tensor<2x2xf32>) {
  %0 = kiln.reshape %x : tensor<8x4xf32> -> tensor<2x4x4xf32>
  %1 = kiln.sum %0 {dims = array<i64: 1>} : tensor<2x4x4xf32>
  %2 = kiln.exp %y : tensor<4x8xf32>
  %3 = kiln.reshape %2 : tensor<4x8xf32> -> tensor<32xf32>
  %4 = kiln.amax %3 : tensor<32xf32>
  %5 = kiln.tanh %y : tensor<4x8xf32>
  %6 = kiln.reshape %5 : tensor<4x8xf32> -> tensor<2x2x8xf32>
  %7 = kiln.sum %6 {dims = array<i64: 1>} : tensor<2x2x8xf32>
  %8 = kiln.sum %y {dims = array<i64: 1>} : tensor<4x8xf32>
  %9 = kiln.reshape %8 : tensor<4xf32> -> tensor<2x2xf32>
  %10 = kiln.neg %9 : tensor<2x2xf32>
  return %1, %4, %7, %6, %10 : tensor<2x4xf32>, tensor<f32>, tensor<2x8xf32>, tensor<2x2x8xf32>, tensor<2x2xf32>
}

// CHECK-LABEL: func.func @indexed_read_of_chain
// CHECK: %[[G:.*]] = kiln.fused(%arg0, %arg1) : (tensor<8x32xf32>, tensor<3xi64>) -> tensor<3x32xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.exp
// CHECK-NEXT: kiln.index_select
// CHECK-NEXT: kiln.yield
// CHECK: kiln.amax %[[G]]
// Not fused into the amax: an indexed read in place reads its input as
// stored, so exp(x) would be stored whole; the index_select's own kernel
// evaluates exp only at the selected rows and stores those.
func.func @indexed_read_of_chain(%x: tensor<8x32xf32>, %i: tensor<3xi64>) -> tensor<3xf32> {
  %e = kiln.exp %x : tensor<8x32xf32>
  %g = kiln.index_select %e, %i {dim = 0 : i64} : tensor<8x32xf32>, tensor<3xi64>
  %m = kiln.amax %g {dims = array<i64: 1>} : tensor<3x32xf32>
  return %m : tensor<3xf32>
}

// CHECK-LABEL: func.func @indexed_read_used_twice
// CHECK: %[[R:.*]] = kiln.index_select %arg0, %arg1
// CHECK: kiln.fused(%[[R]])
// CHECK: kiln.sum
// CHECK: return
// Not fused: the selection is also returned, so it is stored once and the
// sum reads it (an indexed read is not recomputed).
func.func @indexed_read_used_twice(%w: tensor<50x32xf32>, %i: tensor<6xi64>) -> (tensor<32xf32>, tensor<6x32xf32>) {
  %r = kiln.index_select %w, %i {dim = 0 : i64} : tensor<50x32xf32>, tensor<6xi64>
  %e = kiln.exp %r : tensor<6x32xf32>
  %b = kiln.sum %e {dims = array<i64: 0>} : tensor<6x32xf32>
  return %b, %r : tensor<32xf32>, tensor<6x32xf32>
}

// CHECK-LABEL: func.func @matmul_bounds
// CHECK-NOT: kiln.fused
// CHECK: kiln.matmul
// CHECK-NOT: kiln.fused
// CHECK: return
// Not fused: matmul is not elementwise and bounds both chains.
func.func @matmul_bounds(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %e = kiln.exp %a : tensor<4x8xf32>
  %m = kiln.matmul %e, %b : tensor<4x8xf32>, tensor<8x4xf32>
  %t = kiln.tanh %m : tensor<4x4xf32>
  return %t : tensor<4x4xf32>
}

// CHECK-LABEL: func.func @reshape_bounds
// CHECK-NOT: kiln.fused
// CHECK: return
// Not fused: reshape changes how elements are indexed.
func.func @reshape_bounds(%x: tensor<4x8xf32>) -> tensor<32xf32> {
  %e = kiln.exp %x : tensor<4x8xf32>
  %r = kiln.reshape %e : tensor<4x8xf32> -> tensor<32xf32>
  %n = kiln.neg %r : tensor<32xf32>
  return %n : tensor<32xf32>
}

// CHECK-LABEL: func.func @broadcast_back
// CHECK-NOT: kiln.fused
// CHECK: kiln.amax
// CHECK-NEXT: kiln.sub
// CHECK-NEXT: return
// Not fused as an epilogue: x - amax(x) needs every row maximum before any
// element of the row: the maximum is stored, the subtraction is its own
// kernel.
func.func @broadcast_back(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
  %d = kiln.sub %x, %m : tensor<4x8xf32>, tensor<4x1xf32>
  return %d : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @reduction_two_users
// CHECK-NOT: kiln.fused
// CHECK: return
// Not fused as an epilogue: the sum has a second user, so it is stored.
func.func @reduction_two_users(%x: tensor<4x8xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x8xf32>
  %a = kiln.exp %s : tensor<4xf32>
  return %a, %s : tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @store_shared
// CHECK: %[[A:.*]]:2 = kiln.fused(%arg0, %arg1, %arg2)
// CHECK: %[[M:.*]] = kiln.gt
// CHECK: %[[W:.*]] = kiln.where %[[M]], %{{.*}}, %{{.*}}
// CHECK: %[[V:.*]] = kiln.where %[[M]], %{{.*}}, %{{.*}}
// CHECK: kiln.yield %[[V]], %[[W]] : tensor<16xf32>, tensor<16xf32>
// CHECK: return %[[A]]#1, %[[A]]#0
// The second chain would read %x and %y (eight times the bytes of the i1
// mask) to recompute the mask, so the first chain, which computes it
// anyway, yields it as a second result; then the two loops, of one shape,
// become one, and the mask is never stored.
func.func @store_shared(%x: tensor<16xf32>, %y: tensor<16xf32>, %z: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  %m = kiln.gt %x, %y : tensor<16xf32>, tensor<16xf32>
  %a = kiln.where %m, %x, %y : tensor<16xi1>, tensor<16xf32>, tensor<16xf32>
  %b = kiln.where %m, %z, %z : tensor<16xi1>, tensor<16xf32>, tensor<16xf32>
  return %a, %b : tensor<16xf32>, tensor<16xf32>
}

// CHECK-LABEL: func.func @recompute_broadcast
// CHECK: %[[M:.*]] = kiln.amax %arg0
// CHECK: %[[E:.*]] = kiln.fused(%arg0, %[[M]])
// CHECK: kiln.sub
// CHECK-NEXT: kiln.exp
// CHECK: %[[S:.*]] = kiln.fused(%arg0, %[[M]])
// CHECK: kiln.sub
// CHECK-NEXT: kiln.exp
// CHECK-NEXT: kiln.sum
// CHECK: return %[[E]], %[[S]]
// exp(x - m) is returned and summed: recomputing it in the sum's kernel
// reads x and the row maxima, a little more than its own bytes but less
// than twice them (storing writes it once and reads it back), so no
// kernel stores x - m.
func.func @recompute_broadcast(%x: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8xf32>) {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<8x16xf32>
  %d = kiln.sub %x, %m : tensor<8x16xf32>, tensor<8x1xf32>
  %e = kiln.exp %d : tensor<8x16xf32>
  %s = kiln.sum %e {dims = array<i64: 1>} : tensor<8x16xf32>
  return %e, %s : tensor<8x16xf32>, tensor<8xf32>
}

// CHECK-LABEL: func.func @single
// CHECK-NOT: kiln.fused
// CHECK: kiln.exp
// A single elementwise op is left as it is.
func.func @single(%x: tensor<16xf32>) -> tensor<16xf32> {
  %e = kiln.exp %x : tensor<16xf32>
  return %e : tensor<16xf32>
}
// topk runs a runtime kernel: the chain computing its input joins its group
// (the lowering evaluates it one cache-sized tile of rows at a time); the
// indices result is yielded like the values.
// CHECK-LABEL: func.func @topk
// CHECK: %[[F:.*]]:2 = kiln.fused(%arg0) : (tensor<4x100xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>)
// CHECK: kiln.abs
// CHECK-NEXT: kiln.neg
// CHECK-NEXT: %[[V:.*]], %[[I:.*]] = kiln.topk
// CHECK-NEXT: kiln.yield %[[V]], %[[I]]
// CHECK: return %[[F]]#0, %[[F]]#1
func.func @topk(%x: tensor<4x100xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>) {
  %a = kiln.abs %x : tensor<4x100xf32>
  %n = kiln.neg %a : tensor<4x100xf32>
  %v, %i = kiln.topk %n {k = 3 : i64} : tensor<4x100xf32>
  return %v, %i : tensor<4x3xf32>, tensor<4x3xi64>
}

// Not fused: topk's values are not final elementwise inputs of a consumer
// chain (topk has no FusesConsumers), so the exp stays its own kernel.
// CHECK-LABEL: func.func @topk_consumer
// CHECK: kiln.topk
// CHECK-NOT: kiln.fused
// CHECK: kiln.exp
func.func @topk_consumer(%x: tensor<4x100xf32>) -> tensor<4x3xf32> {
  %v, %i = kiln.topk %x {k = 3 : i64} : tensor<4x100xf32>
  %e = kiln.exp %v : tensor<4x3xf32>
  return %e : tensor<4x3xf32>
}

// -----

// A reduction over dims of size 1 keeps its input's shape: the group is
// its epilogue anchored on it (with a view in its chain), not a row group
// (a random program found the verifier rejecting it as one).
// CHECK-LABEL: func.func @unit_dims_reduced
// CHECK: %[[F:.*]] = kiln.fused(%arg0) : (tensor<1x1xf32>) -> tensor<1xf32> {
// CHECK: kiln.reshape
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 0>, keepdim = true} : tensor<1xf32>
// CHECK: kiln.sqrt
// CHECK: return %[[F]]
func.func @unit_dims_reduced(%x: tensor<1x1xf32>) -> tensor<1xf32> {
  %e = kiln.exp %x : tensor<1x1xf32>
  %v = kiln.reshape %e : tensor<1x1xf32> -> tensor<1xf32>
  %n = kiln.neg %v : tensor<1xf32>
  %s = kiln.sum %n {dims = array<i64: 0>, keepdim = true} : tensor<1xf32>
  %r = kiln.sqrt %s : tensor<1xf32>
  return %r : tensor<1xf32>
}

// CHECK-LABEL: func.func @residual_stream
// CHECK-NOT: kiln.fused({{[^,)]+, [^,)]+, [^,)]+, [^,)]+, }}
// CHECK: return
// A residual stream, each value the last plus a new input and each summed.
// A kernel recomputes a value with other users when that reads at most
// twice its size in new inputs, and the values that one needs in turn
// while the whole chain reads at most three times that; judged one value at
// a time, each step (one new input of its size) passed, and the last sum's
// kernel recomputed the whole stream from all 7 inputs. Now the first kernel
// that recomputes three steps also stores them, and the later sums read
// them: no kernel reads more than 4 inputs.
func.func @residual_stream(%x: tensor<64x16xf32>, %a1: tensor<64x16xf32>, %a2: tensor<64x16xf32>, %a3: tensor<64x16xf32>, %a4: tensor<64x16xf32>, %a5: tensor<64x16xf32>, %a6: tensor<64x16xf32>) -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %y1 = kiln.add %x, %a1 : tensor<64x16xf32>, tensor<64x16xf32>
  %s1 = kiln.sum %y1 {dims = array<i64: 0>} : tensor<64x16xf32>
  %y2 = kiln.add %y1, %a2 : tensor<64x16xf32>, tensor<64x16xf32>
  %s2 = kiln.sum %y2 {dims = array<i64: 0>} : tensor<64x16xf32>
  %y3 = kiln.add %y2, %a3 : tensor<64x16xf32>, tensor<64x16xf32>
  %s3 = kiln.sum %y3 {dims = array<i64: 0>} : tensor<64x16xf32>
  %y4 = kiln.add %y3, %a4 : tensor<64x16xf32>, tensor<64x16xf32>
  %s4 = kiln.sum %y4 {dims = array<i64: 0>} : tensor<64x16xf32>
  %y5 = kiln.add %y4, %a5 : tensor<64x16xf32>, tensor<64x16xf32>
  %s5 = kiln.sum %y5 {dims = array<i64: 0>} : tensor<64x16xf32>
  %y6 = kiln.add %y5, %a6 : tensor<64x16xf32>, tensor<64x16xf32>
  %s6 = kiln.sum %y6 {dims = array<i64: 0>} : tensor<64x16xf32>
  return %s1, %s2, %s3, %s4, %s5, %s6 : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}

// CHECK-LABEL: func.func @residual_stream_centred
// CHECK-NOT: kiln.fused(%arg0, %arg1, %arg2, %arg3, %arg4)
// CHECK: return
// A stream whose steps are centred over the channels (a mean over dim 1,
// a column reduction, and the values minus it): the last mean's kernel does
// not recompute the whole stream from all five inputs (the previous rule's
// did).
func.func @residual_stream_centred(%x: tensor<2x16x64xf32>, %a1: tensor<2x16x64xf32>, %a2: tensor<2x16x64xf32>, %a3: tensor<2x16x64xf32>, %a4: tensor<2x16x64xf32>) -> (tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>) {
  %y1 = kiln.add %x, %a1 : tensor<2x16x64xf32>, tensor<2x16x64xf32>
  %m1 = kiln.mean %y1 {dims = array<i64: 1>, keepdim = true} : tensor<2x16x64xf32>
  %c1 = kiln.sub %y1, %m1 : tensor<2x16x64xf32>, tensor<2x1x64xf32>
  %y2 = kiln.add %y1, %a2 : tensor<2x16x64xf32>, tensor<2x16x64xf32>
  %m2 = kiln.mean %y2 {dims = array<i64: 1>, keepdim = true} : tensor<2x16x64xf32>
  %c2 = kiln.sub %y2, %m2 : tensor<2x16x64xf32>, tensor<2x1x64xf32>
  %y3 = kiln.add %y2, %a3 : tensor<2x16x64xf32>, tensor<2x16x64xf32>
  %m3 = kiln.mean %y3 {dims = array<i64: 1>, keepdim = true} : tensor<2x16x64xf32>
  %c3 = kiln.sub %y3, %m3 : tensor<2x16x64xf32>, tensor<2x1x64xf32>
  %y4 = kiln.add %y3, %a4 : tensor<2x16x64xf32>, tensor<2x16x64xf32>
  %m4 = kiln.mean %y4 {dims = array<i64: 1>, keepdim = true} : tensor<2x16x64xf32>
  %c4 = kiln.sub %y4, %m4 : tensor<2x16x64xf32>, tensor<2x1x64xf32>
  return %c1, %c2, %c3, %c4 : tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>
}
