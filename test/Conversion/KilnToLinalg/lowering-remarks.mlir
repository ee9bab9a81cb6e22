// RUN: kiln-opt --kiln-cpu-pipeline --remarks-filter=kiln-lower %s -o /dev/null 2>&1 | FileCheck %s
// RUN: kiln-opt --kiln-gpu-pipeline --remarks-filter=kiln-lower %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=GPU

// The lowering explains each kernel's algorithm (remarks of category
// kiln-lower, at the op's location), as chosen from the shapes.

func.func @f(%x: tensor<4096x32768xf32>, %g: tensor<4096x4096xf32>,
             %gi: tensor<4096x256xi64>, %m: tensor<512x256xf32>,
             %n: tensor<256x512xf32>, %big: tensor<1x16777216xf32>,
             %ti: tensor<100xi64>, %si: tensor<64xi64>)
    -> (tensor<4096x16xf32>, tensor<4096x1024xf32>, tensor<1x100xf32>,
        tensor<4096xf32>, tensor<32768xf32>, tensor<f32>,
        tensor<4096x256xf32>, tensor<64x4096xf32>, tensor<100xf32>,
        tensor<4096x4096xf32>, tensor<4096xi64>, tensor<512x512xf32>,
        tensor<4096x16xf32>, tensor<4096x4096xf32>, tensor<4096x4096xf32>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}remark: [Analysis] Kernel | Category:kiln-lower | Function=f | Remark="kiln.topk of tensor<4096x32768xf32>: kiln_rt_topk_f32, 4096 row(s) of 32768, k = 16: bound selection: one pass keeps the best of 32 interleaved lanes, whose k-th best bounds the answer from below; a second pass (the row in cache) collects the elements not worse than it, which are ranked; rows in parallel"
  %v0, %i0 = kiln.topk %x {k = 16 : i64, dim = 1 : i64} : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}k = 1024: radix selection (a histogram of 32-bit keys finds the bucket of the k-th, then the k winners are sorted); rows in parallel
  %v1, %i1 = kiln.topk %x {k = 1024 : i64, dim = 1 : i64} : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}1 row(s) of 16777216, k = 100: keeps a buffer of 2k+16 candidates compacted by a branch-free quickselect; {{.*}}; with fewer rows than threads, rows are split into segments whose candidates merge
  %v2, %i2 = kiln.topk %big {k = 100 : i64, dim = 1 : i64} : tensor<1x16777216xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<4096x32768xf32> over dims [1]: row reduction, 4096 kept position(s) in parallel, each reducing 32768 element(s) with its accumulators in registers; float: 32 lanes
  %s1 = kiln.sum %x {dims = array<i64: 1>} : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<4096x32768xf32> over dims [0]: column reduction, the innermost dim is kept: each block of contiguous columns walks the reduced rows in order, each row into its lane's accumulators (in memory); blocks in parallel; float: 32 lanes, each its share
  %s0 = kiln.sum %x {dims = array<i64: 0>} : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 2]]:{{.*}}kiln.sum of tensor<4096x32768xf32>: consecutive dims reduced (or kept) alike are one run of elements, so it is reduced as tensor<134217728xf32> over dims [0]"
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<134217728xf32> over dims [0]: 1 kept position(s) would leave threads idle, so dim 0 is split into 1024 segments of 131072 position(s) reduced in parallel, then merged (2 kernels)
  %sa = kiln.sum %x : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.gather along dim 1 of tensor<4096x4096xf32>: direct indexed loads, rows in parallel; each row checks its indices in the same loop {{.*}}; the next input row streams into the cache
  %ga = kiln.gather %g, %gi {dim = 1 : i64} : tensor<4096x4096xf32>, tensor<4096x256xi64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.index_select along dim 0 of tensor<4096x4096xf32>: every index checked up front, then each selected slice (4096 contiguous elements) copied whole
  %is = kiln.index_select %g, %si {dim = 0 : i64} : tensor<4096x4096xf32>, tensor<64xi64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.take of tensor<4096x4096xf32>: every index checked up front (negative ones count from the end), then direct loads, one parallel loop over the 100 results
  %tk = kiln.take %g, %ti : tensor<4096x4096xf32>, tensor<100xi64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.softmax over dim 1 of tensor<4096x4096xf32>: one kernel, rows in parallel; each row (16384 bytes) is read from memory once and stays in cache for its three passes
  %sm = kiln.softmax %g {dim = 1 : i64} : tensor<4096x4096xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.argmax of tensor<4096x32768xf32>: kiln_rt_argreduce_f32, 4096 row(s) of 32768: the extreme at memory speed, 64 bytes of lanes per instruction, remembering the first 512-element block reaching it, then the first index in that block (from cache); NaN greatest, the lowest index on ties; rows in parallel"
  %am = kiln.argmax %x {dim = 1 : i64} : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}matmul tensor<512x256xf32> x tensor<256x512xf32>: register-tiled, blocks of 8 rows x 32 columns
  %mm = kiln.matmul %m, %n : tensor<512x256xf32>, tensor<256x512xf32>
  %e = kiln.exp %x : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}fused kiln.topk: the producer chain is evaluated into 128 tiles of 32 along dim 0 (4194304 bytes each)
  %v3, %i3 = kiln.topk %e {k = 16 : i64, dim = 1 : i64} : tensor<4096x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.scatter_add along dim 1 of tensor<4096x4096xf32>: 4096 independent groups in parallel (everything under one index of the dims before it), each walking its positions in row-major order (deterministic); each group copies its slice of the base first (in cache, no separate copy)
  %sc = kiln.scatter_add %g, %gi, %ga {dim = 1 : i64} : tensor<4096x4096xf32>, tensor<4096x256xi64>, tensor<4096x256xf32>
  %pi = kiln.reshape %gi : tensor<4096x256xi64> -> tensor<1048576xi64>
  %ps = kiln.reshape %ga : tensor<4096x256xf32> -> tensor<1048576xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.put into tensor<4096x4096xf32>: every index checked up front, then one sequential loop over the 1048576 positions in row-major order (any position may hit any element; sums in that order)
  %pt = kiln.put %g, %pi, %ps {accumulate = true} : tensor<4096x4096xf32>, tensor<1048576xi64>, tensor<1048576xf32>
  return %v0, %v1, %v2, %s1, %s0, %sa, %ga, %is, %tk, %sm, %am, %mm, %v3, %sc, %pt
      : tensor<4096x16xf32>, tensor<4096x1024xf32>, tensor<1x100xf32>,
        tensor<4096xf32>, tensor<32768xf32>, tensor<f32>,
        tensor<4096x256xf32>, tensor<64x4096xf32>, tensor<100xf32>,
        tensor<4096x4096xf32>, tensor<4096xi64>, tensor<512x512xf32>,
        tensor<4096x16xf32>, tensor<4096x4096xf32>, tensor<4096x4096xf32>
}

// One long row: split into segments when there are fewer rows than threads.
func.func @g(%big: tensor<1x16777216xf32>) -> (tensor<1xf32>, tensor<1xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=g | Remark="kiln.max of tensor<1x16777216xf32>: kiln_rt_argreduce_f32, 1 row(s) of 16777216: {{.*}}; rows in parallel; with fewer rows than threads, each row is split into segments scanned in parallel and combined in order"
  %v, %i = kiln.max %big {dim = 1 : i64} : tensor<1x16777216xf32>
  return %v, %i : tensor<1xf32>, tensor<1xi64>
}

// Softmax over few rows: one kernel unless there are fewer than 8 rows of
// more than 256 KB in all that split across threads (a row of at least 8192
// elements: 2 segments of at least 4096), then 3: the segments' maxima and
// sums, the rows', the result. Rows of 4096 do not split; there the passes
// would read each row twice and compute its exps twice, for no
// parallelism. 4x16384 (256 KB in all) keeps its rows in cache.
func.func @few_rows(%x: tensor<16x4096xf32>, %y: tensor<4x32768xf32>,
                    %z: tensor<4x16384xf32>)
    -> (tensor<16x4096xf32>, tensor<4x32768xf32>, tensor<4x16384xf32>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=few_rows | Remark="kiln.log_softmax over dim 1 of tensor<16x4096xf32>: one kernel, rows in parallel; each row (16384 bytes)
  %a = kiln.log_softmax %x {dim = 1 : i64} : tensor<16x4096xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=few_rows | Remark="kiln.softmax over dim 1 of tensor<4x32768xf32>: 3 kernels: each of 8 segments of 4096 elements of a row its maximum m' and its sum of exp(x - m') (the segment read twice, the second time from cache), in parallel; then each row's maximum m and sum s, the segments' sums scaled by exp(m' - m) and added in order; then exp(x - m) * (1 / s)
  %b = kiln.softmax %y {dim = 1 : i64} : tensor<4x32768xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=few_rows | Remark="kiln.softmax over dim 1 of tensor<4x16384xf32>: one kernel, rows in parallel
  %c = kiln.softmax %z {dim = 1 : i64} : tensor<4x16384xf32>
  return %a, %b, %c : tensor<16x4096xf32>, tensor<4x32768xf32>, tensor<4x16384xf32>
}

// Over a middle dim whose rows lie a multiple of 4 KB apart (no column
// group forms there): tiles of the 21 rows by 64 columns (256 bytes of
// each row), each copied to a buffer for its passes. Over dim 0 of
// 4096x4096 a tile's piece of each row would be 16 columns, one line:
// three kernels.
func.func @middle_dim(%x: tensor<2x21x16x64xf32>, %y: tensor<4096x4096xf32>)
    -> (tensor<2x21x16x64xf32>, tensor<4096x4096xf32>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=middle_dim | Remark="kiln.log_softmax over dim 1 of tensor<2x21x16x64xf32>: one kernel, tiles of the 21 rows by 64 columns of the last dim in parallel; each tile is read from memory once into a buffer (its rows, apart in memory, would evict each other from the cache) for its three passes: the maximum m, the sum s of exp(x - m), then x - m - log(s)"
  %a = kiln.log_softmax %x {dim = 1 : i64} : tensor<2x21x16x64xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=middle_dim | Remark="kiln.softmax over dim 0 of tensor<4096x4096xf32>: 3 kernels, each one pass
  %b = kiln.softmax %y {dim = 0 : i64} : tensor<4096x4096xf32>
  return %a, %b : tensor<2x21x16x64xf32>, tensor<4096x4096xf32>
}

// Softmax over short rows: a row per lane (the input, or a fused chain's
// values, transposed into a buffer).
func.func @lane_rows(%x: tensor<4096x10xf32>, %y: tensor<100x31xf64>) -> (tensor<4096x10xf32>, tensor<100x31xf64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=lane_rows | Remark="kiln.log_softmax over dim 1 of tensor<4096x10xf32>: one kernel, 16 rows at a time, a row per lane of a vector: the rows' elements read a row at a time and transposed in registers into a buffer in the cache (element j of the rows in vector j) with the maximum m, then the sum s of exp(x - m) in j order, then x - m - log(s), transposed back into the rows"
  %a = kiln.log_softmax %x {dim = 1 : i64} : tensor<4096x10xf32>
  %e = kiln.exp %y : tensor<100x31xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=lane_rows | Remark="kiln.softmax over dim 1 of tensor<100x31xf64>: one kernel, 8 rows at a time, a row per lane of a vector: the rows' elements computed in order (the fused producer chain, once per element), then read a row at a time and transposed in registers into a buffer in the cache (element j of the rows in vector j) with the maximum m, then the sum s of exp(x - m) in j order, then exp(x - m) * (1 / s), transposed back into the rows"
  %b = kiln.softmax %e {dim = 1 : i64} : tensor<100x31xf64>
  return %a, %b : tensor<4096x10xf32>, tensor<100x31xf64>
}

// Sums and products over short rows: a row per lane (the input read in
// place, or a fused chain's values from a buffer); the GPU keeps its lanes.
func.func @lane_row_sums(%x: tensor<4096x10xf32>, %y: tensor<100x31xf64>) -> (tensor<4096xf32>, tensor<100xf64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=lane_row_sums | Remark="kiln.sum of tensor<4096x10xf32> over dims [1]: rows of 10 elements, 16 rows at a time, a row per lane of a vector: the rows read in place and transposed in registers, each row's elements merged in order (the same bits as a row at a time, on every thread count)"
  %a = kiln.sum %x {dims = array<i64: 1>} : tensor<4096x10xf32>
  %e = kiln.exp %y : tensor<100x31xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=lane_row_sums | Remark="kiln.prod of tensor<100x31xf64> over dims [1]: rows of 31 elements, 8 rows at a time, a row per lane of a vector: the terms (the fused producer chain) computed in order into a buffer in the cache, then read from it and transposed in registers, each row's elements merged in order (the same bits as a row at a time, on every thread count)"
  %b = kiln.prod %e {dims = array<i64: 1>} : tensor<100x31xf64>
  // GPU-DAG: :[[# @LINE - 4]]:{{.*}}Function=lane_row_sums | Remark="kiln.sum of tensor<4096x10xf32> over dims [1]: GPU, a thread per (kept position, lane)
  return %a, %b : tensor<4096xf32>, tensor<100xf64>
}

// Short rows with many winners: direct selection.
func.func @short(%x: tensor<64x512xf32>) -> (tensor<64x64xf32>, tensor<64x64xi64>, tensor<64xf32>, tensor<64xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=short | Remark="kiln.topk of tensor<64x512xf32>: kiln_rt_topk_f32, 64 row(s) of 512, k = 64: direct selection: every element packed as a (key, index) word, the best k moved to the front by a branch-free quickselect, then sorted; rows in parallel"
  %v, %i = kiln.topk %x {k = 64 : i64} : tensor<64x512xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=short | Remark="kiln.kthvalue of tensor<64x512xf32>: kiln_rt_kthvalue_f32, 64 row(s) of 512, k = 64: direct selection: every element packed as a (key, index) word, the best k moved to the front by a branch-free quickselect, then the least of them taken; rows in parallel"
  %kv, %ki = kiln.kthvalue %x {k = 64 : i64} : tensor<64x512xf32>
  return %v, %i, %kv, %ki : tensor<64x64xf32>, tensor<64x64xi64>, tensor<64xf32>, tensor<64xi64>
}

// f64 and i64 with large k: sampled selection; k below n / 128 keeps the
// collector. Long rows (one of 4M) have their passes split when there are
// fewer than threads, by sampled and by radix selection.
func.func @sampled(%x: tensor<64x32768xf64>, %y: tensor<1x4194304xi64>, %z: tensor<1x4194304xf32>)
    -> (tensor<64x1024xf64>, tensor<64x1024xi64>, tensor<1xi64>, tensor<1xi64>,
        tensor<64x200xf64>, tensor<64x200xi64>, tensor<1x100000xf32>, tensor<1x100000xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=sampled | Remark="kiln.topk of tensor<64x32768xf64>: kiln_rt_topk_f64, 64 row(s) of 32768, k = 1024: sampled selection (keys sampled from the row bound the k-th best; one pass stores the keys between the bounds as (key, index) words and counts the ties at them, then the k winners are sorted); rows in parallel"
  %v, %i = kiln.topk %x {k = 1024 : i64} : tensor<64x32768xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=sampled | Remark="kiln.kthvalue of tensor<1x4194304xi64>: kiln_rt_kthvalue_i64, 1 row(s) of 4194304, k = 2097152: sampled selection (keys sampled from the row bound the k-th best; one pass stores the keys between the bounds as (key, index) words and counts the ties at them); rows in parallel; with fewer contiguous rows than threads, each row's passes are split across the threads"
  %kv, %ki = kiln.kthvalue %y {k = 2097152 : i64} : tensor<1x4194304xi64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=sampled | Remark="kiln.topk of tensor<64x32768xf64>: kiln_rt_topk_f64, 64 row(s) of 32768, k = 200: keeps a buffer of 2k+16 candidates
  %cv, %ci = kiln.topk %x {k = 200 : i64} : tensor<64x32768xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=sampled | Remark="kiln.topk of tensor<1x4194304xf32>: kiln_rt_topk_f32, 1 row(s) of 4194304, k = 100000: radix selection (a histogram of 32-bit keys finds the bucket of the k-th, then the k winners are sorted); rows in parallel; with fewer contiguous rows than threads, each row's passes are split across the threads"
  %rv, %ri = kiln.topk %z {k = 100000 : i64} : tensor<1x4194304xf32>
  return %v, %i, %kv, %ki, %cv, %ci, %rv, %ri : tensor<64x1024xf64>, tensor<64x1024xi64>, tensor<1xi64>, tensor<1xi64>, tensor<64x200xf64>, tensor<64x200xi64>, tensor<1x100000xf32>, tensor<1x100000xi64>
}

// Small k: bound selection up to a row length that grows with k (f32 k = 8:
// 16384; the collector above it); f64 and i64 too, 64 lanes above k = 16.
func.func @bound(%x: tensor<64x16384xf32>, %y: tensor<64x16385xf32>, %z: tensor<64x512xf64>)
    -> (tensor<64x8xf32>, tensor<64x8xi64>, tensor<64x8xf32>, tensor<64x8xi64>, tensor<64xf64>, tensor<64xi64>,
        tensor<64x24xf64>, tensor<64x24xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=bound | Remark="kiln.topk of tensor<64x16384xf32>: kiln_rt_topk_f32, 64 row(s) of 16384, k = 8: bound selection
  %v, %i = kiln.topk %x {k = 8 : i64} : tensor<64x16384xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=bound | Remark="kiln.topk of tensor<64x16385xf32>: kiln_rt_topk_f32, 64 row(s) of 16385, k = 8: keeps the best k sorted
  %v1, %i1 = kiln.topk %y {k = 8 : i64} : tensor<64x16385xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=bound | Remark="kiln.kthvalue of tensor<64x512xf64>: kiln_rt_kthvalue_f64, 64 row(s) of 512, k = 3: bound selection
  %kv, %ki = kiln.kthvalue %z {k = 3 : i64} : tensor<64x512xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=bound | Remark="kiln.topk of tensor<64x512xf64>: kiln_rt_topk_f64, 64 row(s) of 512, k = 24: bound selection: one pass keeps the best of 64 interleaved lanes
  %tv, %ti = kiln.topk %z {k = 24 : i64} : tensor<64x512xf64>
  return %v, %i, %v1, %i1, %kv, %ki, %tv, %ti : tensor<64x8xf32>, tensor<64x8xi64>, tensor<64x8xf32>, tensor<64x8xi64>, tensor<64xf64>, tensor<64xi64>,
      tensor<64x24xf64>, tensor<64x24xi64>
}

// f64 and i64 rows too (64-bit key and index halves).
func.func @short_i64(%x: tensor<64x512xi64>) -> (tensor<64x64xi64>, tensor<64x64xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=short_i64 | Remark="kiln.topk of tensor<64x512xi64>: kiln_rt_topk_i64, 64 row(s) of 512, k = 64: direct selection
  %v, %i = kiln.topk %x {k = 64 : i64} : tensor<64x512xi64>
  return %v, %i : tensor<64x64xi64>, tensor<64x64xi64>
}

// index_select along dim 1 reading most of each row: rows in parallel, as
// a gather's, the index checked up front.
func.func @select_columns(%x: tensor<1024x1024xf32>, %i: tensor<512xi64>) -> tensor<1024x512xf32> {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=select_columns | Remark="kiln.index_select along dim 1 of tensor<1024x1024xf32>: every index checked up front, then direct indexed loads, rows in parallel; the next input row streams into the cache while this one is read (dense reads: sequential prefetch)"
  %r = kiln.index_select %x, %i {dim = 1 : i64} : tensor<1024x1024xf32>, tensor<512xi64>
  return %r : tensor<1024x512xf32>
}

// Matrix times vector: rows in the lanes of the sums.
func.func @mv(%a: tensor<3x100x64xf32>, %x: tensor<64xf32>) -> tensor<3x100xf32> {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=mv | Remark="matmul tensor<3x100x64xf32> x tensor<64xf32>: matrix-vector, 16 rows per vector of sums, their elements read in 16x16 tiles transposed in registers; row blocks in parallel, each element summed in k order"
  %r = kiln.matmul %a, %x : tensor<3x100x64xf32>, tensor<64xf32>
  return %r : tensor<3x100xf32>
}

// Too few register tiles for the threads with a long k: k split.
func.func @split_k(%a: tensor<8x65536xf32>, %b: tensor<65536x8xf32>) -> tensor<8x8xf32> {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=split_k | Remark="matmul tensor<8x65536xf32> x tensor<65536x8xf32>: register-tiled, blocks of 8 rows x 32 columns accumulate in vector registers, rhs panels packed when large; blocks in parallel, k split into 16 segments of 4096 (too few blocks for the threads, or rhs panels larger than the cache for a small result), each block summing its segment in k order into a partial result, then the partials added in segment order"
  %r = kiln.matmul %a, %b : tensor<8x65536xf32>, tensor<65536x8xf32>
  return %r : tensor<8x8xf32>
}

// Vector times matrix: k split into segments for the threads.
func.func @vm(%x: tensor<4096xf32>, %w: tensor<4096x512xf32>) -> tensor<512xf32> {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=vm | Remark="matmul tensor<4096xf32> x tensor<4096x512xf32>: vector-matrix, too few lhs rows for the threads: k split into 16 segments of 256, each summed in k order into its own partial row (the rhs rows streamed in order), in parallel; then the partials added in segment order"
  %r = kiln.matmul %x, %w : tensor<4096xf32>, tensor<4096x512xf32>
  return %r : tensor<512xf32>
}

// A row group (CPU): x - amax(x) with the maximum in the chain's kernel.
func.func @rows(%x: tensor<1024x256xf32>) -> tensor<1024x256xf32> {
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<1024x256xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=rows | Remark="row group of tensor<1024x256xf32>: one kernel, rows in parallel; each row (256 elements) is read from memory once and stays in cache for its 1 reduction(s) and the elementwise chain"
  %d = kiln.sub %x, %m : tensor<1024x256xf32>, tensor<1024x1xf32>
  return %d : tensor<1024x256xf32>
}

// GPU-DAG: remark: {{.*}}kiln.softmax over dim 1 of tensor<4096x4096xf32>: GPU row kernel
// GPU-DAG: remark: {{.*}}kiln.sum of tensor<4096x32768xf32> over dims [1]: GPU, a thread per (kept position, lane)
// GPU-DAG: remark: {{.*}}kiln.put into tensor<4096x4096xf32>: sorted scatter
// GPU-DAG: remark: {{.*}}kiln.topk of tensor<4096x32768xf32>: kiln_rt_topk_f32, 4096 row(s) of 32768, k = 16: GPU, a block (512 threads) per row; a histogram of the top 11 bits finds the bucket of the k-th
// GPU-DAG: remark: {{.*}}kiln.topk of tensor<1x16777216xf32>: kiln_rt_topk_f32, 1 row(s) of 16777216, k = 100: GPU, too few rows to fill the GPU, so each row is split into 512 ranges
// GPU-DAG: remark: {{.*}}kiln.argmax of tensor<4096x32768xf32>: kiln_rt_argreduce_f32, 4096 row(s) of 32768: GPU, a (value, index) scan

// Rows of up to 4 KB (argmax over 10 or 1000 classes): each row whole, one
// after another (the last length: 1024 f32, 512 f64; a longer row goes in
// blocks). topk with k = 1 and the largest is argmax's answer
// and runs its scan; the smallest keeps the selection (argmin takes a NaN,
// the smallest never does): rows this short with k this small 16 at a
// time, side by side (vertical selection). A strided dim's rows lie side
// by side already.
func.func @classes(%x: tensor<4096x10xf32>) -> (tensor<4096xi64>, tensor<4096x1xf32>, tensor<4096x1xi64>, tensor<4096x1xf32>, tensor<4096x1xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=classes | Remark="kiln.argmax of tensor<4096x10xf32>: kiln_rt_argreduce_f32, 4096 row(s) of 10: rows of at most 1024 elements whole, one after another: the extreme in whole vectors, folded across the lanes by a tree, then the first index holding it (from cache); NaN greatest, the lowest index on ties; rows in parallel"
  %a = kiln.argmax %x {dim = 1 : i64} : tensor<4096x10xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=classes | Remark="kiln.topk of tensor<4096x10xf32>: kiln_rt_topk_f32, 4096 row(s) of 10, k = 1, the largest: argmax's scan: rows of at most 1024 elements whole
  %v, %i = kiln.topk %x {k = 1 : i64, dim = 1 : i64} : tensor<4096x10xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=classes | Remark="kiln.topk of tensor<4096x10xf32>: kiln_rt_topk_f32, 4096 row(s) of 10, k = 1: vertical selection: 16 rows at a time (copied side by side), each element's (key, index) word inserted into the k best words of the 16 rows, kept sorted in k vectors, by a maximum and a minimum per vector; blocks of rows in parallel"
  %sv, %si = kiln.topk %x {k = 1 : i64, dim = 1 : i64, largest = false} : tensor<4096x10xf32>
  return %a, %v, %i, %sv, %si : tensor<4096xi64>, tensor<4096x1xf32>, tensor<4096x1xi64>, tensor<4096x1xf32>, tensor<4096x1xi64>
}
func.func @class_bounds(%x: tensor<64x1024xf32>, %y: tensor<64x512xf64>, %z: tensor<64x513xf64>) -> (tensor<64xi64>, tensor<64xi64>, tensor<64xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=class_bounds | Remark="kiln.argmax of tensor<64x1024xf32>: kiln_rt_argreduce_f32, 64 row(s) of 1024: rows of at most 1024 elements whole
  %a = kiln.argmax %x {dim = 1 : i64} : tensor<64x1024xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=class_bounds | Remark="kiln.argmin of tensor<64x512xf64>: kiln_rt_argreduce_f64, 64 row(s) of 512: rows of at most 512 elements whole
  %b = kiln.argmin %y {dim = 1 : i64} : tensor<64x512xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=class_bounds | Remark="kiln.argmin of tensor<64x513xf64>: kiln_rt_argreduce_f64, 64 row(s) of 513: the extreme at memory speed, 64 bytes of lanes per instruction, remembering the first 512-element block
  %c = kiln.argmin %z {dim = 1 : i64} : tensor<64x513xf64>
  return %a, %b, %c : tensor<64xi64>, tensor<64xi64>, tensor<64xi64>
}
func.func @strided_rows(%x: tensor<8x21x64x64xf32>) -> (tensor<8x3x64x64xf32>, tensor<8x3x64x64xi64>, tensor<8x64x64xf32>, tensor<8x64x64xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=strided_rows | Remark="kiln.topk of tensor<8x21x64x64xf32>: kiln_rt_topk_f32, 32768 row(s) of 21, k = 3: vertical selection: 16 rows at a time (side by side in memory)
  %v, %i = kiln.topk %x {k = 3 : i64, dim = 1 : i64} : tensor<8x21x64x64xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=strided_rows | Remark="kiln.kthvalue of tensor<8x21x64x64xf32>: kiln_rt_kthvalue_f32, 32768 row(s) of 21, k = 5: vertical selection
  %kv, %ki = kiln.kthvalue %x {k = 5 : i64, dim = 1 : i64} : tensor<8x21x64x64xf32>
  return %v, %i, %kv, %ki : tensor<8x3x64x64xf32>, tensor<8x3x64x64xi64>, tensor<8x64x64xf32>, tensor<8x64x64xi64>
}

// f64 and i64 rows too (keys and indices in vectors of their own), while
// n (k + 2) is at most 480 (1024 along a strided dim): rows of 60 with
// k = 6 are, rows of 61 take bound selection.
func.func @wide_rows(%x: tensor<8x21x64x64xf64>, %y: tensor<4096x60xi64>, %z: tensor<4096x61xi64>) -> (tensor<8x3x64x64xf64>, tensor<8x3x64x64xi64>, tensor<4096x6xi64>, tensor<4096x6xi64>, tensor<4096x6xi64>, tensor<4096x6xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=wide_rows | Remark="kiln.topk of tensor<8x21x64x64xf64>: kiln_rt_topk_f64, 32768 row(s) of 21, k = 3: vertical selection: 16 rows at a time (side by side in memory), each element's key and index inserted into the k best of the 16 rows, kept sorted in k vectors of keys and k of indices, by comparisons and blends; blocks of rows in parallel"
  %v, %i = kiln.topk %x {k = 3 : i64, dim = 1 : i64} : tensor<8x21x64x64xf64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=wide_rows | Remark="kiln.topk of tensor<4096x60xi64>: kiln_rt_topk_i64, 4096 row(s) of 60, k = 6: vertical selection: 16 rows at a time (copied side by side)
  %yv, %yi = kiln.topk %y {k = 6 : i64, dim = 1 : i64} : tensor<4096x60xi64>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=wide_rows | Remark="kiln.topk of tensor<4096x61xi64>: kiln_rt_topk_i64, 4096 row(s) of 61, k = 6: bound selection
  %zv, %zi = kiln.topk %z {k = 6 : i64, dim = 1 : i64} : tensor<4096x61xi64>
  return %v, %i, %yv, %yi, %zv, %zi : tensor<8x3x64x64xf64>, tensor<8x3x64x64xi64>, tensor<4096x6xi64>, tensor<4096x6xi64>, tensor<4096x6xi64>, tensor<4096x6xi64>
}

// max/argmin over a strided dim (each result a column): blocks of 512 bytes
// of adjacent columns a row at a time (128 f32, 64 f64), the rest 16 at a
// time; fewer columns than a block go 16 at a time only.
func.func @columns(%x: tensor<4096x4096xf32>, %d: tensor<300x40xf64>) -> (tensor<4096xf32>, tensor<4096xi64>, tensor<40xi64>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=columns | Remark="kiln.max of tensor<4096x4096xf32>: kiln_rt_argreduce_f32, 4096 row(s) of 4096: a strided dim: blocks of 128 adjacent columns (512 bytes of a row, the rows ahead prefetched), the rest 16 at a time, each column a scan of (value, index) pairs; NaN greatest, the lowest index on ties; rows in parallel"
  %v, %i = kiln.max %x {dim = 0 : i64} : tensor<4096x4096xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=columns | Remark="kiln.argmin of tensor<300x40xf64>: kiln_rt_argreduce_f64, 40 row(s) of 300: a strided dim: 16 adjacent columns at a time, each column a scan of (value, index) pairs;
  %a = kiln.argmin %d {dim = 0 : i64} : tensor<300x40xf64>
  return %v, %i, %a : tensor<4096xf32>, tensor<4096xi64>, tensor<40xi64>
}

// scatter_add along dim 0 with an index per element (CPU): column blocks
// per thread, in packed tiles of 2 MB (4096 f32 rows: 128 columns).
func.func @scatter_columns(%b: tensor<4096x4096xf32>, %i: tensor<1024x4096xi64>, %s: tensor<1024x4096xf32>) -> tensor<4096x4096xf32> {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=scatter_columns | Remark="kiln.scatter_add along dim 0 of tensor<4096x4096xf32>: blocks of columns in parallel, each in packed tiles of up to 128 columns (2 MB of the result, updated in cache), walking the rows in order and updating only its columns (deterministic); each group copies its slice of the base first (in cache, no separate copy)"
  %r = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<4096x4096xf32>, tensor<1024x4096xi64>, tensor<1024x4096xf32>
  return %r : tensor<4096x4096xf32>
}

// Float sums whose innermost reduced dim is shorter than the 32 lanes (16
// rows per bag) take every element in lane 0, in order.
func.func @short_lanes(%x: tensor<4096x16xf32>, %bags: tensor<256x16x16xf32>) -> (tensor<16xf32>, tensor<256x16xf32>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<4096x16xf32> over dims [0]: column reduction, the innermost dim is kept{{.*}}; float: 32 lanes, each its share
  %s16 = kiln.sum %x {dims = array<i64: 0>} : tensor<4096x16xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<256x16x16xf32> over dims [1]: column reduction, the innermost dim is kept: each block of contiguous columns walks the reduced rows in order with vector loads and accumulators in registers; blocks in parallel; float: the innermost reduced dim is shorter than the 32 lanes, so every element goes to lane 0, in order
  %sb = kiln.sum %bags {dims = array<i64: 1>} : tensor<256x16x16xf32>
  return %s16, %sb : tensor<16xf32>, tensor<256x16xf32>
}

// Column reductions by how many elements each column reduces: up to 256
// over 32 lanes walk the lanes in their tree's order, each in registers;
// more walk the rows in order into the lanes' accumulators in memory;
// an order-free reduction (amax) keeps one accumulator per column in
// registers; fewer columns than a vector holds update lanes in groups. A
// fused chain with a transcendental op (exp) would be built once per
// column of the block in registers: it keeps the accumulators in memory,
// a cheap one (x * x) does not.
func.func @column_schemes(%few: tensor<32x64x3136xf32>, %many: tensor<512x3136xf32>,
                          %narrow: tensor<300x10xf32>, %chain: tensor<64x3136xf32>)
    -> (tensor<32x3136xf32>, tensor<3136xf32>, tensor<3136xf32>, tensor<10xf32>,
        tensor<3136xf32>, tensor<3136xf32>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<32x64x3136xf32> over dims [1]: column reduction, the innermost dim is kept: at most 256 reduced elements per column, so each block of contiguous columns walks the 32 lanes one after another in their merge tree's order, each lane's rows into accumulators in registers; blocks in parallel
  %a = kiln.sum %few {dims = array<i64: 1>} : tensor<32x64x3136xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<512x3136xf32> over dims [0]: column reduction, the innermost dim is kept: each block of contiguous columns walks the reduced rows in order, each row into its lane's accumulators (in memory)
  %b = kiln.sum %many {dims = array<i64: 0>} : tensor<512x3136xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.amax of tensor<512x3136xf32> over dims [0]: column reduction, the innermost dim is kept: each block of contiguous columns walks the reduced rows in order with vector loads and accumulators in registers
  %c = kiln.amax %many {dims = array<i64: 0>} : tensor<512x3136xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<300x10xf32> over dims [0]: column reduction, the innermost dim is kept: fewer columns than a vector holds, so groups of rows update consecutive lanes' accumulators as one vector
  %d = kiln.sum %narrow {dims = array<i64: 0>} : tensor<300x10xf32>
  %ex = kiln.exp %chain : tensor<64x3136xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<64x3136xf32> over dims [0]: column reduction, the innermost dim is kept: each block of contiguous columns walks the reduced rows in order, each row into its lane's accumulators (in memory)
  %e = kiln.sum %ex {dims = array<i64: 0>} : tensor<64x3136xf32>
  %sq = kiln.mul %chain, %chain : tensor<64x3136xf32>, tensor<64x3136xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}kiln.sum of tensor<64x3136xf32> over dims [0]: column reduction, the innermost dim is kept: at most 256 reduced elements per column, so each block of contiguous columns walks the 32 lanes one after another
  %f = kiln.sum %sq {dims = array<i64: 0>} : tensor<64x3136xf32>
  return %a, %b, %c, %d, %e, %f : tensor<32x3136xf32>, tensor<3136xf32>, tensor<3136xf32>, tensor<10xf32>, tensor<3136xf32>, tensor<3136xf32>
}

// Unit dims hold one position each: a reduction or softmax runs as that of
// its input without them, whose plans see the reduced dim innermost (class
// scores [N, C, 1, 1] after a global pooling; a [N, 1] column).
func.func @unit_dims(%x: tensor<4096x1000x1x1xf32>, %y: tensor<64x1000x1x1xf32>,
                     %z: tensor<4096x1xf32>)
    -> (tensor<4096x1x1xf32>, tensor<64x1000x1x1xf32>, tensor<1xf32>) {
  // CHECK-DAG: :[[# @LINE + 3]]:{{.*}}Function=unit_dims | Remark="kiln.sum of tensor<4096x1000x1x1xf32>: its unit dims hold one position each, so it is reduced as tensor<4096x1000xf32> over dims [1]"
  // CHECK-DAG: :[[# @LINE + 2]]:{{.*}}Function=unit_dims | Remark="kiln.sum of tensor<4096x1000xf32> over dims [1]: row reduction, 4096 kept position(s) in parallel, each reducing 1000 element(s)
  // GPU-DAG: remark: {{.*}}Function=unit_dims | Remark="kiln.sum of tensor<4096x1000x1x1xf32>: its unit dims hold one position each, so it is reduced as tensor<4096x1000xf32> over dims [1]"
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4096x1000x1x1xf32>
  // CHECK-DAG: :[[# @LINE + 3]]:{{.*}}Function=unit_dims | Remark="kiln.softmax over dim 1 of tensor<64x1000x1x1xf32>: its unit dims hold one position each, so it runs as over dim 1 of tensor<64x1000xf32>"
  // CHECK-DAG: :[[# @LINE + 2]]:{{.*}}Function=unit_dims | Remark="kiln.softmax over dim 1 of tensor<64x1000xf32>: one kernel, rows in parallel
  // GPU-DAG: remark: {{.*}}Function=unit_dims | Remark="kiln.softmax over dim 1 of tensor<64x1000xf32>: GPU row kernel
  %p = kiln.softmax %y {dim = 1 : i64} : tensor<64x1000x1x1xf32>
  // CHECK-DAG: :[[# @LINE + 2]]:{{.*}}Function=unit_dims | Remark="kiln.sum of tensor<4096x1xf32>: its unit dims hold one position each, so it is reduced as tensor<4096xf32> over dims [0]"
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=unit_dims | Remark="kiln.sum of tensor<4096xf32> over dims [0]: row reduction, 1 kept position(s)
  %c = kiln.sum %z {dims = array<i64: 0>} : tensor<4096x1xf32>
  return %s, %p, %c : tensor<4096x1x1xf32>, tensor<64x1000x1x1xf32>, tensor<1xf32>
}

// Consecutive dims reduced alike are one dim: a global average pooling's
// mean over the 7x7 positions of [N, C, 7, 7] reduces lines of 49 in the
// lanes, not lines of 7 in order into lane 0; a batch norm's statistics
// over (0, 2, 3) lines of H x W.
func.func @merged_dims(%x: tensor<64x512x7x7xf32>, %y: tensor<32x64x56x56xf32>)
    -> (tensor<64x512xf32>, tensor<64xf32>) {
  // CHECK-DAG: :[[# @LINE + 2]]:{{.*}}Function=merged_dims | Remark="kiln.sum of tensor<64x512x7x7xf32>: consecutive dims reduced (or kept) alike are one run of elements, so it is reduced as tensor<32768x49xf32> over dims [1]"
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=merged_dims | Remark="kiln.sum of tensor<32768x49xf32> over dims [1]: row reduction, 32768 kept position(s) in parallel, each reducing 49 element(s) with its accumulators in registers; float: 32 lanes
  %p = kiln.sum %x {dims = array<i64: 2, 3>} : tensor<64x512x7x7xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=merged_dims | Remark="kiln.sum of tensor<32x64x56x56xf32>: consecutive dims reduced (or kept) alike are one run of elements, so it is reduced as tensor<32x64x3136xf32> over dims [0, 2]"
  %s = kiln.sum %y {dims = array<i64: 0, 2, 3>} : tensor<32x64x56x56xf32>
  return %p, %s : tensor<64x512xf32>, tensor<64xf32>
}

// Lines no power of two divides split too: segments of whole 64-byte
// lines, and the positions after them reduced by a kernel of their own
// (a sum) or taken as one more segment by the row statistics (softmax).
func.func @uneven(%x: tensor<1000003xf32>, %y: tensor<2x100003xf32>)
    -> (tensor<f32>, tensor<2x100003xf32>) {
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=uneven | Remark="kiln.sum of tensor<1000003xf32> over dims [0]: 1 kept position(s) would leave threads idle, so dim 0 is split into 128 segments of 7808 position(s) reduced in parallel, the 579 position(s) after them by a kernel of their own, then merged (3 kernels)
  %s = kiln.sum %x : tensor<1000003xf32>
  // CHECK-DAG: :[[# @LINE + 1]]:{{.*}}Function=uneven | Remark="kiln.softmax over dim 1 of tensor<2x100003xf32>: 3 kernels: each of 16 segments of 6240 elements of a row its maximum m' and its sum of exp(x - m') (the segment read twice, the second time from cache), in parallel; then each row's maximum m and sum s, the segments' sums and those of the 163 elements after them scaled by exp(m' - m)
  %t = kiln.softmax %y {dim = 1 : i64} : tensor<2x100003xf32>
  return %s, %t : tensor<f32>, tensor<2x100003xf32>
}

// equal of two stored tensors: the runtime's comparison on the CPU (it
// stops at the first difference); the GPU's is a sum of the differences.
func.func @equal(%a: tensor<4096x4096xf32>, %b: tensor<4096x4096xf32>) -> tensor<i1> {
  // CHECK-DAG: :[[# @LINE + 2]]:{{.*}}Function=equal | Remark="kiln.equal of tensor<4096x4096xf32>: kiln_rt_equal_f32, both operands compared in 2 MB spans the threads take in turn from the front, all stopping at the first difference"
  // GPU-NOT: kiln_rt_equal
  %e = kiln.equal %a, %b : tensor<4096x4096xf32>, tensor<4096x4096xf32>
  return %e : tensor<i1>
}
