//===- SortPlan.h - GPU stable sort of scatter positions --------*- C++ -*-===//
//
// Shared by the runtime (lib/Runtime/Cuda.cpp), which launches the sort
// that the GPU's scatter_add, index_add and put run on, the kernels
// (Device/Kernels.cpp), and the emulated kernel tests, which replay the
// launches.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_DEVICE_SORTPLAN_H
#define KILN_RUNTIME_DEVICE_SORTPLAN_H

namespace kiln::runtime::device_kernels {

/// Threads of a tile's block, and pairs each handles per tile.
constexpr unsigned kSortThreads = 256;
constexpr unsigned kSortItems = 16;
/// Consecutive (key, position) pairs one block counts and moves per pass.
constexpr long long kSortTile = kSortThreads * kSortItems;
/// Bits of the key each pass sorts by (least significant first).
constexpr int kSortDigitBits = 8;
constexpr unsigned kSortDigits = 1u << kSortDigitBits;
/// Threads of the single block that scans the (digit, tile) counts.
constexpr unsigned kSortScanThreads = 1024;

/// Tiles of `count` pairs.
inline long long sortTiles(long long count) {
  return (count + kSortTile - 1) / kSortTile;
}

/// Passes that sort keys in [0, size): one per 8 bits of size - 1.
inline int sortPasses(long long size) {
  int bits = 0;
  for (unsigned long long top = size > 1 ? size - 1 : 0; top; top >>= 1)
    ++bits;
  return (bits + kSortDigitBits - 1) / kSortDigitBits;
}

} // namespace kiln::runtime::device_kernels

#endif // KILN_RUNTIME_DEVICE_SORTPLAN_H
