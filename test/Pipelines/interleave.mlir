// Elementwise loops with a long chain of floating-point work per element
// (f64 pow: about 170 operations) are interleaved on top of vectorization,
// so that several independent chains are in flight: LLVM interleaves only
// loops cheaper than 20 operations by itself, and a single chain longer
// than the core's reorder window ran at a third of the throughput
// (lib/Runtime/CpuCompiler.cpp, interleaveLongLoops). Four times with
// AVX-512's 32 vector registers; with AVX2's 16, loops of 40 operations or
// more twice (four chains of them spilled), shorter ones four times.
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s --check-prefixes=CHECK,%register_file_prefix

// f64 pow, about 170 operations: four vectors per iteration with 32
// registers, two with 16 (8 doubles a vector with AVX-512, 4 with AVX2).
// CHECK-LABEL: define internal void @kiln_kernel..omp_par(
// CHECK:         fdiv <[[#W:]] x double>
// REGS32:        %index.next = add nuw i64 %index, [[#mul(W,4)]]
// REGS16:        %index.next = add nuw i64 %index, [[#mul(W,2)]]
func.func @pow(%a: tensor<64x4096xf64>, %b: tensor<64x4096xf64>) -> tensor<64x4096xf64> {
  %y = kiln.pow %a, %b : tensor<64x4096xf64>, tensor<64x4096xf64>
  return %y : tensor<64x4096xf64>
}


// f64 exp, about 28 operations: four vectors per iteration on either.
// CHECK-LABEL: define internal void @kiln_kernel_0..omp_par(
// CHECK:         fmul <[[#V:]] x double>
// CHECK:         %index.next = add nuw i64 %index, [[#mul(V,4)]]
func.func @exp(%a: tensor<64x4096xf64>) -> tensor<64x4096xf64> {
  %y = kiln.exp %a : tensor<64x4096xf64>
  return %y : tensor<64x4096xf64>
}
