// A column group (kiln-fuse-elementwise's formColumnGroups): keepdim
// reductions over dim 1 of [O, C, T] whose chain broadcasts them back. One
// scf.forall over (o, block of columns): each block runs the reductions in
// program order, a loop over the C rows of the block's columns into 32
// lanes of accumulators per column for a float sum (the column reduction
// kernel's order), one for amax; then the values computed from the
// reductions alone once per column (the negated sum), then the chain over
// the block's C x B elements into the block's slice of each result -- of
// the rows' shape, or the columns' ([O, 1, T]).
// RUN: kiln-opt %s -convert-kiln-to-linalg | FileCheck %s
// RUN: kiln-opt %s -convert-kiln-to-linalg -remarks-filter=kiln-lower 2>&1 -o /dev/null | FileCheck %s --check-prefix=REMARK

// [4, 48, 40]: each row of 40 columns is one block (4 blocks in all).
// CHECK-LABEL: func.func @column_group
// CHECK: scf.forall (%{{.*}}) in (4) shared_outs(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (tensor<4x48x40xf32>, tensor<4x1x40xf32>)
// The amax: one accumulator per column (an order-preserving integer key of
// the float, as the amax kernels use), rows in order.
// CHECK: linalg.fill {{.*}} -> tensor<1x40xi32>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (tensor<1x40xi32>)
// The sum: 32 lanes per column.
// CHECK: linalg.fill {{.*}} -> tensor<32x40xf32>
// CHECK: arith.remui
// The negated sum, once per column.
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<40xf32>)
// CHECK: arith.negf
// The column result, then the chain over [C, B].
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<40xf32>)
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<48x40xf32>)
// CHECK: scf.forall.in_parallel
// CHECK-COUNT-2: tensor.parallel_insert_slice
// REMARK: column group of tensor<4x48x40xf32>: one kernel, blocks of 40 columns in parallel; each block (48 x 40 elements) is read from memory once and stays in cache for its 2 reduction(s) and the elementwise chain
func.func @column_group(%x: tensor<4x48x40xf32>) -> (tensor<4x48x40xf32>, tensor<4x1x40xf32>) {
  %r:2 = kiln.fused (%x) : (tensor<4x48x40xf32>) -> (tensor<4x48x40xf32>, tensor<4x1x40xf32>) {
  ^bb0(%a: tensor<4x48x40xf32>):
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %d = kiln.sub %a, %m : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    %s = kiln.sum %d {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %n = kiln.neg %s : tensor<4x1x40xf32>
    %y = kiln.mul %d, %n : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    kiln.yield %y, %n : tensor<4x48x40xf32>, tensor<4x1x40xf32>
  }
  return %r#0, %r#1 : tensor<4x48x40xf32>, tensor<4x1x40xf32>
}

// A keepdim amax over dim 1 of size 1 keeps its input's shape: no column
// group but a reduction with its producer chain (random_programs.py's seed
// 38002 found it lowered as a column group of one row, which crashed).
// CHECK-LABEL: func.func @unit_dim
// CHECK-NOT: scf.forall
// CHECK: return
// REMARK-NOT: column group of tensor<33x1x2xf32>
func.func @unit_dim(%x: tensor<33x1x2xf32>, %s: tensor<f32>) -> tensor<33x1x2xf32> {
  %r = kiln.fused (%s, %x) : (tensor<f32>, tensor<33x1x2xf32>) -> tensor<33x1x2xf32> {
  ^bb0(%a: tensor<f32>, %b: tensor<33x1x2xf32>):
    %m = kiln.mul %a, %b : tensor<f32>, tensor<33x1x2xf32>
    %y = kiln.amax %m {dims = array<i64: 1>, keepdim = true} : tensor<33x1x2xf32>
    kiln.yield %y : tensor<33x1x2xf32>
  }
  return %r : tensor<33x1x2xf32>
}
