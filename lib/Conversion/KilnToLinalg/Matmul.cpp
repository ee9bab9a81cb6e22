//===- Matmul.cpp - matmul kernels ----------------------------------------===//
//
// Register-blocked, packed matmul loop nests; matrix-vector and split
// vector-matrix products.
// See Passes.td (convert-kiln-to-linalg) for the overview.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Conversion/VectorTranspose.h"
#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Runtime/SelectionPlan.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>
#include <numeric>

namespace kiln::lowering {

namespace {

/// Result rows per block of the CPU's matmul loop nest.
constexpr int64_t kMatmulRows = 4;

/// The CPU's float matmul register tile: `rows` result rows by two vectors
/// of columns (`columns`), its accumulators, the two rhs vectors and a
/// broadcast lhs element all in registers. The same bits whatever the
/// shape: each element still sums in k order.
struct MatmulTile {
  int64_t rows;
  int64_t columns;
};

/// The register tile for `elementType` with `vectorBits`-bit vectors
/// (convert-kiln-to-linalg{vector-bits}):
/// - AVX-512 (32 registers): 8 rows, 16 accumulators, 2 rhs vectors and a
///   broadcast, no spills; each rhs row loaded serves 8 rows. Against 4
///   rows (1 thread, ms): f32 256³ 0.19 -> 0.16, 1024³ 13.8 -> 12.2,
///   4096x64x4096 26.9 -> 18.7, f64 1024³ 32.5 -> 25.1; 12 and 16 rows
///   were slower (1024³: 16.6, 27.4).
/// - AVX2 and SSE (16 registers): 6 rows, 12 accumulators, 2 rhs vectors
///   and a broadcast. The AVX-512 tile there spilled 20 of its 32
///   accumulators (vectors of 32 f32 split in four) to the stack on every
///   k step: Zen 3, 1 thread, f32 1024³ 54-85 ms, 16x8192x4096 56 ms.
MatmulTile matmulTile(Type elementType, int64_t vectorBits) {
  int64_t lanes = vectorBits / elementType.getIntOrFloatBitWidth();
  return {vectorBits >= 512 ? 8 : 6, 2 * lanes};
}

/// Row blocks per iteration of the register-tiled matmul, at most; with at
/// least kMatmulPackBlocks, and a panel larger than the L1 cache
/// (kMatmulPackMinBytes), the iteration packs its rhs panel first (1T,
/// square f32, ms unpacked -> packed: 256 0.38 -> 0.40 (so not packed), 512
/// 3.21 -> 3.24, 768 11.5 -> 11.0, 1024 31.1 -> 27.2, 1536 114 -> 87, 2048
/// 365 -> 225).
constexpr int64_t kMatmulChunkBlocks = 16;

constexpr int64_t kMatmulPackBlocks = 4;

constexpr int64_t kMatmulPackMinBytes = 32 << 10;

/// Iterations the register-tiled matmul keeps at least, where the shape
/// allows, so that every worker thread gets some.
constexpr int64_t kMatmulMinIterations = 64;

/// A packed rhs panel larger than this is packed and used in blocks of k
/// of at most this size (all the column groups of an iteration together),
/// which stay in L2 while the chunk's row blocks read them
/// (buildMatmulTiles). 1 thread, f32, ms, whole panels -> blocks of 128 KB
/// (64 KB about the same; 256 KB and 512 KB slower), on a loaded machine:
/// 1024x16384 by 16384x1024 374-388 -> 316-324, 512x8192 by 8192x512 45 ->
/// 35, 2048x8192 by 8192x1024 300-333 -> 266-293, 1000x10000 by 10000x1000
/// 210-240 -> 194-199.
constexpr int64_t kMatmulBlockPanelBytes = 128 << 10;

/// Column groups an iteration of the register-tiled matmul takes at most
/// where its panels are read in blocks of k (matmulGrouping).
constexpr int64_t kMatmulGroupsTogether = 4;

/// Row blocks fewer than this are few: a block height that divides the
/// rows is chosen over rows left over (buildRegisterBlockedMatmul).
constexpr int64_t kMatmulFewRowBlocks = 8;

/// Iterations a register-tiled region of few row blocks keeps at least
/// (matmulGrouping).
constexpr int64_t kMatmulFewRowsMinIterations = 16;

/// Rows of rhs ahead of the one it packs that the packing loop prefetches
/// (the hardware's stream prefetch stays within a page, and rows a few KB
/// apart are each on another). 1 / 2 threads, f32, ms, none -> 8 rows
/// (4 and 16 about the same): 8x8192x4096 11.2 -> 8.6 / 8.5 -> 5.3,
/// 16x8192x4096 13.5 -> 11.6, 1024x16384x1024 213 -> 211 / 152 -> 123,
/// 2048x8192x1024 at 2 threads 138 -> 120.
constexpr int64_t kMatmulPackPrefetchRows = 8;

/// The row blocks per iteration (chunk) of a register-tiled region of
/// `blocks` row blocks whose other grid dims have `others` iterations: the
/// most row blocks (dividing their count, at most kMatmulChunkBlocks) that
/// still leave `minIterations` iterations, or 1.
int64_t matmulChunk(int64_t blocks, int64_t others,
                    int64_t minIterations = kMatmulMinIterations) {
  for (int64_t c = std::min(blocks, kMatmulChunkBlocks); c > 1; --c)
    if (blocks % c == 0 && others * (blocks / c) >= minIterations)
      return c;
  return 1;
}

/// How an iteration of a register-tiled region takes its column groups
/// (buildMatmulTiles' `together` and `minIterations`).
struct MatmulGrouping {
  int64_t together = 1;
  int64_t minIterations = kMatmulMinIterations;
};

/// The column groups an iteration of a register-tiled region takes
/// together, with `groups` column groups of `panelBytes` panels read in
/// blocks of k (over kMatmulBlockPanelBytes):
/// - with chunks of kMatmulPackBlocks row blocks or more, a block's lhs
///   rows, read from memory for each group on its own, serve up to
///   kMatmulGroupsTogether groups from the cache -- as many as keep the
///   chunk of row blocks that share the packed panels (fewer iterations,
///   `others` besides the column groups and row chunks, can leave fewer
///   row blocks per chunk). 1 / 2 threads, f32, ms, one group -> 4:
///   1024x16384x1024 234 -> 210 / 115 -> 106, 1000x10000x1000 169 -> 149 /
///   92 -> 80, 2048x8192x1024 235 -> 207 / 114 -> 106; 512x8192x512 (whose
///   chunk would shrink from 16 to 4 row blocks) 25 -> 30 / 13 -> 17; 8
///   groups no faster;
/// - with fewer row blocks (a small batch through a large layer), each row
///   block read its panel unpacked, 128 bytes of rows a row of rhs apart,
///   at a fraction of the memory's speed (in C, rows 16 KB apart read 128
///   bytes at a time: 7 GB/s; 512 bytes: 23-31), once per row block: up to
///   kMatmulGroupsTogether groups are packed together, row by row, and a
///   chunk takes all the row blocks that leave kMatmulFewRowsMinIterations
///   iterations, so that rhs is read once, 512 bytes of a row at a time.
MatmulGrouping matmulGrouping(int64_t others, int64_t groups, int64_t blocks,
                              int64_t panelBytes) {
  MatmulGrouping grouping;
  if (panelBytes <= kMatmulBlockPanelBytes)
    return grouping;
  int64_t chunk = matmulChunk(blocks, others * groups);
  if (chunk >= kMatmulPackBlocks) {
    for (int64_t together = kMatmulGroupsTogether; together > 1; together /= 2)
      if (groups >= together &&
          matmulChunk(blocks, others * (groups / together)) >= chunk) {
        grouping.together = together;
        break;
      }
    return grouping;
  }
  if (groups < 2)
    return grouping;
  grouping.together = std::min<int64_t>(kMatmulGroupsTogether,
                                        llvm::bit_floor(uint64_t(groups)));
  grouping.minIterations = kMatmulFewRowsMinIterations;
  return grouping;
}

/// One region of the CPU's register-tiled matmul: an scf.forall over
/// (batch, group of `width` result columns, chunk of row blocks) covering
/// rows [rowBegin, rowBegin + blocks * height) and columns [columnBegin,
/// columnBegin + groups * width) of every batch, written into `into`. A
/// chunk holds up to kMatmulChunkBlocks blocks of `height` rows. Per block
/// the height x width accumulators start at 0 and, for k = 0, 1, ..., add
/// lhs[row, k] * rhs[k, columns] (a multiply, then an add) — each element
/// still sums its products in k order from 0, the bits of the generic
/// loop. rhs is read once per block instead of once per row, and the
/// accumulators never go through memory. A chunk of several blocks first
/// copies its rhs panel (k x width) into a contiguous buffer that all its
/// blocks read: the panel's rows lie a row of rhs apart, and with a
/// power-of-two row (2048 floats) they map onto a few cache sets and evict
/// each other. A `width` that is not a power of two (the columns left over)
/// uses vectors of the next power of two, their reads and writes masked to
/// the columns that exist (vectors of other widths compile to one insert
/// per element). A panel larger than kMatmulBlockPanelBytes is packed and
/// read in blocks of k instead, the chunk's blocks running over each k
/// block in turn, their accumulators stored into the result tile between k
/// blocks and read back (still each element's products in k order, the
/// same bits). An iteration may take `together` column groups (of `groups`,
/// a multiple): each block runs over them in turn, its lhs rows read from
/// memory once for all of them; their panels are packed together (row by
/// row of rhs, whatever the chunk), and their k blocks sized for all of
/// them. Chunks leave at least `minIterations` iterations (matmulGrouping).
///
/// With `segments` S > 1 (split k), `into` holds S partial results
/// ([S, result dims...]): the forall's first dim is the segment s, whose
/// iterations sum k in [s * K / S, (s + 1) * K / S) only, in k order from
/// zero, into partial s.
Value buildMatmulTiles(OpBuilder &b, Location loc, MatmulOp op, Value into,
                       int64_t rowBegin, int64_t blocks, int64_t height,
                       int64_t columnBegin, int64_t groups, int64_t width,
                       int64_t segments = 1, int64_t together = 1,
                       int64_t minIterations = kMatmulMinIterations) {
  RankedTensorType lhsType = tensorType(op.getLhs());
  RankedTensorType rhsType = tensorType(op.getRhs());
  RankedTensorType resultType = op.getType();
  Type elementType = resultType.getElementType();
  int64_t rank = resultType.getRank(), batchRank = rank - 2;
  int64_t kSize = lhsType.getDimSize(lhsType.getRank() - 1) / segments;
  // The segment's dim of the grid and of `into` (none without a split).
  int64_t split = segments > 1 ? 1 : 0;
  // Iterations in (batch, column group, row chunk) order: a thread's
  // consecutive iterations share a column group, whose rhs panel stays in
  // cache while the row chunks go by. The chunk: the most row blocks
  // (dividing their count, at most kMatmulChunkBlocks) that still leave
  // `minIterations` iterations, if it packs; else one block.
  int64_t chunk = matmulChunk(
      blocks,
      ShapedType::getNumElements(resultType.getShape().take_front(batchRank)) *
          groups / together * segments,
      minIterations);
  int64_t lanes = llvm::PowerOf2Ceil(width);
  int64_t panelBytes = kSize * lanes * elementType.getIntOrFloatBitWidth() / 8;
  bool pack = (chunk >= kMatmulPackBlocks || together > 1) &&
              panelBytes > kMatmulPackMinBytes;
  if (!pack)
    chunk = 1;
  SmallVector<int64_t> grid;
  if (split)
    grid.push_back(segments);
  grid.append(resultType.getShape().take_front(batchRank).begin(),
              resultType.getShape().take_front(batchRank).end());
  grid.append({groups / together, blocks / chunk});
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Value> gridCoords;
  scf::ForallOp forall = createGridForall(b, loc, grid, into, gridCoords);
  // The result's coordinates (batch..., group, chunk), and the first k of
  // the segment.
  SmallVector<Value> coords(gridCoords.begin() + split, gridCoords.end());
  Value kBegin =
      split ? Value(arith::MulIOp::create(b, loc, gridCoords[0],
                                          indexConstant(b, loc, kSize)))
            : indexConstant(b, loc, 0);
  Value row0 = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, coords.back(),
                            indexConstant(b, loc, chunk * height)),
      indexConstant(b, loc, rowBegin));
  Value column = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, coords[batchRank],
                            indexConstant(b, loc, width * together)),
      indexConstant(b, loc, columnBegin));
  Value zero = indexConstant(b, loc, 0);
  Value one = indexConstant(b, loc, 1);
  // The batch coordinates of an operand (its batch dims align right with
  // the result's; a size-1 dim broadcasts).
  auto batchOf = [&](RankedTensorType type) {
    SmallVector<Value> at;
    int64_t own = type.getRank() - 2;
    for (int64_t j = 0; j < own; ++j) {
      int64_t resultDim = batchRank - own + j;
      bool broadcast =
          type.getDimSize(j) == 1 && resultType.getDimSize(resultDim) != 1;
      at.push_back(broadcast ? zero : coords[resultDim]);
    }
    return at;
  };
  SmallVector<Value> lhsBatch = batchOf(lhsType), rhsBatch = batchOf(rhsType);
  // The chunk's rows of the result.
  SmallVector<OpFoldResult> offsets, sizes, strides;
  SmallVector<int64_t> sliceShape;
  if (split) {
    offsets.push_back(gridCoords[0]);
    sizes.push_back(b.getIndexAttr(1));
    sliceShape.push_back(1);
  }
  for (int64_t d = 0; d < batchRank; ++d) {
    offsets.push_back(coords[d]);
    sizes.push_back(b.getIndexAttr(1));
    sliceShape.push_back(1);
  }
  offsets.append({row0, column});
  sizes.append(
      {b.getIndexAttr(chunk * height), b.getIndexAttr(width * together)});
  sliceShape.append({chunk * height, width * together});
  strides.assign(rank + split, b.getIndexAttr(1));
  Value shared = forall.getRegionIterArgs()[0];
  Value slice = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get(sliceShape, elementType), shared, offsets,
      sizes, strides);
  auto vectorType = VectorType::get({lanes}, elementType);
  Value zeroVector = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(vectorType, b.getZeroAttr(elementType)));
  Value padding = arith::ConstantOp::create(b, loc, b.getZeroAttr(elementType));
  SmallVector<bool> inBounds{true}, masked{lanes == width};
  Value kBound = indexConstant(b, loc, kSize);
  // x + y and x * c, leaving out adding and multiplying a constant 0 (one
  // column group and one k block read as they would without them).
  auto plus = [](OpBuilder &ob, Location ol, Value x, Value y) -> Value {
    if (matchPattern(y, m_Zero()))
      return x;
    if (matchPattern(x, m_Zero()))
      return y;
    return arith::AddIOp::create(ob, ol, x, y);
  };
  auto times = [](OpBuilder &ob, Location ol, Value x, int64_t c) -> Value {
    if (matchPattern(x, m_Zero()))
      return x;
    return arith::MulIOp::create(ob, ol, x, indexConstant(ob, ol, c));
  };
  // Row k of the segment (k from 0) of rhs, from column `offset` of the
  // iteration's.
  auto rhsRow = [&](OpBuilder &kb, Location kl, Value k,
                    Value offset) -> Value {
    SmallVector<Value> rhsAt(rhsBatch);
    rhsAt.append({plus(kb, kl, kBegin, k), plus(kb, kl, column, offset)});
    return vector::TransferReadOp::create(kb, kl, vectorType, op.getRhs(),
                                          rhsAt, padding, masked);
  };
  // Blocks of k: with a packed panel larger than kMatmulBlockPanelBytes,
  // the chunk's blocks run over k in blocks of `kBlock` rows, packing each
  // block's panel in turn, so that a panel that would stream from L3 for
  // every row block stays in L2 for all of them. Between k blocks the
  // accumulators go through the result tile and continue from there: each
  // element still sums its products in k order from 0, the same bits.
  int64_t kBlocks = 1;
  if (pack && panelBytes * together > kMatmulBlockPanelBytes)
    kBlocks = llvm::divideCeil(panelBytes * together, kMatmulBlockPanelBytes);
  int64_t kBlock = llvm::divideCeil(kSize, kBlocks);
  // Prefetches the iteration's columns of row k + kMatmulPackPrefetchRows
  // of the segment (at most its last row), for the packing loop of panels
  // over kMatmulBlockPanelBytes (1024³'s of 128 KB measured no faster).
  bool prefetch = pack && (kBlocks > 1 || together > 1);
  Value rhsBuffer =
      prefetch ? readOnlyStridedBuffer(b, loc, op.getRhs()) : Value();
  int64_t elementBytes = elementType.getIntOrFloatBitWidth() / 8;
  auto prefetchRhs = [&](OpBuilder &kb, Location kl, Value k) {
    Value ahead = arith::MinUIOp::create(
        kb, kl, plus(kb, kl, k, indexConstant(kb, kl, kMatmulPackPrefetchRows)),
        indexConstant(kb, kl, kSize - 1));
    for (int64_t e = 0; e < width * together; e += 64 / elementBytes) {
      SmallVector<Value> at(rhsBatch);
      at.append({plus(kb, kl, kBegin, ahead),
                 plus(kb, kl, column, indexConstant(kb, kl, e))});
      memref::PrefetchOp::create(kb, kl, rhsBuffer, at, /*isWrite=*/false,
                                 /*localityHint=*/3, /*isDataCache=*/true);
    }
  };
  // A loop over the iteration's `together` column groups g (none for one),
  // carrying `init`; `body` returns the values carried on.
  auto overGroups =
      [&](OpBuilder &gb, Location gl, Value init,
          function_ref<Value(OpBuilder &, Location, Value, Value)> body)
      -> Value {
    if (together == 1)
      return body(gb, gl, zero, init);
    return scf::ForOp::create(
               gb, gl, zero, indexConstant(gb, gl, together), one,
               ValueRange{init},
               [&](OpBuilder &lb, Location ll, Value g, ValueRange carried) {
                 scf::YieldOp::create(lb, ll, body(lb, ll, g, carried[0]));
               })
        .getResult(0);
  };
  // Rows [k0, k0 + count) of the segment packed into `buffer` ([together x
  // rows, lanes]), group g's from row g x rows: row by row of rhs, the
  // groups' pieces of a row one after the other (matmulGrouping: pieces of
  // 128 bytes are read at a fraction of the memory's speed).
  auto packPanel = [&](OpBuilder &pb, Location pl, Value k0, Value count,
                       Value buffer, int64_t rows) {
    return scf::ForOp::create(
               pb, pl, zero, count, one, ValueRange{buffer},
               [&](OpBuilder &kb, Location kl, Value k, ValueRange copy) {
                 Value into = copy[0];
                 if (prefetch)
                   prefetchRhs(kb, kl, plus(kb, kl, k0, k));
                 for (int64_t g = 0; g < together; ++g) {
                   Value row = rhsRow(kb, kl, plus(kb, kl, k0, k),
                                      indexConstant(kb, kl, g * width));
                   Value at = plus(kb, kl, indexConstant(kb, kl, g * rows), k);
                   into = vector::TransferWriteOp::create(
                              kb, kl, row, into, ValueRange{at, zero}, inBounds)
                              .getResult();
                 }
                 scf::YieldOp::create(kb, kl, into);
               })
        .getResult(0);
  };
  // The chunk's blocks, each over the iteration's column groups in turn,
  // over rows [k0, k0 + count) of the segment (group g's row k of `panel`,
  // which holds `rows` rows per group, or of rhs without one), their
  // accumulators starting at zero (`fromZero`, true, false, or null: at zero
  // where it holds, else from `tiles`). A block's lhs rows are read once per
  // group, from cache after the first.
  auto chunkBlocks = [&](OpBuilder &cb, Location cl, Value k0, Value count,
                         Value panel, int64_t rows, Value fromZero,
                         Value tilesIn) {
    return scf::ForOp::create(
               cb, cl, zero, indexConstant(cb, cl, chunk), one,
               ValueRange{tilesIn},
               [&](OpBuilder &bb, Location bl, Value block, ValueRange tiles) {
                 Value first = arith::MulIOp::create(
                     bb, bl, block, indexConstant(bb, bl, height));
                 Value firstRow = arith::AddIOp::create(bb, bl, row0, first);
                 Value done = overGroups(
                     bb, bl, tiles[0],
                     [&](OpBuilder &gb, Location gl, Value g, Value tile) {
                       Value offset = times(gb, gl, g, width);
                       Value base = times(gb, gl, g, rows);
                       auto tileRow = [&](OpBuilder &tb, Location tl,
                                          int64_t r) {
                         SmallVector<Value> at(batchRank + split, zero);
                         at.append(
                             {arith::AddIOp::create(tb, tl, first,
                                                    indexConstant(tb, tl, r)),
                              offset});
                         return at;
                       };
                       SmallVector<Value> initial(height, zeroVector);
                       if (fromZero) {
                         auto choice = scf::IfOp::create(
                             gb, gl, fromZero,
                             [&](OpBuilder &tb, Location tl) {
                               scf::YieldOp::create(tb, tl, initial);
                             },
                             [&](OpBuilder &eb, Location el) {
                               SmallVector<Value> stored;
                               for (int64_t r = 0; r < height; ++r)
                                 stored.push_back(
                                     vector::TransferReadOp::create(
                                         eb, el, vectorType, tile,
                                         tileRow(eb, el, r), padding, masked));
                               scf::YieldOp::create(eb, el, stored);
                             });
                         initial.assign(choice.getResults().begin(),
                                        choice.getResults().end());
                       }
                       auto sums = scf::ForOp::create(
                           gb, gl, zero, count, one, initial,
                           [&](OpBuilder &kb, Location kl, Value k,
                               ValueRange accs) {
                             Value row =
                                 panel ? Value(vector::TransferReadOp::create(
                                             kb, kl, vectorType, panel,
                                             ValueRange{plus(kb, kl, base, k),
                                                        zero},
                                             padding, inBounds))
                                       : rhsRow(kb, kl, plus(kb, kl, k0, k),
                                                offset);
                             // k within lhs's row.
                             Value kAt =
                                 plus(kb, kl, plus(kb, kl, kBegin, k0), k);
                             SmallVector<Value> next;
                             for (int64_t r = 0; r < height; ++r) {
                               SmallVector<Value> lhsAt(lhsBatch);
                               lhsAt.push_back(arith::AddIOp::create(
                                   kb, kl, firstRow, indexConstant(kb, kl, r)));
                               lhsAt.push_back(kAt);
                               Value a = tensor::ExtractOp::create(
                                   kb, kl, op.getLhs(), lhsAt);
                               Value product = arith::MulFOp::create(
                                   kb, kl,
                                   vector::BroadcastOp::create(kb, kl,
                                                               vectorType, a),
                                   row);
                               next.push_back(arith::AddFOp::create(
                                   kb, kl, accs[r], product));
                             }
                             scf::YieldOp::create(kb, kl, next);
                           });
                       for (int64_t r = 0; r < height; ++r)
                         tile = vector::TransferWriteOp::create(
                                    gb, gl, sums.getResult(r), tile,
                                    tileRow(gb, gl, r), masked)
                                    .getResult();
                       return tile;
                     });
                 scf::YieldOp::create(bb, bl, done);
               })
        .getResult(0);
  };
  Value result;
  if (kBlocks == 1) {
    Value panel;
    if (pack)
      panel = packPanel(b, loc, zero, kBound,
                        tensor::EmptyOp::create(
                            b, loc, {together * kSize, lanes}, elementType),
                        kSize);
    result = chunkBlocks(b, loc, zero, kBound, panel, kSize, Value(), slice);
  } else {
    Value buffer = tensor::EmptyOp::create(b, loc, {together * kBlock, lanes},
                                           elementType);
    Value step = indexConstant(b, loc, kBlock);
    auto blocksLoop = scf::ForOp::create(
        b, loc, zero, kBound, step, ValueRange{slice, buffer},
        [&](OpBuilder &kb, Location kl, Value k0, ValueRange carried) {
          Value count = step;
          if (kSize % kBlock != 0)
            count = arith::MinSIOp::create(
                kb, kl, step, arith::SubIOp::create(kb, kl, kBound, k0));
          Value panel = packPanel(kb, kl, k0, count, carried[1], kBlock);
          Value fromZero =
              arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::eq, k0, zero);
          Value tiles = chunkBlocks(kb, kl, k0, count, panel, kBlock, fromZero,
                                    carried[0]);
          scf::YieldOp::create(kb, kl, ValueRange{tiles, panel});
        });
    result = blocksLoop.getResult(0);
  }
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, result, shared, offsets, sizes,
                                        strides);
  return forall.getResult(0);
}

/// Register tiles (with their batches) fewer than this leave threads
/// idle; with a long k, the tiles split k instead (splitMatmulSegments).
constexpr int64_t kMatmulSplitMaxTiles = 16;

/// Rows of k per segment of a split matmul, at least.
constexpr int64_t kMatmulSplitMinRows = 4096;

/// A tile's rhs panel (k x its columns) above this size leaves the cache
/// before the next tile reads it again: with a result of at most
/// kMatmulSplitMaxResultBytes, k is split (splitMatmulSegments) into
/// segments of such panels, the partial results within
/// kMatmulSplitMaxPartialBytes. 1 / 2 threads, f32: 64x262144 by 262144x64
/// 33 / 23 -> 19 / 12 ms, 256x65536 by 65536x256 88 / 60 -> 56 / 33; a
/// larger result shares each panel among more row blocks (1024x16384 by
/// 16384x1024, packed panels: 216 ms at 1 thread, 252 split).
constexpr int64_t kMatmulSplitPanelBytes = 1 << 20;
constexpr int64_t kMatmulSplitMaxResultBytes = 256 << 10;
constexpr int64_t kMatmulSplitMaxPartialBytes = 8 << 20;

/// The segments a register-tiled matmul of `tiles` tiles splits k into:
/// with fewer than kMatmulSplitMaxTiles tiles, the largest power of two
/// that divides K into segments of at least kMatmulSplitMinRows with at
/// most kMatmulSplitMaxTiles tiles times segments in all; with more tiles,
/// panels of `panelBytes` and a result of `resultBytes`, enough segments
/// for panels of kMatmulSplitPanelBytes (above); else 1. A function of the
/// shape alone.
int64_t splitMatmulSegments(int64_t tiles, int64_t kSize, int64_t panelBytes,
                            int64_t resultBytes) {
  int64_t segments = 1;
  auto halves = [&] {
    return kSize % (2 * segments) == 0 &&
           kSize / (2 * segments) >= kMatmulSplitMinRows;
  };
  if (tiles < kMatmulSplitMaxTiles) {
    while (segments < 16 && tiles * segments < kMatmulSplitMaxTiles && halves())
      segments *= 2;
    return segments;
  }
  // Panels larger than L2 with a small result (few row blocks to share a
  // panel read from memory): segments of k whose operands stay in cache
  // while the segment's tiles (consecutive iterations) go by.
  if (resultBytes > kMatmulSplitMaxResultBytes)
    return 1;
  while (panelBytes / segments > kMatmulSplitPanelBytes &&
         resultBytes * 2 * segments <= kMatmulSplitMaxPartialBytes && halves())
    segments *= 2;
  return segments;
}

/// `partials` ([S, result dims...]) added element by element in segment
/// order from zero: ((0 + p_0) + p_1) + ... -- the split products' bits.
Value addPartialsInOrder(OpBuilder &b, Location loc, Value partials,
                         RankedTensorType resultType) {
  MLIRContext *ctx = b.getContext();
  int64_t rank = resultType.getRank();
  Type elementType = resultType.getElementType();
  bool isFloat = isa<FloatType>(elementType);
  // Loops (result dims..., s), s innermost.
  SmallVector<AffineExpr> partialExprs{getAffineDimExpr(rank, ctx)};
  for (int64_t d = 0; d < rank; ++d)
    partialExprs.push_back(getAffineDimExpr(d, ctx));
  SmallVector<utils::IteratorType> iterators = parallelIterators(rank + 1);
  iterators.back() = utils::IteratorType::reduction;
  Value init =
      filledTensor(b, loc, resultType, getScalarAttr(b, elementType, 0.0));
  return linalg::GenericOp::create(
             b, loc, TypeRange{resultType}, ValueRange{partials},
             ValueRange{init},
             SmallVector<AffineMap>{
                 AffineMap::get(rank + 1, 0, partialExprs, ctx),
                 AffineMap::getMultiDimIdentityMap(rank + 1, ctx)
                     .getMajorSubMap(rank)},
             iterators,
             [&](OpBuilder &nb, Location l, ValueRange args) {
               Value sum =
                   isFloat
                       ? Value(arith::AddFOp::create(nb, l, args[1], args[0]))
                       : Value(arith::AddIOp::create(nb, l, args[1], args[0]));
               linalg::YieldOp::create(nb, l, sum);
             })
      .getResult(0);
}

/// The column groups of a register-tiled matmul with `m` columns and tiles
/// of `width`: `groups` whole groups, then the columns left over as
/// `tailGroups` groups of `tailWidth` (none when `tailWidth` is 0).
struct MatmulColumnGroups {
  int64_t groups;
  int64_t tailGroups;
  int64_t tailWidth;
};

/// Columns left over in a multiple of 8 take groups of the largest power of
/// two dividing them, unmasked (24 columns: 3 groups of 8, 0.73 ms for
/// 1000x1000x24 against 0.83 masked to 32); others one masked group.
MatmulColumnGroups matmulColumnGroups(int64_t m, int64_t width) {
  MatmulColumnGroups split{m / width, 1, m % width};
  if (split.tailWidth % 8 == 0 && split.tailWidth) {
    int64_t lowest = split.tailWidth & -split.tailWidth;
    split.tailGroups = split.tailWidth / lowest;
    split.tailWidth = lowest;
  }
  return split;
}

/// Float matmul on the CPU in register tiles (buildMatmulTiles): blocks of
/// the tile's rows by groups of its columns (matmulTile: 8 x 32 f32 or 8 x
/// 16 f64 with AVX-512, 6 x 16 or 6 x 8 with AVX2), then the columns left
/// over (in groups of 8 or 16 when they are a multiple of 8 below the
/// tile's, else one masked group) and the rows left over (one block
/// as tall as they are) — up to four scf.forall ops, each writing its own
/// part of the result. Returns null for other element types and for
/// results too small for one full block (fewer than kMatmulRows rows or 8
/// columns), which the contraction generic handles.
Value buildRegisterBlockedMatmul(PatternRewriter &rewriter, MatmulOp op,
                                 int64_t &segments, MatmulTile &tile) {
  Location loc = op.getLoc();
  RankedTensorType lhsType = tensorType(op.getLhs());
  RankedTensorType resultType = op.getType();
  Type elementType = resultType.getElementType();
  if (!elementType.isF32() && !elementType.isF64())
    return nullptr;
  int64_t rank = resultType.getRank();
  int64_t n = resultType.getDimSize(rank - 2);
  int64_t m = resultType.getDimSize(rank - 1);
  int64_t kSize = lhsType.getDimSize(lhsType.getRank() - 1);
  if (n < kMatmulRows || m < 8 || kSize == 0)
    return nullptr;
  tile = matmulTile(elementType, cpuVectorBits(rewriter));
  int64_t width = tile.columns, &tileRows = tile.rows;
  MatmulColumnGroups columns = matmulColumnGroups(m, width);
  int64_t groups = columns.groups, tailGroups = columns.tailGroups,
          tailWidth = columns.tailWidth;
  // Few rows (a small batch): blocks of the most rows from kMatmulRows to
  // the tile's that divide them, where some do -- the rows left over would
  // take a region of their own, which reads all of rhs once more (AVX2's 6
  // rows on a Zen 3: 16x8192x4096 f32 as 2 blocks and 4 rows left over
  // 55-60 ms at 1 thread, as 4 blocks of 4 rows 30-40).
  if (n % tileRows != 0 && n < kMatmulFewRowBlocks * tileRows)
    for (int64_t rows = tileRows - 1; rows >= kMatmulRows; --rows)
      if (n % rows == 0) {
        tileRows = rows;
        break;
      }
  // Fewer than the tile's rows (but at least kMatmulRows) are one block as
  // tall as they are.
  int64_t blocks = n / tileRows, tailHeight = n % tileRows;
  int64_t tailRow = blocks * tileRows, tailColumn = groups * width;
  // Too few tiles for the threads and a long k: split k. The segments are
  // a function of the shape alone, counted in AVX-512's tiles whatever the
  // target's, so the same bits at every thread count and on every host.
  int64_t batches =
      ShapedType::getNumElements(resultType.getShape().drop_back(2));
  MatmulTile reference = matmulTile(elementType, 512);
  MatmulColumnGroups referenceGroups = matmulColumnGroups(m, reference.columns);
  int64_t tiles =
      batches *
      (referenceGroups.groups +
       (referenceGroups.tailWidth ? referenceGroups.tailGroups : 0)) *
      llvm::divideCeil(n, reference.rows);
  int64_t bytes = elementType.getIntOrFloatBitWidth() / 8;
  segments =
      splitMatmulSegments(tiles, kSize, kSize * reference.columns * bytes,
                          resultType.getNumElements() * bytes);
  SmallVector<int64_t> shape(resultType.getShape());
  if (segments > 1)
    shape.insert(shape.begin(), segments);
  Value result = tensor::EmptyOp::create(rewriter, loc, shape, elementType);
  // The whole column groups of `count` blocks of `height` rows from
  // `rowBegin`: those an iteration takes together (matmulGrouping), then
  // the groups left over together.
  auto groupTiles = [&](int64_t rowBegin, int64_t count, int64_t height) {
    MatmulGrouping grouping = matmulGrouping(batches * segments, groups, count,
                                             kSize / segments * width * bytes);
    int64_t together = grouping.together;
    int64_t shared = groups / together * together;
    result = buildMatmulTiles(rewriter, loc, op, result, rowBegin, count,
                              height, 0, shared, width, segments, together,
                              grouping.minIterations);
    if (shared < groups)
      result =
          buildMatmulTiles(rewriter, loc, op, result, rowBegin, count, height,
                           shared * width, groups - shared, width, segments,
                           groups - shared, grouping.minIterations);
  };
  if (groups && blocks)
    groupTiles(0, blocks, tileRows);
  if (tailWidth && blocks)
    result = buildMatmulTiles(rewriter, loc, op, result, 0, blocks, tileRows,
                              tailColumn, tailGroups, tailWidth, segments);
  if (tailHeight) {
    if (groups)
      groupTiles(tailRow, 1, tailHeight);
    if (tailWidth)
      result =
          buildMatmulTiles(rewriter, loc, op, result, tailRow, 1, tailHeight,
                           tailColumn, tailGroups, tailWidth, segments);
  }
  if (segments == 1)
    return result;
  return addPartialsInOrder(rewriter, loc, result, resultType);
}

/// A float matrix (with batch dims) times a vector on the CPU: each result
/// element still sums lhs[row, k] * x[k] in k order from 0 (a multiply,
/// then an add: the bits of the generic loop), but R rows at once in the
/// lanes of one vector (R = 16 f32, 8 f64), so R independent sums
/// advance per instruction instead of one whose adds wait on each other.
/// Their elements arrive as R x R tiles (R rows, R consecutive k) read a
/// row at a time and transposed in registers (transposeTile); the k left
/// over after the last whole tile take the R rows' elements one k at a
/// time. Rows left over (fewer than R) take one block whose missing rows
/// are zeros, written back only where they exist. The vector is rhs
/// itself or its one column ([K, 1]: the result keeps a last dim of 1).
/// Returns null for other element types.
/// Rows per vector of sums of the matrix-vector product: a vector
/// register's lanes (AVX-512: 16 f32, 8 f64; AVX2: 8, 4), so that the R x R
/// tile of R vectors fits the register file (AVX-512's 16 x 16 f32 tile
/// took 32 of AVX2's 16 registers).
int64_t matrixVectorRows(Type elementType, int64_t vectorBits) {
  return vectorBits / elementType.getIntOrFloatBitWidth();
}

Value buildMatrixVector(PatternRewriter &rewriter, MatmulOp op) {
  Location loc = op.getLoc();
  RankedTensorType lhsType = tensorType(op.getLhs());
  RankedTensorType resultType = op.getType();
  bool oneColumn = tensorType(op.getRhs()).getRank() == 2;
  Type elementType = resultType.getElementType();
  if (!elementType.isF32() && !elementType.isF64())
    return nullptr;
  int64_t lanes = matrixVectorRows(elementType, cpuVectorBits(rewriter));
  int64_t rank = lhsType.getRank(), batchRank = rank - 2;
  int64_t n = lhsType.getDimSize(rank - 2),
          kSize = lhsType.getDimSize(rank - 1);
  int64_t blocks = n / lanes, tailHeight = n % lanes;
  int64_t wholeK = kSize / lanes * lanes;
  auto vectorType = VectorType::get({lanes}, elementType);
  // Rows are written to a flat result (batch..., n) -- slices of it need
  // no rank reduction, which a slice of one row would make ambiguous --
  // then seen in the result's shape.
  int64_t batches =
      ShapedType::getNumElements(lhsType.getShape().take_front(batchRank));
  Value result =
      tensor::EmptyOp::create(rewriter, loc, {batches * n}, elementType);
  // One scf.forall over (batch..., block) for `count` blocks of `height`
  // rows from `rowBegin`.
  auto emitBlocks = [&](Value into, int64_t rowBegin, int64_t count,
                        int64_t height) -> Value {
    OpBuilder::InsertionGuard guard(rewriter);
    OpBuilder &b = rewriter;
    SmallVector<int64_t> grid(lhsType.getShape().take_front(batchRank));
    grid.push_back(count);
    SmallVector<Value> coords;
    scf::ForallOp forall = createGridForall(b, loc, grid, into, coords);
    SmallVector<Value> batch(coords.begin(), coords.begin() + batchRank);
    Value firstRow = arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, coords.back(),
                              indexConstant(b, loc, lanes)),
        indexConstant(b, loc, rowBegin));
    Value zero = indexConstant(b, loc, 0);
    Value zeroVector = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vectorType, b.getZeroAttr(elementType)));
    Value padding =
        arith::ConstantOp::create(b, loc, b.getZeroAttr(elementType));
    auto lhsAt = [&](OpBuilder &kb, Location kl, int64_t r, Value k) {
      SmallVector<Value> at(batch);
      at.push_back(
          arith::AddIOp::create(kb, kl, firstRow, indexConstant(kb, kl, r)));
      at.push_back(k);
      return at;
    };
    // acc + column * x[k], the column's lanes the rows' elements at k.
    auto step = [&](OpBuilder &kb, Location kl, Value acc, Value column,
                    Value k) -> Value {
      SmallVector<Value> at{k};
      if (oneColumn)
        at.push_back(indexConstant(kb, kl, 0));
      Value x = tensor::ExtractOp::create(kb, kl, op.getRhs(), at);
      Value product = arith::MulFOp::create(
          kb, kl, column, vector::BroadcastOp::create(kb, kl, vectorType, x));
      return arith::AddFOp::create(kb, kl, acc, product);
    };
    Value sum = zeroVector;
    if (wholeK) {
      auto tiles = scf::ForOp::create(
          b, loc, zero, indexConstant(b, loc, wholeK),
          indexConstant(b, loc, lanes), ValueRange{zeroVector},
          [&](OpBuilder &kb, Location kl, Value k0, ValueRange acc) {
            SmallVector<Value> rows;
            for (int64_t r = 0; r < lanes; ++r)
              rows.push_back(r < height ? Value(vector::TransferReadOp::create(
                                              kb, kl, vectorType, op.getLhs(),
                                              lhsAt(kb, kl, r, k0), padding,
                                              SmallVector<bool>{true}))
                                        : zeroVector);
            SmallVector<Value> columns =
                kiln::conversion::transposeTile(kb, kl, rows);
            Value next = acc[0];
            for (int64_t j = 0; j < lanes; ++j)
              next = step(
                  kb, kl, next, columns[j],
                  arith::AddIOp::create(kb, kl, k0, indexConstant(kb, kl, j)));
            scf::YieldOp::create(kb, kl, next);
          });
      sum = tiles.getResult(0);
    }
    for (int64_t k = wholeK; k < kSize; ++k) {
      Value kValue = indexConstant(b, loc, k);
      SmallVector<Value> elements;
      for (int64_t r = 0; r < lanes; ++r)
        elements.push_back(
            r < height ? Value(tensor::ExtractOp::create(
                             b, loc, op.getLhs(), lhsAt(b, loc, r, kValue)))
                       : padding);
      sum = step(b, loc, sum,
                 vector::FromElementsOp::create(b, loc, vectorType, elements),
                 kValue);
    }
    // The block's rows of the flat result: batch (iv / count) * n + row.
    Value batchIndex = arith::DivUIOp::create(
        b, loc, forall.getInductionVars()[0], indexConstant(b, loc, count));
    Value flatRow = arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, batchIndex, indexConstant(b, loc, n)),
        firstRow);
    SmallVector<OpFoldResult> offsets{flatRow}, sizes{b.getIndexAttr(height)},
        strides{b.getIndexAttr(1)};
    auto sliceType = RankedTensorType::get({height}, elementType);
    Value shared = forall.getRegionIterArgs()[0];
    Value slice = tensor::ExtractSliceOp::create(b, loc, sliceType, shared,
                                                 offsets, sizes, strides);
    Value written =
        vector::TransferWriteOp::create(b, loc, sum, slice, ValueRange{zero},
                                        SmallVector<bool>{height == lanes})
            .getResult();
    b.setInsertionPointToStart(forall.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(b, loc, written, shared, offsets,
                                          sizes, strides);
    return forall.getResult(0);
  };
  if (blocks)
    result = emitBlocks(result, 0, blocks, lanes);
  if (tailHeight)
    result = emitBlocks(result, blocks * lanes, 1, tailHeight);
  return unflatten(rewriter, loc, result, resultType);
}

/// A vector-matrix product (lhs [K] or [n, K] with n < kMatmulRows, rhs
/// [K, M]) splits k into this many segments of at least
/// kSplitVectorMatrixRows rows: a power of two up to 16 that divides K, or
/// 1 (no split).
constexpr int64_t kSplitVectorMatrixRows = 64;

int64_t splitVectorMatrixSegments(int64_t kSize) {
  int64_t segments = 1;
  while (segments < 16 && kSize % (2 * segments) == 0 &&
         kSize / (2 * segments) >= kSplitVectorMatrixRows)
    segments *= 2;
  return segments;
}

/// On the CPU, a product with fewer lhs rows than register tiling takes (a
/// batch of one through a linear layer: [1, K] x [K, M]) runs its loop
/// nest (rows, k, columns) with only the rows parallel: one thread, which
/// streams the whole rhs. Instead k is split into S segments
/// (splitVectorMatrixSegments, a function of K alone): a generic over
/// (segment, row, k', column), the segments and rows parallel, sums each
/// segment's rhs rows in k order into a partial row of its own ([S, n, M]:
/// the threads stream disjoint contiguous parts of the rhs), then a second
/// generic adds the S partials of each element in segment order. The bits
/// depend on K only, not on the threads. Null when the product is small
/// (under 2^20 multiply-adds: one thread does it in well under the cost of
/// more kernels) or k does not split.
Value buildSplitVectorMatrix(PatternRewriter &rewriter, MatmulOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = rewriter.getContext();
  RankedTensorType lhsType = tensorType(op.getLhs());
  RankedTensorType rhsType = tensorType(op.getRhs());
  RankedTensorType resultType = op.getType();
  bool lhsMatrix = lhsType.getRank() == 2;
  int64_t n = lhsMatrix ? lhsType.getDimSize(0) : 1;
  int64_t kSize = rhsType.getDimSize(0), m = rhsType.getDimSize(1);
  int64_t segments = splitVectorMatrixSegments(kSize);
  if (n >= kMatmulRows || segments < 2 || n * kSize * m < (int64_t(1) << 20))
    return nullptr;
  int64_t length = kSize / segments;
  Type elementType = resultType.getElementType();
  bool isFloat = isa<FloatType>(elementType);
  auto dim = [&](unsigned d) { return getAffineDimExpr(d, ctx); };
  // Loops (s, i, k', j); the lhs [n, S, K / S] (or [S, K / S]), the rhs
  // [S, K / S, M], the partials [S, n, M].
  SmallVector<ReassociationIndices> lhsGroups;
  SmallVector<int64_t> lhsShape;
  if (lhsMatrix) {
    lhsGroups = {{0}, {1, 2}};
    lhsShape = {n, segments, length};
  } else {
    lhsGroups = {{0, 1}};
    lhsShape = {segments, length};
  }
  Value lhs = tensor::ExpandShapeOp::create(
      rewriter, loc, RankedTensorType::get(lhsShape, elementType), op.getLhs(),
      lhsGroups);
  Value rhs = tensor::ExpandShapeOp::create(
      rewriter, loc, RankedTensorType::get({segments, length, m}, elementType),
      op.getRhs(), SmallVector<ReassociationIndices>{{0, 1}, {2}});
  // Each partial row starts 64-byte aligned (its length padded): the loop
  // loads and stores it whole for every rhs row, and vectors across two
  // cache lines cost (1 thread, [1, 768] x [768, 50257] f32: 6.9 ms with
  // rows of 50257, 5.4 padded, as the unsplit loop with its one row).
  auto partialType = RankedTensorType::get({segments, n, m}, elementType);
  int64_t lineElements = elementsPerLine(elementType.getIntOrFloatBitWidth());
  auto paddedType = RankedTensorType::get(
      {segments, n, static_cast<int64_t>(llvm::alignTo(m, lineElements))},
      elementType);
  Value zeros = tensor::ExtractSliceOp::create(
      rewriter, loc, partialType,
      filledTensor(rewriter, loc, paddedType,
                   getScalarAttr(rewriter, elementType, 0.0)),
      ArrayRef<OpFoldResult>{rewriter.getIndexAttr(0), rewriter.getIndexAttr(0),
                             rewriter.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{rewriter.getIndexAttr(segments),
                             rewriter.getIndexAttr(n),
                             rewriter.getIndexAttr(m)},
      ArrayRef<OpFoldResult>{rewriter.getIndexAttr(1), rewriter.getIndexAttr(1),
                             rewriter.getIndexAttr(1)});
  SmallVector<AffineExpr> lhsExprs =
      lhsMatrix ? SmallVector<AffineExpr>{dim(1), dim(0), dim(2)}
                : SmallVector<AffineExpr>{dim(0), dim(2)};
  auto add = [&](OpBuilder &b, Location l, Value x, Value y) {
    return isFloat ? Value(arith::AddFOp::create(b, l, x, y))
                   : Value(arith::AddIOp::create(b, l, x, y));
  };
  Value partials =
      linalg::GenericOp::create(
          rewriter, loc, TypeRange{partialType}, ValueRange{lhs, rhs},
          ValueRange{zeros},
          SmallVector<AffineMap>{
              AffineMap::get(4, 0, lhsExprs, ctx),
              AffineMap::get(4, 0, {dim(0), dim(2), dim(3)}, ctx),
              AffineMap::get(4, 0, {dim(0), dim(1), dim(3)}, ctx)},
          SmallVector<utils::IteratorType>{
              utils::IteratorType::parallel, utils::IteratorType::parallel,
              utils::IteratorType::reduction, utils::IteratorType::parallel},
          [&](OpBuilder &b, Location l, ValueRange args) {
            Value product =
                isFloat ? Value(arith::MulFOp::create(b, l, args[0], args[1]))
                        : Value(arith::MulIOp::create(b, l, args[0], args[1]));
            linalg::YieldOp::create(b, l, add(b, l, args[2], product));
          })
          .getResult(0);
  // The partials of each element added in segment order: loops (i, j, s).
  auto sumType = RankedTensorType::get({n, m}, elementType);
  Value sumInit = filledTensor(rewriter, loc, sumType,
                               getScalarAttr(rewriter, elementType, 0.0));
  Value sum =
      linalg::GenericOp::create(
          rewriter, loc, TypeRange{sumType}, ValueRange{partials},
          ValueRange{sumInit},
          SmallVector<AffineMap>{
              AffineMap::get(3, 0, {dim(2), dim(0), dim(1)}, ctx),
              AffineMap::get(3, 0, {dim(0), dim(1)}, ctx)},
          SmallVector<utils::IteratorType>{utils::IteratorType::parallel,
                                           utils::IteratorType::parallel,
                                           utils::IteratorType::reduction},
          [&](OpBuilder &b, Location l, ValueRange args) {
            linalg::YieldOp::create(b, l, add(b, l, args[1], args[0]));
          })
          .getResult(0);
  if (lhsMatrix)
    return sum;
  return tensor::CollapseShapeOp::create(
      rewriter, loc, resultType, sum,
      SmallVector<ReassociationIndices>{{0, 1}});
}

struct LowerMatmul : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatmulOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    RankedTensorType lhsType = tensorType(op.getLhs());
    RankedTensorType rhsType = tensorType(op.getRhs());
    RankedTensorType resultType = op.getType();
    bool lhsMatrix = lhsType.getRank() >= 2, rhsMatrix = rhsType.getRank() >= 2;
    int64_t rank = resultType.getRank();
    int64_t batchRank = rank - lhsMatrix - rhsMatrix;
    // Loop order (batch..., n, k, m): the innermost loop walks rows of rhs
    // and of the result contiguously (vectorizable), and each result
    // element still sums over k in order.
    int64_t kPos = rhsMatrix ? rank - 1 : rank;
    auto loopDim = [&](int64_t resultDim) {
      return getAffineDimExpr(
          rhsMatrix && resultDim == rank - 1 ? rank : resultDim, ctx);
    };
    AffineExpr k = getAffineDimExpr(kPos, ctx);
    auto batchExprs = [&](RankedTensorType type) {
      SmallVector<AffineExpr> exprs;
      int64_t own = type.getRank() - 2;
      for (int64_t j = 0; j < own; ++j) {
        int64_t resultDim = batchRank - own + j;
        if (type.getDimSize(j) == 1 && resultType.getDimSize(resultDim) != 1)
          exprs.push_back(getAffineConstantExpr(0, ctx));
        else
          exprs.push_back(loopDim(resultDim));
      }
      return exprs;
    };
    Type elementType = resultType.getElementType();
    bool isFloat = isa<FloatType>(elementType);
    auto body = [&](OpBuilder &b, Location l, ValueRange args) {
      Value product =
          isFloat ? Value(arith::MulFOp::create(b, l, args[0], args[1]))
                  : Value(arith::MulIOp::create(b, l, args[0], args[1]));
      Value sum = isFloat
                      ? Value(arith::AddFOp::create(b, l, args[2], product))
                      : Value(arith::AddIOp::create(b, l, args[2], product));
      linalg::YieldOp::create(b, l, sum);
    };
    // The contraction generic over `loops` loops, `reduction` the k loop.
    auto contraction = [&](unsigned loops, ArrayRef<AffineExpr> lhsExprs,
                           ArrayRef<AffineExpr> rhsExprs,
                           ArrayRef<AffineExpr> resultExprs, int64_t reduction,
                           Value lhs, Value out) {
      SmallVector<AffineMap> maps{AffineMap::get(loops, 0, lhsExprs, ctx),
                                  AffineMap::get(loops, 0, rhsExprs, ctx),
                                  AffineMap::get(loops, 0, resultExprs, ctx)};
      SmallVector<utils::IteratorType> iterators = parallelIterators(loops);
      iterators[reduction] = utils::IteratorType::reduction;
      return linalg::GenericOp::create(rewriter, loc, TypeRange{out.getType()},
                                       ValueRange{lhs, op.getRhs()},
                                       ValueRange{out}, maps, iterators, body)
          .getResult(0);
    };
    bool cpuMatrices = lhsMatrix && rhsMatrix && !isGpuTarget(rewriter);
    std::string what = typeText(lhsType) + " x " + typeText(rhsType);
    if (cpuMatrices) {
      int64_t segments = 1;
      MatmulTile tile;
      if (Value product =
              buildRegisterBlockedMatmul(rewriter, op, segments, tile)) {
        int64_t kSize = lhsType.getDimSize(lhsType.getRank() - 1);
        remarkKernel(
            rewriter, loc,
            "matmul {0}: register-tiled, blocks of {1} rows x {2} "
            "columns accumulate in vector registers, rhs panels "
            "packed when large; blocks in parallel, {3}",
            what, tile.rows, tile.columns,
            segments > 1
                ? llvm::formatv("k split into {0} segments of {1} (too few "
                                "blocks for the threads, or rhs panels "
                                "larger than the cache for a small result), "
                                "each block summing its segment in k order "
                                "into a partial result, then the partials "
                                "added in segment order",
                                segments, kSize / segments)
                      .str()
                : std::string("each element summed in k order"));
        return rewriter.replaceOp(op, product), success();
      }
    }
    bool vectorRhs = rhsType.getRank() == 1 ||
                     (rhsType.getRank() == 2 && rhsType.getDimSize(1) == 1);
    if (lhsMatrix && vectorRhs && !isGpuTarget(rewriter)) {
      if (Value product = buildMatrixVector(rewriter, op)) {
        remarkKernel(rewriter, loc,
                     "matmul {0}: matrix-vector, {1} rows per vector of "
                     "sums, their elements read in {1}x{1} tiles transposed "
                     "in registers; row blocks in parallel, each element "
                     "summed in k order",
                     what,
                     matrixVectorRows(elementType, cpuVectorBits(rewriter)));
        return rewriter.replaceOp(op, product), success();
      }
    }
    if (!isGpuTarget(rewriter) && batchRank == 0 && rhsType.getRank() == 2)
      if (Value product = buildSplitVectorMatrix(rewriter, op)) {
        int64_t kSize = rhsType.getDimSize(0);
        int64_t segments = splitVectorMatrixSegments(kSize);
        remarkKernel(rewriter, loc,
                     "matmul {0}: vector-matrix, too few lhs rows for the "
                     "threads: k split into {1} segments of {2}, each "
                     "summed in k order into its own partial row (the rhs "
                     "rows streamed in order), in parallel; then the "
                     "partials added in segment order",
                     what, segments, kSize / segments);
        return rewriter.replaceOp(op, product), success();
      }
    Value init = filledTensor(rewriter, loc, resultType,
                              getScalarAttr(rewriter, elementType, 0.0));
    int64_t n = lhsMatrix ? resultType.getDimSize(batchRank) : 1;
    if (cpuMatrices && n % kMatmulRows == 0 && n >= 2 * kMatmulRows) {
      remarkKernel(rewriter, loc,
                   "matmul {0}: contraction loop nest in row blocks of {1} "
                   "(each rhs row read once per block; register tiling "
                   "takes f32/f64 results of at least {1} rows and 8 "
                   "columns)",
                   what, kMatmulRows);
      // Row blocks on the CPU: loop order (batch..., n / R, k, R, m), the
      // lhs and the result seen as [..., n / R, R, ...]. Each row of rhs is
      // read once per R result rows (from L1 after the first) instead of
      // once per row (from L3 or memory); each element still sums over k
      // in order, so the bits do not change.
      int64_t no = batchRank, kk = batchRank + 1, ni = batchRank + 2,
              mm = batchRank + 3;
      auto dim = [&](int64_t d) { return getAffineDimExpr(d, ctx); };
      auto split = [&](RankedTensorType type, Value value) {
        SmallVector<int64_t> shape(type.getShape());
        int64_t at = type.getRank() - 2;
        shape[at] /= kMatmulRows;
        shape.insert(shape.begin() + at + 1, kMatmulRows);
        SmallVector<ReassociationIndices> groups;
        for (int64_t d = 0; d < at; ++d)
          groups.push_back({d});
        groups.push_back({at, at + 1});
        groups.push_back({at + 2});
        auto splitType = RankedTensorType::get(shape, type.getElementType());
        return std::make_pair(Value(tensor::ExpandShapeOp::create(
                                  rewriter, loc, splitType, value, groups)),
                              groups);
      };
      SmallVector<AffineExpr> lhsExprs = batchExprs(lhsType);
      lhsExprs.append({dim(no), dim(ni), dim(kk)});
      SmallVector<AffineExpr> rhsExprs = batchExprs(rhsType);
      rhsExprs.append({dim(kk), dim(mm)});
      SmallVector<AffineExpr> resultExprs;
      for (int64_t d = 0; d < batchRank; ++d)
        resultExprs.push_back(dim(d));
      resultExprs.append({dim(no), dim(ni), dim(mm)});
      auto [lhs, lhsGroups] = split(lhsType, op.getLhs());
      auto [out, outGroups] = split(resultType, init);
      Value product =
          contraction(rank + 2, lhsExprs, rhsExprs, resultExprs, kk, lhs, out);
      rewriter.replaceOpWithNewOp<tensor::CollapseShapeOp>(op, resultType,
                                                           product, outGroups);
      return success();
    }
    remarkKernel(rewriter, loc,
                 "matmul {0}: contraction loop nest (batch..., rows, k, "
                 "columns), the columns innermost and contiguous; each element "
                 "summed in k order{1}",
                 what,
                 isGpuTarget(rewriter) ? "; GPU: a thread per result element"
                 : cpuMatrices
                     ? "; register tiling takes f32/f64 results of at least " +
                           std::to_string(kMatmulRows) + " rows and 8 columns"
                     : "");
    SmallVector<AffineExpr> lhsExprs, rhsExprs;
    if (lhsMatrix) {
      lhsExprs = batchExprs(lhsType);
      lhsExprs.push_back(loopDim(batchRank));
    }
    lhsExprs.push_back(k);
    if (rhsMatrix)
      rhsExprs = batchExprs(rhsType);
    rhsExprs.push_back(k);
    if (rhsMatrix)
      rhsExprs.push_back(loopDim(rank - 1));
    SmallVector<AffineExpr> resultExprs;
    for (int64_t d = 0; d < rank; ++d)
      resultExprs.push_back(loopDim(d));
    rewriter.replaceOp(op, contraction(rank + 1, lhsExprs, rhsExprs,
                                       resultExprs, kPos, op.getLhs(), init));
    return success();
  }
};

} // namespace

void populateMatmulPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerMatmul>(patterns.getContext());
}

} // namespace kiln::lowering
