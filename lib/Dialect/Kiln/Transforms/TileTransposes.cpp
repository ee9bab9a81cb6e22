//===- TileTransposes.cpp - Tile elementwise kernels that transpose -------===//
//
// An elementwise linalg op (a generic, a linalg.transpose) that reads an
// operand transposed (its
// innermost loop walks a dim of the operand other than its last) touches
// one cache line per element of that operand; when the operand's rows are
// a power of two apart, the lines of a column also fall into the same
// cache sets. Tiling the two dims involved into 16x16 squares, an
// scf.forall over the squares, reuses every line from cache. A
// linalg.transpose of 32- or 64-bit elements goes further: its squares are
// read as vectors of whole lines and transposed in registers.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "kiln/Conversion/VectorTranspose.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
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
  /// Whether 16x16 tiles pay (the chunk, the dims' sizes and the step).
  bool worthTiles;
};

/// Whether `op` (an all-parallel linalg op on tensors: a generic, a
/// transpose) reads an input transposed, and which loops to tile. The
/// input's indexing map is a projected permutation; its last `k` dims
/// (k >= 0) are walked by the last `k` loops in order -- a contiguous chunk
/// of the input per iteration of the loops outside them (one element for a
/// plain transpose; the innermost dims a permute keeps in place, e.g.
/// (0, 2, 1, 3)) -- and the next loop out walks some other dim of the
/// input. Tiles pay when that chunk is a single element or kMinChunkBytes
/// to kMaxChunkBytes, the walk steps a page or more or a multiple of
/// kAliasingStrideBytes, and both dims span more than a tile: the first
/// input where they do, else the first read transposed at all.
std::optional<TransposedRead> transposedRead(linalg::LinalgOp op) {
  unsigned loops = op.getNumLoops();
  if (loops < 2 || op.getNumReductionLoops() != 0 ||
      !op.hasPureTensorSemantics())
    return std::nullopt;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  // Nothing to move (and no tile to slice: an offset into a dim of size 0
  // is out of bounds).
  if (llvm::is_contained(ranges, 0))
    return std::nullopt;
  std::optional<TransposedRead> first;
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
    // Booleans take a byte each in memory.
    int64_t elementBytes = (type.getElementTypeBitWidth() + 7) / 8;
    int64_t chunkBytes = elementBytes;
    for (unsigned d = rank - k; d < rank; ++d)
      chunkBytes *= type.getDimSize(d);
    unsigned along = loops - 1 - k, across = loopOf(rank - 1 - k);
    std::optional<unsigned> walked =
        map.getResultPosition(getAffineDimExpr(along, op.getContext()));
    if (!walked || ShapedType::isDynamic(ranges[along]) ||
        ShapedType::isDynamic(ranges[across]))
      continue;
    bool chunkTiled = k == 0 || (chunkBytes >= kMinChunkBytes &&
                                 chunkBytes <= kMaxChunkBytes);
    // Only when `along` jumps at least a page of the operand per step, or
    // a multiple of kAliasingStrideBytes (other small strides stay in
    // cache: tiling them measured slower).
    int64_t stride = elementBytes;
    for (int64_t d = *walked + 1; d < type.getRank(); ++d)
      stride *= type.getDimSize(d);
    bool aliasing =
        stride >= kMinStrideBytes || stride % kAliasingStrideBytes == 0;
    TransposedRead read{across, along,
                        chunkTiled && aliasing && ranges[along] > kTile &&
                            ranges[across] > kTile};
    if (read.worthTiles)
      return read;
    if (!first)
      first = read;
  }
  return first;
}

/// The lanes of a 512-bit vector of `type`'s elements when the transpose
/// `op` can run in register tiles of that side: a `linalg.transpose` of
/// 32- or 64-bit elements read transposed element by element (no in-order
/// chunk) whose two swapped dims span a side or more; 0 otherwise.
int64_t registerTileSide(linalg::LinalgOp op, const TransposedRead &read) {
  auto transpose = dyn_cast<linalg::TransposeOp>(op.getOperation());
  if (!transpose || read.along != op.getNumLoops() - 1)
    return 0;
  Type element = transpose.getInput().getType().getElementType();
  if (!element.isIntOrFloat() || (element.getIntOrFloatBitWidth() != 32 &&
                                  element.getIntOrFloatBitWidth() != 64))
    return 0;
  int64_t side = 512 / element.getIntOrFloatBitWidth();
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  for (unsigned loop : {read.across, read.along})
    if (ranges[loop] < side)
      return 0;
  return side;
}

/// `op` as an scf.forall over side x side squares of the two swapped dims
/// (1 along the others): each square's `side` input rows are read as
/// vectors (whole cache lines: 64 bytes), transposed in registers
/// (transposeTile) and written as the output's rows. Every line is read
/// and written once, whole, so the lines of a square sharing cache sets
/// no longer matters. What is left over at the ends of the two dims (less
/// than a side) is transposed by plain `linalg.transpose`s of the strips.
Value buildRegisterTiles(RewriterBase &b, linalg::TransposeOp op,
                         const TransposedRead &read, int64_t side) {
  Location loc = op.getLoc();
  auto linalgOp = cast<linalg::LinalgOp>(op.getOperation());
  unsigned loops = linalgOp.getNumLoops();
  SmallVector<int64_t> ranges = linalgOp.getStaticLoopRanges();
  // The square's extent along each loop (its step too), and the loops'
  // extents in whole squares.
  SmallVector<int64_t> squareShape(loops, 1), whole(ranges);
  for (unsigned loop : {read.across, read.along}) {
    squareShape[loop] = side;
    whole[loop] = ranges[loop] / side * side;
  }
  SmallVector<OpFoldResult> lbs(loops, b.getIndexAttr(0)), ubs, sizes,
      strides(loops, b.getIndexAttr(1));
  for (unsigned loop = 0; loop < loops; ++loop) {
    ubs.push_back(b.getIndexAttr(whole[loop]));
    sizes.push_back(b.getIndexAttr(squareShape[loop]));
  }
  auto forall = scf::ForallOp::create(b, loc, lbs, ubs, sizes,
                                      ValueRange{op.getInit()}, std::nullopt);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(forall.getBody());
  SmallVector<Value> ivs = forall.getInductionVars();
  Type element = op.getInput().getType().getElementType();
  auto vectorType = VectorType::get({side}, element);
  Value padding = arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
  // Input row r of the square: the loops' position with `along` advanced
  // by r; the input's last dim (walked by `across`) read as a vector.
  AffineMap inputMap =
      linalgOp.getMatchingIndexingMap(linalgOp.getDpsInputOperand(0));
  SmallVector<Value> rows;
  for (int64_t r = 0; r < side; ++r) {
    SmallVector<Value> at;
    for (AffineExpr result : inputMap.getResults()) {
      unsigned loop = cast<AffineDimExpr>(result).getPosition();
      Value position = ivs[loop];
      if (loop == read.along && r > 0)
        position = arith::AddIOp::create(
            b, loc, position, arith::ConstantIndexOp::create(b, loc, r));
      at.push_back(position);
    }
    rows.push_back(vector::TransferReadOp::create(b, loc, vectorType,
                                                  op.getInput(), at, padding,
                                                  SmallVector<bool>{true}));
  }
  SmallVector<Value> columns = kiln::conversion::transposeTile(b, loc, rows);
  // The output's square (the output's dims are the loops), its row j the
  // output's positions with `across` advanced by j.
  SmallVector<OpFoldResult> offsets(ivs.begin(), ivs.end());
  Value shared = forall.getRegionIterArgs()[0];
  Value square = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get(squareShape, element), shared, offsets,
      sizes, strides);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  for (int64_t j = 0; j < side; ++j) {
    SmallVector<Value> at(loops, zero);
    at[read.across] = arith::ConstantIndexOp::create(b, loc, j);
    square = vector::TransferWriteOp::create(b, loc, columns[j], square, at,
                                             SmallVector<bool>{true})
                 .getResult();
  }
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, square, shared, offsets, sizes,
                                        strides);
  b.setInsertionPointAfter(forall);
  Value result = forall.getResult(0);
  // The strips left over: `across` past its whole squares (every `along`),
  // then `along` past its whole squares (the whole squares' `across`).
  auto strip = [&](unsigned loop, unsigned other, int64_t otherSize) {
    if (whole[loop] == ranges[loop])
      return;
    SmallVector<OpFoldResult> outOffsets(loops, b.getIndexAttr(0)), outSizes,
        ones(loops, b.getIndexAttr(1));
    for (unsigned l = 0; l < loops; ++l)
      outSizes.push_back(b.getIndexAttr(ranges[l]));
    outOffsets[loop] = b.getIndexAttr(whole[loop]);
    outSizes[loop] = b.getIndexAttr(ranges[loop] - whole[loop]);
    outSizes[other] = b.getIndexAttr(otherSize);
    SmallVector<OpFoldResult> inOffsets, inSizes;
    for (AffineExpr expr : inputMap.getResults()) {
      unsigned l = cast<AffineDimExpr>(expr).getPosition();
      inOffsets.push_back(outOffsets[l]);
      inSizes.push_back(outSizes[l]);
    }
    Value input = tensor::ExtractSliceOp::create(b, loc, op.getInput(),
                                                 inOffsets, inSizes, ones);
    Value init = tensor::ExtractSliceOp::create(b, loc, result, outOffsets,
                                                outSizes, ones);
    Value transposed =
        linalg::TransposeOp::create(b, loc, input, init, op.getPermutation())
            .getResult()[0];
    result = tensor::InsertSliceOp::create(b, loc, transposed, result,
                                           outOffsets, outSizes, ones);
  };
  strip(read.across, read.along, ranges[read.along]);
  strip(read.along, read.across, whole[read.across]);
  return result;
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
      if (int64_t side = registerTileSide(op, read)) {
        rewriter.setInsertionPoint(op);
        rewriter.replaceOp(
            op, buildRegisterTiles(rewriter,
                                   cast<linalg::TransposeOp>(op.getOperation()),
                                   read, side));
        continue;
      }
      if (!read.worthTiles)
        continue;
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
