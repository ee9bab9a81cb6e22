// Softmax over short rows (4 to 31 elements) on the CPU: groups of 16 f32
// (8 f64) rows, a row per lane of a vector. A stored input's group is read
// a row at a time (a masked load of its elements, the rows past the last
// one reading the last row again) and transposed in registers into a
// buffer of a vector per element j; then the maximum on integer keys, the
// sum of exp(x - m) in j order, the results in place; then the rows
// transposed back into a row-major buffer (masked stores) and a generic
// writes the group's slice of the flat result. A fused producer chain is
// evaluated first, over the group's elements in order, into that
// row-major buffer, which the transposes read. Rows of 4 or 8 f32 (4 f64)
// elements are read and written as whole vectors of consecutive rows.
// Rows of 3 or 32 elements keep the rows-in-cache kernel.
// RUN: kiln-opt %s -split-input-file -kiln-fuse-elementwise -convert-kiln-to-linalg | FileCheck %s

// 100 rows of 10: 7 groups, the last of 4 rows.
// CHECK-LABEL: func.func @softmax_rows_of_10
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1]] : tensor<100x10xf32> into tensor<1000xf32>
// CHECK: scf.forall (%{{.*}}) in (7) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<1000xf32>)
// CHECK: %[[FIRST:.*]] = arith.muli %{{.*}}, %c16
// CHECK: %[[LEFT:.*]] = arith.subi %c100, %[[FIRST]]
// CHECK: %[[COUNT:.*]] = arith.minsi %c16{{.*}}, %[[LEFT]]
// CHECK: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<160xf32>
// CHECK: %[[ROWS:.*]] = memref.alloc() {alignment = 64 : i64} : memref<160xf32>
// CHECK: %[[MASK:.*]] = vector.create_mask %c10{{.*}} : vector<16xi1>
// CHECK: arith.minsi %{{.*}}, %c99
// CHECK-COUNT-16: vector.transfer_read %[[FLAT]][%{{.*}}], %{{.*}}, %[[MASK]] {in_bounds = [true]} : tensor<1000xf32>, vector<16xf32>
// CHECK-COUNT-64: vector.shuffle
// CHECK-COUNT-10: vector.store %{{.*}}, %[[BUF]][%{{.*}}] : memref<160xf32>, vector<16xf32>
// CHECK: scf.for %{{.*}} = %c0 to %c10 step %c1 iter_args(%{{.*}} = %{{.*}}) -> (vector<16xi32>)
// CHECK: arith.maxsi %{{.*}} : vector<16xi32>
// CHECK: scf.for %{{.*}} = %c0 to %c10 step %c1 iter_args(%[[SUM:.*]] = %{{.*}}) -> (vector<16xf32>)
// CHECK: %[[E:.*]] = math.exp %{{.*}} : vector<16xf32>
// CHECK: vector.store %[[E]], %[[BUF]]
// CHECK: arith.addf %[[SUM]], %[[E]] : vector<16xf32>
// CHECK: %[[INV:.*]] = arith.divf %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK: scf.for
// CHECK: arith.mulf %{{.*}}, %[[INV]] : vector<16xf32>
// CHECK-COUNT-10: vector.load %[[BUF]]
// CHECK-COUNT-16: vector.maskedstore %[[ROWS]]
// CHECK: %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][%{{.*}}] [%{{.*}}] [1] : tensor<1000xf32> to tensor<?xf32>
// CHECK: %[[TILE:.*]] = linalg.generic {{.*}} outs(%[[SLICE]] : tensor<?xf32>)
// CHECK: memref.load %[[ROWS]]
// CHECK: tensor.parallel_insert_slice %[[TILE]] into %[[OUT]]
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0, 1]] output_shape [100, 10] : tensor<1000xf32> into tensor<100x10xf32>
func.func @softmax_rows_of_10(%x: tensor<100x10xf32>) -> tensor<100x10xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<100x10xf32>
  return %y : tensor<100x10xf32>
}

// -----

// f64 log_softmax over rows of 20 of [4, 8, 20]: 8 rows a group, blocks of
// 8 elements (three, the last of 4), each transposed with 24 shuffles;
// x - m - log(s), the exps not kept.
// CHECK-LABEL: func.func @log_softmax_f64
// CHECK: tensor.collapse_shape %arg0 {{\[\[}}0, 1, 2]] : tensor<4x8x20xf64> into tensor<640xf64>
// CHECK: scf.forall (%{{.*}}) in (4)
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<160xf64>
// CHECK: vector.create_mask %c8{{.*}} : vector<8xi1>
// CHECK-COUNT-8: vector.transfer_read {{.*}} : tensor<640xf64>, vector<8xf64>
// CHECK-COUNT-24: vector.shuffle
// CHECK: vector.create_mask %c8{{.*}} : vector<8xi1>
// CHECK-COUNT-8: vector.transfer_read
// CHECK-COUNT-24: vector.shuffle
// CHECK: vector.create_mask %c4{{.*}} : vector<8xi1>
// CHECK: arith.maxsi %{{.*}} : vector<8xi64>
// CHECK: math.exp %{{.*}} : vector<8xf64>
// CHECK-NOT: vector.store
// CHECK: scf.yield
// CHECK: %[[LOG:.*]] = math.log %{{.*}} : vector<8xf64>
// CHECK: %[[SHIFTED:.*]] = arith.subf %{{.*}}, %{{.*}} : vector<8xf64>
// CHECK: arith.subf %[[SHIFTED]], %[[LOG]] : vector<8xf64>
// CHECK: tensor.expand_shape %{{.*}} output_shape [4, 8, 20] : tensor<640xf64> into tensor<4x8x20xf64>
func.func @log_softmax_f64(%x: tensor<4x8x20xf64>) -> tensor<4x8x20xf64> {
  %y = kiln.log_softmax %x {dim = 2 : i64} : tensor<4x8x20xf64>
  return %y : tensor<4x8x20xf64>
}

// -----

// A fused producer chain (x * x) is evaluated over the group's elements in
// order (delinearized, so the addresses stay consecutive) into the
// row-major buffer, the rest of it zeros, which the transposes read; a
// fused epilogue (exp) is applied where the group's slice is written.
// CHECK-LABEL: func.func @chain_and_epilogue
// CHECK: scf.forall
// CHECK: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<192xf32>
// CHECK: %[[ROWS:.*]] = memref.alloc() {alignment = 64 : i64} : memref<192xf32>
// CHECK: %[[LENGTH:.*]] = arith.muli %{{.*}}, %c12
// CHECK: scf.for %[[P:.*]] = %c0{{.*}} to %[[LENGTH]] step %c1{{.*}} {
// CHECK: arith.divui %[[P]], %c12
// CHECK: %[[X:.*]] = tensor.extract %arg0
// CHECK: %[[XX:.*]] = arith.mulf %[[X]], %[[X]] : f32
// CHECK: memref.store %[[XX]], %[[ROWS]][%[[P]]]
// CHECK: scf.for %[[Q:.*]] = %[[LENGTH]] to %c192{{.*}} step %c1{{.*}} {
// CHECK: memref.store %{{.*}}, %[[ROWS]][%[[Q]]]
// CHECK-COUNT-16: vector.maskedload %[[ROWS]]
// CHECK-COUNT-64: vector.shuffle
// CHECK-NOT: arith.mulf %{{.*}} : f32
// CHECK: vector.store %{{.*}}, %[[BUF]]
// CHECK: linalg.generic
// CHECK: memref.load %[[ROWS]]
// CHECK: math.exp %{{.*}} : f32
func.func @chain_and_epilogue(%x: tensor<64x12xf32>) -> tensor<64x12xf32> {
  %a = kiln.mul %x, %x : tensor<64x12xf32>, tensor<64x12xf32>
  %s = kiln.softmax %a {dim = 1 : i64} : tensor<64x12xf32>
  %e = kiln.exp %s : tensor<64x12xf32>
  return %e : tensor<64x12xf32>
}

// -----

// Rows of 3 (LLVM vectorizes the rows-in-cache kernel's loads of triples)
// and of 32 (the lanes of a sum): one forall iteration per row.
// CHECK-LABEL: func.func @not_short
// CHECK: scf.forall (%{{.*}}) in (64)
// CHECK-NOT: vector.shuffle
// CHECK: scf.forall (%{{.*}}) in (64)
// CHECK-NOT: vector.shuffle
// CHECK: return
func.func @not_short(%x: tensor<64x3xf32>, %y: tensor<64x32xf32>) -> (tensor<64x3xf32>, tensor<64x32xf32>) {
  %a = kiln.softmax %x {dim = 1 : i64} : tensor<64x3xf32>
  %b = kiln.softmax %y {dim = 1 : i64} : tensor<64x32xf32>
  return %a, %b : tensor<64x3xf32>, tensor<64x32xf32>
}

// -----

// Rows of 8 f32: each vector is two whole rows (8 loads of 16 elements,
// masked past the input's end only: in_bounds false), transposed as 8x8
// tiles side by side (24 shuffles); the passes as for other rows; then
// transposed back (24 shuffles) and stored whole into the row-major buffer.
// CHECK-LABEL: func.func @softmax_rows_of_8
// CHECK: scf.forall (%{{.*}}) in (4)
// CHECK: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<128xf32>
// CHECK: %[[ROWS:.*]] = memref.alloc() {alignment = 64 : i64} : memref<128xf32>
// CHECK-NOT: vector.create_mask
// CHECK-COUNT-8: vector.transfer_read %{{.*}}[%{{.*}}], %{{.*}} : tensor<512xf32>, vector<16xf32>
// CHECK-COUNT-24: vector.shuffle
// CHECK-COUNT-8: vector.store %{{.*}}, %[[BUF]]
// CHECK: math.exp
// CHECK-COUNT-8: vector.load %[[BUF]]
// CHECK-COUNT-24: vector.shuffle
// CHECK-COUNT-8: vector.store %{{.*}}, %[[ROWS]]
// CHECK-NOT: vector.maskedstore
// CHECK: linalg.generic
func.func @softmax_rows_of_8(%x: tensor<64x8xf32>) -> tensor<64x8xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<64x8xf32>
  return %y : tensor<64x8xf32>
}
