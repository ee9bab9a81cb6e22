// RUN: kiln-opt %s --split-input-file --kiln-strided-copies | FileCheck %s

// A tile's results into its columns of the full result: a strided target
// becomes a linalg.copy (loops later), not a call of the runner's memrefCopy.
// CHECK-LABEL: func.func @into_columns
// CHECK-NOT:     memref.copy
// CHECK:         linalg.copy ins(%{{.*}} : memref<3x10xf32>) outs(%{{.*}} : memref<3x10xf32, strided<[4096, 1], offset: ?>>)
func.func @into_columns(%tile: memref<3x10xf32>, %full: memref<3x4096xf32>, %at: index) {
  %slice = memref.subview %full[0, %at] [3, 10] [1, 1]
      : memref<3x4096xf32> to memref<3x10xf32, strided<[4096, 1], offset: ?>>
  memref.copy %tile, %slice : memref<3x10xf32> to memref<3x10xf32, strided<[4096, 1], offset: ?>>
  return
}

// -----

// A strided source too.
// CHECK-LABEL: func.func @from_columns
// CHECK:         linalg.copy
// CHECK-NOT:     memref.copy
func.func @from_columns(%full: memref<8x16xi64>, %tile: memref<8x4xi64>) {
  %slice = memref.subview %full[0, 4] [8, 4] [1, 1]
      : memref<8x16xi64> to memref<8x4xi64, strided<[16, 1], offset: 4>>
  memref.copy %slice, %tile : memref<8x4xi64, strided<[16, 1], offset: 4>> to memref<8x4xi64>
  return
}

// -----

// Contiguous copies stay memref.copy (a memcpy): identity layouts, and
// whole rows at a dynamic offset.
// CHECK-LABEL: func.func @contiguous
// CHECK-COUNT-2: memref.copy
// CHECK-NOT:     linalg.copy
func.func @contiguous(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %full: memref<16x8xf32>, %row: index) {
  memref.copy %a, %b : memref<4x8xf32> to memref<4x8xf32>
  %rows = memref.subview %full[%row, 0] [4, 8] [1, 1]
      : memref<16x8xf32> to memref<4x8xf32, strided<[8, 1], offset: ?>>
  memref.copy %a, %rows : memref<4x8xf32> to memref<4x8xf32, strided<[8, 1], offset: ?>>
  return
}

// -----

// A dynamic shape cannot be shown contiguous: loops.
// CHECK-LABEL: func.func @dynamic
// CHECK:         linalg.copy
func.func @dynamic(%a: memref<?x8xf32, strided<[8, 1], offset: ?>>, %b: memref<?x8xf32>) {
  memref.copy %a, %b : memref<?x8xf32, strided<[8, 1], offset: ?>> to memref<?x8xf32>
  return
}

// -----

// A copy of a buffer onto itself -- the same value, or equal subviews of
// one buffer (a bufferized scf.forall's insert of the slice it extracted,
// before CSE) -- does nothing and is erased: as a linalg.copy it would
// survive canonicalization as loops. Subviews at different offsets are a
// real copy.
// CHECK-LABEL: func.func @self_copies
// CHECK-COUNT-1: linalg.copy
// CHECK-NOT:     memref.copy
// CHECK-NOT:     linalg.copy
// CHECK:         return
func.func @self_copies(%full: memref<8x16xf32>, %at: index, %other: index) {
  %a = memref.subview %full[0, %at] [8, 4] [1, 1]
      : memref<8x16xf32> to memref<8x4xf32, strided<[16, 1], offset: ?>>
  %b = memref.subview %full[0, %at] [8, 4] [1, 1]
      : memref<8x16xf32> to memref<8x4xf32, strided<[16, 1], offset: ?>>
  memref.copy %a, %b : memref<8x4xf32, strided<[16, 1], offset: ?>> to memref<8x4xf32, strided<[16, 1], offset: ?>>
  memref.copy %full, %full : memref<8x16xf32> to memref<8x16xf32>
  %c = memref.subview %full[0, %other] [8, 4] [1, 1]
      : memref<8x16xf32> to memref<8x4xf32, strided<[16, 1], offset: ?>>
  memref.copy %a, %c : memref<8x4xf32, strided<[16, 1], offset: ?>> to memref<8x4xf32, strided<[16, 1], offset: ?>>
  return
}
