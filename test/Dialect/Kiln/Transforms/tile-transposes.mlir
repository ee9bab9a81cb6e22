// RUN: kiln-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(kiln-tile-transposes))' | FileCheck %s

// A transpose whose inner loop steps 1030 floats (4 KB or more) through
// its input: 16x16 squares in an scf.forall, partial at the edges.
// CHECK-LABEL: func.func @tiled
// CHECK:       scf.forall (%[[I:.*]], %[[J:.*]]) = (0, 0) to (1030, 300) step (16, 16) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:         %[[IN:.*]] = tensor.extract_slice %arg0[%[[J]], %[[I]]] [%{{.*}}, %{{.*}}] [1, 1] : tensor<300x1030xf32> to tensor<?x?xf32>
// CHECK:         linalg.transpose ins(%[[IN]] : tensor<?x?xf32>)
// CHECK:         tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[I]], %[[J]]]
func.func @tiled(%x: tensor<300x1030xf32>) -> tensor<1030x300xf32> {
  %e = tensor.empty() : tensor<1030x300xf32>
  %t = linalg.transpose ins(%x : tensor<300x1030xf32>) outs(%e : tensor<1030x300xf32>) permutation = [1, 0]
  return %t : tensor<1030x300xf32>
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
// CHECK:       scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (256, 64) step (16, 16)
// CHECK:         linalg.transpose
func.func @tiled_aliasing(%x: tensor<64x256xf32>) -> tensor<256x64xf32> {
  %e = tensor.empty() : tensor<256x64xf32>
  %t = linalg.transpose ins(%x : tensor<64x256xf32>) outs(%e : tensor<256x64xf32>) permutation = [1, 0]
  return %t : tensor<256x64xf32>
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

// Not tiled: a transpose whose rows are 1000 B apart (below a page and
// not a multiple of 512 B: they spread over the cache's sets and stay in
// cache), one whose inner dim is a tile or less, and a plain elementwise
// generic.
// CHECK-LABEL: func.func @kept
// CHECK-NOT:   scf.forall
// CHECK:       return
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @kept(%x: tensor<64x250xf32>, %y: tensor<5000x16xf32>, %z: tensor<8x8xf32>) -> (tensor<250x64xf32>, tensor<16x5000xf32>, tensor<8x8xf32>) {
  %e = tensor.empty() : tensor<250x64xf32>
  %t = linalg.transpose ins(%x : tensor<64x250xf32>) outs(%e : tensor<250x64xf32>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<16x5000xf32>
  %t2 = linalg.transpose ins(%y : tensor<5000x16xf32>) outs(%e2 : tensor<16x5000xf32>) permutation = [1, 0]
  %e3 = tensor.empty() : tensor<8x8xf32>
  %g = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%z : tensor<8x8xf32>) outs(%e3 : tensor<8x8xf32>) {
  ^bb0(%v: f32, %o: f32):
    %s = arith.mulf %v, %v : f32
    linalg.yield %s : f32
  } -> tensor<8x8xf32>
  return %t, %t2, %g : tensor<250x64xf32>, tensor<16x5000xf32>, tensor<8x8xf32>
}
