// Register tiles fit the CPU's register file
// (convert-kiln-to-linalg{vector-bits}, which kiln-run, kiln-compile and the
// C++ API set from the host). The matmul's: AVX-512's 32 registers hold 8
// rows x 2 vectors of accumulators, AVX2's and SSE's 16 hold 6 rows x 2
// vectors (8 rows there spilled most accumulators on every k step).
// RUN: kiln-opt --kiln-cpu-pipeline --remarks-filter=kiln-lower %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=AVX512
// RUN: kiln-opt --kiln-cpu-pipeline=vector-bits=256 --remarks-filter=kiln-lower %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=AVX2
// RUN: kiln-opt --kiln-cpu-pipeline=vector-bits=128 --remarks-filter=kiln-lower %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=SSE
// RUN: not kiln-opt --kiln-cpu-pipeline=vector-bits=300 %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: unsupported vector-bits 300 (expected 128, 256 or 512)

// AVX512-DAG: Function=square | Remark="matmul tensor<512x256xf32> x tensor<256x512xf32>: register-tiled, blocks of 8 rows x 32 columns
// AVX2-DAG: Function=square | Remark="matmul tensor<512x256xf32> x tensor<256x512xf32>: register-tiled, blocks of 6 rows x 16 columns
// SSE-DAG: Function=square | Remark="matmul tensor<512x256xf32> x tensor<256x512xf32>: register-tiled, blocks of 6 rows x 8 columns
func.func @square(%a: tensor<512x256xf32>, %b: tensor<256x512xf32>) -> tensor<512x512xf32> {
  %r = kiln.matmul %a, %b : tensor<512x256xf32>, tensor<256x512xf32>
  return %r : tensor<512x512xf32>
}

// AVX512-DAG: Function=square64 | Remark="matmul tensor<300x64xf64> x tensor<64x100xf64>: register-tiled, blocks of 8 rows x 16 columns
// AVX2-DAG: Function=square64 | Remark="matmul tensor<300x64xf64> x tensor<64x100xf64>: register-tiled, blocks of 6 rows x 8 columns
// SSE-DAG: Function=square64 | Remark="matmul tensor<300x64xf64> x tensor<64x100xf64>: register-tiled, blocks of 6 rows x 4 columns
func.func @square64(%a: tensor<300x64xf64>, %b: tensor<64x100xf64>) -> tensor<300x100xf64> {
  %r = kiln.matmul %a, %b : tensor<300x64xf64>, tensor<64x100xf64>
  return %r : tensor<300x100xf64>
}

// A small batch whose rows the tile's height does not divide: blocks of
// the most rows (4 up to the tile's) that divide them, rather than rows
// left over in a region of their own that reads all of rhs again.
// 16 rows: 2 blocks of 8 with AVX-512; 4 blocks of 4 with AVX2, as neither
// 6 nor 5 divides 16.
// AVX512-DAG: Function=batch16 | Remark="matmul tensor<16x512xf32> x tensor<512x256xf32>: register-tiled, blocks of 8 rows x 32 columns
// AVX2-DAG: Function=batch16 | Remark="matmul tensor<16x512xf32> x tensor<512x256xf32>: register-tiled, blocks of 4 rows x 16 columns
func.func @batch16(%a: tensor<16x512xf32>, %b: tensor<512x256xf32>) -> tensor<16x256xf32> {
  %r = kiln.matmul %a, %b : tensor<16x512xf32>, tensor<512x256xf32>
  return %r : tensor<16x256xf32>
}

// 20 rows: 4 blocks of 5 (both); 23 rows, prime: 2 blocks of 8 and a
// block of 7 (AVX-512), 3 of 6 and one of 5 (AVX2).
// AVX512-DAG: Function=batch20 | Remark="matmul tensor<20x512xf32> x tensor<512x256xf32>: register-tiled, blocks of 5 rows x 32 columns
// AVX2-DAG: Function=batch20 | Remark="matmul tensor<20x512xf32> x tensor<512x256xf32>: register-tiled, blocks of 5 rows x 16 columns
// AVX512-DAG: Function=batch23 | Remark="matmul tensor<23x512xf32> x tensor<512x256xf32>: register-tiled, blocks of 8 rows x 32 columns
// AVX2-DAG: Function=batch23 | Remark="matmul tensor<23x512xf32> x tensor<512x256xf32>: register-tiled, blocks of 6 rows x 16 columns
func.func @batch20(%a: tensor<20x512xf32>, %b: tensor<512x256xf32>) -> tensor<20x256xf32> {
  %r = kiln.matmul %a, %b : tensor<20x512xf32>, tensor<512x256xf32>
  return %r : tensor<20x256xf32>
}
func.func @batch23(%a: tensor<23x512xf32>, %b: tensor<512x256xf32>) -> tensor<23x256xf32> {
  %r = kiln.matmul %a, %b : tensor<23x512xf32>, tensor<512x256xf32>
  return %r : tensor<23x256xf32>
}

// Matrix times vector: a vector register's lanes of rows share a vector of
// sums, their elements read in square tiles of that side transposed in
// registers (16 x 16 f32 tiles took all 32 of AVX-512's registers).
// AVX512-DAG: Function=mv | Remark="matmul tensor<100x64xf32> x tensor<64xf32>: matrix-vector, 16 rows per vector of sums, their elements read in 16x16 tiles
// AVX2-DAG: Function=mv | Remark="matmul tensor<100x64xf32> x tensor<64xf32>: matrix-vector, 8 rows per vector of sums, their elements read in 8x8 tiles
// SSE-DAG: Function=mv | Remark="matmul tensor<100x64xf32> x tensor<64xf32>: matrix-vector, 4 rows per vector of sums, their elements read in 4x4 tiles
// AVX2-DAG: Function=mv64 | Remark="matmul tensor<100x64xf64> x tensor<64xf64>: matrix-vector, 4 rows per vector of sums, their elements read in 4x4 tiles
func.func @mv(%a: tensor<100x64xf32>, %x: tensor<64xf32>) -> tensor<100xf32> {
  %r = kiln.matmul %a, %x : tensor<100x64xf32>, tensor<64xf32>
  return %r : tensor<100xf32>
}
func.func @mv64(%a: tensor<100x64xf64>, %x: tensor<64xf64>) -> tensor<100xf64> {
  %r = kiln.matmul %a, %x : tensor<100x64xf64>, tensor<64xf64>
  return %r : tensor<100xf64>
}

// Short rows, a row per lane: as many rows at a time as a register has
// lanes, their square tiles transposed in registers.
// AVX512-DAG: Function=lane_rows | Remark="kiln.sum of tensor<4096x10xf32> over dims [1]: rows of 10 elements, 16 rows at a time
// AVX2-DAG: Function=lane_rows | Remark="kiln.sum of tensor<4096x10xf32> over dims [1]: rows of 10 elements, 8 rows at a time
// SSE-DAG: Function=lane_rows | Remark="kiln.sum of tensor<4096x10xf32> over dims [1]: rows of 10 elements, 4 rows at a time
// AVX2-DAG: Function=lane_rows | Remark="kiln.softmax over dim 1 of tensor<4096x10xf32>: one kernel, 8 rows at a time, a row per lane
// AVX2-DAG: Function=lane_rows | Remark="kiln.softmax over dim 1 of tensor<100x31xf64>: one kernel, 4 rows at a time, a row per lane
func.func @lane_rows(%x: tensor<4096x10xf32>, %y: tensor<100x31xf64>) -> (tensor<4096xf32>, tensor<4096x10xf32>, tensor<100x31xf64>) {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4096x10xf32>
  %t = kiln.softmax %x {dim = 1 : i64} : tensor<4096x10xf32>
  %u = kiln.softmax %y {dim = 1 : i64} : tensor<100x31xf64>
  return %s, %t, %u : tensor<4096xf32>, tensor<4096x10xf32>, tensor<100x31xf64>
}
