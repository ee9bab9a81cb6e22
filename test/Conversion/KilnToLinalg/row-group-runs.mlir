// A hand-written row group whose rows span the last two dims (an instance
// norm's H and W): the lowering first rewrites it over rows of one dim,
// those collapsed (FusedOp::collapseRowDims, as kiln-fuse-elementwise does
// for the groups it forms), then builds one scf.forall over the rows.
// RUN: kiln-opt %s -convert-kiln-to-linalg | FileCheck %s

// CHECK-LABEL: func.func @instance_norm_written
// CHECK: %[[X:.*]] = tensor.reshape %arg0(%{{.*}}) : (tensor<2x4x6x8xf32>, tensor<3xindex>) -> tensor<2x4x48xf32>
// CHECK: %[[W:.*]] = tensor.reshape %arg1(%{{.*}}) : (tensor<4x1x1xf32>, tensor<2xindex>) -> tensor<4x1xf32>
// CHECK: %[[F:.*]] = scf.forall (%{{.*}}) in (8) shared_outs(%{{.*}} = %{{.*}}) -> (tensor<2x4x48xf32>)
// CHECK: scf.forall.in_parallel
// CHECK: tensor.reshape %[[F]](%{{.*}}) : (tensor<2x4x48xf32>, tensor<4xindex>) -> tensor<2x4x6x8xf32>
func.func @instance_norm_written(%x: tensor<2x4x6x8xf32>, %w: tensor<4x1x1xf32>) -> tensor<2x4x6x8xf32> {
  %0 = kiln.fused(%x, %w) : (tensor<2x4x6x8xf32>, tensor<4x1x1xf32>) -> tensor<2x4x6x8xf32> {
  ^bb0(%a: tensor<2x4x6x8xf32>, %b: tensor<4x1x1xf32>):
    %s = kiln.sum %a {dims = array<i64: 3, 2>, keepdim = true} : tensor<2x4x6x8xf32>
    %d = kiln.sub %a, %s : tensor<2x4x6x8xf32>, tensor<2x4x1x1xf32>
    %q = kiln.mul %d, %d : tensor<2x4x6x8xf32>, tensor<2x4x6x8xf32>
    %v = kiln.amax %q {dims = array<i64: -2, -1>, keepdim = true} : tensor<2x4x6x8xf32>
    %r = kiln.div %d, %v : tensor<2x4x6x8xf32>, tensor<2x4x1x1xf32>
    %y = kiln.mul %r, %b : tensor<2x4x6x8xf32>, tensor<4x1x1xf32>
    kiln.yield %y : tensor<2x4x6x8xf32>
  }
  return %0 : tensor<2x4x6x8xf32>
}
