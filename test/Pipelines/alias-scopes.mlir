// Kernels tell LLVM their buffers do not overlap (kiln-outline-kernels'
// buffer groups, kiln-alias-scopes' metadata), through the OpenMP
// outlining of the parallel loop: a permute keeping its last dim of 40
// floats, whose row loop LLVM unrolls fully, becomes vector loads and
// stores (without the scopes: 40 scalar copies, the SLP vectorizer unable
// to move a load above the store before it).
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s --check-prefix=GATHER
// CHECK: define internal void @kiln_kernel..omp_par(
// CHECK: load <{{[0-9]+}} x float>, ptr {{.*}}, !alias.scope ![[IN:[0-9]+]], !noalias ![[OUT:[0-9]+]]
// CHECK-NEXT: store <{{[0-9]+}} x float> {{.*}}, !alias.scope ![[OUT]], !noalias ![[IN]]
func.func @permute(%x: tensor<100x100x40xf32>) -> tensor<100x100x40xf32> {
  %r = kiln.permute %x [1, 0, 2] : tensor<100x100x40xf32>
  return %r : tensor<100x100x40xf32>
}

// The host target prefers no vector gathers: with the scopes the loop
// vectorizer made AVX-512 gathers of a gather's reads, slower than scalar
// loads on Zen 4. (The packed entry points come after every kernel.)
// GATHER-NOT: llvm.masked.gather
// GATHER: define void @_kiln_packed_gather(
func.func @gather(%x: tensor<64x100x33xf32>, %i: tensor<64x7x33xi64>) -> tensor<64x7x33xf32> {
  %r = kiln.gather %x, %i {dim = 1 : i64} : tensor<64x100x33xf32>, tensor<64x7x33xi64>
  return %r : tensor<64x7x33xf32>
}
