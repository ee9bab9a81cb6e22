// A row group (reductions over the last dim broadcast back over the rows,
// one scf.forall over the rows) prefetches the next row of its operands of
// the rows' shape in one pass over the row: the last softmax or float
// sum/product, whose lane loop (32 positions a step) runs on the row in
// cache when an earlier pass brought it in.
// RUN: kiln-opt %s -split-input-file -kiln-decompose -kiln-fuse-elementwise=row-groups=true -convert-kiln-to-linalg | FileCheck %s

// A layer norm: the mean's pass reads the row from memory, the variance's
// prefetches the next (two f32 lines a step).
// CHECK-LABEL: func.func @layer_norm
// CHECK: scf.forall
// CHECK: %[[IN:.*]] = bufferization.to_buffer %arg0 read_only : tensor<128x512xf32>
// CHECK: scf.for %{{.*}} step %c32 iter_args
// CHECK-NOT: memref.prefetch
// CHECK: vector.from_elements
// CHECK: scf.for %{{.*}} step %c32{{.*}} iter_args
// CHECK-COUNT-2: memref.prefetch %[[IN]][%{{.*}}, %{{.*}}], read, locality<3>, data
// CHECK-NOT: memref.prefetch
// CHECK: scf.forall.in_parallel
func.func @layer_norm(%x: tensor<128x512xf32>) -> tensor<128x512xf32> {
  %m = kiln.mean %x {dims = array<i64: 1>, keepdim = true} : tensor<128x512xf32>
  %c = kiln.sub %x, %m : tensor<128x512xf32>, tensor<128x1xf32>
  %q = kiln.mul %c, %c : tensor<128x512xf32>, tensor<128x512xf32>
  %v = kiln.mean %q {dims = array<i64: 1>, keepdim = true} : tensor<128x512xf32>
  %r = kiln.div %c, %v : tensor<128x512xf32>, tensor<128x1xf32>
  return %r : tensor<128x512xf32>
}

// -----

// softmax's VJP: both operands prefetched in the one sum's loop (in the
// group's operand order: g, then y).
// CHECK-LABEL: func.func @softmax_vjp
// CHECK-DAG: %[[Y:.*]] = bufferization.to_buffer %arg0 read_only
// CHECK-DAG: %[[G:.*]] = bufferization.to_buffer %arg1 read_only
// CHECK: scf.for %{{.*}} step %c32 iter_args
// CHECK-COUNT-2: memref.prefetch %[[G]]
// CHECK-COUNT-2: memref.prefetch %[[Y]]
// CHECK-NOT: memref.prefetch
func.func @softmax_vjp(%y: tensor<256x1024xf32>, %g: tensor<256x1024xf32>) -> tensor<256x1024xf32> {
  %p = kiln.mul %g, %y : tensor<256x1024xf32>, tensor<256x1024xf32>
  %s = kiln.sum %p {dims = array<i64: 1>, keepdim = true} : tensor<256x1024xf32>
  %d = kiln.sub %g, %s : tensor<256x1024xf32>, tensor<256x1xf32>
  %r = kiln.mul %y, %d : tensor<256x1024xf32>, tensor<256x1024xf32>
  return %r : tensor<256x1024xf32>
}

// -----

// Only a maximum (no lane loop): nothing prefetched.
// CHECK-LABEL: func.func @max_only
// CHECK-NOT: bufferization.to_buffer
// CHECK-NOT: memref.prefetch
// CHECK: return
func.func @max_only(%x: tensor<128x512xf32>) -> tensor<128x512xf32> {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<128x512xf32>
  %r = kiln.sub %x, %m : tensor<128x512xf32>, tensor<128x1xf32>
  return %r : tensor<128x512xf32>
}
