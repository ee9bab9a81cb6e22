// RUN: kiln-opt --kiln-autodiff %s | FileCheck %s
// Functions that return their arguments as they are, in a module with no
// kiln op at all (the pass loads the dialect its VJPs are written in; this
// module used to crash it). The gradient is the cotangent, summed when the
// argument is returned twice.

// CHECK-LABEL: func.func @identity_vjp
// CHECK-SAME:    (%{{.*}}: tensor<4xf32>, %[[CT:.*]]: tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    return %[[CT]] : tensor<4xf32>
func.func @identity(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// CHECK-LABEL: func.func @twice_vjp
// CHECK-SAME:    (%{{.*}}: tensor<4xf32>, %[[CT0:.*]]: tensor<4xf32>, %[[CT1:.*]]: tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %[[SUM:.*]] = kiln.add %[[CT0]], %[[CT1]]
// CHECK-NEXT:    return %[[SUM]] : tensor<4xf32>
func.func @twice(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  return %x, %x : tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @unused_vjp
// CHECK-SAME:    (%{{.*}}: tensor<2xf64>, %[[Y:.*]]: tensor<3xf32>, %[[CT:.*]]: tensor<3xf32>) -> (tensor<2xf64>, tensor<3xf32>)
// CHECK-NEXT:    %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<2xf64>
// CHECK-NEXT:    return %[[ZERO]], %[[CT]]
func.func @unused(%x: tensor<2xf64>, %y: tensor<3xf32>) -> tensor<3xf32> {
  return %y : tensor<3xf32>
}
