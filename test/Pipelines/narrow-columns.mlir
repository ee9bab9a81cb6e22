// A sum over dim 0 of narrow rows (10 floats), split into 16 segments of
// 6250 rows reduced in parallel: each segment's accumulator block is a
// buffer the kernel allocates itself, whose accesses kiln-alias-scopes
// marks noalias with the input's. The groups of 8 rows then become
// whole-vector loads, adds and stores of the accumulators (without the
// scopes, the SLP vectorizer could not move an input load above the
// accumulator store before it: 80 scalar load-add-stores per group).
// RUN: kiln-compile %s --target=cpu --emit=llvm-ir | FileCheck %s
// The block is one buffer per thread, on its stack (kiln-iteration-scratch),
// cleared for each segment; its lane tree comes first in the text.
// CHECK: define internal void @kiln_kernel..omp_par(
// CHECK: %[[BLOCK:.*]] = alloca [320 x float], align 64
// CHECK: call void @llvm.memset.p0.i64(ptr {{.*}}%[[BLOCK]], i8 0, i64 1280, i1 false), !alias.scope ![[LOCAL:[0-9]+]], !noalias ![[ARGS:[0-9]+]]
// CHECK: %[[AT:.*]] = getelementptr i8, ptr %[[BLOCK]], i64 %{{.*}}
// CHECK-NEXT: %[[ACC:.*]] = load <16 x float>, ptr %[[AT]], align 64, !alias.scope ![[LOCAL]], !noalias ![[ARGS]]
// CHECK: %[[X:.*]] = load <16 x float>, ptr %{{.*}}, !alias.scope ![[ARG:[0-9]+]], !noalias ![[NOTARG:[0-9]+]]
// CHECK-NEXT: %[[SUM:.*]] = fadd <16 x float> %[[ACC]], %[[X]]
// CHECK-NEXT: store <16 x float> %[[SUM]], ptr %[[AT]], align 64, !alias.scope ![[LOCAL]], !noalias ![[ARGS]]
// CHECK: ![[LOCAL]] = !{![[LOCALSCOPE:[0-9]+]]}
// CHECK-NEXT: ![[LOCALSCOPE]] = distinct !{![[LOCALSCOPE]], !{{[0-9]+}}, !"local"}
func.func @f(%x: tensor<100000x10xf32>) -> tensor<10xf32> {
  %s = kiln.sum %x {dims = array<i64: 0>} : tensor<100000x10xf32>
  return %s : tensor<10xf32>
}
