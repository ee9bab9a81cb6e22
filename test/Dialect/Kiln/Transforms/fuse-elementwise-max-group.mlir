// RUN: kiln-opt "--kiln-fuse-elementwise=max-group-ops=3" %s | FileCheck %s
// RUN: kiln-opt --kiln-fuse-elementwise %s | FileCheck %s --check-prefix=DEFAULT

// A chain longer than max-group-ops is split: groups form from the end, so
// the last three ops share a kernel, the three before them another, and the
// first op, alone, stays as it is. The default (128) fuses all seven.
// CHECK-LABEL: func.func @chain
// CHECK:         %[[FIRST:.*]] = kiln.neg %{{.*}} : tensor<8xf32>
// CHECK:         %[[MIDDLE:.*]] = kiln.fused(%[[FIRST]])
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      kiln.tanh
// CHECK-NEXT:      kiln.exp
// CHECK-NEXT:      kiln.neg
// CHECK-NEXT:      kiln.yield
// CHECK:         %[[LAST:.*]] = kiln.fused(%[[MIDDLE]])
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      kiln.abs
// CHECK-NEXT:      kiln.tanh
// CHECK-NEXT:      kiln.sqrt
// CHECK-NEXT:      kiln.yield
// CHECK:         return %[[LAST]]
// DEFAULT-LABEL: func.func @chain
// DEFAULT-COUNT-1: kiln.fused
// DEFAULT-NOT:     kiln.fused
func.func @chain(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = kiln.neg %x : tensor<8xf32>
  %1 = kiln.tanh %0 : tensor<8xf32>
  %2 = kiln.exp %1 : tensor<8xf32>
  %3 = kiln.neg %2 : tensor<8xf32>
  %4 = kiln.abs %3 : tensor<8xf32>
  %5 = kiln.tanh %4 : tensor<8xf32>
  %6 = kiln.sqrt %5 : tensor<8xf32>
  return %6 : tensor<8xf32>
}
