// RUN: kiln-opt %s -kiln-outline-kernels -split-input-file | FileCheck %s

// Each top-level kernel becomes a call of a private, internal function;
// the constants it uses are cloned in (bounds stay static), the buffers and
// other values become arguments, results are returned. The two identical
// generics (the same op on the same shapes, other buffers) share one
// function; the different one gets its own.
// CHECK-LABEL: func.func @f
// CHECK-SAME:    (%[[A:.*]]: memref<8xf32>, %[[B:.*]]: memref<8xf32>, %[[C:.*]]: memref<8xf32>, %[[S:.*]]: f32)
// CHECK:         call @[[ADD:kiln_kernel]](%[[A]], %[[B]]) : (memref<8xf32>, memref<8xf32>) -> ()
// CHECK-NEXT:    call @[[ADD]](%[[B]], %[[C]]) : (memref<8xf32>, memref<8xf32>) -> ()
// CHECK-NEXT:    %[[SUM:.*]] = call @[[LOOP:kiln_kernel_0]](%[[S]], %[[C]]) : (f32, memref<8xf32>) -> f32
// CHECK-NEXT:    return %[[SUM]]
// CHECK:       func.func private @[[ADD]](%[[IN:.*]]: memref<8xf32>, %[[OUT:.*]]: memref<8xf32>) attributes {kiln.buffer_groups = array<i64: 0, 1>, llvm.linkage = #llvm.linkage<internal>}
// CHECK-NEXT:    %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:    linalg.generic
// CHECK-SAME:      ins(%[[IN]] : memref<8xf32>) outs(%[[OUT]] : memref<8xf32>)
// CHECK:           arith.addf %{{.*}}, %[[ONE]]
// CHECK:         return
// CHECK:       func.func private @[[LOOP]](%[[INIT:.*]]: f32, %[[M:.*]]: memref<8xf32>) -> f32 attributes {kiln.buffer_groups = array<i64: -1, 0>
// CHECK-DAG:     arith.constant 0 : index
// CHECK-DAG:     arith.constant 8 : index
// CHECK:         %[[R:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[INIT]]) -> (f32)
// CHECK:         return %[[R]] : f32
#id = affine_map<(d0) -> (d0)>
func.func @f(%a: memref<8xf32>, %b: memref<8xf32>, %c: memref<8xf32>, %s: f32) -> f32 {
  %one = arith.constant 1.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%a : memref<8xf32>) outs(%b : memref<8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %z = arith.addf %x, %one : f32
    linalg.yield %z : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%b : memref<8xf32>) outs(%c : memref<8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %z = arith.addf %x, %one : f32
    linalg.yield %z : f32
  }
  %sum = scf.for %i = %c0 to %c8 step %c1 iter_args(%acc = %s) -> (f32) {
    %v = memref.load %c[%i] : memref<8xf32>
    %n = arith.addf %acc, %v : f32
    scf.yield %n : f32
  }
  return %sum : f32
}

// -----

// A loop whose results are vectors (a register block's accumulators) is
// outlined with the ops that use them, up to the last one (the stores, and
// the unrelated view between them): no vector crosses the call, as the
// entry and the kernel may be compiled for different vector widths. A loop
// whose vector result reaches the return stays where it is.
// CHECK-LABEL: func.func @vectors
// CHECK-SAME:    (%[[A:.*]]: memref<16xf32>, %[[B:.*]]: memref<16xf32>)
// CHECK:         %[[V:.*]] = memref.subview %[[B]][0] [8] [1]
// CHECK-NEXT:    call @[[BLOCK:kiln_kernel]](%[[A]], %[[V]], %[[B]]) : (memref<16xf32>, memref<8xf32, strided<[1]>>, memref<16xf32>) -> ()
// CHECK-NEXT:    %[[KEPT:.*]] = scf.for
// CHECK:         return %[[KEPT]] : vector<8xf32>
// The view and the buffer it views share a buffer group.
// CHECK:       func.func private @[[BLOCK]]({{.*}}) attributes {kiln.buffer_groups = array<i64: 0, 1, 1>, llvm.linkage = #llvm.linkage<internal>}
// CHECK:         %[[R:.*]]:2 = scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>)
// CHECK:         vector.transfer_write %[[R]]#0
// CHECK-NEXT:    %[[W:.*]] = memref.subview
// CHECK-NEXT:    vector.transfer_write %[[R]]#1, %[[W]]
// CHECK-NEXT:    return
// CHECK-NOT:   func.func
func.func @vectors(%a: memref<16xf32>, %b: memref<16xf32>) -> vector<8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %pad = arith.constant 0.0 : f32
  %zero = arith.constant dense<0.0> : vector<8xf32>
  %view = memref.subview %b[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  %r:2 = scf.for %i = %c0 to %c4 step %c1 iter_args(%x = %zero, %y = %zero) -> (vector<8xf32>, vector<8xf32>) {
    %l = vector.transfer_read %a[%c0], %pad {in_bounds = [true]} : memref<16xf32>, vector<8xf32>
    %nx = arith.addf %x, %l : vector<8xf32>
    %ny = arith.mulf %y, %l : vector<8xf32>
    scf.yield %nx, %ny : vector<8xf32>, vector<8xf32>
  }
  vector.transfer_write %r#0, %view[%c0] {in_bounds = [true]} : vector<8xf32>, memref<8xf32, strided<[1]>>
  %high = memref.subview %b[8] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 8>>
  vector.transfer_write %r#1, %high[%c0] {in_bounds = [true]} : vector<8xf32>, memref<8xf32, strided<[1], offset: 8>>
  %kept = scf.for %i = %c0 to %c4 step %c1 iter_args(%x = %zero) -> (vector<8xf32>) {
    %l = vector.transfer_read %a[%c0], %pad {in_bounds = [true]} : memref<16xf32>, vector<8xf32>
    %nx = arith.addf %x, %l : vector<8xf32>
    scf.yield %nx : vector<8xf32>
  }
  return %kept : vector<8xf32>
}

// -----

// kiln.buffer_groups numbers the allocation each memref argument views
// (kiln-alias-scopes tells LLVM that different groups do not overlap; -1:
// unknown or not a memref). An allocation, a global and an argument of an
// uncalled function are different allocations; two views of one
// allocation are the same; a shared kernel keeps what holds at every call
// (the third copy is of a view onto another view of the same allocation);
// the arguments of a function something calls may be anything.
// CHECK-LABEL: func.func @roots
// CHECK:         call @[[COPY:kiln_kernel]](%{{.*}}, %{{.*}}) :
// CHECK-NEXT:    call @[[COPY]](%{{.*}}, %{{.*}}) :
// CHECK-NEXT:    call @[[COPY]](%{{.*}}, %{{.*}}) :
// CHECK-NEXT:    call @[[ADD:kiln_kernel_0]](%{{.*}}, %{{.*}}, %{{.*}}) :
// CHECK:       func.func @called
// CHECK:         call @[[NEG:kiln_kernel_1]](
// CHECK:       func.func private @[[COPY]]({{.*}}) attributes {kiln.buffer_groups = array<i64: 0, 0>,
// CHECK:       func.func private @[[ADD]]({{.*}}) attributes {kiln.buffer_groups = array<i64: 0, 0, 1>,
// CHECK:       func.func private @[[NEG]]({{.*}}) attributes {kiln.buffer_groups = array<i64: -1, -1>,
#id1 = affine_map<(d0) -> (d0)>
memref.global "private" constant @table : memref<8xf32> = dense<1.0>
func.func @roots(%a: memref<8xf32>, %out: memref<8xf32>) {
  %t = memref.get_global @table : memref<8xf32>
  %buf = memref.alloc() : memref<16xf32>
  %lo = memref.subview %buf[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  %hi = memref.subview %buf[8] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 8>>
  %lo8 = memref.cast %lo : memref<8xf32, strided<[1]>> to memref<8xf32>
  %lo8b = memref.cast %lo : memref<8xf32, strided<[1]>> to memref<8xf32>
  %tmp = memref.alloc() : memref<8xf32>
  // global -> allocation, argument -> out-parameter: different groups; the
  // third call of the shared kernel copies between two views of one
  // allocation: one group at that call.
  linalg.copy ins(%t : memref<8xf32>) outs(%tmp : memref<8xf32>)
  linalg.copy ins(%a : memref<8xf32>) outs(%out : memref<8xf32>)
  linalg.copy ins(%lo8 : memref<8xf32>) outs(%lo8b : memref<8xf32>)
  // two views of one allocation (one group) and the out-parameter
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%lo8, %hi : memref<8xf32>, memref<8xf32, strided<[1], offset: 8>>) outs(%out : memref<8xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  call @called(%a, %out) : (memref<8xf32>, memref<8xf32>) -> ()
  return
}
func.func @called(%x: memref<8xf32>, %y: memref<8xf32>) {
  linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
      ins(%x : memref<8xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%u: f32, %v: f32):
    %n = arith.negf %u : f32
    linalg.yield %n : f32
  }
  return
}

// -----

// Straight-line vector code at the top level (partial sums combined in
// registers once canonicalization unrolled their loop) is a kernel too,
// from an op that makes a vector to the last that uses what it computed:
// an entry left with vectors would be optimized like a kernel, every
// kernel inlined into it. A constant vector is cloned into the kernels
// that use it (here a second one, its store), not a kernel itself.
// CHECK-LABEL: func.func @partials
// CHECK-SAME:    (%[[P:.*]]: memref<2x16xf32>, %[[OUT:.*]]: memref<16xf32>, %[[Z:.*]]: memref<16xf32>)
// CHECK:         %[[T:.*]] = memref.alloc() : memref<16xf32>
// CHECK-NEXT:    call @[[COMBINE:kiln_kernel]](%[[P]], %[[T]], %[[OUT]])
// CHECK-NEXT:    call @[[ZERO:kiln_kernel_0]](%[[Z]])
// CHECK-NEXT:    return
// CHECK:       func.func private @[[COMBINE]]
// CHECK:         vector.transfer_read
// CHECK:         vector.transfer_read
// CHECK:         arith.addf {{.*}} : vector<16xf32>
// CHECK:         vector.transfer_write
// CHECK:         vector.transfer_write
// CHECK-NEXT:    return
// CHECK:       func.func private @[[ZERO]]
// CHECK:         %[[C:.*]] = arith.constant dense<0.000000e+00> : vector<16xf32>
// CHECK:         vector.transfer_write %[[C]]
// CHECK-NEXT:    return
func.func @partials(%p: memref<2x16xf32>, %out: memref<16xf32>, %z: memref<16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %pad = arith.constant 0.0 : f32
  %zero = arith.constant dense<0.0> : vector<16xf32>
  %t = memref.alloc() : memref<16xf32>
  %a = vector.transfer_read %p[%c0, %c0], %pad {in_bounds = [true]} : memref<2x16xf32>, vector<16xf32>
  %b = vector.transfer_read %p[%c1, %c0], %pad {in_bounds = [true]} : memref<2x16xf32>, vector<16xf32>
  %s = arith.addf %a, %b : vector<16xf32>
  vector.transfer_write %s, %t[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
  vector.transfer_write %s, %out[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
  vector.transfer_write %zero, %z[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
  return
}
