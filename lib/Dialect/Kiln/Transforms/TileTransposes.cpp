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

/// The loop dim that walks the last dim of an input read transposed by
/// `op` (an all-parallel linalg op on tensors: a generic, a transpose), if
/// any input is: its
/// indexing map is a projected permutation whose last result is a loop dim
/// other than the innermost, and both dims span more than a tile.
std::optional<unsigned> transposedDim(linalg::LinalgOp op) {
  unsigned loops = op.getNumLoops();
  if (loops < 2 || op.getNumReductionLoops() != 0 ||
      !op.hasPureTensorSemantics())
    return std::nullopt;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (ranges[loops - 1] <= kTile)
    return std::nullopt;
  for (OpOperand *input : op.getDpsInputOperands()) {
    AffineMap map = op.getMatchingIndexingMap(input);
    if (!map.isProjectedPermutation() || map.getNumResults() < 2)
      continue;
    auto last = dyn_cast<AffineDimExpr>(map.getResults().back());
    if (!last || last.getPosition() == loops - 1 ||
        ShapedType::isDynamic(ranges[last.getPosition()]) ||
        ranges[last.getPosition()] <= kTile)
      continue;
    // Only when the innermost loop jumps at least a page of the operand
    // per step, or a multiple of kAliasingStrideBytes (other small strides
    // stay in cache: tiling them measured slower).
    auto type = dyn_cast<RankedTensorType>(input->get().getType());
    std::optional<unsigned> walked =
        map.getResultPosition(getAffineDimExpr(loops - 1, op.getContext()));
    if (!type || !type.hasStaticShape() || !walked)
      continue;
    int64_t stride = type.getElementTypeBitWidth() / 8;
    for (int64_t d = *walked + 1; d < type.getRank(); ++d)
      stride *= type.getDimSize(d);
    if (stride < kMinStrideBytes && stride % kAliasingStrideBytes != 0)
      continue;
    return last.getPosition();
  }
  return std::nullopt;
}

struct KilnTileTransposesPass
    : kiln::impl::KilnTileTransposesBase<KilnTileTransposesPass> {
  void runOnOperation() override {
    SmallVector<std::pair<linalg::LinalgOp, unsigned>> targets;
    getOperation()->walk([&](linalg::LinalgOp op) {
      // Not inside loops the lowering built (their bodies are per tile or
      // per row already).
      if (op->getParentOfType<LoopLikeOpInterface>())
        return;
      if (std::optional<unsigned> dim = transposedDim(op))
        targets.emplace_back(op, *dim);
    });
    IRRewriter rewriter(&getContext());
    for (auto [op, dim] : targets) {
      unsigned loops = op.getNumLoops();
      // Tiles of kTile along the transposed dim and the innermost loop
      // dim; 1 along the other dims (an iteration each).
      SmallVector<OpFoldResult> sizes(loops, rewriter.getIndexAttr(1));
      sizes[dim] = rewriter.getIndexAttr(kTile);
      sizes[loops - 1] = rewriter.getIndexAttr(kTile);
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
