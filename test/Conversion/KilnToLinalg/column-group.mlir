// A column group (kiln-fuse-elementwise's formColumnGroups): keepdim
// reductions over dim 1 of [O, C, T] whose chain broadcasts them back. One
// scf.forall over (o, block of columns): each block runs the reductions in
// program order, a float sum into 32 lanes of accumulators per column (the
// column reduction kernel's order and walk: with at most 256 rows the lanes
// one after another in their tree's order, in registers, else the rows in
// order into the lanes in memory), an amax into one accumulator per column
// (in registers, the rows in order); then the values computed from the
// reductions alone once per column (the negated sum), then the chain over
// the block's C x B elements into the block's slice of each result -- of
// the rows' shape, or the columns' ([O, 1, T]).
// RUN: kiln-opt %s -convert-kiln-to-linalg | FileCheck %s
// RUN: kiln-opt %s -convert-kiln-to-linalg -remarks-filter=kiln-lower 2>&1 -o /dev/null | FileCheck %s --check-prefix=REMARK

// [4, 48, 40]: each row of 40 columns is one block (4 blocks in all).
// CHECK-LABEL: func.func @column_group
// CHECK: scf.forall (%{{.*}}) in (4) shared_outs(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (tensor<4x48x40xf32>, tensor<4x1x40xf32>)
// The amax: one accumulator per column (an order-preserving integer key of
// the float, as the amax kernels use), rows in order, in registers (vectors
// of 16 + 16 + 8 columns carried by the row loop).
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (vector<16xi32>, vector<16xi32>, vector<8xi32>)
// CHECK: vector.transfer_write {{.*}} tensor<1x40xi32>
// The sum: 32 lanes per column, 48 rows: the lanes in tree order, each in
// registers, the finished subtrees on a stack of partial rows.
// CHECK: tensor.empty() : tensor<5x40xf32>
// CHECK: scf.for {{.*}} -> (tensor<5x40xf32>, index)
// CHECK: scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<8xf32>)
// The negated sum, once per column.
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<40xf32>)
// CHECK: arith.negf
// The column result, then the chain over [C, B].
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<40xf32>)
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<48x40xf32>)
// CHECK: scf.forall.in_parallel
// CHECK-COUNT-2: tensor.parallel_insert_slice
// REMARK: column group of tensor<4x48x40xf32>: one kernel, blocks of 40 columns in parallel; each block (48 x 40 elements) is read from memory once and stays in cache for its 2 reduction(s) and the elementwise chain"
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

// More than 256 rows (300): the sum walks the rows in order into 32 lanes
// of accumulators per column, in memory.
// CHECK-LABEL: func.func @many_rows
// CHECK: scf.forall (%{{.*}}) in (2)
// CHECK: linalg.fill {{.*}} -> tensor<32x64xf32>
// CHECK: scf.for
// CHECK: arith.remui
func.func @many_rows(%x: tensor<2x300x64xf32>) -> tensor<2x300x64xf32> {
  %r = kiln.fused (%x) : (tensor<2x300x64xf32>) -> tensor<2x300x64xf32> {
  ^bb0(%a: tensor<2x300x64xf32>):
    %s = kiln.sum %a {dims = array<i64: 1>, keepdim = true} : tensor<2x300x64xf32>
    %y = kiln.sub %a, %s : tensor<2x300x64xf32>, tensor<2x1x64xf32>
    kiln.yield %y : tensor<2x300x64xf32>
  }
  return %r : tensor<2x300x64xf32>
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

// softmax over dim 1 as its column group: exp(x - m), the sum's term, is
// read again by the chain. A transcendental term is computed once into a
// [C, B] tile after the amax (the first pass, which brings the block in
// from memory), and the sum and the chain read the tile: no exp after it.
// (x - m above is cheap, and computed again where it is read.)
// CHECK-LABEL: func.func @softmax_tile
// CHECK: scf.forall
// CHECK: %[[TILE:.*]] = tensor.empty() : tensor<48x40xf32>
// CHECK: linalg.generic {{.*}} outs(%[[TILE]] : tensor<48x40xf32>)
// CHECK: math.exp
// CHECK-NOT: math.exp
// CHECK: tensor.extract %{{.*}}[%{{.*}}, %{{.*}}] : tensor<48x40xf32>
// CHECK-NOT: math.exp
// CHECK: scf.forall.in_parallel
// REMARK: column group of tensor<4x48x40xf32>: {{.*}} for its 2 reduction(s) and the elementwise chain; 1 costly term(s) the chain reads again computed once into a tile of the block
func.func @softmax_tile(%x: tensor<4x48x40xf32>) -> tensor<4x48x40xf32> {
  %r = kiln.fused (%x) : (tensor<4x48x40xf32>) -> tensor<4x48x40xf32> {
  ^bb0(%a: tensor<4x48x40xf32>):
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %d = kiln.sub %a, %m : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    %e = kiln.exp %d : tensor<4x48x40xf32>
    %s = kiln.sum %e {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %y = kiln.div %e, %s : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    kiln.yield %y : tensor<4x48x40xf32>
  }
  return %r : tensor<4x48x40xf32>
}

// No tile: a costly term only its reduction reads (log_softmax's exps), and
// one of the first reduction (which reads the block from memory, with its
// prefetch), computed again by the chain.
// CHECK-LABEL: func.func @no_tile
// CHECK-NOT: tensor.empty() : tensor<48x40xf32>
// CHECK: scf.forall.in_parallel
// REMARK: column group of tensor<4x48x40xf32>: {{.*}} for its 2 reduction(s) and the elementwise chain"
// REMARK: column group of tensor<4x48x40xf32>: {{.*}} for its 1 reduction(s) and the elementwise chain"
func.func @no_tile(%x: tensor<4x48x40xf32>) -> (tensor<4x48x40xf32>, tensor<4x48x40xf32>) {
  %r = kiln.fused (%x) : (tensor<4x48x40xf32>) -> tensor<4x48x40xf32> {
  ^bb0(%a: tensor<4x48x40xf32>):
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %d = kiln.sub %a, %m : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    %e = kiln.exp %d : tensor<4x48x40xf32>
    %s = kiln.sum %e {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %l = kiln.log %s : tensor<4x1x40xf32>
    %y = kiln.sub %d, %l : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    kiln.yield %y : tensor<4x48x40xf32>
  }
  %q = kiln.fused (%x) : (tensor<4x48x40xf32>) -> tensor<4x48x40xf32> {
  ^bb0(%a: tensor<4x48x40xf32>):
    %e = kiln.exp %a : tensor<4x48x40xf32>
    %s = kiln.sum %e {dims = array<i64: 1>, keepdim = true} : tensor<4x48x40xf32>
    %y = kiln.div %e, %s : tensor<4x48x40xf32>, tensor<4x1x40xf32>
    kiln.yield %y : tensor<4x48x40xf32>
  }
  return %r, %q : tensor<4x48x40xf32>, tensor<4x48x40xf32>
}
