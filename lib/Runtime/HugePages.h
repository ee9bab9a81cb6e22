//===- HugePages.h - Large host buffers on huge pages -----------*- C++ -*-===//
//
// Memory-bound kernels stream through buffers of many megabytes; with 4 KiB
// pages every 4 KiB read is a TLB miss walk, and on the development machine
// (AMD EPYC, THP in "madvise" mode) a single thread reads 512 MB at 23 GB/s
// from 4 KiB pages but 30 GB/s from 2 MiB pages. NumPy (and so PyTorch
// tensors made from NumPy arrays) asks for huge pages the same way. Large
// buffers are therefore 2 MiB-aligned and advised MADV_HUGEPAGE before
// their first touch; where the kernel has THP off the advice does nothing.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_HUGEPAGES_H
#define KILN_LIB_RUNTIME_HUGEPAGES_H

#include <cstddef>
#include <cstdlib>

#include <sys/mman.h>

namespace kiln::runtime {

constexpr size_t kHugePage = size_t(2) << 20;
/// Buffers from this size on are placed on huge pages.
constexpr size_t kHugePageThreshold = size_t(4) << 20;

/// Advises the kernel to back [p, p + bytes) (2 MiB-aligned, a multiple of
/// 2 MiB) with huge pages. Advisory: a kernel without THP ignores it.
inline void adviseHugePages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  if (p)
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

inline size_t roundUp(size_t bytes, size_t to) {
  return (bytes + to - 1) / to * to;
}

/// A 64-byte aligned buffer of at least `bytes` (>= 1), released with
/// std::free; large ones on huge pages.
inline void *allocateHostBuffer(size_t bytes) {
  if (bytes < kHugePageThreshold)
    return std::aligned_alloc(64, roundUp(bytes, 64));
  size_t rounded = roundUp(bytes, kHugePage);
  void *p = std::aligned_alloc(kHugePage, rounded);
  adviseHugePages(p, rounded);
  return p;
}

} // namespace kiln::runtime

#endif // KILN_LIB_RUNTIME_HUGEPAGES_H
