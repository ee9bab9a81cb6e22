// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" %s -split-input-file | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise %s -split-input-file | FileCheck %s --check-prefix=PLAIN
// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" --remarks-filter=kiln-fuse %s -split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK

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

// Not row groups: a reduction over dim 0 (its result runs along the rows:
// a column group, column-groups.mlir, of the matrix seen as [1, 64, 128]),
// and one over rows of more than 256 KB (no longer in cache for the row's
// next pass).
// CHECK-LABEL: func.func @not_rows
// CHECK: kiln.reshape %arg0 : tensor<64x128xf32> -> tensor<1x64x128xf32>
// CHECK: kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<1x64x128xf32>
// CHECK: kiln.amax %arg1 {dims = array<i64: 1>, keepdim = true}
// CHECK: return
func.func @not_rows(%x: tensor<64x128xf32>, %long: tensor<4x70000xf32>) -> (tensor<64x128xf32>, tensor<4x70000xf32>) {
  %m = kiln.amax %x {dims = array<i64: 0>, keepdim = true} : tensor<64x128xf32>
  %d = kiln.sub %x, %m : tensor<64x128xf32>, tensor<1x128xf32>
  %e = kiln.exp %d : tensor<64x128xf32>
  %lm = kiln.amax %long {dims = array<i64: 1>, keepdim = true} : tensor<4x70000xf32>
  %ld = kiln.sub %long, %lm : tensor<4x70000xf32>, tensor<4x1xf32>
  %le = kiln.exp %ld : tensor<4x70000xf32>
  return %e, %le : tensor<64x128xf32>, tensor<4x70000xf32>
}

// -----

// Few long rows: the lowering splits a row only into a power of two of
// segments dividing it, so rows of 8193 are reduced in one loop each and
// rows of 8192 in two segments of 4096; both row maxima join their chain's
// kernel (row groups; the second reduces each row in the split's order, so
// the same bits). A softmax over rows its kernels would split stays apart
// (its split kernels compute in another order): softmax's gradient from x
// over 4x16384 is the softmax's kernel, then a row group of the rest.
// CHECK-LABEL: func.func @long_rows
// CHECK: kiln.fused(%arg0) : (tensor<4x8193xf32>) -> tensor<4x8193xf32> {
// CHECK: kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true}
// CHECK: kiln.exp
// CHECK: kiln.fused(%arg1) : (tensor<4x8192xf32>) -> tensor<4x8192xf32> {
// CHECK: kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true}
// CHECK: kiln.exp
// CHECK: return
func.func @long_rows(%x: tensor<4x8193xf32>, %y: tensor<4x8192xf32>) -> (tensor<4x8193xf32>, tensor<4x8192xf32>) {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<4x8193xf32>
  %d = kiln.sub %x, %m : tensor<4x8193xf32>, tensor<4x1xf32>
  %e = kiln.exp %d : tensor<4x8193xf32>
  %ym = kiln.amax %y {dims = array<i64: 1>, keepdim = true} : tensor<4x8192xf32>
  %yd = kiln.sub %y, %ym : tensor<4x8192xf32>, tensor<4x1xf32>
  %ye = kiln.exp %yd : tensor<4x8192xf32>
  return %e, %ye : tensor<4x8193xf32>, tensor<4x8192xf32>
}
// CHECK-LABEL: func.func @split_rows_softmax_apart
// CHECK: %[[Y:.*]] = kiln.softmax %arg0 {dim = 1 : i64} : tensor<4x16384xf32>
// CHECK-NEXT: kiln.fused(%arg1, %[[Y]]) : (tensor<4x16384xf32>, tensor<4x16384xf32>) -> tensor<4x16384xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 1>, keepdim = true}
// CHECK: kiln.yield
func.func @split_rows_softmax_apart(%x: tensor<4x16384xf32>, %g: tensor<4x16384xf32>) -> tensor<4x16384xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<4x16384xf32>
  %p = kiln.mul %g, %y : tensor<4x16384xf32>, tensor<4x16384xf32>
  %s = kiln.sum %p {dims = array<i64: 1>, keepdim = true} : tensor<4x16384xf32>
  %d = kiln.sub %g, %s : tensor<4x16384xf32>, tensor<4x1xf32>
  %r = kiln.mul %y, %d : tensor<4x16384xf32>, tensor<4x16384xf32>
  return %r : tensor<4x16384xf32>
}

// -----

// Row groups with per-row results. A chain's value returned as well as
// reduced along its rows: the reduction (without keepdim) becomes a row
// group's, which reduces each row and stores the row's exps from cache --
// one read of x instead of two (without row groups -- the PLAIN checks --
// the exps are stored by one kernel and computed again by the sum's).
// REMARK: remark: [Passed] FusedKernel | Category:kiln-fuse | Function=value_and_its_sum | Remark="2 ops in one kernel (a row group: each row's 1 reduction(s), then the elementwise chain, while the row is in cache, storing 2 results): kiln.exp, kiln.sum"
// CHECK-LABEL: func.func @value_and_its_sum
// CHECK: %[[F:.*]]:2 = kiln.fused(%arg0) : (tensor<64x256xf32>) -> (tensor<64xf32>, tensor<64x256xf32>) {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<64x256xf32>):
// CHECK-NEXT: %[[E:.*]] = kiln.exp %[[X]]
// CHECK-NEXT: %[[S:.*]] = kiln.sum %[[E]] {dims = array<i64: 1>}
// CHECK-NEXT: kiln.yield %[[S]], %[[E]] : tensor<64xf32>, tensor<64x256xf32>
// CHECK-NOT: kiln.fused
// CHECK: return %[[F]]#1, %[[F]]#0
// PLAIN-LABEL: func.func @value_and_its_sum
// PLAIN: kiln.exp %arg0
// PLAIN: kiln.fused(%arg0) : (tensor<64x256xf32>) -> tensor<64xf32>
func.func @value_and_its_sum(%x: tensor<64x256xf32>) -> (tensor<64x256xf32>, tensor<64xf32>) {
  %e = kiln.exp %x : tensor<64x256xf32>
  %s = kiln.sum %e {dims = array<i64: 1>} : tensor<64x256xf32>
  return %e, %s : tensor<64x256xf32>, tensor<64xf32>
}

// -----

// A variance: the mean's row sum and the squares' row sum in one kernel,
// the mean (used by the chain and returned) yielded once per row.
// CHECK-LABEL: func.func @mean_and_variance
// CHECK: %[[F:.*]]:2 = kiln.fused(%arg0) : (tensor<64x256xf32>) -> (tensor<64x1xf32>, tensor<64x1xf32>) {
// CHECK: kiln.sum
// CHECK: kiln.sum
// CHECK: kiln.yield %{{.*}}, %{{.*}} : tensor<64x1xf32>, tensor<64x1xf32>
// CHECK-NOT: kiln.fused
// CHECK: return %[[F]]#1, %[[F]]#0
func.func @mean_and_variance(%x: tensor<64x256xf32>) -> (tensor<64x1xf32>, tensor<64x1xf32>) {
  %n = kiln.constant dense<256.0> : tensor<f32>
  %s = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<64x256xf32>
  %m = kiln.div %s, %n : tensor<64x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<64x256xf32>, tensor<64x1xf32>
  %q = kiln.mul %d, %d : tensor<64x256xf32>, tensor<64x256xf32>
  %qs = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : tensor<64x256xf32>
  %v = kiln.div %qs, %n : tensor<64x1xf32>, tensor<f32>
  return %m, %v : tensor<64x1xf32>, tensor<64x1xf32>
}

// -----

// Reductions of the same rows without keepdim, whose per-row values only
// values of a row's shape combine (a cosine similarity: the dot product
// over the norms): one row group reads each row of x and y once for the
// three sums. Before, three kernels read x and y twice.
// CHECK-LABEL: func.func @cosine_similarity
// CHECK: %[[F:.*]] = kiln.fused(%arg0, %arg1) : (tensor<64x256xf32>, tensor<64x256xf32>) -> tensor<64xf32> {
// CHECK-COUNT-3: kiln.sum
// CHECK: kiln.div
// CHECK-NEXT: kiln.yield
// CHECK-NOT: kiln.fused
// CHECK: return %[[F]]
// PLAIN-LABEL: func.func @cosine_similarity
// PLAIN-COUNT-3: kiln.fused
func.func @cosine_similarity(%x: tensor<64x256xf32>, %y: tensor<64x256xf32>) -> tensor<64xf32> {
  %xy = kiln.mul %x, %y : tensor<64x256xf32>, tensor<64x256xf32>
  %d = kiln.sum %xy {dims = array<i64: 1>} : tensor<64x256xf32>
  %xx = kiln.mul %x, %x : tensor<64x256xf32>, tensor<64x256xf32>
  %sx = kiln.sum %xx {dims = array<i64: 1>} : tensor<64x256xf32>
  %nx = kiln.sqrt %sx : tensor<64xf32>
  %yy = kiln.mul %y, %y : tensor<64x256xf32>, tensor<64x256xf32>
  %sy = kiln.sum %yy {dims = array<i64: 1>} : tensor<64x256xf32>
  %ny = kiln.sqrt %sy : tensor<64xf32>
  %n = kiln.mul %nx, %ny : tensor<64xf32>, tensor<64xf32>
  %c = kiln.div %d, %n : tensor<64xf32>, tensor<64xf32>
  return %c : tensor<64xf32>
}

// -----

// Not a row group: the row sums without keepdim reach an op of the rows'
// shape through a per-row op (s * s broadcast along the columns of x), so
// the sum stays apart (a row group would make it each row's own value; the
// verifier rejects that region, which the pass made before it followed the
// per-row values through each other).
// CHECK-LABEL: func.func @per_row_value_reaches_the_rows
// CHECK: %[[S:.*]] = kiln.sum %arg0 {dims = array<i64: 1>}
// CHECK: kiln.fused(%[[S]], %arg0)
func.func @per_row_value_reaches_the_rows(%x: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<8x8xf32>
  %t = kiln.mul %s, %s : tensor<8xf32>, tensor<8xf32>
  %y = kiln.mul %x, %t : tensor<8x8xf32>, tensor<8xf32>
  return %y : tensor<8x8xf32>
}

// -----

// A layer norm that also returns its statistics (as a training step keeps
// them for the backward pass): one kernel yielding y, the mean and the
// reciprocal deviation.
// CHECK-LABEL: func.func @layer_norm_with_statistics
// CHECK: %[[F:.*]]:3 = kiln.fused(%arg0) : (tensor<64x128xf32>) -> (tensor<64x128xf32>, tensor<64x1xf32>, tensor<64x1xf32>) {
// CHECK-NOT: kiln.fused
// CHECK: return %[[F]]#0, %[[F]]#{{[12]}}, %[[F]]#{{[12]}}
func.func @layer_norm_with_statistics(%x: tensor<64x128xf32>) -> (tensor<64x128xf32>, tensor<64x1xf32>, tensor<64x1xf32>) {
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
  return %y, %m, %r : tensor<64x128xf32>, tensor<64x1xf32>, tensor<64x1xf32>
}

// -----

// Not per-row results: a row sum with a user before the kernel that is
// not in it (the reshape would see a value the kernel has not made yet)
// is stored by a kernel of its own, which the row group reads; the value
// of a chain over rows too long for a row group (over 256 KB), or too
// short for a reduction to
// become a row group's (under 1 KB: the reduction's own kernel vectorizes
// them better), is stored, and the sum computes it again.
// CHECK-LABEL: func.func @not_per_row
// CHECK: %[[S:.*]] = kiln.fused(%arg0) : (tensor<64x128xf32>) -> tensor<64x1xf32>
// CHECK: kiln.reshape %[[S]]
// CHECK: kiln.fused(%arg0, %[[S]])
// CHECK: kiln.exp %arg1
// CHECK: kiln.fused(%arg1) : (tensor<4x70000xf32>) -> tensor<4xf32>
// CHECK: kiln.exp %arg2
// CHECK: kiln.fused(%arg2) : (tensor<64x128xf32>) -> tensor<64xf32>
func.func @not_per_row(%x: tensor<64x128xf32>, %long: tensor<4x70000xf32>, %short: tensor<64x128xf32>) -> (tensor<64x128xf32>, tensor<64xf32>, tensor<4x70000xf32>, tensor<4xf32>, tensor<64x128xf32>, tensor<64xf32>) {
  %e = kiln.exp %x : tensor<64x128xf32>
  %s = kiln.sum %e {dims = array<i64: 1>, keepdim = true} : tensor<64x128xf32>
  %k = kiln.reshape %s : tensor<64x1xf32> -> tensor<64xf32>
  %d = kiln.sub %x, %s : tensor<64x128xf32>, tensor<64x1xf32>
  %y = kiln.exp %d : tensor<64x128xf32>
  %le = kiln.exp %long : tensor<4x70000xf32>
  %ls = kiln.sum %le {dims = array<i64: 1>} : tensor<4x70000xf32>
  %se = kiln.exp %short : tensor<64x128xf32>
  %ss = kiln.sum %se {dims = array<i64: 1>} : tensor<64x128xf32>
  return %y, %k, %le, %ls, %se, %ss : tensor<64x128xf32>, tensor<64xf32>, tensor<4x70000xf32>, tensor<4xf32>, tensor<64x128xf32>, tensor<64xf32>
}

// -----

// Merging: a row group and a later one over the same rows that reads its
// per-row results (a layer norm's forward, keeping its mean and
// reciprocal deviation, and its gradient in one graph) become one row
// group; so does an elementwise kernel of the rows' shape reading the
// same input. Each row is read once for all of them.
// REMARK: remark: [Passed] MergedKernels | Category:kiln-fuse | Function=forward_and_gradient | Reason="the row group kernel at {{.*}}fuse-elementwise-row-groups.mlir:{{[0-9]+}}:{{[0-9]+}} (kiln.sum, kiln.div, kiln.sub, kiln.mul, kiln.sum, kiln.div, kiln.add, kiln.rsqrt, kiln.mul) runs in this kernel's row group, each row read once for both: this kernel reads its result, which is no longer stored unless used later"
// CHECK-LABEL: func.func @forward_and_gradient
// CHECK: %[[F:.*]]:2 = kiln.fused(%arg0, %arg1) : (tensor<64x256xf32>, tensor<64x256xf32>) -> (tensor<64x256xf32>, tensor<64x256xf32>) {
// CHECK-COUNT-4: kiln.sum
// CHECK: kiln.yield
// CHECK-NOT: kiln.fused
// CHECK: return %[[F]]#{{[01]}}, %[[F]]#{{[01]}}
func.func @forward_and_gradient(%x: tensor<64x256xf32>, %g: tensor<64x256xf32>) -> (tensor<64x256xf32>, tensor<64x256xf32>) {
  %n = kiln.constant dense<256.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %s = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<64x256xf32>
  %m = kiln.div %s, %n : tensor<64x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<64x256xf32>, tensor<64x1xf32>
  %q = kiln.mul %d, %d : tensor<64x256xf32>, tensor<64x256xf32>
  %qs = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : tensor<64x256xf32>
  %v = kiln.div %qs, %n : tensor<64x1xf32>, tensor<f32>
  %ve = kiln.add %v, %eps : tensor<64x1xf32>, tensor<f32>
  %r = kiln.rsqrt %ve : tensor<64x1xf32>
  %y = kiln.mul %d, %r : tensor<64x256xf32>, tensor<64x1xf32>
  // The gradient: r * (g - mean(g) - y * mean(g * y)), y computed again
  // from the statistics (as in a VJP inlined next to its forward).
  %gs = kiln.sum %g {dims = array<i64: 1>, keepdim = true} : tensor<64x256xf32>
  %gm = kiln.div %gs, %n : tensor<64x1xf32>, tensor<f32>
  %y2 = kiln.mul %d, %r : tensor<64x256xf32>, tensor<64x1xf32>
  %gy = kiln.mul %g, %y2 : tensor<64x256xf32>, tensor<64x256xf32>
  %gys = kiln.sum %gy {dims = array<i64: 1>, keepdim = true} : tensor<64x256xf32>
  %gym = kiln.div %gys, %n : tensor<64x1xf32>, tensor<f32>
  %a = kiln.sub %g, %gm : tensor<64x256xf32>, tensor<64x1xf32>
  %b = kiln.mul %y2, %gym : tensor<64x256xf32>, tensor<64x1xf32>
  %c = kiln.sub %a, %b : tensor<64x256xf32>, tensor<64x256xf32>
  %gx = kiln.mul %c, %r : tensor<64x256xf32>, tensor<64x1xf32>
  return %y, %gx : tensor<64x256xf32>, tensor<64x256xf32>
}

// -----

// Not merged: the later kernel broadcasts the earlier's row sum without
// keepdim ([256]) against the rows, along their columns; in one row group
// it would be each row's own sum (the verifier rejects the merged region,
// so the kernels stay apart).
// CHECK-LABEL: func.func @not_merged
// CHECK: %[[A:.*]]:2 = kiln.fused(%arg0)
// CHECK: kiln.fused(%arg0, %[[A]]#0)
func.func @not_merged(%x: tensor<256x256xf32>) -> (tensor<256x256xf32>, tensor<256x256xf32>) {
  %e = kiln.exp %x : tensor<256x256xf32>
  %s = kiln.sum %e {dims = array<i64: 1>} : tensor<256x256xf32>
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<256x256xf32>
  %d = kiln.sub %x, %m : tensor<256x256xf32>, tensor<256x1xf32>
  %y = kiln.mul %d, %s : tensor<256x256xf32>, tensor<256xf32>
  return %e, %y : tensor<256x256xf32>, tensor<256x256xf32>
}

// -----

// A view stays out of a row group, which evaluates its rows' chain itself:
// the exps are stored, and the row group reads them through the reshape (a
// view of the stored tensor, free).
// CHECK-LABEL: func.func @view_not_in_row_group
// CHECK: %[[E:.*]] = kiln.exp %arg0
// CHECK: %[[V:.*]] = kiln.reshape %[[E]]
// CHECK: kiln.fused(%[[V]])
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.amax
// REMARK: remark: [Missed] NotFused | Category:kiln-fuse | Function=view_not_in_row_group | Reason="'kiln.reshape' is not fused into the kernel of {{.*}}: it is a view (reshape, permute), which joins an elementwise loop or the input chain of a reduction, softmax, selection or gather, not a row group; its result is stored"
func.func @view_not_in_row_group(%x: tensor<64x256xf32>) -> tensor<8x8x256xf32> {
  %e = kiln.exp %x : tensor<64x256xf32>
  %v = kiln.reshape %e : tensor<64x256xf32> -> tensor<8x8x256xf32>
  %m = kiln.amax %v {dims = array<i64: 2>, keepdim = true} : tensor<8x8x256xf32>
  %d = kiln.sub %v, %m : tensor<8x8x256xf32>, tensor<8x8x1xf32>
  %r = kiln.exp %d : tensor<8x8x256xf32>
  return %r : tensor<8x8x256xf32>
}

// -----

// Rows spanning several trailing dims: an instance norm reduces H and W of
// [N, C, H, W]. The row group forms as over the last dim, and is then
// rewritten over rows of one dim, H and W collapsed ([N, C, H*W]): the
// operands and results are reshaped outside (views); a per-channel weight
// and bias [C, 1, 1] become [C, 1].
// CHECK-LABEL: func.func @instance_norm
// CHECK-DAG: %[[X:.*]] = kiln.reshape %arg0 : tensor<2x4x6x8xf32> -> tensor<2x4x48xf32>
// CHECK-DAG: %[[W:.*]] = kiln.reshape %arg1 : tensor<4x1x1xf32> -> tensor<4x1xf32>
// CHECK-DAG: %[[B:.*]] = kiln.reshape %arg2 : tensor<4x1x1xf32> -> tensor<4x1xf32>
// CHECK: %[[F:.*]] = kiln.fused(%[[X]], %[[W]], %[[B]]) : (tensor<2x4x48xf32>, tensor<4x1xf32>, tensor<4x1xf32>) -> tensor<2x4x48xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2>, keepdim = true} : tensor<2x4x48xf32>
// CHECK: kiln.sub %{{.*}}, %{{.*}} : tensor<2x4x48xf32>, tensor<2x4x1xf32>
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2>, keepdim = true} : tensor<2x4x48xf32>
// CHECK: kiln.mul %{{.*}}, %{{.*}} : tensor<2x4x48xf32>, tensor<4x1xf32>
// CHECK: kiln.add %{{.*}}, %{{.*}} : tensor<2x4x48xf32>, tensor<4x1xf32>
// CHECK: kiln.yield
// CHECK: %[[Y:.*]] = kiln.reshape %[[F]] : tensor<2x4x48xf32> -> tensor<2x4x6x8xf32>
// CHECK: return %[[Y]]
// PLAIN-LABEL: func.func @instance_norm
// PLAIN: kiln.sum %arg0 {dims = array<i64: 2, 3>, keepdim = true}
// REMARK: remark: [Passed] CollapsedRowDims | Category:kiln-fuse | Function=instance_norm | Remark="row group over the last 2 dims of [2, 4, 6, 8]: its rows are one dim of 48 elements, [2, 4, 48] (reshapes of its operands and results are views)"
func.func @instance_norm(%x: tensor<2x4x6x8xf32>, %w: tensor<4x1x1xf32>, %b: tensor<4x1x1xf32>) -> tensor<2x4x6x8xf32> {
  %n = kiln.constant dense<48.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-5> : tensor<f32>
  %s = kiln.sum %x {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x4x6x8xf32>
  %m = kiln.div %s, %n : tensor<2x4x1x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<2x4x6x8xf32>, tensor<2x4x1x1xf32>
  %q = kiln.mul %d, %d : tensor<2x4x6x8xf32>, tensor<2x4x6x8xf32>
  %qs = kiln.sum %q {dims = array<i64: -1, -2>, keepdim = true} : tensor<2x4x6x8xf32>
  %v = kiln.div %qs, %n : tensor<2x4x1x1xf32>, tensor<f32>
  %ve = kiln.add %v, %eps : tensor<2x4x1x1xf32>, tensor<f32>
  %r = kiln.rsqrt %ve : tensor<2x4x1x1xf32>
  %y = kiln.mul %d, %r : tensor<2x4x6x8xf32>, tensor<2x4x1x1xf32>
  %yw = kiln.mul %y, %w : tensor<2x4x6x8xf32>, tensor<4x1x1xf32>
  %yb = kiln.add %yw, %b : tensor<2x4x6x8xf32>, tensor<4x1x1xf32>
  return %yb : tensor<2x4x6x8xf32>
}

// -----

// Dims collapse only where every value along the rows is constant along
// all of them or along none. A group norm over C/G, H, W of
// [N, G, C/G, H, W] with a per-channel weight [G, C/G, 1, 1]: the weight
// varies along C/G, not along H and W, so the rows become two dims,
// [C/G, H*W], and the weight [G, C/G, 1] (read once per line of H*W by
// the lowering's loop per row dim; its reductions still run over the row's
// elements as one run). A bias [W] of an instance norm varies along W but
// not H: nothing collapses, the group stays as written.
// CHECK-LABEL: func.func @group_norm
// CHECK-DAG: %[[X:.*]] = kiln.reshape %arg0 : tensor<2x2x3x8x16xf32> -> tensor<2x2x3x128xf32>
// CHECK-DAG: %[[W:.*]] = kiln.reshape %arg1 : tensor<2x3x1x1xf32> -> tensor<2x3x1xf32>
// CHECK: %[[F:.*]] = kiln.fused(%[[X]], %[[W]]) : (tensor<2x2x3x128xf32>, tensor<2x3x1xf32>) -> tensor<2x2x3x128xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x2x3x128xf32>
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x2x3x128xf32>
// CHECK: kiln.mul %{{.*}}, %{{.*}} : tensor<2x2x3x128xf32>, tensor<2x3x1xf32>
// CHECK: kiln.yield
// CHECK: %[[Y:.*]] = kiln.reshape %[[F]] : tensor<2x2x3x128xf32> -> tensor<2x2x3x8x16xf32>
// CHECK: return %[[Y]]
// CHECK-LABEL: func.func @bias_along_w
// CHECK-NOT: kiln.reshape
// CHECK: kiln.fused(%arg0, %arg1) : (tensor<2x4x8x32xf32>, tensor<32xf32>) -> tensor<2x4x8x32xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x4x8x32xf32>
// CHECK-NOT: kiln.reshape
// CHECK: return
// REMARK: remark: [Passed] CollapsedRowDims | Category:kiln-fuse | Function=group_norm | Remark="row group over the last 3 dims of [2, 2, 3, 8, 16]: its rows are 2 dims, [3, 128] of 384 elements, [2, 2, 3, 128] (reshapes of its operands and results are views)"
// REMARK-NOT: Function=bias_along_w | Remark="row group over
func.func @group_norm(%x: tensor<2x2x3x8x16xf32>, %w: tensor<2x3x1x1xf32>) -> tensor<2x2x3x8x16xf32> {
  %n = kiln.constant dense<384.0> : tensor<f32>
  %s = kiln.sum %x {dims = array<i64: 2, 3, 4>, keepdim = true} : tensor<2x2x3x8x16xf32>
  %m = kiln.div %s, %n : tensor<2x2x1x1x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<2x2x3x8x16xf32>, tensor<2x2x1x1x1xf32>
  %q = kiln.mul %d, %d : tensor<2x2x3x8x16xf32>, tensor<2x2x3x8x16xf32>
  %qs = kiln.sum %q {dims = array<i64: 2, 3, 4>, keepdim = true} : tensor<2x2x3x8x16xf32>
  %v = kiln.div %qs, %n : tensor<2x2x1x1x1xf32>, tensor<f32>
  %e = kiln.constant dense<1.0e-5> : tensor<f32>
  %ve = kiln.add %v, %e : tensor<2x2x1x1x1xf32>, tensor<f32>
  %r = kiln.rsqrt %ve : tensor<2x2x1x1x1xf32>
  %y = kiln.mul %d, %r : tensor<2x2x3x8x16xf32>, tensor<2x2x1x1x1xf32>
  %yw = kiln.mul %y, %w : tensor<2x2x3x8x16xf32>, tensor<2x3x1x1xf32>
  return %yw : tensor<2x2x3x8x16xf32>
}
func.func @bias_along_w(%x: tensor<2x4x8x32xf32>, %b: tensor<32xf32>) -> tensor<2x4x8x32xf32> {
  %n = kiln.constant dense<256.0> : tensor<f32>
  %s = kiln.sum %x {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x4x8x32xf32>
  %m = kiln.div %s, %n : tensor<2x4x1x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<2x4x8x32xf32>, tensor<2x4x1x1xf32>
  %yb = kiln.add %d, %b : tensor<2x4x8x32xf32>, tensor<32xf32>
  return %yb : tensor<2x4x8x32xf32>
}

// -----

// Per-row values of rows spanning two dims: a keepdim mean ([N, C, 1, 1],
// reshaped to [N, C, 1] and back), and a sum without keepdim ([N, C]),
// scaled per channel by %s [C] -- read per row, at the row's position, so
// neither is reshaped.
// CHECK-LABEL: func.func @per_row_runs
// CHECK: %[[X:.*]] = kiln.reshape %arg0 : tensor<2x4x16x64xf32> -> tensor<2x4x1024xf32>
// CHECK: %[[F:.*]]:3 = kiln.fused(%[[X]], %arg1) : (tensor<2x4x1024xf32>, tensor<4xf32>) -> (tensor<2x4xf32>, tensor<2x4x1024xf32>, tensor<2x4x1xf32>)
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2>, keepdim = true} : tensor<2x4x1024xf32>
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2>} : tensor<2x4x1024xf32>
// CHECK: kiln.mul %{{.*}}, %{{.*}} : tensor<2x4xf32>, tensor<4xf32>
// CHECK: %[[D:.*]] = kiln.reshape %[[F]]#1 : tensor<2x4x1024xf32> -> tensor<2x4x16x64xf32>
// CHECK: %[[M:.*]] = kiln.reshape %[[F]]#2 : tensor<2x4x1xf32> -> tensor<2x4x1x1xf32>
// CHECK: return %[[D]], %[[F]]#0, %[[M]]
func.func @per_row_runs(%x: tensor<2x4x16x64xf32>, %s: tensor<4xf32>) -> (tensor<2x4x16x64xf32>, tensor<2x4xf32>, tensor<2x4x1x1xf32>) {
  %n = kiln.constant dense<1024.0> : tensor<f32>
  %t = kiln.sum %x {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x4x16x64xf32>
  %m = kiln.div %t, %n : tensor<2x4x1x1xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<2x4x16x64xf32>, tensor<2x4x1x1xf32>
  %e = kiln.exp %d : tensor<2x4x16x64xf32>
  %z = kiln.sum %e {dims = array<i64: 2, 3>} : tensor<2x4x16x64xf32>
  %zs = kiln.mul %z, %s : tensor<2x4xf32>, tensor<4xf32>
  return %d, %zs, %m : tensor<2x4x16x64xf32>, tensor<2x4xf32>, tensor<2x4x1x1xf32>
}

// -----

// A batch of one: canonicalization has keepdim reductions reduce unit dims
// too, so a layer norm's sum over the last dim of [1, R, C] reduces dims 0
// and 2. A unit dim reduced with keepdim is one kept (the same result):
// the reduction is over a trailing run of one dim, and a row group forms.
// CHECK-LABEL: func.func @batch_of_one
// CHECK: kiln.fused(%arg0) : (tensor<1x8x256xf32>) -> tensor<1x8x256xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 0, 2>, keepdim = true}
// CHECK: kiln.sub
// CHECK: kiln.yield
func.func @batch_of_one(%x: tensor<1x8x256xf32>) -> tensor<1x8x256xf32> {
  %s = kiln.sum %x {dims = array<i64: 0, 2>, keepdim = true} : tensor<1x8x256xf32>
  %d = kiln.sub %x, %s : tensor<1x8x256xf32>, tensor<1x8x1xf32>
  return %d : tensor<1x8x256xf32>
}

// -----

// A row group evaluates each reduction's input chain at every element of
// the row, the reductions before it included: reductions whose inputs
// depend on one another grow that chain with each one (quadratic code and
// work; 8 softmax layers with residual adds and their gradient were one
// group that compiled in 12 s and ran 7x slower than split). A row group
// takes at most max-row-reductions (4): of these five chained reductions
// the first is its own kernel, the group reads its result.
// CHECK-LABEL: func.func @row_reduction_cap
// CHECK: %[[S:.*]] = kiln.sum %arg0 {dims = array<i64: 1>, keepdim = true}
// CHECK: kiln.fused(%arg0, %[[S]])
// CHECK: kiln.amax
// CHECK: kiln.sum
// CHECK: kiln.amax
// CHECK: kiln.sum
// CHECK: kiln.yield
// REMARK: NotFused | Category:kiln-fuse | Function=row_reduction_cap | Reason="'kiln.sum' is not fused into the kernel of 'kiln.sub' ({{.*}}): the row group holds its most reductions (max-row-reductions = 4); this one's result is stored and read"
// REMARK: FusedKernel | Category:kiln-fuse | Function=row_reduction_cap | Remark="9 ops in one kernel (a row group: each row's 4 reduction(s)
func.func @row_reduction_cap(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %s1 = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<8x64xf32>
  %a = kiln.sub %x, %s1 : tensor<8x64xf32>, tensor<8x1xf32>
  %s2 = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<8x64xf32>
  %b = kiln.sub %a, %s2 : tensor<8x64xf32>, tensor<8x1xf32>
  %s3 = kiln.sum %b {dims = array<i64: 1>, keepdim = true} : tensor<8x64xf32>
  %c = kiln.sub %b, %s3 : tensor<8x64xf32>, tensor<8x1xf32>
  %s4 = kiln.amax %c {dims = array<i64: 1>, keepdim = true} : tensor<8x64xf32>
  %d = kiln.sub %c, %s4 : tensor<8x64xf32>, tensor<8x1xf32>
  %s5 = kiln.sum %d {dims = array<i64: 1>, keepdim = true} : tensor<8x64xf32>
  %e = kiln.sub %d, %s5 : tensor<8x64xf32>, tensor<8x1xf32>
  return %e : tensor<8x64xf32>
}
