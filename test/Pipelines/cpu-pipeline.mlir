// --kiln-cpu-pipeline in kiln-opt lowers kiln IR to the llvm dialect: the
// public function returns its results through out-parameters and gets a C
// interface; runtime kernels are called through theirs.
// RUN: kiln-opt %s --kiln-cpu-pipeline | FileCheck %s

// CHECK: llvm.func private @kiln_rt_topk_f32(
// CHECK: llvm.call @_mlir_ciface_kiln_rt_topk_f32({{.*}}) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i1, i1) -> ()
// CHECK: llvm.func @_mlir_ciface_kiln_rt_topk_f32(!llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i1, i1)
// CHECK-LABEL: llvm.func @f(
// CHECK: llvm.call @kiln_rt_topk_f32(
// CHECK: llvm.return
// CHECK-LABEL: llvm.func @_mlir_ciface_f(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// CHECK-NOT: kiln.
func.func @f(%x: tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>) {
  %v, %i = kiln.topk %x {k = 3 : i64} : tensor<4x10xf32>
  return %v, %i : tensor<4x3xf32>, tensor<4x3xi64>
}
