// RUN: kiln-opt %s -split-input-file '--convert-kiln-to-linalg=target=cuda' | FileCheck %s
// An unknown target is an error.
// RUN: %expect_exit 1 kiln-opt %s -split-input-file '--convert-kiln-to-linalg=target=tpu' 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: error: unknown target 'tpu' (expected cpu or cuda)

// A float sum for the GPU: the CPU's 32-lane order as two kernels. The
// first has one thread per (row, lane) (lanes innermost: the row's last
// dim is reduced); each lane takes its elements 32 apart, the first six
// lanes one more from the tail (70 = 2 * 32 + 6): element i to lane i % 32.
// The second merges the 32 partials in the CPU's tree:
// lane j + 16 into lane j, then 8, 4, 2, 1.
// CHECK-LABEL: func.func @sum_rows
// CHECK:         %[[PARTIALS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} outs(%{{.*}} : tensor<4x32xf32>)
// CHECK:           %[[ROW:.*]] = linalg.index 0
// CHECK:           %[[LANE:.*]] = linalg.index 1
// CHECK:           %[[MAIN:.*]] = scf.for %[[I:.*]] = %[[LANE]] to %c64 step %c32
// CHECK:             tensor.extract %arg0[%[[ROW]], %[[I]]]
// CHECK:           %[[TAIL:.*]] = arith.addi %[[LANE]], %c64
// CHECK:           scf.for %{{.*}} = %[[TAIL]] to %c70 step %c32
// CHECK:         linalg.generic {{.*}} outs(%{{.*}} : tensor<4xf32>)
// CHECK:           %[[P0:.*]] = tensor.extract %[[PARTIALS]][%{{.*}}, %c0]
// CHECK:           %[[P16:.*]] = tensor.extract %[[PARTIALS]][%{{.*}}, %c16]
// CHECK:           arith.addf %[[P0]], %[[P16]]
func.func @sum_rows(%x: tensor<4x70xf32>) -> tensor<4xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x70xf32>
  return %s : tensor<4xf32>
}

// -----

// Reducing a dim that is not the last: the lane dim is outermost, so
// consecutive threads read consecutive columns. The lane loop runs four of
// its elements per iteration (256 = 8 * 32: 8 per lane, loads first).
// CHECK-LABEL: func.func @sum_columns
// CHECK:         linalg.generic {{.*}} outs(%{{.*}} : tensor<32x8xf32>)
// CHECK:           %[[LANE:.*]] = linalg.index 0
// CHECK:           scf.for %[[I:.*]] = %[[LANE]] to %c256 step %c128
// CHECK-COUNT-4:     tensor.extract %arg0
// CHECK-COUNT-4:     arith.addf
func.func @sum_columns(%x: tensor<256x8xf32>) -> tensor<8xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<256x8xf32>
  return %s : tensor<8xf32>
}

// -----

// Rows of 99311 (3103 steps of 32, a tail of 15), as on the CPU: each
// lane's elements in blocks of 1024 steps (32768 elements of the row),
// summed from zero and added to the lane's running sum; the last block of
// 31 steps, one element per iteration; then the tail.
// CHECK-LABEL: func.func @sum_blocks
// CHECK:           %[[LANE:.*]] = linalg.index 1
// CHECK:           %[[BLOCKS:.*]] = scf.for %[[B:.*]] = %c0 to %c98304 step %c32768 iter_args(%[[TOTAL:.*]] = %[[ZERO:.*]]) -> (f32)
// CHECK:             %[[FIRST:.*]] = arith.addi %[[B]], %[[LANE]]
// CHECK:             %[[END:.*]] = arith.addi %[[B]], %c32768
// CHECK:             %[[BLOCK:.*]] = scf.for %{{.*}} = %[[FIRST]] to %[[END]] step %c128
// CHECK:             %[[MERGED:.*]] = arith.addf %[[TOTAL]], %[[BLOCK]] : f32
// CHECK:             scf.yield %[[MERGED]]
// CHECK:           %[[LASTFIRST:.*]] = arith.addi %c98304{{.*}}, %[[LANE]]
// CHECK:           %[[LAST:.*]] = scf.for %{{.*}} = %[[LASTFIRST]] to %c99296 step %c32
// CHECK:           %[[ALL:.*]] = arith.addf %[[BLOCKS]], %[[LAST]] : f32
// CHECK:           %[[TAIL:.*]] = arith.addi %[[LANE]], %c99296
// CHECK:           scf.for %{{.*}} = %[[TAIL]] to %c99311 step %c32{{.*}} iter_args(%{{.*}} = %[[ALL]])
func.func @sum_blocks(%x: tensor<2048x99311xf32>) -> tensor<2048xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<2048x99311xf32>
  return %s : tensor<2048xf32>
}

// -----

// Lanes over a dim before kept ones (the lane dim outermost) take the
// same blocks, as the CPU's column reduction: 70001 rows of 26 x 40
// columns (1040 kept positions: not split), blocks of 32768, the last of
// 139 steps, then the tail.
// CHECK-LABEL: func.func @sum_column_blocks
// CHECK:           %[[LANE:.*]] = linalg.index 0
// CHECK:           %[[BLOCKS:.*]] = scf.for %[[B:.*]] = %c0 to %c65536 step %c32768 iter_args(%[[TOTAL:.*]] = %{{.*}}) -> (f32)
// CHECK:             %[[BLOCK:.*]] = scf.for
// CHECK:             %[[MERGED:.*]] = arith.addf %[[TOTAL]], %[[BLOCK]] : f32
// CHECK:             scf.yield %[[MERGED]]
// CHECK:           %[[LAST:.*]] = scf.for %{{.*}} to %c69984 step %c32
// CHECK:           %[[ALL:.*]] = arith.addf %[[BLOCKS]], %[[LAST]] : f32
// CHECK:           scf.for %{{.*}} to %c70001 step %c32{{.*}} iter_args(%{{.*}} = %[[ALL]])
func.func @sum_column_blocks(%x: tensor<26x70001x40xf32>) -> tensor<26x40xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<26x70001x40xf32>
  return %s : tensor<26x40xf32>
}

// -----

// f32 softmax along the last dim calls the runtime's one-pass row kernel.
// CHECK-LABEL: func.func @softmax
// CHECK:         call @kiln_rt_softmax_f32(%{{.*}}, %{{.*}}, %false)
func.func @softmax(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// No prefetching on the GPU (the CPU's gather prefetches the next row).
// CHECK-LABEL: func.func @gather
// CHECK-NOT:     memref.prefetch
// CHECK:         return
func.func @gather(%x: tensor<4x10xf32>, %i: tensor<4x3xi64>) -> tensor<4x3xf32> {
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>
  return %g : tensor<4x3xf32>
}

// -----

// On the GPU scatters take one line along `dim` (all other coordinates
// fixed) per iteration: a thread per line, consecutive threads on
// consecutive columns (coalesced).
// CHECK-LABEL: func.func @scatter_add_columns
// CHECK:       scf.forall (%{{.*}}) in (40) shared_outs
// CHECK:         tensor.extract_slice %{{.*}}[0, %{{.*}}] [5, 1] [1, 1] : tensor<5x40xf32> to tensor<5x1xf32>
// CHECK:         scf.for %{{.*}} = %c0{{.*}} to %c7
// CHECK-NOT:       scf.for %
// CHECK:         tensor.parallel_insert_slice
func.func @scatter_add_columns(%b: tensor<5x40xf32>, %i: tensor<7x40xi64>, %s: tensor<7x40xf32>) -> tensor<5x40xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<5x40xf32>, tensor<7x40xi64>, tensor<7x40xf32>
  return %r : tensor<5x40xf32>
}

// -----

// Along dim 0 with a 1-D index the lines would be few and long: the sorted
// scatter instead. The runtime lists the positions by target (order) and
// where each target's run starts (starts: 5 targets + 1); a generic over
// the result, a thread per element, adds its row's run in order to the base
// value, reading src at (position, column).
// CHECK-LABEL: func.func @index_add_rows
// CHECK:       call @kiln_rt_sort_positions(%{{.*}}, %{{.*}}, %{{.*}}, %c5_i64, %false) : (memref<*xi64>, memref<*xi64>, memref<*xi64>, i64, i1) -> ()
// CHECK-DAG:   %[[ORDER:.*]] = bufferization.to_tensor %{{.*}} : memref<7xi64> to tensor<7xi64>
// CHECK-DAG:   %[[STARTS:.*]] = bufferization.to_tensor %{{.*}} : memref<6xi64> to tensor<6xi64>
// CHECK:       linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%arg0 : tensor<5x40xf32>)
// CHECK-NEXT:  ^bb0(%[[BASE:.*]]: f32, %{{.*}}: f32):
// CHECK:         %[[ROW:.*]] = linalg.index 0
// CHECK:         %[[COL:.*]] = linalg.index 1
// CHECK:         tensor.extract %[[STARTS]][%[[ROW]]]
// CHECK:         tensor.extract %[[STARTS]][
// CHECK:         scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[BASE]]) -> (f32)
// CHECK:           %[[P:.*]] = tensor.extract %[[ORDER]][%[[J]]]
// CHECK:           %[[PI:.*]] = arith.index_cast %[[P]]
// CHECK:           %[[V:.*]] = tensor.extract %arg2[%[[PI]], %[[COL]]]
// CHECK:           arith.addf %[[ACC]], %[[V]]
// CHECK-NOT:   scf.forall
func.func @index_add_rows(%b: tensor<5x40xf32>, %i: tensor<7xi64>, %s: tensor<7x40xf32>) -> tensor<5x40xf32> {
  %r = kiln.index_add %b, %i, %s {dim = 0 : i64} : tensor<5x40xf32>, tensor<7xi64>, tensor<7x40xf32>
  return %r : tensor<5x40xf32>
}

// -----

// put: every index checked up front, then the sorted scatter over the
// flattened base (negative indices wrap: the call's flag); without
// accumulate an element takes the last src value of its run, or keeps its
// base value.
// CHECK-LABEL: func.func @put_last
// CHECK:       kiln.report_index_error
// CHECK:       call @kiln_rt_sort_positions(%{{.*}}, %{{.*}}, %{{.*}}, %c6_i64, %true)
// CHECK:       linalg.generic
// CHECK-NEXT:  ^bb0(%[[BASE:.*]]: f32, %{{.*}}: f32):
// CHECK:         %[[ANY:.*]] = arith.cmpi ult, %[[BEGIN:.*]], %[[END:.*]] : index
// CHECK:         scf.if %[[ANY]] -> (f32) {
// CHECK:           arith.subi %[[END]], %c1
// CHECK:         } else {
// CHECK:           scf.yield %[[BASE]] : f32
func.func @put_last(%b: tensor<2x3xf32>, %i: tensor<4xi64>, %s: tensor<2x2xf32>) -> tensor<2x3xf32> {
  %r = kiln.put %b, %i, %s : tensor<2x3xf32>, tensor<4xi64>, tensor<2x2xf32>
  return %r : tensor<2x3xf32>
}

// -----

// A split sum on the GPU (the CPU's split, so the same bits): the segments'
// lane partials (a thread per (segment, lane)), their merge tree, then the
// same two kernels over the 16 segment results.
// CHECK-LABEL: func.func @sum_all_split
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<16x32xf32>)
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<16xf32>)
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<32xf32>)
// CHECK:       linalg.generic {{.*}} outs(%{{.*}} : tensor<f32>)
func.func @sum_all_split(%x: tensor<64x1024xf32>) -> tensor<f32> {
  %s = kiln.sum %x : tensor<64x1024xf32>
  return %s : tensor<f32>
}
