// Kernels that do little floating-point work per load (a sum) are compiled
// with 256-bit vectors, which stream memory faster than 512-bit ones on
// AVX-512 machines of the Zen 4 kind; math-heavy kernels keep the default
// width, judged loop by loop (softmax's one kernel: its exp loop is heavy,
// next to its max and sum loops; lib/Runtime/CpuCompiler.cpp).
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s --check-prefix=ENTRY

// Each kernel is a function of its own (kiln-outline-kernels): the sum's,
// then softmax's (each row's max, exps and sum, normalization in cache).
// CHECK: define internal void @kiln_kernel..omp_par({{.*}}) #[[SUM:[0-9]+]]
// CHECK: define internal void @kiln_kernel_0..omp_par({{.*}}) #[[EXP:[0-9]+]]
// A matrix-vector product transposes 16x16 tiles in registers, a shuffle
// per load: 512-bit vectors too.
// CHECK: define internal void @kiln_kernel_1..omp_par({{.*}}) #[[EXP]]
// CHECK-DAG: attributes #[[SUM]] = { {{.*}}"min-legal-vector-width"="256" "prefer-vector-width"="256"
// CHECK-DAG: attributes #[[EXP]] = { {{[^"]*}} }

// The entry point's body is glue (allocations, one call per kernel, frees):
// compiled once, unoptimized, not inlined into its C interface or packed
// entry, which call it.
// ENTRY: define void @sum({{.*}}) {{.*}}#[[GLUE:[0-9]+]] {
// ENTRY: define void @_kiln_packed_sum(
// ENTRY: call void @sum(
// ENTRY: attributes #[[GLUE]] = { noinline optnone }
func.func @sum(%x: tensor<64x4096xf32>) -> tensor<64xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<64x4096xf32>
  return %s : tensor<64xf32>
}

func.func @softmax(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<64x256xf32>
  return %y : tensor<64x256xf32>
}

func.func @mv(%a: tensor<64x256xf32>, %x: tensor<256xf32>) -> tensor<64xf32> {
  %r = kiln.matmul %a, %x : tensor<64x256xf32>, tensor<256xf32>
  return %r : tensor<64xf32>
}
