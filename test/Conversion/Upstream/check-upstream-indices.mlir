// RUN: kiln-opt --kiln-check-upstream-indices %s | FileCheck %s
// Element accesses of upstream ops whose indices are not constants in range
// run only when every index is in [0, size); otherwise the first bad index
// is reported at the op's site and a neutral value is used.

// CHECK: module attributes {kiln.error_sites = ["tensor.empty at {{.*}}check-upstream-indices.mlir:91:8: negative size {index}", "tensor.empty at {{.*}}:91:8: the shape{{.}}s nonzero sizes multiply to more than 2^59", "tensor.extract at {{.*}}:27:8", "tensor.insert at {{.*}}:40:8", "memref.load at {{.*}}:56:8", "memref.store at {{.*}}:57:3", "tensor.extract at {{.*}}:70:8", "memref.atomic_rmw at {{.*}}:107:10", "memref.generic_atomic_rmw at {{.*}}:108:8"]}

// CHECK-LABEL: func.func @extract
// CHECK-SAME: (%[[X:.*]]: tensor<4x5xf32>, %[[I:.*]]: index, %[[J:.*]]: index)
// CHECK: %[[C4:.*]] = arith.constant 4 : index
// CHECK: %[[OK0:.*]] = arith.cmpi ult, %[[I]], %[[C4]] : index
// CHECK: %[[C5:.*]] = arith.constant 5 : index
// CHECK: %[[OK1:.*]] = arith.cmpi ult, %[[J]], %[[C5]] : index
// CHECK: %[[OK:.*]] = arith.andi %[[OK0]], %[[OK1]] : i1
// CHECK: %[[R:.*]] = scf.if %[[OK]] -> (f32) {
// CHECK:   %[[E:.*]] = tensor.extract %[[X]][%[[I]], %[[J]]] : tensor<4x5xf32>
// CHECK:   scf.yield %[[E]] : f32
// CHECK: } else {
// CHECK:   scf.if
// CHECK:     kiln.report_index_error %{{.*}}, %{{.*}} {site = 2 : i64}
// CHECK:   scf.if
// CHECK:     kiln.report_index_error %{{.*}}, %{{.*}} {site = 2 : i64}
// CHECK:   %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:   scf.yield %[[ZERO]] : f32
// CHECK: return %[[R]]
func.func @extract(%x: tensor<4x5xf32>, %i: index, %j: index) -> f32 {
  %e = tensor.extract %x[%i, %j] : tensor<4x5xf32>
  return %e : f32
}

// An insert out of range leaves its destination as it was.
// CHECK-LABEL: func.func @insert
// CHECK-SAME: (%[[X:.*]]: tensor<4xi64>, %[[I:.*]]: index, %[[V:.*]]: i64)
// CHECK: scf.if %{{.*}} -> (tensor<4xi64>) {
// CHECK:   tensor.insert %[[V]] into %[[X]][%[[I]]]
// CHECK: } else {
// CHECK:   kiln.report_index_error %{{.*}}, %{{.*}} {site = 3 : i64}
// CHECK:   scf.yield %[[X]] : tensor<4xi64>
func.func @insert(%x: tensor<4xi64>, %i: index, %v: i64) -> tensor<4xi64> {
  %r = tensor.insert %v into %x[%i] : tensor<4xi64>
  return %r : tensor<4xi64>
}

// Memrefs, including a dynamic size (memref.dim); a store out of range is
// skipped.
// CHECK-LABEL: func.func @memref
// CHECK: %[[N:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?xf64>
// CHECK: arith.cmpi ult, %{{.*}}, %[[N]] : index
// CHECK: scf.if %{{.*}} -> (f64) {
// CHECK:   memref.load
// CHECK: %[[OK:.*]] = arith.cmpi ult
// CHECK: scf.if %[[OK]] {
// CHECK-NEXT: memref.store
// CHECK-NEXT: } else {
func.func @memref(%m: memref<?xf64>, %i: index, %j: index) {
  %v = memref.load %m[%i] : memref<?xf64>
  memref.store %v, %m[%j] : memref<?xf64>
  return
}

// Constant indices in range need no check; a dynamic dim is checked even
// with a constant index.
// CHECK-LABEL: func.func @constants
// CHECK: %[[A:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<4xf32>
// CHECK: scf.if
// CHECK: tensor.extract %{{.*}}[%{{.*}}] : tensor<?xf32>
func.func @constants(%x: tensor<4xf32>, %y: tensor<?xf32>) -> (f32, f32) {
  %c3 = arith.constant 3 : index
  %a = tensor.extract %x[%c3] : tensor<4xf32>
  %b = tensor.extract %y[%c3] : tensor<?xf32>
  return %a, %b : f32, f32
}

// Dynamic sizes of ops that make tensors: a negative one is reported and
// made 0; then a shape beyond 2^59 elements (the static sizes' product, 3,
// times the dynamic ones) is reported and every dynamic size made 0.
// CHECK-LABEL: func.func @sizes
// CHECK-SAME: (%[[N:.*]]: index)
// CHECK: %[[NEG:.*]] = arith.cmpi slt, %[[N]], %{{.*}} : index
// CHECK: scf.if %[[NEG]] {
// CHECK:   kiln.report_index_error %{{.*}}, %{{.*}} {site = 0 : i64}
// CHECK: %[[N0:.*]] = arith.select %[[NEG]], %{{.*}}, %[[N]] : index
// CHECK: %[[LIMIT:.*]] = arith.divui %{{.*}}, %{{.*}} : index
// CHECK: %[[OVER:.*]] = arith.cmpi ugt, %{{.*}}, %[[LIMIT]] : index
// CHECK: %[[TOO_LARGE:.*]] = arith.ori %{{.*}}, %[[OVER]] : i1
// CHECK: scf.if %[[TOO_LARGE]] {
// CHECK:   kiln.report_index_error %{{.*}}, %{{.*}} {site = 1 : i64}
// CHECK: %[[SIZE:.*]] = arith.select %[[TOO_LARGE]], %{{.*}}, %[[N0]] : index
// CHECK: tensor.empty(%[[SIZE]]) : tensor<3x?xf32>
func.func @sizes(%n: index) -> tensor<3x?xf32> {
  %e = tensor.empty(%n) : tensor<3x?xf32>
  return %e : tensor<3x?xf32>
}

// Atomic updates are element accesses too: guarded, the old value zero
// when the index is bad (an index from data wrote past the buffer).
// CHECK-LABEL: func.func @atomic
// CHECK: scf.if %{{.*}} -> (f32) {
// CHECK-NEXT:  memref.atomic_rmw addf
// CHECK: } else {
// CHECK:   kiln.report_index_error
// CHECK: scf.if %{{.*}} -> (f32) {
// CHECK-NEXT:  memref.generic_atomic_rmw
// CHECK: } else {
// CHECK:   kiln.report_index_error
func.func @atomic(%m: memref<5xf32>, %i: index, %v: f32) -> (f32, f32) {
  %old = memref.atomic_rmw addf %v, %m[%i] : (f32, memref<5xf32>) -> f32
  %g = memref.generic_atomic_rmw %m[%i] : memref<5xf32> {
  ^bb0(%cur: f32):
    %n = arith.mulf %cur, %v : f32
    memref.atomic_yield %n : f32
  }
  return %old, %g : f32, f32
}
