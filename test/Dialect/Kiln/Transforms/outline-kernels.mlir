// RUN: kiln-opt %s -kiln-outline-kernels | FileCheck %s

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
// CHECK:       func.func private @[[ADD]](%[[IN:.*]]: memref<8xf32>, %[[OUT:.*]]: memref<8xf32>) attributes {llvm.linkage = #llvm.linkage<internal>}
// CHECK-NEXT:    %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:    linalg.generic
// CHECK-SAME:      ins(%[[IN]] : memref<8xf32>) outs(%[[OUT]] : memref<8xf32>)
// CHECK:           arith.addf %{{.*}}, %[[ONE]]
// CHECK:         return
// CHECK:       func.func private @[[LOOP]](%[[INIT:.*]]: f32, %[[M:.*]]: memref<8xf32>) -> f32
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
