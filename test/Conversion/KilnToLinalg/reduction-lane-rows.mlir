// Float sums and products over short rows (4 to 31 elements, the last dim
// or a trailing run of dims) on the CPU, with at least 16 f32 (8 f64)
// rows: groups of 16 (8) rows, a row per lane of a vector. The rows'
// pieces are transposed in registers and added element after element into
// the lanes, each row in order (the order of a row reduced alone: its
// elements into lane 0, then the tree of the other lanes' identities), the
// lanes stored, and a generic writes the group's slice of the result
// through the epilogue. A stored input is read in place (a masked load per
// row, or whole vectors of consecutive rows of 4 or 8 elements); a fused
// producer chain is evaluated first into a buffer of 8 groups' rows. Rows
// of 3 or 32 elements, fewer rows than a group and amax keep the kernel of
// a row at a time.
// RUN: kiln-opt %s -split-input-file -kiln-decompose -kiln-fuse-elementwise=row-groups=true -convert-kiln-to-linalg | FileCheck %s

// 100 rows of 10: 7 groups, the last of 4 rows (the lanes past it read
// row 99 again). Pieces of 16 elements, 10 of them loaded, one 16 x 16
// tile; the 10 elements added in order.
// CHECK-LABEL: func.func @sum_rows_of_10
// CHECK: scf.forall (%{{.*}}) in (7) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<100xf32>)
// CHECK: %[[FIRST:.*]] = arith.muli %{{.*}}, %c16
// CHECK: %[[LEFT:.*]] = arith.subi %c100, %[[FIRST]]
// CHECK: arith.minsi %c16{{.*}}, %[[LEFT]]
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1]] : tensor<100x10xf32> into tensor<1000xf32>
// CHECK: %[[ACCS:.*]] = memref.alloc() {alignment = 64 : i64} : memref<16xf32>
// CHECK: %[[MASK:.*]] = vector.create_mask %c10{{.*}} : vector<16xi1>
// CHECK: arith.minsi %{{.*}}, %c99
// CHECK-COUNT-16: vector.transfer_read %[[FLAT]][%{{.*}}], %{{.*}}, %[[MASK]] {in_bounds = [true]} : tensor<1000xf32>, vector<16xf32>
// CHECK-COUNT-64: vector.shuffle
// CHECK: %[[S1:.*]] = arith.addf %[[ZERO:.*]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S2:.*]] = arith.addf %[[S1]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S3:.*]] = arith.addf %[[S2]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S4:.*]] = arith.addf %[[S3]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S5:.*]] = arith.addf %[[S4]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S6:.*]] = arith.addf %[[S5]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S7:.*]] = arith.addf %[[S6]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S8:.*]] = arith.addf %[[S7]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S9:.*]] = arith.addf %[[S8]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: %[[S10:.*]] = arith.addf %[[S9]], %{{.*}} : vector<16xf32>
// CHECK-NEXT: arith.addf %[[S10]], %[[ZERO]] : vector<16xf32>
// CHECK: vector.store %{{.*}}, %[[ACCS]][%{{.*}}] : memref<16xf32>, vector<16xf32>
// CHECK: %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][%[[FIRST]]] [%{{.*}}] [1] : tensor<100xf32> to tensor<?xf32>
// CHECK: %[[TILE:.*]] = linalg.generic {{.*}} outs(%[[SLICE]] : tensor<?xf32>)
// CHECK: memref.load %[[ACCS]]
// CHECK: tensor.parallel_insert_slice %[[TILE]] into %[[OUT]][%[[FIRST]]]
func.func @sum_rows_of_10(%x: tensor<100x10xf32>) -> tensor<100xf32> {
  %y = kiln.sum %x {dims = array<i64: 1>} : tensor<100x10xf32>
  return %y : tensor<100xf32>
}

// -----

// A mean over rows of 4 of [2, 32, 4] (keepdim): 64 rows, the input read
// flat (its elements in the order of [64, 4]); four
// whole vectors of 4 consecutive rows each (masked past the input's end:
// in_bounds false), transposed as four 4 x 4 tiles side by side in 8
// shuffles; lane 4q + i then holds row 4i + q, put back in order before
// the store; the epilogue divides by 4.
// CHECK-LABEL: func.func @mean_rows_of_4
// CHECK: scf.forall (%{{.*}}) in (4)
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1, 2]] : tensor<2x32x4xf32> into tensor<256xf32>
// CHECK-NOT: vector.create_mask
// CHECK-COUNT-4: vector.transfer_read %[[FLAT]][%{{.*}}], %{{.*}} : tensor<256xf32>, vector<16xf32>
// CHECK-COUNT-8: vector.shuffle
// CHECK-COUNT-4: arith.addf
// CHECK: %[[ROWS:.*]] = vector.shuffle %[[LANES:.*]], %[[LANES]] [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
// CHECK: vector.store %[[ROWS]]
// CHECK: linalg.generic
// CHECK: arith.divf %{{.*}}, %{{.*}} : f32
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0, 1]] output_shape [2, 32] : tensor<64xf32> into tensor<2x32xf32>
func.func @mean_rows_of_4(%x: tensor<2x32x4xf32>) -> tensor<2x32x1xf32> {
  %y = kiln.mean %x {dims = array<i64: 2>, keepdim = true} : tensor<2x32x4xf32>
  return %y : tensor<2x32x1xf32>
}

// -----

// An f64 product over rows of 20 of [3, 5, 20]: 15 rows, 8 a group (2
// groups), blocks of 8 elements (8, 8, then 4), each an 8 x 8 tile
// transposed in 24 shuffles.
// CHECK-LABEL: func.func @prod_f64
// CHECK: scf.forall (%{{.*}}) in (2)
// CHECK: vector.create_mask %c8{{.*}} : vector<8xi1>
// CHECK-COUNT-8: vector.transfer_read {{.*}} : tensor<300xf64>, vector<8xf64>
// CHECK-COUNT-24: vector.shuffle
// CHECK: arith.mulf %{{.*}}, %{{.*}} : vector<8xf64>
// CHECK: vector.create_mask %c8{{.*}} : vector<8xi1>
// CHECK-COUNT-8: vector.transfer_read {{.*}} : tensor<300xf64>, vector<8xf64>
// CHECK: vector.create_mask %c4{{.*}} : vector<8xi1>
// CHECK-COUNT-8: vector.transfer_read {{.*}} : tensor<300xf64>, vector<8xf64>
// CHECK: vector.store %{{.*}} : memref<8xf64>, vector<8xf64>
// CHECK: tensor.expand_shape %{{.*}} output_shape [3, 5] : tensor<15xf64> into tensor<3x5xf64>
func.func @prod_f64(%x: tensor<3x5x20xf64>) -> tensor<3x5xf64> {
  %y = kiln.prod %x {dims = array<i64: 2>} : tensor<3x5x20xf64>
  return %y : tensor<3x5xf64>
}

// -----

// exp(x) fused into the sum: an iteration takes 8 groups (128 rows; 200
// rows: 2 iterations), evaluates exp over its rows' elements in order into
// a buffer (zeros past its last row), then each group of 16 rows loads its
// pieces from there.
// CHECK-LABEL: func.func @sum_of_exp
// CHECK: scf.forall (%{{.*}}) in (2)
// CHECK: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<1536xf32>
// CHECK: scf.for %[[P:.*]] = %c0{{.*}} to %{{.*}} step %c1
// CHECK: %[[X:.*]] = tensor.extract %arg0[%{{.*}}, %{{.*}}] : tensor<200x12xf32>
// CHECK: %[[E:.*]] = math.exp %[[X]] : f32
// CHECK: memref.store %[[E]], %[[BUF]][%[[P]]]
// CHECK: scf.for %{{.*}} = %{{.*}} to %c1536
// CHECK: %[[ACCS:.*]] = memref.alloc() {alignment = 64 : i64} : memref<128xf32>
// CHECK: scf.for %[[G:.*]] = %c0{{.*}} to %c128{{.*}} step %c16
// CHECK-COUNT-16: vector.maskedload %[[BUF]]
// CHECK: vector.store %{{.*}}, %[[ACCS]][%[[G]]]
// CHECK: linalg.generic
// CHECK: memref.load %[[ACCS]]
func.func @sum_of_exp(%x: tensor<200x12xf32>) -> tensor<200xf32> {
  %e = kiln.exp %x : tensor<200x12xf32>
  %y = kiln.sum %e {dims = array<i64: 1>} : tensor<200x12xf32>
  return %y : tensor<200xf32>
}

// -----

// Not taken: fewer rows than a group (15 of 10 f32), rows of 3 or 32
// elements, and amax (a maximum does not depend on the order).
// CHECK-LABEL: func.func @row_at_a_time
// CHECK-NOT: scf.forall
// CHECK-NOT: vector.shuffle
// CHECK: return
func.func @row_at_a_time(%a: tensor<15x10xf32>, %b: tensor<100x3xf32>, %c: tensor<100x32xf32>, %d: tensor<100x10xf32>) -> (tensor<15xf32>, tensor<100xf32>, tensor<100xf32>, tensor<100xf32>) {
  %ra = kiln.sum %a {dims = array<i64: 1>} : tensor<15x10xf32>
  %rb = kiln.sum %b {dims = array<i64: 1>} : tensor<100x3xf32>
  %rc = kiln.sum %c {dims = array<i64: 1>} : tensor<100x32xf32>
  %rd = kiln.amax %d {dims = array<i64: 1>} : tensor<100x10xf32>
  return %ra, %rb, %rc, %rd : tensor<15xf32>, tensor<100xf32>, tensor<100xf32>, tensor<100xf32>
}
