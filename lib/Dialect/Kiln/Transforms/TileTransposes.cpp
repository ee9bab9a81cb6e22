//===- TileTransposes.cpp - Tile elementwise kernels that transpose -------===//
//
// An elementwise linalg op (a generic, a linalg.transpose) that reads an
// operand transposed (its
// innermost loop walks a dim of the operand other than its last) touches
// one cache line per element of that operand; when the operand's rows are
// a power of two apart, the lines of a column also fall into the same
// cache sets. Tiling the two dims involved into 16x16 squares, an
// scf.forall over the squares, reuses every line from cache.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNTILETRANSPOSES
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// Side of the square tiles: one 64-byte line of f32 (32 and 64 measured
/// 2.3x and 3.3x slower on a 4096x4096 transpose, 8 1.3x).
constexpr int64_t kTile = 16;
/// The smallest step of the innermost loop through the transposed operand
/// that is tiled.
constexpr int64_t kMinStrideBytes = 4096;
/// Smaller steps that are a multiple of this are tiled too: the lines of a
/// column then fall into at most 8 of the 64 sets of a 32 KiB 8-way L1 and
/// evict each other (a 64x512 f32 transpose, 2 KiB steps: 66 -> 15 us on
/// one thread; 128x128, 512 B steps: 10 -> 7 us). Other small steps spread
/// over the sets and stay untiled (100x1000: 43 us untiled, 49 tiled).
constexpr int64_t kAliasingStrideBytes = 512;
/// A permute that keeps its innermost dims in place reads chunks of them
/// in order; the chunks are tiled like elements when they are 2 to 4 lines
/// (a 4M-element f32 permute (0, 2, 1, 3) of [n, 64, 64, c] on one thread:
/// c = 32 1209 -> 960 us, c = 64 1175 -> 1014, PyTorch 1650 / 1160).
/// Smaller chunks lose more to the tiles' short loops than they gain (c =
/// 4: 2.2 -> 11 ms; c = 16 faster or slower by shape); larger ones are
/// read well whole.
constexpr int64_t kMinChunkBytes = 128;
constexpr int64_t kMaxChunkBytes = 256;

/// How an op reads one of its inputs transposed: the loops that are tiled.
struct TransposedRead {
  /// The loop walking the input's dim just before its in-order suffix
  /// (for a plain transpose, the input's last dim).
  unsigned across;
  /// The innermost loop not in the suffix: it steps through the input by
  /// a whole row of some outer dim.
  unsigned along;
};

/// Whether `op` (an all-parallel linalg op on tensors: a generic, a
/// transpose) reads an input transposed, and which loops to tile. The
/// input's indexing map is a projected permutation; its last `k` dims
/// (k >= 0) are walked by the last `k` loops in order -- a contiguous chunk
/// of the input per iteration of the loops outside them (one element for a
/// plain transpose; the innermost dims a permute keeps in place, e.g.
/// (0, 2, 1, 3)) -- and the next loop out walks some other dim of the
/// input. Tiled when that chunk is a single element or kMinChunkBytes to
/// kMaxChunkBytes, the walk steps a page or more or a multiple of
/// kAliasingStrideBytes, and both dims span more than a tile.
std::optional<TransposedRead> transposedRead(linalg::LinalgOp op) {
  unsigned loops = op.getNumLoops();
  if (loops < 2 || op.getNumReductionLoops() != 0 ||
      !op.hasPureTensorSemantics())
    return std::nullopt;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  for (OpOperand *input : op.getDpsInputOperands()) {
    AffineMap map = op.getMatchingIndexingMap(input);
    auto type = dyn_cast<RankedTensorType>(input->get().getType());
    if (!map.isProjectedPermutation() || map.getNumResults() < 2 || !type ||
        !type.hasStaticShape())
      continue;
    unsigned rank = map.getNumResults();
    auto loopOf = [&](unsigned result) {
      return cast<AffineDimExpr>(map.getResult(result)).getPosition();
    };
    // The in-order suffix: input dim rank-1-k walked by loop loops-1-k.
    unsigned k = 0;
    while (k < rank && k < loops && loopOf(rank - 1 - k) == loops - 1 - k)
      ++k;
    if (k == rank || k == loops)
      continue; // read in order (at most broadcast over outer loops)
    int64_t elementBytes = type.getElementTypeBitWidth() / 8;
    int64_t chunkBytes = elementBytes;
    for (unsigned d = rank - k; d < rank; ++d)
      chunkBytes *= type.getDimSize(d);
    unsigned along = loops - 1 - k, across = loopOf(rank - 1 - k);
    std::optional<unsigned> walked =
        map.getResultPosition(getAffineDimExpr(along, op.getContext()));
    bool chunkTiled = k == 0 || (chunkBytes >= kMinChunkBytes &&
                                 chunkBytes <= kMaxChunkBytes);
    if (!chunkTiled || !walked || ShapedType::isDynamic(ranges[along]) ||
        ranges[along] <= kTile || ShapedType::isDynamic(ranges[across]) ||
        ranges[across] <= kTile)
      continue;
    // Only when `along` jumps at least a page of the operand per step, or
    // a multiple of kAliasingStrideBytes (other small strides stay in
    // cache: tiling them measured slower).
    int64_t stride = elementBytes;
    for (int64_t d = *walked + 1; d < type.getRank(); ++d)
      stride *= type.getDimSize(d);
    if (stride < kMinStrideBytes && stride % kAliasingStrideBytes != 0)
      continue;
    return TransposedRead{across, along};
  }
  return std::nullopt;
}

struct KilnTileTransposesPass
    : kiln::impl::KilnTileTransposesBase<KilnTileTransposesPass> {
  void runOnOperation() override {
    SmallVector<std::pair<linalg::LinalgOp, TransposedRead>> targets;
    getOperation()->walk([&](linalg::LinalgOp op) {
      // Not inside loops the lowering built (their bodies are per tile or
      // per row already).
      if (op->getParentOfType<LoopLikeOpInterface>())
        return;
      if (std::optional<TransposedRead> read = transposedRead(op))
        targets.emplace_back(op, *read);
    });
    IRRewriter rewriter(&getContext());
    for (auto [op, read] : targets) {
      unsigned loops = op.getNumLoops();
      // Tiles of kTile along the two loops; the in-order chunk whole (0:
      // untiled); 1 along the other dims (an iteration each).
      SmallVector<OpFoldResult> sizes(loops, rewriter.getIndexAttr(1));
      for (unsigned loop = read.along + 1; loop < loops; ++loop)
        sizes[loop] = rewriter.getIndexAttr(0);
      sizes[read.across] = rewriter.getIndexAttr(kTile);
      sizes[read.along] = rewriter.getIndexAttr(kTile);
      scf::SCFTilingOptions options;
      options.setTileSizes(sizes);
      options.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
      rewriter.setInsertionPoint(op);
      FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
          rewriter, cast<TilingInterface>(op.getOperation()), options);
      if (failed(tiled)) {
        op.emitError("kiln-tile-transposes: tiling failed");
        return signalPassFailure();
      }
      rewriter.replaceOp(op, tiled->replacements);
    }
  }
};

} // namespace
