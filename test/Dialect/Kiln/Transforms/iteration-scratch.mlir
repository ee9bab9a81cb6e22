// RUN: kiln-opt %s --split-input-file --kiln-iteration-scratch | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-iteration-scratch=max-bytes=1024 | FileCheck %s --check-prefix=SMALL
// RUN: kiln-opt %s --split-input-file --kiln-iteration-scratch=max-region-bytes=2500 | FileCheck %s --check-prefix=REGION

// A column reduction's block: its stack of partial sums and its results,
// allocated and freed in each iteration, become one stack buffer per
// thread, at the start of the parallel region; the deallocs go.
// CHECK-LABEL: func.func @block_scratch
// CHECK:         omp.parallel {
// CHECK-NEXT:      %[[STACK:.*]] = memref.alloca() {alignment = 64 : i64} : memref<5x112xf32>
// CHECK-NEXT:      %[[BLOCK:.*]] = memref.alloca() {alignment = 64 : i64} : memref<1x112xf32>
// CHECK-NEXT:      omp.wsloop {
// CHECK:             memref.store %{{.*}}, %[[STACK]]
// CHECK:             memref.load %[[STACK]]
// CHECK:             memref.store %{{.*}}, %[[BLOCK]]
// CHECK-NOT:       memref.alloc(
// CHECK-NOT:       memref.dealloc
// The 2240-byte stack is over a 1024-byte bound; the 448-byte block is not.
// SMALL-LABEL: func.func @block_scratch
// SMALL:         omp.parallel {
// SMALL-NEXT:      memref.alloca() {alignment = 64 : i64} : memref<1x112xf32>
// SMALL:           omp.loop_nest
// SMALL-NEXT:        memref.alloc() {alignment = 64 : i64} : memref<5x112xf32>
// SMALL:             memref.dealloc %{{.*}} : memref<5x112xf32>
// SMALL-NOT:       memref.dealloc
// SMALL:         return
// A region takes buffers in order while they fit its bound together: the
// 2240-byte stack does, the 448-byte block then would not.
// REGION-LABEL: func.func @block_scratch
// REGION:         omp.parallel {
// REGION-NEXT:      memref.alloca() {alignment = 64 : i64} : memref<5x112xf32>
// REGION:           omp.loop_nest
// REGION-NEXT:        memref.alloc() {alignment = 64 : i64} : memref<1x112xf32>
// REGION:             memref.dealloc %{{.*}} : memref<1x112xf32>
// REGION-NOT:       memref.dealloc
// REGION:         return
func.func @block_scratch(%out: memref<3584xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3584 = arith.constant 3584 : index
  %x = arith.constant 1.0 : f32
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%c3584) step (%c1) {
        %stack = memref.alloc() {alignment = 64 : i64} : memref<5x112xf32>
        %block = memref.alloc() {alignment = 64 : i64} : memref<1x112xf32>
        memref.store %x, %stack[%c1, %c0] : memref<5x112xf32>
        %v = memref.load %stack[%c1, %c0] : memref<5x112xf32>
        memref.store %v, %block[%c0, %c0] : memref<1x112xf32>
        %w = memref.load %block[%c0, %c0] : memref<1x112xf32>
        memref.store %w, %out[%i] : memref<3584xf32>
        memref.dealloc %stack : memref<5x112xf32>
        memref.dealloc %block : memref<1x112xf32>
        omp.yield
      }
    }
    omp.terminator
  }
  return
}

// -----

// Left alone: a buffer allocated in a loop nested in the iteration (its
// stack space would pile up per inner iteration were it scoped to the
// iteration; it is not the iteration's buffer), one of a dynamic shape,
// one over the bound (32 KiB by default), one without a dealloc in the
// iteration (it outlives it), one freed in a branch, and one allocated
// outside any worksharing loop.
// CHECK-LABEL: func.func @not_scratch
// CHECK-NOT:     memref.alloca
// CHECK-COUNT-6: memref.alloc(
// CHECK-NOT:     memref.alloca
func.func @not_scratch(%n: index, %flag: i1) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %x = arith.constant 1.0 : f32
  %kept = memref.alloc() : memref<4xf32>
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%c8) step (%c1) {
        scf.for %j = %c0 to %c8 step %c1 {
          %inner = memref.alloc() : memref<16xf32>
          memref.store %x, %inner[%j] : memref<16xf32>
          memref.dealloc %inner : memref<16xf32>
        }
        %dynamic = memref.alloc(%n) : memref<?xf32>
        memref.store %x, %dynamic[%c0] : memref<?xf32>
        memref.dealloc %dynamic : memref<?xf32>
        %large = memref.alloc() : memref<8193xf32>
        memref.store %x, %large[%c0] : memref<8193xf32>
        memref.dealloc %large : memref<8193xf32>
        %leaked = memref.alloc() : memref<4xf32>
        memref.store %x, %leaked[%c0] : memref<4xf32>
        %branch = memref.alloc() : memref<4xf32>
        scf.if %flag {
          memref.dealloc %branch : memref<4xf32>
        }
        omp.yield
      }
    }
    omp.terminator
  }
  memref.dealloc %kept : memref<4xf32>
  return %kept : memref<4xf32>
}
