// Elementwise loops with a long chain of floating-point work per element
// (f64 pow: about 170 operations) are interleaved four times on top of
// vectorization, so that four independent chains are in flight: LLVM
// interleaves only loops cheaper than 20 operations by itself, and a single
// chain longer than the core's reorder window ran at a third of the
// throughput (lib/Runtime/CpuCompiler.cpp, interleaveLongLoops).
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s

// 8 doubles per 512-bit vector, four vectors per iteration.
// CHECK-LABEL: define internal void @kiln_kernel..omp_par
// CHECK:         fdiv <8 x double>
// CHECK:         %index.next = add nuw i64 %index, 32
func.func @pow(%a: tensor<64x4096xf64>, %b: tensor<64x4096xf64>) -> tensor<64x4096xf64> {
  %y = kiln.pow %a, %b : tensor<64x4096xf64>, tensor<64x4096xf64>
  return %y : tensor<64x4096xf64>
}
