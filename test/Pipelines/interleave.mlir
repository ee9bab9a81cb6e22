// Elementwise loops with a long chain of floating-point work per element
// (f64 pow: about 170 operations) are interleaved four times on top of
// vectorization, so that four independent chains are in flight: LLVM
// interleaves only loops cheaper than 20 operations by itself, and a single
// chain longer than the core's reorder window ran at a third of the
// throughput (lib/Runtime/CpuCompiler.cpp, interleaveLongLoops).
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s

// Four vectors per iteration, whatever the host's vector width (8 doubles
// with AVX-512, 4 with AVX2).
// CHECK-LABEL: define internal void @kiln_kernel..omp_par
// CHECK:         fdiv <[[#W:]] x double>
// CHECK:         %index.next = add nuw i64 %index, [[#mul(W,4)]]
func.func @pow(%a: tensor<64x4096xf64>, %b: tensor<64x4096xf64>) -> tensor<64x4096xf64> {
  %y = kiln.pow %a, %b : tensor<64x4096xf64>, tensor<64x4096xf64>
  return %y : tensor<64x4096xf64>
}
