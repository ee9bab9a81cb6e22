// RUN: kiln-opt %s -split-input-file -verify-diagnostics --kiln-map-to-gpu | FileCheck %s

// An elementwise generic with a broadcast operand: one thread per point
// (the innermost dim fastest), operands loaded through their maps.
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @elementwise
// CHECK-DAG:     %[[ONE:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[THREADS:.*]] = arith.constant 32 : index
// CHECK:         gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in ({{.*}} = %{{.*}}, {{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in ({{.*}} = %[[THREADS]],
// CHECK:           %[[BASE:.*]] = arith.muli %[[BX]]
// CHECK:           %[[LINEAR:.*]] = arith.addi %[[BASE]], %[[TX]]
// CHECK:           %[[J:.*]] = arith.remui %[[LINEAR]]
// CHECK:           %[[X:.*]] = memref.load %arg0[%[[I:.*]], %[[J]]]
// CHECK:           %[[Y:.*]] = memref.load %arg1[%[[I]]]
// CHECK:           %[[S:.*]] = arith.addf %[[X]], %[[Y]]
// CHECK:           memref.store %[[S]], %arg2[%[[I]], %[[J]]]
// CHECK:           gpu.terminator
// CHECK-NOT:     linalg.generic
func.func @elementwise(%a: memref<4x8xf32>, %b: memref<4xf32>, %out: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : memref<4x8xf32>, memref<4xf32>) outs(%out : memref<4x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A count that is not a multiple of the block: threads past the end do
// nothing. Reduction dims run as a sequential loop in each thread.
#in = affine_map<(d0, d1) -> (d0, d1)>
#out = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @reduction
// CHECK:         gpu.launch
// CHECK:           %[[IN:.*]] = arith.cmpi ult, %{{.*}}, %c300
// CHECK:           scf.if %[[IN]] {
// CHECK:             scf.for %[[K:.*]] = %c0 to %c5 step %{{.*}} {
// CHECK:               memref.load %arg0[%{{.*}}, %[[K]]]
// CHECK:               memref.load %arg1[
// CHECK:               arith.addf
// CHECK:               memref.store
func.func @reduction(%a: memref<300x5xf32>, %out: memref<300xf32>) {
  linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction"]}
      ins(%a : memref<300x5xf32>) outs(%out : memref<300xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.addf %acc, %x : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// memref.copy (e.g. into an out-parameter) becomes a copy kernel; buffers
// are freed after their last use.
// CHECK-LABEL: func.func @copy
// CHECK:         %[[BUF:.*]] = memref.alloc() : memref<16xf32>
// CHECK:         gpu.launch
// CHECK:           memref.load %arg0
// CHECK:           memref.store %{{.*}}, %[[BUF]]
// CHECK:         gpu.launch
// CHECK:           memref.load %[[BUF]]
// CHECK:           memref.store %{{.*}}, %arg1
// CHECK:         memref.dealloc %[[BUF]]
// CHECK-NEXT:    return
func.func @copy(%a: memref<16xf32>, %out: memref<16xf32>) {
  %buf = memref.alloc() : memref<16xf32>
  memref.copy %a, %buf : memref<16xf32> to memref<16xf32>
  memref.copy %buf, %out : memref<16xf32> to memref<16xf32>
  return
}

// -----

// A constant tensor is read inside the kernel that copies it to a device
// buffer (the outlined kernel module gets the global).
memref.global "private" constant @cst : memref<3xf32> = dense<[1.0, 2.0, 3.0]>
// CHECK-LABEL: func.func @constant
// CHECK:         %[[BUF:.*]] = memref.alloc() : memref<3xf32>
// CHECK:         gpu.launch
// CHECK:           %[[G:.*]] = memref.get_global @cst
// CHECK:           memref.load %[[G]]
// CHECK:           memref.store %{{.*}}, %[[BUF]]
// CHECK:         gpu.launch
// CHECK-NOT:       memref.get_global
// CHECK:           memref.load %[[BUF]]
func.func @constant(%out: memref<3xf32>) {
  %g = memref.get_global @cst : memref<3xf32>
  memref.copy %g, %out : memref<3xf32> to memref<3xf32>
  return
}

// -----

// Sequential loops (scatter_add's accumulation) and index reports run on
// one thread, in order. The report keeps the least (site, index, size) in
// the record the runtime provides (GpuErrorRecord.h): its filter key
// (site 3 in the top bits, the index clamped and biased below) is
// max-reduced as INT64_MAX - key into word 5; a report that is not beaten
// there takes the lock (word 4, an atomic exchange, retried until held),
// reads words 0-3 atomically and replaces them when it is less, between
// an acquire and a release fence.
// CHECK-LABEL: func.func @serial
// CHECK:         %[[REC:.*]] = call @kiln_gpu_error_record() : () -> memref<6xi64>
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c1{{.*}})
// CHECK:           scf.for
// CHECK:             %[[J:.*]] = memref.load
// CHECK:             scf.if
// CHECK:               %[[SITE:.*]] = arith.constant 3 : i64
// CHECK:               %[[LO:.*]] = arith.constant -140737488355328 : i64
// CHECK:               %[[A:.*]] = arith.maxsi %[[J]], %[[LO]]
// CHECK:               %[[HI:.*]] = arith.constant 140737488355327 : i64
// CHECK:               %[[B:.*]] = arith.minsi %[[A]], %[[HI]]
// CHECK:               %[[BASE:.*]] = arith.constant 985162418487296 : i64
// CHECK:               %[[KEY:.*]] = arith.addi %[[B]], %[[BASE]]
// CHECK:               %[[MINE:.*]] = arith.subi %{{.*}}, %[[KEY]]
// CHECK:               %[[BEST:.*]] = memref.atomic_rmw maxs %[[MINE]], %[[REC]][%c5]
// CHECK:               %[[CANDIDATE:.*]] = arith.cmpi sle, %[[BEST]], %[[MINE]]
// CHECK:               scf.if %[[CANDIDATE]] {
// CHECK:                 scf.while
// CHECK:                   %[[HELD:.*]] = memref.atomic_rmw assign %c1_i64, %[[REC]][%c4{{.*}}]
// CHECK:                   %[[ACQUIRED:.*]] = arith.cmpi eq, %[[HELD]]
// CHECK:                   scf.if %[[ACQUIRED]] {
// CHECK:                     llvm.fence acquire
// CHECK-COUNT-4:             memref.atomic_rmw addi
// CHECK:                     scf.if
// CHECK:                       memref.atomic_rmw assign %[[SITE]], %[[REC]][%c1{{.*}}]
// CHECK:                       memref.atomic_rmw assign %[[J]], %[[REC]][%c2{{.*}}]
// CHECK:                       memref.atomic_rmw assign %{{.*}}, %[[REC]][%c3{{.*}}]
// CHECK:                       memref.atomic_rmw assign %{{.*}}, %[[REC]][%c0{{.*}}]
// CHECK:                     }
// CHECK:                     llvm.fence release
// CHECK:                     memref.atomic_rmw assign %{{.*}}, %[[REC]][%c4{{.*}}]
// CHECK:                   scf.yield %[[ACQUIRED]]
// CHECK-NOT:       kiln.report_index_error
func.func @serial(%idx: memref<4xi64>, %src: memref<4xf32>, %out: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : i64
  %zero = arith.constant 0 : i64
  scf.for %i = %c0 to %c4 step %c1 {
    %j = memref.load %idx[%i] : memref<4xi64>
    %neg = arith.cmpi slt, %j, %zero : i64
    %big = arith.cmpi sge, %j, %c8 : i64
    %bad = arith.ori %neg, %big : i1
    scf.if %bad {
      kiln.report_index_error %j, %c8 {site = 3 : i64}
    }
    %safe = arith.select %bad, %zero, %j : i64
    %k = arith.index_cast %safe : i64 to index
    %v = memref.load %src[%i] : memref<4xf32>
    %o = memref.load %out[%k] : memref<8xf32>
    %s = arith.addf %o, %v : f32
    memref.store %s, %out[%k] : memref<8xf32>
  }
  return
}

// -----

// A value computed from memory that host code needs cannot stay on the
// host (its buffers are device memory).
func.func @host_needs_value(%a: memref<4xindex>, %out: memref<?xf32>) -> memref<?xf32> {
  %c0 = arith.constant 0 : index
  %n = memref.load %a[%c0] : memref<4xindex>
  // expected-error @below {{'memref.alloc' op computes a value the host needs; it cannot run on the GPU}}
  %buf = memref.alloc(%n) : memref<?xf32>
  return %buf : memref<?xf32>
}

// -----

// A scatter of one position whose loop was folded away: the scattered
// value is computed, then the result is allocated and the base copied into
// it, then the value stored. The allocation and the copy (which touches
// neither the index nor the source) go before the computation: the copy's
// kernel first, then one serial kernel computing and storing the value.
// Before, the computation's kernel ended at the copy, and the store needed
// its value on the host (the gradient of topk with k = 1 of a 1x2 tensor,
// a scatter_add of one position, did not compile for the GPU).
// CHECK-LABEL: func.func @hoisted_copy
// CHECK:         %[[RESULT:.*]] = memref.alloc() : memref<2xf32>
// CHECK:         gpu.launch
// CHECK:           memref.load %arg2
// CHECK:           memref.store %{{.*}}, %[[RESULT]]
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c1
// CHECK:           %[[J:.*]] = memref.load %arg0
// CHECK:           %[[K:.*]] = arith.index_cast %[[J]]
// CHECK:           %[[V:.*]] = memref.load %arg1
// CHECK:           memref.store %[[V]], %[[RESULT]][%[[K]]]
// CHECK:         return %[[RESULT]]
func.func @hoisted_copy(%idx: memref<1xi64>, %src: memref<1xf32>, %base: memref<2xf32>) -> memref<2xf32> {
  %c0 = arith.constant 0 : index
  %j = memref.load %idx[%c0] : memref<1xi64>
  %k = arith.index_cast %j : i64 to index
  %v = memref.load %src[%c0] : memref<1xf32>
  %result = memref.alloc() : memref<2xf32>
  memref.copy %base, %result : memref<2xf32> to memref<2xf32>
  memref.store %v, %result[%k] : memref<2xf32>
  return %result : memref<2xf32>
}

// -----

// A copy that does not commute with the ops before it (they read what it
// writes) keeps its place, and the value after it stays an error.
func.func @copy_kept(%idx: memref<1xi64>, %base: memref<2xf32>, %out: memref<2xf32>) {
  %c0 = arith.constant 0 : index
  // expected-error @below {{'memref.load' op computes a value the host needs; it cannot run on the GPU}}
  %v = memref.load %out[%c0] : memref<2xf32>
  %j = memref.load %idx[%c0] : memref<1xi64>
  %k = arith.index_cast %j : i64 to index
  memref.copy %base, %out : memref<2xf32> to memref<2xf32>
  memref.store %v, %out[%k] : memref<2xf32>
  return
}

// -----

// A bufferized scf.forall (a line-parallel scatter) is one kernel with a
// thread per iteration; its body is cloned with the iteration's indices.
// CHECK-LABEL: func.func @forall
// CHECK-NOT:   scf.forall
// CHECK:       gpu.launch blocks({{.*}}) in ({{.*}} = %c2{{.*}}) threads({{.*}}) in ({{.*}} = %c256
// CHECK:         arith.cmpi ult, %{{.*}}, %c300
// CHECK:         scf.if
// CHECK:           memref.subview
// CHECK:           scf.for
func.func @forall(%idx: memref<4x300xi64>, %src: memref<4x300xf32>, %out: memref<8x300xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.forall (%line) in (300) {
    %col = memref.subview %out[0, %line] [8, 1] [1, 1] : memref<8x300xf32> to memref<8x1xf32, strided<[300, 1], offset: ?>>
    scf.for %t = %c0 to %c4 step %c1 {
      %j = memref.load %idx[%t, %line] : memref<4x300xi64>
      %k = arith.index_cast %j : i64 to index
      %v = memref.load %src[%t, %line] : memref<4x300xf32>
      %o = memref.load %col[%k, %c0] : memref<8x1xf32, strided<[300, 1], offset: ?>>
      %s = arith.addf %o, %v : f32
      memref.store %s, %col[%k, %c0] : memref<8x1xf32, strided<[300, 1], offset: ?>>
    }
  }
  return
}

// -----

// Only normalized loops (from 0 in steps of 1) map to threads.
func.func @forall_steps(%out: memref<8xf32>) {
  %f = arith.constant 1.0 : f32
  // expected-error @+1 {{'scf.forall' op needs static bounds from 0 in steps of 1 on the GPU}}
  scf.forall (%i) = (0) to (8) step (2) {
    memref.store %f, %out[%i] : memref<8xf32>
  }
  return
}
