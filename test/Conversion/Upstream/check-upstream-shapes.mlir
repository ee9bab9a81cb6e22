// RUN: kiln-opt --kiln-check-upstream-shapes --split-input-file %s | FileCheck %s
// Sizes that upstream ops take to agree, checked at run time: each claim
// that fails is reported (a negative size: the site's text is the
// message, the dim's value in place of "{index}"), and the op runs only
// when every claim holds. A cast or slice is copied out and the other
// branch fills zeros: both yield fresh buffers (a view of the source and a
// constant, or a fresh buffer, needed a deallocation decided at run time,
// which the function-level deallocation pipeline cannot lower).

// CHECK:       module attributes {kiln.error_sites = ["tensor.cast at {{.*}}: dim 0 of the source is {index}, not 4 (the result type's)"]}
// CHECK-LABEL: func.func @cast
// CHECK:         %[[D:.*]] = tensor.dim %[[X:.*]], %c0
// CHECK:         %[[OK:.*]] = arith.cmpi eq, %[[D]], %c4
// CHECK:         scf.if
// CHECK:           kiln.report_index_error %{{.*}}, %c-1_i64 {site = 0 : i64}
// CHECK:         %[[R:.*]] = scf.if %[[OK]] -> (tensor<4x3xf32>) {
// CHECK:           %[[C:.*]] = tensor.cast %[[X]] : tensor<?x3xf32> to tensor<4x3xf32>
// CHECK:           %[[COPY:.*]] = linalg.copy ins(%[[C]] : tensor<4x3xf32>)
// CHECK:           scf.yield %[[COPY]]
// CHECK:         } else {
// CHECK:           %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<4x3xf32>)
// CHECK:           scf.yield %[[Z]]
// CHECK:         return %[[R]]
func.func @cast(%x: tensor<?x3xf32>) -> tensor<4x3xf32> {
  %r = tensor.cast %x : tensor<?x3xf32> to tensor<4x3xf32>
  return %r : tensor<4x3xf32>
}

// -----

// The slice reaches position 2 + (3 - 1) * 2 = 6 of dim 1: the dim must
// be at least 7; dim 0 is static (the verifier's).
// CHECK:       module attributes {kiln.error_sites = ["tensor.extract_slice at {{.*}}: dim 1 of the source is {index}, the slice reaches 7"]}
// CHECK-LABEL: func.func @extract_slice
// CHECK:         %[[D:.*]] = tensor.dim %{{.*}}, %c1
// CHECK:         %[[OK:.*]] = arith.cmpi sge, %[[D]], %c7
// CHECK:         scf.if %[[OK]] -> (tensor<2x3xf32>)
// CHECK:           %[[S:.*]] = tensor.extract_slice
// CHECK:           linalg.copy ins(%[[S]]
func.func @extract_slice(%x: tensor<4x?xf32>) -> tensor<2x3xf32> {
  %r = tensor.extract_slice %x[1, 2] [2, 3] [1, 2] : tensor<4x?xf32> to tensor<2x3xf32>
  return %r : tensor<2x3xf32>
}

// -----

// A failed insert leaves the destination as it was.
// CHECK:       module attributes {kiln.error_sites = ["tensor.insert_slice at {{.*}}: dim 0 of the destination is {index}, the slice reaches 5"]}
// CHECK-LABEL: func.func @insert_slice
// CHECK-SAME:    %[[V:.*]]: tensor<2xf32>, %[[DEST:.*]]: tensor<?xf32>
// CHECK:         scf.if %{{.*}} -> (tensor<?xf32>) {
// CHECK:           tensor.insert_slice %[[V]] into %[[DEST]][3] [2] [1]
// CHECK:         } else {
// CHECK:           scf.yield %[[DEST]]
func.func @insert_slice(%v: tensor<2xf32>, %dest: tensor<?xf32>) -> tensor<?xf32> {
  %r = tensor.insert_slice %v into %dest[3] [2] [1] : tensor<2xf32> into tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

// Loop d0 takes its size from operand #0; operand #1's and the init's dim
// must equal it. A dim read at constant position 0 (a broadcast) must hold
// it. A failed op yields its init.
#id = affine_map<(d0) -> (d0)>
#first = affine_map<(d0) -> (0)>
// CHECK:       module attributes {kiln.error_sites = ["linalg.generic at {{.*}}: dim 0 of operand #1 is {index}, not the size of dim 0 of operand #0 (the loop's)", "linalg.generic at {{.*}}: dim 0 of operand #2 is {index}, the op reads position 0", "linalg.generic at {{.*}}: dim 0 of operand #3 is {index}, not the size of dim 0 of operand #0 (the loop's)"]}
// CHECK-LABEL: func.func @generic
// CHECK-SAME:    %[[A:.*]]: tensor<?xf32>, %[[B:.*]]: tensor<?xf32>, %[[C:.*]]: tensor<?xf32>, %[[INIT:.*]]: tensor<?xf32>
// CHECK-COUNT-3: kiln.report_index_error
// CHECK:         scf.if %{{.*}} -> (tensor<?xf32>) {
// CHECK:           linalg.generic
// CHECK:         } else {
// CHECK:           scf.yield %[[INIT]]
func.func @generic(%a: tensor<?xf32>, %b: tensor<?xf32>, %c: tensor<?xf32>, %init: tensor<?xf32>) -> tensor<?xf32> {
  %r = linalg.generic {indexing_maps = [#id, #id, #first, #id], iterator_types = ["parallel"]} ins(%a, %b, %c : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) outs(%init : tensor<?xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    %t = arith.addf %s, %z : f32
    linalg.yield %t : f32
  } -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

// A copy runs only between buffers of equal sizes.
// CHECK:       module attributes {kiln.error_sites = ["memref.copy at {{.*}}: dim 0 of the source is {index}, not the target's"]}
// CHECK-LABEL: func.func @copy
// CHECK:         %[[S:.*]] = memref.dim %{{.*}}, %c0
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %c0
// CHECK:         %[[OK:.*]] = arith.cmpi eq, %[[S]], %[[T]]
// CHECK:         scf.if %[[OK]] {
// CHECK-NEXT:      memref.copy
func.func @copy(%s: memref<?xf32>, %t: memref<?xf32>) {
  memref.copy %s, %t : memref<?xf32> to memref<?xf32>
  return
}

// -----

// Nothing to check: static shapes (the verifier compared them), a cast
// that only forgets a size, a reinterpret_cast inside its buffer (the last
// position 1 + (2 - 1) * 4 = 5 of 6) and a view inside its buffer.
// CHECK-LABEL: func.func @nothing_to_check
// CHECK-NOT:     kiln.report_index_error
// CHECK-NOT:     scf.if
// CHECK:         return
func.func @nothing_to_check(%a: tensor<4xf32>, %b: tensor<4xf32>, %m: memref<2x3xf32>) -> (tensor<4xf32>, tensor<?xf32>, memref<2xf32, strided<[4], offset: 1>>, memref<2xf32>) {
  %r = linalg.add ins(%a, %b : tensor<4xf32>, tensor<4xf32>) outs(%a : tensor<4xf32>) -> tensor<4xf32>
  %c = tensor.cast %a : tensor<4xf32> to tensor<?xf32>
  %v = memref.reinterpret_cast %m to offset: [1], sizes: [2], strides: [4] : memref<2x3xf32> to memref<2xf32, strided<[4], offset: 1>>
  %buf = memref.alloc() : memref<8xi8>
  %c0 = arith.constant 0 : index
  %w = memref.view %buf[%c0][] : memref<8xi8> to memref<2xf32>
  return %r, %c, %v, %w : tensor<4xf32>, tensor<?xf32>, memref<2xf32, strided<[4], offset: 1>>, memref<2xf32>
}

// -----

// A reshape to a static type: the shape operand holds the type's sizes and
// the source as many elements.
// CHECK:       module attributes {kiln.error_sites = ["tensor.reshape at {{.*}}: element 0 of the shape is {index}, not 2 (the result type's)", "tensor.reshape at {{.*}}: element 1 of the shape is {index}, not 4 (the result type's)", "tensor.reshape at {{.*}}: the source has {index} elements, not 8 (the result type's)"]}
// CHECK-LABEL: func.func @reshape
// CHECK-COUNT-2: tensor.extract %{{.*}}[%{{.*}}] : tensor<2xi64>
// CHECK:         %[[D:.*]] = tensor.dim
// CHECK:         %[[COUNT:.*]] = arith.muli %{{.*}}, %[[D]]
// CHECK:         arith.cmpi eq, %[[COUNT]], %c8
// CHECK:         kiln.report_index_error %{{.*}}, %{{.*}} {site = 2 : i64}
// CHECK:         scf.if %{{.*}} -> (tensor<2x4xf32>) {
// CHECK:           tensor.reshape
// CHECK:           linalg.copy
func.func @reshape(%x: tensor<?xf32>, %shape: tensor<2xi64>) -> tensor<2x4xf32> {
  %r = tensor.reshape %x(%shape) : (tensor<?xf32>, tensor<2xi64>) -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}

// -----

// A concat to a static type: the other dims agree with it, and the sizes
// along the concatenated dim add up to its.
// CHECK:       module attributes {kiln.error_sites = ["tensor.concat at {{.*}}: dim 1 of operand #1 is {index}, not 3 (the result type's)", "tensor.concat at {{.*}}: the operands' sizes along dim 0 add up to {index}, not 5 (the result type's)"]}
// CHECK-LABEL: func.func @concat
// CHECK:         scf.if %{{.*}} -> (tensor<5x3xf32>) {
// CHECK:           tensor.concat
func.func @concat(%a: tensor<2x3xf32>, %b: tensor<?x?xf32>) -> tensor<5x3xf32> {
  %r = tensor.concat dim(0) %a, %b : (tensor<2x3xf32>, tensor<?x?xf32>) -> tensor<5x3xf32>
  return %r : tensor<5x3xf32>
}
