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

// A result returned through a view (a reshape, a reduction's keepdim) is
// allocated at the returned shape (kiln-returned-views), so its kernel
// writes into the caller's buffer through the inverse view: no allocation,
// no copy.
// CHECK-LABEL: func.func @reshaped(
// CHECK-SAME:    %{{.*}}: memref<64x32xf32>, %[[OUT:[a-z0-9]+]]: memref<64x32x1xf32>)
// CHECK-NOT:   memref.alloc
// CHECK:       %[[FLAT:.*]] = memref.collapse_shape %[[OUT]] {{\[}}[0, 1, 2]] : memref<64x32x1xf32> into memref<2048xf32>
// CHECK:       memref.expand_shape %[[FLAT]] {{\[}}[0, 1]] output_shape [64, 32] : memref<2048xf32> into memref<64x32xf32>
// CHECK-NOT:   memref.copy {{.*}} to memref<64x32x1xf32>
// CHECK:       return
func.func @reshaped(%x: tensor<64x32xf32>) -> tensor<64x32x1xf32> {
  %p = kiln.softmax %x {dim = 1 : i64} : tensor<64x32xf32>
  %r = kiln.reshape %p : tensor<64x32xf32> -> tensor<64x32x1xf32>
  return %r : tensor<64x32x1xf32>
}

// The rank-0 sum seen as its keepdim result [1, 1].
// CHECK-LABEL: func.func @keepdim(
// CHECK-SAME:    %{{.*}}: memref<64x32xf32>, %[[OUT:[a-z0-9]+]]: memref<1x1xf32>)
// CHECK-NOT:   memref.alloc
// CHECK:       %[[FLAT:.*]] = memref.collapse_shape %[[OUT]] {{\[}}[0, 1]] : memref<1x1xf32> into memref<1xf32>
// CHECK:       %[[SCALAR:.*]] = memref.collapse_shape %[[FLAT]] [] : memref<1xf32> into memref<f32>
// CHECK:       outs(%[[SCALAR]] : memref<f32>)
// CHECK-NOT:   memref.copy
// CHECK:       return
func.func @keepdim(%x: tensor<64x32xf32>) -> tensor<1x1xf32> {
  %s = kiln.sum %x {keepdim = true} : tensor<64x32xf32>
  return %s : tensor<1x1xf32>
}

// Returned both as it is and through a view: one buffer cannot be both
// results, so the view's is copied.
// CHECK-LABEL: func.func @both(
// CHECK-SAME:    %{{.*}}: memref<64x32xf32>, %[[OUT0:[a-z0-9]+]]: memref<64x32xf32>, %[[OUT1:[a-z0-9]+]]: memref<2048xf32>)
// CHECK:       outs(%[[OUT0]] : memref<64x32xf32>)
// CHECK:       %[[VIEW:.*]] = memref.reshape %[[OUT0]]
// CHECK:       memref.copy %[[VIEW]], %[[OUT1]]
func.func @both(%x: tensor<64x32xf32>) -> (tensor<64x32xf32>, tensor<2048xf32>) {
  %p = kiln.exp %x : tensor<64x32xf32>
  %r = kiln.reshape %p : tensor<64x32xf32> -> tensor<2048xf32>
  return %p, %r : tensor<64x32xf32>, tensor<2048xf32>
}

// A view of an argument is no allocation: copied.
// CHECK-LABEL: func.func @argument(
// CHECK:       %[[VIEW:.*]] = memref.reshape %arg0
// CHECK:       memref.copy %[[VIEW]], %arg1
func.func @argument(%x: tensor<64x32xf32>) -> tensor<2048xf32> {
  %r = kiln.reshape %x : tensor<64x32xf32> -> tensor<2048xf32>
  return %r : tensor<2048xf32>
}
