// RUN: kiln-opt --kiln-check-calls %s | FileCheck %s
// Calls the check must leave alone: a function called twice from two
// places (a diamond, not a cycle) compiles once it is inlined.

// CHECK-LABEL: func.func @diamond
// CHECK: call @twice
// CHECK: call @twice
func.func @diamond(%x: tensor<4xf32>) -> tensor<4xf32> {
  %a = call @twice(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %b = call @twice(%a) : (tensor<4xf32>) -> tensor<4xf32>
  return %b : tensor<4xf32>
}
func.func private @twice(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = call @double(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}
func.func private @double(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.add %x, %x : tensor<4xf32>, tensor<4xf32>
  return %y : tensor<4xf32>
}
