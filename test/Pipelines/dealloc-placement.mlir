// RUN: kiln-opt %s --kiln-cpu-pipeline --mlir-disable-threading --mlir-print-ir-after=optimize-allocation-liveness -o /dev/null 2>&1 | FileCheck %s

// The ownership-based deallocation frees a block's buffers at its end;
// optimize-allocation-liveness then moves each free to right after the
// last use of the buffer or of a view of it, so a chain of kernels holds
// two temporaries at a time, not all of them until it returns (the
// runtime's pool gives the freed block to the next kernel). Threading is
// off so that the functions' dumps come in module order.
// CHECK-LABEL: func.func @chain(
// CHECK:       %[[A:.*]] = memref.alloc() {{.*}} : memref<64x64xf32>
// CHECK-NEXT:  call @{{.*}}(%[[A]],
// CHECK-NEXT:  %[[B:.*]] = memref.alloc() {{.*}} : memref<64x64xf32>
// CHECK-NEXT:  call @{{.*}}(%[[B]], %{{.*}}, %[[A]])
// CHECK-NEXT:  memref.dealloc %[[A]]
// CHECK-NEXT:  %[[C:.*]] = memref.alloc() {{.*}} : memref<64x64xf32>
// CHECK-NEXT:  call @{{.*}}(%[[C]], %{{.*}}, %[[B]])
// CHECK-NEXT:  memref.dealloc %[[B]]
// CHECK-NEXT:  call @{{.*}}(%{{.*}}, %{{.*}}, %[[C]])
// CHECK-NEXT:  memref.dealloc %[[C]]
// CHECK-NEXT:  return
func.func @chain(%x: tensor<64x64xf32>, %w: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %a = kiln.matmul %x, %w : tensor<64x64xf32>, tensor<64x64xf32>
  %b = kiln.matmul %a, %w : tensor<64x64xf32>, tensor<64x64xf32>
  %c = kiln.matmul %b, %w : tensor<64x64xf32>, tensor<64x64xf32>
  %d = kiln.matmul %c, %w : tensor<64x64xf32>, tensor<64x64xf32>
  return %d : tensor<64x64xf32>
}

// A buffer read later through a view (the reshape of %a, read by the dot
// product) is freed after that read, not after the last use of %a itself.
// CHECK-LABEL: func.func @view(
// CHECK:       %[[A:.*]] = memref.alloc() {{.*}} : memref<64x64xf32>
// CHECK:       %[[V:.*]] = memref.reshape %[[A]]
// CHECK-NOT:   memref.dealloc %[[A]]
// CHECK:       call @{{.*}}({{.*}}%[[V]]{{.*}})
// CHECK-NEXT:  memref.dealloc %[[A]]
// CHECK:       return
func.func @view(%x: tensor<64x64xf32>, %w: tensor<64x64xf32>, %v: tensor<4096xf32>) -> (tensor<64x64xf32>, tensor<f32>) {
  %a = kiln.matmul %x, %w : tensor<64x64xf32>, tensor<64x64xf32>
  %b = kiln.matmul %a, %w : tensor<64x64xf32>, tensor<64x64xf32>
  %c = kiln.matmul %b, %w : tensor<64x64xf32>, tensor<64x64xf32>
  %flat = kiln.reshape %a : tensor<64x64xf32> -> tensor<4096xf32>
  %dot = kiln.matmul %flat, %v : tensor<4096xf32>, tensor<4096xf32>
  return %c, %dot : tensor<64x64xf32>, tensor<f32>
}
