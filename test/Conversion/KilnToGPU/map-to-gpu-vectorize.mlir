// RUN: kiln-opt %s -split-input-file '--kiln-map-to-gpu=vectorize=true' | FileCheck %s
// RUN: kiln-opt %s -split-input-file --kiln-map-to-gpu | FileCheck %s --check-prefix=DEFAULT

// With vectorize, a large elementwise kernel whose operands are dense along
// the innermost dim, or constant along it (%b), takes four consecutive
// points per thread: 16-byte vector loads and stores, the payload once per
// point. By default: scalar accesses.
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @dense
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %c64{{.*}}, {{.*}}) threads({{.*}}) in ({{.*}} = %c256
// CHECK:           %[[J:.*]] = arith.muli %{{.*}}, %c4
// CHECK:           %[[A:.*]] = vector.load %arg0[%{{.*}}, %[[J]]] {alignment = 16 : i64} : memref<256x256xf32>, vector<4xf32>
// CHECK:           %[[A0:.*]] = vector.extract %[[A]][0]
// CHECK:           %[[B:.*]] = memref.load %arg1[
// CHECK:           %[[S0:.*]] = arith.addf %[[A0]], %[[B]]
// CHECK-COUNT-3:   arith.addf
// CHECK:           %[[V:.*]] = vector.from_elements %[[S0]],
// CHECK:           vector.store %[[V]], %arg2[%{{.*}}, %[[J]]] {alignment = 16 : i64}
// DEFAULT-LABEL: func.func @dense
// DEFAULT-NOT:     vector.load
// DEFAULT:         memref.load %arg0
// DEFAULT:         arith.addf
// DEFAULT-NOT:     vector.load
func.func @dense(%a: memref<256x256xf32>, %b: memref<256xf32>, %out: memref<256x256xf32>) {
  linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : memref<256x256xf32>, memref<256xf32>) outs(%out : memref<256x256xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A transposed read is not dense along the innermost dim: one point per
// thread, scalar accesses.
#t = affine_map<(d0, d1) -> (d1, d0)>
#i = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @transposed
// CHECK-NOT:     vector.load
// CHECK:         memref.load %arg0
func.func @transposed(%a: memref<256x256xf32>, %out: memref<256x256xf32>) {
  linalg.generic {indexing_maps = [#t, #i], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<256x256xf32>) outs(%out : memref<256x256xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  return
}
