// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" %s -split-input-file | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" --remarks-filter=kiln-fuse %s -split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK
// RUN: kiln-opt --kiln-fuse-elementwise %s -split-input-file | FileCheck %s --check-prefix=NOROWS

// A layer norm over the channels of [N, C, H, W] (ConvNeXt's LayerNorm2d):
// the reductions over C have kept dims (H, W) after them, and the chain
// broadcasts them back. formColumnGroups makes it one column group on
// [N, C, H*W]: the operands viewed so (reshapes, no copies), the weight and
// bias [C, 1, 1] as [1, C, 1], the splat constants resized, the reductions
// over dim 1; the result reshaped back.
// CHECK-LABEL: func.func @channel_norm
// CHECK-DAG: %[[X:.*]] = kiln.reshape %arg0 : tensor<2x6x4x5xf32> -> tensor<2x6x20xf32>
// CHECK-DAG: %[[W:.*]] = kiln.reshape %arg1 : tensor<6x1x1xf32> -> tensor<1x6x1xf32>
// CHECK: %[[F:.*]] = kiln.fused(%[[X]], %[[W]]) : (tensor<2x6x20xf32>, tensor<1x6x1xf32>) -> tensor<2x6x20xf32>
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
// CHECK: kiln.constant dense<9.99999997E-7> : tensor<1x1x1xf32>
// CHECK: kiln.rsqrt %{{.*}} : tensor<2x1x20xf32>
// CHECK: kiln.yield %{{.*}} : tensor<2x6x20xf32>
// CHECK: %[[R:.*]] = kiln.reshape %[[F]] : tensor<2x6x20xf32> -> tensor<2x6x4x5xf32>
// CHECK: return %[[R]]
// REMARK: ColumnGroup | Category:kiln-fuse | Function=channel_norm | Remark="10 ops in one kernel (a column group over [2, 6, 20]: each block of columns reduces over the middle dim, then the elementwise chain, while the block is in cache)"
// The GPU pipeline (no row-groups) forms none: a column reduction with its
// producers, and the chain.
// NOROWS-LABEL: func.func @channel_norm
// NOROWS-NOT: tensor<2x6x20xf32>
// NOROWS: return
func.func @channel_norm(%x: tensor<2x6x4x5xf32>, %w: tensor<6x1x1xf32>) -> tensor<2x6x4x5xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %n = kiln.constant dense<6.0> : tensor<f32>
  %m = kiln.div %s, %n : tensor<2x1x4x5xf32>, tensor<f32>
  %d = kiln.sub %x, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  %q = kiln.mul %d, %d : tensor<2x6x4x5xf32>, tensor<2x6x4x5xf32>
  %qs = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %v = kiln.div %qs, %n : tensor<2x1x4x5xf32>, tensor<f32>
  %e = kiln.constant dense<1.0e-6> : tensor<f32>
  %ve = kiln.add %v, %e : tensor<2x1x4x5xf32>, tensor<f32>
  %r = kiln.rsqrt %ve : tensor<2x1x4x5xf32>
  %y = kiln.mul %d, %r : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  %yw = kiln.mul %y, %w : tensor<2x6x4x5xf32>, tensor<6x1x1xf32>
  return %yw : tensor<2x6x4x5xf32>
}

// -----

// A run of two reduced dims, (1, 2) of [2, 3, 4, 6, 10], is one dim of 12
// rows; the columns 6 x 10 another.
// CHECK-LABEL: func.func @two_reduced_dims
// CHECK: kiln.fused(%{{.*}}) : (tensor<2x12x60xf32>) -> tensor<2x12x60xf32>
// CHECK: kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<2x12x60xf32>
func.func @two_reduced_dims(%x: tensor<2x3x4x6x10xf32>) -> tensor<2x3x4x6x10xf32> {
  %m = kiln.amax %x {dims = array<i64: 1, 2>, keepdim = true} : tensor<2x3x4x6x10xf32>
  %d = kiln.sub %x, %m : tensor<2x3x4x6x10xf32>, tensor<2x1x1x6x10xf32>
  %e = kiln.exp %d : tensor<2x3x4x6x10xf32>
  return %e : tensor<2x3x4x6x10xf32>
}

// -----

// A reduction also returned: the group stores it too (a column result,
// [O, 1, T]), and the remark says so.
// CHECK-LABEL: func.func @stored_reduction
// CHECK: %[[F:.*]]:2 = kiln.fused(%{{.*}}) : (tensor<2x6x20xf32>) -> (tensor<2x6x20xf32>, tensor<2x1x20xf32>)
// CHECK: kiln.yield %{{.*}}, %{{.*}} : tensor<2x6x20xf32>, tensor<2x1x20xf32>
// CHECK-DAG: kiln.reshape %[[F]]#0 : tensor<2x6x20xf32> -> tensor<2x6x4x5xf32>
// CHECK-DAG: kiln.reshape %[[F]]#1 : tensor<2x1x20xf32> -> tensor<2x1x4x5xf32>
// REMARK: Function=stored_reduction | Remark="2 ops in one kernel (a column group over [2, 6, 20]: each block of columns reduces over the middle dim, then the elementwise chain, while the block is in cache, storing 2 results)"
func.func @stored_reduction(%x: tensor<2x6x4x5xf32>) -> (tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>) {
  %m = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %d = kiln.sub %x, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  return %d, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
}

// -----

// What is not a column group, each for its reason:
// - a reduction also used before the chain's last op: the kernel, in the
//   last op's place, could not give it to that user, so it is stored by a
//   kernel of its own (and the chain, without a reduction, is none);
// - the columns of 131 elements, a prime: no block of half a line or more
//   divides them (the reduction and the subtraction stay kernels of their
//   own: a reduction's epilogue has the reduction's shape);
// - an operand varying along H but not W of the columns (H, W): no
//   [O, C, T] view of it (the ops before it are a group; it is read by
//   a kernel of its own).
// CHECK-LABEL: func.func @used_before_the_root
// CHECK-NOT: tensor<2x6x20xf32>
// CHECK: return
func.func @used_before_the_root(%x: tensor<2x6x4x5xf32>) -> tensor<2x6x4x5xf32> {
  %m = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %t = kiln.amax %m {dims = array<i64: 3>, keepdim = true} : tensor<2x1x4x5xf32>
  %d = kiln.sub %x, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  %y = kiln.mul %d, %t : tensor<2x6x4x5xf32>, tensor<2x1x4x1xf32>
  return %y : tensor<2x6x4x5xf32>
}

// -----

// The remark on the reduction left out says why it is no column group.
// CHECK-LABEL: func.func @prime_columns
// CHECK-NOT: kiln.fused
// REMARK: Function=prime_columns | Reason="'kiln.sum' is not fused into the kernel of 'kiln.sub' ({{.*}}): the elementwise chain after it has another shape (it is broadcast back), so every result must exist before the chain runs; nor is it a column group with the chain: the largest block of columns of [2, 40, 131] (a divisor of 131, at most 512 bytes of a row and the block in cache) is 4 bytes of each row, under 256: blocks that small lose to the separate kernels"
// CHECK: kiln.sum %arg0 {dims = array<i64: 1>, keepdim = true} : tensor<2x40x131xf32>
// CHECK-NEXT: kiln.sub %arg0, %{{.*}} : tensor<2x40x131xf32>, tensor<2x1x131xf32>
// CHECK-NEXT: return
func.func @prime_columns(%x: tensor<2x40x131xf32>) -> tensor<2x40x131xf32> {
  %m = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<2x40x131xf32>
  %d = kiln.sub %x, %m : tensor<2x40x131xf32>, tensor<2x1x131xf32>
  return %d : tensor<2x40x131xf32>
}

// -----

// The group the last op refused forms from an earlier root: no refusal
// remark is left on its reduction.
// CHECK-LABEL: func.func @operand_along_part_of_the_columns
// REMARK-NOT: Function=operand_along_part_of_the_columns | Reason={{.*}}column group with
// CHECK: %[[F:.*]] = kiln.fused(%{{.*}}) : (tensor<2x6x20xf32>) -> tensor<2x6x20xf32>
// CHECK: %[[R:.*]] = kiln.reshape %[[F]] : tensor<2x6x20xf32> -> tensor<2x6x4x5xf32>
// CHECK: kiln.mul %[[R]], %arg1 : tensor<2x6x4x5xf32>, tensor<4x1xf32>
func.func @operand_along_part_of_the_columns(%x: tensor<2x6x4x5xf32>, %h: tensor<4x1xf32>) -> tensor<2x6x4x5xf32> {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %d = kiln.sub %x, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  %y = kiln.mul %d, %h : tensor<2x6x4x5xf32>, tensor<4x1xf32>
  return %y : tensor<2x6x4x5xf32>
}

// -----

// Every op reads a value varying along only H of the columns (H, W): no
// root finds an [O, C, T] view (the chain is one elementwise kernel), and
// the reduction's remark names the op.
// CHECK-LABEL: func.func @every_root_along_part
// CHECK-NOT: tensor<2x6x20xf32>
// CHECK: kiln.sum %arg0 {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
// REMARK: Function=every_root_along_part | Reason="'kiln.sum' is not fused into the kernel of 'kiln.sub' ({{.*}}): the elementwise chain after it has another shape (it is broadcast back), so every result must exist before the chain runs; nor is it a column group with the chain: 'kiln.mul' ({{.*}}:[[@LINE+4]]:9) reads tensor<4x1xf32>, which varies along only part of [2] x [6] x [4, 5] (the dims before the reduced run, the run, the dims after it)"
func.func @every_root_along_part(%x: tensor<2x6x4x5xf32>, %h: tensor<4x1xf32>) -> tensor<2x6x4x5xf32> {
  %xh = kiln.mul %x, %h : tensor<2x6x4x5xf32>, tensor<4x1xf32>
  %m = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %mh = kiln.mul %m, %h : tensor<2x1x4x5xf32>, tensor<4x1xf32>
  %d = kiln.sub %xh, %mh : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  return %d : tensor<2x6x4x5xf32>
}

// -----

// Rows 16 KB apart (a multiple of 4 KB), more than 8 of them: every row's
// piece of a block would fall in the same cache sets.
// CHECK-LABEL: func.func @aligned_rows
// CHECK-NOT: kiln.fused
// REMARK: Function=aligned_rows | Reason={{.*}}nor is it a column group with the chain: the 1024 rows of [1, 1024, 4096] lie 16384 bytes apart, a multiple of 4 KB: every row's piece of a block falls in the same cache sets, and each pass would read the block from memory again"
func.func @aligned_rows(%x: tensor<1024x4096xf32>) -> tensor<1024x4096xf32> {
  %m = kiln.sum %x {dims = array<i64: 0>, keepdim = true} : tensor<1024x4096xf32>
  %d = kiln.sub %x, %m : tensor<1024x4096xf32>, tensor<1x4096xf32>
  return %d : tensor<1024x4096xf32>
}

// -----

// Whole rows of 3 f32, narrower than a line.
// CHECK-LABEL: func.func @narrow_rows
// CHECK-NOT: kiln.fused
// REMARK: Function=narrow_rows | Reason={{.*}}nor is it a column group with the chain: its rows of [4, 64, 3] are 12 bytes, narrower than a cache line"
func.func @narrow_rows(%x: tensor<4x64x3xf32>) -> tensor<4x64x3xf32> {
  %m = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<4x64x3xf32>
  %d = kiln.sub %x, %m : tensor<4x64x3xf32>, tensor<4x1x3xf32>
  return %d : tensor<4x64x3xf32>
}

// -----

// The centred input d = x - mean(x) is read by two column groups: the
// later one (d divided by its sums of absolute values) recomputes it from
// x and the mean instead of reading it stored -- reading x costs what
// reading d would, and d is then never stored: the earlier group (the
// weight term d * sum(d * d), summed over (N, H, W) after it) yields its
// root and the mean, two results, not three.
// CHECK-LABEL: func.func @recomputed_for_an_earlier_user
// CHECK: %[[A:.*]]:2 = kiln.fused(%{{.*}}) : (tensor<2x6x20xf32>) -> (tensor<2x6x20xf32>, tensor<2x1x20xf32>)
// CHECK: kiln.yield
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 0, 2, 3>, keepdim = true}
// CHECK: kiln.fused(%{{.*}}, %[[A]]#1) : (tensor<2x6x20xf32>, tensor<2x1x20xf32>) -> tensor<2x6x20xf32>
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<2x6x20xf32>, %[[M:.*]]: tensor<2x1x20xf32>):
// CHECK-NEXT: kiln.sub %[[X]], %[[M]] : tensor<2x6x20xf32>, tensor<2x1x20xf32>
// REMARK: Function=recomputed_for_an_earlier_user | Remark="4 ops in one kernel (a column group over [2, 6, 20]: each block of columns reduces over the middle dim, then the elementwise chain, while the block is in cache, recomputing 1 op(s) that users before it also read)"
// REMARK: Function=recomputed_for_an_earlier_user | Remark="5 ops in one kernel (a column group over [2, 6, 20]: each block of columns reduces over the middle dim, then the elementwise chain, while the block is in cache, storing 2 results)"
func.func @recomputed_for_an_earlier_user(%x: tensor<2x6x4x5xf32>) -> (tensor<2x6x4x5xf32>, tensor<1x6x1x1xf32>) {
  %m = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %d = kiln.sub %x, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  %q = kiln.mul %d, %d : tensor<2x6x4x5xf32>, tensor<2x6x4x5xf32>
  %v = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %p = kiln.mul %d, %v : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  %w = kiln.sum %p {dims = array<i64: 0, 2, 3>, keepdim = true} : tensor<2x6x4x5xf32>
  %a = kiln.abs %d : tensor<2x6x4x5xf32>
  %s = kiln.sum %a {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %y = kiln.div %d, %s : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  return %y, %w : tensor<2x6x4x5xf32>, tensor<1x6x1x1xf32>
}

// -----

// A where of an i1 mask and two f32 tensors no other member reads would add
// 9 bytes of inputs per element to recompute its 4: it is stored (a kernel
// of its own, before the earlier user) and read by the group.
// CHECK-LABEL: func.func @stored_for_an_earlier_user
// CHECK: %[[S:.*]] = kiln.where %arg0, %arg1, %arg2
// CHECK: kiln.sum %[[S]] {dims = array<i64: 0, 2, 3>, keepdim = true}
// CHECK: %[[V:.*]] = kiln.reshape %[[S]] : tensor<2x6x4x5xf32> -> tensor<2x6x20xf32>
// CHECK: kiln.fused(%[[V]]) : (tensor<2x6x20xf32>) -> tensor<2x6x20xf32>
// CHECK-NOT: kiln.where
// CHECK: kiln.yield
// REMARK: Function=stored_for_an_earlier_user | Remark="2 ops in one kernel (a column group over [2, 6, 20]: each block of columns reduces over the middle dim, then the elementwise chain, while the block is in cache)"
func.func @stored_for_an_earlier_user(%c: tensor<2x6x4x5xi1>, %a: tensor<2x6x4x5xf32>, %b: tensor<2x6x4x5xf32>) -> (tensor<2x6x4x5xf32>, tensor<1x6x1x1xf32>) {
  %s = kiln.where %c, %a, %b : tensor<2x6x4x5xi1>, tensor<2x6x4x5xf32>, tensor<2x6x4x5xf32>
  %w = kiln.sum %s {dims = array<i64: 0, 2, 3>, keepdim = true} : tensor<2x6x4x5xf32>
  %m = kiln.sum %s {dims = array<i64: 1>, keepdim = true} : tensor<2x6x4x5xf32>
  %y = kiln.sub %s, %m : tensor<2x6x4x5xf32>, tensor<2x1x4x5xf32>
  return %y, %w : tensor<2x6x4x5xf32>, tensor<1x6x1x1xf32>
}

// -----

// softmax and log_softmax over a middle dim are written as their column
// reductions and chain (expandColumnSoftmax) where a column group forms
// and the softmax's packed tiles do not apply (a last dim of 5 and of 24
// elements, under 256 bytes):
// amax, exp(x - m), its sum, and the reciprocal once per column (a
// [O, 1, T] value), in one group on [O, C, T]. The GPU pipeline keeps the
// ops.
// CHECK-LABEL: func.func @softmax_channels
// CHECK: kiln.fused(%{{.*}}) : (tensor<2x6x20xf32>) -> tensor<2x6x20xf32>
// CHECK: %[[M:.*]] = kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
// CHECK: %[[D:.*]] = kiln.sub %{{.*}}, %[[M]] : tensor<2x6x20xf32>, tensor<2x1x20xf32>
// CHECK: %[[E:.*]] = kiln.exp %[[D]] : tensor<2x6x20xf32>
// CHECK: %[[S:.*]] = kiln.sum %[[E]] {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
// CHECK: %[[R:.*]] = kiln.div %{{.*}}, %[[S]]
// CHECK: kiln.mul %[[E]], %[[R]] : tensor<2x6x20xf32>, tensor<2x1x20xf32>
// CHECK-NOT: kiln.softmax
// CHECK-LABEL: func.func @log_softmax_channels
// CHECK: kiln.fused
// CHECK: kiln.amax
// CHECK: kiln.sum
// CHECK: %[[L:.*]] = kiln.log %{{.*}} : tensor<1x1x24xf32>
// CHECK: kiln.sub %{{.*}}, %[[L]] : tensor<1x7x24xf32>, tensor<1x1x24xf32>
// REMARK: ColumnSoftmax | Category:kiln-fuse | Function=softmax_channels | Remark="kiln.softmax over dim 1 of tensor<2x6x4x5xf32>: written as its column reductions and chain (amax, sum of exp(x - m), exp(x - m) * (1 / s)), for a column group over [2, 6, 20]"
// REMARK: ColumnGroup | Category:kiln-fuse | Function=softmax_channels | Remark="6 ops in one kernel
// REMARK: ColumnSoftmax | Category:kiln-fuse | Function=log_softmax_channels | Remark="kiln.log_softmax over dim 0 of tensor<7x24xf32>: written as its column reductions and chain (amax, sum of exp(x - m), x - m - log(s)), for a column group over [1, 7, 24]"
// NOROWS-LABEL: func.func @softmax_channels
// NOROWS: kiln.softmax
// NOROWS-LABEL: func.func @log_softmax_channels
// NOROWS: kiln.log_softmax
func.func @softmax_channels(%x: tensor<2x6x4x5xf32>) -> tensor<2x6x4x5xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<2x6x4x5xf32>
  return %y : tensor<2x6x4x5xf32>
}
func.func @log_softmax_channels(%x: tensor<7x24xf32>) -> tensor<7x24xf32> {
  %y = kiln.log_softmax %x {dim = 0 : i64} : tensor<7x24xf32>
  return %y : tensor<7x24xf32>
}

// -----

// The softmax stays where its packed tiles apply (a last dim of 64 f32:
// pieces of 256 bytes of each row) or no column group would form: over
// the last dim, over a dim followed only by unit dims, over a dim of one
// element.
// CHECK-LABEL: func.func @softmax_kept
// CHECK-COUNT-4: kiln.softmax
// CHECK-NOT: kiln.fused
func.func @softmax_kept(%a: tensor<2x21x16x64xf32>, %b: tensor<6x20xf32>,
                        %c: tensor<8x30x1x1xf32>, %d: tensor<5x1x40xf32>)
    -> (tensor<2x21x16x64xf32>, tensor<6x20xf32>, tensor<8x30x1x1xf32>,
        tensor<5x1x40xf32>) {
  %ya = kiln.softmax %a {dim = 1 : i64} : tensor<2x21x16x64xf32>
  %yb = kiln.softmax %b {dim = 1 : i64} : tensor<6x20xf32>
  %yc = kiln.softmax %c {dim = 1 : i64} : tensor<8x30x1x1xf32>
  %yd = kiln.softmax %d {dim = 1 : i64} : tensor<5x1x40xf32>
  return %ya, %yb, %yc, %yd : tensor<2x21x16x64xf32>, tensor<6x20xf32>,
         tensor<8x30x1x1xf32>, tensor<5x1x40xf32>
}
