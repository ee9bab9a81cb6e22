//===- Indexing.cpp - gather, index_select, take and the scatters ---------===//
//
// Indexed reads with their index checks (up front or in the loop), and the
// scatters: sorted, target-owned or in column blocks.
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

/// Base of patterns that register a runtime-check site.
template <typename OpTy> struct CheckedPattern : OpRewritePattern<OpTy> {
  CheckedPattern(MLIRContext *ctx, ErrorSites &sites)
      : OpRewritePattern<OpTy>(ctx), sites(sites) {}
  ErrorSites &sites;
};

/// Base of the scatter patterns: `sorted` selects the sorted scatter
/// (buildSortedScatter) for the scatters it applies to.
template <typename OpTy> struct ScatterPattern : CheckedPattern<OpTy> {
  ScatterPattern(MLIRContext *ctx, ErrorSites &sites, bool sorted)
      : CheckedPattern<OpTy>(ctx, sites), sorted(sorted) {}
  bool sorted;
};

/// No bad index: the largest i64 (bad positions are row-major positions
/// of `index`, the first is the minimum).
constexpr int64_t kNoBadIndex = std::numeric_limits<int64_t>::max();

/// `position` (i64) when the index `x` lies outside [lo, hi), else
/// kNoBadIndex: the terms whose minimum is the first bad position.
/// Whether the i64 `x` lies outside [lo, hi).
Value isOutside(OpBuilder &b, Location loc, Value x, int64_t lo, int64_t hi) {
  return arith::OrIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x,
                            i64Constant(b, loc, lo)),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, x,
                            i64Constant(b, loc, hi)));
}

Value badPositionOrNone(OpBuilder &b, Location loc, Value x, Value position,
                        int64_t lo, int64_t hi) {
  return arith::SelectOp::create(b, loc, isOutside(b, loc, x, lo, hi), position,
                                 i64Constant(b, loc, kNoBadIndex));
}

/// Reports the element of `index` at row-major position `first` (a rank-0
/// i64 tensor) unless it is kNoBadIndex.
void reportFirstBadIndex(OpBuilder &b, Location loc, int64_t site, Value index,
                         Value first, int64_t reportedSize) {
  Value position = tensor::ExtractOp::create(b, loc, first, ValueRange{});
  Value found =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, position,
                            i64Constant(b, loc, kNoBadIndex));
  scf::IfOp::create(b, loc, found, [&](OpBuilder &then, Location l) {
    Value flat =
        arith::IndexCastOp::create(then, l, then.getIndexType(), position);
    Value bad = tensor::ExtractOp::create(
        then, l, index,
        delinearize(then, l, flat, tensorType(index).getShape()));
    ReportIndexErrorOp::create(then, l, bad, i64Constant(then, l, reportedSize),
                               then.getI64IntegerAttr(site));
    scf::YieldOp::create(then, l);
  });
}

} // namespace

void checkIndicesUpFront(OpBuilder &b, Location loc, int64_t site, Value index,
                         int64_t lo, int64_t hi, int64_t reportedSize) {
  RankedTensorType type = tensorType(index);
  int64_t rank = type.getRank();
  // First per row of the last dim (rows in parallel), then over the rows.
  SmallVector<bool> mask(rank, rank <= 1);
  if (rank > 1)
    mask.back() = true;
  auto badPosition = [&](OpBuilder &nb, Location l, Value x, ValueRange ivs) {
    Value position = arith::IndexCastOp::create(
        nb, l, nb.getI64Type(), linearize(nb, l, ivs, type.getShape()));
    return badPositionOrNone(nb, l, x, position, lo, hi);
  };
  auto minimum = [](OpBuilder &nb, Location l, Value acc, Value x) {
    return Value(arith::MinSIOp::create(nb, l, acc, x));
  };
  // On the GPU both minima split across lanes (the minimum is the same in
  // any order).
  bool gpu = isGpuTarget(b);
  LaneReduction badLanes{
      [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange ivs) {
        return badPosition(nb, l, xs[0], ivs);
      },
      minimum};
  LaneReduction minLanes{
      [](OpBuilder &, Location, ValueRange xs, ValueRange) { return xs[0]; },
      minimum};
  Value firstPerRow = buildReduction(
      b, loc, index, mask, {b.getI64IntegerAttr(kNoBadIndex)},
      [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
          ValueRange ivs) {
        return SmallVector<Value>{
            minimum(nb, l, acc[0], badPosition(nb, l, xs[0], ivs))};
      },
      gpu ? &badLanes : nullptr)[0];
  Value first = firstPerRow;
  if (rank > 1) {
    SmallVector<bool> all(rank - 1, true);
    first = buildReduction(
        b, loc, firstPerRow, all, {b.getI64IntegerAttr(kNoBadIndex)},
        [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
            ValueRange) {
          return SmallVector<Value>{minimum(nb, l, acc[0], xs[0])};
        },
        gpu ? &minLanes : nullptr)[0];
  }
  reportFirstBadIndex(b, loc, site, index, first, reportedSize);
}

namespace {

/// Reads the index that applies at loop position `ivs` for an op indexing
/// along `dim`: the index element at the same position (gather,
/// scatter_add), or element ivs[dim] of a 1-D / rank-0 index
/// (index_select, index_add).
Value loadDimIndex(OpBuilder &b, Location loc, Value index, ValueRange ivs,
                   int64_t dim, int64_t rank, bool perSlice) {
  if (!perSlice)
    return tensor::ExtractOp::create(b, loc, index, ivs);
  SmallVector<Value> at;
  if (tensorType(index).getRank() == 1)
    at.push_back(rank > 0 ? ivs[dim] : indexConstant(b, loc, 0));
  return tensor::ExtractOp::create(b, loc, index, at);
}

/// Slices smaller than this many elements are selected element by element.
constexpr int64_t kMinCopiedSlice = 64;

/// index_select of a stored input along a dim before its innermost, on the
/// CPU: every selected slice (the dims after `dim`) is contiguous in the
/// input and in the result, so an scf.forall over (dims before `dim`,
/// index position) reads the index once and copies the slice whole (a
/// memcpy after bufferization). Element by element, the index load stayed
/// in the innermost loop (the result buffer may alias it, as far as LLVM
/// knows) and the loop did not vectorize: 1024 rows of 4096x4096 took 2.2
/// ms against 1.0 for PyTorch. The indices were checked before.
Value buildSliceCopies(OpBuilder &b, Location loc, Value input, Value index,
                       int64_t dim, RankedTensorType resultType) {
  OpBuilder::InsertionGuard guard(b);
  RankedTensorType inputType = tensorType(input);
  int64_t rank = inputType.getRank();
  int64_t size = inputType.getDimSize(dim);
  SmallVector<int64_t> grid(resultType.getShape().take_front(dim + 1));
  Value init = emptyTensor(b, loc, resultType);
  SmallVector<Value> coords;
  scf::ForallOp forall = createGridForall(b, loc, grid, init, coords);
  SmallVector<Value> at;
  if (tensorType(index).getRank() == 1)
    at.push_back(coords.back());
  Value selected =
      inBoundsIndex(b, loc, tensor::ExtractOp::create(b, loc, index, at), size);
  SmallVector<OpFoldResult> from, to, sizes, strides(rank, b.getIndexAttr(1));
  SmallVector<int64_t> sliceShape;
  for (int64_t d = 0; d < rank; ++d) {
    bool outer = d <= dim;
    to.push_back(outer ? OpFoldResult(coords[d]) : b.getIndexAttr(0));
    from.push_back(d == dim ? OpFoldResult(selected) : to.back());
    sizes.push_back(b.getIndexAttr(outer ? 1 : inputType.getDimSize(d)));
    sliceShape.push_back(outer ? 1 : inputType.getDimSize(d));
  }
  Value slice = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get(sliceShape, inputType.getElementType()),
      input, from, sizes, strides);
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, slice, forall.getRegionIterArgs()[0], to, sizes, strides);
  return forall.getResult(0);
}

/// A gather along dim 1 of a matrix on the CPU: an scf.forall over the
/// rows, each row's loop reading the input at the index (`element` at
/// (row, column): prefetch, read, epilogue) and filling the row of every
/// result. Columns from `prefetchingColumns` on run in a second loop whose
/// elements do not prefetch (`element`'s last argument false).
///
/// With `checkSite` (a gather, whose index is the result's shape), the
/// index check runs in the same loop: each row notes whether any index
/// lies outside [0, size) (an `or`, no branch) while reading it clamped
/// into range. A row that had a bad index is scanned again for its first
/// one (row-major position); the rows' first bad positions are then
/// reduced and the first reported: the same report as the up-front check,
/// without its second pass over the index (3 kernels -> 2; 4096x4096 <-
/// 4096x256: the index is 8 of the 84 MB the kernel moves). Without it
/// (index_select, checked up front) the rows only read.
SmallVector<Value> buildRowGather(
    OpBuilder &b, Location loc, std::optional<int64_t> checkSite, Value index,
    int64_t size, ArrayRef<Value> inits, int64_t prefetchingColumns,
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange, bool)>
        element) {
  OpBuilder::InsertionGuard guard(b);
  auto resultType = cast<RankedTensorType>(inits.front().getType());
  int64_t rows = resultType.getDimSize(0), columns = resultType.getDimSize(1);
  bool check = checkSite.has_value();
  SmallVector<Value> shared(inits.begin(), inits.end());
  if (check)
    shared.push_back(tensor::EmptyOp::create(b, loc, {rows}, b.getI64Type()));
  SmallVector<Value> coords;
  scf::ForallOp forall = createGridForall(b, loc, {rows}, shared, coords);
  Value row = coords[0];
  auto outputs = forall.getRegionIterArgs().take_front(inits.size());
  SmallVector<Value> carried;
  for (Value init : outputs) {
    auto type = cast<RankedTensorType>(init.getType());
    carried.push_back(tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({columns}, type.getElementType()), init,
        ArrayRef<OpFoldResult>{row, b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(columns)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)}));
  }
  if (check)
    carried.push_back(arith::ConstantIntOp::create(b, loc, 0, 1));
  size_t tiles = inits.size();
  // Columns [lo, hi) of the row; `carried` is the row tiles and, when
  // checking, whether a bad index was seen.
  auto columnRange = [&](int64_t lo, int64_t hi, bool prefetch) {
    if (lo >= hi)
      return;
    auto loop = scf::ForOp::create(
        b, loc, indexConstant(b, loc, lo), indexConstant(b, loc, hi),
        indexConstant(b, loc, 1), carried,
        [&](OpBuilder &nb, Location l, Value column, ValueRange acc) {
          SmallVector<Value> next;
          for (auto [value, tile] : llvm::zip_equal(
                   element(nb, l, ValueRange{row, column}, prefetch),
                   acc.take_front(tiles)))
            next.push_back(tensor::InsertOp::create(nb, l, value, tile,
                                                    ValueRange{column}));
          if (check) {
            Value raw = tensor::ExtractOp::create(nb, l, index,
                                                  ValueRange{row, column});
            next.push_back(arith::OrIOp::create(
                nb, l, acc.back(), isOutside(nb, l, raw, 0, size)));
          }
          scf::YieldOp::create(nb, l, next);
        });
    carried.assign(loop.getResults().begin(), loop.getResults().end());
  };
  int64_t split = std::clamp<int64_t>(prefetchingColumns, 0, columns);
  columnRange(0, split, /*prefetch=*/true);
  columnRange(split, columns, /*prefetch=*/false);
  Value firstOfRow;
  if (check) {
    // The row's first bad position, found again only where there is one.
    Value rowStart = arith::MulIOp::create(
        b, loc, arith::IndexCastOp::create(b, loc, b.getI64Type(), row),
        i64Constant(b, loc, columns));
    auto firstBad = scf::IfOp::create(
        b, loc, carried.back(),
        [&](OpBuilder &tb, Location l) {
          auto scan = scf::ForOp::create(
              tb, l, indexConstant(tb, l, 0), indexConstant(tb, l, columns),
              indexConstant(tb, l, 1),
              ValueRange{i64Constant(tb, l, kNoBadIndex)},
              [&](OpBuilder &nb, Location sl, Value column, ValueRange acc) {
                Value raw = tensor::ExtractOp::create(nb, sl, index,
                                                      ValueRange{row, column});
                Value position =
                    arith::AddIOp::create(nb, sl, rowStart,
                                          arith::IndexCastOp::create(
                                              nb, sl, nb.getI64Type(), column));
                scf::YieldOp::create(
                    nb, sl,
                    ValueRange{arith::MinSIOp::create(
                        nb, sl, acc[0],
                        badPositionOrNone(nb, sl, raw, position, 0, size))});
              });
          scf::YieldOp::create(tb, l, scan.getResults());
        },
        [&](OpBuilder &eb, Location l) {
          scf::YieldOp::create(eb, l,
                               ValueRange{i64Constant(eb, l, kNoBadIndex)});
        });
    // Written into the row's element of the shared tensor (a slice of it:
    // in place after bufferization; a tensor of its own would be a heap
    // allocation per row -- 57 of 64 us of cross_entropy over 1000x10).
    Value element = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({1}, b.getI64Type()),
        forall.getRegionIterArgs().back(), ArrayRef<OpFoldResult>{row},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
    firstOfRow =
        tensor::InsertOp::create(b, loc, firstBad.getResult(0), element,
                                 ValueRange{indexConstant(b, loc, 0)});
  }
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [tile, out] :
       llvm::zip_equal(ArrayRef(carried).take_front(tiles), outputs))
    tensor::ParallelInsertSliceOp::create(
        b, loc, tile, out, ArrayRef<OpFoldResult>{row, b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(columns)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
  if (!check)
    return SmallVector<Value>(forall.getResults());
  tensor::ParallelInsertSliceOp::create(
      b, loc, firstOfRow, forall.getRegionIterArgs().back(),
      ArrayRef<OpFoldResult>{row}, ArrayRef<OpFoldResult>{b.getIndexAttr(1)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
  b.setInsertionPointAfter(forall);
  Value first = buildReduction(
      b, loc, ValueRange{forall.getResults().back()}, {true},
      {b.getI64IntegerAttr(kNoBadIndex)},
      [](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc, ValueRange) {
        return SmallVector<Value>{arith::MinSIOp::create(nb, l, acc[0], xs[0])};
      })[0];
  reportFirstBadIndex(b, loc, *checkSite, index, first, size);
  return SmallVector<Value>(forall.getResults().drop_back());
}

/// A gather or index_select along dim 1 of a matrix runs its rows in
/// parallel, each row a loop (buildRowGather), from this many rows; fewer
/// take one parallel loop over the result's elements. 1 / 2 threads, a
/// gather of 4M of a row of 16M f32: 21.6-22.5 / 22.3-24.9 ms as one row's
/// loop, 22.6-23.5 / 12.0-13.2 over the elements (the indices checked up
/// front, about 1 ms of it).
constexpr int64_t kRowGatherMinRows = 8;

/// "kiln.gather along dim 1 of tensor<...>", for remark texts.
std::string describeIndexing(Operation *op, int64_t dim, Type inputType) {
  return (op->getName().getStringRef() + " along dim " + Twine(dim) + " of " +
          typeText(inputType))
      .str();
}

} // namespace

SmallVector<Value> lowerGatherAlongDim(OpBuilder &b, Operation *op,
                                       RankedTensorType inputType, Value index,
                                       int64_t dimAttr, bool perSlice,
                                       ErrorSites &sites, const KernelIO &io) {
  Location loc = op->getLoc();
  int64_t rank = inputType.getRank();
  int64_t dim = *normalizeDim(dimAttr, rank);
  int64_t size = rank == 0 ? 1 : inputType.getDimSize(dim);
  int64_t site = sites.add(op);
  auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
  // A gather along the last dim of a matrix on the CPU checks its indices
  // in its own loop (buildRowGather); the others before.
  // Fewer rows than kRowGatherMinRows would leave threads idle in the row
  // loops (one row of 16M: a single thread); they take the parallel
  // generic over the result's elements below, the indices checked up front.
  bool rowLoops = resultType.getRank() == 2 &&
                  resultType.getDimSize(0) >= kRowGatherMinRows;
  bool checkPerRow = !perSlice && rank == 2 && dim == 1 && size > 0 &&
                     rowLoops && !isGpuTarget(b);
  if (!checkPerRow)
    checkIndicesUpFront(b, loc, site, index, 0, size, size);
  if (perSlice && io.stored && !io.finish && io.resultTypes.size() == 1 &&
      rank >= 2 && dim < rank - 1 && size > 0 && !isGpuTarget(b) &&
      ShapedType::getNumElements(inputType.getShape().drop_front(dim + 1)) >=
          kMinCopiedSlice) {
    remarkKernel(
        b, loc,
        "{0}: every index checked up front, then each selected "
        "slice ({1} contiguous elements) copied whole, slices in "
        "parallel",
        describeIndexing(op, dim, inputType),
        ShapedType::getNumElements(inputType.getShape().drop_front(dim + 1)));
    return {buildSliceCopies(b, loc, io.stored, index, dim, resultType)};
  }
  MLIRContext *ctx = b.getContext();
  int64_t resultRank = resultType.getRank();
  SmallVector<Value> inits = emptyTensors(b, loc, io.resultTypes);
  SmallVector<AffineMap> maps(
      inits.size(), AffineMap::getMultiDimIdentityMap(resultRank, ctx));
  // A row-wise gather (or index_select along dim 1) from a stored matrix on
  // the CPU waits on the cache
  // misses of its random reads. When a row's reads touch most of the
  // input row's cache lines (at least a quarter as many reads as lines),
  // each element prefetches up to four consecutive lines of the next input
  // row, so the whole next row streams in sequentially (4.9 -> 2.3 ms on
  // 4096x4096 <- 4096x256 in C on the development machine); sparser
  // gathers prefetch the element they will read a row later, so the next
  // row's misses overlap this row's.
  Value prefetchFrom;
  int64_t linesPerElement = 0, elementsPerLine = 0, lines = 0;
  int64_t rows = resultRank == 2 ? resultType.getDimSize(0) : 0;
  if (io.stored && rank == 2 && dim == 1 && rowLoops && size > 0 &&
      !isGpuTarget(b))
    prefetchFrom = readOnlyBuffer(b, loc, io.stored);
  if (prefetchFrom) {
    int64_t bytes =
        std::max<int64_t>(1, inputType.getElementTypeBitWidth() / 8);
    elementsPerLine = std::max<int64_t>(1, 64 / bytes);
    lines = llvm::divideCeil(size, elementsPerLine);
    int64_t reads = resultType.getDimSize(1);
    if (reads > 0 && reads * 4 >= lines)
      linesPerElement = llvm::divideCeil(lines, reads);
  }
  // One result element (each of the kernel's results) at `ivs`; with
  // `prefetch`, it also prefetches its share of the next row.
  auto gatherElement = [&](OpBuilder &nb, Location l, ValueRange ivs,
                           bool prefetch) -> SmallVector<Value> {
    // The next row (the last row prefetches itself).
    Value next;
    if (prefetchFrom && prefetch)
      next = arith::MinUIOp::create(
          nb, l, arith::AddIOp::create(nb, l, ivs[0], indexConstant(nb, l, 1)),
          indexConstant(nb, l, rows - 1));
    if (next && linesPerElement > 0) {
      Value first = arith::MulIOp::create(
          nb, l, ivs[1], indexConstant(nb, l, linesPerElement));
      for (int64_t u = 0; u < linesPerElement; ++u) {
        Value line = arith::MinUIOp::create(
            nb, l, arith::AddIOp::create(nb, l, first, indexConstant(nb, l, u)),
            indexConstant(nb, l, lines - 1));
        Value column = arith::MulIOp::create(
            nb, l, line, indexConstant(nb, l, elementsPerLine));
        memref::PrefetchOp::create(nb, l, prefetchFrom,
                                   ValueRange{next, column},
                                   /*isWrite=*/false, /*localityHint=*/3,
                                   /*isDataCache=*/true);
      }
    } else if (next) {
      // index_select reads the same columns of every row.
      Value nextIndex = inBoundsIndex(
          nb, l,
          perSlice ? loadDimIndex(nb, l, index, ivs, dim, rank, perSlice)
                   : Value(tensor::ExtractOp::create(nb, l, index,
                                                     ValueRange{next, ivs[1]})),
          size);
      memref::PrefetchOp::create(nb, l, prefetchFrom,
                                 ValueRange{next, nextIndex},
                                 /*isWrite=*/false, /*localityHint=*/3,
                                 /*isDataCache=*/true);
    }
    Value safe = inBoundsIndex(
        nb, l, loadDimIndex(nb, l, index, ivs, dim, rank, perSlice), size);
    Value element;
    if (size == 0) { // nothing to read: every index was reported
      element = arith::ConstantOp::create(
          nb, l, getScalarAttr(nb, inputType.getElementType(), 0.0));
    } else {
      SmallVector<Value> at(ivs);
      if (rank > 0)
        at[dim] = safe;
      element = io.read(nb, l, at);
    }
    return io.finishElement(nb, l, element, ivs);
  };
  const char *prefetch = !prefetchFrom ? ""
                         : linesPerElement > 0
                             ? "; the next input row streams into the "
                               "cache while this one is read (dense "
                               "reads: sequential prefetch)"
                             : "; the element a row later is prefetched "
                               "(sparse reads)";
  // Dense reads: the elements after the first lines / linesPerElement
  // would only prefetch the row's last line again.
  int64_t prefetchingColumns = linesPerElement > 0
                                   ? llvm::divideCeil(lines, linesPerElement)
                                   : (rows > 0 ? resultType.getDimSize(1) : 0);
  if (checkPerRow) {
    remarkKernel(b, loc,
                 "{0}: direct indexed loads, rows in parallel; each row "
                 "checks its indices in the same loop (the first bad one, "
                 "row-major, is reported){1}",
                 describeIndexing(op, dim, inputType), prefetch);
    return buildRowGather(b, loc, site, index, size, inits, prefetchingColumns,
                          gatherElement);
  }
  if (prefetchFrom && linesPerElement > 0) {
    // index_select along dim 1 of a stored matrix, dense reads: rows as a
    // gather's (the prefetching columns split off), checked up front.
    remarkKernel(b, loc,
                 "{0}: every index checked up front, then direct indexed "
                 "loads, rows in parallel{1}",
                 describeIndexing(op, dim, inputType), prefetch);
    return buildRowGather(b, loc, std::nullopt, index, size, inits,
                          prefetchingColumns, gatherElement);
  }
  remarkKernel(b, loc,
               "{0}: every index checked up front, then direct indexed "
               "loads, one parallel loop over the {1} result elements{2}",
               describeIndexing(op, dim, inputType),
               resultType.getNumElements(), prefetch);
  auto generic = linalg::GenericOp::create(
      b, loc, io.resultTypes, ValueRange{}, inits, maps,
      parallelIterators(resultRank),
      [&](OpBuilder &nb, Location l, ValueRange) {
        linalg::YieldOp::create(
            nb, l, gatherElement(nb, l, loopIndices(nb, l, resultRank), true));
      });
  return SmallVector<Value>(generic.getResults());
}

namespace {

struct LowerGather : CheckedPattern<GatherOp> {
  using CheckedPattern::CheckedPattern;
  LogicalResult matchAndRewrite(GatherOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, lowerGatherAlongDim(rewriter, op, op.getInput().getType(),
                                op.getIndex(), op.getDim(), /*perSlice=*/false,
                                sites, KernelIO::plain(op, op.getInput())));
    return success();
  }
};

struct LowerIndexSelect : CheckedPattern<IndexSelectOp> {
  using CheckedPattern::CheckedPattern;
  LogicalResult matchAndRewrite(IndexSelectOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, lowerGatherAlongDim(rewriter, op, op.getInput().getType(),
                                op.getIndex(), op.getDim(), /*perSlice=*/true,
                                sites, KernelIO::plain(op, op.getInput())));
    return success();
  }
};

struct LowerTake : CheckedPattern<TakeOp> {
  using CheckedPattern::CheckedPattern;
  LogicalResult matchAndRewrite(TakeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType inputType = tensorType(op.getInput());
    int64_t site = sites.add(op);
    // Valid flat indices are [-numel, numel); negative ones count from the
    // end (IndexedReadOpInterface, which fused kernels read takes through
    // as well).
    auto [lo, hi] = op.getValidIndexRange();
    checkIndicesUpFront(rewriter, loc, site, op.getIndex(), lo, hi, hi);
    remarkKernel(rewriter, loc,
                 "kiln.take of {0}: every index checked up front (negative "
                 "ones count from the end), then direct loads, one parallel "
                 "loop over the {1} results",
                 typeText(inputType), op.getType().getNumElements());
    Value result = buildIndexedGeneric(
        rewriter, loc, op.getType(),
        [&](OpBuilder &b, Location l, ValueRange ivs) {
          Value index = tensor::ExtractOp::create(
              b, l, op.getIndex(), op.buildIndexPosition(b, l, ivs));
          return Value(tensor::ExtractOp::create(
              b, l, op.getInput(), op.buildInputPosition(b, l, ivs, index)));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Builds a loop nest over `shape` carrying `init` and returns the final
/// value; `body` returns the updated tensor.
Value buildUpdateLoops(
    OpBuilder &b, Location loc, ArrayRef<int64_t> shape, Value init,
    function_ref<Value(OpBuilder &, Location, ValueRange, Value)> body) {
  SmallVector<Value> lbs, ubs, steps;
  for (int64_t size : shape) {
    lbs.push_back(indexConstant(b, loc, 0));
    ubs.push_back(indexConstant(b, loc, size));
    steps.push_back(indexConstant(b, loc, 1));
  }
  if (shape.empty())
    return body(b, loc, {}, init);
  scf::LoopNest nest = scf::buildLoopNest(
      b, loc, lbs, ubs, steps, ValueRange{init},
      [&](OpBuilder &nb, Location l, ValueRange ivs, ValueRange args) {
        return scf::ValueVector{body(nb, l, ivs, args[0])};
      });
  return nest.results.front();
}

/// old + value, the sum a scatter accumulates with.
Value addScattered(OpBuilder &b, Location loc, Value old, Value value) {
  return isa<FloatType>(value.getType())
             ? Value(arith::AddFOp::create(b, loc, old, value))
             : Value(arith::AddIOp::create(b, loc, old, value));
}

/// result[at] = result[at] + value (or = value when !accumulate).
Value updateAt(OpBuilder &b, Location loc, Value tensor, ValueRange at,
               Value value, bool accumulate) {
  if (accumulate)
    value = addScattered(b, loc, tensor::ExtractOp::create(b, loc, tensor, at),
                         value);
  return tensor::InsertOp::create(b, loc, value, tensor, at);
}

/// The runtime function that sorts scatter positions by target
/// (Runtime/Kernels.cpp; Runtime/Cuda.cpp on the GPU).
constexpr llvm::StringLiteral kSortPositionsFn = "kiln_rt_sort_positions";

/// Whether buildSortedScatter handles a scatter of `count` positions into
/// `targets` targets (the runtime sorts 32-bit keys and positions).
bool fitsSortedScatter(int64_t count, int64_t targets) {
  return count > 0 && targets > 0 && count < (int64_t(1) << 32) &&
         targets < (int64_t(1) << 32);
}

/// A scatter as the GPU runs it: `kiln_rt_sort_positions` lists the
/// positions of `index` stably sorted by the target each names (`order`)
/// and where each target's run starts (`starts`); then a generic over the
/// result, a thread per element on the GPU, starts from the element's base
/// value and adds the src values of its target's run in order -- the
/// order of the sequential loop, so the same bits -- or, without
/// `accumulate`, takes the last one (put: the last write wins).
///
/// With `flat` (put) a target is an element of the flattened base (indices
/// in [-numel, numel), negative ones counted from the end) and src is read
/// at the position's row-major place; otherwise (scatter_add of 1-D
/// tensors, index_add along dim 0 with a 1-D index) a target is an index
/// of dim 0 and src is read at (position, the element's other coordinates).
/// Every index must have been checked.
Value buildSortedScatter(PatternRewriter &rewriter, Operation *op, Value base,
                         Value index, Value src, bool flat, bool accumulate) {
  Location loc = op->getLoc();
  MLIRContext *ctx = rewriter.getContext();
  RankedTensorType baseType = tensorType(base);
  RankedTensorType srcType = tensorType(src);
  int64_t rank = baseType.getRank();
  int64_t targets = flat ? baseType.getNumElements() : baseType.getDimSize(0);
  int64_t count = tensorType(index).getNumElements();
  Type i64 = rewriter.getI64Type();
  auto unrankedI64 = UnrankedMemRefType::get(i64, 0);
  func::FuncOp fn = getOrDeclareRuntimeFunc(
      op, kSortPositionsFn,
      FunctionType::get(
          ctx,
          {unrankedI64, unrankedI64, unrankedI64, i64, rewriter.getI1Type()},
          {}),
      rewriter);
  auto orderType = RankedTensorType::get({count}, i64);
  auto startsType = RankedTensorType::get({targets + 1}, i64);
  Value indexBuffer = asUnrankedBuffer(rewriter, loc, index);
  auto [orderBuffer, orderArg] = allocOutput(rewriter, loc, orderType);
  auto [startsBuffer, startsArg] = allocOutput(rewriter, loc, startsType);
  func::CallOp::create(
      rewriter, loc, fn,
      ValueRange{indexBuffer, orderArg, startsArg,
                 i64Constant(rewriter, loc, targets),
                 arith::ConstantIntOp::create(rewriter, loc, flat, 1)});
  Value order = asTensor(rewriter, loc, orderBuffer, orderType);
  Value starts = asTensor(rewriter, loc, startsBuffer, startsType);

  Value init = emptyTensor(rewriter, loc, baseType);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
  auto generic = linalg::GenericOp::create(
      rewriter, loc, TypeRange{baseType}, ValueRange{base}, ValueRange{init},
      SmallVector<AffineMap>{identity, identity}, parallelIterators(rank),
      [&](OpBuilder &b, Location l, ValueRange args) {
        SmallVector<Value> ivs = loopIndices(b, l, rank);
        Value target =
            flat ? linearize(b, l, ivs, baseType.getShape()) : ivs[0];
        auto loadIndex = [&](OpBuilder &nb, Value tensor, Value at) {
          return Value(arith::IndexCastOp::create(
              nb, l, nb.getIndexType(),
              tensor::ExtractOp::create(nb, l, tensor, ValueRange{at})));
        };
        Value one = indexConstant(b, l, 1);
        Value begin = loadIndex(b, starts, target);
        Value end =
            loadIndex(b, starts, arith::AddIOp::create(b, l, target, one));
        // The src value of the j-th position in order.
        auto srcValue = [&](OpBuilder &nb, Value j) {
          Value position = loadIndex(nb, order, j);
          SmallVector<Value> at;
          if (flat) {
            at = delinearize(nb, l, position, srcType.getShape());
          } else {
            at.push_back(position);
            at.append(ivs.begin() + 1, ivs.end());
          }
          return Value(tensor::ExtractOp::create(nb, l, src, at));
        };
        Value result;
        if (accumulate) {
          auto loop = scf::ForOp::create(
              b, l, begin, end, one, ValueRange{args[0]},
              [&](OpBuilder &fb, Location fl, Value j, ValueRange acc) {
                scf::YieldOp::create(
                    fb, fl, addScattered(fb, fl, acc[0], srcValue(fb, j)));
              });
          result = loop.getResult(0);
        } else {
          Value written = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ult,
                                                begin, end);
          auto last = scf::IfOp::create(
              b, l, written,
              [&](OpBuilder &tb, Location tl) {
                scf::YieldOp::create(
                    tb, tl,
                    srcValue(tb, arith::SubIOp::create(tb, tl, end, one)));
              },
              [&](OpBuilder &eb, Location el) {
                scf::YieldOp::create(eb, el, args[0]);
              });
          result = last.getResult(0);
        }
        linalg::YieldOp::create(b, l, result);
      });
  return generic.getResult(0);
}

/// The one value every element of `value` holds, when it is a splat
/// constant (a kiln or arith constant: zeros_like, ones_like and full fold
/// to one), else null.
TypedAttr splatScalar(Value value) {
  DenseElementsAttr dense;
  if (!matchPattern(value, m_Constant(&dense)) || !dense.isSplat())
    return nullptr;
  return dyn_cast<TypedAttr>(dense.getSplatValue<Attribute>());
}

/// Whether `value` is an argument of a function: the entry points' are
/// read-only (kiln-export-entry-points), so a scatter into one starts from
/// a copy.
bool isFunctionArgument(Value value) {
  auto arg = dyn_cast<BlockArgument>(value);
  return arg && isa<FunctionOpInterface>(arg.getOwner()->getParentOp());
}

/// Fills `slice`, a group's slice of a scatter's fresh result, with what
/// `base` holds there: the splat's value, or a copy of base's slice at
/// `offsets`. Done per group, the slice is still in cache when the group's
/// updates follow: one pass over the result instead of a whole-tensor copy
/// (or fill) and a second pass to update it.
Value initGroupSlice(OpBuilder &b, Location loc, Value slice, Value base,
                     TypedAttr splat, ArrayRef<OpFoldResult> offsets,
                     ArrayRef<OpFoldResult> sizes,
                     ArrayRef<OpFoldResult> strides) {
  if (splat) {
    Value scalar = arith::ConstantOp::create(b, loc, splat);
    return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{slice})
        .getResult(0);
  }
  Value from = tensor::ExtractSliceOp::create(
      b, loc, cast<RankedTensorType>(slice.getType()), base, offsets, sizes,
      strides);
  return linalg::CopyOp::create(b, loc, from, slice).getResult(0);
}

/// The scatter of lowerScatterAlongDim along dim 0 with a 1-D index, on
/// the CPU: an scf.forall over as many target ranges of dim 0 as the run
/// has threads (kiln_rt_num_threads), each walking every position t in
/// order and adding src[t, ...] into the rows its index selects when they
/// fall in its range.
/// An scf.forall over as many groups as the run has threads
/// (kiln_rt_num_threads), at most `extent`, carrying `init`; `lo` and `hi`,
/// at the start of its body, bound the group's contiguous range of
/// [0, extent). Build the rest of the body before its terminator.
scf::ForallOp buildThreadRangeForall(PatternRewriter &rewriter, Operation *op,
                                     Value init, int64_t extent, Value &lo,
                                     Value &hi) {
  Location loc = op->getLoc();
  func::FuncOp threadsFn = getOrDeclareRuntimeFunc(
      op, kNumThreadsFn, rewriter.getFunctionType({}, {rewriter.getI64Type()}),
      rewriter, /*cInterface=*/false);
  Value threads = arith::IndexCastOp::create(
      rewriter, loc, rewriter.getIndexType(),
      func::CallOp::create(rewriter, loc, threadsFn, ValueRange{})
          .getResult(0));
  Value groups = arith::MaxSIOp::create(
      rewriter, loc, indexConstant(rewriter, loc, 1),
      arith::MinSIOp::create(rewriter, loc, threads,
                             indexConstant(rewriter, loc, extent)));
  auto forall = scf::ForallOp::create(
      rewriter, loc, ArrayRef<OpFoldResult>{OpFoldResult(groups)},
      ValueRange{init}, /*mapping=*/std::nullopt);
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToStart(forall.getBody());
  Value q = forall.getInductionVars()[0];
  Value extentValue = indexConstant(rewriter, loc, extent);
  auto bound = [&](Value group) {
    return arith::DivUIOp::create(
        rewriter, loc, arith::MulIOp::create(rewriter, loc, group, extentValue),
        groups);
  };
  lo = bound(q);
  hi = bound(
      arith::AddIOp::create(rewriter, loc, q, indexConstant(rewriter, loc, 1)));
  return forall;
}

Value buildTargetOwnedScatter(PatternRewriter &rewriter, Operation *op,
                              Value base, Value index, Value src,
                              ArrayRef<int64_t> loopShape, bool perSlice,
                              int64_t size, bool initPerGroup,
                              TypedAttr splat) {
  Location loc = op->getLoc();
  RankedTensorType baseType = tensorType(base);
  int64_t rank = baseType.getRank();
  Value lo, hi;
  scf::ForallOp forall = buildThreadRangeForall(
      rewriter, op,
      initPerGroup ? emptyTensor(rewriter, loc, base.getType()) : base, size,
      lo, hi);
  OpBuilder::InsertionGuard guard(rewriter);
  OpBuilder &b = rewriter;
  b.setInsertionPoint(forall.getTerminator());
  Value rows = arith::SubIOp::create(b, loc, hi, lo);
  SmallVector<OpFoldResult> offsets{lo}, sizes{rows}, strides;
  SmallVector<int64_t> sliceShape{ShapedType::kDynamic};
  for (int64_t d = 1; d < rank; ++d) {
    offsets.push_back(b.getIndexAttr(0));
    sizes.push_back(b.getIndexAttr(loopShape[d]));
    sliceShape.push_back(loopShape[d]);
  }
  strides.assign(rank, b.getIndexAttr(1));
  Value shared = forall.getRegionIterArgs()[0];
  Value slice = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get(sliceShape, baseType.getElementType()),
      shared, offsets, sizes, strides);
  if (initPerGroup)
    slice = initGroupSlice(b, loc, slice, base, splat, offsets, sizes, strides);
  auto positions = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), indexConstant(b, loc, loopShape[0]),
      indexConstant(b, loc, 1), ValueRange{slice},
      [&](OpBuilder &tb, Location l, Value t, ValueRange acc) {
        SmallVector<Value> first(rank, t);
        Value target = inBoundsIndex(
            tb, l, loadDimIndex(tb, l, index, first, 0, rank, perSlice), size);
        Value mine = arith::AndIOp::create(
            tb, l,
            arith::CmpIOp::create(tb, l, arith::CmpIPredicate::uge, target, lo),
            arith::CmpIOp::create(tb, l, arith::CmpIPredicate::ult, target,
                                  hi));
        auto update = scf::IfOp::create(
            tb, l, mine,
            [&](OpBuilder &ib, Location il) {
              Value row = arith::SubIOp::create(ib, il, target, lo);
              Value updated = buildUpdateLoops(
                  ib, il, loopShape.drop_front(), acc[0],
                  [&](OpBuilder &eb, Location el, ValueRange rest,
                      Value inner) {
                    SmallVector<Value> pos{t}, at{row};
                    pos.append(rest.begin(), rest.end());
                    at.append(rest.begin(), rest.end());
                    Value value = tensor::ExtractOp::create(eb, el, src, pos);
                    return updateAt(eb, el, inner, at, value,
                                    /*accumulate=*/true);
                  });
              scf::YieldOp::create(ib, il, updated);
            },
            [&](OpBuilder &eb, Location el) {
              scf::YieldOp::create(eb, el, acc[0]);
            });
        scf::YieldOp::create(tb, l, update.getResults());
      });
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, positions.getResult(0), shared,
                                        offsets, sizes, strides);
  return forall.getResult(0);
}

/// Bytes of the result a column-block scatter updates at a time (a tile of
/// its columns, all rows, packed): the updates land in a core's L2 and its
/// share of L3, while each row of the index and src is still read in runs
/// of a KB or more. scatter_add along dim 0 of 4096x4096 f32 <- 1024x4096,
/// 1 thread, by tile size: 256 KB (16 columns) 38.6 ms, 512 KB 25.7, 1 MB
/// 17.3, 2 MB 15.3, 4 MB 15.1, 8 MB 22.5, unpacked 45; 2 threads: 2 MB
/// 9.8 ms, 4 MB 12.7.
constexpr int64_t kScatterTileBytes = 2 * 1024 * 1024;

/// The columns (dim 1) of a column-block scatter's tile: as many as fit in
/// kScatterTileBytes with every row of dim 0 (`size`) and the loop's
/// extent in the dims after, at least 16, at most all of them.
int64_t scatterTileColumns(RankedTensorType baseType,
                           ArrayRef<int64_t> loopShape, int64_t size) {
  int64_t columnBytes =
      size * llvm::divideCeil(baseType.getElementTypeBitWidth(), 8);
  for (int64_t d = 2; d < baseType.getRank(); ++d)
    columnBytes *= loopShape[d];
  return std::min(loopShape[1],
                  std::max<int64_t>(16, kScatterTileBytes /
                                            std::max<int64_t>(1, columnBytes)));
}

/// The scatter of lowerScatterAlongDim along dim 0 of a tensor of rank 2
/// or more with an index per element (scatter_add, e.g. a gather's gradient
/// along dim 0), on the CPU: an scf.forall over as many contiguous ranges
/// of dim 1 as the run has threads (kiln_rt_num_threads). Each group takes
/// its range in tiles of columns whose slice of the result (every row of
/// dim 0) fits in kScatterTileBytes, at least 16 columns. A tile is packed
/// into a contiguous buffer -- copied from the result, or started from the
/// base (initPerGroup) -- whose rows are a tile's width apart rather than
/// a result row (rows 16 KB apart fall into the same few cache sets); the
/// group walks the rows of the positions in order (contiguous runs of
/// index and src), updates the packed tile in cache, and copies it back.
/// A whole range's updates once landed on random rows of a result far
/// larger than the caches. Every element still receives its contributions
/// in the sequential order.
Value buildColumnBlockScatter(PatternRewriter &rewriter, Operation *op,
                              Value base, Value index, Value src,
                              ArrayRef<int64_t> loopShape, int64_t size,
                              bool initPerGroup, TypedAttr splat) {
  Location loc = op->getLoc();
  RankedTensorType baseType = tensorType(base);
  int64_t rank = baseType.getRank();
  Value lo, hi;
  scf::ForallOp forall = buildThreadRangeForall(
      rewriter, op,
      initPerGroup ? emptyTensor(rewriter, loc, base.getType()) : base,
      loopShape[1], lo, hi);
  OpBuilder::InsertionGuard guard(rewriter);
  OpBuilder &b = rewriter;
  b.setInsertionPoint(forall.getTerminator());
  Value columns = arith::SubIOp::create(b, loc, hi, lo);
  // The group's slice of the result: all of dim 0, its columns, the loop's
  // extent in the other dims; a tile's, `first` columns into it.
  SmallVector<int64_t> sliceShape{size, ShapedType::kDynamic};
  for (int64_t d = 2; d < rank; ++d)
    sliceShape.push_back(loopShape[d]);
  auto sliceType = RankedTensorType::get(sliceShape, baseType.getElementType());
  auto place = [&](Value first, Value width) {
    SmallVector<OpFoldResult> offsets{b.getIndexAttr(0), first},
        sizes{b.getIndexAttr(size), width};
    for (int64_t d = 2; d < rank; ++d) {
      offsets.push_back(b.getIndexAttr(0));
      sizes.push_back(b.getIndexAttr(loopShape[d]));
    }
    return std::make_pair(offsets, sizes);
  };
  SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
  auto [offsets, sizes] = place(lo, columns);
  Value shared = forall.getRegionIterArgs()[0];
  Value slice = tensor::ExtractSliceOp::create(b, loc, sliceType, shared,
                                               offsets, sizes, strides);
  int64_t tile = scatterTileColumns(baseType, loopShape, size);
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  auto tileLoop = scf::ForOp::create(
      b, loc, zero, columns, indexConstant(b, loc, tile), ValueRange{slice},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange groupAcc) {
        Value width =
            arith::MinSIOp::create(tb, tl, indexConstant(tb, tl, tile),
                                   arith::SubIOp::create(tb, tl, columns, t));
        auto [tileOffsets, tileSizes] = place(t, width);
        Value tileSlice = tensor::ExtractSliceOp::create(
            tb, tl, sliceType, groupAcc[0], tileOffsets, tileSizes, strides);
        Value firstColumn = arith::AddIOp::create(tb, tl, lo, t);
        // The tile packed contiguously: in the result its rows lie a whole
        // row apart (16 KB for 4096 f32), all in the same few cache sets.
        Value packed = tensor::EmptyOp::create(
            tb, tl, sliceShape, baseType.getElementType(), ValueRange{width});
        if (initPerGroup) {
          auto [baseOffsets, baseSizes] = place(firstColumn, width);
          packed = initGroupSlice(tb, tl, packed, base, splat, baseOffsets,
                                  baseSizes, strides);
        } else {
          packed =
              linalg::CopyOp::create(tb, tl, tileSlice, packed).getResult(0);
        }
        auto rowLoop = scf::ForOp::create(
            tb, tl, zero, indexConstant(tb, tl, loopShape[0]), one,
            ValueRange{packed},
            [&](OpBuilder &rb, Location rl, Value m, ValueRange rowAcc) {
              auto columnLoop = scf::ForOp::create(
                  rb, rl, zero, width, one, rowAcc,
                  [&](OpBuilder &cb, Location cl, Value c, ValueRange colAcc) {
                    Value column =
                        arith::AddIOp::create(cb, cl, firstColumn, c);
                    Value updated = buildUpdateLoops(
                        cb, cl, loopShape.drop_front(2), colAcc[0],
                        [&](OpBuilder &eb, Location el, ValueRange rest,
                            Value acc) {
                          SmallVector<Value> pos{m, column}, at;
                          pos.append(rest.begin(), rest.end());
                          Value target = inBoundsIndex(
                              eb, el,
                              tensor::ExtractOp::create(eb, el, index, pos),
                              size);
                          at.append({target, c});
                          at.append(rest.begin(), rest.end());
                          Value value =
                              tensor::ExtractOp::create(eb, el, src, pos);
                          return updateAt(eb, el, acc, at, value,
                                          /*accumulate=*/true);
                        });
                    scf::YieldOp::create(cb, cl, updated);
                  });
              scf::YieldOp::create(rb, rl, columnLoop.getResults());
            });
        Value unpacked =
            linalg::CopyOp::create(tb, tl, rowLoop.getResult(0), tileSlice)
                .getResult(0);
        scf::YieldOp::create(tb, tl,
                             ValueRange{tensor::InsertSliceOp::create(
                                 tb, tl, unpacked, groupAcc[0], tileOffsets,
                                 tileSizes, strides)});
      });
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, tileLoop.getResult(0), shared,
                                        offsets, sizes, strides);
  return forall.getResult(0);
}

/// scatter_add and index_add: base[pos with pos[dim] replaced by the
/// index] += src[pos] for every pos of `loopShape`, in row-major order.
///
/// Two positions update the same element only if they agree on every dim
/// but `dim`, so positions that differ in another dim are independent. An
/// scf.forall runs independent groups in parallel, each walking its
/// positions in row-major order: every element receives its contributions
/// in the sequential order, so the bits are the same on every target and
/// thread count. On the CPU a group is everything under one index of the
/// dims before `dim` (contiguous memory, row-major order inside: rows of a
/// gather's gradient in parallel); with no dims before `dim` the op is one
/// sequential loop nest. On the GPU a group is one line along `dim` (all
/// other coordinates fixed): a thread per line, consecutive threads on
/// consecutive lines (coalesced).
LogicalResult lowerScatterAlongDim(Operation *op, Value base, Value index,
                                   Value src, int64_t dimAttr,
                                   ArrayRef<int64_t> loopShape, bool perSlice,
                                   bool sorted, ErrorSites &sites,
                                   PatternRewriter &rewriter) {
  Location loc = op->getLoc();
  RankedTensorType baseType = tensorType(base);
  int64_t rank = baseType.getRank();
  int64_t dim = *normalizeDim(dimAttr, rank);
  int64_t size = rank == 0 ? 1 : baseType.getDimSize(dim);
  int64_t site = sites.add(op);
  // Every index is checked first (the first bad one in row-major order is
  // reported); the loops then read them clamped.
  checkIndicesUpFront(rewriter, loc, site, index, 0, size, size);
  if (size == 0 || ShapedType::getNumElements(loopShape) == 0) {
    rewriter.replaceOp(op, base);
    return success();
  }
  // result[at] += src[pos] at loop position `pos`, `at` relative to
  // `offsets`.
  auto update = [&](OpBuilder &b, Location l, Value acc, ValueRange pos,
                    ArrayRef<Value> offsets) {
    Value safe = inBoundsIndex(
        b, l, loadDimIndex(b, l, index, pos, dim, rank, perSlice), size);
    Value value = tensor::ExtractOp::create(b, l, src, pos);
    SmallVector<Value> at;
    for (int64_t d = 0; d < rank; ++d)
      at.push_back(d == dim ? safe
                            : arith::SubIOp::create(b, l, pos[d], offsets[d]));
    return updateAt(b, l, acc, at, value, /*accumulate=*/true);
  };

  // Along dim 0 with a 1-D index (index_add, 1-D scatter_add), where the
  // groups below would be a few long lines: the sorted scatter, a thread
  // per result element (the GPU's choice).
  bool alongDim0 =
      dim == 0 && (perSlice ? tensorType(index).getRank() == 1 : rank == 1);
  std::string what = describeIndexing(op, dim, baseType);
  if (sorted && alongDim0 &&
      fitsSortedScatter(ShapedType::getNumElements(loopShape), size)) {
    remarkKernel(rewriter, loc,
                 "{0}: sorted scatter, positions stably sorted by target, "
                 "then a thread per result element adds its run in order "
                 "(deterministic)",
                 what);
    rewriter.replaceOp(op, buildSortedScatter(rewriter, op, base, index, src,
                                              /*flat=*/false,
                                              /*accumulate=*/true));
    return success();
  }
  bool gpu = isGpuTarget(rewriter);
  // On the CPU, when the groups' slices cover the result (the positions
  // span every dim but `dim` whole) and base would be copied (an entry
  // point's argument) or is a splat (a gradient's zeros), each group starts
  // its slice from base itself (initGroupSlice) in a fresh result.
  bool covers = true;
  for (int64_t d = 0; d < rank; ++d)
    covers &= d == dim || loopShape[d] == baseType.getDimSize(d);
  TypedAttr splat = splatScalar(base);
  bool initPerGroup = !gpu && covers && (splat || isFunctionArgument(base));
  StringRef initNote =
      !initPerGroup ? ""
      : splat       ? "; each group fills its slice of the result with the "
                      "base's value first (in cache, no separate fill)"
                    : "; each group copies its slice of the base first (in "
                      "cache, no separate copy)";
  // Along dim 0 on the CPU with a 1-D index (index_add, 1-D scatter_add):
  // no dim before `dim` to split, so the targets are. Each of as many
  // groups as the run has threads owns a range of dim 0 of the result and
  // walks all positions in order, adding those whose index falls in its
  // range (whole rows of src: contiguous). Every element still receives
  // its contributions in order; each thread reads the index once.
  if (!gpu && dim == 0 && rank >= 1 && (perSlice || rank == 1) &&
      loopShape[0] > 1) {
    remarkKernel(rewriter, loc,
                 "{0}: each thread owns a range of the {1} targets and walks "
                 "all {2} positions in order, adding those that fall in its "
                 "range (every element gets its contributions in order: "
                 "deterministic){3}",
                 what, size, loopShape[0], initNote);
    rewriter.replaceOp(op, buildTargetOwnedScatter(rewriter, op, base, index,
                                                   src, loopShape, perSlice,
                                                   size, initPerGroup, splat));
    return success();
  }
  // Along dim 0 with an index per element: blocks of columns (dim 1).
  if (!gpu && !perSlice && dim == 0 && rank >= 2 && loopShape[1] > 1) {
    remarkKernel(rewriter, loc,
                 "{0}: blocks of columns in parallel, each in packed tiles of "
                 "up to {1} columns (2 MB of the result, updated in cache), "
                 "walking the rows in order and updating only its columns "
                 "(deterministic){2}",
                 what, scatterTileColumns(baseType, loopShape, size), initNote);
    rewriter.replaceOp(op, buildColumnBlockScatter(rewriter, op, base, index,
                                                   src, loopShape, size,
                                                   initPerGroup, splat));
    return success();
  }
  // The dims iterated in parallel (one index each per group).
  SmallVector<bool> parallel(rank, false);
  SmallVector<int64_t> grid;
  for (int64_t d = 0; d < rank; ++d) {
    parallel[d] = gpu ? d != dim : d < dim;
    if (parallel[d])
      grid.push_back(loopShape[d]);
  }
  int64_t groups = ShapedType::getNumElements(grid);
  if (groups == 1) { // nothing to split: one loop nest
    remarkKernel(rewriter, loc,
                 "{0}: one sequential loop nest in row-major order (no dim "
                 "to run in parallel without two positions meeting)",
                 what);
    SmallVector<Value> zeros(rank, indexConstant(rewriter, loc, 0));
    rewriter.replaceOp(op, buildUpdateLoops(rewriter, loc, loopShape, base,
                                            [&](OpBuilder &b, Location l,
                                                ValueRange ivs, Value acc) {
                                              return update(b, l, acc, ivs,
                                                            zeros);
                                            }));
    return success();
  }
  remarkKernel(rewriter, loc,
               "{0}: {1} independent groups in parallel ({2}), each "
               "walking its positions in row-major order (deterministic){3}",
               what, groups,
               gpu ? "a GPU thread per line along the dim"
                   : "everything under one index of the dims before it",
               initNote);

  scf::ForallOp forall;
  {
    OpBuilder::InsertionGuard guard(rewriter);
    OpBuilder &b = rewriter;
    SmallVector<Value> coords;
    forall = createGridForall(
        b, loc, grid, initPerGroup ? emptyTensor(b, loc, base.getType()) : base,
        coords);
    // The group's slice of the result: size 1 at its index of each
    // parallel dim; the whole of `dim`; the loop's extent elsewhere.
    SmallVector<Value> offsets;
    SmallVector<OpFoldResult> mixedOffsets, sizes, strides;
    SmallVector<int64_t> sliceShape, innerShape;
    for (int64_t d = 0, g = 0; d < rank; ++d) {
      strides.push_back(b.getIndexAttr(1));
      Value offset = parallel[d] ? coords[g++] : indexConstant(b, loc, 0);
      offsets.push_back(offset);
      mixedOffsets.push_back(parallel[d] ? OpFoldResult(offset)
                                         : b.getIndexAttr(0));
      int64_t extent = parallel[d] ? 1 : d == dim ? size : loopShape[d];
      sizes.push_back(b.getIndexAttr(extent));
      sliceShape.push_back(extent);
      if (!parallel[d])
        innerShape.push_back(loopShape[d]);
    }
    Value shared = forall.getRegionIterArgs()[0];
    Value slice = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get(sliceShape, baseType.getElementType()),
        shared, mixedOffsets, sizes, strides);
    if (initPerGroup)
      slice = initGroupSlice(b, loc, slice, base, splat, mixedOffsets, sizes,
                             strides);
    // The group's positions in row-major order.
    Value updated = buildUpdateLoops(
        b, loc, innerShape, slice,
        [&](OpBuilder &lb, Location l, ValueRange ivs, Value acc) {
          SmallVector<Value> pos;
          for (int64_t d = 0, i = 0; d < rank; ++d)
            pos.push_back(parallel[d] ? offsets[d] : ivs[i++]);
          return update(lb, l, acc, pos, offsets);
        });
    b.setInsertionPointToStart(forall.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(b, loc, updated, shared, mixedOffsets,
                                          sizes, strides);
  }
  rewriter.replaceOp(op, forall.getResults());
  return success();
}

struct LowerScatterAdd : ScatterPattern<ScatterAddOp> {
  using ScatterPattern::ScatterPattern;
  LogicalResult matchAndRewrite(ScatterAddOp op,
                                PatternRewriter &rewriter) const override {
    return lowerScatterAlongDim(op, op.getBase(), op.getIndex(), op.getSrc(),
                                op.getDim(),
                                tensorType(op.getIndex()).getShape(),
                                /*perSlice=*/false, sorted, sites, rewriter);
  }
};

struct LowerIndexAdd : ScatterPattern<IndexAddOp> {
  using ScatterPattern::ScatterPattern;
  LogicalResult matchAndRewrite(IndexAddOp op,
                                PatternRewriter &rewriter) const override {
    return lowerScatterAlongDim(op, op.getBase(), op.getIndex(), op.getSrc(),
                                op.getDim(), tensorType(op.getSrc()).getShape(),
                                /*perSlice=*/true, sorted, sites, rewriter);
  }
};

/// Positions ahead whose target a put's loop prefetches for writing (the
/// CPU): its updates land anywhere in the result, each a cache miss the
/// loop waited on, one at a time. 1 thread, put with accumulate of 4M
/// random positions: into 4M f32 21 -> 8 ms, into 16M 37 -> 25-29 (32
/// ahead: 31; 256 as 128).
constexpr int64_t kPutPrefetchAhead = 128;

/// put: every index checked up front, then a sequential loop over the index
/// in row-major order (any position may hit any element: splitting targets
/// across threads would make each read every position, which costs more
/// than the update itself); with `sorted` (the GPU) the sorted scatter, a
/// thread per element.
struct LowerPut : ScatterPattern<PutOp> {
  using ScatterPattern::ScatterPattern;
  LogicalResult matchAndRewrite(PutOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType baseType = tensorType(op.getBase());
    RankedTensorType indexType = tensorType(op.getIndex());
    RankedTensorType srcType = tensorType(op.getSrc());
    int64_t numel = baseType.getNumElements();
    int64_t site = sites.add(op);
    bool accumulate = op.getAccumulate();
    if (sorted && fitsSortedScatter(indexType.getNumElements(), numel)) {
      // The same report as the loop's: the first bad index in row-major
      // order.
      checkIndicesUpFront(rewriter, loc, site, op.getIndex(), -numel, numel,
                          numel);
      remarkKernel(rewriter, loc,
                   "kiln.put into {0}: sorted scatter, positions stably "
                   "sorted by target, then a thread per element {1} "
                   "(deterministic)",
                   typeText(baseType),
                   accumulate ? "adds its run in order" : "takes the last");
      rewriter.replaceOp(op, buildSortedScatter(rewriter, op, op.getBase(),
                                                op.getIndex(), op.getSrc(),
                                                /*flat=*/true, accumulate));
      return success();
    }
    // Every index checked up front (the first bad one in row-major order,
    // as the loop would meet it); the loop then only clamps.
    checkIndicesUpFront(rewriter, loc, site, op.getIndex(), -numel, numel,
                        numel);
    remarkKernel(rewriter, loc,
                 "kiln.put into {0}: every index checked up front, then one "
                 "sequential loop over the {1} positions in row-major order "
                 "(any position may hit any element; {2})",
                 typeText(baseType), indexType.getNumElements(),
                 accumulate ? "sums in that order" : "the last write wins");
    // The loop prefetches the target kPutPrefetchAhead positions ahead
    // (its index read again, clamped like the update's) for writing, in
    // the buffer the loop updates.
    int64_t positions = indexType.getNumElements();
    bool prefetch = !isGpuTarget(rewriter) && positions > kPutPrefetchAhead;
    Value result = buildUpdateLoops(
        rewriter, loc, indexType.getShape(), op.getBase(),
        [&](OpBuilder &b, Location l, ValueRange ivs, Value acc) {
          Value index = tensor::ExtractOp::create(b, l, op.getIndex(), ivs);
          // src is read in row-major order at the same flat position.
          Value flat = linearize(b, l, ivs, indexType.getShape());
          if (prefetch) {
            Value ahead = arith::MinUIOp::create(
                b, l,
                arith::AddIOp::create(b, l, flat,
                                      indexConstant(b, l, kPutPrefetchAhead)),
                indexConstant(b, l, positions - 1));
            Value aheadIndex = tensor::ExtractOp::create(
                b, l, op.getIndex(),
                delinearize(b, l, ahead, indexType.getShape()));
            Value buffer = readOnlyStridedBuffer(b, l, acc);
            memref::PrefetchOp::create(
                b, l, buffer,
                flatIndexPosition(b, l, aheadIndex, baseType.getShape()),
                /*isWrite=*/true, /*localityHint=*/3, /*isDataCache=*/true);
          }
          Value value = tensor::ExtractOp::create(
              b, l, op.getSrc(), delinearize(b, l, flat, srcType.getShape()));
          return updateAt(b, l, acc,
                          flatIndexPosition(b, l, index, baseType.getShape()),
                          value, accumulate);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void populateIndexingPatterns(RewritePatternSet &patterns, ErrorSites &sites,
                              bool sortedScatters) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<LowerGather, LowerIndexSelect, LowerTake>(ctx, sites);
  patterns.add<LowerScatterAdd, LowerIndexAdd, LowerPut>(ctx, sites,
                                                         sortedScatters);
}

} // namespace kiln::lowering
