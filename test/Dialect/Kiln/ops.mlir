// Every kiln op in its custom assembly format: printing and parsing again
// gives the same IR, and the generic form round-trips to the same custom form.
// RUN: kiln-opt %s -split-input-file | kiln-opt -split-input-file | FileCheck %s
// RUN: kiln-opt %s -split-input-file --mlir-print-op-generic | kiln-opt -split-input-file | FileCheck %s

// The spec's own examples, in custom form.
// CHECK-LABEL: func.func @spec_examples
func.func @spec_examples(%arg0: tensor<4x10xf32>) -> (tensor<f32>, tensor<4x3xf32>, tensor<4x3xi64>) {
  // CHECK: kiln.constant dense<5.000000e-01> : tensor<f32>
  %0 = kiln.constant dense<5.000000e-01> : tensor<f32>
  // CHECK: kiln.topk %{{.*}} {dim = 1 : i64, k = 3 : i64} : tensor<4x10xf32>
  %values, %indices = kiln.topk %arg0 {dim = 1 : i64, k = 3 : i64} : tensor<4x10xf32>
  return %0, %values, %indices : tensor<f32>, tensor<4x3xf32>, tensor<4x3xi64>
}

// -----

// Creation ops; defaults that are spelled out are elided when printing.
// CHECK-LABEL: func.func @creation
func.func @creation(%arg0: tensor<2x3xf64>) {
  // CHECK: kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
  %0 = kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
  // CHECK: kiln.full 2.500000e+00 : tensor<4x4xf32>
  %1 = kiln.full 2.500000e+00 : tensor<4x4xf32>
  // CHECK: kiln.full 1.000000e+00 : tensor<3xi1>
  %2 = kiln.full 1.000000e+00 : tensor<3xi1>
  // CHECK: kiln.zeros_like %{{.*}} : tensor<2x3xf64>
  %3 = kiln.zeros_like %arg0 : tensor<2x3xf64>
  // CHECK: kiln.ones_like %{{.*}} : tensor<2x3xf64>
  %4 = kiln.ones_like %arg0 : tensor<2x3xf64>
  // CHECK: kiln.arange {start = 0.000000e+00 : f64} : tensor<5xf32>
  %5 = kiln.arange {start = 0.000000e+00 : f64} : tensor<5xf32>
  // CHECK: kiln.arange {start = 1.000000e+01 : f64, step = -2.000000e+00 : f64} : tensor<3xi64>
  %6 = kiln.arange {start = 1.000000e+01 : f64, step = -2.000000e+00 : f64} : tensor<3xi64>
  return
}

// -----

// Unary elementwise ops, float and (where allowed) i64.
// CHECK-LABEL: func.func @unary
func.func @unary(%arg0: tensor<4xf32>, %arg1: tensor<2x2xi64>) {
  // CHECK: kiln.neg %{{.*}} : tensor<4xf32>
  %0 = kiln.neg %arg0 : tensor<4xf32>
  // CHECK: kiln.neg %{{.*}} : tensor<2x2xi64>
  %1 = kiln.neg %arg1 : tensor<2x2xi64>
  // CHECK: kiln.abs %{{.*}} : tensor<4xf32>
  %2 = kiln.abs %arg0 : tensor<4xf32>
  // CHECK: kiln.abs %{{.*}} : tensor<2x2xi64>
  %3 = kiln.abs %arg1 : tensor<2x2xi64>
  // CHECK: kiln.sqrt %{{.*}} : tensor<4xf32>
  %4 = kiln.sqrt %arg0 : tensor<4xf32>
  // CHECK: kiln.rsqrt %{{.*}} : tensor<4xf32>
  %5 = kiln.rsqrt %arg0 : tensor<4xf32>
  // CHECK: kiln.exp %{{.*}} : tensor<4xf32>
  %6 = kiln.exp %arg0 : tensor<4xf32>
  // CHECK: kiln.log %{{.*}} : tensor<4xf32>
  %7 = kiln.log %arg0 : tensor<4xf32>
  // CHECK: kiln.floor %{{.*}} : tensor<4xf32>
  %8 = kiln.floor %arg0 : tensor<4xf32>
  // CHECK: kiln.ceil %{{.*}} : tensor<4xf32>
  %9 = kiln.ceil %arg0 : tensor<4xf32>
  // CHECK: kiln.trunc %{{.*}} : tensor<4xf32>
  %10 = kiln.trunc %arg0 : tensor<4xf32>
  // CHECK: kiln.frac %{{.*}} : tensor<4xf32>
  %11 = kiln.frac %arg0 : tensor<4xf32>
  // CHECK: kiln.round %{{.*}} : tensor<4xf32>
  %12 = kiln.round %arg0 : tensor<4xf32>
  // CHECK: kiln.sigmoid %{{.*}} : tensor<4xf32>
  %13 = kiln.sigmoid %arg0 : tensor<4xf32>
  // CHECK: kiln.tanh %{{.*}} : tensor<4xf32>
  %14 = kiln.tanh %arg0 : tensor<4xf32>
  // CHECK: kiln.relu %{{.*}} : tensor<4xf32>
  %15 = kiln.relu %arg0 : tensor<4xf32>
  // CHECK: kiln.erf %{{.*}} : tensor<4xf32>
  %16 = kiln.erf %arg0 : tensor<4xf32>
  return
}

// -----

// Binary elementwise ops broadcast, including against rank 0.
// CHECK-LABEL: func.func @binary
func.func @binary(%arg0: tensor<4x1xf32>, %arg1: tensor<8xf32>, %arg2: tensor<f32>, %arg3: tensor<3xi64>, %arg4: tensor<2x1xi64>) {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<8xf32>
  %0 = kiln.add %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
  // CHECK: kiln.sub %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<f32>
  %1 = kiln.sub %arg0, %arg2 : tensor<4x1xf32>, tensor<f32>
  // CHECK: kiln.mul %{{.*}}, %{{.*}} : tensor<3xi64>, tensor<2x1xi64>
  %2 = kiln.mul %arg3, %arg4 : tensor<3xi64>, tensor<2x1xi64>
  // CHECK: kiln.div %{{.*}}, %{{.*}} : tensor<f32>, tensor<8xf32>
  %3 = kiln.div %arg2, %arg1 : tensor<f32>, tensor<8xf32>
  // CHECK: kiln.maximum %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<8xf32>
  %4 = kiln.maximum %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
  // CHECK: kiln.minimum %{{.*}}, %{{.*}} : tensor<3xi64>, tensor<3xi64>
  %5 = kiln.minimum %arg3, %arg3 : tensor<3xi64>, tensor<3xi64>
  // CHECK: kiln.pow %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<f32>
  %6 = kiln.pow %arg1, %arg2 : tensor<8xf32>, tensor<f32>
  return
}

// -----

// Comparisons produce i1 masks with the broadcast shape.
// CHECK-LABEL: func.func @compare
func.func @compare(%arg0: tensor<4x1xf32>, %arg1: tensor<8xf32>, %arg2: tensor<3xi64>) {
  // CHECK: kiln.gt %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<8xf32>
  %0 = kiln.gt %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
  // CHECK: kiln.ge %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<8xf32>
  %1 = kiln.ge %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
  // CHECK: kiln.lt %{{.*}}, %{{.*}} : tensor<3xi64>, tensor<3xi64>
  %2 = kiln.lt %arg2, %arg2 : tensor<3xi64>, tensor<3xi64>
  // CHECK: kiln.le %{{.*}}, %{{.*}} : tensor<3xi64>, tensor<3xi64>
  %3 = kiln.le %arg2, %arg2 : tensor<3xi64>, tensor<3xi64>
  // CHECK: kiln.eq %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8xf32>
  %4 = kiln.eq %arg1, %arg1 : tensor<8xf32>, tensor<8xf32>
  // CHECK: kiln.ne %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8xf32>
  %5 = kiln.ne %arg1, %arg1 : tensor<8xf32>, tensor<8xf32>
  return
}

// -----

// clamp with one or both bounds, where with three-way broadcasting, cast,
// equal.
// CHECK-LABEL: func.func @other_elementwise
func.func @other_elementwise(%arg0: tensor<7xf32>, %arg1: tensor<2x1xi1>, %arg2: tensor<f32>, %arg3: tensor<7xi64>) {
  // CHECK: kiln.clamp %{{.*}} {max = 5.500000e+00 : f64, min = 1.500000e+00 : f64} : tensor<7xf32>
  %0 = kiln.clamp %arg0 {max = 5.500000e+00 : f64, min = 1.500000e+00 : f64} : tensor<7xf32>
  // CHECK: kiln.clamp %{{.*}} {min = 0.000000e+00 : f64} : tensor<7xf32>
  %1 = kiln.clamp %arg0 {min = 0.000000e+00 : f64} : tensor<7xf32>
  // CHECK: kiln.clamp %{{.*}} {max = 3.000000e+00 : f64} : tensor<7xi64>
  %2 = kiln.clamp %arg3 {max = 3.000000e+00 : f64} : tensor<7xi64>
  // CHECK: kiln.where %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x1xi1>, tensor<7xf32>, tensor<f32>
  %3 = kiln.where %arg1, %arg0, %arg2 : tensor<2x1xi1>, tensor<7xf32>, tensor<f32>
  // CHECK: kiln.cast %{{.*}} : tensor<7xf32> to tensor<7xi64>
  %4 = kiln.cast %arg0 : tensor<7xf32> to tensor<7xi64>
  // CHECK: kiln.cast %{{.*}} : tensor<2x1xi1> to tensor<2x1xf64>
  %5 = kiln.cast %arg1 : tensor<2x1xi1> to tensor<2x1xf64>
  // CHECK: kiln.equal %{{.*}}, %{{.*}} : tensor<7xf32>, tensor<7xf32>
  %6 = kiln.equal %arg0, %arg0 : tensor<7xf32>, tensor<7xf32>
  return
}

// -----

// Shape ops.
// CHECK-LABEL: func.func @shape
func.func @shape(%arg0: tensor<2x6xf32>, %arg1: tensor<f32>, %arg2: tensor<2x3x4xf32>) {
  // CHECK: kiln.reshape %{{.*}} : tensor<2x6xf32> -> tensor<3x4xf32>
  %0 = kiln.reshape %arg0 : tensor<2x6xf32> -> tensor<3x4xf32>
  // CHECK: kiln.reshape %{{.*}} : tensor<f32> -> tensor<1x1xf32>
  %1 = kiln.reshape %arg1 : tensor<f32> -> tensor<1x1xf32>
  // CHECK: kiln.expand %{{.*}} : tensor<f32> -> tensor<5xf32>
  %2 = kiln.expand %arg1 : tensor<f32> -> tensor<5xf32>
  // CHECK: kiln.expand %{{.*}} : tensor<2x6xf32> -> tensor<3x2x6xf32>
  %3 = kiln.expand %arg0 : tensor<2x6xf32> -> tensor<3x2x6xf32>
  // CHECK: kiln.permute %{{.*}} [2, 0, 1] : tensor<2x3x4xf32>
  %4 = kiln.permute %arg2 [2, 0, 1] : tensor<2x3x4xf32>
  // CHECK: kiln.permute %{{.*}} [-1, -2] : tensor<2x6xf32>
  %5 = kiln.permute %arg0 [-1, -2] : tensor<2x6xf32>
  return
}

// -----

// matmul: dot, mm, mv, vm and batched with broadcast batch dims.
// CHECK-LABEL: func.func @matmul
func.func @matmul(%arg0: tensor<8xf32>, %arg1: tensor<3x8xf32>, %arg2: tensor<8x5xf32>, %arg3: tensor<4x3x28x64xf32>, %arg4: tensor<4x1x64x32xf32>, %arg5: tensor<64xf32>, %arg6: tensor<2x2xi64>) {
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8xf32>
  %0 = kiln.matmul %arg0, %arg0 : tensor<8xf32>, tensor<8xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<3x8xf32>, tensor<8x5xf32>
  %1 = kiln.matmul %arg1, %arg2 : tensor<3x8xf32>, tensor<8x5xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<3x8xf32>, tensor<8xf32>
  %2 = kiln.matmul %arg1, %arg0 : tensor<3x8xf32>, tensor<8xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8x5xf32>
  %3 = kiln.matmul %arg0, %arg2 : tensor<8xf32>, tensor<8x5xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<4x3x28x64xf32>, tensor<4x1x64x32xf32>
  %4 = kiln.matmul %arg3, %arg4 : tensor<4x3x28x64xf32>, tensor<4x1x64x32xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<4x3x28x64xf32>, tensor<64xf32>
  %5 = kiln.matmul %arg3, %arg5 : tensor<4x3x28x64xf32>, tensor<64xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<2x2xi64>, tensor<2x2xi64>
  %6 = kiln.matmul %arg6, %arg6 : tensor<2x2xi64>, tensor<2x2xi64>
  return
}

// -----

// Reductions with dims/keepdim defaults and explicit values.
// CHECK-LABEL: func.func @reductions
func.func @reductions(%arg0: tensor<4x10xf32>, %arg1: tensor<4x10xi64>) {
  // CHECK: kiln.sum %{{.*}} : tensor<4x10xf32>
  %0 = kiln.sum %arg0 : tensor<4x10xf32>
  // CHECK: kiln.sum %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<4x10xf32>
  %1 = kiln.sum %arg0 {dims = array<i64: 1>, keepdim = true} : tensor<4x10xf32>
  // CHECK: kiln.sum %{{.*}} {dims = array<i64: -1>} : tensor<4x10xi64>
  %2 = kiln.sum %arg1 {dims = array<i64: -1>} : tensor<4x10xi64>
  // CHECK: kiln.mean %{{.*}} {dims = array<i64: 0, 1>, keepdim = true} : tensor<4x10xf32>
  %3 = kiln.mean %arg0 {dims = array<i64: 0, 1>, keepdim = true} : tensor<4x10xf32>
  // CHECK: kiln.prod %{{.*}} {dims = array<i64: 0>} : tensor<4x10xi64>
  %4 = kiln.prod %arg1 {dims = array<i64: 0>} : tensor<4x10xi64>
  // CHECK: kiln.amax %{{.*}} : tensor<4x10xf32>
  %5 = kiln.amax %arg0 : tensor<4x10xf32>
  // CHECK: kiln.amin %{{.*}} {dims = array<i64: 1>} : tensor<4x10xf32>
  %6 = kiln.amin %arg0 {dims = array<i64: 1>} : tensor<4x10xf32>
  // CHECK: kiln.max %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>
  %values, %indices = kiln.max %arg0 {dim = 1 : i64} : tensor<4x10xf32>
  // CHECK: kiln.min %{{.*}} {dim = -1 : i64, keepdim = true} : tensor<4x10xi64>
  %values_0, %indices_1 = kiln.min %arg1 {dim = -1 : i64, keepdim = true} : tensor<4x10xi64>
  // CHECK: kiln.argmax %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>
  %7 = kiln.argmax %arg0 {dim = 1 : i64} : tensor<4x10xf32>
  // CHECK: kiln.argmax %{{.*}} : tensor<4x10xf32>
  %8 = kiln.argmax %arg0 : tensor<4x10xf32>
  // CHECK: kiln.argmin %{{.*}} {dim = 0 : i64, keepdim = true} : tensor<4x10xf32>
  %9 = kiln.argmin %arg0 {dim = 0 : i64, keepdim = true} : tensor<4x10xf32>
  // CHECK: kiln.norm %{{.*}} : tensor<4x10xf32>
  %10 = kiln.norm %arg0 : tensor<4x10xf32>
  // CHECK: kiln.norm %{{.*}} {dims = array<i64: 1>, p = 1.000000e+00 : f64} : tensor<4x10xf32>
  %11 = kiln.norm %arg0 {dims = array<i64: 1>, p = 1.000000e+00 : f64} : tensor<4x10xf32>
  // CHECK: kiln.norm %{{.*}} {dims = array<i64: 0>, keepdim = true, p = 3.000000e+00 : f64} : tensor<4x10xf32>
  %12 = kiln.norm %arg0 {dims = array<i64: 0>, keepdim = true, p = 3.000000e+00 : f64} : tensor<4x10xf32>
  return
}

// -----

// topk and kthvalue with every attribute.
// CHECK-LABEL: func.func @selection
func.func @selection(%arg0: tensor<4x10xf32>, %arg1: tensor<6xi64>) {
  // CHECK: kiln.topk %{{.*}} {k = 3 : i64} : tensor<4x10xf32>
  %values, %indices = kiln.topk %arg0 {k = 3 : i64} : tensor<4x10xf32>
  // CHECK: kiln.topk %{{.*}} {dim = 0 : i64, k = 4 : i64, largest = false, sorted = false} : tensor<4x10xf32>
  %values_0, %indices_1 = kiln.topk %arg0 {dim = 0 : i64, k = 4 : i64, largest = false, sorted = false} : tensor<4x10xf32>
  // CHECK: kiln.topk %{{.*}} {k = 0 : i64} : tensor<6xi64>
  %values_2, %indices_3 = kiln.topk %arg1 {k = 0 : i64} : tensor<6xi64>
  // CHECK: kiln.kthvalue %{{.*}} {k = 2 : i64} : tensor<4x10xf32>
  %values_4, %indices_5 = kiln.kthvalue %arg0 {k = 2 : i64} : tensor<4x10xf32>
  // CHECK: kiln.kthvalue %{{.*}} {dim = 0 : i64, k = 4 : i64, keepdim = true} : tensor<4x10xf32>
  %values_6, %indices_7 = kiln.kthvalue %arg0 {dim = 0 : i64, k = 4 : i64, keepdim = true} : tensor<4x10xf32>
  return
}

// -----

// Indexing ops.
// CHECK-LABEL: func.func @indexing
func.func @indexing(%arg0: tensor<4x10xf32>, %arg1: tensor<4x3xi64>, %arg2: tensor<6xi64>, %arg3: tensor<2x2xi64>, %arg4: tensor<5x3xf32>, %arg5: tensor<2x3xf32>, %arg6: tensor<2xi64>, %arg7: tensor<4xf32>) {
  // CHECK: kiln.gather %{{.*}}, %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>
  %0 = kiln.gather %arg0, %arg1 {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>
  // CHECK: kiln.index_select %{{.*}}, %{{.*}} {dim = 0 : i64} : tensor<4x10xf32>, tensor<6xi64>
  %1 = kiln.index_select %arg0, %arg2 {dim = 0 : i64} : tensor<4x10xf32>, tensor<6xi64>
  // CHECK: kiln.take %{{.*}}, %{{.*}} : tensor<4x10xf32>, tensor<2x2xi64>
  %2 = kiln.take %arg0, %arg3 : tensor<4x10xf32>, tensor<2x2xi64>
  // CHECK: kiln.scatter_add %{{.*}}, %{{.*}}, %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x10xf32>
  %3 = kiln.scatter_add %arg0, %arg1, %arg0 {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x10xf32>
  // CHECK: kiln.index_add %{{.*}}, %{{.*}}, %{{.*}} {dim = 0 : i64} : tensor<5x3xf32>, tensor<2xi64>, tensor<2x3xf32>
  %4 = kiln.index_add %arg4, %arg6, %arg5 {dim = 0 : i64} : tensor<5x3xf32>, tensor<2xi64>, tensor<2x3xf32>
  // CHECK: kiln.put %{{.*}}, %{{.*}}, %{{.*}} {accumulate = true} : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
  %5 = kiln.put %arg5, %arg3, %arg7 {accumulate = true} : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
  // CHECK: kiln.put %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
  %6 = kiln.put %arg5, %arg3, %arg7 : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
  return
}

// -----

// Neural-network ops with every reduction kind.
// CHECK-LABEL: func.func @nn
func.func @nn(%arg0: tensor<8x5xf32>, %arg1: tensor<8x5xf32>, %arg2: tensor<8xi64>, %arg3: tensor<5xf64>, %arg4: tensor<i64>) {
  // CHECK: kiln.softmax %{{.*}} {dim = 1 : i64} : tensor<8x5xf32>
  %0 = kiln.softmax %arg0 {dim = 1 : i64} : tensor<8x5xf32>
  // CHECK: kiln.log_softmax %{{.*}} {dim = -1 : i64} : tensor<8x5xf32>
  %1 = kiln.log_softmax %arg0 {dim = -1 : i64} : tensor<8x5xf32>
  // CHECK: kiln.mse_loss %{{.*}}, %{{.*}} : tensor<8x5xf32>, tensor<8x5xf32>
  %2 = kiln.mse_loss %arg0, %arg1 : tensor<8x5xf32>, tensor<8x5xf32>
  // CHECK: kiln.mse_loss %{{.*}}, %{{.*}} {reduction = "sum"} : tensor<8x5xf32>, tensor<8x5xf32>
  %3 = kiln.mse_loss %arg0, %arg1 {reduction = "sum"} : tensor<8x5xf32>, tensor<8x5xf32>
  // CHECK: kiln.mse_loss %{{.*}}, %{{.*}} {reduction = "none"} : tensor<8x5xf32>, tensor<8x5xf32>
  %4 = kiln.mse_loss %arg0, %arg1 {reduction = "none"} : tensor<8x5xf32>, tensor<8x5xf32>
  // CHECK: kiln.cross_entropy %{{.*}}, %{{.*}} : tensor<8x5xf32>, tensor<8xi64>
  %5 = kiln.cross_entropy %arg0, %arg2 : tensor<8x5xf32>, tensor<8xi64>
  // CHECK: kiln.cross_entropy %{{.*}}, %{{.*}} {reduction = "none"} : tensor<8x5xf32>, tensor<8xi64>
  %6 = kiln.cross_entropy %arg0, %arg2 {reduction = "none"} : tensor<8x5xf32>, tensor<8xi64>
  // CHECK: kiln.cross_entropy %{{.*}}, %{{.*}} {reduction = "sum"} : tensor<5xf64>, tensor<i64>
  %7 = kiln.cross_entropy %arg3, %arg4 {reduction = "sum"} : tensor<5xf64>, tensor<i64>
  return
}

// -----

// kiln.fused in its three forms (what kiln-fuse-elementwise makes): an
// elementwise loop with two results, an anchored reduction with an epilogue,
// row groups.
// CHECK-LABEL: func.func @fused
func.func @fused(%arg0: tensor<4x8xf32>, %arg1: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xi1>, tensor<4xf32>, tensor<4x8xf32>) {
  // CHECK: %[[E:.*]]:2 = kiln.fused(%{{.*}}, %{{.*}}) : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xi1>) {
  // CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<8xf32>):
  // CHECK-NEXT: %[[M:.*]] = kiln.gt %[[A]], %[[B]] : tensor<4x8xf32>, tensor<8xf32>
  // CHECK-NEXT: %[[W:.*]] = kiln.where %[[M]], %[[A]], %[[B]]
  // CHECK-NEXT: kiln.yield %[[W]], %[[M]] : tensor<4x8xf32>, tensor<4x8xi1>
  %0:2 = kiln.fused(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xi1>) {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<8xf32>):
    %m = kiln.gt %a, %b : tensor<4x8xf32>, tensor<8xf32>
    %w = kiln.where %m, %a, %b : tensor<4x8xi1>, tensor<4x8xf32>, tensor<8xf32>
    kiln.yield %w, %m : tensor<4x8xf32>, tensor<4x8xi1>
  }
  // CHECK: kiln.fused(%{{.*}}) : (tensor<4x8xf32>) -> tensor<4xf32> {
  // CHECK: kiln.constant dense<2.000000e+00> : tensor<f32>
  // CHECK: kiln.sum
  // CHECK: kiln.sqrt
  // CHECK: kiln.yield
  %1 = kiln.fused(%arg0) : (tensor<4x8xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %two = kiln.constant dense<2.0> : tensor<f32>
    %p = kiln.pow %a, %two : tensor<4x8xf32>, tensor<f32>
    %s = kiln.sum %p {dims = array<i64: 1>} : tensor<4x8xf32>
    %r = kiln.sqrt %s : tensor<4xf32>
    kiln.yield %r : tensor<4xf32>
  }
  // CHECK: kiln.fused(%{{.*}}) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true}
  // CHECK: kiln.sub
  // CHECK: kiln.softmax %{{.*}} {dim = 1 : i64}
  // CHECK: kiln.yield
  %2 = kiln.fused(%arg0) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
    %d = kiln.sub %a, %m : tensor<4x8xf32>, tensor<4x1xf32>
    %s = kiln.softmax %d {dim = 1 : i64} : tensor<4x8xf32>
    %r = kiln.mul %s, %d : tensor<4x8xf32>, tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  // A row group with per-row results: a row's sum without keepdim, a
  // value of its keepdim maximum, and the chain's value.
  // CHECK: kiln.fused(%{{.*}}) : (tensor<4x8xf32>) -> (tensor<4xf32>, tensor<4x1xf32>, tensor<4x8xf32>) {
  // CHECK: kiln.sum %{{.*}} {dims = array<i64: 1>}
  // CHECK: kiln.amax %{{.*}} {dims = array<i64: 1>, keepdim = true}
  // CHECK: kiln.yield %{{.*}}, %{{.*}}, %{{.*}} : tensor<4xf32>, tensor<4x1xf32>, tensor<4x8xf32>
  %3:3 = kiln.fused(%arg0) : (tensor<4x8xf32>) -> (tensor<4xf32>, tensor<4x1xf32>, tensor<4x8xf32>) {
  ^bb0(%a: tensor<4x8xf32>):
    %e = kiln.exp %a : tensor<4x8xf32>
    %s = kiln.sum %e {dims = array<i64: 1>} : tensor<4x8xf32>
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
    %n = kiln.neg %m : tensor<4x1xf32>
    kiln.yield %s, %n, %e : tensor<4xf32>, tensor<4x1xf32>, tensor<4x8xf32>
  }
  return %0#0, %0#1, %1, %2 : tensor<4x8xf32>, tensor<4x8xi1>, tensor<4xf32>, tensor<4x8xf32>
}
