// The whole GPU pipeline (kiln-opt --kiln-gpu-pipeline): host code in the
// llvm dialect launching kernels, one gpu.binary of PTX per kernel for the
// requested chip; runtime kernels (softmax rows) are host calls.
// RUN: kiln-opt %s --kiln-gpu-pipeline | FileCheck %s
// RUN: kiln-opt %s '--kiln-gpu-pipeline=chip=sm_80' | FileCheck %s --check-prefix=SM80
// RUN: kiln-opt %s --kiln-gpu-pipeline | FileCheck %s --check-prefix=FUSED
// RUN: kiln-opt %s '--kiln-gpu-pipeline=fuse=false' | FileCheck %s --check-prefix=NOFUSE
// The host's LLVM IR loads every kernel module in _kiln_init (what were
// global constructors) and launches through MLIR's GPU runtime ABI.
// RUN: kiln-compile %s --target=cuda --emit=llvm-ir | FileCheck %s --check-prefix=IR

// CHECK-LABEL: llvm.func @f(
// CHECK:         gpu.launch_func @[[K0:[a-z_0-9]+]]::@{{.*}} blocks in
// CHECK:         llvm.call @kiln_rt_softmax_f32(
// CHECK:         llvm.call @free
// CHECK-DAG:   gpu.binary @[[K0]] [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80"
// CHECK-NOT:   kiln.
// SM80:        #nvvm.target<O = 3, chip = "sm_80", features = "+ptx70"
// Fused, neg and maximum are one kernel (plus the copy of the softmax rows
// into the result); unfused, two.
// FUSED-COUNT-2: gpu.binary
// FUSED-NOT:     gpu.binary
// NOFUSE-COUNT-3: gpu.binary
// IR-LABEL:    define void @f(
// IR:            call ptr @mgpuModuleGetFunction(
// IR:            call void @mgpuLaunchKernel(
// IR-LABEL:    define void @_kiln_init()
// IR:            call ptr @mgpuModuleLoadJIT(
// IR-LABEL:    define void @_kiln_fini()
// IR:            call void @mgpuModuleUnload(
func.func @f(%x: tensor<64x128xf32>) -> tensor<64x128xf32> {
  %z = kiln.constant dense<0.0> : tensor<f32>
  %n = kiln.neg %x : tensor<64x128xf32>
  %m = kiln.maximum %n, %z : tensor<64x128xf32>, tensor<f32>
  %y = kiln.softmax %m {dim = 1 : i64} : tensor<64x128xf32>
  return %y : tensor<64x128xf32>
}
