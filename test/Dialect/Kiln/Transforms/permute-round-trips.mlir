// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" %s -split-input-file | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" --remarks-filter=kiln-fuse %s -split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK

// A layer norm over the channels of [N, C, H, W] written channels last:
// permuted to [N, H, W, C], normalized over the last dim, scaled per
// channel, permuted back. Every path from the permute to the permute back
// runs through elementwise ops and keepdim reductions, so the ops are
// computed on [N, C, H, W] (the reductions over C, the weight [C] read as
// [1, C, 1, 1], a view) and neither permute is left: one column group
// (column-groups.mlir) on [N, C, H*W] reads the input where it lies.
// CHECK-LABEL: func.func @channels_last_norm
// CHECK-NOT: kiln.permute
// CHECK-DAG: kiln.reshape %arg1 : tensor<6xf32> -> tensor<1x6x1xf32>
// CHECK-DAG: kiln.reshape %arg0 : tensor<2x6x4x5xf32> -> tensor<2x6x20xf32>
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
// CHECK-NOT: kiln.permute
// CHECK: return
// REMARK: CancelledPermutes | Category:kiln-fuse | Function=channels_last_norm | Remark="this permute undoes the permute of the 8 op(s) before it (elementwise ops and reductions with keepdim): they compute on the unpermuted tensors, and this permute is not copied
func.func @channels_last_norm(%x: tensor<2x6x4x5xf32>, %w: tensor<6xf32>) -> tensor<2x6x4x5xf32> {
  %p = kiln.permute %x [0, 2, 3, 1] : tensor<2x6x4x5xf32>
  %m = kiln.sum %p {dims = array<i64: 3>, keepdim = true} : tensor<2x4x5x6xf32>
  %d = kiln.sub %p, %m : tensor<2x4x5x6xf32>, tensor<2x4x5x1xf32>
  %q = kiln.mul %d, %d : tensor<2x4x5x6xf32>, tensor<2x4x5x6xf32>
  %v = kiln.sum %q {dims = array<i64: 3>, keepdim = true} : tensor<2x4x5x6xf32>
  %e = kiln.constant dense<1.0e-6> : tensor<f32>
  %ve = kiln.add %v, %e : tensor<2x4x5x1xf32>, tensor<f32>
  %s = kiln.rsqrt %ve : tensor<2x4x5x1xf32>
  %y = kiln.mul %d, %s : tensor<2x4x5x6xf32>, tensor<2x4x5x1xf32>
  %yw = kiln.mul %y, %w : tensor<2x4x5x6xf32>, tensor<6xf32>
  %r = kiln.permute %yw [0, 3, 1, 2] : tensor<2x4x5x6xf32>
  return %r : tensor<2x6x4x5xf32>
}

// -----

// Not cancelled: a value between the permutes is also returned, so the
// permuted ops would have to stay for it.
// CHECK-LABEL: func.func @used_outside
// CHECK: kiln.permute %arg0 [0, 2, 3, 1]
// CHECK: kiln.permute %{{.*}} [0, 3, 1, 2]
func.func @used_outside(%x: tensor<2x6x4x5xf32>) -> (tensor<2x6x4x5xf32>, tensor<2x4x5x6xf32>) {
  %p = kiln.permute %x [0, 2, 3, 1] : tensor<2x6x4x5xf32>
  %e = kiln.exp %p : tensor<2x4x5x6xf32>
  %r = kiln.permute %e [0, 3, 1, 2] : tensor<2x4x5x6xf32>
  return %r, %e : tensor<2x6x4x5xf32>, tensor<2x4x5x6xf32>
}

// -----

// A sum over (2, 3) of a permute that swaps H and W would reduce W before
// H unpermuted -- another order of additions, other bits (an amax,
// order-free, would not: fusion.py) -- so it stays on the permute; its
// result, [N, C, 1, 1] either way, is read unpermuted as it is, and the
// subtraction is computed on the input: the permute back is gone.
// CHECK-LABEL: func.func @sum_reorders
// CHECK: %[[P:.*]] = kiln.permute %arg0 [0, 1, 3, 2]
// CHECK: %[[S:.*]] = kiln.sum %[[P]] {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x3x5x4xf32>
// CHECK: kiln.sub %arg0, %[[S]] : tensor<2x3x4x5xf32>, tensor<2x3x1x1xf32>
// CHECK-NOT: kiln.permute
func.func @sum_reorders(%x: tensor<2x3x4x5xf32>) -> tensor<2x3x4x5xf32> {
  %p = kiln.permute %x [0, 1, 3, 2] : tensor<2x3x4x5xf32>
  %s = kiln.sum %p {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x3x5x4xf32>
  %d = kiln.sub %p, %s : tensor<2x3x5x4xf32>, tensor<2x3x1x1xf32>
  %r = kiln.permute %d [0, 1, 3, 2] : tensor<2x3x5x4xf32>
  return %r : tensor<2x3x4x5xf32>
}

// -----

// Not cancelled: an operand [W, C] of the permuted [N, H, W, C] would be
// [C, 1, W] unpermuted, its dims in another order (a transposed copy, not
// a view).
// CHECK-LABEL: func.func @operand_reorders
// CHECK: kiln.permute %arg0 [0, 2, 3, 1]
// CHECK: kiln.permute %{{.*}} [0, 3, 1, 2]
func.func @operand_reorders(%x: tensor<2x6x4x5xf32>, %b: tensor<5x6xf32>) -> tensor<2x6x4x5xf32> {
  %p = kiln.permute %x [0, 2, 3, 1] : tensor<2x6x4x5xf32>
  %a = kiln.add %p, %b : tensor<2x4x5x6xf32>, tensor<5x6xf32>
  %r = kiln.permute %a [0, 3, 1, 2] : tensor<2x4x5x6xf32>
  return %r : tensor<2x6x4x5xf32>
}
