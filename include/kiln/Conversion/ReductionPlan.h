//===- ReductionPlan.h - How the CPU lowering splits reductions -*- C++ -*-===//
//
// The shape rule by which convert-kiln-to-linalg splits a reduction over
// few kept positions into segments reduced in parallel
// (planReductionSplit), in one place: kiln-fuse-elementwise forms a row
// group only from reductions the lowering would not split or splits into
// few segments (rowSegments), which the row group then reduces in the
// split's order, so that fused and unfused code add in the same order (the
// same bits); softmax takes its rows-in-cache kernel, and joins a row
// group, only when its passes would not split.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CONVERSION_REDUCTIONPLAN_H
#define KILN_CONVERSION_REDUCTIONPLAN_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

namespace kiln::conversion {

/// Split reductions: below this many kept positions a lane reduction is
/// split into segments, ...
constexpr int64_t kSplitKeptBelow = 1024;
/// ... aiming at this many (kept position, segment) pairs, ...
constexpr int64_t kSplitParallelism = 1024;
/// ... each of at least this many elements.
constexpr int64_t kSplitMinSegment = 4096;

/// Rows of at most this many bytes run their passes in one kernel while
/// they stay in the L2 cache (softmax's rows in cache, row groups).
constexpr int64_t kRowInCacheMaxBytes = 256 << 10;

/// The shortest rows (elements along the last dim) a softmax takes a row
/// per lane of a vector on the CPU (the lowering's lowerLaneRows; shorter
/// ones run the rows-in-cache kernel, whose loads of pairs and triples LLVM
/// vectorizes as interleaved groups). 1 thread, 4096 rows, rows-in-cache
/// kernel -> lanes, f32: 2 elements 3.1 -> 6.3 us, 3 5.6 -> 8.3, 4 10.2 ->
/// 9.7, 6 70 -> 13, 10 42 -> 18 (compile 294 -> 109 ms), 16 68 -> 24, 31 114
/// -> 51 (compile 73 -> 135 ms); f64: 2 9.5 -> 12.4, 3 14.9 -> 16.2, 4 26.6
/// -> 22.2, 10 97 -> 55, 31 184 -> 150. The longest is one less than the 32
/// lanes of a float sum, whose lines shorter than the lanes sum their
/// elements in order, as the lanes kernel does: the same bits.
constexpr int64_t kLaneRowsMinLength = 4;
constexpr int64_t kLaneRowsMaxLength = 31;

/// The rows the lanes kernel takes at a time (the elements of a vector
/// register of `vectorBits`: 16 f32 with AVX-512, 8 with AVX2) for `rows`
/// rows of `n` f32 or f64 elements (`elementBits`), or 0 where it does not
/// apply: rows of other lengths, and fewer rows than it takes at a time,
/// which it would compile for nothing (8x20 f32: 71-74 -> 97-103 ms of
/// compile_ms, both kernels under a microsecond). Its square tiles of
/// `lanes` vectors then fit the register file: AVX-512's 16 x 16 f32 took
/// 32 of AVX2's 16 registers (a sum over 262144 rows of 24 f32 on a Zen 3:
/// 4.8 ms at 1 thread, PyTorch 2.8).
inline int64_t laneRowsWidth(int64_t rows, int64_t n, unsigned elementBits,
                             int64_t vectorBits = 512) {
  if (n < kLaneRowsMinLength || n > kLaneRowsMaxLength ||
      (elementBits != 32 && elementBits != 64))
    return 0;
  int64_t lanes = vectorBits / elementBits;
  return rows < lanes ? 0 : lanes;
}

/// Kernel outputs of at least this many bytes that the kernel only writes
/// get non-temporal stores (kiln-streaming-stores' default): 32 MiB, the L3
/// of a Zen 4/5 CCD; a smaller output may still be in cache for the kernel
/// that reads it next.
constexpr int64_t kStreamingMinBytes = 32 << 20;

/// Whether a reduction of `reduced` elements at each of `kept` positions
/// is a candidate for splitting (planReductionSplit then looks for a dim to
/// split); false means it runs as one loop per kept position -- or, with
/// no kept position (a sum over dim 1 of 0x33410), not at all.
inline bool mayBeSplit(int64_t kept, int64_t reduced) {
  return kept > 0 && kept < kSplitKeptBelow &&
         reduced >= 2 * kSplitMinSegment;
}

/// Split segments hold whole 64-byte lines' worth of positions of the
/// split dim: along the innermost dim (the contiguous one) every segment's
/// vector loads then start on a line, where segments of any length
/// straddle two lines per load (1 thread, the f32 sum of 4000000 elements
/// in cache in 256 segments of 15625: 0.24 ms; of 4194304 in 1024 segments
/// of 4096: 0.18). Along any other dim too, so that the plan does not
/// depend on which dim is innermost: a reduction of a permute has the bits
/// of the reduction of the permuted tensor stored contiguously
/// (reducedRuns).
constexpr int64_t kSplitAlignBytes = 64;

/// The positions of a split dim after its segments (ReductionSplit::rest)
/// are reduced by a kernel of their own, one thread per kept position: at
/// most this many elements per kept position.
constexpr int64_t kSplitMaxRestElements = 16384;

/// How a reduction over few kept positions is split (planReductionSplit):
/// the first `segments * length` positions of the reduced dim `dim` are
/// `segments` segments of `length` positions each, reduced in parallel;
/// the `rest` positions after them (fewer than `segments` times the
/// alignment) are reduced on their own; the segments' partial results,
/// then the rest's, are merged.
struct ReductionSplit {
  int64_t dim = 0;
  int64_t segments = 1;
  int64_t length = 0;
  int64_t rest = 0;
};

/// How a lane reduction over the dims flagged in `mask` of a tensor of
/// `shape` (`elementBytes` bytes per element) splits when it has few kept
/// positions, or nothing: one loop per kept position. `segments` is the
/// largest power of two up to kSplitParallelism / kept (rounded up to a
/// power of two) that leaves each segment at least kSplitMinSegment
/// elements, or a smaller one where that leaves over kSplitMaxRestElements
/// elements in the rest; `length` is the split dim's size / segments,
/// rounded down to a multiple of 64 bytes' elements (kSplitAlignBytes); the
/// split dim is the outermost reduced dim that takes 2 segments or more. A
/// function of the shape alone, so every target splits alike (the same
/// bits).
inline std::optional<ReductionSplit>
planReductionSplit(llvm::ArrayRef<int64_t> shape, llvm::ArrayRef<bool> mask,
                   int64_t elementBytes) {
  int64_t kept = 1, reduced = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    (mask[d] ? reduced : kept) *= shape[d];
  if (!mayBeSplit(kept, reduced))
    return std::nullopt;
  int64_t align = std::max<int64_t>(1, kSplitAlignBytes /
                                           std::max<int64_t>(elementBytes, 1));
  int64_t most = std::min<int64_t>(
      llvm::PowerOf2Ceil((kSplitParallelism + kept - 1) / kept),
      int64_t(llvm::bit_floor(uint64_t(reduced / kSplitMinSegment))));
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!mask[d])
      continue;
    int64_t size = shape[d], others = reduced / size;
    for (int64_t segments = most; segments >= 2; segments /= 2) {
      int64_t length = size / segments / align * align;
      int64_t rest = size - segments * length;
      if (length > 0 && rest * others <= kSplitMaxRestElements)
        return ReductionSplit{int64_t(d), segments, length, rest};
    }
  }
  return std::nullopt;
}

/// A column group's block of columns (kiln-fuse-elementwise's
/// formColumnGroups, the CPU lowering's lowerColumnGroup): reductions over
/// the middle dim of [O, C, T], `reduced` = C, `columns` = T, whose chain
/// broadcasts them back, computed a block of B columns of T at a time: its
/// C x B elements come from memory in the first pass, from cache in the
/// others. B divides T (every block has one static shape), is at most
/// kColumnGroupBlockBytes of a row (128 f32, as the column reduction's
/// blocks), keeps the block within kColumnGroupMaxBytes (in the L2 cache),
/// and holds whole 64-byte lines unless the largest such divisor is under
/// half the largest divisor. Whole rows (B = T) are one contiguous slab,
/// taken when they hold a line or more. Nothing -- the reductions stay
/// kernels of their own -- when the block is a piece of each row of under
/// kColumnGroupMinPieceBytes (x - amax(x, 0) of 2048x1000 f32 in pieces of
/// 25 columns: 0.92 ms at 1 thread, the two kernels 0.46), or when the
/// rows' stride is a multiple of 4 KB and there are more than
/// kColumnGroupMaxAlignedRows of them: every row's piece then falls in the
/// same cache sets, which hold few, and each pass reads the block from
/// memory again (of 1024x4096 f32: 3.5 ms against 1.5; of 4096x4096 in
/// pieces of 8 columns, 166 against 10). A layer norm over the channels,
/// 8x384x14x14 f32 (pieces of 98 of the 196): 0.21 ms against the three
/// kernels' 0.61; 8x768x7x7 (whole rows): 0.07 against 0.54.
constexpr int64_t kColumnGroupBlockBytes = 512;
constexpr int64_t kColumnGroupMaxBytes = 256 << 10;
constexpr int64_t kColumnGroupMinPieceBytes = 256;
constexpr int64_t kColumnGroupMaxAlignedRows = 8;

/// The largest divisor of `n` that is at most `most` and a multiple of
/// `step`; 0 when there is none.
inline int64_t largestDivisor(int64_t n, int64_t most, int64_t step = 1) {
  for (int64_t d = std::min(most, n) / step * step; d >= step; d -= step)
    if (n % d == 0)
      return d;
  return 0;
}

/// Why a column group has no block (columnGroupPlan): whole rows narrower
/// than a line, pieces of rows under kColumnGroupMinPieceBytes, or more
/// than kColumnGroupMaxAlignedRows rows at a stride of a multiple of 4 KB.
enum class ColumnGroupRefusal { None, NarrowRows, SmallPieces, AlignedRows };

/// columnGroupBlock's answer with its reason: `block` (0 when refused),
/// `refusal`, and `pieceBytes`, the bytes of each row a block would hold
/// (the whole row's when it is narrower than a line).
struct ColumnGroupPlan {
  int64_t block = 0;
  ColumnGroupRefusal refusal = ColumnGroupRefusal::None;
  int64_t pieceBytes = 0;
};

inline ColumnGroupPlan columnGroupPlan(int64_t reduced, int64_t columns,
                                       int64_t elementBytes) {
  if (reduced < 1 || columns < 1 || elementBytes < 1)
    return {0, ColumnGroupRefusal::NarrowRows, 0};
  int64_t line = std::max<int64_t>(1, 64 / elementBytes);
  int64_t most = std::min(kColumnGroupBlockBytes / elementBytes,
                          kColumnGroupMaxBytes / (reduced * elementBytes));
  if (columns <= most) // whole rows: the block is one contiguous slab
    return columns >= line ? ColumnGroupPlan{columns, ColumnGroupRefusal::None,
                                             columns * elementBytes}
                           : ColumnGroupPlan{0, ColumnGroupRefusal::NarrowRows,
                                             columns * elementBytes};
  int64_t largest = largestDivisor(columns, most),
          aligned = largestDivisor(columns, most, line);
  int64_t block = 2 * aligned >= largest ? aligned : largest;
  if (block * elementBytes < kColumnGroupMinPieceBytes)
    return {0, ColumnGroupRefusal::SmallPieces, block * elementBytes};
  if ((columns * elementBytes) % 4096 == 0 &&
      reduced > kColumnGroupMaxAlignedRows)
    return {0, ColumnGroupRefusal::AlignedRows, block * elementBytes};
  return {block, ColumnGroupRefusal::None, block * elementBytes};
}

inline std::optional<int64_t> columnGroupBlock(int64_t reduced, int64_t columns,
                                               int64_t elementBytes) {
  ColumnGroupPlan plan = columnGroupPlan(reduced, columns, elementBytes);
  if (plan.refusal != ColumnGroupRefusal::None)
    return std::nullopt;
  return plan.block;
}

/// The block of columns of a softmax's packed tile (the CPU lowering's
/// lowerPackedColumns: a softmax over a middle dim, each tile of its
/// `rows` rows by a block of the `columns` of the last dim copied to a
/// buffer for its passes): the largest divisor of the columns of whole
/// 64-byte lines, at most kColumnGroupBlockBytes of a row, with the tile
/// in the L2 cache (kRowInCacheMaxBytes); 0 when there is none or when it
/// holds less than kColumnGroupMinPieceBytes of each row: every piece lies
/// in a page of its own, and pieces of a line each missed the TLB and the
/// hardware's prefetch (4096x4096 f32 over dim 0 in tiles of 16 columns:
/// 55 ms at 1 thread, the softmax's three kernels 21). kiln-fuse-elementwise
/// writes a middle-dim softmax as a column group only where this refuses:
/// the tile computes each exp once (256x256x256 f32 over dim 1 at 1 thread:
/// 7.1-9.6 ms packed, 9.5-11.3 as a column group).
inline int64_t packedTileBlock(int64_t rows, int64_t columns,
                               int64_t elementBytes) {
  if (rows < 1 || columns < 1 || elementBytes < 1)
    return 0;
  int64_t line = std::max<int64_t>(1, 64 / elementBytes);
  int64_t most = std::min(kColumnGroupBlockBytes / elementBytes,
                          kRowInCacheMaxBytes / (rows * elementBytes));
  int64_t block = most < line ? 0 : largestDivisor(columns, most, line);
  return block * elementBytes >= kColumnGroupMinPieceBytes ? block : 0;
}

/// A row group (kiln-fuse-elementwise) may reduce rows that the lowering
/// would split when the split has at most this many segments: the row's
/// reductions then follow the split's order -- each segment's partial in
/// the lane order, then the partials, fewer than the lanes, in one chain,
/// then the rest's partial in the lane order -- and give the separate
/// kernels' bits.
constexpr int64_t kRowGroupMaxSegments = 16;

/// How each of `rows` rows of `n` elements of `elementBytes` bytes is
/// reduced, by the lowering and so by a row group: in one loop (1 segment
/// of n) or as planReductionSplit splits it; nothing when that is into
/// more than kRowGroupMaxSegments segments (no row group).
inline std::optional<ReductionSplit> rowSegments(int64_t rows, int64_t n,
                                                 int64_t elementBytes) {
  auto split = planReductionSplit({rows, n}, {false, true}, elementBytes);
  if (!split)
    return ReductionSplit{1, 1, n, 0};
  if (split->segments > kRowGroupMaxSegments)
    return std::nullopt;
  return split;
}

/// One dim of a reduction's input as the lowering sees it (coalesceDims):
/// the input's `dims` it stands for, their elements' count, and whether
/// they are reduced.
struct DimRun {
  llvm::SmallVector<int64_t, 2> dims;
  int64_t size = 1;
  bool reduced = false;
};

/// The dims of an input of `shape` (reduced where `mask` is set) as the
/// lowering sees them: it coalesces the input first -- drops its unit dims
/// and merges each run of consecutive dims reduced (or kept) alike, whose
/// elements lie in the same row-major order either way, into one dim.
inline llvm::SmallVector<DimRun> coalesceDims(llvm::ArrayRef<int64_t> shape,
                                              llvm::ArrayRef<bool> mask) {
  llvm::SmallVector<DimRun> runs;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1)
      continue;
    if (runs.empty() || runs.back().reduced != mask[d])
      runs.push_back({{}, 1, mask[d]});
    runs.back().dims.push_back(d);
    runs.back().size *= shape[d];
  }
  return runs;
}

/// The sizes of coalesceDims' reduced dims, in order: with the number of
/// kept positions, all a float reduction's order of operations (its lanes
/// along the innermost of them, its split) depends on.
inline llvm::SmallVector<int64_t> reducedRuns(llvm::ArrayRef<int64_t> shape,
                                              llvm::ArrayRef<bool> mask) {
  llvm::SmallVector<int64_t> sizes;
  for (const DimRun &run : coalesceDims(shape, mask))
    if (run.reduced)
      sizes.push_back(run.size);
  return sizes;
}

} // namespace kiln::conversion

#endif // KILN_CONVERSION_REDUCTIONPLAN_H
