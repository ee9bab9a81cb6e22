// Kernels that do little floating-point work per load (a sum) are compiled
// with 256-bit vectors on CPUs that execute 512-bit vectors as two halves
// (AMD Zen 4: there 256-bit loads stream memory faster), at full width
// elsewhere (Zen 5 streams faster at 512 bits); math-heavy kernels keep the
// default width, judged loop by loop (softmax's one kernel: its exp loop is
// heavy, next to its max and sum loops; lib/Runtime/CpuCompiler.cpp). lit
// picks the SPLIT or FULL prefix from the host CPU (test/lit.cfg.py).
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s --check-prefixes=CHECK,%vector_width_prefix
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s --check-prefix=ENTRY

// Each kernel is a function of its own (kiln-outline-kernels): the sum's,
// then softmax's (each row's max, exps and sum, normalization in cache).
// CHECK: define internal void @kiln_kernel..omp_par({{.*}}) #[[SUM:[0-9]+]]
// CHECK: define internal void @kiln_kernel_0..omp_par({{.*}}) #[[EXP:[0-9]+]]
// A matrix-vector product transposes 16x16 tiles in registers, a shuffle
// per load: 512-bit vectors too.
// CHECK: define internal void @kiln_kernel_1..omp_par({{.*}}) #[[EXP]]
// SPLIT-DAG: attributes #[[SUM]] = { {{.*}}"min-legal-vector-width"="256" "prefer-vector-width"="256"
// SPLIT-DAG: attributes #[[EXP]] = { {{[^"]*}} }
// FULL-NOT: "prefer-vector-width"

// The entry point's body is glue (allocations, one call per kernel, frees):
// compiled once, unoptimized, not inlined into its C interface or packed
// entry, which call it. The C interface (loads of each descriptor's fields
// and a call with them) is glue too, unoptimized: instruction selection of
// its one block, optimized, grew with the square of the arguments.
// ENTRY: define void @sum({{.*}}) {{.*}}#[[GLUE:[0-9]+]] {
// ENTRY: define void @_mlir_ciface_sum({{.*}}) {{.*}}#[[GLUE]] {
// ENTRY-NEXT: load
// ENTRY: call void @sum(
// ENTRY: define void @_kiln_packed_sum(
// ENTRY: call void @_mlir_ciface_sum(
// ENTRY: attributes #[[GLUE]] = { noinline optnone }
func.func @sum(%x: tensor<64x4096xf32>) -> tensor<64xf32> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<64x4096xf32>
  return %s : tensor<64xf32>
}

func.func @softmax(%x: tensor<512x256xf32>) -> tensor<512x256xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<512x256xf32>
  return %y : tensor<512x256xf32>
}

func.func @mv(%a: tensor<512x256xf32>, %x: tensor<256xf32>) -> tensor<512xf32> {
  %r = kiln.matmul %a, %x : tensor<512x256xf32>, tensor<256xf32>
  return %r : tensor<512xf32>
}
