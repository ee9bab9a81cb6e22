// Every kiln op (the functions of test/Dialect/Kiln/ops.mlir, each
// returning all its values so that nothing is dead), compiled by the GPU
// pipeline: every kernel's PTX must assemble with ptxas (ptx.test).
module {
  func.func @spec_examples(%arg0: tensor<4x10xf32>) -> (tensor<f32>, tensor<4x3xf32>, tensor<4x3xi64>) {
    %0 = kiln.constant dense<5.000000e-01> : tensor<f32>
    %values, %indices = kiln.topk %arg0 {dim = 1 : i64, k = 3 : i64} : tensor<4x10xf32>
    return %0, %values, %indices : tensor<f32>, tensor<4x3xf32>, tensor<4x3xi64>
  }
  func.func @creation(%arg0: tensor<2x3xf64>) -> (tensor<3xi64>, tensor<4x4xf32>, tensor<3xi1>, tensor<2x3xf64>, tensor<2x3xf64>, tensor<5xf32>, tensor<3xi64>) {
    %0 = kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
    %1 = kiln.full 2.500000e+00 : tensor<4x4xf32>
    %2 = kiln.full 1.000000e+00 : tensor<3xi1>
    %3 = kiln.zeros_like %arg0 : tensor<2x3xf64>
    %4 = kiln.ones_like %arg0 : tensor<2x3xf64>
    %5 = kiln.arange {start = 0.000000e+00 : f64} : tensor<5xf32>
    %6 = kiln.arange {start = 1.000000e+01 : f64, step = -2.000000e+00 : f64} : tensor<3xi64>
    return %0, %1, %2, %3, %4, %5, %6 : tensor<3xi64>, tensor<4x4xf32>, tensor<3xi1>, tensor<2x3xf64>, tensor<2x3xf64>, tensor<5xf32>, tensor<3xi64>
  }
  func.func @unary(%arg0: tensor<4xf32>, %arg1: tensor<2x2xi64>) -> (tensor<4xf32>, tensor<2x2xi64>, tensor<4xf32>, tensor<2x2xi64>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
    %0 = kiln.neg %arg0 : tensor<4xf32>
    %1 = kiln.neg %arg1 : tensor<2x2xi64>
    %2 = kiln.abs %arg0 : tensor<4xf32>
    %3 = kiln.abs %arg1 : tensor<2x2xi64>
    %4 = kiln.sqrt %arg0 : tensor<4xf32>
    %5 = kiln.rsqrt %arg0 : tensor<4xf32>
    %6 = kiln.exp %arg0 : tensor<4xf32>
    %7 = kiln.log %arg0 : tensor<4xf32>
    %8 = kiln.floor %arg0 : tensor<4xf32>
    %9 = kiln.ceil %arg0 : tensor<4xf32>
    %10 = kiln.trunc %arg0 : tensor<4xf32>
    %11 = kiln.frac %arg0 : tensor<4xf32>
    %12 = kiln.round %arg0 : tensor<4xf32>
    %13 = kiln.sigmoid %arg0 : tensor<4xf32>
    %14 = kiln.tanh %arg0 : tensor<4xf32>
    %15 = kiln.relu %arg0 : tensor<4xf32>
    %16 = kiln.erf %arg0 : tensor<4xf32>
    return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16 : tensor<4xf32>, tensor<2x2xi64>, tensor<4xf32>, tensor<2x2xi64>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  }
  func.func @binary(%arg0: tensor<4x1xf32>, %arg1: tensor<8xf32>, %arg2: tensor<f32>, %arg3: tensor<3xi64>, %arg4: tensor<2x1xi64>) -> (tensor<4x8xf32>, tensor<4x1xf32>, tensor<2x3xi64>, tensor<8xf32>, tensor<4x8xf32>, tensor<3xi64>, tensor<8xf32>) {
    %0 = kiln.add %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
    %1 = kiln.sub %arg0, %arg2 : tensor<4x1xf32>, tensor<f32>
    %2 = kiln.mul %arg3, %arg4 : tensor<3xi64>, tensor<2x1xi64>
    %3 = kiln.div %arg2, %arg1 : tensor<f32>, tensor<8xf32>
    %4 = kiln.maximum %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
    %5 = kiln.minimum %arg3, %arg3 : tensor<3xi64>, tensor<3xi64>
    %6 = kiln.pow %arg1, %arg2 : tensor<8xf32>, tensor<f32>
    return %0, %1, %2, %3, %4, %5, %6 : tensor<4x8xf32>, tensor<4x1xf32>, tensor<2x3xi64>, tensor<8xf32>, tensor<4x8xf32>, tensor<3xi64>, tensor<8xf32>
  }
  func.func @compare(%arg0: tensor<4x1xf32>, %arg1: tensor<8xf32>, %arg2: tensor<3xi64>) -> (tensor<4x8xi1>, tensor<4x8xi1>, tensor<3xi1>, tensor<3xi1>, tensor<8xi1>, tensor<8xi1>) {
    %0 = kiln.gt %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
    %1 = kiln.ge %arg0, %arg1 : tensor<4x1xf32>, tensor<8xf32>
    %2 = kiln.lt %arg2, %arg2 : tensor<3xi64>, tensor<3xi64>
    %3 = kiln.le %arg2, %arg2 : tensor<3xi64>, tensor<3xi64>
    %4 = kiln.eq %arg1, %arg1 : tensor<8xf32>, tensor<8xf32>
    %5 = kiln.ne %arg1, %arg1 : tensor<8xf32>, tensor<8xf32>
    return %0, %1, %2, %3, %4, %5 : tensor<4x8xi1>, tensor<4x8xi1>, tensor<3xi1>, tensor<3xi1>, tensor<8xi1>, tensor<8xi1>
  }
  func.func @other_elementwise(%arg0: tensor<7xf32>, %arg1: tensor<2x1xi1>, %arg2: tensor<f32>, %arg3: tensor<7xi64>) -> (tensor<7xf32>, tensor<7xf32>, tensor<7xi64>, tensor<2x7xf32>, tensor<7xi64>, tensor<2x1xf64>, tensor<i1>) {
    %0 = kiln.clamp %arg0 {max = 5.500000e+00 : f64, min = 1.500000e+00 : f64} : tensor<7xf32>
    %1 = kiln.clamp %arg0 {min = 0.000000e+00 : f64} : tensor<7xf32>
    %2 = kiln.clamp %arg3 {max = 3.000000e+00 : f64} : tensor<7xi64>
    %3 = kiln.where %arg1, %arg0, %arg2 : tensor<2x1xi1>, tensor<7xf32>, tensor<f32>
    %4 = kiln.cast %arg0 : tensor<7xf32> to tensor<7xi64>
    %5 = kiln.cast %arg1 : tensor<2x1xi1> to tensor<2x1xf64>
    %6 = kiln.equal %arg0, %arg0 : tensor<7xf32>, tensor<7xf32>
    return %0, %1, %2, %3, %4, %5, %6 : tensor<7xf32>, tensor<7xf32>, tensor<7xi64>, tensor<2x7xf32>, tensor<7xi64>, tensor<2x1xf64>, tensor<i1>
  }
  func.func @shape(%arg0: tensor<2x6xf32>, %arg1: tensor<f32>, %arg2: tensor<2x3x4xf32>) -> (tensor<3x4xf32>, tensor<1x1xf32>, tensor<5xf32>, tensor<3x2x6xf32>, tensor<4x2x3xf32>, tensor<6x2xf32>) {
    %0 = kiln.reshape %arg0 : tensor<2x6xf32> -> tensor<3x4xf32>
    %1 = kiln.reshape %arg1 : tensor<f32> -> tensor<1x1xf32>
    %2 = kiln.expand %arg1 : tensor<f32> -> tensor<5xf32>
    %3 = kiln.expand %arg0 : tensor<2x6xf32> -> tensor<3x2x6xf32>
    %4 = kiln.permute %arg2 [2, 0, 1] : tensor<2x3x4xf32>
    %5 = kiln.permute %arg0 [-1, -2] : tensor<2x6xf32>
    return %0, %1, %2, %3, %4, %5 : tensor<3x4xf32>, tensor<1x1xf32>, tensor<5xf32>, tensor<3x2x6xf32>, tensor<4x2x3xf32>, tensor<6x2xf32>
  }
  func.func @matmul(%arg0: tensor<8xf32>, %arg1: tensor<3x8xf32>, %arg2: tensor<8x5xf32>, %arg3: tensor<4x3x28x64xf32>, %arg4: tensor<4x1x64x32xf32>, %arg5: tensor<64xf32>, %arg6: tensor<2x2xi64>) -> (tensor<f32>, tensor<3x5xf32>, tensor<3xf32>, tensor<5xf32>, tensor<4x3x28x32xf32>, tensor<4x3x28xf32>, tensor<2x2xi64>) {
    %0 = kiln.matmul %arg0, %arg0 : tensor<8xf32>, tensor<8xf32>
    %1 = kiln.matmul %arg1, %arg2 : tensor<3x8xf32>, tensor<8x5xf32>
    %2 = kiln.matmul %arg1, %arg0 : tensor<3x8xf32>, tensor<8xf32>
    %3 = kiln.matmul %arg0, %arg2 : tensor<8xf32>, tensor<8x5xf32>
    %4 = kiln.matmul %arg3, %arg4 : tensor<4x3x28x64xf32>, tensor<4x1x64x32xf32>
    %5 = kiln.matmul %arg3, %arg5 : tensor<4x3x28x64xf32>, tensor<64xf32>
    %6 = kiln.matmul %arg6, %arg6 : tensor<2x2xi64>, tensor<2x2xi64>
    return %0, %1, %2, %3, %4, %5, %6 : tensor<f32>, tensor<3x5xf32>, tensor<3xf32>, tensor<5xf32>, tensor<4x3x28x32xf32>, tensor<4x3x28xf32>, tensor<2x2xi64>
  }
  func.func @reductions(%arg0: tensor<4x10xf32>, %arg1: tensor<4x10xi64>) -> (tensor<f32>, tensor<4x1xf32>, tensor<4xi64>, tensor<1x1xf32>, tensor<10xi64>, tensor<f32>, tensor<4xf32>, tensor<4xf32>, tensor<4xi64>, tensor<4x1xi64>, tensor<4x1xi64>, tensor<4xi64>, tensor<i64>, tensor<1x10xi64>, tensor<f32>, tensor<4xf32>, tensor<1x10xf32>) {
    %0 = kiln.sum %arg0 : tensor<4x10xf32>
    %1 = kiln.sum %arg0 {dims = array<i64: 1>, keepdim = true} : tensor<4x10xf32>
    %2 = kiln.sum %arg1 {dims = array<i64: -1>} : tensor<4x10xi64>
    %3 = kiln.mean %arg0 {dims = array<i64: 0, 1>, keepdim = true} : tensor<4x10xf32>
    %4 = kiln.prod %arg1 {dims = array<i64: 0>} : tensor<4x10xi64>
    %5 = kiln.amax %arg0 : tensor<4x10xf32>
    %6 = kiln.amin %arg0 {dims = array<i64: 1>} : tensor<4x10xf32>
    %values, %indices = kiln.max %arg0 {dim = 1 : i64} : tensor<4x10xf32>
    %values_0, %indices_1 = kiln.min %arg1 {dim = -1 : i64, keepdim = true} : tensor<4x10xi64>
    %7 = kiln.argmax %arg0 {dim = 1 : i64} : tensor<4x10xf32>
    %8 = kiln.argmax %arg0 : tensor<4x10xf32>
    %9 = kiln.argmin %arg0 {dim = 0 : i64, keepdim = true} : tensor<4x10xf32>
    %10 = kiln.norm %arg0 : tensor<4x10xf32>
    %11 = kiln.norm %arg0 {dims = array<i64: 1>, p = 1.000000e+00 : f64} : tensor<4x10xf32>
    %12 = kiln.norm %arg0 {dims = array<i64: 0>, keepdim = true, p = 3.000000e+00 : f64} : tensor<4x10xf32>
    return %0, %1, %2, %3, %4, %5, %6, %values, %indices, %values_0, %indices_1, %7, %8, %9, %10, %11, %12 : tensor<f32>, tensor<4x1xf32>, tensor<4xi64>, tensor<1x1xf32>, tensor<10xi64>, tensor<f32>, tensor<4xf32>, tensor<4xf32>, tensor<4xi64>, tensor<4x1xi64>, tensor<4x1xi64>, tensor<4xi64>, tensor<i64>, tensor<1x10xi64>, tensor<f32>, tensor<4xf32>, tensor<1x10xf32>
  }
  func.func @selection(%arg0: tensor<4x10xf32>, %arg1: tensor<6xi64>) -> (tensor<4x3xf32>, tensor<4x3xi64>, tensor<4x10xf32>, tensor<4x10xi64>, tensor<0xi64>, tensor<0xi64>, tensor<4xf32>, tensor<4xi64>, tensor<1x10xf32>, tensor<1x10xi64>) {
    %values, %indices = kiln.topk %arg0 {k = 3 : i64} : tensor<4x10xf32>
    %values_0, %indices_1 = kiln.topk %arg0 {dim = 0 : i64, k = 4 : i64, largest = false, sorted = false} : tensor<4x10xf32>
    %values_2, %indices_3 = kiln.topk %arg1 {k = 0 : i64} : tensor<6xi64>
    %values_4, %indices_5 = kiln.kthvalue %arg0 {k = 2 : i64} : tensor<4x10xf32>
    %values_6, %indices_7 = kiln.kthvalue %arg0 {dim = 0 : i64, k = 4 : i64, keepdim = true} : tensor<4x10xf32>
    return %values, %indices, %values_0, %indices_1, %values_2, %indices_3, %values_4, %indices_5, %values_6, %indices_7 : tensor<4x3xf32>, tensor<4x3xi64>, tensor<4x10xf32>, tensor<4x10xi64>, tensor<0xi64>, tensor<0xi64>, tensor<4xf32>, tensor<4xi64>, tensor<1x10xf32>, tensor<1x10xi64>
  }
  func.func @indexing(%arg0: tensor<4x10xf32>, %arg1: tensor<4x3xi64>, %arg2: tensor<6xi64>, %arg3: tensor<2x2xi64>, %arg4: tensor<5x3xf32>, %arg5: tensor<2x3xf32>, %arg6: tensor<2xi64>, %arg7: tensor<4xf32>) -> (tensor<4x3xf32>, tensor<6x10xf32>, tensor<2x2xf32>, tensor<4x10xf32>, tensor<5x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<6xi64>) {
    %0 = kiln.gather %arg0, %arg1 {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>
    %1 = kiln.index_select %arg0, %arg2 {dim = 0 : i64} : tensor<4x10xf32>, tensor<6xi64>
    %2 = kiln.take %arg0, %arg3 : tensor<4x10xf32>, tensor<2x2xi64>
    %3 = kiln.scatter_add %arg0, %arg1, %arg0 {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x10xf32>
    %4 = kiln.index_add %arg4, %arg6, %arg5 {dim = 0 : i64} : tensor<5x3xf32>, tensor<2xi64>, tensor<2x3xf32>
    %5 = kiln.put %arg5, %arg3, %arg7 {accumulate = true} : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
    %6 = kiln.put %arg5, %arg3, %arg7 : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
    %7 = kiln.scatter_add %arg2, %arg2, %arg2 {dim = 0 : i64} : tensor<6xi64>, tensor<6xi64>, tensor<6xi64>
    return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<4x3xf32>, tensor<6x10xf32>, tensor<2x2xf32>, tensor<4x10xf32>, tensor<5x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<6xi64>
  }
  func.func @indexed_reads_in_place(%arg0: tensor<4x40xf32>, %arg1: tensor<4x3xi64>, %arg2: tensor<6xi64>, %arg3: tensor<2x2xi64>) -> (tensor<40xf32>, tensor<4x3xf32>, tensor<f32>) {
    %0 = kiln.index_select %arg0, %arg2 {dim = 0 : i64} : tensor<4x40xf32>, tensor<6xi64>
    %1 = kiln.sum %0 {dims = array<i64: 0>} : tensor<6x40xf32>
    %2 = kiln.fused(%arg0, %arg1) : (tensor<4x40xf32>, tensor<4x3xi64>) -> tensor<4x3xf32> {
    ^bb0(%arg4: tensor<4x40xf32>, %arg5: tensor<4x3xi64>):
      %4 = kiln.gather %arg4, %arg5 {dim = 1 : i64} : tensor<4x40xf32>, tensor<4x3xi64>
      %5 = kiln.softmax %4 {dim = 1 : i64} : tensor<4x3xf32>
      kiln.yield %5 : tensor<4x3xf32>
    }
    %3 = kiln.fused(%arg0, %arg3) : (tensor<4x40xf32>, tensor<2x2xi64>) -> tensor<f32> {
    ^bb0(%arg4: tensor<4x40xf32>, %arg5: tensor<2x2xi64>):
      %4 = kiln.take %arg4, %arg5 : tensor<4x40xf32>, tensor<2x2xi64>
      %5 = kiln.amax %4 : tensor<2x2xf32>
      kiln.yield %5 : tensor<f32>
    }
    return %1, %2, %3 : tensor<40xf32>, tensor<4x3xf32>, tensor<f32>
  }
  func.func @views_in_place(%arg0: tensor<4x40xf32>, %arg1: tensor<6xi64>, %arg2: tensor<6x8xf32>) -> (tensor<3x40xf32>, tensor<2x3x8xf32>, tensor<8x6xf32>, tensor<3x2x8xf32>, tensor<3x2x8xf32>) {
    %0 = kiln.index_select %arg0, %arg1 {dim = 0 : i64} : tensor<4x40xf32>, tensor<6xi64>
    %1 = kiln.reshape %0 : tensor<6x40xf32> -> tensor<3x2x40xf32>
    %2 = kiln.sum %1 {dims = array<i64: 1>} : tensor<3x2x40xf32>
    %3 = kiln.exp %arg2 : tensor<6x8xf32>
    %4 = kiln.reshape %3 : tensor<6x8xf32> -> tensor<2x3x8xf32>
    %5 = kiln.softmax %4 {dim = 2 : i64} : tensor<2x3x8xf32>
    %6 = kiln.permute %arg2 [1, 0] : tensor<6x8xf32>
    %7 = kiln.reshape %arg2 : tensor<6x8xf32> -> tensor<2x3x8xf32>
    %8 = kiln.permute %7 [1, 0, 2] : tensor<2x3x8xf32>
    %9 = kiln.log_softmax %8 {dim = 2 : i64} : tensor<3x2x8xf32>
    %10 = kiln.tanh %arg2 : tensor<6x8xf32>
    %11 = kiln.reshape %10 : tensor<6x8xf32> -> tensor<3x2x8xf32>
    %12 = kiln.permute %7 [1, 0, 2] : tensor<2x3x8xf32>
    %13 = kiln.mul %11, %12 : tensor<3x2x8xf32>, tensor<3x2x8xf32>
    return %2, %5, %6, %9, %13 : tensor<3x40xf32>, tensor<2x3x8xf32>, tensor<8x6xf32>, tensor<3x2x8xf32>, tensor<3x2x8xf32>
  }
  func.func @split_reductions(%arg0: tensor<64x1024xf32>, %arg1: tensor<2x65536xf64>, %arg2: tensor<3x10007xf32>) -> (tensor<f32>, tensor<2xf64>, tensor<f32>, tensor<3xf32>, tensor<3x10007xf32>) {
    %0 = kiln.sum %arg0 : tensor<64x1024xf32>
    %1 = kiln.prod %arg1 {dims = array<i64: 1>} : tensor<2x65536xf64>
    %2 = kiln.amax %arg0 : tensor<64x1024xf32>
    %3 = kiln.sum %arg2 {dims = array<i64: 1>} : tensor<3x10007xf32>
    %4 = kiln.log_softmax %arg2 {dim = 1 : i64} : tensor<3x10007xf32>
    return %0, %1, %2, %3, %4 : tensor<f32>, tensor<2xf64>, tensor<f32>, tensor<3xf32>, tensor<3x10007xf32>
  }
  func.func @nn(%arg0: tensor<8x5xf32>, %arg1: tensor<8x5xf32>, %arg2: tensor<8xi64>, %arg3: tensor<5xf64>, %arg4: tensor<i64>) -> (tensor<8x5xf32>, tensor<8x5xf32>, tensor<f32>, tensor<f32>, tensor<8x5xf32>, tensor<f32>, tensor<8xf32>, tensor<f64>) {
    %0 = kiln.softmax %arg0 {dim = 1 : i64} : tensor<8x5xf32>
    %1 = kiln.log_softmax %arg0 {dim = -1 : i64} : tensor<8x5xf32>
    %2 = kiln.mse_loss %arg0, %arg1 : tensor<8x5xf32>, tensor<8x5xf32>
    %3 = kiln.mse_loss %arg0, %arg1 {reduction = "sum"} : tensor<8x5xf32>, tensor<8x5xf32>
    %4 = kiln.mse_loss %arg0, %arg1 {reduction = "none"} : tensor<8x5xf32>, tensor<8x5xf32>
    %5 = kiln.cross_entropy %arg0, %arg2 : tensor<8x5xf32>, tensor<8xi64>
    %6 = kiln.cross_entropy %arg0, %arg2 {reduction = "none"} : tensor<8x5xf32>, tensor<8xi64>
    %7 = kiln.cross_entropy %arg3, %arg4 {reduction = "sum"} : tensor<5xf64>, tensor<i64>
    return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<8x5xf32>, tensor<8x5xf32>, tensor<f32>, tensor<f32>, tensor<8x5xf32>, tensor<f32>, tensor<8xf32>, tensor<f64>
  }
}
