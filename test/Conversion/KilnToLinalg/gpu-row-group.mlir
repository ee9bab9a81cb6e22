// RUN: kiln-opt %s -split-input-file '--convert-kiln-to-linalg=target=cuda' -verify-diagnostics
// RUN: %expect_exit 1 kiln-compile %s --target=cuda --emit=mlir 2>&1 | FileCheck %s

// Row groups are a CPU form (kiln-fuse-elementwise{row-groups}, which only
// the CPU pipeline sets): a hand-written one for the cuda target gets a
// diagnostic, not a failure deep in the LLVM translation.
// CHECK: kiln-compile: error: lowering failed:
// CHECK-NEXT: 'kiln.fused' op is a row group, which only the CPU lowers
func.func @row_group(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x1xf32>) {
  // expected-error @+1 {{'kiln.fused' op is a row group, which only the CPU lowers (kiln-fuse-elementwise makes them with row-groups, which the CPU pipeline sets); for the cuda target, write its ops unfused}}
  %r:2 = kiln.fused (%x) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x1xf32>) {
  ^bb0(%a: tensor<4x8xf32>):
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<4x8xf32>
    %d = kiln.sub %a, %m : tensor<4x8xf32>, tensor<4x1xf32>
    kiln.yield %d, %m : tensor<4x8xf32>, tensor<4x1xf32>
  }
  return %r#0, %r#1 : tensor<4x8xf32>, tensor<4x1xf32>
}

// -----

// So are column groups (formColumnGroups).
func.func @column_group(%x: tensor<2x6x20xf32>) -> tensor<2x6x20xf32> {
  // expected-error @+1 {{'kiln.fused' op is a column group, which only the CPU lowers (kiln-fuse-elementwise makes them with row-groups, which the CPU pipeline sets); for the cuda target, write its ops unfused}}
  %r = kiln.fused (%x) : (tensor<2x6x20xf32>) -> tensor<2x6x20xf32> {
  ^bb0(%a: tensor<2x6x20xf32>):
    %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : tensor<2x6x20xf32>
    %d = kiln.sub %a, %m : tensor<2x6x20xf32>, tensor<2x1x20xf32>
    kiln.yield %d : tensor<2x6x20xf32>
  }
  return %r : tensor<2x6x20xf32>
}
