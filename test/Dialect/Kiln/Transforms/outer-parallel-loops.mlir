// RUN: kiln-opt --kiln-outer-parallel-loops --split-input-file %s | FileCheck %s
// RUN: kiln-opt --kiln-outer-parallel-loops=min-parallel-work=0 --split-input-file %s | FileCheck %s --check-prefix=ALWAYS
// RUN: kiln-opt --kiln-outer-parallel-loops --remarks-filter=kiln-lower --split-input-file %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK

// A multi-dimensional parallel loop keeps its outer dim parallel, the
// others become scf.for (the work, 512x1024 stores, is large).
// CHECK-LABEL: func @split
// CHECK: scf.parallel (%{{.*}}) = (%c0) to (%c512) step (%c1) {
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c1024 step %c1 {
// CHECK-NEXT: memref.store
func.func @split(%m: memref<512x1024xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c512 = arith.constant 512 : index
  %c1024 = arith.constant 1024 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c512, %c1024) step (%c1, %c1) {
    memref.store %v, %m[%i, %j] : memref<512x1024xf32>
    scf.reduce
  }
  return
}

// -----

// 10x100 loads, adds and stores: about 25000 operations, far less than
// starting the worker threads costs. The loop runs on the calling thread,
// and a remark says so (the lowering's remark says "in parallel").
// REMARK: outer-parallel-loops.mlir:[[# @LINE + 12]]:3: remark: [Analysis] SequentialKernel | Category:kiln-lower | Function=small | Remark="the kernel's loop runs on the calling thread: about 26000 operations (a memory access counted as 12) are fewer than min-parallel-work (2097152), so starting worker threads would cost more than they save", work=26000
// CHECK-LABEL: func @small
// CHECK-NOT: scf.parallel
// CHECK: scf.for %{{.*}} = %c0 to %c10 step %c1 {
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c100 step %c1 {
// ALWAYS-LABEL: func @small
// ALWAYS: scf.parallel
func.func @small(%a: memref<10x100xf32>, %b: memref<10x100xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c10 = arith.constant 10 : index
  %c100 = arith.constant 100 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c10, %c100) step (%c1, %c1) {
    %x = memref.load %a[%i, %j] : memref<10x100xf32>
    %y = arith.addf %x, %x : f32
    memref.store %y, %b[%i, %j] : memref<10x100xf32>
    scf.reduce
  }
  return
}

// -----

// Vector ops count once per lane, a memory access 12 times per lane: 64
// rows of 32 steps of a vector<128xf32> load and add are 64 * 32 * 128 *
// 13 = 3.4M operations (plus the stores): enough work to stay parallel,
// where counting each vector op once would not be.
// CHECK-LABEL: func @vector_lanes
// CHECK: scf.parallel
func.func @vector_lanes(%a: memref<64x4096xf32>, %out: memref<64x128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %zero = arith.constant dense<0.0> : vector<128xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %sum = scf.for %k = %c0 to %c32 step %c1 iter_args(%acc = %zero) -> (vector<128xf32>) {
      %col = arith.muli %k, %c128 : index
      %v = vector.load %a[%i, %col] : memref<64x4096xf32>, vector<128xf32>
      %s = arith.addf %acc, %v : vector<128xf32>
      scf.yield %s : vector<128xf32>
    }
    vector.store %sum, %out[%i, %c0] : memref<64x128xf32>, vector<128xf32>
    scf.reduce
  }
  return
}

// -----

// The same number of vector lanes in arithmetic on registers is little
// work: 64 rows of 32 steps of two vector<128xf32> ops (524288 lanes, 1 µs
// on one thread; the yield passes values on, no work) and one store per
// row (64 * 128 * 12 = 98304) run on the calling thread. (A worksharing
// loop costs about 2.5 µs to start and join on two threads.)
// REMARK: work=624704
// CHECK-LABEL: func @registers
// CHECK-NOT: scf.parallel
// ALWAYS-LABEL: func @registers
// ALWAYS: scf.parallel
func.func @registers(%x: vector<128xf32>, %out: memref<64x128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %r = scf.for %k = %c0 to %c32 step %c1 iter_args(%acc = %x) -> (vector<128xf32>) {
      %m = arith.mulf %acc, %x : vector<128xf32>
      %s = arith.addf %m, %x : vector<128xf32>
      scf.yield %s : vector<128xf32>
    }
    vector.store %r, %out[%i, %c0] : memref<64x128xf32>, vector<128xf32>
    scf.reduce
  }
  return
}

// -----

// Bounds that are not constants but are bounded by what the IR shows -- the
// last block of a column reduction, min(300 - 128 * i, 128) columns, with
// i in [0, 3) -- count at their largest: 3 blocks of at most 128 columns
// of 64 rows, two loads, a store and two adds each, 3 * 64 * 128 * 38 =
// 933888 (and the loops' own): sequential. (The constant factor may come
// first.)
// REMARK: work=958668
// CHECK-LABEL: func @bounded_columns
// CHECK-NOT: scf.parallel
// ALWAYS-LABEL: func @bounded_columns
// ALWAYS: scf.parallel
func.func @bounded_columns(%a: memref<64x300xf32>, %out: memref<300xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %c300 = arith.constant 300 : index
  scf.parallel (%b) = (%c0) to (%c3) step (%c1) {
    %start = arith.muli %c128, %b : index
    %left = arith.subi %c300, %start : index
    %n = arith.minsi %left, %c128 : index
    scf.for %r = %c0 to %c64 step %c1 {
      scf.for %j = %c0 to %n step %c1 {
        %col = arith.addi %start, %j : index
        %x = memref.load %a[%r, %col] : memref<64x300xf32>
        %y = memref.load %out[%col] : memref<300xf32>
        %s = arith.addf %x, %y : f32
        memref.store %s, %out[%col] : memref<300xf32>
      }
    }
    scf.reduce
  }
  return
}

// -----

// An unsigned min of a value that may be negative (100 - 128 * i, i in
// [0, 3)) is not bounded by the signed ranges (a negative value is a huge
// unsigned one): the work is unknown and the loop stays parallel.
// CHECK-LABEL: func @unsigned_min_of_negative
// CHECK: scf.parallel
func.func @unsigned_min_of_negative(%out: memref<300xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c100 = arith.constant 100 : index
  %c128 = arith.constant 128 : index
  scf.parallel (%b) = (%c0) to (%c3) step (%c1) {
    %start = arith.muli %b, %c128 : index
    %left = arith.subi %c100, %start : index
    %n = arith.minui %left, %c128 : index
    scf.for %j = %c0 to %n step %c1 {
      memref.store %v, %out[%j] : memref<300xf32>
    }
    scf.reduce
  }
  return
}

// -----

// The same shape over 4096 rows (39M operations at most) stays parallel.
// CHECK-LABEL: func @bounded_columns_large
// CHECK: scf.parallel
func.func @bounded_columns_large(%a: memref<4096x300xf32>, %out: memref<300xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c4096 = arith.constant 4096 : index
  %c128 = arith.constant 128 : index
  %c300 = arith.constant 300 : index
  scf.parallel (%b) = (%c0) to (%c3) step (%c1) {
    %start = arith.muli %b, %c128 : index
    %left = arith.subi %c300, %start : index
    %n = arith.minsi %left, %c128 : index
    scf.for %r = %c0 to %c4096 step %c1 {
      scf.for %j = %c0 to %n step %c1 {
        %col = arith.addi %start, %j : index
        %x = memref.load %a[%r, %col] : memref<4096x300xf32>
        %y = memref.load %out[%col] : memref<300xf32>
        %s = arith.addf %x, %y : f32
        memref.store %s, %out[%col] : memref<300xf32>
      }
    }
    scf.reduce
  }
  return
}

// -----

// The work of a loop with a bound the IR does not bound (a function
// argument) is unknown: it stays parallel, however few iterations it may
// run.
// CHECK-LABEL: func @dynamic_bound
// CHECK: scf.parallel
func.func @dynamic_bound(%m: memref<10x?xf32>, %n: index, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c10 = arith.constant 10 : index
  scf.parallel (%i) = (%c0) to (%c10) step (%c1) {
    scf.for %j = %c0 to %n step %c1 {
      memref.store %v, %m[%i, %j] : memref<10x?xf32>
    }
    scf.reduce
  }
  return
}

// -----

// A call's work is unknown (the runtime's kernels split their own work):
// the loop stays parallel.
// CHECK-LABEL: func @calls
// CHECK: scf.parallel
func.func private @work(index)
func.func @calls() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    func.call @work(%i) : (index) -> ()
    scf.reduce
  }
  return
}

// -----

// A stack allocation per iteration would pile up in a sequential loop (a
// worksharing loop frees it per iteration): the loop stays parallel.
// CHECK-LABEL: func @alloca
// CHECK: scf.parallel
func.func @alloca(%m: memref<4xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %t = memref.alloca() : memref<16xf32>
    memref.store %v, %t[%c0] : memref<16xf32>
    %x = memref.load %t[%c0] : memref<16xf32>
    memref.store %x, %m[%i] : memref<4xf32>
    scf.reduce
  }
  return
}

// -----

// Copies count a read and a write per element: 8 copies of 65536-element
// rows (12.6M operations) stay parallel.
// CHECK-LABEL: func @copies
// CHECK: scf.parallel
func.func @copies(%a: memref<8x65536xf32>, %b: memref<8x65536xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    %src = memref.subview %a[%i, 0] [1, 65536] [1, 1] : memref<8x65536xf32> to memref<65536xf32, strided<[1], offset: ?>>
    %dst = memref.subview %b[%i, 0] [1, 65536] [1, 1] : memref<8x65536xf32> to memref<65536xf32, strided<[1], offset: ?>>
    memref.copy %src, %dst : memref<65536xf32, strided<[1], offset: ?>> to memref<65536xf32, strided<[1], offset: ?>>
    scf.reduce
  }
  return
}

// -----

// A parallel loop nested in a reduction loop (matmul's columns inside k)
// runs sequentially in the enclosing loop's thread.
// CHECK-LABEL: func @nested
// CHECK: scf.parallel (%[[I:.*]]) = (%c0) to (%c256)
// CHECK-NOT: scf.parallel
// CHECK: scf.for
func.func @nested(%m: memref<256x256xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  scf.parallel (%i) = (%c0) to (%c256) step (%c1) {
    scf.for %k = %c0 to %c256 step %c1 {
      scf.parallel (%j) = (%c0) to (%c256) step (%c1) {
        memref.store %v, %m[%i, %j] : memref<256x256xf32>
        scf.reduce
      }
    }
    scf.reduce
  }
  return
}

// -----

// One row of 16M elements: split by its first dim alone, the loop would run
// on one thread. The threads share the row in blocks of 4096 elements (an
// iteration is a load, an add and a store, 25 operations: 4096 of them
// well under kBlockWork), each block an inner loop of consecutive elements
// that LLVM vectorizes. The unit dim needs no division: its index is 0.
// REMARK: outer-parallel-loops.mlir:[[# @LINE + 11]]:3: remark: [Analysis] ParallelDims | Category:kiln-lower | Function=one_row | Remark="the kernel's first dim runs fewer than 64 iterations, so the threads share its first 2 dims (4096 iterations, the last in blocks of 4096)", iterations=4096
// CHECK-LABEL: func @one_row
// CHECK: scf.parallel (%[[T:.*]]) = (%c0) to (%c4096) step (%c1) {
// CHECK-NEXT: %[[BEGIN:.*]] = arith.muli %[[T]], %c4096
// CHECK-NEXT: %[[END:.*]] = arith.addi %[[BEGIN]], %c4096
// CHECK-NEXT: scf.for %[[J:.*]] = %[[BEGIN]] to %[[END]] step %c1 {
// CHECK-NEXT: memref.load %{{.*}}[%c0, %[[J]]]
func.func @one_row(%a: memref<1x16777216xf32>, %b: memref<1x16777216xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16M = arith.constant 16777216 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c1, %c16M) step (%c1, %c1) {
    %x = memref.load %a[%i, %j] : memref<1x16777216xf32>
    %y = arith.addf %x, %x : f32
    memref.store %y, %b[%i, %j] : memref<1x16777216xf32>
    scf.reduce
  }
  return
}

// -----

// Three rows of 100003: 25 blocks each (the last of 1699 elements, its end
// clamped to the row), 75 iterations.
// CHECK-LABEL: func @few_rows
// CHECK: scf.parallel (%[[T:.*]]) = (%c0) to (%c75) step (%c1) {
// CHECK-DAG: %[[P:.*]] = arith.remui %[[T]], %c25
// CHECK-DAG: %[[I:.*]] = arith.divui %[[T]], %c25
// CHECK: %[[BEGIN:.*]] = arith.muli %[[P]], %c4096
// CHECK: %[[NEXT:.*]] = arith.addi %[[BEGIN]], %c4096
// CHECK: %[[END:.*]] = arith.minui %[[NEXT]], %c100003
// CHECK: scf.for %[[J:.*]] = %[[BEGIN]] to %[[END]] step %c1 {
// CHECK-NEXT: memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]]]
func.func @few_rows(%m: memref<3x100003xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c100003 = arith.constant 100003 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c3, %c100003) step (%c1, %c1) {
    memref.store %v, %m[%i, %j] : memref<3x100003xf32>
    scf.reduce
  }
  return
}

// -----

// 2 x 40 = 80 iterations of the first two dims are enough: they are shared,
// the last dim stays an inner loop.
// REMARK: Function=two_dims_enough | Remark="{{.*}} share its first 2 dims (80 iterations)"
// CHECK-LABEL: func @two_dims_enough
// CHECK: scf.parallel (%[[T:.*]]) = (%c0) to (%c80) step (%c1) {
// CHECK-DAG: %[[J:.*]] = arith.remui %[[T]], %c40
// CHECK-DAG: %[[I:.*]] = arith.divui %[[T]], %c40
// CHECK: scf.for %[[K:.*]] = %c0 to %c65536 step %c1 {
// CHECK-NEXT: memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]], %[[K]]]
func.func @two_dims_enough(%m: memref<2x40x65536xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c40 = arith.constant 40 : index
  %c65536 = arith.constant 65536 : index
  scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%c2, %c40, %c65536) step (%c1, %c1, %c1) {
    memref.store %v, %m[%i, %j, %k] : memref<2x40x65536xf32>
    scf.reduce
  }
  return
}

// -----

// Segments of a split reduction (one kept position, 1024 segments of 16384
// elements): each iteration is far more than kBlockWork, a block of its
// own, so the 1024 segments are the iterations.
// REMARK: Function=segments | Remark="{{.*}} share its first 2 dims (1024 iterations)"
// CHECK-LABEL: func @segments
// CHECK: scf.parallel (%[[T:.*]]) = (%c0) to (%c1024) step (%c1) {
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c16384 step %c1 iter_args
// CHECK-NEXT: memref.load %{{.*}}[%c0, %[[T]], %{{.*}}]
func.func @segments(%a: memref<1x1024x16384xf32>, %out: memref<1x1024xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c1024 = arith.constant 1024 : index
  %c16384 = arith.constant 16384 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %s) = (%c0, %c0) to (%c1, %c1024) step (%c1, %c1) {
    %sum = scf.for %k = %c0 to %c16384 step %c1 iter_args(%acc = %zero) -> (f32) {
      %x = memref.load %a[%i, %s, %k] : memref<1x1024x16384xf32>
      %y = arith.addf %acc, %x : f32
      scf.yield %y : f32
    }
    memref.store %sum, %out[%i, %s] : memref<1x1024xf32>
    scf.reduce
  }
  return
}

// -----

// Bounds other than 0 and steps other than 1: the positions map back to
// lower + position * step (rows 1, 3, 5; columns 2, 5, ..., 200000: 66667
// positions, 17 blocks of 4096 -- the last clamped -- per row).
// CHECK-LABEL: func @strided
// CHECK: scf.parallel (%[[T:.*]]) = (%c0) to (%c51) step (%c1) {
// CHECK-DAG: %[[P:.*]] = arith.remui %[[T]], %c17
// CHECK-DAG: %[[R:.*]] = arith.divui %[[T]], %c17
// CHECK: %[[R2:.*]] = arith.muli %[[R]], %c2
// CHECK: %[[I:.*]] = arith.addi %[[R2]], %c1
// CHECK: %[[BEGIN:.*]] = arith.muli %[[P]], %c4096
// CHECK: %[[NEXT:.*]] = arith.addi %[[BEGIN]], %c4096
// CHECK: %[[END:.*]] = arith.minui %[[NEXT]], %c66667
// CHECK: %[[B3:.*]] = arith.muli %[[BEGIN]], %c3
// CHECK: %[[LO:.*]] = arith.addi %[[B3]], %c2
// CHECK: %[[E3:.*]] = arith.muli %[[END]], %c3
// CHECK: %[[HI:.*]] = arith.addi %[[E3]], %c2
// CHECK: scf.for %[[J:.*]] = %[[LO]] to %[[HI]] step %c3 {
// CHECK-NEXT: memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]]]
func.func @strided(%m: memref<6x200003xf32>, %v: f32) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c6 = arith.constant 6 : index
  %c200003 = arith.constant 200003 : index
  scf.parallel (%i, %j) = (%c1, %c2) to (%c6, %c200003) step (%c2, %c3) {
    memref.store %v, %m[%i, %j] : memref<6x200003xf32>
    scf.reduce
  }
  return
}

// -----

// Iterations whose count would overflow (an IR file may claim any bounds;
// a call's work is unknown, so each iteration would stand alone): left as
// they are, the first dim parallel.
// CHECK-LABEL: func @huge
// CHECK: scf.parallel (%{{.*}}) = (%c0) to (%c2) step (%c1) {
// CHECK-NEXT: scf.for %{{.*}} = %c0 to %c{{[0-9]+}} step %c1 {
func.func private @visit(index, index)
func.func @huge() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %big = arith.constant 4611686018427387904 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c2, %big) step (%c1, %c1) {
    func.call @visit(%i, %j) : (index, index) -> ()
    scf.reduce
  }
  return
}
