// -kiln-decompose expresses composite ops with core ops.
// RUN: kiln-opt %s -split-input-file -kiln-decompose | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-decompose -mlir-print-debuginfo | FileCheck %s --check-prefix=LOC
// RUN: kiln-opt %s -split-input-file -kiln-decompose=target=cuda | FileCheck %s --check-prefix=GPU

// softmax and log_softmax are left for the lowering (two kernels).
// CHECK-LABEL: func.func @softmax_kept
// CHECK: kiln.softmax
func.func @softmax_kept(%x: tensor<4x10xf32>) -> tensor<4x10xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<4x10xf32>
  return %y : tensor<4x10xf32>
}

// -----

// mean = sum / count.
// CHECK-LABEL: func.func @mean
// CHECK-DAG: %[[SUM:.*]] = kiln.sum %{{.*}} {dims = array<i64: 0>}
// CHECK-DAG: %[[COUNT:.*]] = kiln.constant dense<4.000000e+00> : tensor<f32>
// CHECK: kiln.div %[[SUM]], %[[COUNT]]
func.func @mean(%x: tensor<4x10xf32>) -> tensor<10xf32> {
  %y = kiln.mean %x {dims = array<i64: 0>} : tensor<4x10xf32>
  return %y : tensor<10xf32>
}

// -----

// The mean of no elements is NaN with PyTorch's bits on x86 (the sign bit
// set), one constant: not 0/0, whose bits depend on whether it is folded.
// CHECK-LABEL: func.func @mean_of_nothing
// CHECK-NOT: kiln.div
// CHECK: %[[NAN:.*]] = kiln.constant dense<0xFFC00000> : tensor<3x1xf32>
// CHECK-NOT: kiln.div
// CHECK: %[[NAN64:.*]] = kiln.constant dense<0xFFF8000000000000> : tensor<f64>
// CHECK: return %[[NAN]], %[[NAN64]]
func.func @mean_of_nothing(%x: tensor<3x0xf32>, %y: tensor<0x2xf64>) -> (tensor<3x1xf32>, tensor<f64>) {
  %m = kiln.mean %x {dims = array<i64: 1>, keepdim = true} : tensor<3x0xf32>
  %l = kiln.mse_loss %y, %y : tensor<0x2xf64>, tensor<0x2xf64>
  return %m, %l : tensor<3x1xf32>, tensor<f64>
}

// -----

// cross_entropy = mean(-log_softmax(logits) at the target), computed at the
// target only: (x[t] - m) - log(sum(exp(x - m))), m the row maximum -- no
// [N, C] log_softmax. The gather carries the cross_entropy's name for
// runtime errors.
// CHECK-LABEL: func.func @cross_entropy
// CHECK: %[[I:.*]] = kiln.reshape %{{.*}} : tensor<8xi64> -> tensor<8x1xi64>
// CHECK: %[[M:.*]] = kiln.amax %arg0 {dims = array<i64: 1>, keepdim = true} : tensor<8x40xf32>
// CHECK: %[[D:.*]] = kiln.sub %arg0, %[[M]]
// CHECK: %[[E:.*]] = kiln.exp %[[D]]
// CHECK: %[[S:.*]] = kiln.sum %[[E]] {dims = array<i64: 1>, keepdim = true}
// CHECK: %[[L:.*]] = kiln.log %[[S]] : tensor<8x1xf32>
// CHECK: %[[G:.*]] = kiln.gather %arg0, %[[I]] {dim = -1 : i64} : tensor<8x40xf32>, tensor<8x1xi64>
// CHECK: %[[GM:.*]] = kiln.sub %[[G]], %[[M]]
// CHECK: kiln.sub %[[GM]], %[[L]]
// CHECK-NOT: kiln.log_softmax
// CHECK: kiln.neg
// CHECK: kiln.sum
// CHECK: kiln.div
// LOC-LABEL: func.func @cross_entropy
// LOC: kiln.gather {{.*}} loc(#[[NAMED:loc[0-9]*]])
// LOC: #[[NAMED]] = loc("kiln.cross_entropy"
func.func @cross_entropy(%x: tensor<8x40xf32>, %t: tensor<8xi64>) -> tensor<f32> {
  %l = kiln.cross_entropy %x, %t : tensor<8x40xf32>, tensor<8xi64>
  return %l : tensor<f32>
}

// -----

// Rows of a few classes (4 to 31; 16 rows or more) on the CPU: the
// log_softmax, which takes a row per lane, and the gather from it (the same
// arithmetic in the same order); the GPU, and fewer rows, compute at the
// target only.
// CHECK-LABEL: func.func @cross_entropy_few_classes
// CHECK: %[[I:.*]] = kiln.reshape %{{.*}} : tensor<16xi64> -> tensor<16x1xi64>
// CHECK: %[[LS:.*]] = kiln.log_softmax %arg0 {dim = 1 : i64} : tensor<16x5xf32>
// CHECK: %[[G:.*]] = kiln.gather %[[LS]], %[[I]] {dim = -1 : i64} : tensor<16x5xf32>, tensor<16x1xi64>
// CHECK-NOT: kiln.amax
// CHECK: kiln.neg
// CHECK: kiln.sum
// CHECK: kiln.div
// LOC-LABEL: func.func @cross_entropy_few_classes
// LOC: kiln.gather {{.*}} loc(#[[NAMED:loc[0-9]*]])
// LOC: #[[NAMED]] = loc("kiln.cross_entropy"
// GPU-LABEL: func.func @cross_entropy_few_classes
// GPU: kiln.amax
// GPU-NOT: kiln.log_softmax
// GPU: kiln.gather %arg0
func.func @cross_entropy_few_classes(%x: tensor<16x5xf32>, %t: tensor<16xi64>) -> tensor<f32> {
  %l = kiln.cross_entropy %x, %t : tensor<16x5xf32>, tensor<16xi64>
  return %l : tensor<f32>
}

// -----

// CHECK-LABEL: func.func @cross_entropy_few_rows
// CHECK: kiln.amax
// CHECK-NOT: kiln.log_softmax
func.func @cross_entropy_few_rows(%x: tensor<15x5xf32>, %t: tensor<15xi64>) -> tensor<f32> {
  %l = kiln.cross_entropy %x, %t : tensor<15x5xf32>, tensor<15xi64>
  return %l : tensor<f32>
}

// -----

// norm: p = 2 is sqrt(sum(x * x)), p = inf is amax(|x|).
// CHECK-LABEL: func.func @norms
// CHECK: kiln.mul
// CHECK: kiln.sum
// CHECK: kiln.sqrt
// CHECK: kiln.abs
// CHECK: kiln.amax
func.func @norms(%x: tensor<4x10xf32>) -> (tensor<f32>, tensor<4xf32>) {
  %a = kiln.norm %x : tensor<4x10xf32>
  %b = kiln.norm %x {p = 0x7FF0000000000000 : f64, dims = array<i64: 1>} : tensor<4x10xf32>
  return %a, %b : tensor<f32>, tensor<4xf32>
}

// -----

// Operands of different shapes are never equal: a false constant (the
// other cases of equal: decompose-equal.mlir).
// CHECK-LABEL: func.func @equal_shapes_differ
// CHECK: kiln.constant dense<false> : tensor<i1>
// CHECK-NOT: kiln.sum
func.func @equal_shapes_differ(%a: tensor<3xf32>, %b: tensor<4xf32>) -> tensor<i1> {
  %e = kiln.equal %a, %b : tensor<3xf32>, tensor<4xf32>
  return %e : tensor<i1>
}

// -----

// Thin matmuls are sums over k of products: a dot product; fewer rows
// than a vector of sums holds (16 f32, 8 f64) times a vector; a batched
// one-column rhs seen as a row; a vector times a matrix of few columns (lhs
// seen as a column); a vector lhs times a batch of columns.
// CHECK-LABEL: func.func @thin_matmuls
// CHECK: %[[DOT:.*]] = kiln.mul %arg0, %arg0 : tensor<100xf32>, tensor<100xf32>
// CHECK: kiln.sum %[[DOT]] {dims = array<i64: 0>} : tensor<100xf32>
// CHECK: %[[MV:.*]] = kiln.mul %arg1, %arg0 : tensor<5x100xf32>, tensor<100xf32>
// CHECK: kiln.sum %[[MV]] {dims = array<i64: 1>} : tensor<5x100xf32>
// CHECK: %[[ROW:.*]] = kiln.reshape %arg2 : tensor<2x100x1xf64> -> tensor<2x1x100xf64>
// CHECK: %[[BMV:.*]] = kiln.mul %arg3, %[[ROW]] : tensor<2x7x100xf64>, tensor<2x1x100xf64>
// CHECK: kiln.sum %[[BMV]] {dims = array<i64: 2>, keepdim = true} : tensor<2x7x100xf64>
// CHECK: %[[COLUMN:.*]] = kiln.reshape %arg0 : tensor<100xf32> -> tensor<100x1xf32>
// CHECK: %[[VM:.*]] = kiln.mul %[[COLUMN]], %arg4 : tensor<100x1xf32>, tensor<100x3xf32>
// CHECK: kiln.sum %[[VM]] {dims = array<i64: 0>} : tensor<100x3xf32>
// CHECK-DAG: %[[LHS:.*]] = kiln.reshape %arg0 : tensor<100xf32> -> tensor<1x100xf32>
// CHECK-DAG: %[[RHS:.*]] = kiln.reshape %arg5 : tensor<4x100x1xf32> -> tensor<4x1x100xf32>
// CHECK: %[[VB:.*]] = kiln.mul %[[LHS]], %[[RHS]] : tensor<1x100xf32>, tensor<4x1x100xf32>
// CHECK: kiln.sum %[[VB]] {dims = array<i64: 2>} : tensor<4x1x100xf32>
// CHECK-NOT: kiln.matmul
func.func @thin_matmuls(%v: tensor<100xf32>, %few: tensor<5x100xf32>,
                        %col: tensor<2x100x1xf64>, %rows: tensor<2x7x100xf64>,
                        %narrow: tensor<100x3xf32>, %cols: tensor<4x100x1xf32>)
    -> (tensor<f32>, tensor<5xf32>, tensor<2x7x1xf64>, tensor<3xf32>,
        tensor<4x1xf32>) {
  %dot = kiln.matmul %v, %v : tensor<100xf32>, tensor<100xf32>
  %mv = kiln.matmul %few, %v : tensor<5x100xf32>, tensor<100xf32>
  %bmv = kiln.matmul %rows, %col : tensor<2x7x100xf64>, tensor<2x100x1xf64>
  %vm = kiln.matmul %v, %narrow : tensor<100xf32>, tensor<100x3xf32>
  %vb = kiln.matmul %v, %cols : tensor<100xf32>, tensor<4x100x1xf32>
  return %dot, %mv, %bmv, %vm, %vb : tensor<f32>, tensor<5xf32>, tensor<2x7x1xf64>, tensor<3xf32>, tensor<4x1xf32>
}

// -----

// Matmuls the matmul kernels take stay: 16 rows times a vector (the
// matrix-vector kernel's whole vector of sums), a vector times 16 columns
// (the split vector-matrix kernel), matrices.
// CHECK-LABEL: func.func @matmuls_kept
// CHECK-COUNT-3: kiln.matmul
// CHECK-NOT: kiln.sum
func.func @matmuls_kept(%v: tensor<100xf32>, %a: tensor<16x100xf32>,
                        %w: tensor<100x16xf32>, %m: tensor<4x100xf32>)
    -> (tensor<16xf32>, tensor<16xf32>, tensor<4x16xf32>) {
  %mv = kiln.matmul %a, %v : tensor<16x100xf32>, tensor<100xf32>
  %vm = kiln.matmul %v, %w : tensor<100xf32>, tensor<100x16xf32>
  %mm = kiln.matmul %m, %w : tensor<4x100xf32>, tensor<100x16xf32>
  return %mv, %vm, %mm : tensor<16xf32>, tensor<16xf32>, tensor<4x16xf32>
}
