// The softmax of few long rows with a rest after their segments compiles to
// its three kernels (segments; rows; results) and no fourth: the segment
// kernel's prefetch reads the input through a strided view instead of a
// copy of the segments made contiguous (a 32 MB copy for 2x4000037 f32).
// RUN: kiln-compile %s --target=cpu --emit=mlir | FileCheck %s

// CHECK-COUNT-3: llvm.func internal @kiln_kernel
// CHECK-NOT: llvm.func internal @kiln_kernel
// CHECK-NOT: memcpy
func.func @f(%x: tensor<2x262147xf32>) -> tensor<2x262147xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<2x262147xf32>
  return %y : tensor<2x262147xf32>
}
