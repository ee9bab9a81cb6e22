// RUN: kiln-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(kiln-tile-transposes))' | FileCheck %s

// A transpose of 32-bit elements: 16x16 squares in registers, an
// scf.forall over them -- 16 rows read as vectors, transposed by 64
// shuffles, written as 16 rows of the output's square.
// CHECK-LABEL: func.func @registers
// CHECK:       scf.forall (%[[I:.*]], %[[J:.*]]) = (0, 0) to (128, 64) step (16, 16) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         vector.transfer_read %arg0[%[[J]], %[[I]]]{{.*}} : tensor<64x128xf32>, vector<16xf32>
// CHECK-COUNT-15: vector.transfer_read
// CHECK-COUNT-64: vector.shuffle
// CHECK:         %[[SQUARE:.*]] = tensor.extract_slice %[[OUT]][%[[I]], %[[J]]] [16, 16] [1, 1]
// CHECK-COUNT-16: vector.transfer_write
// CHECK:         tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[I]], %[[J]]] [16, 16] [1, 1]
// CHECK-NOT:   linalg.transpose
func.func @registers(%x: tensor<64x128xf32>) -> tensor<128x64xf32> {
  %e = tensor.empty() : tensor<128x64xf32>
  %t = linalg.transpose ins(%x : tensor<64x128xf32>) outs(%e : tensor<128x64xf32>) permutation = [1, 0]
  return %t : tensor<128x64xf32>
}

// -----

// 64-bit elements: 8x8 squares (24 shuffles). Dims that are not multiples
// of the side: the whole squares in registers, then plain transposes of
// the strips left over -- the last 6 output rows (every column), then the
// last 4 columns of the other rows.
// CHECK-LABEL: func.func @registers_strips
// CHECK:       %[[SQUARES:.*]] = scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (296, 24) step (8, 8)
// CHECK-COUNT-24: vector.shuffle
// CHECK:       %[[IN1:.*]] = tensor.extract_slice %arg0[0, 296] [28, 6] [1, 1] : tensor<28x302xf64> to tensor<28x6xf64>
// CHECK:       %[[OUT1:.*]] = tensor.extract_slice %[[SQUARES]][296, 0] [6, 28] [1, 1]
// CHECK:       %[[T1:.*]] = linalg.transpose ins(%[[IN1]] : tensor<28x6xf64>) outs(%[[OUT1]] : tensor<6x28xf64>) permutation = [1, 0]
// CHECK:       %[[R1:.*]] = tensor.insert_slice %[[T1]] into %[[SQUARES]][296, 0] [6, 28] [1, 1]
// CHECK:       %[[IN2:.*]] = tensor.extract_slice %arg0[24, 0] [4, 296] [1, 1] : tensor<28x302xf64> to tensor<4x296xf64>
// CHECK:       %[[OUT2:.*]] = tensor.extract_slice %[[R1]][0, 24] [296, 4] [1, 1]
// CHECK:       %[[T2:.*]] = linalg.transpose ins(%[[IN2]] : tensor<4x296xf64>) outs(%[[OUT2]] : tensor<296x4xf64>) permutation = [1, 0]
// CHECK:       %[[R2:.*]] = tensor.insert_slice %[[T2]] into %[[R1]][0, 24] [296, 4] [1, 1]
// CHECK:       return %[[R2]]
func.func @registers_strips(%x: tensor<28x302xf64>) -> tensor<302x28xf64> {
  %e = tensor.empty() : tensor<302x28xf64>
  %t = linalg.transpose ins(%x : tensor<28x302xf64>) outs(%e : tensor<302x28xf64>) permutation = [1, 0]
  return %t : tensor<302x28xf64>
}

// -----

// A 3-D permute whose swapped dims are not adjacent: squares of dims 0 and
// 2 of the output, one per position of dim 1.
// CHECK-LABEL: func.func @registers_3d
// CHECK:       scf.forall (%[[A:.*]], %[[B:.*]], %[[C:.*]]) = (0, 0, 0) to (48, 3, 16) step (16, 1, 16)
// CHECK:         vector.transfer_read %arg0[%[[C]], %[[B]], %[[A]]]
// CHECK:         tensor.extract_slice %{{.*}}[%[[A]], %[[B]], %[[C]]] [16, 1, 16] [1, 1, 1]
func.func @registers_3d(%x: tensor<16x3x48xf32>) -> tensor<48x3x16xf32> {
  %e = tensor.empty() : tensor<48x3x16xf32>
  %t = linalg.transpose ins(%x : tensor<16x3x48xf32>) outs(%e : tensor<48x3x16xf32>) permutation = [2, 1, 0]
  return %t : tensor<48x3x16xf32>
}

// -----

// Other element types (booleans, bytes) transpose element by element:
// one whose inner loop steps 4100 bytes (a page or more) through the input
// in 16x16 squares in an scf.forall, partial at the edges.
// CHECK-LABEL: func.func @tiled
// CHECK:       scf.forall (%[[I:.*]], %[[J:.*]]) = (0, 0) to (4100, 300) step (16, 16) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         %[[IN:.*]] = tensor.extract_slice %arg0[%[[J]], %[[I]]] [%{{.*}}, %{{.*}}] [1, 1] : tensor<300x4100xi1> to tensor<?x?xi1>
// CHECK:         linalg.transpose ins(%[[IN]] : tensor<?x?xi1>)
// CHECK:         tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[I]], %[[J]]]
func.func @tiled(%x: tensor<300x4100xi1>) -> tensor<4100x300xi1> {
  %e = tensor.empty() : tensor<4100x300xi1>
  %t = linalg.transpose ins(%x : tensor<300x4100xi1>) outs(%e : tensor<4100x300xi1>) permutation = [1, 0]
  return %t : tensor<4100x300xi1>
}

// -----

// An elementwise generic reading one operand transposed (rows 8 KB apart):
// tiled too, 1 along the outer dim.
// CHECK-LABEL: func.func @generic_tiled
// CHECK:       scf.forall (%{{.*}}, %{{.*}}, %{{.*}}) = (0, 0, 0) to (2, 2048, 64) step (1, 16, 16)
// CHECK:         linalg.generic
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#tr = affine_map<(d0, d1, d2) -> (d0, d2, d1)>
func.func @generic_tiled(%a: tensor<2x2048x64xf32>, %b: tensor<2x64x2048xf32>) -> tensor<2x2048x64xf32> {
  %e = tensor.empty() : tensor<2x2048x64xf32>
  %r = linalg.generic {indexing_maps = [#id, #tr, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%a, %b : tensor<2x2048x64xf32>, tensor<2x64x2048xf32>) outs(%e : tensor<2x2048x64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<2x2048x64xf32>
  return %r : tensor<2x2048x64xf32>
}

// -----

// Rows 1 KB apart, a multiple of 512 B: the 16 lines of a tile's column
// fall into 4 of L1's 64 sets and evict each other, so this small
// transpose is tiled too.
// CHECK-LABEL: func.func @tiled_aliasing
// CHECK:       scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (1024, 64) step (16, 16)
// CHECK:         linalg.transpose
func.func @tiled_aliasing(%x: tensor<64x1024xi8>) -> tensor<1024x64xi8> {
  %e = tensor.empty() : tensor<1024x64xi8>
  %t = linalg.transpose ins(%x : tensor<64x1024xi8>) outs(%e : tensor<1024x64xi8>) permutation = [1, 0]
  return %t : tensor<1024x64xi8>
}

// -----

// A permute keeping its last dim (32 floats, 128 B) reads chunks of it in
// order while the next loop out steps 8 KB through the input: the two
// swapped dims are tiled 16x16, the chunk stays whole, 1 along dim 0.
// CHECK-LABEL: func.func @chunked
// CHECK:       scf.forall (%[[A:.*]], %[[B:.*]], %[[C:.*]]) = (0, 0, 0) to (4, 64, 64) step (1, 16, 16)
// CHECK:         tensor.extract_slice %arg0[%[[A]], %[[C]], %[[B]], 0] [1, 16, 16, 32] [1, 1, 1, 1]
// CHECK:         linalg.transpose ins(%{{.*}} : tensor<1x16x16x32xf32>) {{.*}} permutation = [0, 2, 1, 3]
func.func @chunked(%x: tensor<4x64x64x32xf32>) -> tensor<4x64x64x32xf32> {
  %e = tensor.empty() : tensor<4x64x64x32xf32>
  %t = linalg.transpose ins(%x : tensor<4x64x64x32xf32>) outs(%e : tensor<4x64x64x32xf32>) permutation = [0, 2, 1, 3]
  return %t : tensor<4x64x64x32xf32>
}

// -----

// Not tiled: chunks of 4 floats (16 B: the tiles' short loops cost more
// than the cache saves) and of 128 floats (512 B, read well whole).
// CHECK-LABEL: func.func @chunks_kept
// CHECK-NOT:   scf.forall
// CHECK:       return
func.func @chunks_kept(%x: tensor<4x64x64x4xf32>, %y: tensor<4x64x64x128xf32>) -> (tensor<4x64x64x4xf32>, tensor<4x64x64x128xf32>) {
  %e = tensor.empty() : tensor<4x64x64x4xf32>
  %t = linalg.transpose ins(%x : tensor<4x64x64x4xf32>) outs(%e : tensor<4x64x64x4xf32>) permutation = [0, 2, 1, 3]
  %e2 = tensor.empty() : tensor<4x64x64x128xf32>
  %t2 = linalg.transpose ins(%y : tensor<4x64x64x128xf32>) outs(%e2 : tensor<4x64x64x128xf32>) permutation = [0, 2, 1, 3]
  return %t, %t2 : tensor<4x64x64x4xf32>, tensor<4x64x64x128xf32>
}

// -----

// Not tiled: a transpose of booleans whose rows are 1000 B apart (below a
// page and not a multiple of 512 B: they spread over the cache's sets and
// stay in cache), a float transpose with a dim shorter than a square's
// side (5), and a plain elementwise generic.
// CHECK-LABEL: func.func @kept
// CHECK-NOT:   scf.forall
// CHECK:       return
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @kept(%x: tensor<64x1000xi1>, %y: tensor<5x5000xf32>, %z: tensor<8x8xf32>) -> (tensor<1000x64xi1>, tensor<5000x5xf32>, tensor<8x8xf32>) {
  %e = tensor.empty() : tensor<1000x64xi1>
  %t = linalg.transpose ins(%x : tensor<64x1000xi1>) outs(%e : tensor<1000x64xi1>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<5000x5xf32>
  %t2 = linalg.transpose ins(%y : tensor<5x5000xf32>) outs(%e2 : tensor<5000x5xf32>) permutation = [1, 0]
  %e3 = tensor.empty() : tensor<8x8xf32>
  %g = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%z : tensor<8x8xf32>) outs(%e3 : tensor<8x8xf32>) {
  ^bb0(%v: f32, %o: f32):
    %s = arith.mulf %v, %v : f32
    linalg.yield %s : f32
  } -> tensor<8x8xf32>
  return %t, %t2, %g : tensor<1000x64xi1>, tensor<5000x5xf32>, tensor<8x8xf32>
}

// -----

// An empty transpose is left alone: nothing to move, and a tile's slice
// would start at offset 0 of a dim of size 0 (out of bounds; the transposes
// in registers built it for the 0x17x17 permute of a batched matmul's
// gradient, and the lowering failed).
// CHECK-LABEL: func.func @empty
// CHECK-NOT:   tensor.extract_slice
// CHECK:       linalg.transpose
// CHECK-NOT:   tensor.extract_slice
func.func @empty(%x: tensor<0x17x17xf64>) -> tensor<0x17x17xf64> {
  %e = tensor.empty() : tensor<0x17x17xf64>
  %t = linalg.transpose ins(%x : tensor<0x17x17xf64>) outs(%e : tensor<0x17x17xf64>) permutation = [0, 2, 1]
  return %t : tensor<0x17x17xf64>
}
