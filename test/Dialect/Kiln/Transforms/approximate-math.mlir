// RUN: kiln-opt %s -kiln-approximate-math | FileCheck %s

// f32 exp and tanh become MLIR's polynomial approximations (a few ulp), so
// the loops computing them vectorize instead of calling libm per element.
// (The pass runs on the scalar bodies of linalg ops, before vectorization.)
// CHECK-LABEL: func.func @approximated
// CHECK-NOT:     math.exp
// CHECK-NOT:     math.tanh
// CHECK:         return
func.func @approximated(%x: f32, %v: vector<8xf32>) -> (f32, vector<8xf32>) {
  %e = math.exp %x : f32
  %t = math.tanh %x : f32
  %s = arith.addf %e, %t : f32
  %tv = math.tanh %v : vector<8xf32>
  return %s, %tv : f32, vector<8xf32>
}

// f64, and the other math functions, keep their libm calls.
// CHECK-LABEL: func.func @kept
// CHECK:         math.exp %{{.*}} : f64
// CHECK:         math.tanh %{{.*}} : f64
// CHECK:         math.log %{{.*}} : f32
func.func @kept(%d: f64, %x: f32) -> (f64, f64, f32) {
  %e = math.exp %d : f64
  %t = math.tanh %d : f64
  %l = math.log %x : f32
  return %e, %t, %l : f64, f64, f32
}
