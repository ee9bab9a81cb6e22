// RUN: kiln-opt --kiln-check-upstream-indices --split-input-file %s | FileCheck %s
// A memref.alloca whose size comes from data gets the stack the constant
// ones leave (1 MiB in all, shared evenly): a larger size is reported and
// made 0, and the accesses' guards compare against the size the alloca
// really has (the checks of sizes come first, so that memref.dim folds to
// the checked size, not the size from data).

// CHECK: kiln.error_sites = [{{.*}}"memref.alloca at {{.*}}:26:8: {index} elements of 4 bytes on the stack: more than this memref.alloca's share (786432 bytes) of Kiln's 1 MiB for stack allocations; use memref.alloc"
// CHECK-LABEL: func.func @dynamic_alloca
// CHECK-SAME: (%[[N:.*]]: index
// CHECK: memref.alloca() : memref<65536xf32>
// 786432 / 4 elements:
// CHECK-DAG: %[[SHARE:.*]] = arith.constant 196608 : index
// CHECK: %[[OVER:.*]] = arith.cmpi ugt, %{{.*}}, %[[SHARE]] : index
// CHECK: %[[BAD:.*]] = arith.andi %{{.*}}, %[[OVER]] : i1
// CHECK: scf.if %[[BAD]] {
// CHECK:   kiln.report_index_error %{{.*}}, %{{.*}} {site = 2 : i64}
// CHECK: %[[ZEROED:.*]] = arith.ori %{{.*}}, %[[BAD]] : i1
// CHECK: %[[SIZE:.*]] = arith.select %[[ZEROED]], %{{.*}}, %{{.*}} : index
// CHECK: %[[M:.*]] = memref.alloca(%[[SIZE]]) : memref<?xf32>
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[N]], %[[SIZE]] : index
// CHECK: scf.if %[[IN]] {
// CHECK:   memref.store %{{.*}}, %[[M]][%[[N]]] : memref<?xf32>
func.func @dynamic_alloca(%n: index, %v: f32) -> f32 {
  %fixed = memref.alloca() : memref<65536xf32>
  %m = memref.alloca(%n) : memref<?xf32>
  memref.store %v, %m[%n] : memref<?xf32>
  %c0 = arith.constant 0 : index
  %l = memref.load %fixed[%c0] : memref<65536xf32>
  return %l : f32
}

// -----

// An i0 element counts as one byte (its size of 0 divided the share: a
// SIGFPE).
// CHECK: kiln.error_sites = [{{.*}}"memref.alloca at {{.*}}:41:8: {index} elements of 1 bytes on the stack: more than this memref.alloca's share (1048576 bytes)
// CHECK-LABEL: func.func @i0_alloca
// CHECK: arith.constant 1048576 : index
func.func @i0_alloca(%n: index) {
  %m = memref.alloca(%n) : memref<?xi0>
  return
}
