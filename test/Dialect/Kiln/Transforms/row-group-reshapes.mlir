// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" %s -split-input-file | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise="row-groups=true" --remarks-filter=kiln-fuse %s -split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK

// A group norm as PyTorch users write it: [N, C, H, W] reshaped to
// [N, G, C/G*H*W], normalized over the last dim, reshaped back, scaled and
// shifted per channel. Both reshapes' shapes are runs of dims of their
// common refinement [N, G, C/G, H, W]: the normalization and the scale
// are computed on it (the reductions over its last three dims, the weight
// and bias as [G, C/G, 1, 1]), and one row group holds them all, its rows
// [C/G, H*W] (the weight varies along C/G only).
// CHECK-LABEL: func.func @group_norm
// CHECK-DAG: %[[X:.*]] = kiln.reshape %arg0 : tensor<2x6x4x8xf32> -> tensor<2x2x3x32xf32>
// CHECK-DAG: %[[W:.*]] = kiln.reshape %arg1 : tensor<6x1x1xf32> -> tensor<2x3x1xf32>
// CHECK-DAG: %[[B:.*]] = kiln.reshape %arg2 : tensor<6x1x1xf32> -> tensor<2x3x1xf32>
// CHECK: %[[F:.*]] = kiln.fused(%[[X]], %[[W]], %[[B]]) : (tensor<2x2x3x32xf32>, tensor<2x3x1xf32>, tensor<2x3x1xf32>) -> tensor<2x2x3x32xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x2x3x32xf32>
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 2, 3>, keepdim = true} : tensor<2x2x3x32xf32>
// CHECK: kiln.mul %{{.*}}, %{{.*}} : tensor<2x2x3x32xf32>, tensor<2x3x1xf32>
// CHECK: kiln.add %{{.*}}, %{{.*}} : tensor<2x2x3x32xf32>, tensor<2x3x1xf32>
// CHECK: kiln.yield
// CHECK-NOT: kiln.fused
// CHECK: %[[Y:.*]] = kiln.reshape %[[F]] : tensor<2x2x3x32xf32> -> tensor<2x6x4x8xf32>
// CHECK: return %[[Y]]
// REMARK: remark: [Passed] RefinedReshapes | Category:kiln-fuse | Function=group_norm | Remark="the reshape of [2, 6, 4, 8] to [2, 2, 96], the row reductions after it, the reshape back and the elementwise ops after that computed on [2, 2, 3, 4, 8], the shapes' common refinement (reshapes to it are views): one row group can hold them"
func.func @group_norm(%x: tensor<2x6x4x8xf32>, %w: tensor<6x1x1xf32>, %b: tensor<6x1x1xf32>) -> tensor<2x6x4x8xf32> {
  %xr = kiln.reshape %x : tensor<2x6x4x8xf32> -> tensor<2x2x96xf32>
  %n = kiln.constant dense<96.0> : tensor<f32>
  %s = kiln.sum %xr {dims = array<i64: 2>, keepdim = true} : tensor<2x2x96xf32>
  %m = kiln.div %s, %n : tensor<2x2x1xf32>, tensor<f32>
  %d = kiln.sub %xr, %m : tensor<2x2x96xf32>, tensor<2x2x1xf32>
  %q = kiln.mul %d, %d : tensor<2x2x96xf32>, tensor<2x2x96xf32>
  %qs = kiln.sum %q {dims = array<i64: 2>, keepdim = true} : tensor<2x2x96xf32>
  %v = kiln.div %qs, %n : tensor<2x2x1xf32>, tensor<f32>
  %e = kiln.constant dense<1.0e-5> : tensor<2x2x1xf32>
  %ve = kiln.add %v, %e : tensor<2x2x1xf32>, tensor<2x2x1xf32>
  %r = kiln.rsqrt %ve : tensor<2x2x1xf32>
  %y = kiln.mul %d, %r : tensor<2x2x96xf32>, tensor<2x2x1xf32>
  %yr = kiln.reshape %y : tensor<2x2x96xf32> -> tensor<2x6x4x8xf32>
  %yw = kiln.mul %yr, %w : tensor<2x6x4x8xf32>, tensor<6x1x1xf32>
  %o = kiln.add %yw, %b : tensor<2x6x4x8xf32>, tensor<6x1x1xf32>
  return %o : tensor<2x6x4x8xf32>
}

// -----

// A layer norm over a flattened [N, C*H*W], unflattened and scaled per
// channel: the refinement is [N, C, H, W] itself; one row group, its rows
// [C, H*W].
// CHECK-LABEL: func.func @layer_norm_unflattened
// CHECK: %[[X:.*]] = kiln.reshape %arg0 : tensor<4x4x8x8xf32> -> tensor<4x4x64xf32>
// CHECK: %[[F:.*]] = kiln.fused(%[[X]], %{{.*}}) : (tensor<4x4x64xf32>, tensor<4x1xf32>) -> tensor<4x4x64xf32> {
// CHECK: kiln.sum %{{.*}} {dims = array<i64: 1, 2>, keepdim = true} : tensor<4x4x64xf32>
// CHECK: kiln.yield
// CHECK-NOT: kiln.fused
// CHECK: kiln.reshape %[[F]] : tensor<4x4x64xf32> -> tensor<4x4x8x8xf32>
// REMARK: RefinedReshapes | Category:kiln-fuse | Function=layer_norm_unflattened | Remark="the reshape of [4, 4, 8, 8] to [4, 256], {{.*}} computed on [4, 4, 8, 8],
func.func @layer_norm_unflattened(%x: tensor<4x4x8x8xf32>, %w: tensor<4x1x1xf32>) -> tensor<4x4x8x8xf32> {
  %xr = kiln.reshape %x : tensor<4x4x8x8xf32> -> tensor<4x256xf32>
  %n = kiln.constant dense<256.0> : tensor<f32>
  %s = kiln.sum %xr {dims = array<i64: 1>, keepdim = true} : tensor<4x256xf32>
  %m = kiln.div %s, %n : tensor<4x1xf32>, tensor<f32>
  %d = kiln.sub %xr, %m : tensor<4x256xf32>, tensor<4x1xf32>
  %yr = kiln.reshape %d : tensor<4x256xf32> -> tensor<4x4x8x8xf32>
  %yw = kiln.mul %yr, %w : tensor<4x4x8x8xf32>, tensor<4x1x1xf32>
  return %yw : tensor<4x4x8x8xf32>
}

// -----

// Left as written: no reshape back (nothing would join the row group); a
// reshape back that is only returned; reshapes whose shapes have no
// common refinement ([8, 6, 40] and [8, 4, 60]: 6 and 4 straddle each
// other's boundaries); a reshape read by no row reduction.
// CHECK-LABEL: func.func @not_refined
// CHECK-NOT: tensor<2x2x3x
// CHECK-NOT: tensor<8x2x
// CHECK: return
// REMARK-NOT: RefinedReshapes
func.func @not_refined(%x: tensor<2x6x4x8xf32>, %z: tensor<8x6x40xf32>, %u: tensor<8x4x60xf32>) -> (tensor<2x2x96xf32>, tensor<2x6x4x8xf32>, tensor<8x6x40xf32>, tensor<8x6x40xf32>) {
  %xr = kiln.reshape %x : tensor<2x6x4x8xf32> -> tensor<2x2x96xf32>
  %s = kiln.sum %xr {dims = array<i64: 2>, keepdim = true} : tensor<2x2x96xf32>
  %d = kiln.sub %xr, %s : tensor<2x2x96xf32>, tensor<2x2x1xf32>
  %d2 = kiln.mul %d, %d : tensor<2x2x96xf32>, tensor<2x2x96xf32>
  %back = kiln.reshape %d2 : tensor<2x2x96xf32> -> tensor<2x6x4x8xf32>
  %zr = kiln.reshape %z : tensor<8x6x40xf32> -> tensor<8x4x60xf32>
  %zs = kiln.sum %zr {dims = array<i64: 2>, keepdim = true} : tensor<8x4x60xf32>
  %zd = kiln.sub %zr, %zs : tensor<8x4x60xf32>, tensor<8x4x1xf32>
  %zb = kiln.reshape %zd : tensor<8x4x60xf32> -> tensor<8x6x40xf32>
  %zo = kiln.exp %zb : tensor<8x6x40xf32>
  %ur = kiln.reshape %u : tensor<8x4x60xf32> -> tensor<8x6x40xf32>
  %ue = kiln.exp %ur : tensor<8x6x40xf32>
  return %d, %back, %zo, %ue : tensor<2x2x96xf32>, tensor<2x6x4x8xf32>, tensor<8x6x40xf32>, tensor<8x6x40xf32>
}
