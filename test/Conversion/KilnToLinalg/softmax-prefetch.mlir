// A rows-in-cache softmax kernel prefetches the next row of its stored
// inputs while its exp pass computes on this one: the pass runs in chunks
// of 64 elements, each prefetching its positions' lines of the next row
// (the last row prefetches itself), then a generic over the chunk; a
// remainder shorter than a chunk is one more generic. Each chunk's exps are
// added to the 32 lane sums as they are made (two steps of 32 lanes), the
// remainder's into the first lanes, the others kept: the lane order of a
// separate sum. log_softmax's sum of exps prefetches in its lane loop.
// With 256-bit (or 128-bit) registers the chunks hold 32 elements, one
// step of the lanes (expChunk: 64 f32 spilled AVX2's 16 registers); the same
// lanes get the same exps in the same order.
// RUN: kiln-opt %s -split-input-file -kiln-fuse-elementwise -convert-kiln-to-linalg | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-fuse-elementwise -convert-kiln-to-linalg=vector-bits=256 | FileCheck %s --check-prefix=AVX2
// RUN: kiln-opt %s -split-input-file -kiln-fuse-elementwise -convert-kiln-to-linalg=vector-bits=128 | FileCheck %s --check-prefix=AVX2

// f32 rows of 4100: 64 chunks, four lines of 16 each, and a remainder of 4.
// CHECK-LABEL: func.func @softmax_rows
// CHECK: scf.forall (%[[ROW_IV:.*]]) in (128)
// CHECK: %[[ROW:.*]] = arith.remui %[[ROW_IV]]
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<128x4100xf32>
// CHECK: %[[AFTER:.*]] = arith.addi %{{.*}}, %c1
// CHECK: %[[NEXT:.*]] = arith.minui %[[AFTER]], %c127
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<32xf32>
// CHECK: %[[LOOP:.*]]:2 = scf.for %[[C:.*]] = %{{.*}} to %c4096 step %c64 iter_args(%[[ACC_ROW:.*]] = %{{.*}}, %[[LANES:.*]] = %[[ZERO]])
// CHECK-COUNT-4: memref.prefetch %[[IN]][%[[NEXT]], %{{.*}}], read, locality<3>, data
// CHECK-NOT: memref.prefetch
// CHECK: tensor.extract_slice %[[ACC_ROW]][%[[C]]] [64] [1]
// CHECK: %[[CHUNK:.*]] = linalg.generic
// CHECK: math.exp
// CHECK: %[[LOW:.*]] = vector.transfer_read %[[CHUNK]][%c0{{.*}}]
// CHECK: %[[SUM1:.*]] = arith.addf %[[LANES]], %[[LOW]] : vector<32xf32>
// CHECK: %[[HIGH:.*]] = vector.transfer_read %[[CHUNK]][%c32{{.*}}]
// CHECK: %[[SUM2:.*]] = arith.addf %[[SUM1]], %[[HIGH]] : vector<32xf32>
// CHECK: %[[ROW_OUT:.*]] = tensor.insert_slice %[[CHUNK]] into %[[ACC_ROW]]
// CHECK: scf.yield %[[ROW_OUT]], %[[SUM2]]
// CHECK: tensor.extract_slice %[[LOOP]]#0[%c4096{{.*}}] [4] [1]
// CHECK: %[[REST:.*]] = linalg.generic
// CHECK: math.exp
// CHECK: %[[TAIL:.*]] = vector.from_elements %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[PAD:[^,]*]], %[[PAD]],
// CHECK: %[[MERGED:.*]] = arith.addf %[[LOOP]]#1, %[[TAIL]] : vector<32xf32>
// CHECK: %[[MASK:.*]] = arith.constant dense<[true, true, true, true, false,
// CHECK: arith.select %[[MASK]], %[[MERGED]], %[[LOOP]]#1
// CHECK-NOT: scf.for
// CHECK: arith.divf
// 128 chunks of 32 (two lines each), then the remainder of 4 as above.
// AVX2-LABEL: func.func @softmax_rows
// AVX2: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<128x4100xf32>
// AVX2: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<32xf32>
// AVX2: %[[LOOP:.*]]:2 = scf.for %[[C:.*]] = %{{.*}} to %c4096 step %c32 iter_args(%[[ACC_ROW:.*]] = %{{.*}}, %[[LANES:.*]] = %[[ZERO]])
// AVX2-COUNT-2: memref.prefetch %[[IN]]
// AVX2-NOT: memref.prefetch
// AVX2: tensor.extract_slice %[[ACC_ROW]][%[[C]]] [32] [1]
// AVX2: %[[CHUNK:.*]] = linalg.generic
// AVX2: math.exp
// AVX2: %[[ALL:.*]] = vector.transfer_read %[[CHUNK]][%c0{{.*}}]
// AVX2-NOT: vector.transfer_read
// AVX2: %[[SUM:.*]] = arith.addf %[[LANES]], %[[ALL]] : vector<32xf32>
// AVX2: %[[ROW_OUT:.*]] = tensor.insert_slice %[[CHUNK]] into %[[ACC_ROW]]
// AVX2: scf.yield %[[ROW_OUT]], %[[SUM]]
// AVX2: tensor.extract_slice %[[LOOP]]#0[%c4096{{.*}}] [4] [1]
func.func @softmax_rows(%x: tensor<128x4100xf32>) -> tensor<128x4100xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<128x4100xf32>
  return %y : tensor<128x4100xf32>
}

// -----

// A fused chain: the group's operand of the rows' shape is prefetched, eight
// f64 per line; the broadcast row vector (in cache already) is not.
// CHECK-LABEL: func.func @softmax_chain
// CHECK: scf.forall
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<128x4096xf64>
// CHECK-NOT: bufferization.to_buffer
// CHECK: scf.for %{{.*}} step %c64
// CHECK-COUNT-8: memref.prefetch %[[IN]]
// CHECK-NOT: memref.prefetch
// CHECK: linalg.generic
func.func @softmax_chain(%x: tensor<128x4096xf64>, %b: tensor<4096xf64>) -> tensor<128x4096xf64> {
  %s = kiln.add %x, %b : tensor<128x4096xf64>, tensor<4096xf64>
  %y = kiln.softmax %s {dim = 1 : i64} : tensor<128x4096xf64>
  return %y : tensor<128x4096xf64>
}

// -----

// A 3-D softmax: the prefetch reads the input as it is, [8, 16] x 512 (a
// buffer of any layout: no copy made to view it otherwise); the next row is
// the linear row after this one, split back into its two coordinates.
// CHECK-LABEL: func.func @softmax_3d
// CHECK-NOT: tensor.collapse_shape
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<8x16x512xf32> to memref<8x16x512xf32, strided<[?, ?, ?], offset: ?>>
// CHECK: %[[NEXT:.*]] = arith.minui %{{.*}}, %c127
// CHECK: %[[OUTER:.*]] = arith.divui %[[NEXT]], %[[SIXTEEN:.*]] : index
// CHECK: %[[BASE:.*]] = arith.muli %[[OUTER]], %[[SIXTEEN]]
// CHECK: %[[INNER:.*]] = arith.subi %[[NEXT]], %[[BASE]]
// CHECK: memref.prefetch %[[IN]][%[[OUTER]], %[[INNER]], %{{.*}}]
func.func @softmax_3d(%x: tensor<8x16x512xf32>) -> tensor<8x16x512xf32> {
  %y = kiln.softmax %x {dim = 2 : i64} : tensor<8x16x512xf32>
  return %y : tensor<8x16x512xf32>
}

// -----

// Rows shorter than a chunk compute their exps in one generic, unprefetched.
// CHECK-LABEL: func.func @short_rows
// CHECK-NOT: bufferization.to_buffer
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @short_rows(%x: tensor<256x48xf32>) -> tensor<256x48xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<256x48xf32>
  return %y : tensor<256x48xf32>
}

// -----

// log_softmax sums exp(x - m) in the lane loop (32 positions a step): each
// step prefetches its two f32 lines of the next row.
// CHECK-LABEL: func.func @log_softmax_rows
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<128x1024xf32>
// CHECK: scf.for %{{.*}} step %c32 iter_args(%{{.*}}) -> (vector<32xf32>)
// CHECK-COUNT-2: memref.prefetch %[[IN]]
// CHECK-NOT: memref.prefetch
// CHECK: math.exp
func.func @log_softmax_rows(%x: tensor<128x1024xf32>) -> tensor<128x1024xf32> {
  %y = kiln.log_softmax %x {dim = 1 : i64} : tensor<128x1024xf32>
  return %y : tensor<128x1024xf32>
}

// -----

// Few long rows split into segments, with a rest after them: the segment
// kernel prefetches the next segment through a view of the rows without
// their rests, [2, 64, 4096] with the rows' stride -- a buffer of that
// layout, read in place. (Its identity-layout buffer, [128, 4096], was a
// copy of the input: 2x4000037 f32, 1 thread, 8.5 -> 3.6 ms.)
// CHECK-LABEL: func.func @segments_and_rest
// CHECK: %[[SLICE:.*]] = tensor.extract_slice %arg0[0, 0] [2, 262144] [1, 1]
// CHECK: %[[SEGMENTS:.*]] = tensor.expand_shape %[[SLICE]] {{\[}}[0], [1, 2]] output_shape [2, 64, 4096]
// CHECK-NOT: tensor.collapse_shape
// CHECK: %[[IN:.*]] = bufferization.to_buffer %[[SEGMENTS]] read_only : tensor<2x64x4096xf32> to memref<2x64x4096xf32, strided<[?, ?, ?], offset: ?>>
// CHECK: arith.minui %{{.*}}, %c127
// CHECK: memref.prefetch %[[IN]][%{{.*}}, %{{.*}}, %{{.*}}]
func.func @segments_and_rest(%x: tensor<2x262147xf32>) -> tensor<2x262147xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<2x262147xf32>
  return %y : tensor<2x262147xf32>
}

// -----

// Packed tiles over a middle dim (lowerPackedColumns): the first pass, which
// reads each tile row into the buffer, prefetches the row 4 ahead (the last
// row itself), a line at a time: 8 lines of a 128-column block. The tile's
// rows lie 2 KB apart here, too far for the hardware's stream prefetch
// (32x64x3136 f32 over dim 1 on a Zen 3, 1 thread: 12.1 -> 9.2 ms).
// CHECK-LABEL: func.func @packed_tiles
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<4x64x512xf32>
// CHECK: scf.forall (%[[TILE:.*]]) in (16)
// CHECK: scf.for %[[ROW:.*]] = %c0 to %c64 step %c1
// CHECK: %[[FOUR_AHEAD:.*]] = arith.addi %[[ROW]], %c4
// CHECK: %[[AHEAD:.*]] = arith.minui %[[FOUR_AHEAD]], %c63
// CHECK-COUNT-8: memref.prefetch %[[IN]][%{{.*}}, %[[AHEAD]], %{{.*}}], read, locality<3>, data
// CHECK-NOT: memref.prefetch
// CHECK: scf.for %{{.*}} = %c0 to %c128 step %c1
// CHECK: scf.forall.in_parallel
func.func @packed_tiles(%x: tensor<4x64x512xf32>) -> tensor<4x64x512xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<4x64x512xf32>
  return %y : tensor<4x64x512xf32>
}

// -----

// A fused chain's operand of the input's shape is prefetched the same way
// (the chain reads it at the element's position); the broadcast row is not.
// CHECK-LABEL: func.func @packed_tiles_chain
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<4x64x512xf32>
// CHECK-NOT: bufferization.to_buffer
// CHECK: scf.forall
// CHECK: %[[AHEAD:.*]] = arith.minui %{{.*}}, %c63
// CHECK-COUNT-8: memref.prefetch %[[IN]][%{{.*}}, %[[AHEAD]], %{{.*}}], read, locality<3>, data
// CHECK-NOT: memref.prefetch
func.func @packed_tiles_chain(%x: tensor<4x64x512xf32>, %b: tensor<512xf32>) -> tensor<4x64x512xf32> {
  %s = kiln.add %x, %b : tensor<4x64x512xf32>, tensor<512xf32>
  %y = kiln.softmax %s {dim = 1 : i64} : tensor<4x64x512xf32>
  return %y : tensor<4x64x512xf32>
}

// -----

// Rows 512 bytes apart stream in with the hardware's prefetch: none.
// CHECK-LABEL: func.func @packed_tiles_near
// CHECK-NOT: memref.prefetch
// CHECK: scf.forall.in_parallel
func.func @packed_tiles_near(%x: tensor<4x64x128xf32>) -> tensor<4x64x128xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<4x64x128xf32>
  return %y : tensor<4x64x128xf32>
}
