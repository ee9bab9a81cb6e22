//===- Softmax.cpp - softmax and log_softmax kernels ----------------------===//
//
// The rows-in-cache kernels (a row per iteration, its exps kept in the
// result) and the one-pass kernels of softmax and log_softmax.
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

Value softmaxElement(OpBuilder &b, Location loc, Value x, Value m, Value s,
                     bool isLog) {
  Value shifted = arith::SubFOp::create(b, loc, x, m);
  return isLog ? Value(arith::SubFOp::create(b, loc, shifted, s))
               : Value(arith::MulFOp::create(
                     b, loc, math::ExpOp::create(b, loc, shifted), s));
}

namespace {

/// 1 / `sum` (a scalar, or a vector of rows' sums), once per row: softmax
/// multiplies each exp(x - m) by it, as PyTorch's CPU softmax does -- the
/// same formula, and a multiplication per element instead of a division (a
/// 512-bit division takes several times a multiplication's throughput).
Value reciprocal(OpBuilder &b, Location loc, Value sum) {
  TypedAttr one = b.getFloatAttr(getElementTypeOrSelf(sum.getType()), 1.0);
  if (auto vector = dyn_cast<VectorType>(sum.getType()))
    one = DenseElementsAttr::get(vector, one);
  return arith::DivFOp::create(b, loc, arith::ConstantOp::create(b, loc, one),
                               sum);
}

} // namespace

Value rowExpSum(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    SmallVector<Value> &indices, ElementReader read, Value m, bool isLog,
    std::function<void(OpBuilder &, Location, Value first)> prefetch) {
  LaneReduction expSum{
      [m](OpBuilder &nb, Location l, ValueRange xs, ValueRange) {
        return Value(
            math::ExpOp::create(nb, l, arith::SubFOp::create(nb, l, xs[0], m)));
      },
      [](OpBuilder &nb, Location l, Value acc, Value term) {
        return Value(arith::AddFOp::create(nb, l, acc, term));
      },
      std::move(prefetch)};
  Value s = buildLaneLoops(
      b, loc, inputType, {inputType.getRank() - 1}, indices,
      b.getFloatAttr(inputType.getElementType(), 0.0), read, expSum);
  return isLog ? Value(math::LogOp::create(b, loc, s)) : reciprocal(b, loc, s);
}

std::function<void(OpBuilder &, Location, Value)>
lanePrefetch(const NextRowPrefetch &prefetch) {
  return [prefetch](OpBuilder &b, Location loc, Value first) {
    prefetch(b, loc, first, kReductionLanes);
  };
}

int64_t expChunk(OpBuilder &b) {
  return cpuVectorBits(b) >= 512 ? kExpChunk : kReductionLanes;
}

std::pair<Value, Value>
keepExpsInRow(OpBuilder &b, Location loc, Value into, Value m,
              function_ref<Value(OpBuilder &, Location, Value j)> x,
              function_ref<void(OpBuilder &, Location, Value j, int64_t count)>
                  prefetch) {
  auto rowType = cast<RankedTensorType>(into.getType());
  int64_t n = rowType.getDimSize(0);
  Type elementType = rowType.getElementType();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  LaneReduction sum{
      [](OpBuilder &, Location, ValueRange xs, ValueRange) { return xs[0]; },
      [](OpBuilder &nb, Location l, Value acc, Value term) {
        return Value(arith::AddFOp::create(nb, l, acc, term));
      }};
  TypedAttr zeroAttr = b.getFloatAttr(elementType, 0.0);
  // exp(x - m) into `init` (tensor<size x f>), whose element i is position
  // `first` + i of the row (`first` null: 0).
  auto expGeneric = [&](OpBuilder &gb, Location gl, Value init,
                        Value first) -> Value {
    return linalg::GenericOp::create(
               gb, gl, init.getType(), ValueRange{}, init, identity,
               parallelIterators(1),
               [&](OpBuilder &nb, Location l, ValueRange) {
                 Value j = linalg::IndexOp::create(nb, l, 0);
                 if (first)
                   j = arith::AddIOp::create(nb, l, first, j);
                 Value shifted = arith::SubFOp::create(nb, l, x(nb, l, j), m);
                 linalg::YieldOp::create(
                     nb, l, Value(math::ExpOp::create(nb, l, shifted)));
               })
        .getResult(0);
  };
  if (n < kExpChunk) {
    Value exps = expGeneric(b, loc, into, Value());
    SmallVector<Value> at(1);
    Value total = buildLaneLoops(
        b, loc, rowType, {0}, at, zeroAttr,
        [&](OpBuilder &nb, Location l, ValueRange i) {
          return SmallVector<Value>{tensor::ExtractOp::create(nb, l, exps, i)};
        },
        sum);
    return {exps, reciprocal(b, loc, total)};
  }
  auto laneType = VectorType::get({kReductionLanes}, elementType);
  // The exps of positions [first, first + size) of `row` (first a multiple
  // of kReductionLanes), in place, added to the lane sums `acc` -- the
  // elements after the last whole step of lanes (the row's tail) appended
  // to `tailOut` instead when given. Returns {row, acc}.
  auto expsOf = [&](OpBuilder &gb, Location gl, Value row, Value acc,
                    Value first, int64_t size,
                    SmallVector<Value> *tailOut =
                        nullptr) -> std::pair<Value, Value> {
    SmallVector<OpFoldResult> offsets{first}, sizes{gb.getIndexAttr(size)},
        strides{gb.getIndexAttr(1)};
    Value slice = tensor::ExtractSliceOp::create(
        gb, gl, RankedTensorType::get({size}, elementType), row, offsets, sizes,
        strides);
    Value chunk = expGeneric(gb, gl, slice, first);
    Value zero = arith::ConstantOp::create(gb, gl, zeroAttr);
    int64_t whole = size / kReductionLanes * kReductionLanes;
    for (int64_t k = 0; k < whole; k += kReductionLanes)
      acc = sum.merge(
          gb, gl, acc,
          vector::TransferReadOp::create(gb, gl, laneType, chunk,
                                         ValueRange{indexConstant(gb, gl, k)},
                                         zero, ArrayRef<bool>{true}));
    if (whole < size) {
      SmallVector<Value> tail;
      for (int64_t k = whole; k < size; ++k)
        tail.push_back(tensor::ExtractOp::create(
            gb, gl, chunk, ValueRange{indexConstant(gb, gl, k)}));
      if (tailOut)
        tailOut->append(tail);
      else
        acc = mergeLaneTail(gb, gl, acc, tail, zero, sum);
    }
    return {tensor::InsertSliceOp::create(gb, gl, chunk, row, offsets, sizes,
                                          strides),
            acc};
  };
  auto zeroLanes = [&](OpBuilder &zb, Location zl) -> Value {
    return arith::ConstantOp::create(
        zb, zl, DenseElementsAttr::get(laneType, zeroAttr));
  };
  int64_t chunk = expChunk(b);
  // The chunks of positions [begin, end) (multiples of `chunk`) of `row`
  // added to `acc`; returns {row, acc}.
  auto chunks = [&](OpBuilder &cb, Location cl, Value row, Value acc,
                    Value begin, Value end) -> std::pair<Value, Value> {
    auto loop = scf::ForOp::create(
        cb, cl, begin, end, indexConstant(cb, cl, chunk), ValueRange{row, acc},
        [&](OpBuilder &ib, Location il, Value c, ValueRange carried) {
          if (prefetch)
            prefetch(ib, il, c, chunk);
          auto [r, a] = expsOf(ib, il, carried[0], carried[1], c, chunk);
          scf::YieldOp::create(ib, il, ValueRange{r, a});
        });
    return {loop.getResult(0), loop.getResult(1)};
  };
  int64_t chunked = n / chunk * chunk;
  Value lanes = zeroLanes(b, loc);
  Value exps = into;
  auto [wholeBlocks, lastSteps] = laneBlocks(n / kReductionLanes);
  if (wholeBlocks == 0) {
    std::tie(exps, lanes) =
        chunks(b, loc, exps, lanes, indexConstant(b, loc, 0),
               indexConstant(b, loc, chunked));
    if (chunked < n)
      std::tie(exps, lanes) = expsOf(
          b, loc, exps, lanes, indexConstant(b, loc, chunked), n - chunked);
    return {exps, reciprocal(b, loc, foldLanes(b, loc, lanes, sum))};
  }
  // buildLaneLoops' blocks (the same bits): each block of kLaneBlockSteps
  // steps (a whole number of chunks) summed from zero into lanes of its
  // own, then added to the row's lanes; the tail after them.
  int64_t blockSize = kLaneBlockSteps * kReductionLanes;
  static_assert(kLaneBlockSteps * kReductionLanes % kExpChunk == 0 &&
                    kExpChunk % kReductionLanes == 0,
                "blocks of whole chunks (of either size)");
  int64_t blocksEnd = wholeBlocks * blockSize;
  auto blockLoop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), indexConstant(b, loc, blocksEnd),
      indexConstant(b, loc, blockSize), ValueRange{exps, lanes},
      [&](OpBuilder &bb, Location bl, Value first, ValueRange carried) {
        Value last = arith::AddIOp::create(bb, bl, first,
                                           indexConstant(bb, bl, blockSize));
        auto [row, partial] =
            chunks(bb, bl, carried[0], zeroLanes(bb, bl), first, last);
        scf::YieldOp::create(
            bb, bl, ValueRange{row, sum.merge(bb, bl, carried[1], partial)});
      });
  exps = blockLoop.getResult(0);
  lanes = blockLoop.getResult(1);
  // The last, shorter block: whole chunks, then the last chunk's whole
  // steps; its tail joins the row's lanes after the block.
  Value partial = zeroLanes(b, loc);
  std::tie(exps, partial) =
      chunks(b, loc, exps, partial, indexConstant(b, loc, blocksEnd),
             indexConstant(b, loc, chunked));
  SmallVector<Value> tail;
  if (chunked < n)
    std::tie(exps, partial) =
        expsOf(b, loc, exps, partial, indexConstant(b, loc, chunked),
               n - chunked, &tail);
  if (lastSteps > 0)
    lanes = sum.merge(b, loc, lanes, partial);
  if (!tail.empty())
    lanes = mergeLaneTail(b, loc, lanes, tail,
                          arith::ConstantOp::create(b, loc, zeroAttr), sum);
  return {exps, reciprocal(b, loc, foldLanes(b, loc, lanes, sum))};
}

namespace {

/// softmax/log_softmax on the CPU run each row's passes in one kernel when
/// the row is at most kRowInCacheMaxBytes (ReductionPlan.h: it stays in the
/// L2 cache between passes) and there are at least this many rows, or the
/// whole tensor is that small, or the rows would not split across threads
/// (planReductionSplit): fewer rows that split take the segment kernels
/// (segmentStatistics), which share a row's work among the threads but
/// compute each exp twice (the rows-in-cache kernel keeps them in the
/// result's row). Measured on 2 threads, rows-in-cache against segments,
/// 1 / 2 threads: 4x16384 f32 12 / 9 us against 20 / 16; 8x32768 47 / 27
/// against 80 / 47; 32x65536 376 / 220 against 633 / 330. With 8 rows,
/// the segments' 1.7 times the work spread over 16 threads about matches
/// 8 threads taking a row each: the rows-in-cache kernel is no slower on up
/// to 16 threads. (Before the segment kernels, rows that did not split
/// took three one-pass kernels: 16x4096 f32 20 -> 12 us at 1 thread in one
/// kernel, 17 -> 9 at 2; the same lane order, so the same bits.)
constexpr int64_t kCachedRowMinRows = 8;

/// Three kernels per softmax, each one pass: the row maximum m, the row sum
/// s of exp(x - m) (both vectorized reductions along `dim`), and the
/// elementwise exp(x - m) * (1 / s) (or x - m - log(s)); where they apply,
/// the rows-in-cache kernel or the segment kernels instead (above
/// kCachedRowMinRows). Infinities and NaN give PyTorch's answers: NaN or
/// +inf in a row makes the row NaN, -inf entries contribute 0, an all -inf
/// row is NaN.
template <typename OpTy> struct LowerSoftmax : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;

  /// The three kernels; `io.read` reads the input in each of them (a fused
  /// producer chain is recomputed per pass: its inputs stay in cache), and
  /// the last one applies a fused epilogue.
  static SmallVector<Value> lower(OpBuilder &b, OpTy op, const KernelIO &io) {
    RankedTensorType type = tensorType(op.getInput());
    int64_t rank = type.getRank();
    int64_t dim = *normalizeDim(op.getDim(), rank);
    if (hasUnitDims(type) && type.getDimSize(dim) != 1)
      return lowerSqueezed(b, op, io, type, dim);
    return lower(b, op, io, type, dim);
  }

  /// The kernels over an input with unit dims (other than `dim`) are those
  /// of the input without them: the row kernels need the softmax's dim
  /// innermost, and a dim followed by unit dims ([N, C, 1, 1] over C, class
  /// scores after a global pooling) took the three one-pass kernels with
  /// columns of one element (4096x1000x1x1 f32 at 1 thread: 12.2 ms, the
  /// 4096x1000 rows 1.1). `io` is seen through the squeezed shape (0 at
  /// the unit dims), the results take the op's shape back: the bits of the
  /// softmax of the input reshaped without its unit dims.
  static SmallVector<Value> lowerSqueezed(OpBuilder &b, OpTy op,
                                          const KernelIO &io,
                                          RankedTensorType type, int64_t dim) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank(), squeezedDim = 0;
    SmallVector<int64_t> shape, dims;
    for (int64_t d = 0; d < rank; ++d) {
      if (type.getDimSize(d) == 1)
        continue;
      if (d == dim)
        squeezedDim = dims.size();
      dims.push_back(d);
      shape.push_back(type.getDimSize(d));
    }
    auto squeezedType = RankedTensorType::get(shape, type.getElementType());
    remarkKernel(b, loc,
                 "{0} over dim {1} of {2}: its unit dims hold one position "
                 "each, so it runs as over dim {3} of {4}",
                 op->getName().getStringRef(), dim, typeText(type), squeezedDim,
                 typeText(squeezedType));
    // Indices of the squeezed shape -> the op's.
    auto original = [rank, dims](OpBuilder &nb, Location l, ValueRange ivs) {
      SmallVector<Value> at(rank, indexConstant(nb, l, 0));
      for (auto [iv, d] : llvm::zip_equal(ivs, dims))
        at[d] = iv;
      return at;
    };
    KernelIO squeezed;
    squeezed.read = [&io, original](OpBuilder &nb, Location l, ValueRange ivs) {
      return io.read(nb, l, original(nb, l, ivs));
    };
    if (io.finish)
      squeezed.finish = [&io, original](OpBuilder &nb, Location l,
                                        Value element, ValueRange ivs) {
        return io.finish(nb, l, element, original(nb, l, ivs));
      };
    for (Type resultType : io.resultTypes)
      squeezed.resultTypes.push_back(RankedTensorType::get(
          shape, cast<RankedTensorType>(resultType).getElementType()));
    if (io.stored)
      squeezed.stored = collapseUnitDims(b, loc, io.stored);
    // What the row kernels prefetch: the stored tensors of the op's shape.
    for (Value source : io.sources)
      if (auto sourceType = dyn_cast<RankedTensorType>(source.getType());
          sourceType && sourceType.getShape() == type.getShape())
        squeezed.sources.push_back(collapseUnitDims(b, loc, source));
    if (io.prefetch)
      squeezed.prefetch = {
          [&io, original](OpBuilder &nb, Location l, ValueRange ivs) {
            io.prefetch(nb, l, original(nb, l, ivs));
          },
          io.prefetch.scattered};
    SmallVector<Value> results =
        lower(b, op, squeezed, squeezedType, squeezedDim);
    for (auto [result, resultType] : llvm::zip_equal(results, io.resultTypes))
      result =
          expandUnitDims(b, loc, result, cast<RankedTensorType>(resultType));
    return results;
  }

  /// The kernels of `op` over `dim` of `type` (the op's input, or that
  /// without its unit dims).
  static SmallVector<Value> lower(OpBuilder &b, OpTy op, const KernelIO &io,
                                  RankedTensorType type, int64_t dim) {
    constexpr bool isLog = std::is_same_v<OpTy, LogSoftmaxOp>;
    Location loc = op.getLoc();
    int64_t rank = type.getRank();
    auto floatType = cast<FloatType>(type.getElementType());
    StringRef name = op->getName().getStringRef();
    if (isGpuTarget(b) && floatType.isF32() && rank > 0 && dim == rank - 1 &&
        type.getNumElements() > 0) {
      remarkKernel(b, loc,
                   "{0} over dim {1} of {2}: GPU row kernel, a block per row "
                   "keeps a running maximum and sum in one read, then writes "
                   "the row",
                   name, dim, typeText(type));
      return lowerGpuRows(b, op, io, type, isLog);
    }
    int64_t rows = rank > 0 ? type.getNumElements() /
                                  std::max<int64_t>(1, type.getDimSize(dim))
                            : 1;
    int64_t rowBytes =
        rank > 0 ? type.getDimSize(dim) * (floatType.getWidth() / 8) : 0;
    SmallVector<bool> mask(rank, false);
    if (rank > 0)
      mask[dim] = true;
    if (int64_t lanes = laneRowsWidth(b, type, dim, rows)) {
      remarkKernel(b, loc,
                   "{0} over dim {1} of {2}: one kernel, {3} rows at a time, a "
                   "row per lane of a vector: the rows' elements {4}read a "
                   "row at a time and transposed in registers into a "
                   "buffer in the cache (element j of the rows in vector j) "
                   "with the maximum m, then the sum s of exp(x - m) in j "
                   "order, then {5}, transposed back into the rows",
                   name, dim, typeText(type), lanes,
                   io.stored ? ""
                             : "computed in order (the fused producer chain, "
                               "once per element), then ",
                   isLog ? "x - m - log(s)" : "exp(x - m) * (1 / s)");
      return lowerLaneRows(b, op, io, type, lanes, isLog);
    }
    if (!isGpuTarget(b) && rank > 0 && dim == rank - 1 && rowBytes > 0 &&
        rowBytes <= kiln::conversion::kRowInCacheMaxBytes &&
        (rows >= kCachedRowMinRows ||
         rows * rowBytes <= kiln::conversion::kRowInCacheMaxBytes ||
         !planReductionSplit(type, mask))) {
      remarkKernel(b, loc,
                   "{0} over dim {1} of {2}: one kernel, rows in parallel; "
                   "each row ({3} bytes) is read from memory once and stays "
                   "in cache for its three passes: the maximum m, the sum s "
                   "of exp(x - m), then {4} (a fused producer chain is "
                   "evaluated in each pass)",
                   name, dim, typeText(type), rowBytes,
                   isLog ? "x - m - log(s)" : "exp(x - m) * (1 / s)");
      return lowerCachedRows(b, op, io, type, isLog);
    }
    if (!isGpuTarget(b) && rank > 1 && dim < rank - 1 &&
        type.getDimSize(dim) > 1 && type.getNumElements() > 0)
      if (int64_t block = kiln::conversion::packedTileBlock(
              type.getDimSize(dim), type.getDimSize(rank - 1),
              floatType.getWidth() / 8)) {
        remarkKernel(b, loc,
                     "{0} over dim {1} of {2}: one kernel, tiles of the {3} "
                     "rows by {4} columns of the last dim in parallel; each "
                     "tile is read from memory once into a buffer (its rows, "
                     "apart in memory, would evict each other from the cache) "
                     "for its three passes: the maximum m, the sum s of "
                     "exp(x - m), then {5}",
                     name, dim, typeText(type), type.getDimSize(dim), block,
                     isLog ? "x - m - log(s)" : "exp(x - m) * (1 / s)");
        return lowerPackedColumns(b, op, io, type, dim, block, isLog);
      }
    auto read = [&](OpBuilder &nb, Location l, ValueRange indices) {
      return SmallVector<Value>{io.read(nb, l, indices)};
    };
    bool empty = rank > 0 && type.getDimSize(dim) == 0;
    std::optional<kiln::conversion::ReductionSplit> split;
    if (!isGpuTarget(b) && rank > 0 && dim == rank - 1)
      split = planReductionSplit(type, mask);
    if (split)
      remarkKernel(b, loc,
                   "{0} over dim {1} of {2}: 3 kernels: each of {3} segments "
                   "of {4} elements of a row its maximum m' and its sum of "
                   "exp(x - m') (the segment read twice, the second time "
                   "from cache), in parallel; then each row's maximum m and "
                   "sum s, the segments' sums{5} scaled by exp(m' - m) and "
                   "added in order; then {6} (a fused producer chain is "
                   "evaluated in each pass)",
                   name, dim, typeText(type), split->segments, split->length,
                   split->rest ? llvm::formatv(" and those of the {0} "
                                               "elements after them",
                                               split->rest)
                                     .str()
                               : std::string(),
                   isLog ? "x - m - log(s)" : "exp(x - m) * (1 / s)");
    else
      remarkKernel(b, loc,
                   "{0} over dim {1} of {2}: 3 kernels, each one pass: the "
                   "row maxima m, the row sums s of exp(x - m), then {3} (a "
                   "fused producer chain is evaluated in each pass)",
                   name, dim, typeText(type),
                   isLog ? "x - m - log(s)" : "exp(x - m) * (1 / s)");
    // Row maxima (NaN-propagating, exactly associative: vectorized; on
    // ExtremeKeys on the CPU). On the GPU the maximum splits across lanes
    // like the sums (the maximum is the same in any order).
    using Max = ReductionCombiner<AmaxOp>;
    bool keys = Max::usesKeys(b, floatType);
    LaneReduction maxLanes{
        [](OpBuilder &, Location, ValueRange xs, ValueRange) { return xs[0]; },
        [keys](OpBuilder &nb, Location l, Value acc, Value x) {
          return Max::merge(nb, l, acc, x, keys);
        }};
    Value rowMax, rowSum;
    if (split)
      std::tie(rowMax, rowSum) =
          segmentStatistics(b, op, type, read, io.sources, *split, isLog);
    else if (!empty)
      rowMax = buildReduction(
          b, loc, type, read, mask, {Max::identity(b, floatType, keys)},
          [keys](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
                 ValueRange) {
            return SmallVector<Value>{Max::combine(nb, l, xs[0], acc[0], keys)};
          },
          [&](OpBuilder &nb, Location l, ValueRange accs, ValueRange) {
            return SmallVector<Value>{
                Max::result(nb, l, accs[0], floatType, keys)};
          },
          TypeRange{floatType}, isGpuTarget(b) ? &maxLanes : nullptr,
          /*maySplit=*/true, /*orderFree=*/&maxLanes)[0];
    // Row sums of exp(x - max); -inf entries contribute exactly 0.
    SmallVector<int64_t> keptDims;
    for (int64_t d = 0; d < rank; ++d)
      if (!mask[d])
        keptDims.push_back(d);
    auto rowMaxAt = [&](OpBuilder &nb, Location l, ValueRange indices) {
      SmallVector<Value> at;
      for (int64_t d : keptDims)
        at.push_back(indices[d]);
      return Value(tensor::ExtractOp::create(nb, l, rowMax, at));
    };
    LaneReduction expSum{
        [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange indices) {
          return Value(math::ExpOp::create(
              nb, l,
              arith::SubFOp::create(nb, l, xs[0], rowMaxAt(nb, l, indices))));
        },
        [](OpBuilder &nb, Location l, Value acc, Value term) {
          return Value(arith::AddFOp::create(nb, l, acc, term));
        }};
    // log_softmax takes log(sum) once per row, in the reduction's
    // epilogue, softmax 1 / sum (not once per element in the last pass).
    auto logOfSum = [&](OpBuilder &nb, Location l, ValueRange accs,
                        ValueRange) {
      return SmallVector<Value>{math::LogOp::create(nb, l, accs[0])};
    };
    auto inverseOfSum = [&](OpBuilder &nb, Location l, ValueRange accs,
                            ValueRange) {
      return SmallVector<Value>{reciprocal(nb, l, accs[0])};
    };
    if (!split && !empty)
      rowSum = buildReduction(
          b, loc, type, read, mask, {b.getFloatAttr(floatType, 0.0)},
          [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
              ValueRange indices) {
            SmallVector<Value> at;
            for (int64_t d : keptDims)
              at.push_back(indices[d]);
            Value m = tensor::ExtractOp::create(nb, l, rowMax, at);
            Value term = math::ExpOp::create(
                nb, l, arith::SubFOp::create(nb, l, xs[0], m));
            return SmallVector<Value>{
                arith::AddFOp::create(nb, l, acc[0], term)};
          },
          isLog ? ReductionFinalizer(logOfSum)
                : ReductionFinalizer(inverseOfSum),
          TypeRange{floatType}, &expSum)[0];
    // Elementwise: exp(x - max) * (1 / sum) (or x - max - log(sum)), then the
    // fused epilogue.
    MLIRContext *ctx = b.getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
    SmallVector<Value> inits = emptyTensors(b, loc, io.resultTypes);
    SmallVector<AffineMap> maps(inits.size(), identity);
    auto generic = linalg::GenericOp::create(
        b, loc, io.resultTypes, ValueRange{}, inits, maps,
        parallelIterators(rank), [&](OpBuilder &nb, Location l, ValueRange) {
          SmallVector<Value> ivs = loopIndices(nb, l, rank);
          Value x = io.read(nb, l, ivs);
          Value result = x;
          if (!empty) {
            SmallVector<Value> at;
            for (int64_t d : keptDims)
              at.push_back(ivs[d]);
            Value m = tensor::ExtractOp::create(nb, l, rowMax, at);
            Value sum = tensor::ExtractOp::create(nb, l, rowSum, at);
            Value shifted = arith::SubFOp::create(nb, l, x, m);
            if (isLog) // `sum` holds log(sum)
              result = arith::SubFOp::create(nb, l, shifted, sum);
            else // and 1 / sum
              result = arith::MulFOp::create(
                  nb, l, math::ExpOp::create(nb, l, shifted), sum);
          }
          linalg::YieldOp::create(nb, l, io.finishElement(nb, l, result, ivs));
        });
    return SmallVector<Value>(generic.getResults());
  }

  /// On the CPU, softmax's row statistics over few long rows (rows that
  /// planReductionSplit cuts into `segments` along the last dim), in two
  /// kernels instead of four (the separate maximum and sum, each split in
  /// two): a parallel generic over (row, segment) takes each segment's
  /// maximum m' and then the sum of exp(x - m') over it in the lane order
  /// -- the segment (at most 256 KB for the shapes planReductionSplit
  /// splits into more than one segment of 4096 elements or more, unless
  /// the row is longer than 64M elements) is still in cache for the
  /// second pass, so the input comes from memory once for both, where the
  /// separate kernels read it twice --, then a generic over the rows
  /// takes the row's maximum m of the segments' and its sum s, each
  /// segment's sum times exp(m' - m), added in segment order. An all -inf
  /// segment sums to 0 (its exps taken against 0, not against -inf, whose
  /// difference is NaN); a row with NaN or +inf has a NaN m' or sum, and an
  /// all -inf row a NaN exp(m' - m): NaN, as PyTorch gives. The order
  /// depends on the shape only: the same bits at every thread count.
  /// Returns {m, 1 / s} (softmax) or {m, log s} (log_softmax), of the
  /// kept dims' shape, for the last kernel.
  static std::pair<Value, Value>
  segmentStatistics(OpBuilder &b, OpTy op, RankedTensorType type,
                    ElementReader read, ValueRange sources,
                    const kiln::conversion::ReductionSplit &split, bool isLog) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank(), inner = rank - 1;
    int64_t segments = split.segments, length = split.length;
    auto floatType = cast<FloatType>(type.getElementType());
    SmallVector<int64_t> statShape(type.getShape().drop_back());
    statShape.push_back(segments);
    auto statType = RankedTensorType::get(statShape, floatType);
    SmallVector<int64_t> segmentShape(type.getShape().drop_back());
    segmentShape.push_back(length);
    auto segmentType = RankedTensorType::get(segmentShape, floatType);
    MLIRContext *ctx = b.getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
    Value negInf = arith::ConstantOp::create(
        b, loc,
        b.getFloatAttr(floatType,
                       APFloat::getInf(floatType.getFloatSemantics(), true)));
    Value zero =
        arith::ConstantOp::create(b, loc, b.getFloatAttr(floatType, 0.0));
    // The sum's pass prefetches the next segment (the stored inputs seen
    // as [..., segments, length]: NextRowPrefetch's rows), whose maximum
    // then reads it from cache: the memory's time overlaps the exps'.
    SmallVector<Value> segmented;
    SmallVector<ReassociationIndices> groups;
    for (int64_t d = 0; d < inner; ++d)
      groups.push_back({d});
    groups.push_back({inner, inner + 1});
    SmallVector<int64_t> segmentedShape(statShape);
    segmentedShape.push_back(length);
    for (Value source : sources) {
      auto sourceType = dyn_cast<RankedTensorType>(source.getType());
      if (!sourceType || sourceType.getShape() != type.getShape())
        continue;
      // The segments' part of the rows (without the rest after them).
      if (split.rest) {
        SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes,
            strides(rank, b.getIndexAttr(1));
        for (int64_t size : type.getShape().drop_back())
          sizes.push_back(b.getIndexAttr(size));
        sizes.push_back(b.getIndexAttr(segments * length));
        source = tensor::ExtractSliceOp::create(b, loc, source, offsets, sizes,
                                                strides);
      }
      segmented.push_back(tensor::ExpandShapeOp::create(
          b, loc,
          RankedTensorType::get(segmentedShape, sourceType.getElementType()),
          source, groups));
    }
    NextRowPrefetch prefetch(b, loc, statShape, length, segmented);
    // The body is built once the generic is in the function: the
    // reductions below look up the target through the enclosing module.
    auto stats = linalg::GenericOp::create(
        b, loc, TypeRange{statType, statType}, ValueRange{},
        ValueRange{emptyTensor(b, loc, statType),
                   emptyTensor(b, loc, statType)},
        SmallVector<AffineMap>{identity, identity}, parallelIterators(rank));
    OpBuilder sb(ctx); // the segments' body
    sb.createBlock(&stats.getRegion(), {}, {floatType, floatType}, {loc, loc});
    SmallVector<Value> ivs = loopIndices(sb, loc, rank);
    // A piece of a row -- `pieceType`'s last dim, from position `start` of
    // the row -- its maximum m' and its sum of exp(x - m') in the lane
    // order (exp(x) when m' is -inf).
    auto pieceStatistics = [&](OpBuilder &pb, RankedTensorType pieceType,
                               SmallVector<Value> &indices, Value start,
                               bool prefetchNext) -> std::pair<Value, Value> {
      auto pieceRead = readFrom(read, inner, start);
      Value pieceMax =
          reduceRow<AmaxOp>(pb, loc, pieceType, indices, pieceRead);
      Value allNegInf = arith::CmpFOp::create(
          pb, loc, arith::CmpFPredicate::OEQ, pieceMax, negInf);
      Value shift = arith::SelectOp::create(pb, loc, allNegInf, zero, pieceMax);
      LaneReduction expSum{
          [shift](OpBuilder &eb, Location el, ValueRange xs, ValueRange) {
            return Value(math::ExpOp::create(
                eb, el, arith::SubFOp::create(eb, el, xs[0], shift)));
          },
          [](OpBuilder &eb, Location el, Value acc, Value term) {
            return Value(arith::AddFOp::create(eb, el, acc, term));
          },
          prefetchNext && prefetch ? lanePrefetch(prefetch) : nullptr};
      Value pieceSum =
          buildLaneLoops(pb, loc, pieceType, {inner}, indices,
                         pb.getFloatAttr(floatType, 0.0), pieceRead, expSum);
      return {pieceMax, pieceSum};
    };
    SmallVector<Value> indices(ivs);
    prefetch.setRow(sb, loc, ivs);
    auto [segmentMax, segmentSum] =
        pieceStatistics(sb, segmentType, indices,
                        arith::MulIOp::create(sb, loc, ivs[inner],
                                              indexConstant(sb, loc, length)),
                        /*prefetchNext=*/true);
    linalg::YieldOp::create(sb, loc, ValueRange{segmentMax, segmentSum});
    Value maxima = stats.getResult(0), sums = stats.getResult(1);
    // Per row: m = max m' (NaN-propagating), s = sum of s' exp(m' - m), the
    // rest after the segments (split.rest elements, if any) taken as one
    // more segment, the last.
    RankedTensorType rowType =
        RankedTensorType::get(type.getShape().drop_back(), floatType);
    AffineMap rowIdentity = AffineMap::getMultiDimIdentityMap(inner, ctx);
    auto rows = linalg::GenericOp::create(
        b, loc, TypeRange{rowType, rowType}, ValueRange{},
        ValueRange{emptyTensor(b, loc, rowType), emptyTensor(b, loc, rowType)},
        SmallVector<AffineMap>{rowIdentity, rowIdentity},
        parallelIterators(inner));
    OpBuilder nb(ctx); // the rows' body, built in place (as the segments')
    nb.createBlock(&rows.getRegion(), {}, {floatType, floatType}, {loc, loc});
    Location l = loc;
    SmallVector<Value> at = loopIndices(nb, l, inner);
    Value restMax, restSum;
    if (split.rest) {
      SmallVector<int64_t> restShape(type.getShape().drop_back());
      restShape.push_back(split.rest);
      SmallVector<Value> restIndices(at);
      restIndices.push_back(Value());
      std::tie(restMax, restSum) = pieceStatistics(
          nb, RankedTensorType::get(restShape, floatType), restIndices,
          indexConstant(nb, l, segments * length), /*prefetchNext=*/false);
    }
    at.push_back(Value());
    auto over = [&](Value init, auto step) {
      return scf::ForOp::create(
                 nb, l, indexConstant(nb, l, 0), indexConstant(nb, l, segments),
                 indexConstant(nb, l, 1), ValueRange{init},
                 [&](OpBuilder &fb, Location fl, Value k, ValueRange acc) {
                   at.back() = k;
                   scf::YieldOp::create(fb, fl, step(fb, fl, acc[0]));
                 })
          .getResult(0);
    };
    Value m = over(negInf, [&](OpBuilder &fb, Location fl, Value acc) {
      Value mk = tensor::ExtractOp::create(fb, fl, maxima, at);
      return Value(arith::MaximumFOp::create(fb, fl, acc, mk));
    });
    if (restMax)
      m = arith::MaximumFOp::create(nb, l, m, restMax);
    // In f64 for narrower types: one exp per segment, whose rounding would
    // otherwise add to the elements' (softmax of 1x16M f32, worst relative
    // error against f64: 1.2e-6 with the scales in f32, 5.9e-7 in f64, as
    // by the separate kernels).
    auto wide = nb.getF64Type();
    bool widen = floatType.getWidth() < 64;
    auto widened = [&](OpBuilder &fb, Location fl, Value v) {
      return widen ? Value(arith::ExtFOp::create(fb, fl, wide, v)) : v;
    };
    Value wideZero = arith::ConstantOp::create(
        nb, l, nb.getFloatAttr(widen ? Type(wide) : floatType, 0.0));
    Value wideM = widened(nb, l, m);
    // acc + s' exp(m' - m), in the wide type.
    auto addScaled = [&](OpBuilder &fb, Location fl, Value acc, Value mk,
                         Value sk) {
      Value scale = math::ExpOp::create(
          fb, fl, arith::SubFOp::create(fb, fl, widened(fb, fl, mk), wideM));
      return Value(arith::AddFOp::create(
          fb, fl, acc,
          arith::MulFOp::create(fb, fl, widened(fb, fl, sk), scale)));
    };
    Value s = over(wideZero, [&](OpBuilder &fb, Location fl, Value acc) {
      return addScaled(fb, fl, acc,
                       tensor::ExtractOp::create(fb, fl, maxima, at),
                       tensor::ExtractOp::create(fb, fl, sums, at));
    });
    if (restSum)
      s = addScaled(nb, l, s, restMax, restSum);
    Value finished =
        isLog ? Value(math::LogOp::create(nb, l, s)) : reciprocal(nb, l, s);
    if (widen)
      finished = arith::TruncFOp::create(nb, l, floatType, finished);
    linalg::YieldOp::create(nb, l, ValueRange{m, finished});
    return {rows.getResult(0), rows.getResult(1)};
  }

  /// The rows the lanes kernel (lowerLaneRows) takes at a time for a
  /// softmax over `dim` of `type` (with `rows` rows), or 0 where it does not
  /// apply: on the CPU, f32 or f64 rows along the last dim
  /// (kiln::conversion::laneRowsWidth).
  static int64_t laneRowsWidth(OpBuilder &b, RankedTensorType type, int64_t dim,
                               int64_t rows) {
    int64_t rank = type.getRank();
    Type elementType = type.getElementType();
    if (isGpuTarget(b) || rank < 2 || dim != rank - 1 ||
        !(elementType.isF32() || elementType.isF64()))
      return 0;
    return kiln::conversion::laneRowsWidth(rows, type.getDimSize(dim),
                                           elementType.getIntOrFloatBitWidth(),
                                           cpuVectorBits(b));
  }

  /// On the CPU, short rows (laneRowsWidth): an scf.forall over groups of
  /// `lanes` rows, a row per lane of a vector, with a buffer of n such
  /// vectors (element j of the group's rows, in the L1 cache). Each block
  /// of the group's rows by `lanes` of their elements is read a row at a
  /// time (masked loads: the group's rows are contiguous) and transposed in
  /// registers into the buffer, from a stored input, or from a row-major
  /// buffer into which a fused producer chain was evaluated first (once per
  /// element, in order: a loop LLVM vectorizes; zeros past the group's last
  /// row). Then the maximum m (on ExtremeKeys), the sum s of exp(x - m), j
  /// from 0 to n - 1 (the order of the row kernels for lines shorter than
  /// the lanes, so the same bits), the exps kept in the buffer for softmax,
  /// and the results in place; the rows are transposed back into the
  /// row-major buffer (masked stores), from which a loop over the group's
  /// elements writes the results through a fused epilogue. Rows of 4 or 8
  /// f32 (4 f64) elements are read and written as whole vectors of
  /// consecutive rows instead, transposed as tiles of n x n side by side
  /// (softmax over 262144 rows of 8 f32 at 1 thread: 1.75 -> 0.68 ms, of 4
  /// 0.61 -> 0.38; the lanes hold the rows in another order in between,
  /// which no lane's arithmetic sees). A last group of fewer rows reads the
  /// input's last row again (or zeros past its end) in the lanes past it
  /// and writes none of them. LLVM vectorized the rows-in-cache kernel of such
  /// rows across the rows itself, at some lengths, each row's loops
  /// unrolled and its strided loads and stores one element at a time: one
  /// block of about 2300 instructions for 10 elements, 285 ms to compile.
  /// Each row is in one lane of one thread: the bits do not depend on the
  /// thread count.
  static SmallVector<Value> lowerLaneRows(OpBuilder &b, OpTy op,
                                          const KernelIO &io,
                                          RankedTensorType type, int64_t lanes,
                                          bool isLog) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank(), n = type.getDimSize(rank - 1);
    auto floatType = cast<FloatType>(type.getElementType());
    int64_t total = type.getNumElements(), rows = total / n;
    int64_t blocks = (n + lanes - 1) / lanes;
    SmallVector<int64_t> rowShape(type.getShape().drop_back());
    auto laneType = VectorType::get({lanes}, floatType);
    auto maskType = VectorType::get({lanes}, b.getI1Type());
    Value input;
    if (io.stored)
      input = flatten(b, loc, io.stored);
    SmallVector<Value> outputs;
    for (Type elementType : io.resultElementTypes())
      outputs.push_back(tensor::EmptyOp::create(b, loc, {total}, elementType));
    SmallVector<Value> results;
    {
      OpBuilder::InsertionGuard guard(b);
      SmallVector<Value> coords;
      scf::ForallOp forall = createGridForall(
          b, loc, {(rows + lanes - 1) / lanes}, outputs, coords);
      Value first = arith::MulIOp::create(b, loc, coords[0],
                                          indexConstant(b, loc, lanes));
      Value count = arith::MinSIOp::create(
          b, loc, indexConstant(b, loc, lanes),
          arith::SubIOp::create(b, loc, indexConstant(b, loc, rows), first));
      Value zeros = arith::ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(laneType, b.getFloatAttr(floatType, 0.0)));
      Value pad =
          arith::ConstantOp::create(b, loc, b.getFloatAttr(floatType, 0.0));
      Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
      Value width = indexConstant(b, loc, lanes);
      Value size = indexConstant(b, loc, n);
      // The input indices of position p of the group's rows (row p / n,
      // element p % n; delinearized so that LLVM sees consecutive positions
      // at consecutive addresses).
      auto indicesAt = [&](OpBuilder &nb, Location l, Value p) {
        Value row = arith::DivUIOp::create(nb, l, p, size);
        SmallVector<Value> indices = delinearizeIndex(
            nb, l, arith::AddIOp::create(nb, l, first, row), rowShape);
        indices.push_back(arith::SubIOp::create(
            nb, l, p, arith::MulIOp::create(nb, l, row, size)));
        return indices;
      };
      // The input's row for lane `lane` of the group: the last row for the
      // lanes past `count`.
      Value lastRow = indexConstant(b, loc, rows - 1);
      auto inputRow = [&](int64_t lane) -> Value {
        return arith::MinSIOp::create(
            b, loc,
            arith::AddIOp::create(b, loc, first, indexConstant(b, loc, lane)),
            lastRow);
      };
      // The first `count` lanes of a block of `lanes` elements of a row.
      auto blockMask = [&](int64_t block) -> Value {
        return vector::CreateMaskOp::create(
            b, loc, maskType,
            ValueRange{
                indexConstant(b, loc, std::min(lanes, n - block * lanes))});
      };
      // The buffer: a vector of `lanes` per element j of the rows (a
      // memref: stores into a tensor would each be an SSA value, which
      // one-shot bufferization's analysis takes quadratic time over).
      Value buffer = memref::AllocOp::create(
          b, loc, MemRefType::get({n * lanes}, floatType),
          b.getI64IntegerAttr(64));
      auto slot = [&](OpBuilder &nb, Location l, Value j) {
        return SmallVector<Value>{arith::MulIOp::create(nb, l, j, width)};
      };
      auto load = [&](OpBuilder &nb, Location l, Value j) {
        return vector::LoadOp::create(nb, l, laneType, buffer, slot(nb, l, j))
            .getResult();
      };
      auto store = [&](OpBuilder &nb, Location l, Value vector, Value j) {
        vector::StoreOp::create(nb, l, vector, buffer, slot(nb, l, j));
      };
      auto overColumns = [&](ValueRange carried,
                             function_ref<SmallVector<Value>(
                                 OpBuilder &, Location, Value, ValueRange)>
                                 body) {
        return scf::ForOp::create(
                   b, loc, zero, size, one, carried,
                   [&](OpBuilder &nb, Location l, Value j, ValueRange now) {
                     scf::YieldOp::create(nb, l, body(nb, l, j, now));
                   })
            .getResults();
      };
      AffineMap minorIdentity =
          AffineMap::getMultiDimIdentityMap(1, b.getContext());
      // The group's rows, row-major: a fused producer chain's values,
      // evaluated first, once per element, in order (a loop LLVM
      // vectorizes; zeros past the group's last row), and at the end the
      // results.
      Value rowMajor = memref::AllocOp::create(
          b, loc, MemRefType::get({n * lanes}, floatType),
          b.getI64IntegerAttr(64));
      Value length = arith::MulIOp::create(b, loc, count, size);
      if (!input) {
        fillBuffer(b, loc, rowMajor, length, n * lanes, pad,
                   [&](OpBuilder &nb, Location l, Value p) {
                     return io.read(nb, l, indicesAt(nb, l, p));
                   });
      }
      // Rows of 4 or 8 f32 (4 f64) elements: whole vectors of consecutive
      // rows, lanes / n of them, transposed as n x n tiles side by side
      // (the lanes then hold the rows in another order; the transposes
      // back restore it), read and written whole.
      bool contiguous = n < lanes && llvm::isPowerOf2_64(n);
      int64_t perVector = lanes / n;
      auto wholeRows = [&](int64_t v) -> Value {
        if (!input)
          return vector::LoadOp::create(
              b, loc, laneType, rowMajor,
              ValueRange{indexConstant(b, loc, v * lanes)});
        Value at = arith::MulIOp::create(
            b, loc,
            arith::AddIOp::create(b, loc, first,
                                  indexConstant(b, loc, v * perVector)),
            size);
        return vector::TransferReadOp::create(b, loc, laneType, input,
                                              ValueRange{at}, pad,
                                              ArrayRef<bool>{false});
      };
      if (contiguous) {
        SmallVector<Value> tile;
        for (int64_t v = 0; v < n; ++v)
          tile.push_back(wholeRows(v));
        tile = kiln::conversion::transposeTile(b, loc, tile);
        for (int64_t k = 0; k < n; ++k)
          store(b, loc, tile[k], indexConstant(b, loc, k));
      }
      // Else each block of `lanes` elements of the rows, transposed into
      // the buffer.
      for (int64_t block = 0; block < blocks && !contiguous; ++block) {
        Value mask = blockMask(block);
        SmallVector<Value> tile;
        for (int64_t lane = 0; lane < lanes; ++lane) {
          if (input)
            tile.push_back(vector::TransferReadOp::create(
                b, loc, laneType, input,
                ValueRange{arith::AddIOp::create(
                    b, loc, arith::MulIOp::create(b, loc, inputRow(lane), size),
                    indexConstant(b, loc, block * lanes))},
                minorIdentity, pad, mask, b.getBoolArrayAttr({true})));
          else
            tile.push_back(vector::MaskedLoadOp::create(
                b, loc, laneType, rowMajor,
                ValueRange{indexConstant(b, loc, lane * n + block * lanes)},
                mask, zeros));
        }
        tile = kiln::conversion::transposeTile(b, loc, tile);
        for (int64_t k = 0; k < lanes && block * lanes + k < n; ++k)
          store(b, loc, tile[k], indexConstant(b, loc, block * lanes + k));
      }
      // The maximum on keys.
      using Max = ReductionCombiner<AmaxOp>;
      Type keyType = ExtremeKeys::keyType(laneType);
      Value lowest = arith::ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(cast<ShapedType>(keyType),
                                 ExtremeKeys::identity(b, floatType)));
      Value keys =
          overColumns(ValueRange{lowest},
                      [&](OpBuilder &nb, Location l, Value j, ValueRange now) {
                        return SmallVector<Value>{Max::combine(
                            nb, l, load(nb, l, j), now[0], /*keys=*/true)};
                      })[0];
      Value m = Max::result(b, loc, keys, laneType, /*keys=*/true);
      // The sum of exp(x - m), j in order (softmax keeps the exps).
      Value sum = overColumns(ValueRange{zeros}, [&](OpBuilder &nb, Location l,
                                                     Value j, ValueRange now) {
        Value e = math::ExpOp::create(
            nb, l, arith::SubFOp::create(nb, l, load(nb, l, j), m));
        if (!isLog)
          store(nb, l, e, j);
        return SmallVector<Value>{arith::AddFOp::create(nb, l, now[0], e)};
      })[0];
      Value s = isLog ? Value(math::LogOp::create(b, loc, sum))
                      : reciprocal(b, loc, sum);
      // The results in place.
      overColumns(ValueRange{}, [&](OpBuilder &nb, Location l, Value j,
                                    ValueRange) {
        // (softmax: v is exp(x - m) already)
        Value v = load(nb, l, j);
        Value result = isLog ? softmaxElement(nb, l, v, m, s, /*isLog=*/true)
                             : Value(arith::MulFOp::create(nb, l, v, s));
        store(nb, l, result, j);
        return SmallVector<Value>{};
      });
      // Each block transposed back into the group's rows in the row-major
      // buffer (whose rows past the group's end are not read).
      if (contiguous) {
        SmallVector<Value> tile;
        for (int64_t k = 0; k < n; ++k)
          tile.push_back(load(b, loc, indexConstant(b, loc, k)));
        tile = kiln::conversion::transposeTile(b, loc, tile);
        for (int64_t v = 0; v < n; ++v)
          vector::StoreOp::create(b, loc, tile[v], rowMajor,
                                  ValueRange{indexConstant(b, loc, v * lanes)});
      }
      for (int64_t block = 0; block < blocks && !contiguous; ++block) {
        SmallVector<Value> tile;
        for (int64_t k = 0; k < lanes; ++k)
          tile.push_back(
              block * lanes + k < n
                  ? load(b, loc, indexConstant(b, loc, block * lanes + k))
                  : zeros);
        tile = kiln::conversion::transposeTile(b, loc, tile);
        Value mask = blockMask(block);
        for (int64_t lane = 0; lane < lanes; ++lane)
          vector::MaskedStoreOp::create(
              b, loc, rowMajor,
              ValueRange{indexConstant(b, loc, lane * n + block * lanes)}, mask,
              tile[lane]);
      }
      // Then into the group's rows of each result, positions [first * n,
      // (first + count) * n) of the flat results (through a fused
      // epilogue).
      writeForallSlices(
          b, loc, forall, arith::MulIOp::create(b, loc, first, size), length,
          [&](OpBuilder &nb, Location l, Value p) {
            Value v = memref::LoadOp::create(nb, l, rowMajor, ValueRange{p});
            SmallVector<Value> indices;
            if (io.finish)
              indices = indicesAt(nb, l, p);
            return io.finishElement(nb, l, v, indices);
          });
      results.assign(forall.getResults().begin(), forall.getResults().end());
    }
    for (auto [result, resultType] : llvm::zip_equal(results, io.resultTypes))
      result = unflatten(b, loc, result, cast<RankedTensorType>(resultType));
    return results;
  }

  /// On the CPU, rows along the last dim that fit in cache: one
  /// scf.forall over the rows, each running the three passes over its row
  /// -- the maximum (order-free, vectorized), the sum of exp(x - m) in the
  /// lane order (buildLaneLoops, the same operations as the separate
  /// kernels), then a generic over the row computing exp(x - m) * (1 / s) (or
  /// x - m - log(s)) and the fused epilogue -- so the row comes from memory
  /// once instead of three times. Each row is one thread's, so the bits do
  /// not depend on the thread count.
  static SmallVector<Value> lowerCachedRows(OpBuilder &b, OpTy op,
                                            const KernelIO &io,
                                            RankedTensorType type, bool isLog) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank(), inner = rank - 1;
    int64_t n = type.getDimSize(inner);
    auto floatType = cast<FloatType>(type.getElementType());
    SmallVector<int64_t> grid(type.getShape().drop_back());
    SmallVector<Value> outputs = emptyTensors(b, loc, io.resultTypes);
    OpBuilder::InsertionGuard guard(b);
    SmallVector<Value> coords;
    scf::ForallOp forall = createGridForall(b, loc, grid, outputs, coords);
    SmallVector<Value> indices(coords);
    indices.push_back(Value());
    auto read = [&](OpBuilder &nb, Location l, ValueRange at) {
      return SmallVector<Value>{io.read(nb, l, at)};
    };
    // The maximum: exactly associative, so LLVM vectorizes the loop.
    Value m = reduceRow<AmaxOp>(b, loc, type, indices, read);
    MLIRContext *ctx = b.getContext();
    ResultRows rows(b, loc, forall, coords, io.resultTypes, n);
    SmallVector<Value> &rowInits = rows.inits;
    SmallVector<Type> &rowTypes = rows.types;
    AffineMap identity = AffineMap::getMultiDimIdentityMap(1, ctx);
    auto rowIndices = [&](OpBuilder &nb, Location l) {
      SmallVector<Value> at(coords);
      at.push_back(linalg::IndexOp::create(nb, l, 0));
      return at;
    };
    // softmax with one result of the input's type: exp(x - m) is computed
    // once, stored into the result's row (in cache), summed from there in
    // the lane order, then divided in place -- the same values as
    // computing it twice, and half the exps.
    if (!isLog && rowTypes.size() == 1 &&
        cast<RankedTensorType>(rowTypes[0]).getElementType() == floatType) {
      Value exps, s;
      NextRowPrefetch prefetch(b, loc, coords, grid, n, io.sources);
      std::tie(exps, s) = keepExpsInRow(
          b, loc, rowInits[0], m,
          [&](OpBuilder &nb, Location l, Value j) {
            SmallVector<Value> at(coords);
            at.push_back(j);
            return io.read(nb, l, at);
          },
          prefetch ? function_ref<void(OpBuilder &, Location, Value, int64_t)>(
                         prefetch)
                   : nullptr);
      Value row =
          linalg::GenericOp::create(
              b, loc, rowTypes, ValueRange{exps}, ValueRange{exps},
              {identity, identity}, parallelIterators(1),
              [&](OpBuilder &nb, Location l, ValueRange args) {
                Value result = arith::MulFOp::create(nb, l, args[0], s);
                linalg::YieldOp::create(
                    nb, l, io.finishElement(nb, l, result, rowIndices(nb, l)));
              })
              .getResult(0);
      return rows.finish(b, loc, forall, ValueRange{row});
    }
    // Otherwise the sum of exp(x - m) in the lane order, then each result
    // element from the input again.
    NextRowPrefetch prefetch(b, loc, coords, grid, n, io.sources);
    Value s = rowExpSum(b, loc, type, indices, read, m, isLog,
                        prefetch ? lanePrefetch(prefetch) : nullptr);
    SmallVector<AffineMap> maps(rowInits.size(), identity);
    auto generic = linalg::GenericOp::create(
        b, loc, rowTypes, ValueRange{}, rowInits, maps, parallelIterators(1),
        [&](OpBuilder &nb, Location l, ValueRange) {
          SmallVector<Value> at = rowIndices(nb, l);
          Value result = softmaxElement(nb, l, io.read(nb, l, at), m, s, isLog);
          linalg::YieldOp::create(nb, l, io.finishElement(nb, l, result, at));
        });
    return rows.finish(b, loc, forall, generic.getResults());
  }

  /// On the CPU, over a middle dim `dim` (kept dims after it): an
  /// scf.forall over the tiles -- the `n` rows of `dim` by a block of
  /// `block` columns of the last dim (kiln::conversion::packedTileBlock), at
  /// each position of the other dims. A tile's rows lie a row of the dims after
  /// `dim` apart in memory; at a stride of a multiple of 4 KB they share the
  /// cache's sets and evict each other between passes. So the first pass reads
  /// the input once (a fused producer chain evaluated once per element) into a
  /// contiguous scratch tile while taking each column's maximum m -- each row
  /// first prefetching the row kColumnPrefetchRows ahead where rows lie
  /// kColumnPrefetchMinStride bytes or more apart (a stored input's copy,
  /// which LLVM makes a memcpy call per row, had waited on memory: 8x21x256x256
  /// f32 over dim 1 on a Zen 3, 1 thread, 15.7-18.1 -> 9.8-14.4 ms) --, the
  /// second replaces it by exp(x - m) (softmax; log_softmax keeps x) and adds
  /// those into 32 lanes by row (laneOf), merged per column in the fixed tree
  /// -- the column reduction's order, so the bits of the three-kernel form --
  /// into 1 / s (or log s); the third writes the result tile. f32 at 1 / 2
  /// threads, the three kernels against the tiles: 8x21x256x256 over dim 1
  /// 12-16 / 7-9 -> 6-8 / 4 ms (tiles of 21 x 128), 256x256x256 over dim 0
  /// 58-71 / 30-37 -> 8.6 / 5-6 (256 x 128), over dim 1 30-40 / 17-22 ->
  /// 7-9.6 / 5.7-6.
  static SmallVector<Value> lowerPackedColumns(OpBuilder &b, OpTy op,
                                               const KernelIO &io,
                                               RankedTensorType type,
                                               int64_t dim, int64_t block,
                                               bool isLog) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank(), last = rank - 1;
    int64_t n = type.getDimSize(dim);
    auto floatType = cast<FloatType>(type.getElementType());
    SmallVector<int64_t> grid;
    for (int64_t d = 0; d < last; ++d)
      if (d != dim)
        grid.push_back(type.getDimSize(d));
    grid.push_back(type.getDimSize(last) / block);
    SmallVector<Value> outputs = emptyTensors(b, loc, io.resultTypes);
    // The first pass reads the tile's rows kColumnPrefetchRows ahead, a line
    // at a time, as the column reductions do, where they lie far enough
    // apart that the hardware's stream prefetch does not follow them.
    int64_t elementBytes = floatType.getWidth() / 8;
    ElementPrefetch prefetch;
    if (elementBytes *
            ShapedType::getNumElements(type.getShape().drop_front(dim + 1)) >=
        kColumnPrefetchMinStride) {
      prefetch = io.elementPrefetch(b, loc);
      // A fused chain's stored operands of the input's shape (at most
      // kMaxPrefetchedInputs), which the chain reads at the element's
      // position.
      if (!prefetch) {
        SmallVector<Value> buffers;
        for (Value source : io.sources)
          if (tensorType(source).getShape() == type.getShape() &&
              buffers.size() < kMaxPrefetchedInputs)
            buffers.push_back(readOnlyBuffer(b, loc, source));
        prefetch = ElementPrefetch::ofBuffers(std::move(buffers));
      }
    }
    OpBuilder::InsertionGuard guard(b);
    SmallVector<Value> coords;
    scf::ForallOp forall = createGridForall(b, loc, grid, outputs, coords);
    Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
    Value rows = indexConstant(b, loc, n), width = indexConstant(b, loc, block);
    Value first = arith::MulIOp::create(b, loc, coords.back(), width);
    // The input (and result) position of the tile's element (c, j).
    auto at = [&](OpBuilder &nb, Location l, Value c, Value j) {
      SmallVector<Value> indices;
      for (int64_t d = 0, k = 0; d < last; ++d)
        indices.push_back(d == dim ? c : coords[k++]);
      indices.push_back(arith::AddIOp::create(nb, l, first, j));
      return indices;
    };
    // Loops over the tile's rows (outside) and columns (inside, which LLVM
    // vectorizes), carrying `carried`; `beforeRow` first at each row.
    using Body = function_ref<SmallVector<Value>(OpBuilder &, Location, Value,
                                                 Value, ValueRange)>;
    using RowStart = function_ref<void(OpBuilder &, Location, Value)>;
    auto overTile = [&](ValueRange carried, Body body,
                        RowStart beforeRow = nullptr) {
      auto rowLoop = scf::ForOp::create(
          b, loc, zero, rows, one, carried,
          [&](OpBuilder &rb, Location rl, Value c, ValueRange rowCarried) {
            if (beforeRow)
              beforeRow(rb, rl, c);
            auto columnLoop = scf::ForOp::create(
                rb, rl, zero, width, one, rowCarried,
                [&](OpBuilder &cb, Location cl, Value j, ValueRange now) {
                  scf::YieldOp::create(cb, cl, body(cb, cl, c, j, now));
                });
            scf::YieldOp::create(rb, rl, columnLoop.getResults());
          });
      return SmallVector<Value>(rowLoop.getResults());
    };
    auto overColumns =
        [&](Value into,
            function_ref<Value(OpBuilder &, Location, Value)> value) {
          auto loop = scf::ForOp::create(
              b, loc, zero, width, one, ValueRange{into},
              [&](OpBuilder &cb, Location cl, Value j, ValueRange now) {
                scf::YieldOp::create(cb, cl,
                                     Value(tensor::InsertOp::create(
                                         cb, cl, value(cb, cl, j), now[0], j)));
              });
          return loop.getResult(0);
        };
    auto rowType = RankedTensorType::get({block}, floatType);
    // Pass 1: the tile into `packed`, each column's maximum into `keysRow`.
    using Max = ReductionCombiner<AmaxOp>;
    bool keys = Max::usesKeys(b, floatType);
    TypedAttr lowest = Max::identity(b, floatType, keys);
    Value packed =
        tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{n, block}, floatType);
    Value keysRow = filledTensor(
        b, loc, RankedTensorType::get({block}, lowest.getType()), lowest);
    SmallVector<Value> firstPass = overTile(
        ValueRange{packed, keysRow},
        [&](OpBuilder &nb, Location l, Value c, Value j, ValueRange now) {
          Value x = io.read(nb, l, at(nb, l, c, j));
          Value old = tensor::ExtractOp::create(nb, l, now[1], j);
          return SmallVector<Value>{
              tensor::InsertOp::create(nb, l, x, now[0], ValueRange{c, j}),
              tensor::InsertOp::create(nb, l, Max::combine(nb, l, x, old, keys),
                                       now[1], j)};
        },
        prefetch ? RowStart([&](OpBuilder &pb, Location pl, Value c) {
          Value ahead = arith::MinUIOp::create(
              pb, pl,
              arith::AddIOp::create(pb, pl, c,
                                    indexConstant(pb, pl, kColumnPrefetchRows)),
              indexConstant(pb, pl, n - 1));
          for (int64_t k = 0; k < block;
               k += elementsPerLine(floatType.getWidth()))
            prefetch(pb, pl, at(pb, pl, ahead, indexConstant(pb, pl, k)));
        })
                 : RowStart());
    packed = firstPass[0];
    Value m = overColumns(
        tensor::EmptyOp::create(b, loc, rowType.getShape(), floatType),
        [&](OpBuilder &nb, Location l, Value j) {
          return Max::result(nb, l,
                             tensor::ExtractOp::create(nb, l, firstPass[1], j),
                             floatType, keys);
        });
    // Pass 2: exp(x - m) into the lanes (and, for softmax, the tile).
    int64_t laneCount = spreadsOverLanes(n) ? kReductionLanes : 1;
    Value lanes = filledTensor(
        b, loc, RankedTensorType::get({laneCount, block}, floatType),
        b.getFloatAttr(floatType, 0.0));
    SmallVector<Value> secondPass = overTile(
        ValueRange{packed, lanes},
        [&](OpBuilder &nb, Location l, Value c, Value j, ValueRange now) {
          Value x = tensor::ExtractOp::create(nb, l, now[0], ValueRange{c, j});
          Value e = math::ExpOp::create(
              nb, l,
              arith::SubFOp::create(nb, l, x,
                                    tensor::ExtractOp::create(nb, l, m, j)));
          Value lane = laneOf(nb, l, c, n);
          Value old =
              tensor::ExtractOp::create(nb, l, now[1], ValueRange{lane, j});
          return SmallVector<Value>{
              isLog ? now[0]
                    : Value(tensor::InsertOp::create(nb, l, e, now[0],
                                                     ValueRange{c, j})),
              tensor::InsertOp::create(nb, l,
                                       arith::AddFOp::create(nb, l, old, e),
                                       now[1], ValueRange{lane, j})};
        });
    LaneReduction sum = ReductionCombiner<SumOp>::laneReduction(false);
    Value s = overColumns(
        tensor::EmptyOp::create(b, loc, rowType.getShape(), floatType),
        [&](OpBuilder &nb, Location l, Value j) {
          Value total =
              mergeColumnLanes(nb, l, secondPass[1], j, laneCount, &sum);
          return isLog ? Value(math::LogOp::create(nb, l, total))
                       : reciprocal(nb, l, total);
        });
    // Pass 3: the result tiles, slices of the shared outputs.
    SmallVector<OpFoldResult> offsets, sizes, strides(rank, b.getIndexAttr(1));
    for (int64_t d = 0, k = 0; d < last; ++d) {
      offsets.push_back(d == dim ? OpFoldResult(b.getIndexAttr(0))
                                 : OpFoldResult(coords[k++]));
      sizes.push_back(b.getIndexAttr(d == dim ? n : 1));
    }
    offsets.push_back(first);
    sizes.push_back(b.getIndexAttr(block));
    SmallVector<Value> tiles;
    for (auto [resultType, shared] :
         llvm::zip_equal(io.resultTypes, forall.getRegionIterArgs()))
      tiles.push_back(tensor::ExtractSliceOp::create(
          b, loc,
          RankedTensorType::get(
              {n, block}, cast<RankedTensorType>(resultType).getElementType()),
          shared, offsets, sizes, strides));
    Value tile = secondPass[0];
    tiles = overTile(tiles, [&](OpBuilder &nb, Location l, Value c, Value j,
                                ValueRange now) {
      Value v = tensor::ExtractOp::create(nb, l, tile, ValueRange{c, j});
      Value sj = tensor::ExtractOp::create(nb, l, s, j);
      Value result =
          isLog ? softmaxElement(nb, l, v,
                                 tensor::ExtractOp::create(nb, l, m, j), sj,
                                 /*isLog=*/true)
                : Value(arith::MulFOp::create(nb, l, v, sj));
      SmallVector<Value> values =
          io.finishElement(nb, l, result, at(nb, l, c, j));
      SmallVector<Value> updated;
      for (auto [value, into] : llvm::zip_equal(values, now))
        updated.push_back(
            tensor::InsertOp::create(nb, l, value, into, ValueRange{c, j}));
      return updated;
    });
    OpBuilder::InsertionGuard terminatorGuard(b);
    b.setInsertionPointToStart(forall.getTerminator().getBody());
    for (auto [part, shared] :
         llvm::zip_equal(tiles, forall.getRegionIterArgs()))
      tensor::ParallelInsertSliceOp::create(b, loc, part, shared, offsets,
                                            sizes, strides);
    return SmallVector<Value>(forall.getResults());
  }

  /// On the GPU, f32 rows along the last dim: one pass of the runtime's
  /// row kernel (a block per row keeps a running maximum and sum, then
  /// writes the row). A fused producer chain is evaluated into a buffer
  /// first, a fused epilogue applied after.
  static SmallVector<Value> lowerGpuRows(OpBuilder &b, OpTy op,
                                         const KernelIO &io,
                                         RankedTensorType type, bool isLog) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank();
    MLIRContext *ctx = b.getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
    Value input = io.stored;
    if (!input)
      input = buildIndexedGeneric(
          b, loc, type, [&](OpBuilder &nb, Location l, ValueRange ivs) {
            return io.read(nb, l, ivs);
          });
    auto unranked = UnrankedMemRefType::get(type.getElementType(), 0);
    func::FuncOp fn = getOrDeclareRuntimeFunc(
        op, "kiln_rt_softmax_f32",
        FunctionType::get(ctx, {unranked, unranked, b.getI1Type()}, {}), b);
    Value in = asUnrankedBuffer(b, loc, input);
    auto [buffer, out] = allocOutput(b, loc, type);
    func::CallOp::create(
        b, loc, fn,
        ValueRange{in, out, arith::ConstantIntOp::create(b, loc, isLog, 1)});
    Value result = asTensor(b, loc, buffer, type);
    if (!io.finish)
      return {result};
    SmallVector<Value> inits = emptyTensors(b, loc, io.resultTypes);
    auto epilogue = linalg::GenericOp::create(
        b, loc, io.resultTypes, ValueRange{}, inits,
        SmallVector<AffineMap>(inits.size(), identity), parallelIterators(rank),
        [&](OpBuilder &nb, Location l, ValueRange) {
          SmallVector<Value> ivs = loopIndices(nb, l, rank);
          Value element = tensor::ExtractOp::create(nb, l, result, ivs);
          linalg::YieldOp::create(nb, l, io.finishElement(nb, l, element, ivs));
        });
    return SmallVector<Value>(epilogue.getResults());
  }

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op,
                       lower(rewriter, op, KernelIO::plain(op, op.getInput())));
    return success();
  }
};

} // namespace

SmallVector<Value> lowerSoftmaxKernel(OpBuilder &b, Operation *op,
                                      const KernelIO &io) {
  if (auto logSoftmax = dyn_cast<LogSoftmaxOp>(op))
    return LowerSoftmax<LogSoftmaxOp>::lower(b, logSoftmax, io);
  return LowerSoftmax<SoftmaxOp>::lower(b, cast<SoftmaxOp>(op), io);
}

void populateSoftmaxPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerSoftmax<SoftmaxOp>, LowerSoftmax<LogSoftmaxOp>>(
      patterns.getContext());
}

} // namespace kiln::lowering
