// RUN: kiln-opt %s -kiln-profile-kernels | FileCheck %s

// Each kernel of a public function -- a call of an outlined kernel or a
// runtime kernel, a kernel left in place, a copy -- is bracketed by the
// runtime's timers, numbered in program order; the module lists the sites
// (the kernel's source location, what runs). Allocation, constants and
// the runtime's thread-count helper are not timed; private functions (the
// kernels themselves) are left alone.
// CHECK: module attributes {kiln.profile_sites = ["profile.mlir:20:3\09kiln_kernel", "profile.mlir:21:3\09kiln_rt_topk_f32", "profile.mlir:22:3\09copy", "unknown\09kernel in place (scf.for)"]}
// CHECK-DAG: func.func private @kiln_rt_profile_enter(i64)
// CHECK-DAG: func.func private @kiln_rt_profile_exit(i64)
// CHECK-LABEL: func.func @f
// CHECK:      %[[N:.*]] = call @kiln_rt_num_threads() : () -> i64
// CHECK-NEXT: %[[S0:.*]] = arith.constant 0 : i64
// CHECK-NEXT: call @kiln_rt_profile_enter(%[[S0]]) : (i64) -> ()
// CHECK-NEXT: call @kiln_kernel(%arg0, %arg1)
// CHECK-NEXT: call @kiln_rt_profile_exit(%[[S0]]) : (i64) -> ()
// CHECK:      %[[S1:.*]] = arith.constant 1 : i64
// CHECK-NEXT: call @kiln_rt_profile_enter(%[[S1]])
// CHECK-NEXT: call @kiln_rt_topk_f32
// CHECK-NEXT: call @kiln_rt_profile_exit(%[[S1]])
// CHECK:      call @kiln_rt_profile_enter
// CHECK-NEXT: memref.copy
// CHECK-NEXT: call @kiln_rt_profile_exit
// CHECK:      call @kiln_rt_profile_enter
// CHECK-NEXT: scf.for
// CHECK:      call @kiln_rt_profile_exit
// CHECK-NEXT: return
// CHECK-LABEL: func.func private @kiln_kernel
// CHECK-NOT:  kiln_rt_profile
// CHECK:      return
func.func private @kiln_rt_num_threads() -> i64
func.func private @kiln_rt_topk_f32(memref<*xf32>, memref<*xf32>, memref<*xi64>, i64, i64, i1, i1)
func.func @f(%a: memref<8xf32>, %b: memref<8xf32>, %u: memref<*xf32>, %i: memref<*xi64>) {
  %n = call @kiln_rt_num_threads() : () -> i64
  call @kiln_kernel(%a, %b) : (memref<8xf32>, memref<8xf32>) -> () loc("profile.mlir":20:3)
  %k = arith.constant 2 : i64
  %d = arith.constant 7 : i64
  %t = arith.constant true
  call @kiln_rt_topk_f32(%u, %u, %i, %k, %d, %t, %t) : (memref<*xf32>, memref<*xf32>, memref<*xi64>, i64, i64, i1, i1) -> () loc("profile.mlir":21:3)
  memref.copy %a, %b : memref<8xf32> to memref<8xf32> loc("profile.mlir":22:3)
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.for %j = %c0 to %c8 step %c1 {
    %x = memref.load %a[%j] : memref<8xf32>
    memref.store %x, %b[%j] : memref<8xf32>
  } loc(unknown)
  return
}
func.func private @kiln_kernel(%a: memref<8xf32>, %b: memref<8xf32>) {
  memref.copy %a, %b : memref<8xf32> to memref<8xf32>
  return
}
