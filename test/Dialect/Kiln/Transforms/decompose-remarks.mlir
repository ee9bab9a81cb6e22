// RUN: kiln-opt -kiln-decompose --remarks-filter=kiln-decompose %s -o /dev/null 2>&1 | FileCheck %s

// kiln-decompose says which ops it rewrote into sums and why (category
// kiln-decompose, at the op's location).

func.func @f(%a: tensor<4x4194304xf32>, %b: tensor<4194304xf32>,
             %c: tensor<8xf32>) -> (tensor<4xf32>, tensor<i1>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Category:kiln-decompose | Function=f | Remark="kiln.matmul tensor<4x4194304xf32> x tensor<4194304xf32>: a thin product (4 row(s) x 1 column(s), k = 4194304) computed as sum(a * b) over k: the products read by the sum's kernel, in the lane order of a sum (not k order), split across the threads when long"
  %r = kiln.matmul %a, %b : tensor<4x4194304xf32>, tensor<4194304xf32>
  %n = kiln.neg %c : tensor<8xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Category:kiln-decompose | Function=f | Remark="kiln.equal of tensor<8xf32>: computed as sum(cast<f32>(a != b)) == 0, the comparison read by the sum's kernel (one pass over both operands, split across the threads when long)"
  %e = kiln.equal %n, %c : tensor<8xf32>, tensor<8xf32>
  return %r, %e : tensor<4xf32>, tensor<i1>
}
