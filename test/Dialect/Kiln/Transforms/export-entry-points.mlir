// RUN: kiln-opt %s --kiln-export-entry-points --split-input-file | FileCheck %s

// Public functions get a C interface and read-only arguments; private ones
// are left alone.
// CHECK-LABEL: func.func @entry
// CHECK-SAME:    (%{{.*}}: tensor<4xf32> {bufferization.writable = false})
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK:       func.func private @helper(%{{.*}}: tensor<4xf32>) -> tensor<4xf32> {
func.func @entry(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.neg %x : tensor<4xf32>
  return %y : tensor<4xf32>
}
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// A value returned more than once: the first result is the value, each
// other one a copy, so that every out-parameter has its own buffer.
// CHECK-LABEL: func.func @twice
// CHECK-SAME:    (%[[X:.*]]: tensor<4xf32>
// CHECK:         %[[Y:.*]] = kiln.neg
// CHECK-NEXT:    %[[C1:.*]] = bufferization.alloc_tensor() copy(%[[Y]]) : tensor<4xf32>
// CHECK-NEXT:    %[[C2:.*]] = bufferization.alloc_tensor() copy(%[[Y]]) : tensor<4xf32>
// CHECK-NEXT:    %[[CX:.*]] = bufferization.alloc_tensor() copy(%[[X]]) : tensor<4xf32>
// CHECK-NEXT:    return %[[Y]], %[[C1]], %[[X]], %[[C2]], %[[CX]] :
func.func @twice(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %y = kiln.neg %x : tensor<4xf32>
  return %y, %y, %x, %y, %x : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
