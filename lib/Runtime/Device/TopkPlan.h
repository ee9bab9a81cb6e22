//===- TopkPlan.h - How the GPU topk splits few long rows -------*- C++ -*-===//
//
// Shared by the runtime (lib/Runtime/Cuda.cpp), which launches the topk
// kernels, and the emulated kernel tests, which replay its launches.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_DEVICE_TOPKPLAN_H
#define KILN_RUNTIME_DEVICE_TOPKPLAN_H

namespace kiln::runtime::device_kernels {

/// Blocks (of 512 threads) that keep a large GPU busy: an H100 has 132
/// SMs, each holding four such blocks.
constexpr long long kTopkBusyBlocks = 512;

/// How many contiguous ranges topk splits each row into: 1 (one block per
/// row, kiln_gpu_topk_*) unless there are too few rows to fill the GPU;
/// then enough ranges for kTopkBusyBlocks blocks in all (kiln_gpu_topk_
/// chunks_*, then kiln_gpu_topk_merge_* over the ranges' k best), as long
/// as each range holds at least 4096 elements and 4 k (so that the merge
/// reads at most a quarter of the row again).
inline long long topkChunks(long long rows, long long size, long long k) {
  if (rows <= 0 || k <= 0 || rows >= kTopkBusyBlocks / 4)
    return 1;
  long long chunks = (kTopkBusyBlocks + rows - 1) / rows;
  if (chunks > size / 4096)
    chunks = size / 4096;
  if (chunks > size / (4 * k))
    chunks = size / (4 * k);
  return chunks >= 2 ? chunks : 1;
}

} // namespace kiln::runtime::device_kernels

#endif // KILN_RUNTIME_DEVICE_TOPKPLAN_H
