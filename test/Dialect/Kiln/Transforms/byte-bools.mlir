// i1 loads and stores become byte accesses (a bool tensor holds one byte
// per element), which LLVM's loop vectorizer widens; it scalarizes i1.
// RUN: split-file %s %t
// RUN: kiln-opt %t/masks.mlir --kiln-byte-bools | FileCheck %s
// RUN: kiln-compile %t/where.mlir --emit=llvm-ir | FileCheck %s --check-prefix=VEC

// A kernel reading a stored mask, one storing one: vector loads and stores
// of bytes after LLVM's optimization, no scalar i1 access left.
// VEC-LABEL: define {{.*}}kiln_kernel
// VEC-NOT: load i1
// VEC-NOT: store i1
// VEC: load <{{[0-9]+}} x i8>
// VEC-NOT: load i1
// VEC-NOT: store i1
// VEC: store <{{[0-9]+}} x i8>
// VEC-NOT: load i1
// VEC-NOT: store i1

//--- masks.mlir
// CHECK-LABEL: llvm.func @masks
llvm.func @masks(%p: !llvm.ptr, %q: !llvm.ptr, %i: i64) {
  // CHECK: %[[A:.*]] = llvm.getelementptr %{{.*}}[%{{.*}}] : (!llvm.ptr, i64) -> !llvm.ptr, i8
  %a = llvm.getelementptr %p[%i] : (!llvm.ptr, i64) -> !llvm.ptr, i1
  // The load keeps its attributes.
  // CHECK: %[[B:.*]] = llvm.load %[[A]] invariant {alignment = 1 : i64} : !llvm.ptr -> i8
  // CHECK: %[[M:.*]] = llvm.trunc %[[B]] : i8 to i1
  %m = llvm.load %a invariant {alignment = 1 : i64} : !llvm.ptr -> i1
  // CHECK: %[[N:.*]] = llvm.xor %[[M]]
  %t = llvm.mlir.constant(true) : i1
  %n = llvm.xor %m, %t : i1
  // CHECK: %[[Z:.*]] = llvm.zext %[[N]] : i1 to i8
  // CHECK: llvm.store %[[Z]], %[[A]] {alignment = 1 : i64, nontemporal} : i8, !llvm.ptr
  llvm.store %n, %a {alignment = 1 : i64, nontemporal} : i1, !llvm.ptr
  // Vectors of i1: bit-packed for LLVM, so read and written as i8 lanes.
  // CHECK: %[[VB:.*]] = llvm.load %{{.*}} : !llvm.ptr -> vector<16xi8>
  // CHECK: %[[V:.*]] = llvm.trunc %[[VB]] : vector<16xi8> to vector<16xi1>
  // CHECK: %[[VZ:.*]] = llvm.zext %[[V]] : vector<16xi1> to vector<16xi8>
  // CHECK: llvm.store %[[VZ]], %{{.*}} : vector<16xi8>, !llvm.ptr
  %v = llvm.load %q : !llvm.ptr -> vector<16xi1>
  llvm.store %v, %q : vector<16xi1>, !llvm.ptr
  // Other types are left alone.
  // CHECK: llvm.load %{{.*}} : !llvm.ptr -> f32
  // CHECK-NOT: llvm.trunc
  // CHECK: llvm.getelementptr %{{.*}}[%{{.*}}] : (!llvm.ptr, i64) -> !llvm.ptr, f32
  %f = llvm.load %q : !llvm.ptr -> f32
  %g = llvm.getelementptr %q[%i] : (!llvm.ptr, i64) -> !llvm.ptr, f32
  llvm.store %f, %g : f32, !llvm.ptr
  llvm.return
}

//--- where.mlir
func.func @f(%m: tensor<64x1024xi1>, %g: tensor<64x1024xf32>) -> (tensor<64x1024xf32>, tensor<64x1024xi1>) {
  %z = kiln.constant dense<0.0> : tensor<f32>
  %w = kiln.where %m, %g, %z : tensor<64x1024xi1>, tensor<64x1024xf32>, tensor<f32>
  %gt = kiln.gt %g, %z : tensor<64x1024xf32>, tensor<f32>
  return %w, %gt : tensor<64x1024xf32>, tensor<64x1024xi1>
}
