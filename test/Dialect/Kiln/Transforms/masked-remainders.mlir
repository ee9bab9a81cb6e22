// RUN: kiln-opt --kiln-masked-remainders --canonicalize --split-input-file %s | FileCheck %s
// RUN: kiln-opt --kiln-masked-remainders --remarks-filter=kiln-lower --split-input-file %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK

// A row of 127 f32 with a broadcast bias and a per-row scale: 64 iterations
// stay scalar (a multiple of every step LLVM's vector loop takes), 48 run
// as three vectors, the last 15 as one masked vector. The scale, the same
// in every iteration, stays a scalar load, broadcast.
// CHECK-LABEL: func @rows
// CHECK: scf.for %[[I:.*]] = %c0 to %c8 step %c1 {
// CHECK-NEXT: scf.for %[[J:.*]] = %c0 to %c64 step %c1 {
// CHECK: memref.store %{{.*}} : memref<8x127xf32>
// CHECK: scf.for %[[K:.*]] = %c64 to %c112 step %c16 {
// CHECK-NEXT: vector.load %arg0[%[[I]], %[[K]]] : memref<8x127xf32>, vector<16xf32>
// CHECK-NEXT: vector.load %arg1[%[[K]]] : memref<127xf32>, vector<16xf32>
// CHECK-NEXT: %[[S:.*]] = memref.load %arg2[%[[I]]] : memref<8xf32>
// CHECK-NEXT: arith.addf %{{.*}} : vector<16xf32>
// CHECK-NEXT: vector.broadcast %[[S]] : f32 to vector<16xf32>
// CHECK-NEXT: arith.mulf %{{.*}} : vector<16xf32>
// CHECK-NEXT: vector.store %{{.*}}, %arg3[%[[I]], %[[K]]]
// CHECK: %[[M:.*]] = vector.constant_mask [15] : vector<16xi1>
// CHECK-NEXT: vector.maskedload %arg0[%[[I]], %c112], %[[M]]
// CHECK-NEXT: vector.maskedload %arg1[%c112], %[[M]]
// CHECK: vector.maskedstore %arg3[%[[I]], %c112], %[[M]]
// REMARK: remark: [Analysis] MaskedRemainder | Category:kiln-lower | Function=rows | Remark="a loop of the kernel over 127 iterations: 64 run in LLVM's vector loop; the other 63, which LLVM would run one at a time, run as 3 vector(s) of 16 lanes and a masked vector of 15", iterations=127, lanes=16
func.func @rows(%x: memref<8x127xf32>, %b: memref<127xf32>, %s: memref<8xf32>,
                %y: memref<8x127xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1, 2, 3>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c127 = arith.constant 127 : index
  scf.for %i = %c0 to %c8 step %c1 {
    scf.for %j = %c0 to %c127 step %c1 {
      %a = memref.load %x[%i, %j] : memref<8x127xf32>
      %c = memref.load %b[%j] : memref<127xf32>
      %k = memref.load %s[%i] : memref<8xf32>
      %d = arith.addf %a, %c : f32
      %e = arith.mulf %d, %k : f32
      memref.store %e, %y[%i, %j] : memref<8x127xf32>
    }
  }
  return
}

// -----

// Rows of 33 f32: 32 as two whole vectors, the one iteration left as a
// plain step of one lane (no mask for a single lane). A constant one-lane
// mask in each of the 512 rows LLVM unrolled kept its instruction
// selection busy for more than 20 minutes (with the fill below).
// CHECK-LABEL: func @one_left
// CHECK: scf.for %[[K:.*]] = %c0 to %c32 step %c16 {
// CHECK: vector.load %arg0[%{{.*}}, %[[K]]] : memref<8x33xf32>, vector<16xf32>
// CHECK-NOT: mask
// CHECK: vector.load %arg0[%{{.*}}, %c32] : memref<8x33xf32>, vector<1xf32>
// CHECK-NOT: mask
// CHECK: vector.store %{{.*}}, %arg1[%{{.*}}, %c32] : memref<8x33xf32>, vector<1xf32>
// CHECK-NOT: mask
// CHECK: return
// REMARK: Function=one_left | Remark="a loop of the kernel over 33 iterations: 0 run in LLVM's vector loop; the other 33, which LLVM would run one at a time, run as 2 vector(s) of 16 lanes and one lane, unmasked"
func.func @one_left(%x: memref<8x33xf32>, %y: memref<8x33xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c33 = arith.constant 33 : index
  scf.for %i = %c0 to %c8 step %c1 {
    scf.for %j = %c0 to %c33 step %c1 {
      %a = memref.load %x[%i, %j] : memref<8x33xf32>
      %e = math.exp %a : f32
      memref.store %e, %y[%i, %j] : memref<8x33xf32>
    }
  }
  return
}

// -----

// A fill (the same value stored in every iteration, nothing reduced) is
// left to LLVM, whose loop idioms make it a memset of the whole nest:
// masked, a zero fill of 8x64x33 f32 became 512 unrolled rows of a memset
// and a masked lane, and LLVM's instruction selection took superlinear
// time over them (8x64x47: 1.9 s to compile; 8x64x33: over 20 minutes).
// CHECK-LABEL: func @fill
// CHECK-NOT: vector
// CHECK: return
// REMARK-NOT: Function=fill
func.func @fill(%v: f32, %y: memref<8x64x33xf32>)
    attributes {kiln.buffer_groups = array<i64: -1, 0>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %c33 = arith.constant 33 : index
  %z = arith.constant 0.0 : f32
  scf.for %i = %c0 to %c8 step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      scf.for %k = %c0 to %c33 step %c1 {
        memref.store %z, %y[%i, %j, %k] : memref<8x64x33xf32>
      }
    }
  }
  return
}

// -----

// A trip count that is a multiple of a 512-bit vector: LLVM's remainder,
// if any, is whole vectors. Left alone.
// CHECK-LABEL: func @whole
// CHECK-NOT: vector
func.func @whole(%x: memref<128xf32>, %y: memref<128xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  scf.for %j = %c0 to %c128 step %c1 {
    %a = memref.load %x[%j] : memref<128xf32>
    %e = math.exp %a : f32
    memref.store %e, %y[%j] : memref<128xf32>
  }
  return
}

// -----

// Ten f64 are shorter than the block: no scalar iteration is left, one
// vector of 8 and a masked one of 2.
// CHECK-LABEL: func @short
// CHECK-NOT: scf.for
// CHECK: vector.load %arg0[%c0] : memref<10xf64>, vector<8xf64>
// CHECK: vector.store
// CHECK: %[[M:.*]] = vector.constant_mask [2] : vector<8xi1>
// CHECK: vector.maskedload %arg0[%c8], %[[M]]
// CHECK: vector.maskedstore %arg1[%c8], %[[M]]
// REMARK: Function=short | Remark="a loop of the kernel over 10 iterations: 0 run in LLVM's vector loop; the other 10, which LLVM would run one at a time, run as 1 vector(s) of 8 lanes and a masked vector of 2", iterations=10, lanes=8
func.func @short(%x: memref<10xf64>, %y: memref<10xf64>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c10 = arith.constant 10 : index
  scf.for %j = %c0 to %c10 step %c1 {
    %a = memref.load %x[%j] : memref<10xf64>
    %e = math.sqrt %a : f64
    memref.store %e, %y[%j] : memref<10xf64>
  }
  return
}

// -----

// Fewer iterations than a vector holds (LLVM unrolls such loops, and later
// loads of the same bytes could not take their data from a masked store):
// left alone.
// CHECK-LABEL: func @shorter_than_a_vector
// CHECK-NOT: vector
func.func @shorter_than_a_vector(%x: memref<10xf32>, %y: memref<10xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c10 = arith.constant 10 : index
  scf.for %j = %c0 to %c10 step %c1 {
    %a = memref.load %x[%j] : memref<10xf32>
    %e = math.sqrt %a : f32
    memref.store %e, %y[%j] : memref<10xf32>
  }
  return
}

// -----

// An update in place of elements an enclosing loop revisits (C[i, j] +=
// A[i, k] * B[k, j], k outside j) is left alone: each masked store would
// be read back by the next k's masked load, which cannot take its data
// from the store. Where the enclosing loop's variable indexes the update
// (a row per iteration), the remainder is masked.
// CHECK-LABEL: func @accumulate
// CHECK: scf.for %{{.*}} = %c0 to %c8 step %c1 {
// CHECK: scf.for %{{.*}} = %c0 to %c20 step %c1 {
// CHECK-NOT: vector
// CHECK-LABEL: func @update_rows
// CHECK: vector.maskedstore
func.func @accumulate(%a: memref<8xf32>, %b: memref<8x20xf32>, %c: memref<20xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1, 2>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c20 = arith.constant 20 : index
  scf.for %k = %c0 to %c8 step %c1 {
    %s = memref.load %a[%k] : memref<8xf32>
    scf.for %j = %c0 to %c20 step %c1 {
      %x = memref.load %b[%k, %j] : memref<8x20xf32>
      %o = memref.load %c[%j] : memref<20xf32>
      %p = arith.mulf %s, %x : f32
      %n = arith.addf %o, %p : f32
      memref.store %n, %c[%j] : memref<20xf32>
    }
  }
  return
}
func.func @update_rows(%b: memref<8x20xf32>)
    attributes {kiln.buffer_groups = array<i64: 0>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c20 = arith.constant 20 : index
  scf.for %k = %c0 to %c8 step %c1 {
    scf.for %j = %c0 to %c20 step %c1 {
      %x = memref.load %b[%k, %j] : memref<8x20xf32>
      %n = arith.addf %x, %x : f32
      memref.store %n, %b[%k, %j] : memref<8x20xf32>
    }
  }
  return
}

// -----

// A dynamic trip count: the masked step runs when iterations are left.
// CHECK-LABEL: func @dynamic
// CHECK: %[[MAIN:.*]] = arith.muli %{{.*}}, %c64 : index
// CHECK: scf.for %{{.*}} = %c0 to %[[MAIN]] step %c1 {
// CHECK: memref.store
// CHECK: scf.for %{{.*}} = %[[MAIN]] to %[[WHOLE:.*]] step %c16 {
// CHECK: vector.store
// CHECK: %[[REST:.*]] = arith.subi %arg2, %[[WHOLE]] : index
// CHECK: %[[ANY:.*]] = arith.cmpi sgt, %[[REST]], %c0 : index
// CHECK: scf.if %[[ANY]] {
// CHECK-NEXT: %[[M:.*]] = vector.create_mask %[[REST]] : vector<16xi1>
// CHECK: vector.maskedload %arg0[%[[WHOLE]]], %[[M]]
// CHECK: vector.maskedstore %arg1[%[[WHOLE]]], %[[M]]
// REMARK: Function=dynamic | Remark="a loop of the kernel: the iterations after the last multiple of 64 run as vectors of 16 lanes, the last one masked, not one at a time"
func.func @dynamic(%x: memref<?xf32>, %y: memref<?xf32>, %n: index)
    attributes {kiln.buffer_groups = array<i64: 0, 1, -1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %j = %c0 to %n step %c1 {
    %a = memref.load %x[%j] : memref<?xf32>
    %e = arith.negf %a : f32
    memref.store %e, %y[%j] : memref<?xf32>
  }
  return
}

// -----

// The induction variable as data (arange): a vector of the lanes' indices
// (i64 and index: eight lanes, blocks of 32). An offset address (x[j + 1])
// is still one vector load.
// CHECK-LABEL: func @iota
// CHECK: scf.for %{{.*}} = %c0 to %c32 step %c1 {
// CHECK: memref.store
// CHECK: vector.load %arg0[%c33] : memref<46xi64>, vector<8xi64>
// CHECK: %[[STEP:.*]] = vector.step : vector<8xindex>
// CHECK: %[[LANES:.*]] = arith.addi %[[STEP]], %{{.*}} : vector<8xindex>
// CHECK: arith.index_cast %[[LANES]] : vector<8xindex> to vector<8xi64>
// CHECK: vector.store %{{.*}}, %arg1[%c32]
// CHECK: vector.constant_mask [5] : vector<8xi1>
func.func @iota(%x: memref<46xi64>, %y: memref<45xi64>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c45 = arith.constant 45 : index
  scf.for %j = %c0 to %c45 step %c1 {
    %n = arith.addi %j, %c1 : index
    %a = memref.load %x[%n] : memref<46xi64>
    %i = arith.index_cast %j : index to i64
    %s = arith.addi %a, %i : i64
    memref.store %s, %y[%j] : memref<45xi64>
  }
  return
}

// -----

// In place: each iteration reads and writes its own element.
// CHECK-LABEL: func @in_place
// CHECK: vector.maskedload %arg0
// CHECK: vector.maskedstore %arg0
func.func @in_place(%x: memref<20xf32>) attributes {kiln.buffer_groups = array<i64: 0>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %x[%j] : memref<20xf32>
    %e = arith.mulf %a, %a : f32
    memref.store %e, %x[%j] : memref<20xf32>
  }
  return
}

// -----

// A view the body makes from loop-invariant values: the vector steps use
// their own copy of it.
// CHECK-LABEL: func @view_in_body
// CHECK: %[[V:.*]] = memref.subview %arg0[%arg2, 0] [1, 20] [1, 1]
// CHECK-NEXT: vector.load %[[V]][%c0]
// CHECK: %[[W:.*]] = memref.subview %arg0[%arg2, 0] [1, 20] [1, 1]
// CHECK: vector.maskedload %[[W]][%c16]
func.func @view_in_body(%x: memref<4x20xf32>, %y: memref<20xf32>, %r: index)
    attributes {kiln.buffer_groups = array<i64: 0, 1, -1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  scf.for %j = %c0 to %c20 step %c1 {
    %v = memref.subview %x[%r, 0] [1, 20] [1, 1]
        : memref<4x20xf32> to memref<20xf32, strided<[1], offset: ?>>
    %a = memref.load %v[%j] : memref<20xf32, strided<[1], offset: ?>>
    memref.store %a, %y[%j] : memref<20xf32>
  }
  return
}

// -----

// f32 read, f64 written: a step holds one register of the wider type.
// CHECK-LABEL: func @mixed
// CHECK: vector.load %arg0[%{{.*}}] : memref<20xf32>, vector<8xf32>
// CHECK: arith.extf %{{.*}} : vector<8xf32> to vector<8xf64>
// CHECK: vector.constant_mask [4] : vector<8xi1>
func.func @mixed(%x: memref<20xf32>, %y: memref<20xf64>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %x[%j] : memref<20xf32>
    %e = arith.extf %a : f32 to f64
    memref.store %e, %y[%j] : memref<20xf64>
  }
  return
}

// -----

// An exact reduction (a maximum of integer keys): the whole vectors carry
// one accumulator per lane, the masked step's off lanes hold the identity
// (INT_MIN), and the lanes are combined once with the scalar loop's value.
// CHECK-LABEL: func @max_keys
// CHECK-DAG: %[[ID:.*]] = arith.constant dense<-2147483648> : vector<16xi32>
// CHECK: %[[MAIN:.*]] = scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args(%{{.*}} = %c-2147483648_i32) -> (i32) {
// CHECK: arith.maxsi
// CHECK: %[[LANES:.*]] = scf.for %{{.*}} = %c64 to %c96 step %c16 iter_args(%[[ACC:.*]] = %[[ID]]) -> (vector<16xi32>) {
// CHECK: arith.maxsi %{{.*}}, %[[ACC]] : vector<16xi32>
// CHECK: %[[M:.*]] = vector.constant_mask [4] : vector<16xi1>
// CHECK: vector.maskedload %arg0[%c96], %[[M]]
// CHECK: %[[KEPT:.*]] = arith.select %[[M]], %{{.*}}, %[[ID]] : vector<16xi1>, vector<16xi32>
// CHECK: %[[ALL:.*]] = arith.maxsi %[[KEPT]], %[[LANES]] : vector<16xi32>
// CHECK: %[[R:.*]] = vector.reduction <maxsi>, %[[ALL]], %[[MAIN]] : vector<16xi32> into i32
// CHECK: memref.store %[[R]], %arg1[] : memref<i32>
// REMARK: Function=max_keys | Remark="a loop of the kernel over 100 iterations: 64 run in LLVM's vector loop; the other 36, which LLVM would run one at a time, run as 2 vector(s) of 16 lanes and a masked vector of 4, its 1 exact reduction(s) carried in one accumulator per lane", iterations=100, lanes=16
// REMARK-NOT: MaskedRemainder
func.func @max_keys(%x: memref<100xf32>, %y: memref<i32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c100 = arith.constant 100 : index
  %min = arith.constant -2147483648 : i32
  %r = scf.for %j = %c0 to %c100 step %c1 iter_args(%acc = %min) -> (i32) {
    %a = memref.load %x[%j] : memref<100xf32>
    %k = arith.bitcast %a : f32 to i32
    %m = arith.maxsi %acc, %k : i32
    scf.yield %m : i32
  }
  memref.store %r, %y[] : memref<i32>
  return
}

// -----

// Loops left alone, each for its reason. A later iteration reads what an
// earlier one wrote (x[j] = x[j + 1] + 1 runs forward; as vectors every
// lane would read the old x[j + 1], which is right here, but x[j + 1] =
// x[j] + 1 would not be: the pass does not tell the two apart).
// CHECK-LABEL: func @shifted
// CHECK-NOT: vector
func.func @shifted(%x: memref<21xf32>) attributes {kiln.buffer_groups = array<i64: 0>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  %one = arith.constant 1.0 : f32
  scf.for %j = %c0 to %c20 step %c1 {
    %n = arith.addi %j, %c1 : index
    %a = memref.load %x[%n] : memref<21xf32>
    %e = arith.addf %a, %one : f32
    memref.store %e, %x[%j] : memref<21xf32>
  }
  return
}

// -----

// Buffers that may overlap: no buffer groups (a function whose callers are
// not known), or the same group (two views of one allocation).
// CHECK-LABEL: func @unknown
// CHECK-NOT: vector
// CHECK-LABEL: func @same_group
// CHECK-NOT: vector
func.func @unknown(%x: memref<20xf32>, %y: memref<20xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %x[%j] : memref<20xf32>
    memref.store %a, %y[%j] : memref<20xf32>
  }
  return
}
func.func @same_group(%x: memref<20xf32>, %y: memref<20xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 0>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %x[%j] : memref<20xf32>
    memref.store %a, %y[%j] : memref<20xf32>
  }
  return
}

// -----

// A loop-carried value (a reduction: its order is the lowering's), an
// integer division (a masked-off lane's divisor may be zero), a buffer of
// i1 (a byte per element in memory, a bit per lane in a vector), a column
// walk (the induction variable indexes the outer dim), a store to the same
// element in every iteration, a call, a memref whose last dim is strided.
// CHECK-LABEL: func @left_alone
// CHECK-NOT: vector
// A float sum (its order is the lowering's), a carried value used twice.
func.func private @g(f32)
func.func @left_alone(%x: memref<20xf32>, %y: memref<20xf32>, %i: memref<20xi32>,
                      %b: memref<20xi1>, %m: memref<20x20xf32>, %s: memref<f32>,
                      %t: memref<20xf32, strided<[2]>>)
    attributes {kiln.buffer_groups = array<i64: 0, 1, 2, 3, 4, 5, 6>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  %zero = arith.constant 0.0 : f32
  %sum = scf.for %j = %c0 to %c20 step %c1 iter_args(%acc = %zero) -> (f32) {
    %a = memref.load %x[%j] : memref<20xf32>
    %n = arith.addf %acc, %a : f32
    scf.yield %n : f32
  }
  memref.store %sum, %s[] : memref<f32>
  %c0_i32 = arith.constant 0 : i32
  %twice = scf.for %j = %c0 to %c20 step %c1 iter_args(%acc = %c0_i32) -> (i32) {
    %a = memref.load %i[%j] : memref<20xi32>
    %n = arith.addi %acc, %a : i32
    %d = arith.addi %n, %acc : i32
    scf.yield %d : i32
  }
  %fi = arith.sitofp %twice : i32 to f32
  memref.store %fi, %s[] : memref<f32>
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %i[%j] : memref<20xi32>
    %q = arith.divsi %a, %a : i32
    memref.store %q, %i[%j] : memref<20xi32>
  }
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %b[%j] : memref<20xi1>
    %n = arith.xori %a, %a : i1
    memref.store %n, %b[%j] : memref<20xi1>
  }
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %m[%j, %c0] : memref<20x20xf32>
    memref.store %a, %y[%j] : memref<20xf32>
  }
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %x[%j] : memref<20xf32>
    memref.store %a, %s[] : memref<f32>
  }
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %x[%j] : memref<20xf32>
    func.call @g(%a) : (f32) -> ()
    memref.store %a, %y[%j] : memref<20xf32>
  }
  scf.for %j = %c0 to %c20 step %c1 {
    %a = memref.load %t[%j] : memref<20xf32, strided<[2]>>
    memref.store %a, %y[%j] : memref<20xf32>
  }
  return
}
