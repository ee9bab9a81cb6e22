//===- TopkPlan.h - GPU topk/kthvalue: splitting few rows -------*- C++ -*-===//
//
// Shared by the runtime (lib/Runtime/Cuda.cpp), which launches the topk
// and kthvalue kernels, and the emulated kernel tests, which replay its
// launches. Kernels.cpp includes it for the sizes both sides agree on.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_DEVICE_TOPKPLAN_H
#define KILN_RUNTIME_DEVICE_TOPKPLAN_H

namespace kiln::runtime::device_kernels {

/// Blocks (of 512 threads) that keep a large GPU busy: an H100 has 132
/// SMs, each holding four such blocks.
constexpr long long kTopkBusyBlocks = 512;

/// How many contiguous ranges of at least `minRange` elements each of
/// `rows` rows of `size` is split into: 1 unless there are too few rows to
/// fill the GPU (fewer than kTopkBusyBlocks / 4); then enough ranges for
/// kTopkBusyBlocks blocks in all, as long as each keeps `minRange`.
inline long long splitRanges(long long rows, long long size,
                             long long minRange) {
  if (rows <= 0 || rows >= kTopkBusyBlocks / 4)
    return 1;
  long long chunks = (kTopkBusyBlocks + rows - 1) / rows;
  if (chunks > size / minRange)
    chunks = size / minRange;
  return chunks >= 2 ? chunks : 1;
}

/// How many contiguous ranges topk splits each row into: 1 (one block per
/// row, kiln_gpu_topk_*) or, for few rows, ranges of at least 4096
/// elements and 4 k (kiln_gpu_topk_chunks_*, then kiln_gpu_topk_merge_*
/// over the ranges' k best; the merge reads at most a quarter of the row
/// again).
inline long long topkChunks(long long rows, long long size, long long k) {
  if (k <= 0)
    return 1;
  return splitRanges(rows, size, 4 * k > 4096 ? 4 * k : 4096);
}

/// Bytes of a row's kthvalue selection state (Kernels.cpp: KthState).
constexpr long long kKthStateBytes = 32 + 4 * 256;

/// How many contiguous ranges kthvalue splits each row into: 1 (one block
/// per row, kiln_gpu_kthvalue_*) or, for few rows, ranges of at least 4096
/// elements (kiln_gpu_kth_*: a radix pass per digit over all ranges, then
/// the lowest index holding the key).
inline long long kthvalueChunks(long long rows, long long size) {
  return splitRanges(rows, size, 4096);
}

} // namespace kiln::runtime::device_kernels

#endif // KILN_RUNTIME_DEVICE_TOPKPLAN_H
