// A reduction sees its input with consecutive dims reduced (or kept) alike
// merged into one, and reads the input at the merged position split back
// into the input's dims (delinearizeIndex). LLVM folds that split address
// into a `freeze` of the position, which its loop vectorizer does not see
// as consecutive (16 scalar loads per vector), so a stored input read at
// such indices is read through a collapsed view at the position itself.
// RUN: kiln-opt %s -convert-kiln-to-linalg | FileCheck %s
// RUN: kiln-opt %s -convert-kiln-to-linalg=target=cuda | FileCheck %s --check-prefix=CUDA

// A column reduction: the kept H x W run is one dim of 3136 columns, walked
// in blocks; its loads read the collapsed [32, 64, 3136] view.
// CHECK-LABEL: func.func @column_sum
// CHECK-SAME: (%[[X:.*]]: tensor<32x64x56x56xf32>)
// CHECK: %[[V:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0], [1], [2, 3]] : tensor<32x64x56x56xf32> into tensor<32x64x3136xf32>
// CHECK: scf.forall
// CHECK: tensor.extract %[[V]][%{{.*}}, %{{.*}}, %{{.*}}] : tensor<32x64x3136xf32>
// CHECK-NOT: tensor.extract %[[X]]
// The GPU's kernels keep the split (only the CPU's vectorizer needs it).
// CUDA-LABEL: func.func @column_sum
// CUDA-NOT: tensor.collapse_shape
func.func @column_sum(%x: tensor<32x64x56x56xf32>) -> tensor<32x1x56x56xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<32x64x56x56xf32>
  return %s : tensor<32x1x56x56xf32>
}

// Three dims merged (a reduction over dim 0 of [8, 4, 6, 10]): the position
// is split twice, and read whole.
// CHECK-LABEL: func.func @three_dims
// CHECK-SAME: (%[[X:.*]]: tensor<64x4x6x10xf32>)
// CHECK: %[[V:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0], [1, 2, 3]] : tensor<64x4x6x10xf32> into tensor<64x240xf32>
// CHECK: tensor.extract %[[V]]
// CHECK-NOT: tensor.extract %[[X]]
func.func @three_dims(%x: tensor<64x4x6x10xf32>) -> tensor<4x6x10xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<64x4x6x10xf32>
  return %s : tensor<4x6x10xf32>
}

// An operand broadcast along part of the merged run (a per-W weight of
// [56] in a chain over [32, 64, 56, 56]) is read at W's position alone:
// only the stored input of the full shape is read collapsed.
// CHECK-LABEL: func.func @broadcast_operand
// CHECK-SAME: (%[[X:.*]]: tensor<32x64x56x56xf32>, %[[W:.*]]: tensor<56xf32>)
// CHECK: %[[V:.*]] = tensor.collapse_shape %[[X]]
// CHECK: tensor.extract %[[V]]
// CHECK: tensor.extract %[[W]]
func.func @broadcast_operand(%x: tensor<32x64x56x56xf32>, %w: tensor<56xf32>) -> tensor<32x1x56x56xf32> {
  %0 = kiln.fused(%x, %w) : (tensor<32x64x56x56xf32>, tensor<56xf32>) -> tensor<32x1x56x56xf32> {
  ^bb0(%a: tensor<32x64x56x56xf32>, %b: tensor<56xf32>):
    %m = kiln.mul %a, %b : tensor<32x64x56x56xf32>, tensor<56xf32>
    %s = kiln.sum %m {dims = array<i64: 1>, keepdim = true} : tensor<32x64x56x56xf32>
    kiln.yield %s : tensor<32x1x56x56xf32>
  }
  return %0 : tensor<32x1x56x56xf32>
}
