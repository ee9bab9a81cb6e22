// RUN: kiln-opt %s --kiln-cpu-pipeline --mlir-print-ir-after=buffer-results-to-out-params -o /dev/null 2>&1 | FileCheck %s

// put updates its result in a sequential loop. After bufferization the loop
// still carries the buffer it updates in place; the pipeline's
// canonicalization folds that, so the result is the loop's allocation and
// buffer-results-to-out-params computes it in the caller's buffer: the base
// is copied once, into the out-parameter, and nothing is copied at return.
// CHECK-LABEL: func.func @f(
// CHECK-SAME:    %[[BASE:[a-z0-9]+]]: memref<64xf32>, %{{.*}}: memref<64xi64>, %{{.*}}: memref<64xf32>, %[[OUT:[a-z0-9]+]]: memref<64xf32>)
// CHECK-NOT:   memref.alloc() {{.*}} : memref<64xf32>
// CHECK:       memref.copy %[[BASE]], %[[OUT]]
// CHECK-NOT:   memref.copy
// CHECK:       scf.for
// CHECK:         memref.store %{{.*}}, %[[OUT]]
// CHECK-NOT:   memref.copy
// CHECK:       return
func.func @f(%b: tensor<64xf32>, %i: tensor<64xi64>, %s: tensor<64xf32>) -> tensor<64xf32> {
  %r = kiln.put %b, %i, %s {accumulate = true} : tensor<64xf32>, tensor<64xi64>, tensor<64xf32>
  return %r : tensor<64xf32>
}
