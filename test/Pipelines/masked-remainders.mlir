// The CPU pipeline runs kiln-masked-remainders: a row of 127 f32 (exp of
// x + b, the bias broadcast along the rows) leaves LLVM a vector loop over
// 64 elements, three whole vectors and one masked vector of 15, instead of
// a scalar loop over its last 31. (Without the pass the numerical test,
// test/Integration/remainders.py, would still pass: the scalar loop gives
// the same bits.)
// RUN: kiln-opt %s --kiln-cpu-pipeline | FileCheck %s
// RUN: kiln-opt %s --kiln-cpu-pipeline --remarks-filter=kiln-lower -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK
// CHECK: llvm.intr.masked.load {{.*}} -> vector<16xf32>
// CHECK: llvm.intr.masked.store {{.*}} : vector<16xf32>, vector<16xi1> into !llvm.ptr
// REMARK: MaskedRemainder | Category:kiln-lower | Function=kiln_kernel | Remark="a loop of the kernel over 127 iterations: 64 run in LLVM's vector loop; the other 63, which LLVM would run one at a time, run as 3 vector(s) of 16 lanes and a masked vector of 15", iterations=127, lanes=16
func.func @f(%x: tensor<8x127xf32>, %b: tensor<127xf32>) -> tensor<8x127xf32> {
  %y = kiln.add %x, %b : tensor<8x127xf32>, tensor<127xf32>
  %z = kiln.exp %y : tensor<8x127xf32>
  return %z : tensor<8x127xf32>
}
