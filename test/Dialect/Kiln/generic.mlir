// Every op of ../shared/spec/ops.md written in MLIR's generic form, with the
// attribute names and types the spec gives, parses, verifies and prints in
// its custom form; printing generically and parsing again gives the same IR.
// RUN: kiln-opt %s -split-input-file | FileCheck %s
// RUN: kiln-opt %s -split-input-file --mlir-print-op-generic | kiln-opt -split-input-file | FileCheck %s

// The spec's own examples.
// CHECK-LABEL: func.func @spec_examples
func.func @spec_examples(%x: tensor<4x10xf32>) -> (tensor<f32>, tensor<4x3xf32>, tensor<4x3xi64>) {
  // CHECK: kiln.constant dense<5.000000e-01> : tensor<f32>
  %c = "kiln.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  // CHECK: kiln.topk %{{.*}} {dim = 1 : i64, k = 3 : i64} : tensor<4x10xf32>
  %v, %i = "kiln.topk"(%x) {k = 3 : i64, dim = 1 : i64} : (tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>)
  return %c, %v, %i : tensor<f32>, tensor<4x3xf32>, tensor<4x3xi64>
}

// -----

// Creation ops; defaults that are spelled out are elided when printing.
// CHECK-LABEL: func.func @creation
func.func @creation(%x: tensor<2x3xf64>) {
  // CHECK: kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
  %0 = "kiln.constant"() {value = dense<[1, 2, 3]> : tensor<3xi64>} : () -> tensor<3xi64>
  // CHECK: kiln.full 2.500000e+00 : tensor<4x4xf32>
  %1 = "kiln.full"() {value = 2.5 : f64} : () -> tensor<4x4xf32>
  // CHECK: kiln.full 1.000000e+00 : tensor<3xi1>
  %2 = "kiln.full"() {value = 1.0 : f64} : () -> tensor<3xi1>
  // CHECK: kiln.zeros_like %{{.*}} : tensor<2x3xf64>
  %3 = "kiln.zeros_like"(%x) : (tensor<2x3xf64>) -> tensor<2x3xf64>
  // CHECK: kiln.ones_like %{{.*}} : tensor<2x3xf64>
  %4 = "kiln.ones_like"(%x) : (tensor<2x3xf64>) -> tensor<2x3xf64>
  // CHECK: kiln.arange {start = 0.000000e+00 : f64} : tensor<5xf32>
  %5 = "kiln.arange"() {start = 0.0 : f64, step = 1.0 : f64} : () -> tensor<5xf32>
  // CHECK: kiln.arange {start = 1.000000e+01 : f64, step = -2.000000e+00 : f64} : tensor<3xi64>
  %6 = "kiln.arange"() {start = 10.0 : f64, step = -2.0 : f64} : () -> tensor<3xi64>
  return
}

// -----

// Unary elementwise ops, float and (where allowed) i64.
// CHECK-LABEL: func.func @unary
func.func @unary(%x: tensor<4xf32>, %n: tensor<2x2xi64>) {
  // CHECK: kiln.neg %{{.*}} : tensor<4xf32>
  %0 = "kiln.neg"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.neg %{{.*}} : tensor<2x2xi64>
  %1 = "kiln.neg"(%n) : (tensor<2x2xi64>) -> tensor<2x2xi64>
  // CHECK: kiln.abs %{{.*}} : tensor<4xf32>
  %2 = "kiln.abs"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.abs %{{.*}} : tensor<2x2xi64>
  %3 = "kiln.abs"(%n) : (tensor<2x2xi64>) -> tensor<2x2xi64>
  // CHECK: kiln.sqrt
  %4 = "kiln.sqrt"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.rsqrt
  %5 = "kiln.rsqrt"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.exp
  %6 = "kiln.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.log
  %7 = "kiln.log"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.floor
  %8 = "kiln.floor"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.ceil
  %9 = "kiln.ceil"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.trunc
  %10 = "kiln.trunc"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.frac
  %11 = "kiln.frac"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.round
  %12 = "kiln.round"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.sigmoid
  %13 = "kiln.sigmoid"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.tanh
  %14 = "kiln.tanh"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.erf
  %erf = "kiln.erf"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: kiln.relu %{{.*}} : tensor<4xf32>
  %15 = "kiln.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

// Binary elementwise ops broadcast, including against rank 0.
// CHECK-LABEL: func.func @binary
func.func @binary(%a: tensor<4x1xf32>, %b: tensor<8xf32>, %s: tensor<f32>, %i: tensor<3xi64>, %j: tensor<2x1xi64>) {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<8xf32>
  %0 = "kiln.add"(%a, %b) : (tensor<4x1xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // CHECK: kiln.sub %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<f32>
  %1 = "kiln.sub"(%a, %s) : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  // CHECK: kiln.mul %{{.*}}, %{{.*}} : tensor<3xi64>, tensor<2x1xi64>
  %2 = "kiln.mul"(%i, %j) : (tensor<3xi64>, tensor<2x1xi64>) -> tensor<2x3xi64>
  // CHECK: kiln.div
  %3 = "kiln.div"(%s, %b) : (tensor<f32>, tensor<8xf32>) -> tensor<8xf32>
  // CHECK: kiln.maximum
  %4 = "kiln.maximum"(%a, %b) : (tensor<4x1xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  // CHECK: kiln.minimum
  %5 = "kiln.minimum"(%i, %i) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
  // CHECK: kiln.pow
  %6 = "kiln.pow"(%b, %s) : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  return
}

// -----

// Comparisons produce i1 masks with the broadcast shape.
// CHECK-LABEL: func.func @compare
func.func @compare(%a: tensor<4x1xf32>, %b: tensor<8xf32>, %i: tensor<3xi64>) {
  // CHECK: kiln.gt %{{.*}}, %{{.*}} : tensor<4x1xf32>, tensor<8xf32>
  %0 = "kiln.gt"(%a, %b) : (tensor<4x1xf32>, tensor<8xf32>) -> tensor<4x8xi1>
  // CHECK: kiln.ge
  %1 = "kiln.ge"(%a, %b) : (tensor<4x1xf32>, tensor<8xf32>) -> tensor<4x8xi1>
  // CHECK: kiln.lt
  %2 = "kiln.lt"(%i, %i) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi1>
  // CHECK: kiln.le
  %3 = "kiln.le"(%i, %i) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi1>
  // CHECK: kiln.eq
  %4 = "kiln.eq"(%b, %b) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xi1>
  // CHECK: kiln.ne
  %5 = "kiln.ne"(%b, %b) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xi1>
  return
}

// -----

// clamp with one or both bounds, where with three-way broadcasting, cast,
// equal.
// CHECK-LABEL: func.func @other_elementwise
func.func @other_elementwise(%x: tensor<7xf32>, %m: tensor<2x1xi1>, %s: tensor<f32>, %n: tensor<7xi64>) {
  // CHECK: kiln.clamp %{{.*}} {max = 5.500000e+00 : f64, min = 1.500000e+00 : f64} : tensor<7xf32>
  %0 = "kiln.clamp"(%x) {min = 1.5 : f64, max = 5.5 : f64} : (tensor<7xf32>) -> tensor<7xf32>
  // CHECK: kiln.clamp %{{.*}} {min = 0.000000e+00 : f64} : tensor<7xf32>
  %1 = "kiln.clamp"(%x) {min = 0.0 : f64} : (tensor<7xf32>) -> tensor<7xf32>
  // CHECK: kiln.clamp %{{.*}} {max = 3.000000e+00 : f64} : tensor<7xi64>
  %2 = "kiln.clamp"(%n) {max = 3.0 : f64} : (tensor<7xi64>) -> tensor<7xi64>
  // CHECK: kiln.where %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x1xi1>, tensor<7xf32>, tensor<f32>
  %3 = "kiln.where"(%m, %x, %s) : (tensor<2x1xi1>, tensor<7xf32>, tensor<f32>) -> tensor<2x7xf32>
  // CHECK: kiln.cast %{{.*}} : tensor<7xf32> to tensor<7xi64>
  %4 = "kiln.cast"(%x) : (tensor<7xf32>) -> tensor<7xi64>
  // CHECK: kiln.cast %{{.*}} : tensor<2x1xi1> to tensor<2x1xf64>
  %5 = "kiln.cast"(%m) : (tensor<2x1xi1>) -> tensor<2x1xf64>
  // CHECK: kiln.equal %{{.*}}, %{{.*}} : tensor<7xf32>, tensor<7xf32>
  %6 = "kiln.equal"(%x, %x) : (tensor<7xf32>, tensor<7xf32>) -> tensor<i1>
  return
}

// -----

// Shape ops.
// CHECK-LABEL: func.func @shape
func.func @shape(%x: tensor<2x6xf32>, %s: tensor<f32>, %y: tensor<2x3x4xf32>) {
  // CHECK: kiln.reshape %{{.*}} : tensor<2x6xf32> -> tensor<3x4xf32>
  %0 = "kiln.reshape"(%x) : (tensor<2x6xf32>) -> tensor<3x4xf32>
  // CHECK: kiln.reshape %{{.*}} : tensor<f32> -> tensor<1x1xf32>
  %1 = "kiln.reshape"(%s) : (tensor<f32>) -> tensor<1x1xf32>
  // CHECK: kiln.expand %{{.*}} : tensor<f32> -> tensor<5xf32>
  %2 = "kiln.expand"(%s) : (tensor<f32>) -> tensor<5xf32>
  // CHECK: kiln.expand %{{.*}} : tensor<2x6xf32> -> tensor<3x2x6xf32>
  %3 = "kiln.expand"(%x) : (tensor<2x6xf32>) -> tensor<3x2x6xf32>
  // CHECK: kiln.permute %{{.*}} [2, 0, 1] : tensor<2x3x4xf32>
  %4 = "kiln.permute"(%y) {dims = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  // CHECK: kiln.permute %{{.*}} [-1, -2] : tensor<2x6xf32>
  %5 = "kiln.permute"(%x) {dims = array<i64: -1, -2>} : (tensor<2x6xf32>) -> tensor<6x2xf32>
  return
}

// -----

// matmul: dot, mm, mv, vm and batched with broadcast batch dims.
// CHECK-LABEL: func.func @matmul
func.func @matmul(%u: tensor<8xf32>, %a: tensor<3x8xf32>, %b: tensor<8x5xf32>,
                  %p: tensor<4x3x28x64xf32>, %q: tensor<4x1x64x32xf32>, %r: tensor<64xf32>, %i: tensor<2x2xi64>) {
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8xf32>
  %0 = "kiln.matmul"(%u, %u) : (tensor<8xf32>, tensor<8xf32>) -> tensor<f32>
  // CHECK: kiln.matmul
  %1 = "kiln.matmul"(%a, %b) : (tensor<3x8xf32>, tensor<8x5xf32>) -> tensor<3x5xf32>
  // CHECK: kiln.matmul
  %2 = "kiln.matmul"(%a, %u) : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3xf32>
  // CHECK: kiln.matmul
  %3 = "kiln.matmul"(%u, %b) : (tensor<8xf32>, tensor<8x5xf32>) -> tensor<5xf32>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} : tensor<4x3x28x64xf32>, tensor<4x1x64x32xf32>
  %4 = "kiln.matmul"(%p, %q) : (tensor<4x3x28x64xf32>, tensor<4x1x64x32xf32>) -> tensor<4x3x28x32xf32>
  // CHECK: kiln.matmul
  %5 = "kiln.matmul"(%p, %r) : (tensor<4x3x28x64xf32>, tensor<64xf32>) -> tensor<4x3x28xf32>
  // CHECK: kiln.matmul
  %6 = "kiln.matmul"(%i, %i) : (tensor<2x2xi64>, tensor<2x2xi64>) -> tensor<2x2xi64>
  return
}

// -----

// Reductions with dims/keepdim defaults and explicit values.
// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<4x10xf32>, %n: tensor<4x10xi64>) {
  // CHECK: kiln.sum %{{.*}} : tensor<4x10xf32>
  %0 = "kiln.sum"(%x) : (tensor<4x10xf32>) -> tensor<f32>
  // CHECK: kiln.sum %{{.*}} {dims = array<i64: 1>, keepdim = true} : tensor<4x10xf32>
  %1 = "kiln.sum"(%x) {dims = array<i64: 1>, keepdim = true} : (tensor<4x10xf32>) -> tensor<4x1xf32>
  // CHECK: kiln.sum %{{.*}} {dims = array<i64: -1>} : tensor<4x10xi64>
  %2 = "kiln.sum"(%n) {dims = array<i64: -1>, keepdim = false} : (tensor<4x10xi64>) -> tensor<4xi64>
  // CHECK: kiln.mean %{{.*}} {dims = array<i64: 0, 1>, keepdim = true}
  %3 = "kiln.mean"(%x) {dims = array<i64: 0, 1>, keepdim = true} : (tensor<4x10xf32>) -> tensor<1x1xf32>
  // CHECK: kiln.prod %{{.*}} {dims = array<i64: 0>}
  %4 = "kiln.prod"(%n) {dims = array<i64: 0>} : (tensor<4x10xi64>) -> tensor<10xi64>
  // CHECK: kiln.amax %{{.*}} : tensor<4x10xf32>
  %5 = "kiln.amax"(%x) : (tensor<4x10xf32>) -> tensor<f32>
  // CHECK: kiln.amin %{{.*}} {dims = array<i64: 1>}
  %6 = "kiln.amin"(%x) {dims = array<i64: 1>} : (tensor<4x10xf32>) -> tensor<4xf32>
  // CHECK: kiln.max %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>
  %7:2 = "kiln.max"(%x) {dim = 1 : i64} : (tensor<4x10xf32>) -> (tensor<4xf32>, tensor<4xi64>)
  // CHECK: kiln.min %{{.*}} {dim = -1 : i64, keepdim = true} : tensor<4x10xi64>
  %8:2 = "kiln.min"(%n) {dim = -1 : i64, keepdim = true} : (tensor<4x10xi64>) -> (tensor<4x1xi64>, tensor<4x1xi64>)
  // CHECK: kiln.argmax %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>
  %9 = "kiln.argmax"(%x) {dim = 1 : i64} : (tensor<4x10xf32>) -> tensor<4xi64>
  // CHECK: kiln.argmax %{{.*}} : tensor<4x10xf32>
  %10 = "kiln.argmax"(%x) : (tensor<4x10xf32>) -> tensor<i64>
  // CHECK: kiln.argmin %{{.*}} {dim = 0 : i64, keepdim = true}
  %11 = "kiln.argmin"(%x) {dim = 0 : i64, keepdim = true} : (tensor<4x10xf32>) -> tensor<1x10xi64>
  // CHECK: kiln.norm %{{.*}} : tensor<4x10xf32>
  %12 = "kiln.norm"(%x) : (tensor<4x10xf32>) -> tensor<f32>
  // CHECK: kiln.norm %{{.*}} {dims = array<i64: 1>, p = 1.000000e+00 : f64}
  %13 = "kiln.norm"(%x) {p = 1.0 : f64, dims = array<i64: 1>} : (tensor<4x10xf32>) -> tensor<4xf32>
  // CHECK: kiln.norm %{{.*}} {dims = array<i64: 0>, keepdim = true, p = 3.000000e+00 : f64}
  %14 = "kiln.norm"(%x) {p = 3.0 : f64, dims = array<i64: 0>, keepdim = true} : (tensor<4x10xf32>) -> tensor<1x10xf32>
  return
}

// -----

// topk and kthvalue with every attribute.
// CHECK-LABEL: func.func @selection
func.func @selection(%x: tensor<4x10xf32>, %n: tensor<6xi64>) {
  // CHECK: kiln.topk %{{.*}} {k = 3 : i64} : tensor<4x10xf32>
  %0:2 = "kiln.topk"(%x) {k = 3 : i64} : (tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>)
  // CHECK: kiln.topk %{{.*}} {dim = 0 : i64, k = 4 : i64, largest = false, sorted = false} : tensor<4x10xf32>
  %1:2 = "kiln.topk"(%x) {k = 4 : i64, dim = 0 : i64, largest = false, sorted = false} : (tensor<4x10xf32>) -> (tensor<4x10xf32>, tensor<4x10xi64>)
  // CHECK: kiln.topk %{{.*}} {k = 0 : i64} : tensor<6xi64>
  %2:2 = "kiln.topk"(%n) {k = 0 : i64, dim = -1 : i64, largest = true, sorted = true} : (tensor<6xi64>) -> (tensor<0xi64>, tensor<0xi64>)
  // CHECK: kiln.kthvalue %{{.*}} {k = 2 : i64} : tensor<4x10xf32>
  %3:2 = "kiln.kthvalue"(%x) {k = 2 : i64} : (tensor<4x10xf32>) -> (tensor<4xf32>, tensor<4xi64>)
  // CHECK: kiln.kthvalue %{{.*}} {dim = 0 : i64, k = 4 : i64, keepdim = true} : tensor<4x10xf32>
  %4:2 = "kiln.kthvalue"(%x) {k = 4 : i64, dim = 0 : i64, keepdim = true} : (tensor<4x10xf32>) -> (tensor<1x10xf32>, tensor<1x10xi64>)
  return
}

// -----

// Indexing ops.
// CHECK-LABEL: func.func @indexing
func.func @indexing(%x: tensor<4x10xf32>, %g: tensor<4x3xi64>, %v: tensor<6xi64>, %t: tensor<2x2xi64>,
                    %b: tensor<5x3xf32>, %s: tensor<2x3xf32>, %i2: tensor<2xi64>, %src4: tensor<4xf32>) {
  // CHECK: kiln.gather %{{.*}}, %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>
  %0 = "kiln.gather"(%x, %g) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<4x3xi64>) -> tensor<4x3xf32>
  // CHECK: kiln.index_select %{{.*}}, %{{.*}} {dim = 0 : i64} : tensor<4x10xf32>, tensor<6xi64>
  %1 = "kiln.index_select"(%x, %v) {dim = 0 : i64} : (tensor<4x10xf32>, tensor<6xi64>) -> tensor<6x10xf32>
  // CHECK: kiln.take %{{.*}}, %{{.*}} : tensor<4x10xf32>, tensor<2x2xi64>
  %2 = "kiln.take"(%x, %t) : (tensor<4x10xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
  // CHECK: kiln.scatter_add %{{.*}}, %{{.*}}, %{{.*}} {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x10xf32>
  %3 = "kiln.scatter_add"(%x, %g, %x) {dim = 1 : i64} : (tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x10xf32>) -> tensor<4x10xf32>
  // CHECK: kiln.index_add %{{.*}}, %{{.*}}, %{{.*}} {dim = 0 : i64} : tensor<5x3xf32>, tensor<2xi64>, tensor<2x3xf32>
  %4 = "kiln.index_add"(%b, %i2, %s) {dim = 0 : i64} : (tensor<5x3xf32>, tensor<2xi64>, tensor<2x3xf32>) -> tensor<5x3xf32>
  // CHECK: kiln.put %{{.*}}, %{{.*}}, %{{.*}} {accumulate = true} : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
  %5 = "kiln.put"(%s, %t, %src4) {accumulate = true} : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>) -> tensor<2x3xf32>
  // CHECK: kiln.put %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>
  %6 = "kiln.put"(%s, %t, %src4) {accumulate = false} : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

// Neural-network ops with every reduction kind.
// CHECK-LABEL: func.func @nn
func.func @nn(%x: tensor<8x5xf32>, %t: tensor<8x5xf32>, %l: tensor<8xi64>, %c: tensor<5xf64>, %k: tensor<i64>) {
  // CHECK: kiln.softmax %{{.*}} {dim = 1 : i64} : tensor<8x5xf32>
  %0 = "kiln.softmax"(%x) {dim = 1 : i64} : (tensor<8x5xf32>) -> tensor<8x5xf32>
  // CHECK: kiln.log_softmax %{{.*}} {dim = -1 : i64} : tensor<8x5xf32>
  %1 = "kiln.log_softmax"(%x) {dim = -1 : i64} : (tensor<8x5xf32>) -> tensor<8x5xf32>
  // CHECK: kiln.mse_loss %{{.*}}, %{{.*}} : tensor<8x5xf32>, tensor<8x5xf32>
  %2 = "kiln.mse_loss"(%x, %t) : (tensor<8x5xf32>, tensor<8x5xf32>) -> tensor<f32>
  // CHECK: kiln.mse_loss %{{.*}}, %{{.*}} {reduction = "sum"}
  %3 = "kiln.mse_loss"(%x, %t) {reduction = "sum"} : (tensor<8x5xf32>, tensor<8x5xf32>) -> tensor<f32>
  // CHECK: kiln.mse_loss %{{.*}}, %{{.*}} {reduction = "none"}
  %4 = "kiln.mse_loss"(%x, %t) {reduction = "none"} : (tensor<8x5xf32>, tensor<8x5xf32>) -> tensor<8x5xf32>
  // CHECK: kiln.cross_entropy %{{.*}}, %{{.*}} : tensor<8x5xf32>, tensor<8xi64>
  %5 = "kiln.cross_entropy"(%x, %l) {reduction = "mean"} : (tensor<8x5xf32>, tensor<8xi64>) -> tensor<f32>
  // CHECK: kiln.cross_entropy %{{.*}}, %{{.*}} {reduction = "none"} : tensor<8x5xf32>, tensor<8xi64>
  %6 = "kiln.cross_entropy"(%x, %l) {reduction = "none"} : (tensor<8x5xf32>, tensor<8xi64>) -> tensor<8xf32>
  // CHECK: kiln.cross_entropy %{{.*}}, %{{.*}} {reduction = "sum"} : tensor<5xf64>, tensor<i64>
  %7 = "kiln.cross_entropy"(%c, %k) {reduction = "sum"} : (tensor<5xf64>, tensor<i64>) -> tensor<f64>
  return
}
