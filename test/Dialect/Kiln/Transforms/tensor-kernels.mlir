// RUN: kiln-opt %s --split-input-file --kiln-outline-tensor-kernels | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-outline-tensor-kernels --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" --kiln-inline-tensor-kernels | FileCheck %s --check-prefix=INLINE

// Kernels on whole tensors move into functions, one per distinct kernel:
// the first two generics print the same and share @kiln_tensor_kernel;
// each function creates the tensor it writes (the tensor.empty only its
// kernel used) and takes what it reads; the constant and the reshape of
// an argument are cloned in. A kernel reading a slice (a strided buffer
// at a function boundary of identity layouts) stays, and so does one
// writing a tensor other than a fresh tensor.empty (the result of another
// kernel: the function would write its argument).
// CHECK-LABEL: func.func @f(
// CHECK-SAME:      %[[A:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<32xf32>, %[[N:.*]]: f32)
// CHECK:         %[[R0:.*]] = call @kiln_tensor_kernel(%[[A]]) : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK:         %[[R1:.*]] = call @kiln_tensor_kernel(%[[R0]])
// CHECK:         %[[R2:.*]] = call @kiln_tensor_kernel_0(%[[B]], %[[N]]) : (tensor<32xf32>, f32) -> tensor<4x8xf32>
// CHECK:         %[[S:.*]] = tensor.extract_slice %[[A]]
// CHECK:         linalg.generic {{.*}} ins(%[[S]] : tensor<2x8xf32>)
// CHECK:         linalg.generic {{.*}} ins(%[[R0]] : tensor<4x8xf32>) outs(%[[R2]] : tensor<4x8xf32>)
// CHECK:       func.func private @kiln_tensor_kernel(%[[X:.*]]: tensor<4x8xf32>) -> tensor<4x8xf32> attributes {kiln.tensor_kernel}
// CHECK:         %[[E:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK:         arith.constant 2.0
// CHECK:         linalg.generic {{.*}} ins(%[[X]] : tensor<4x8xf32>) outs(%[[E]] : tensor<4x8xf32>)
// CHECK:       func.func private @kiln_tensor_kernel_0(%[[Y:.*]]: tensor<32xf32>, %[[M:.*]]: f32)
// CHECK:         tensor.empty() : tensor<4x8xf32>
// CHECK:         %[[V:.*]] = tensor.expand_shape %[[Y]]
// CHECK:         linalg.generic {{.*}} ins(%[[V]] : tensor<4x8xf32>)
// CHECK:           arith.addf %{{.*}}, %[[M]]
// CHECK-NOT:   func.func

// Bufferized, the kernels are put back where they were called and their
// functions erased; each allocates its result in the caller again.
// INLINE-LABEL: func.func @f(
// INLINE-NOT:     call
// INLINE-COUNT-3: memref.alloc() {{.*}}: memref<4x8xf32>
// INLINE-NOT:     call
// INLINE:         return
// INLINE-NOT:   kiln_tensor_kernel
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @f(%a: tensor<4x8xf32>, %b: tensor<32xf32>, %n: f32) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>) {
  %two = arith.constant 2.0 : f32
  %e0 = tensor.empty() : tensor<4x8xf32>
  %r0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<4x8xf32>) outs(%e0 : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.mulf %x, %two : f32
    linalg.yield %y : f32
  } -> tensor<4x8xf32>
  %e1 = tensor.empty() : tensor<4x8xf32>
  %r1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%r0 : tensor<4x8xf32>) outs(%e1 : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.mulf %x, %two : f32
    linalg.yield %y : f32
  } -> tensor<4x8xf32>
  %v = tensor.expand_shape %b [[0, 1]] output_shape [4, 8] : tensor<32xf32> into tensor<4x8xf32>
  %e2 = tensor.empty() : tensor<4x8xf32>
  %r2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%v : tensor<4x8xf32>) outs(%e2 : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.addf %x, %n : f32
    linalg.yield %y : f32
  } -> tensor<4x8xf32>
  %s = tensor.extract_slice %a[1, 0] [2, 8] [1, 1] : tensor<4x8xf32> to tensor<2x8xf32>
  %e3 = tensor.empty() : tensor<2x8xf32>
  %r3 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%s : tensor<2x8xf32>) outs(%e3 : tensor<2x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.mulf %x, %two : f32
    linalg.yield %y : f32
  } -> tensor<2x8xf32>
  %r4 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%r0 : tensor<4x8xf32>) outs(%r2 : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.addf %x, %o : f32
    linalg.yield %y : f32
  } -> tensor<4x8xf32>
  return %r0, %r1, %r2, %r3, %r4 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>
}

// -----

// Kernels are compared structurally: locations do not matter (the first
// two share a function), while a different constant, operands of a
// non-commutative op in the other order, a different attribute (fastmath)
// or a different shape each make a kernel of its own.
// CHECK-LABEL: func.func @g(
// CHECK:         call @[[SUB:kiln_tensor_kernel[_0-9]*]](%{{.*}}, %{{.*}})
// CHECK-NEXT:    call @[[SUB]](%{{.*}}, %{{.*}})
// CHECK-NEXT:    call @[[CONST:kiln_tensor_kernel[_0-9]*]](
// CHECK-NEXT:    call @[[SWAPPED:kiln_tensor_kernel[_0-9]*]](
// CHECK-NEXT:    call @[[FAST:kiln_tensor_kernel[_0-9]*]](
// CHECK-NEXT:    call @[[SHAPE:kiln_tensor_kernel[_0-9]*]](
// CHECK:       func.func private @[[SUB]](
// CHECK:         arith.constant 3.000000e+00
// CHECK:         arith.subf %{{.*}}, %{{.*}} : f32
// CHECK:       func.func private @[[CONST]](
// CHECK:         arith.constant 4.000000e+00
// CHECK:       func.func private @[[SWAPPED]](
// CHECK:       func.func private @[[FAST]](
// CHECK:         arith.subf {{.*}} fastmath<nnan>
// CHECK:       func.func private @[[SHAPE]](
// CHECK-NOT:   func.func
#row = affine_map<(d0) -> (d0)>
func.func @g(%a: tensor<8xf32>, %b: tensor<8xf32>, %c: tensor<4xf32>, %d: tensor<4xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4xf32>) {
  %three = arith.constant 3.0 : f32
  %four = arith.constant 4.0 : f32
  %e0 = tensor.empty() : tensor<8xf32>
  %r0 = linalg.generic {indexing_maps = [#row, #row, #row], iterator_types = ["parallel"]}
      ins(%a, %b : tensor<8xf32>, tensor<8xf32>) outs(%e0 : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %x, %y : f32
    %m = arith.mulf %s, %three : f32
    linalg.yield %m : f32
  } -> tensor<8xf32> loc("first")
  %e1 = tensor.empty() : tensor<8xf32>
  %r1 = linalg.generic {indexing_maps = [#row, #row, #row], iterator_types = ["parallel"]}
      ins(%b, %a : tensor<8xf32>, tensor<8xf32>) outs(%e1 : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %x, %y : f32 loc("elsewhere")
    %m = arith.mulf %s, %three : f32
    linalg.yield %m : f32
  } -> tensor<8xf32> loc("second")
  %e2 = tensor.empty() : tensor<8xf32>
  %r2 = linalg.generic {indexing_maps = [#row, #row, #row], iterator_types = ["parallel"]}
      ins(%a, %b : tensor<8xf32>, tensor<8xf32>) outs(%e2 : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %x, %y : f32
    %m = arith.mulf %s, %four : f32
    linalg.yield %m : f32
  } -> tensor<8xf32>
  %e3 = tensor.empty() : tensor<8xf32>
  %r3 = linalg.generic {indexing_maps = [#row, #row, #row], iterator_types = ["parallel"]}
      ins(%a, %b : tensor<8xf32>, tensor<8xf32>) outs(%e3 : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %y, %x : f32
    %m = arith.mulf %s, %three : f32
    linalg.yield %m : f32
  } -> tensor<8xf32>
  %e4 = tensor.empty() : tensor<8xf32>
  %r4 = linalg.generic {indexing_maps = [#row, #row, #row], iterator_types = ["parallel"]}
      ins(%a, %b : tensor<8xf32>, tensor<8xf32>) outs(%e4 : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %x, %y fastmath<nnan> : f32
    %m = arith.mulf %s, %three : f32
    linalg.yield %m : f32
  } -> tensor<8xf32>
  %e5 = tensor.empty() : tensor<4xf32>
  %r5 = linalg.generic {indexing_maps = [#row, #row, #row], iterator_types = ["parallel"]}
      ins(%c, %d : tensor<4xf32>, tensor<4xf32>) outs(%e5 : tensor<4xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %x, %y : f32
    %m = arith.mulf %s, %three : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  return %r0, %r1, %r2, %r3, %r4, %r5 : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4xf32>
}
