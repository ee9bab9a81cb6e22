// The essential shape of each lowering of -convert-kiln-to-linalg.
// RUN: kiln-opt %s -split-input-file -convert-kiln-to-linalg | FileCheck %s

// Elementwise ops become one linalg.generic whose indexing maps broadcast:
// a size-1 dim reads index 0, missing leading dims are dropped.
// CHECK-DAG: #[[$LHS:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-DAG: #[[$RHS:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @broadcast_add
// CHECK: linalg.generic {indexing_maps = [#[[$LHS]], #[[$RHS]], #[[$ID]]], iterator_types = ["parallel", "parallel"]}
// CHECK: arith.addf
func.func @broadcast_add(%a: tensor<4x1xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %c = kiln.add %a, %b : tensor<4x1xf32>, tensor<8xf32>
  return %c : tensor<4x8xf32>
}

// -----

// maximum propagates NaN (arith.maximumf), comparisons are ordered except
// ne, round is round-half-even.
// CHECK-LABEL: func.func @scalar_semantics
// CHECK: arith.maximumf
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf une
// CHECK: math.roundeven
func.func @scalar_semantics(%a: tensor<4xf32>, %b: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi1>, tensor<4xi1>, tensor<4xf32>) {
  %m = kiln.maximum %a, %b : tensor<4xf32>, tensor<4xf32>
  %g = kiln.gt %a, %b : tensor<4xf32>, tensor<4xf32>
  %n = kiln.ne %a, %b : tensor<4xf32>, tensor<4xf32>
  %r = kiln.round %a : tensor<4xf32>
  return %m, %g, %n, %r : tensor<4xf32>, tensor<4xi1>, tensor<4xi1>, tensor<4xf32>
}

// -----

// A reduction: a parallel generic over the kept dims whose body loops over
// the reduced dim with the partial sums in an iter_arg (registers). A float
// sum keeps 32 partial sums in a vector: lane j takes elements j, j + 32, ...
// (a line shorter than 32, as here, goes to lane 0 in order, carried as a
// scalar: LLVM vectorizes across such lines instead), then the lanes are
// added in a fixed tree; no reassociation is left to LLVM. keepdim
// reshapes afterwards.
// CHECK-LABEL: func.func @sum_keepdim
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<4xf32>)
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<32xf32>
// CHECK: %[[FIRST:.*]] = vector.extract %[[ZERO]][0]
// CHECK: %[[LANE0:.*]] = scf.for {{.*}} iter_args(%[[ACC:.*]] = %[[FIRST]]) -> (f32)
// CHECK: %[[X:.*]] = tensor.extract
// CHECK: %[[ADD:.*]] = arith.addf %[[ACC]], %[[X]] : f32
// CHECK: scf.yield %[[ADD]]
// CHECK: vector.insert %[[LANE0]], %[[ZERO]] [0]
// CHECK: %[[LO:.*]] = vector.extract_strided_slice %{{.*}} {offsets = [0], sizes = [16], strides = [1]}
// CHECK: %[[HI:.*]] = vector.extract_strided_slice %{{.*}} {offsets = [16], sizes = [16], strides = [1]}
// CHECK: arith.addf %[[LO]], %[[HI]] : vector<16xf32>
// CHECK: tensor.reshape %[[SUM]]
func.func @sum_keepdim(%x: tensor<4x10xf32>) -> tensor<4x1xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>, keepdim = true} : tensor<4x10xf32>
  return %s : tensor<4x1xf32>
}

// -----

// Rows of 64: the main loop adds 32 elements at a time into the 32 lanes;
// no tail loop.
// CHECK-LABEL: func.func @sum_lanes
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c32 iter_args(%[[ACC:.*]] = %{{.*}}) -> (vector<32xf32>)
// CHECK-COUNT-32: tensor.extract
// CHECK: %[[BATCH:.*]] = vector.from_elements
// CHECK: %[[NEXT:.*]] = arith.addf %[[ACC]], %[[BATCH]] : vector<32xf32>
// CHECK: scf.yield %[[NEXT]]
// CHECK-NOT: scf.for
// CHECK: vector.extract_strided_slice
func.func @sum_lanes(%x: tensor<4x64xf32>) -> tensor<4xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x64xf32>
  return %s : tensor<4xf32>
}

// -----

// Rows of 70 = 2 * 32 + 6: after the main loop, the tail's element 64 + j
// goes to lane j (element i to lane i % 32): a whole vector of terms (the
// six elements, then zeros) is added, and a constant mask keeps the other
// lanes' partial sums. No scalar chain through lane 0.
// CHECK-LABEL: func.func @sum_tail
// CHECK: %[[MAIN:.*]] = scf.for %{{.*}} = %{{.*}} to %c64 step %c32 iter_args(%{{.*}} = %{{.*}}) -> (vector<32xf32>)
// CHECK: }
// CHECK-COUNT-6: tensor.extract %arg0
// CHECK-NOT: tensor.extract
// CHECK: %[[TERMS:.*]] = vector.from_elements
// CHECK: %[[ADDED:.*]] = arith.addf %[[MAIN]], %[[TERMS]] : vector<32xf32>
// CHECK: %[[MASK:.*]] = arith.constant dense<[true, true, true, true, true, true, false, {{.*}}]> : vector<32xi1>
// CHECK: arith.select %[[MASK]], %[[ADDED]], %[[MAIN]] : vector<32xi1>, vector<32xf32>
func.func @sum_tail(%x: tensor<4x70xf32>) -> tensor<4xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x70xf32>
  return %s : tensor<4xf32>
}

// -----

// Rows of 99311 (3103 steps of 32, a tail of 15), 1024 of them (so not
// split): the main loop in blocks of 1024 steps (32768 elements), each
// block's lanes summed from zero and added to the running lanes; the last
// block (31 steps) likewise; then the tail. One chain per lane over a
// whole long row lost precision.
// CHECK-LABEL: func.func @sum_blocks
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<32xf32>
// CHECK: %[[BLOCKS:.*]] = scf.for %[[B:.*]] = %c0 to %c98304 step %c32768 iter_args(%[[TOTAL:.*]] = %[[ZERO]]) -> (vector<32xf32>)
// CHECK:   %[[END:.*]] = arith.addi %[[B]], %c32768
// CHECK:   %[[BLOCK:.*]] = scf.for %{{.*}} = %[[B]] to %[[END]] step %c32{{.*}} iter_args(%{{.*}} = %[[BZERO:.*]]) -> (vector<32xf32>)
// CHECK:   %[[MERGED:.*]] = arith.addf %[[TOTAL]], %[[BLOCK]] : vector<32xf32>
// CHECK:   scf.yield %[[MERGED]]
// CHECK: %[[LAST:.*]] = scf.for %{{.*}} = %c98304{{.*}} to %c99296 step %c32{{.*}} -> (vector<32xf32>)
// CHECK: %[[ALL:.*]] = arith.addf %[[BLOCKS]], %[[LAST]] : vector<32xf32>
// CHECK-COUNT-15: tensor.extract %arg0
// CHECK: arith.addf %[[ALL]], %{{.*}} : vector<32xf32>
func.func @sum_blocks(%x: tensor<1024x99311xf32>) -> tensor<1024xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<1024x99311xf32>
  return %s : tensor<1024xf32>
}

// -----

// A column reduction takes the same blocks: 70001 rows (2187 steps of 32,
// a tail of 17) of 26 x 40 columns (1040 kept positions: not split) into
// [lane, column] accumulators (each lane's row padded to 48 columns, whole
// 64-byte lines), each block of 32768 rows
// into a second block of them from zero, merged element by element into
// the running ones; the last block (139 steps) likewise; then the tail's
// rows straight into the running accumulators.
// CHECK-LABEL: func.func @sum_column_blocks
// CHECK: %[[BLOCKS:.*]] = scf.for %[[B:.*]] = %c0{{.*}} to %c65536 step %c32768 iter_args(%[[TOTAL:.*]] = %{{.*}}) -> (tensor<32x48xf32>)
// CHECK:   %[[FRESH:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<32x48xf32>)
// CHECK:   %[[END:.*]] = arith.addi %[[B]], %c32768
// CHECK:   %[[PART:.*]] = scf.for %{{.*}} = %[[B]] to %[[END]] step %{{.*}} iter_args(%{{.*}} = %[[FRESH]])
// CHECK:   %[[MERGED:.*]] = scf.for %{{.*}} = %c0 to %c1536{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[TOTAL]])
// CHECK:     %[[OLD:.*]] = tensor.extract %[[ACC]]
// CHECK:     %[[ADD:.*]] = tensor.extract %[[PART]]
// CHECK:     arith.addf %[[OLD]], %[[ADD]] : f32
// CHECK:   scf.yield %[[MERGED]]
// CHECK: %[[LAST:.*]] = scf.for %{{.*}} = %c65536{{.*}} to %c69984 step
// CHECK: %[[ALL:.*]] = scf.for %{{.*}} iter_args(%{{.*}} = %[[BLOCKS]])
// CHECK:   tensor.extract %[[LAST]]
// CHECK: scf.for %{{.*}} = %c69984{{.*}} to %c70001 step %{{.*}} iter_args(%{{.*}} = %[[ALL]])
func.func @sum_column_blocks(%x: tensor<26x70001x40xf32>) -> tensor<26x40xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<26x70001x40xf32>
  return %s : tensor<26x40xf32>
}

// -----

// An integer sum is associative: a plain accumulator, vectorized by LLVM.
// CHECK-LABEL: func.func @sum_i64
// CHECK: scf.for {{.*}} -> (i64)
// CHECK: arith.addi
func.func @sum_i64(%x: tensor<4x64xi64>) -> tensor<4xi64> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x64xi64>
  return %s : tensor<4xi64>
}

// -----

// argmax calls the runtime's vectorized (value, index) scan: dim 1, max,
// not flattened; the values buffer is allocated and unused.
// CHECK: func.func private @kiln_rt_argreduce_f32(memref<*xf32>, memref<*xf32>, memref<*xi64>, i64, i64, i1, i1)
// CHECK-LABEL: func.func @argmax
// CHECK-DAG: %[[DIM:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[MAX:.*]] = arith.constant true
// CHECK-DAG: %[[FLAT:.*]] = arith.constant false
// CHECK: call @kiln_rt_argreduce_f32({{.*}}, %[[DIM]], %[[MAX]], %[[FLAT]])
func.func @argmax(%x: tensor<4x10xf32>) -> tensor<4xi64> {
  %i = kiln.argmax %x {dim = 1 : i64} : tensor<4x10xf32>
  return %i : tensor<4xi64>
}

// -----

// equal (kept by kiln-decompose: both operands in memory) calls the
// runtime's comparison, which stops at the first difference; i1 operands
// have a kernel of their own (bytes compared by their low bit).
// CHECK-DAG: func.func private @kiln_rt_equal_f64(memref<*xf64>, memref<*xf64>) -> i1
// CHECK-DAG: func.func private @kiln_rt_equal_i1(memref<*xi1>, memref<*xi1>) -> i1
// CHECK-LABEL: func.func @equal
// CHECK: %[[SAME:.*]] = call @kiln_rt_equal_f64(%{{.*}}, %{{.*}}) : (memref<*xf64>, memref<*xf64>) -> i1
// CHECK: tensor.from_elements %[[SAME]] : tensor<i1>
// CHECK: call @kiln_rt_equal_i1(
// CHECK: arith.constant dense<false> : tensor<i1>
func.func @equal(%a: tensor<2x3xf64>, %b: tensor<2x3xf64>, %c: tensor<5xi1>,
                 %d: tensor<5xi1>, %e: tensor<3xf32>, %f: tensor<4xf32>)
    -> (tensor<i1>, tensor<i1>, tensor<i1>) {
  %x = kiln.equal %a, %b : tensor<2x3xf64>, tensor<2x3xf64>
  %y = kiln.equal %c, %d : tensor<5xi1>, tensor<5xi1>
  %z = kiln.equal %e, %f : tensor<3xf32>, tensor<4xf32>
  return %x, %y, %z : tensor<i1>, tensor<i1>, tensor<i1>
}

// -----

// A gather along dim 1 of a matrix on the CPU checks its indices in its own
// loop: an scf.forall over the rows whose loop over the columns notes
// whether an index of the row is out of range (an `or`: no minimum in the
// hot loop), clamps the index and loads through tensor.extract; a row that
// saw a bad index is scanned again for the first one (its row-major
// position, a minimum), and the positions' minimum over the rows is
// reported (the op's site). Its reads touch most of each input row (3
// reads, 1 cache line), so elements prefetch a line of the next input row
// (clamped to the last row and line): the next row streams in. One element
// covers the row's one line, so the other two run in a second loop without
// prefetches.
// CHECK-LABEL: module attributes
// CHECK-SAME: kiln.error_sites = ["kiln.gather at {{.*}}kiln-to-linalg.mlir:[[# @LINE + 44]]:8"]
// CHECK-LABEL: func.func @gather
// CHECK: %[[XBUF:.*]] = bufferization.to_buffer %arg0 read_only
// CHECK: %[[BOTH:.*]]:2 = scf.forall (%{{.*}}) in (8) shared_outs(%[[OUT:.*]] = %{{.*}}, %[[BAD:.*]] = %{{.*}}) -> (tensor<8x3xf32>, tensor<8xi64>)
// CHECK:   %[[FALSE:.*]] = arith.constant false
// CHECK:   %[[PREF:.*]]:2 = scf.for %{{.*}} = %c0 to %c1 {{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %[[FALSE]]) -> (tensor<3xf32>, i1)
// CHECK:     %[[NEXT:.*]] = arith.addi %{{.*}}, %c1
// CHECK:     %[[CLAMPED:.*]] = arith.minui %[[NEXT]], %c7
// CHECK:     %[[LINE:.*]] = arith.minui %{{.*}}, %c0
// CHECK:     %[[AT:.*]] = arith.muli %[[LINE]], %c16
// CHECK:     memref.prefetch %[[XBUF]][%[[CLAMPED]], %[[AT]]], read, locality<3>, data
// CHECK:     arith.select
// CHECK:     tensor.extract %arg0
// CHECK:     tensor.insert
// CHECK:     arith.cmpi slt
// CHECK:     arith.cmpi sge
// CHECK-NOT: arith.minsi
// CHECK:     arith.ori
// CHECK:     arith.ori
// CHECK:   %[[ROWS:.*]]:2 = scf.for %{{.*}} = %c1{{.*}} to %c3 {{.*}} iter_args(%{{.*}} = %[[PREF]]#0, %{{.*}} = %[[PREF]]#1) -> (tensor<3xf32>, i1)
// CHECK-NOT: memref.prefetch
// CHECK-NOT: arith.minsi
// CHECK:     tensor.extract %arg0
// CHECK:     arith.ori
// CHECK:   %[[ROWFIRST:.*]] = scf.if %[[ROWS]]#1 -> (i64)
// CHECK:     scf.for {{.*}} -> (i64)
// CHECK:       arith.minsi
// CHECK:   } else {
// CHECK:     scf.yield %c
// CHECK:   %[[SLOT:.*]] = tensor.extract_slice %[[BAD]]
// CHECK:   %[[MARKED:.*]] = tensor.insert %[[ROWFIRST]] into %[[SLOT]]
// CHECK-NOT: kiln.report_index_error
// CHECK:   tensor.parallel_insert_slice %[[ROWS]]#0 into %[[OUT]]
// CHECK:   tensor.parallel_insert_slice %[[MARKED]] into %[[BAD]]
// CHECK: %[[FIRST:.*]] = linalg.generic
// CHECK:   tensor.extract %[[BOTH]]#1
// CHECK:   arith.minsi
// CHECK: } -> tensor<i64>
// CHECK: %[[POS:.*]] = tensor.extract %[[FIRST]][] : tensor<i64>
// CHECK: %[[FOUND:.*]] = arith.cmpi ne, %[[POS]]
// CHECK: scf.if %[[FOUND]]
// CHECK: kiln.report_index_error %{{.*}}, %{{.*}} {site = 0 : i64}
// CHECK: return %[[BOTH]]#0
func.func @gather(%x: tensor<8x10xf32>, %i: tensor<8x3xi64>) -> tensor<8x3xf32> {
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<8x10xf32>, tensor<8x3xi64>
  return %g : tensor<8x3xf32>
}

// -----

// 256 reads from rows of 8192 floats (512 lines): two lines of the next
// row per element.
// CHECK-LABEL: func.func @gather_dense
// CHECK: arith.muli %{{.*}}, %c2
// CHECK-COUNT-2: memref.prefetch
// CHECK-NOT: memref.prefetch
// CHECK: tensor.extract
func.func @gather_dense(%x: tensor<8x8192xf32>, %i: tensor<8x256xi64>) -> tensor<8x256xf32> {
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<8x8192xf32>, tensor<8x256xi64>
  return %g : tensor<8x256xf32>
}

// -----

// A sparse gather (3 reads from rows of 256 lines) prefetches the element
// it will read one row later instead.
// CHECK-LABEL: func.func @gather_sparse
// CHECK: %[[XBUF:.*]] = bufferization.to_buffer %arg0 read_only
// CHECK: scf.forall
// CHECK: %[[ROW:.*]] = arith.remui
// CHECK: scf.for
// CHECK: %[[NEXT:.*]] = arith.addi %[[ROW]], %c1
// CHECK: %[[CLAMPED:.*]] = arith.minui %[[NEXT]], %c7
// CHECK: %[[NEXTINDEX:.*]] = tensor.extract %arg1[%[[CLAMPED]], %{{.*}}]
// CHECK: memref.prefetch %[[XBUF]][%[[CLAMPED]], %{{.*}}], read, locality<3>, data
// CHECK-NOT: memref.prefetch
func.func @gather_sparse(%x: tensor<8x4096xf32>, %i: tensor<8x3xi64>) -> tensor<8x3xf32> {
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<8x4096xf32>, tensor<8x3xi64>
  return %g : tensor<8x3xf32>
}

// -----

// Fewer than 8 rows (a batch of one) would leave threads idle in the row
// loops: the indices are checked up front, then one parallel generic over
// the result's elements (kiln-outer-parallel-loops shares its row among
// the threads), no prefetch.
// CHECK-LABEL: func.func @gather_one_row
// CHECK:       kiln.report_index_error
// CHECK-NOT:   scf.forall
// CHECK-NOT:   memref.prefetch
// CHECK:       linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]
// CHECK:         tensor.extract %arg0
func.func @gather_one_row(%x: tensor<1x4096xf32>, %i: tensor<1x3000xi64>) -> tensor<1x3000xf32> {
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<1x4096xf32>, tensor<1x3000xi64>
  return %g : tensor<1x3000xf32>
}

// -----

// scatter_add: the indices are checked up front; then positions that
// differ in a dim before `dim` update different elements, so on the CPU
// each index of those dims is a parallel group (here: a row), walked in
// row-major order (the sequential sum order). The base is an argument (the
// result starts from a copy of it) and the groups cover the result: each
// group copies its own row of the base into a fresh result and updates it
// while it is in cache, instead of a copy of the whole base first.
// CHECK-LABEL: func.func @scatter_add
// CHECK:       scf.if
// CHECK:         kiln.report_index_error
// CHECK:       %[[EMPTY:.*]] = tensor.empty() : tensor<4x10xf32>
// CHECK:       scf.forall (%[[ROW:.*]]) in (4) shared_outs(%[[OUT:.*]] = %[[EMPTY]])
// CHECK:         %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][%[[R:.*]], 0] [1, 10] [1, 1]
// CHECK:         %[[BASEROW:.*]] = tensor.extract_slice %arg0[%[[R]], 0] [1, 10] [1, 1]
// CHECK:         %[[INIT:.*]] = linalg.copy ins(%[[BASEROW]] : tensor<1x10xf32>) outs(%[[SLICE]] : tensor<1x10xf32>)
// CHECK:         %[[DONE:.*]] = scf.for %{{.*}} = %c0{{.*}} to %c3{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %[[INIT]])
// CHECK:           arith.addf
// CHECK:           tensor.insert
// CHECK:         scf.forall.in_parallel
// CHECK-NEXT:      tensor.parallel_insert_slice %[[DONE]] into %[[OUT]][%{{.*}}, 0] [1, 10] [1, 1]
func.func @scatter_add(%b: tensor<4x10xf32>, %i: tensor<4x3xi64>, %s: tensor<4x3xf32>) -> tensor<4x10xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x3xf32>
  return %r : tensor<4x10xf32>
}

// -----

// A splat base (a gather's gradient scatters into zeros): each group fills
// its own row.
// CHECK-LABEL: func.func @scatter_add_into_zeros
// CHECK:       %[[EMPTY:.*]] = tensor.empty() : tensor<4x10xf32>
// CHECK:       scf.forall (%{{.*}}) in (4) shared_outs(%[[OUT:.*]] = %[[EMPTY]])
// CHECK:         %[[SLICE:.*]] = tensor.extract_slice %[[OUT]]
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[SLICE]] : tensor<1x10xf32>)
// CHECK:         scf.for %{{.*}} iter_args(%{{.*}} = %[[INIT]])
func.func @scatter_add_into_zeros(%i: tensor<4x3xi64>, %s: tensor<4x3xf32>) -> tensor<4x10xf32> {
  %z = kiln.constant dense<0.0> : tensor<4x10xf32>
  %r = kiln.scatter_add %z, %i, %s {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x3xf32>
  return %r : tensor<4x10xf32>
}

// -----

// Groups that do not cover the result (the index has 2 of the base's 4
// rows) update the base in place (bufferization copies it when it must).
// CHECK-LABEL: func.func @scatter_add_partial
// CHECK-NOT:   tensor.empty() : tensor<4x10xf32>
// CHECK:       scf.forall (%{{.*}}) in (2) shared_outs(%{{.*}} = %arg0)
// CHECK-NOT:     linalg.copy
// CHECK:         scf.for
func.func @scatter_add_partial(%b: tensor<4x10xf32>, %i: tensor<2x3xi64>, %s: tensor<2x3xf32>) -> tensor<4x10xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 1 : i64} : tensor<4x10xf32>, tensor<2x3xi64>, tensor<2x3xf32>
  return %r : tensor<4x10xf32>
}

// -----

// Along dim 1 of a 3-D tensor the groups are the indices of dim 0; each
// walks (dim 1, dim 2) in row-major order.
// CHECK-LABEL: func.func @index_add_3d
// CHECK:       scf.forall (%{{.*}}) in (2) shared_outs
// CHECK:         tensor.extract_slice %{{.*}}[%{{.*}}, 0, 0] [1, 5, 40] [1, 1, 1] : tensor<2x5x40xf32> to tensor<1x5x40xf32>
// CHECK:         scf.for %{{.*}} = %c0{{.*}} to %c7
// CHECK:           scf.for %{{.*}} = %c0{{.*}} to %c40
// CHECK:         tensor.parallel_insert_slice
func.func @index_add_3d(%b: tensor<2x5x40xf32>, %i: tensor<7xi64>, %s: tensor<2x7x40xf32>) -> tensor<2x5x40xf32> {
  %r = kiln.index_add %b, %i, %s {dim = 1 : i64} : tensor<2x5x40xf32>, tensor<7xi64>, tensor<2x7x40xf32>
  return %r : tensor<2x5x40xf32>
}

// -----

// Along dim 0 with a 1-D index (index_add; 1-D scatter_add) there is no
// dim before `dim` to split: the CPU splits the targets instead, into as
// many ranges of dim 0 as the run has threads (kiln_rt_num_threads). Each
// group walks every position in order and adds the src row of those whose
// index falls in its range (a contiguous row: vectorizable). The groups
// cover the result: each copies its range of the base argument first.
// CHECK: func.func private @kiln_rt_num_threads() -> i64
// CHECK-LABEL: func.func @index_add_columns
// CHECK:       kiln.report_index_error
// CHECK:       %[[EMPTY:.*]] = tensor.empty() : tensor<5x40xf32>
// CHECK:       %[[THREADS:.*]] = call @kiln_rt_num_threads() : () -> i64
// CHECK:       %[[GROUPS:.*]] = arith.maxsi
// CHECK:       scf.forall (%[[G:.*]]) in (%[[GROUPS]]) shared_outs(%[[OUT:.*]] = %[[EMPTY]])
// CHECK:         %[[LO:.*]] = arith.divui
// CHECK:         %[[HI:.*]] = arith.divui
// CHECK:         %[[ROWS:.*]] = arith.subi %[[HI]], %[[LO]]
// CHECK:         %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][%[[LO]], 0] [%[[ROWS]], 40] [1, 1]
// CHECK:         %[[BASE:.*]] = tensor.extract_slice %arg0[%[[LO]], 0] [%[[ROWS]], 40] [1, 1]
// CHECK:         %[[INIT:.*]] = linalg.copy ins(%[[BASE]] : tensor<?x40xf32>) outs(%[[SLICE]] : tensor<?x40xf32>)
// CHECK:         scf.for %[[T:.*]] = %c0{{.*}} to %c7{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %[[INIT]])
// CHECK:           arith.cmpi uge, %{{.*}}, %[[LO]]
// CHECK:           arith.cmpi ult, %{{.*}}, %[[HI]]
// CHECK:           %[[MINE:.*]] = arith.andi
// CHECK:           scf.if %[[MINE]]
// CHECK:             scf.for %{{.*}} = %c0{{.*}} to %c40
// CHECK:               tensor.insert
// CHECK:         tensor.parallel_insert_slice
func.func @index_add_columns(%b: tensor<5x40xf32>, %i: tensor<7xi64>, %s: tensor<7x40xf32>) -> tensor<5x40xf32> {
  %r = kiln.index_add %b, %i, %s {dim = 0 : i64} : tensor<5x40xf32>, tensor<7xi64>, tensor<7x40xf32>
  return %r : tensor<5x40xf32>
}

// -----

// 1-D scatter_add: the same target ranges, one element per position.
// CHECK-LABEL: func.func @scatter_add_1d
// CHECK:       call @kiln_rt_num_threads()
// CHECK:       scf.forall
// CHECK:         scf.for
// CHECK:           scf.if
// CHECK:             tensor.insert
func.func @scatter_add_1d(%b: tensor<10xf32>, %i: tensor<6xi64>, %s: tensor<6xf32>) -> tensor<10xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<10xf32>, tensor<6xi64>, tensor<6xf32>
  return %r : tensor<10xf32>
}

// -----

// scatter_add along dim 0 of a 2-D tensor (an index per element) on the
// CPU: dim 1 split into one contiguous block of columns per thread; each
// group takes its block in tiles of columns (here the whole block of at
// most 4), packs the tile into a contiguous buffer (from the base: the
// result is fresh), walks the rows in order (contiguous runs of index and
// src) updating the packed tile, and copies it back into the result.
// CHECK-LABEL: func.func @scatter_add_dim0
// CHECK:       kiln.report_index_error
// CHECK:       call @kiln_rt_num_threads()
// CHECK:       scf.forall (%[[Q:.*]]) in (%{{.*}}) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         %[[LO:.*]] = arith.divui
// CHECK:         %[[HI:.*]] = arith.divui
// CHECK:         %[[WIDTH:.*]] = arith.subi %[[HI]], %[[LO]]
// CHECK:         %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][0, %[[LO]]] [5, %[[WIDTH]]] [1, 1] : tensor<5x4xf32> to tensor<5x?xf32>
// CHECK:         %[[TILES:.*]] = scf.for %[[T:.*]] = %c0{{.*}} to %[[WIDTH]] step %c4{{.*}} iter_args(%[[GROUP:.*]] = %[[SLICE]])
// CHECK:           %[[TW:.*]] = arith.minsi
// CHECK:           %[[TILE:.*]] = tensor.extract_slice %[[GROUP]][0, %[[T]]] [5, %[[TW]]] [1, 1]
// CHECK:           %[[FIRST:.*]] = arith.addi %[[LO]], %[[T]]
// CHECK:           %[[PACKED:.*]] = tensor.empty(%[[TW]]) : tensor<5x?xf32>
// CHECK:           %[[FROM:.*]] = tensor.extract_slice %arg0[0, %[[FIRST]]] [5, %[[TW]]] [1, 1]
// CHECK:           %[[INIT:.*]] = linalg.copy ins(%[[FROM]] : tensor<5x?xf32>) outs(%[[PACKED]] : tensor<5x?xf32>)
// CHECK:           %[[ROWS:.*]] = scf.for %[[M:.*]] = %c0{{.*}} to %c6{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %[[INIT]])
// CHECK:             scf.for %[[C:.*]] = %c0{{.*}} to %[[TW]] step %c1{{.*}} iter_args
// CHECK:               %[[COL:.*]] = arith.addi %[[FIRST]], %[[C]]
// CHECK:               tensor.extract %arg1[%[[M]], %[[COL]]]
// CHECK:               tensor.insert %{{.*}} into %{{.*}}[%{{.*}}, %[[C]]] : tensor<5x?xf32>
// CHECK:           %[[BACK:.*]] = linalg.copy ins(%[[ROWS]] : tensor<5x?xf32>) outs(%[[TILE]] : tensor<5x?xf32>)
// CHECK:           tensor.insert_slice %[[BACK]] into %[[GROUP]][0, %[[T]]] [5, %[[TW]]] [1, 1]
// CHECK:         tensor.parallel_insert_slice %[[TILES]] into %[[OUT]]
func.func @scatter_add_dim0(%b: tensor<5x4xf32>, %i: tensor<6x4xi64>, %s: tensor<6x4xf32>) -> tensor<5x4xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<5x4xf32>, tensor<6x4xi64>, tensor<6x4xf32>
  return %r : tensor<5x4xf32>
}

// -----

// Tiles of a taller result: 32768 f32 rows make a column 128 KB, so a tile
// of 2 MB is 16 columns (the least a tile takes).
// CHECK-LABEL: func.func @scatter_add_dim0_tiles
// CHECK:       scf.forall
// CHECK:         scf.for %{{.*}} = %c0{{.*}} to %{{.*}} step %c16{{.*}} iter_args
// CHECK:           tensor.empty(%{{.*}}) : tensor<32768x?xf32>
func.func @scatter_add_dim0_tiles(%b: tensor<32768x64xf32>, %i: tensor<6x64xi64>, %s: tensor<6x64xf32>) -> tensor<32768x64xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<32768x64xf32>, tensor<6x64xi64>, tensor<6x64xf32>
  return %r : tensor<32768x64xf32>
}

// -----

// topk calls the runtime kernel on buffers.
// CHECK: func.func private @kiln_rt_topk_f32(memref<*xf32>, memref<*xf32>, memref<*xi64>, i64, i64, i1, i1) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @topk
// CHECK: bufferization.to_buffer
// CHECK: memref.alloc() : memref<4x3xf32>
// CHECK: memref.alloc() : memref<4x3xi64>
// CHECK: call @kiln_rt_topk_f32
// CHECK: bufferization.to_tensor
func.func @topk(%x: tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>) {
  %v, %i = kiln.topk %x {k = 3 : i64} : tensor<4x10xf32>
  return %v, %i : tensor<4x3xf32>, tensor<4x3xi64>
}

// -----

// A float matmul with at least 4 rows and 8 columns keeps 8 x 32 tiles of
// the result in registers: one forall iteration per (batch, column group,
// chunk of row blocks -- one block here), the accumulators start at zero
// and add lhs[row, k] * rhs[k, columns] for k in order (a multiply, then an
// add); a size-1 batch dim of rhs broadcasts (index 0). 29 rows are 3
// blocks of 8, then the 5 left over as one block of 5 (a prime number of
// rows: no height from 4 to 8 divides them).
// CHECK-LABEL: func.func @matmul
// CHECK:       %[[MAIN:.*]] = scf.forall (%{{.*}}) in (36) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         %[[TILE:.*]] = tensor.extract_slice %[[OUT]][%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] [1, 1, 8, 32] [1, 1, 1, 1]
// CHECK-NOT:     tensor.empty
// CHECK:         %[[BLOCKS:.*]] = scf.for %{{.*}} = %{{.*}} to %c1{{.*}} step %{{.*}} iter_args(%{{.*}} = %[[TILE]])
// CHECK:           %[[SUMS:.*]]:8 = scf.for %[[K:.*]] = %{{.*}} to %c64 step %{{.*}} iter_args
// CHECK:             vector.transfer_read %arg1[%{{.*}}, %c0{{.*}}, %[[K]], %{{.*}}], %{{.*}} {in_bounds = [true]} : tensor<4x1x64x32xf32>, vector<32xf32>
// CHECK:             tensor.extract %arg0[
// CHECK:             vector.broadcast
// CHECK:             arith.mulf {{.*}} : vector<32xf32>
// CHECK:             arith.addf {{.*}} : vector<32xf32>
// CHECK-COUNT-8:    vector.transfer_write
// CHECK:         tensor.parallel_insert_slice %[[BLOCKS]] into %[[OUT]]
// CHECK:       scf.forall (%{{.*}}) in (12) shared_outs(%{{.*}} = %[[MAIN]])
// CHECK:         tensor.extract_slice %{{.*}} [1, 1, 5, 32] [1, 1, 1, 1]
// CHECK:           %{{.*}}:5 = scf.for
func.func @matmul(%a: tensor<4x3x29x64xf32>, %b: tensor<4x1x64x32xf32>) -> tensor<4x3x29x32xf32> {
  %c = kiln.matmul %a, %b : tensor<4x3x29x64xf32>, tensor<4x1x64x32xf32>
  return %c : tensor<4x3x29x32xf32>
}

// -----

// When the rhs panel (k x 32) outgrows L1 and the shape allows chunks of at
// least 4 row blocks with 64 iterations left, each iteration copies its
// panel into a contiguous buffer first and its blocks read that: 256 row
// blocks of 8 in chunks of 4.
// CHECK-LABEL: func.func @matmul_packed
// CHECK:       scf.forall (%{{.*}}) in (64) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         tensor.extract_slice %[[OUT]][%{{.*}}, %{{.*}}] [32, 32] [1, 1]
// CHECK:         %[[EMPTY:.*]] = tensor.empty() : tensor<300x32xf32>
// CHECK:         %[[PANEL:.*]] = scf.for %[[K:.*]] = %{{.*}} to %c300 {{.*}} iter_args(%[[COPY:.*]] = %[[EMPTY]])
// CHECK:           %[[ROW:.*]] = vector.transfer_read %arg1[%[[K]], %{{.*}}]
// CHECK:           vector.transfer_write %[[ROW]], %[[COPY]][%[[K]], %{{.*}}] {in_bounds = [true]}
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c4{{.*}} step
// CHECK:           scf.for %[[K2:.*]] = %{{.*}} to %c300
// CHECK:             vector.transfer_read %[[PANEL]][%[[K2]], %{{.*}}]
func.func @matmul_packed(%a: tensor<2048x300xf32>, %b: tensor<300x32xf32>) -> tensor<2048x32xf32> {
  %c = kiln.matmul %a, %b : tensor<2048x300xf32>, tensor<300x32xf32>
  return %c : tensor<2048x32xf32>
}

// -----

// Columns and rows left over: 9 x 45 is a forall of 1 row block of 8 by
// one group of 32, the 13 columns left over as one group of 16 lanes with
// masked reads and writes (no in_bounds attribute), then the last row, as a block
// of height 1, for both column ranges.
// CHECK-LABEL: func.func @matmul_tails
// CHECK:       %[[MAIN:.*]] = scf.forall (%{{.*}}) in (1)
// CHECK:         tensor.extract_slice %{{.*}} [8, 32] [1, 1]
// CHECK:       %[[COLS:.*]] = scf.forall (%{{.*}}) in (1) shared_outs(%{{.*}} = %[[MAIN]])
// CHECK:         tensor.extract_slice %{{.*}} [8, 13] [1, 1]
// CHECK:         vector.transfer_read %arg1[{{.*}}], %{{[^ ]*}} : tensor<20x45xf32>, vector<16xf32>
// CHECK-COUNT-8: vector.transfer_write {{.*}}] : vector<16xf32>, tensor<8x13xf32>
// CHECK:       %[[ROWS:.*]] = scf.forall (%{{.*}}) in (1) shared_outs(%{{.*}} = %[[COLS]])
// CHECK:         tensor.extract_slice %{{.*}} [1, 32] [1, 1]
// CHECK:       scf.forall (%{{.*}}) in (1) shared_outs(%{{.*}} = %[[ROWS]])
// CHECK:         tensor.extract_slice %{{.*}} [1, 13] [1, 1]
func.func @matmul_tails(%a: tensor<9x20xf32>, %b: tensor<20x45xf32>) -> tensor<9x45xf32> {
  %c = kiln.matmul %a, %b : tensor<9x20xf32>, tensor<20x45xf32>
  return %c : tensor<9x45xf32>
}

// -----

// Fewer than 8 columns, with n a multiple of 4: rows are blocked, the lhs
// and the result seen as [..., n/4, 4, ...] and the loop order
// (batch, n/4, k, 4, m), so each rhs row serves four result rows.
// CHECK-DAG: #[[$A:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
// CHECK-DAG: #[[$B:.*]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-DAG: #[[$C:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
// CHECK-LABEL: func.func @matmul_row_blocks
// CHECK: %[[A4:.*]] = tensor.expand_shape %arg0 {{\[\[}}0, 1], [2]] output_shape [4, 4, 20]
// CHECK: %[[C4:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] output_shape [4, 4, 5]
// CHECK: %[[R:.*]] = linalg.generic {indexing_maps = [#[[$A]], #[[$B]], #[[$C]]], iterator_types = ["parallel", "reduction", "parallel", "parallel"]} ins(%[[A4]], %arg1 : {{.*}}) outs(%[[C4]] : tensor<4x4x5xf32>)
// CHECK: tensor.collapse_shape %[[R]] {{\[\[}}0, 1], [2]] : tensor<4x4x5xf32> into tensor<16x5xf32>
func.func @matmul_row_blocks(%a: tensor<16x20xf32>, %b: tensor<20x5xf32>) -> tensor<16x5xf32> {
  %c = kiln.matmul %a, %b : tensor<16x20xf32>, tensor<20x5xf32>
  return %c : tensor<16x5xf32>
}

// -----

// Fewer than 8 columns and n not a multiple of 4 (or fewer than 4 rows):
// the plain (batch, n, k, m) order.
// CHECK-DAG: #[[$A:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$B:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$C:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func.func @matmul_rows
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {indexing_maps = [#[[$A]], #[[$B]], #[[$C]]], iterator_types = ["parallel", "reduction", "parallel"]}
func.func @matmul_rows(%a: tensor<6x5xf32>, %b: tensor<5x3xf32>) -> tensor<6x3xf32> {
  %c = kiln.matmul %a, %b : tensor<6x5xf32>, tensor<5x3xf32>
  return %c : tensor<6x3xf32>
}

// -----

// A long float sum over few kept positions is split (planReductionSplit):
// 64x1024 summed whole is one dim of 65536 elements (the reduction
// coalesces consecutive reduced dims) and one kept position, so it is seen
// as 16 segments of 4096 elements (the minimum), each reduced in the lane
// order by its own iteration of a parallel generic, its position p read at
// (p / 1024, p - (p / 1024) * 1024) -- which the CPU reads as position p of
// the input collapsed to one dim (readDelinearizedAsCollapsed); a second
// generic adds the 16 partials in the lane order (all to lane 0: fewer
// than 32).
// CHECK-LABEL: func.func @sum_all_split
// CHECK:       %[[FLAT:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1]] : tensor<64x1024xf32> into tensor<65536xf32>
// CHECK:       %[[PARTIALS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<16xf32>)
// CHECK:         %[[SEGMENT:.*]] = linalg.index 0
// CHECK:         scf.for %[[AT:.*]] = %{{.*}} to %c4096 step %c32 {{.*}} -> (vector<32xf32>)
// CHECK:           %[[SCALED:.*]] = arith.muli %[[SEGMENT]], %c4096
// CHECK:           %[[P:.*]] = arith.addi %[[SCALED]], %{{.*}}
// CHECK:           tensor.extract %[[FLAT]][%[[P]]] : tensor<65536xf32>
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<f32>)
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c16
// CHECK:           tensor.extract %[[PARTIALS]][%{{.*}}] : tensor<16xf32>
func.func @sum_all_split(%x: tensor<64x1024xf32>) -> tensor<f32> {
  %s = kiln.sum %x : tensor<64x1024xf32>
  return %s : tensor<f32>
}

// -----

// A line no power of two divides splits too: each of the 2 rows of 10007
// into 2 segments of 4992 elements (10007 / 2 rounded down to whole 64-byte
// lines), reduced by the first generic over the 4 (row, segment) pairs;
// the 23 elements after them (from 9984) by a second, a row each; the
// third adds each row's segments in the lane order, then the rest.
// CHECK-LABEL: func.func @sum_uneven_split
// CHECK:       %[[PARTIALS:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<4xf32>)
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c4992 step %c32
// CHECK:       %[[SEGMENTS:.*]] = tensor.expand_shape %[[PARTIALS]] {{.*}} into tensor<2x2xf32>
// CHECK:       %[[REST:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<2xf32>)
// CHECK:         scf.for %[[J:.*]] = %{{.*}} to %c23 step
// CHECK:           %[[AT:.*]] = arith.addi %[[J]], %c9984
// CHECK:           tensor.extract %arg0[%{{.*}}, %[[AT]]] : tensor<2x10007xf32>
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<2xf32>)
// CHECK:         tensor.extract %[[SEGMENTS]]
// CHECK:         %[[R:.*]] = tensor.extract %[[REST]]
// CHECK-NEXT:    arith.addf %{{.*}}, %[[R]] : f32
func.func @sum_uneven_split(%x: tensor<2x10007xf32>) -> tensor<2xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<2x10007xf32>
  return %s : tensor<2xf32>
}

// -----

// Too short to split (64x100: fewer than two segments of 4096), or enough
// kept positions already (1024 rows): one generic.
// CHECK-LABEL: func.func @sum_unsplit
// CHECK-COUNT-2: linalg.generic
// CHECK-NOT:   linalg.generic
func.func @sum_unsplit(%x: tensor<64x100xf32>, %y: tensor<1024x8192xf32>) -> (tensor<f32>, tensor<1024xf32>) {
  %s = kiln.sum %x : tensor<64x100xf32>
  %t = kiln.sum %y {dims = array<i64: 1>} : tensor<1024x8192xf32>
  return %s, %t : tensor<f32>, tensor<1024xf32>
}

// -----

// Order-free reductions (max, min, integer sums) split alike, each segment
// a plain loop (no lane vector: LLVM vectorizes it freely), then a plain
// loop over the segments' results. A float maximum runs on integer keys
// (ExtremeKeys): the bits, the low 31 flipped where the sign is set, less
// the mantissa's all-ones (NaNs wrap above +inf), reduced by arith.maxsi;
// the merged key is decoded once, in the second kernel.
// CHECK-LABEL: func.func @amax_all_split
// CHECK:       linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<16xi32>)
// CHECK-NOT:     vector<32xf32>
// CHECK:         arith.constant -2147483648 : i32
// CHECK:         arith.bitcast %{{.*}} : f32 to i32
// CHECK:         arith.shrsi %{{.*}}, %c31_i32
// CHECK:         arith.andi %{{.*}}, %c2147483647_i32
// CHECK:         arith.xori
// CHECK:         arith.subi %{{.*}}, %c8388607_i32
// CHECK:         arith.maxsi
// CHECK-NOT:     arith.maximumf
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<f32>)
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c16
// CHECK:           arith.maxsi
// CHECK:         arith.addi %{{.*}}, %c8388607_i32
// CHECK:         arith.xori
// CHECK:         arith.bitcast %{{.*}} : i32 to f32
func.func @amax_all_split(%x: tensor<64x1024xf32>) -> tensor<f32> {
  %s = kiln.amax %x : tensor<64x1024xf32>
  return %s : tensor<f32>
}

// -----

// A minimum is -max(-x): the key of the bits with the sign flipped, i64
// for f64 (the mantissa's all-ones 2^52 - 1), decoded and flipped back.
// CHECK-LABEL: func.func @amin_f64_keys
// CHECK:         arith.constant -9223372036854775808 : i64
// CHECK:         arith.bitcast %{{.*}} : f64 to i64
// CHECK:         arith.xori %{{.*}}, %c-9223372036854775808_i64
// CHECK:         arith.shrsi %{{.*}}, %c63_i64
// CHECK:         arith.subi %{{.*}}, %c4503599627370495_i64
// CHECK:         arith.maxsi
// CHECK:       arith.addi %{{.*}}, %c4503599627370495_i64
// CHECK:       arith.xori %{{.*}}, %c-9223372036854775808_i64
// CHECK:       arith.bitcast %{{.*}} : i64 to f64
// CHECK-NOT:   arith.minimumf
func.func @amin_f64_keys(%x: tensor<4x8xf64>) -> tensor<4xf64> {
  %s = kiln.amin %x {dims = array<i64: 1>} : tensor<4x8xf64>
  return %s : tensor<4xf64>
}

// -----

// A reduction that keeps the innermost dim (over dim 0 of a matrix), with
// more than 256 elements per column (512 rows): an scf.forall over blocks
// of 128 f32 columns (300 = 128 + 128 + 44), each walking the rows outside
// and its columns inside (contiguous), with 32 lanes of accumulators per
// column: row i goes to lane i % 32, then the lanes' tree per column,
// written into the block's slice of the result.
// CHECK-LABEL: func.func @sum_columns
// CHECK:       scf.forall (%[[Q:.*]]) in (3) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<300xf32>)
// CHECK:         %[[FIRST:.*]] = arith.muli %{{.*}}, %c128
// CHECK:         %[[WIDTH:.*]] = arith.minsi
// CHECK:         linalg.fill {{.*}} -> tensor<32x128xf32>
// CHECK:         scf.for %[[ROW:.*]] = %{{.*}} to %c512
// CHECK:           %[[LANE:.*]] = arith.remui %[[ROW]], %c32 : index
// The stored input, its rows 1200 bytes apart, is prefetched four rows
// ahead, a line per 16 floats.
// CHECK:           %[[AHEAD:.*]] = arith.addi %[[ROW]], %c4
// CHECK:           %[[CLAMPED:.*]] = arith.minui %[[AHEAD]], %c511
// CHECK:           scf.for %[[P:.*]] = %{{.*}} to %[[WIDTH]] step %c16
// CHECK:             %[[PCOL:.*]] = arith.addi %[[FIRST]], %[[P]]
// CHECK:             memref.prefetch %{{.*}}[%[[CLAMPED]], %[[PCOL]]], read
// CHECK:           scf.for %[[C:.*]] = %{{.*}} to %[[WIDTH]] step %c1
// CHECK:             %[[COL:.*]] = arith.addi %[[FIRST]], %[[C]]
// CHECK:             tensor.extract %arg0[%[[ROW]], %[[COL]]] : tensor<512x300xf32>
// CHECK:             tensor.insert %{{.*}} into %{{.*}}[%[[LANE]], %[[C]]] : tensor<32x128xf32>
// CHECK:         %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][%[[FIRST]]] [%[[WIDTH]]] [1]
// CHECK:         scf.for {{.*}} iter_args(%{{.*}} = %[[SLICE]])
// CHECK:         tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[FIRST]]] [%[[WIDTH]]] [1]
func.func @sum_columns(%x: tensor<512x300xf32>) -> tensor<300xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<512x300xf32>
  return %s : tensor<300xf32>
}


// -----

// At most 256 elements per column (64 rows) over 32 lanes: each block of
// columns (100, a divisor of 300) walks the lanes one after another in
// their tree's order -- lane bitreverse(step) -- each lane's rows (lane,
// lane + 32) into vectors of accumulators carried by the row loop
// (registers), the finished subtrees on a stack of partial rows merged as
// a binary counter does; the rows of the lane four steps ahead are
// prefetched.
// CHECK-LABEL: func.func @sum_columns_tree
// CHECK:       scf.forall (%{{.*}}) in (3) shared_outs
// CHECK:         arith.muli %{{.*}}, %c100
// CHECK:         %[[STACK:.*]] = tensor.empty() : tensor<5x100xf32>
// CHECK:         scf.for %[[STEP:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[PARTIALS:.*]] = %[[STACK]], %{{.*}} = %{{.*}}) -> (tensor<5x100xf32>, index)
// CHECK:           scf.if
// CHECK:             memref.prefetch
// CHECK:           arith.shrui %[[STEP]]
// CHECK:           scf.for %[[ROW:.*]] = %{{.*}} to %c64{{[_0-9]*}} step %{{.*}} iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<4xf32>)
// CHECK:             tensor.extract %arg0[%[[ROW]], %{{.*}}] : tensor<64x300xf32>
// CHECK:             vector.from_elements {{.*}} : vector<16xf32>
// CHECK:             arith.addf {{.*}} : vector<16xf32>
// CHECK:           scf.if
// CHECK:             vector.transfer_read %[[PARTIALS]]{{.*}} : tensor<5x100xf32>, vector<16xf32>
// CHECK:             arith.addf {{.*}} : vector<16xf32>
// CHECK:           vector.transfer_write {{.*}} : vector<16xf32>, tensor<5x100xf32>
// CHECK:         tensor.parallel_insert_slice
func.func @sum_columns_tree(%x: tensor<64x300xf32>) -> tensor<300xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<64x300xf32>
  return %s : tensor<300xf32>
}

// -----

// Fewer reduced rows than lanes (16): every row goes to lane 0, so the
// block keeps one lane of accumulators, in registers (vectors carried by
// the row loop), and no lane tree (the other lanes would only add the
// identity).
// CHECK-LABEL: func.func @sum_few_rows
// CHECK:       scf.forall
// CHECK:         scf.for %{{.*}} = %{{.*}} to %c16{{[_0-9]*}} step %{{.*}} iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:           arith.addf {{.*}} : vector<16xf32>
// CHECK:         vector.transfer_write {{.*}} : vector<16xf32>, tensor<1x64xf32>
// CHECK:         tensor.extract_slice
// CHECK-NEXT:    scf.for
// CHECK:           tensor.extract %{{.*}} : tensor<1x64xf32>
// CHECK-NOT:       arith.addf
// CHECK:           tensor.insert %{{.*}} : tensor<?xf32>
func.func @sum_few_rows(%x: tensor<8x16x64xf32>) -> tensor<8x64xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<8x16x64xf32>
  return %s : tensor<8x64xf32>
}

// -----

// Rows less than 1 KB apart (800 bytes) stream in with the hardware's
// prefetch: none.
// CHECK-LABEL: func.func @sum_close_columns
// CHECK:       scf.forall
// CHECK-NOT:   memref.prefetch
// CHECK:       return
func.func @sum_close_columns(%x: tensor<64x200xf32>) -> tensor<200xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<64x200xf32>
  return %s : tensor<200xf32>
}

// -----

// An embedding bag: the index_select read in place by the sum (its indices
// checked before, then clamped where read); the selected rows are
// prefetched through the index, since they lie anywhere: 8 KB ahead, 32
// rows of 64 f32.
// CHECK-LABEL: func.func @embedding_bag
// CHECK:       kiln.report_index_error
// CHECK:       scf.forall
// CHECK:         scf.for %[[ROW:.*]] = %{{.*}} to %c64
// CHECK:           %[[AHEAD:.*]] = arith.addi %[[ROW]], %c32
// CHECK:           %[[CLAMPED:.*]] = arith.minui %[[AHEAD]], %c63
// CHECK:           scf.for
// CHECK:             %[[NEXT:.*]] = tensor.extract %arg1[%[[CLAMPED]]] : tensor<64xi64>
// CHECK:             %[[SAFE:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK:             memref.prefetch %{{.*}}[%[[SAFE]], %{{.*}}], read
// CHECK:           scf.for
// CHECK:             tensor.extract %arg1[%[[ROW]]] : tensor<64xi64>
// CHECK:             tensor.extract %arg0[%{{.*}}, %{{.*}}] : tensor<1000x64xf32>
func.func @embedding_bag(%w: tensor<1000x64xf32>, %i: tensor<64xi64>) -> tensor<64xf32> {
  %s = kiln.fused(%w, %i) : (tensor<1000x64xf32>, tensor<64xi64>) -> tensor<64xf32> {
  ^bb0(%a: tensor<1000x64xf32>, %b: tensor<64xi64>):
    %r = kiln.index_select %a, %b {dim = 0 : i64} : tensor<1000x64xf32>, tensor<64xi64>
    %t = kiln.sum %r {dims = array<i64: 0>} : tensor<64x64xf32>
    kiln.yield %t : tensor<64xf32>
  }
  return %s : tensor<64xf32>
}

// -----

// Bags of selected rows: the sum reads the index_select through the
// reshape, a view: row r of bag b is the selection's row b * 16 + r, whose
// index element picks the table's row. The prefetch runs 32 rows ahead
// across the end of the bag into the next ones (16 rows on: the next bag
// of this thread's), clamped to the last bag: row (r + 32) % 16 of bag b +
// (r + 32) / 16.
// CHECK-LABEL: func.func @bags_of_rows
// CHECK:       kiln.report_index_error
// CHECK:       scf.forall (%{{.*}}) in (4)
// CHECK:         %[[BAG:.*]] = arith.remui %{{.*}}, %c4
// CHECK:         scf.for %[[ROW:[a-z0-9_]+]] = %{{.*}} to %c16
// CHECK:           %[[AHEAD:.*]] = arith.addi %[[ROW]], %c32
// CHECK:           %[[IN:.*]] = arith.remui %[[AHEAD]], %c16
// CHECK:           %[[ON:.*]] = arith.divui %[[AHEAD]], %c16
// CHECK:           %[[NEXT:.*]] = arith.addi %[[BAG]], %[[ON]]
// CHECK:           %[[LAST:.*]] = arith.minui %[[NEXT]], %c3
// CHECK:           scf.for
// CHECK:             %[[START:.*]] = arith.muli %[[LAST]], %c16
// CHECK:             %[[FLAT:.*]] = arith.addi %[[START]], %[[IN]]
// CHECK:             tensor.extract %arg1[%[[FLAT]]] : tensor<64xi64>
// CHECK:             memref.prefetch
// CHECK:           scf.for
// CHECK:             %[[FIRST:.*]] = arith.muli %[[BAG]], %c16
// CHECK:             %[[AT:.*]] = arith.addi %[[FIRST]], %[[ROW]]
// CHECK:             tensor.extract %arg1[%[[AT]]] : tensor<64xi64>
// CHECK:             tensor.extract %arg0[%{{.*}}, %{{.*}}] : tensor<1000x64xf32>
func.func @bags_of_rows(%w: tensor<1000x64xf32>, %i: tensor<64xi64>) -> tensor<4x64xf32> {
  %s = kiln.fused(%w, %i) : (tensor<1000x64xf32>, tensor<64xi64>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<1000x64xf32>, %b: tensor<64xi64>):
    %r = kiln.index_select %a, %b {dim = 0 : i64} : tensor<1000x64xf32>, tensor<64xi64>
    %v = kiln.reshape %r : tensor<64x64xf32> -> tensor<4x16x64xf32>
    %t = kiln.sum %v {dims = array<i64: 1>} : tensor<4x16x64xf32>
    kiln.yield %t : tensor<4x64xf32>
  }
  return %s : tensor<4x64xf32>
}

// -----

// A chain collapsed by a view: position (i, c) of the 6x64 rows is (i / 3,
// i % 3, c) of the 2x3x64 exps.
// CHECK-LABEL: func.func @collapsed_view
// CHECK:         scf.for %[[ROW:[a-z0-9_]+]] =
// CHECK:             %[[IN:.*]] = arith.remui %[[ROW]], %c3
// CHECK-NEXT:        %[[OUT:.*]] = arith.divui %[[ROW]], %c3
// CHECK-NEXT:        %[[X:.*]] = tensor.extract %arg0[%[[OUT]], %[[IN]], %{{.*}}] : tensor<2x3x64xf32>
// CHECK:             math.exp %[[X]]
func.func @collapsed_view(%x: tensor<2x3x64xf32>) -> tensor<64xf32> {
  %s = kiln.fused(%x) : (tensor<2x3x64xf32>) -> tensor<64xf32> {
  ^bb0(%a: tensor<2x3x64xf32>):
    %e = kiln.exp %a : tensor<2x3x64xf32>
    %v = kiln.reshape %e : tensor<2x3x64xf32> -> tensor<6x64xf32>
    %t = kiln.sum %v {dims = array<i64: 0>} : tensor<6x64xf32>
    kiln.yield %t : tensor<64xf32>
  }
  return %s : tensor<64xf32>
}

// -----

// A permute read through: element (b, h, l, d) of the view is (b, l, h, d)
// of the stored tensor, loaded in place (no transposed copy). The kept dims
// (b, h, l) are one dim of 384 positions k (the reduction coalesces them):
// l = k - (k / 64) * 64, h and b likewise from k / 64.
// CHECK-LABEL: func.func @permuted_view
// CHECK-NOT:   linalg.transpose
// CHECK:       %[[K:.*]] = linalg.index 0 : index
// CHECK:       %[[T:.*]] = arith.divui %[[K]], %c64{{.*}}
// CHECK-NEXT:  %[[TS:.*]] = arith.muli %[[T]], %c64{{.*}}
// CHECK-NEXT:  %[[L:.*]] = arith.subi %[[K]], %[[TS]]
// CHECK:       %[[B:.*]] = arith.divui %[[T]], %c3{{.*}}
// CHECK-NEXT:  %[[BS:.*]] = arith.muli %[[B]], %c3{{.*}}
// CHECK-NEXT:  %[[H:.*]] = arith.subi %[[T]], %[[BS]]
// CHECK-NEXT:  tensor.extract %arg0[%[[B]], %[[L]], %[[H]], %{{.*}}] : tensor<2x64x3x64xf32>
func.func @permuted_view(%x: tensor<2x64x3x64xf32>) -> tensor<2x3x64xf32> {
  %s = kiln.fused(%x) : (tensor<2x64x3x64xf32>) -> tensor<2x3x64xf32> {
  ^bb0(%a: tensor<2x64x3x64xf32>):
    %p = kiln.permute %a [0, 2, 1, 3] : tensor<2x64x3x64xf32>
    %t = kiln.amax %p {dims = array<i64: 3>} : tensor<2x3x64x64xf32>
    kiln.yield %t : tensor<2x3x64xf32>
  }
  return %s : tensor<2x3x64xf32>
}

// -----

// Narrow rows (10 columns, fewer than a vector's 16 floats): 32
// consecutive rows are contiguous, and so are the accumulators of
// consecutive lanes. Groups of 8 rows (80 elements: 5 vectors) update 80
// consecutive accumulators from lane row0 % 32 on (row0 = 0, 8, ..., 56), a vector of 16 at a
// time, element by element (for LLVM's SLP vectorizer); the 6 rows left
// after the last group go one at a time to lane i % 32 (rows 64-69 to
// lanes 0-5). No prefetch: the rows are read in order.
// CHECK-LABEL: func.func @sum_narrow
// CHECK-NOT:     memref.prefetch
// CHECK:         %[[ACC:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0, 1]] : tensor<32x10xf32> into tensor<320xf32>
// CHECK:         scf.for %[[ROW0:.*]] = %c0{{.*}} to %c64 step %c8 iter_args(%{{.*}} = %[[ACC]]) -> (tensor<320xf32>)
// CHECK:           %[[LANE0:.*]] = arith.remui %[[ROW0]], %c32
// CHECK:           %[[OFFSET:.*]] = arith.muli %[[LANE0]], %c10
// CHECK:           vector.transfer_read %{{.*}}[%{{.*}}], %{{.*}} {in_bounds = [true]} : tensor<320xf32>, vector<16xf32>
// CHECK-COUNT-16:  arith.addf
// CHECK:           vector.transfer_write
// CHECK-COUNT-4:   vector.transfer_write {{.*}} : vector<16xf32>, tensor<320xf32>
// CHECK:         scf.for %[[I:.*]] = %c64 to %c70
// CHECK:           arith.remui %[[I]], %c32
// CHECK:           vector.transfer_read {{.*}} : tensor<320xf32>, vector<10xf32>
// CHECK-COUNT-10:  arith.addf
// CHECK:         tensor.expand_shape %{{.*}} {{\[\[}}0, 1]] output_shape [32, 10] : tensor<320xf32> into tensor<32x10xf32>
// CHECK-NOT:     memref.prefetch
// CHECK:       return
func.func @sum_narrow(%x: tensor<70x10xf32>) -> tensor<10xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<70x10xf32>
  return %s : tensor<10xf32>
}

// -----

// log_softmax over rows too long to stay in cache (over 256 KB): row
// maxima, row sums of exp(x - max) whose epilogue takes the log once per
// row, then x - max - log(sum) with no log per element.
// CHECK-LABEL: func.func @log_softmax_rows
// CHECK:       %[[MAX:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1024xf32>)
// CHECK:       %[[LOGSUM:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1024xf32>)
// CHECK:         math.exp
// CHECK:         math.log
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<1024x65600xf32>)
// CHECK-NOT:     math.log
// CHECK:         tensor.extract %[[MAX]]
// CHECK:         tensor.extract %[[LOGSUM]]
// CHECK:         arith.subf
// CHECK:         arith.subf
// CHECK-NOT:     math.log
// CHECK:       return
func.func @log_softmax_rows(%x: tensor<1024x65600xf32>) -> tensor<1024x65600xf32> {
  %y = kiln.log_softmax %x {dim = 1 : i64} : tensor<1024x65600xf32>
  return %y : tensor<1024x65600xf32>
}

// -----

// log_softmax over few short rows (4 rows of 70: the separate passes would
// not split them across threads): one kernel, rows in parallel, each row
// in cache for its passes; the log still once per row.
// CHECK-LABEL: func.func @log_softmax_few_rows
// CHECK:       scf.forall (%{{.*}}) in (4)
// CHECK:         scf.for
// CHECK:         scf.for {{.*}} -> (vector<32xf32>)
// CHECK:           math.exp
// CHECK:         math.log
// CHECK:         linalg.generic {{.*}} outs(%{{.*}} : tensor<70xf32>)
// CHECK-NOT:       math.log
// CHECK:           arith.subf
// CHECK:           arith.subf
// CHECK-NOT:       math.log
// CHECK:         tensor.parallel_insert_slice
// CHECK:       return
func.func @log_softmax_few_rows(%x: tensor<4x70xf32>) -> tensor<4x70xf32> {
  %y = kiln.log_softmax %x {dim = 1 : i64} : tensor<4x70xf32>
  return %y : tensor<4x70xf32>
}

// -----

// index_select along dim 1 of a stored matrix, reading few elements of each
// row: every element prefetches the element of the same column index in
// the next row (the 1-D index is the same for every row).
// CHECK-LABEL: func.func @index_select_prefetch
// CHECK:       linalg.generic
// CHECK:         %[[COL:.*]] = linalg.index 1
// CHECK:         tensor.extract %arg1[%[[COL]]] : tensor<10xi64>
// CHECK:         memref.prefetch %{{.*}}[%{{.*}}, %{{.*}}], read, locality<3>, data : memref<8x4096xf32>
func.func @index_select_prefetch(%x: tensor<8x4096xf32>, %i: tensor<10xi64>) -> tensor<8x10xf32> {
  %y = kiln.index_select %x, %i {dim = 1 : i64} : tensor<8x4096xf32>, tensor<10xi64>
  return %y : tensor<8x10xf32>
}

// -----

// index_select along a dim before the innermost of a stored input, with
// slices of at least 64 elements: after the up-front check, a forall over
// (dims before `dim`, index position) reads the index once and copies the
// contiguous slice whole (a memcpy after bufferization).
// CHECK-LABEL: func.func @index_select_slices
// CHECK:       scf.forall (%{{.*}}) in (10) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         %[[I:.*]] = tensor.extract %arg1[%{{.*}}] : tensor<5xi64>
// CHECK:         %[[S:.*]] = tensor.extract_slice %arg0[%{{.*}}, %{{.*}}, 0, 0] [1, 1, 4, 20] [1, 1, 1, 1] : tensor<2x3x4x20xf32> to tensor<1x1x4x20xf32>
// CHECK:         tensor.parallel_insert_slice %[[S]] into %[[OUT]][%{{.*}}, %{{.*}}, 0, 0] [1, 1, 4, 20] [1, 1, 1, 1]
// CHECK-NOT:   linalg.generic
func.func @index_select_slices(%x: tensor<2x3x4x20xf32>, %i: tensor<5xi64>) -> tensor<2x5x4x20xf32> {
  %y = kiln.index_select %x, %i {dim = 1 : i64} : tensor<2x3x4x20xf32>, tensor<5xi64>
  return %y : tensor<2x5x4x20xf32>
}

// -----

// softmax over few long rows (2 rows of 65536: 16 segments of 4096 each):
// each segment's maximum m' and its sum of exp(x - m') in one kernel (the
// shift 0 for an all -inf segment; the next segment prefetched during the
// sum), then per row m = max m' and s = sum of s' exp(m' - m) in f64, in
// segment order, then exp(x - m) * (1 / s).
// CHECK-LABEL: func.func @softmax_split
// CHECK:       %[[STATS:.*]]:2 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<2x16xf32>, tensor<2x16xf32>)
// CHECK:         %[[SEG:.*]] = linalg.index 1
// CHECK:         %[[START:.*]] = arith.muli %[[SEG]], %c4096
// CHECK:         scf.for {{.*}} -> (i32)
// CHECK:           arith.maxsi
// CHECK:         %[[NEGINF:.*]] = arith.cmpf oeq, %[[M:.*]], %cst
// CHECK:         %[[SHIFT:.*]] = arith.select %[[NEGINF]], %{{.*}}, %[[M]]
// CHECK:         scf.for {{.*}} -> (vector<32xf32>)
// CHECK:           memref.prefetch
// CHECK:           arith.subf %{{.*}}, %[[SHIFT]]
// CHECK:           math.exp
// CHECK:         linalg.yield %[[M]], %{{.*}} : f32, f32
// CHECK:       %[[ROWS:.*]]:2 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<2xf32>, tensor<2xf32>)
// CHECK:         %[[ROWMAX:.*]] = scf.for {{.*}} -> (f32)
// CHECK:           tensor.extract %[[STATS]]#0
// CHECK:           arith.maximumf
// CHECK:         %[[WIDEMAX:.*]] = arith.extf %[[ROWMAX]] : f32 to f64
// CHECK:         scf.for {{.*}} -> (f64)
// CHECK:           tensor.extract %[[STATS]]#1
// CHECK:           arith.subf %{{.*}}, %[[WIDEMAX]] : f64
// CHECK:           math.exp %{{.*}} : f64
// CHECK:         arith.divf
// CHECK:         arith.truncf
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<2x65536xf32>)
// CHECK:         tensor.extract %[[ROWS]]#0
// CHECK:         tensor.extract %[[ROWS]]#1
// CHECK:         math.exp
// CHECK:         arith.mulf
func.func @softmax_split(%x: tensor<2x65536xf32>) -> tensor<2x65536xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<2x65536xf32>
  return %y : tensor<2x65536xf32>
}

// -----

// A vector times a matrix (one lhs row, too few for register tiling) with
// 2^20 multiply-adds or more: k split into 16 segments of 64 rows, each
// summed in k order into a partial row of its own (padded to 64 bytes:
// 1040 columns), the segments and rows parallel; then the partials added
// in segment order.
// CHECK-LABEL: func.func @vector_matrix
// CHECK-DAG:   %[[LHS:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1, 2]] output_shape [1, 16, 64]
// CHECK-DAG:   %[[RHS:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] output_shape [16, 64, 1030]
// CHECK:       %[[ZEROS:.*]] = linalg.fill {{.*}} -> tensor<16x1x1040xf32>
// CHECK:       %[[SLICE:.*]] = tensor.extract_slice %[[ZEROS]][0, 0, 0] [16, 1, 1030] [1, 1, 1]
// CHECK:       %[[PARTIALS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[LHS]], %[[RHS]] : {{.*}}) outs(%[[SLICE]] : tensor<16x1x1030xf32>)
// CHECK:         arith.mulf
// CHECK:         arith.addf
// CHECK:       linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[PARTIALS]] : tensor<16x1x1030xf32>) outs(%{{.*}} : tensor<1x1030xf32>)
// CHECK:         arith.addf
func.func @vector_matrix(%x: tensor<1x1024xf32>, %w: tensor<1024x1030xf32>) -> tensor<1x1030xf32> {
  %y = kiln.matmul %x, %w : tensor<1x1024xf32>, tensor<1024x1030xf32>
  return %y : tensor<1x1030xf32>
}

// -----

// Below 2^20 multiply-adds (1x256 by 256x1024) one thread does it: the
// loop nest, each element summed in k order.
// CHECK-LABEL: func.func @vector_matrix_small
// CHECK-NOT:   tensor.expand_shape
// CHECK:       linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]
func.func @vector_matrix_small(%x: tensor<1x256xf32>, %w: tensor<256x1024xf32>) -> tensor<1x1024xf32> {
  %y = kiln.matmul %x, %w : tensor<1x256xf32>, tensor<256x1024xf32>
  return %y : tensor<1x1024xf32>
}

// -----

// put: every index checked up front, then one sequential loop that clamps;
// each step prefetches for writing the target of the position 128 ahead
// (the last position's at the end), in the buffer it updates (a view of
// the loop's tensor, no copy), then updates its own target.
// CHECK-LABEL: func.func @put_prefetch
// CHECK: %[[LOOP:.*]] = scf.for %[[I:.*]] = %{{.*}} to %c1000 step %c1 iter_args(%[[ACC:.*]] = %{{.*}}) -> (tensor<4096xf32>)
// CHECK: %[[AHEAD:.*]] = arith.addi %{{.*}}, %c128
// CHECK: %[[CLAMPED:.*]] = arith.minui %[[AHEAD]], %c999
// CHECK: %[[AT:.*]] = arith.remui %[[CLAMPED]], %c1000
// CHECK: tensor.extract %arg1[%[[AT]]] : tensor<1000xi64>
// CHECK: %[[BUFFER:.*]] = bufferization.to_buffer %[[ACC]] read_only : tensor<4096xf32> to memref<4096xf32, strided<[?], offset: ?>>
// CHECK: memref.prefetch %[[BUFFER]][%{{.*}}], write, locality<3>, data
// CHECK: tensor.extract %[[ACC]]
// CHECK: tensor.insert %{{.*}} into %[[ACC]]
func.func @put_prefetch(%base: tensor<4096xf32>, %index: tensor<1000xi64>, %src: tensor<1000xf32>) -> tensor<4096xf32> {
  %r = kiln.put %base, %index, %src {accumulate = true} : tensor<4096xf32>, tensor<1000xi64>, tensor<1000xf32>
  return %r : tensor<4096xf32>
}
