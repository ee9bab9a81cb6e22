// kiln-decompose writes equal as a sum the comparison fuses into -- on the
// GPU always, on the CPU where an operand is computed by an op the fusion
// pass reads in place (elementwise, a splat constant); an equal of two
// operands in memory stays on the CPU, for the runtime's comparison that
// stops at the first difference.
// RUN: kiln-opt %s -split-input-file -kiln-decompose | FileCheck %s --check-prefixes=CHECK,CPU
// RUN: kiln-opt %s -split-input-file -kiln-decompose=target=cpu | FileCheck %s --check-prefixes=CHECK,CPU
// RUN: kiln-opt %s -split-input-file -kiln-decompose=target=cuda | FileCheck %s --check-prefixes=CHECK,CUDA
// RUN: not kiln-opt %s -split-input-file -kiln-decompose=target=tpu 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: unknown target 'tpu' (expected cpu or cuda)

// Both operands are arguments: the CPU keeps the op; the GPU counts the
// differences, equal = (sum(cast<f32>(a != b)) == 0).
// CHECK-LABEL: func.func @arguments
// CPU: %[[E:.*]] = kiln.equal %arg0, %arg1 : tensor<3x5xi64>, tensor<3x5xi64>
// CPU: return %[[E]]
// CUDA-DAG: %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CUDA-DAG: %[[NE:.*]] = kiln.ne %arg0, %arg1 : tensor<3x5xi64>, tensor<3x5xi64>
// CUDA: %[[COUNT:.*]] = kiln.cast %[[NE]] : tensor<3x5xi1> to tensor<3x5xf32>
// CUDA: %[[SUM:.*]] = kiln.sum %[[COUNT]] : tensor<3x5xf32>
// CUDA: kiln.eq %[[SUM]], %[[ZERO]] : tensor<f32>, tensor<f32>
// CUDA-NOT: kiln.equal
func.func @arguments(%a: tensor<3x5xi64>, %b: tensor<3x5xi64>) -> tensor<i1> {
  %e = kiln.equal %a, %b : tensor<3x5xi64>, tensor<3x5xi64>
  return %e : tensor<i1>
}

// -----

// A result of a kernel that is not elementwise (a reduction) is read from
// memory too: kept on the CPU.
// CHECK-LABEL: func.func @reduction_result
// CPU: kiln.equal
// CUDA: kiln.ne
// CUDA-NOT: kiln.equal
func.func @reduction_result(%x: tensor<4x8xf32>, %b: tensor<4xf32>) -> tensor<i1> {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x8xf32>
  %e = kiln.equal %s, %b : tensor<4xf32>, tensor<4xf32>
  return %e : tensor<i1>
}

// -----

// One operand computed elementwise: the comparison reads it in place in
// the sum's kernel, on either target.
// CHECK-LABEL: func.func @elementwise_operand
// CHECK: %[[X:.*]] = kiln.add %arg0, %arg0
// CHECK: kiln.ne %[[X]], %arg1
// CHECK: kiln.sum
// CHECK-NOT: kiln.equal
func.func @elementwise_operand(%a: tensor<16xf32>, %b: tensor<16xf32>) -> tensor<i1> {
  %x = kiln.add %a, %a : tensor<16xf32>, tensor<16xf32>
  %e = kiln.equal %x, %b : tensor<16xf32>, tensor<16xf32>
  return %e : tensor<i1>
}

// -----

// A splat constant operand is never stored: compared in place too.
// CHECK-LABEL: func.func @splat_operand
// CHECK: kiln.ne %arg0, %{{.*}}
// CHECK: kiln.sum
// CHECK-NOT: kiln.equal
func.func @splat_operand(%a: tensor<16xf32>) -> tensor<i1> {
  %z = kiln.zeros_like %a : tensor<16xf32>
  %e = kiln.equal %a, %z : tensor<16xf32>, tensor<16xf32>
  return %e : tensor<i1>
}
