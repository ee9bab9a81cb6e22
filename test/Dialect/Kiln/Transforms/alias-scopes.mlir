// RUN: kiln-opt %s --expand-strided-metadata --convert-vector-to-llvm --finalize-memref-to-llvm --kiln-alias-scopes | FileCheck %s

// The loads and stores through a kernel's arguments get the scope of the
// argument's buffer group (kiln.buffer_groups, set by kiln-outline-kernels)
// and the other groups' as noalias -- also through a view (the subview's
// descriptor is rebuilt from the argument's pointers) and for vector
// accesses. %c's buffer is unknown (-1): its store gets no metadata. The
// attribute is consumed.
// CHECK-DAG:   #[[DOMAIN:.*]] = #llvm.alias_scope_domain<{{.*}}description = "k">
// CHECK-DAG:   #[[A:alias_scope[0-9]*]] = #llvm.alias_scope<{{.*}}domain = #[[DOMAIN]], description = "buffer0">
// CHECK-DAG:   #[[B:alias_scope[0-9]*]] = #llvm.alias_scope<{{.*}}domain = #[[DOMAIN]], description = "buffer1">
// CHECK-DAG:   #[[LDOMAIN:.*]] = #llvm.alias_scope_domain<{{.*}}description = "local_buffer">
// CHECK-DAG:   #[[ARG:alias_scope[0-9]*]] = #llvm.alias_scope<{{.*}}domain = #[[LDOMAIN]], description = "buffer0">
// CHECK-DAG:   #[[LOCAL:alias_scope[0-9]*]] = #llvm.alias_scope<{{.*}}domain = #[[LDOMAIN]], description = "local">
// CHECK-LABEL: func.func private @k
// CHECK-NOT:     kiln.buffer_groups
// CHECK:         llvm.load {{.*}}{alias_scopes = [#[[A]]], noalias_scopes = [#[[B]]]} : !llvm.ptr -> f32
// CHECK:         llvm.store {{.*}}{alias_scopes = [#[[B]]], noalias_scopes = [#[[A]]]} : f32, !llvm.ptr
// CHECK:         llvm.load {{.*}}{alias_scopes = [#[[B]]], alignment = 4 : i64, noalias_scopes = [#[[A]]]} : !llvm.ptr -> vector<4xf32>
// CHECK:         llvm.store {{.*}} {alignment = 4 : i64} : vector<4xf32>, !llvm.ptr
func.func private @k(%a: memref<8xf32>, %b: memref<16xf32>, %c: memref<8xf32>, %i: index) attributes {kiln.buffer_groups = array<i64: 0, 1, -1, -1>} {
  %x = memref.load %a[%i] : memref<8xf32>
  %v = memref.subview %b[8] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 8>>
  memref.store %x, %v[%i] : memref<8xf32, strided<[1], offset: 8>>
  %y = vector.load %b[%i] : memref<16xf32>, vector<4xf32>
  vector.store %y, %c[%i] : memref<8xf32>, vector<4xf32>
  return
}

// Arguments of one group (two views of a buffer) and an unknown one: no
// two groups to tell apart, no metadata.
// CHECK-LABEL: func.func private @one
// CHECK-NOT:     alias_scopes
// CHECK:         return
func.func private @one(%a: memref<8xf32>, %c: memref<8xf32>, %i: index) attributes {kiln.buffer_groups = array<i64: 0, 0, -1>} {
  %x = memref.load %a[%i] : memref<8xf32>
  memref.store %x, %c[%i] : memref<8xf32>
  return
}

// A buffer the kernel allocates itself (an accumulator block) overlaps no
// argument: its accesses -- through the aligned pointer computed from
// malloc's -- get a "local" scope, noalias with the arguments' group, which
// in turn is noalias with it (the scopes are checked with @k's above).
// CHECK-LABEL: func.func private @local_buffer
// CHECK:         llvm.call @malloc
// CHECK:         llvm.load {{.*}}{alias_scopes = [#[[ARG]]], noalias_scopes = [#[[LOCAL]]]} : !llvm.ptr -> f32
// CHECK:         llvm.store {{.*}}{alias_scopes = [#[[LOCAL]]], noalias_scopes = [#[[ARG]]]} : f32, !llvm.ptr
// CHECK:         llvm.load {{.*}}{alias_scopes = [#[[LOCAL]]], noalias_scopes = [#[[ARG]]]} : !llvm.ptr -> f32
// CHECK:         llvm.store {{.*}}{alias_scopes = [#[[ARG]]], noalias_scopes = [#[[LOCAL]]]} : f32, !llvm.ptr
func.func private @local_buffer(%a: memref<8xf32>, %i: index) attributes {kiln.buffer_groups = array<i64: 0, -1>} {
  %acc = memref.alloc() {alignment = 64 : i64} : memref<8xf32>
  %x = memref.load %a[%i] : memref<8xf32>
  memref.store %x, %acc[%i] : memref<8xf32>
  %y = memref.load %acc[%i] : memref<8xf32>
  memref.store %y, %a[%i] : memref<8xf32>
  memref.dealloc %acc : memref<8xf32>
  return
}
