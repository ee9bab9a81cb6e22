//===- SelectionPlan.h - How the CPU runtime selects ------------*- C++ -*-===//
//
// The choices the runtime's selection kernels (topk and kthvalue,
// Runtime/Selection.cpp; the (value, index) scans of max/min/argmax/argmin,
// Runtime/ArgReduce.cpp) make from the shape and the thread count, in one
// place: the kernels follow them and the lowering's remarks (kiln-lower)
// describe them.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_SELECTIONPLAN_H
#define KILN_RUNTIME_SELECTIONPLAN_H

#include <algorithm>
#include <cstdint>

namespace kiln::runtime {

/// k up to which selection keeps a buffer of candidates (one pass per row);
/// above it, large k per row length may take radix selection.
constexpr int64_t kCollectorMaxK = 64;

/// Whether the f32 collector keeps the best k sorted, inserting each
/// accepted element (k up to 32), rather than a buffer of 2k+16 candidates
/// compacted by nth_element. A row of n accepts about k (1 + ln(n / k))
/// elements and each insertion moves up to k keys, so k above 16 keeps
/// them sorted only in rows of at least 32 k (topk k = 32 of 64 rows of
/// 512: 121 us sorted, 83 us buffered; k = 16 of rows of 256: 296 us
/// sorted, 332 buffered).
inline bool useSortedCollector(int64_t k, int64_t n) {
  return k <= 32 && (k <= 16 || n / 32 >= k);
}

/// Whether topk and kthvalue rows of n (f32, f64, i64) take direct
/// selection: every element packed as a (key, ~index) word (two 64-bit
/// halves for f64 and i64), the best k moved to the front by a branch-free
/// quickselect, then sorted (topk) or the least of them taken (kthvalue) --
/// no threshold to raise, no histogram (f64 topk k=64 of 4096x512: 32.1 ->
/// 17.5 ms, PyTorch 26.4). For
/// short rows with many winners (k above 16, n at most 16 k and at most
/// kDirectSelectionMaxLength), where a collector accepts most elements
/// anyway and compacts its buffer several times (topk k=64 of 4096 rows of
/// 512: 10.7 -> 5.7 ms at 1 thread), and radix selection's 4096-bucket
/// histogram costs more than the row (k=100 of 1024 rows of 512: 3.9 ->
/// 3.0 ms). Longer rows keep radix selection (k=256 of rows of 2048: 3.7
/// ms by radix, 3.9 direct).
constexpr int64_t kDirectSelectionMaxLength = 1024;
inline bool useDirectSelection(int64_t n, int64_t k) {
  return k > 16 && n <= 16 * k && n <= kDirectSelectionMaxLength;
}

/// Whether topk and kthvalue rows of n (f32, f64, i64) take bound
/// selection: one pass keeps the best value of each of 32 interleaved lanes
/// (64 for k above 16), whose k-th best bounds the k-th best element from
/// below; a second pass over the row (now in cache) collects the elements
/// not worse than the bound -- about k, a few more -- which are ranked. No
/// insertion, no buffer to compact: the only data-dependent branches are
/// one per candidate. Two passes cost more than the collector's one in long
/// rows where its threshold settles early (small k): the longest row taking
/// it grows with k, and is longer for f64 and i64, whose collector's words
/// are twice as wide (with f32's limits, their packed collector of the
/// forty-eighth session lost: f64 topk k=4 of 1024x16384 5.0 ms bound,
/// 5.9 collected; k=2 of 1024x8192 2.4 and 2.8). Above k = 16, f32 rows
/// shorter than 8 k (most elements winners) stay with direct selection. (1
/// thread, development machine: f32 topk k=8 of 4096x512 4.35 -> 1.0 ms,
/// PyTorch 7.4; f64 8.0
/// -> 1.3 ms, PyTorch 7.1; k=24 of 4096x512 6.3 -> 2.5 ms, PyTorch 20.3;
/// k=32 of 2048x2048 8.6 -> 2.9 ms, f64 16.0 -> 4.1; k=1 of rows of 8192
/// 0.34 ms by the collector, 0.40 bound; k=32 of rows of 128 7.7 ms direct,
/// 9.3 bound.)
constexpr int64_t kBoundSelectionMaxK = 32;
inline int64_t boundSelectionMaxLength(int64_t k, bool f32) {
  if (f32)
    return k >= 16 ? 32768 : k >= 8 ? 16384 : k >= 4 ? 8192 : 4096;
  return k >= 16 ? 32768 : k >= 4 ? 16384 : 8192;
}
inline bool useBoundSelection(int64_t n, int64_t k, bool f32) {
  if (k < 1 || k > kBoundSelectionMaxK || n > boundSelectionMaxLength(k, f32))
    return false;
  return k <= 16 || !f32 || n >= 8 * k;
}

/// Whether topk and kthvalue rows of n with `inner` positions after their
/// dim take vertical selection (Runtime/Selection.cpp): 16 rows at a time,
/// each element inserted into the k best in vectors of the 16 rows'. Its
/// work per row grows as n k, with no per-row setup and, for strided rows,
/// no copy: it takes short rows with small k, which the other kernels
/// spend most of their time starting. f32 (`wide` false: packed words, a
/// maximum and a minimum per kept vector), 1 thread, topk of 4M f32: k=4
/// of rows of 21 24.1 -> 3.7 ms contiguous, 28.0 -> 2.4 over a middle dim;
/// k=8 of rows of 128 5.7 -> 4.5 and 6.1 -> 3.9; of 512 over a middle dim
/// 2.6 -> 2.1. Contiguous rows of 256 (2.3 -> 2.5 ms, k=4) and strided ones
/// of 1024 (2.0 -> 2.2, k=8) lose. f64 and i64 (`wide`: keys and positions
/// apart, compared and blended, about three times the work per kept
/// vector) take rows with n (k + 2) at most 480 contiguous and 1024 strided
/// (1 thread, 2M f64: rows of 21, k=4, 31.6 -> 7.0 ms, over a middle dim
/// 8x21x64x64, k=3, 4.9 -> 0.6; contiguous rows of 48, k=8, 7.1 -> 5.8, of
/// 64, k=8, lose (6.4 against 4.2), of 80, k=4, 3.9 -> 3.5, of 128, k=2,
/// lose (2.0 against 1.9); strided rows of 128, k=4, 0.88 -> 0.63, k=8
/// lose (1.29 against 1.09), of 256, k=2, 1.11 -> 0.71).
constexpr int64_t kVerticalMaxK = 8;
constexpr int64_t kVerticalMaxLength = 128;
constexpr int64_t kVerticalMaxStridedLength = 512;
constexpr int64_t kVerticalWideMaxWork = 480;
constexpr int64_t kVerticalWideMaxStridedWork = 1024;
inline bool useVerticalSelection(int64_t n, int64_t k, int64_t inner,
                                 bool wide) {
  if (k < 1 || k > kVerticalMaxK || n < k)
    return false;
  if (wide)
    return n * (k + 2) <=
           (inner > 1 ? kVerticalWideMaxStridedWork : kVerticalWideMaxWork);
  return n <= (inner > 1 ? kVerticalMaxStridedLength : kVerticalMaxLength);
}

/// Rows at least this long are split into segments when there are fewer
/// rows than threads; segments are at least kSelectionMinSegment long.
constexpr int64_t kSelectionSplitLength = int64_t(1) << 16;
constexpr int64_t kSelectionMinSegment = int64_t(1) << 14;

/// Whether f32 rows of n can take radix selection, whatever the threads:
/// large k (more than kCollectorMaxK, at least n / 64), rows indexed in 32
/// bits.
inline bool radixSelectionFits(int64_t n, int64_t k) {
  return k > kCollectorMaxK && k * 64 >= n && n < (int64_t(1) << 32);
}

/// Whether `rows` f32 rows of n take radix selection with `threads` threads:
/// whenever it fits. Small k/n stays with the collector, whose vectorized
/// threshold test streams at memory speed. With fewer rows than threads,
/// radix selection ran only where there were enough rows to keep every
/// thread busy, the others splitting rows into segments of collectors --
/// which, with k this large, merge slowly: one row of 2^16 to 2^24 floats
/// with k from n/64 to n/2 took 2-60 times as long at 2 threads (segments)
/// as at 1 (radix): kthvalue of 2^24, k = 2^23, 1734 against 30 ms; topk
/// of 2^20, k = 65536, 11.6 against 1.7 ms. (Such rows now split radix
/// selection's passes across the threads: selectionRowParts.)
inline bool useRadixSelection(int64_t /*rows*/, int64_t n, int64_t k,
                              int64_t /*threads*/) {
  return radixSelectionFits(n, k);
}

/// Whether f64 and i64 rows of n take sampled selection: bounds on the
/// k-th best key from a sample of the row, one pass storing the keys
/// between them (Runtime/Selection.cpp), for k above kCollectorMaxK and at
/// least n / 128 where direct selection does not take the row. The
/// collector's threshold rises slowly when k is large, and compacting its
/// buffer of 2k + 16 (value, index) pairs by nth_element was most of its
/// time (1 thread, f64 topk k=1024 of 1024x32768: 206 -> 85 ms; k=128 of
/// 2048x4096 60 -> 36; kthvalue median of 1024x32768 605 -> 106); where k
/// is a smaller share of the row the collector's threshold settles early
/// and its vectorized test streams faster than the pass's keys (k=100 of
/// 256x65536: 14.8 ms by the collector, 21.8 sampled; k=256, 26.7 and
/// 29.2; k=512, 40.9 and 25.7).
inline bool useSampledSelection(int64_t n, int64_t k) {
  return k > kCollectorMaxK && k * 128 >= n && !useDirectSelection(n, k);
}
/// Radix (f32) and sampled (f64, i64) selection of a long contiguous row
/// when there are fewer rows than threads: its passes split into this many
/// parts run by the threads, each at least kSelectionMinSegment long (1:
/// one thread per row).
inline int64_t selectionRowParts(int64_t rows, int64_t n, int64_t threads) {
  if (rows >= threads || n < kSelectionSplitLength)
    return 1;
  return std::min(threads, n / kSelectionMinSegment);
}
/// Segments each row of n is split into for the collector (1: whole rows).
inline int64_t selectionSegments(int64_t rows, int64_t n, int64_t threads) {
  if (rows < threads && n >= kSelectionSplitLength)
    return std::min<int64_t>(threads * 4, n / kSelectionMinSegment);
  return 1;
}

/// max/min with dim and argmax/argmin: segments each contiguous row of n
/// is split into (1: whole rows), when there are fewer rows than threads:
/// as many as the threads need, each at least kArgMinSegment long. The
/// segments' answers combine in order into the row's, whatever the split.
constexpr int64_t kArgMinSegment = int64_t(1) << 16;
inline int64_t argSegments(int64_t rows, int64_t n, int64_t threads) {
  if (rows >= threads || n < 2 * kArgMinSegment)
    return 1;
  return std::min((threads + rows - 1) / rows, n / kArgMinSegment);
}

/// max/min with dim and argmax/argmin: contiguous rows of at most this many
/// bytes are taken whole, one after another, each in two passes of whole
/// vectors (its extreme, then the first index holding it); longer rows in
/// blocks of 512 elements (ArgReduce.cpp). At 8 KB the two were level.
constexpr int64_t kArgShortRowBytes = 4096;
constexpr int64_t argShortRow(int64_t elementBytes) {
  return kArgShortRowBytes / elementBytes;
}

/// max/min with dim and argmax/argmin over a strided dim (columns): blocks
/// of this many bytes of adjacent columns (8 vectors of 64 bytes) scanned a
/// row at a time; the columns after the last whole block go 16 at a time.
constexpr int64_t kArgColumnBlockBytes = 512;
constexpr int64_t argColumnBlock(int64_t elementBytes) {
  return kArgColumnBlockBytes / elementBytes;
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_SELECTIONPLAN_H
