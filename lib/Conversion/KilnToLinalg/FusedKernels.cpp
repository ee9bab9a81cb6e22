//===- FusedKernels.cpp - kiln.fused: one kernel per group ----------------===//
//
// Elementwise groups, anchors with fused producers and epilogues, runtime
// kernels reading a fused chain by tiles, row groups and column groups.
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

/// Evaluates the values of a kiln.fused region at one position of an
/// iteration space: operands are loaded (broadcast into the space), splat
/// constants become scalars, elementwise ops build their scalar arithmetic.
class FusedEvaluator {
public:
  explicit FusedEvaluator(FusedOp op) : op(op) {}

  /// How a row group computes a value no scalar op defines (a softmax's
  /// element from its row's maximum and sum), at `indices`.
  using RowRule = std::function<Value(OpBuilder &, Location, ValueRange,
                                      DenseMap<Value, Value> &)>;
  DenseMap<Value, RowRule> rowRules;

  /// `v` at `indices` of a loop nest over `space` (v's shape broadcasts to
  /// it). `memo` caches values per position.
  Value eval(OpBuilder &b, Location loc, Value v, RankedTensorType space,
             ValueRange indices, DenseMap<Value, Value> &memo) const {
    if (Value known = memo.lookup(v))
      return known;
    Value result;
    if (isa<BlockArgument>(v)) {
      result = readStored(
          b, loc, v, broadcastPosition(b, loc, tensorType(v), space, indices));
    } else {
      Operation *def = v.getDefiningOp();
      Attribute value;
      auto rule = rowRules.find(v);
      if (rule != rowRules.end()) {
        result = rule->second(b, loc, indices, memo);
      } else if (matchPattern(v, m_Constant(&value))) {
        result = arith::ConstantOp::create(
            b, loc, cast<DenseElementsAttr>(value).getSplatValue<TypedAttr>());
      } else if (auto read = dyn_cast<IndexedReadOpInterface>(def)) {
        // An indexed read of stored operands (its indices were checked
        // before the kernel): the selected input element, read in place.
        RankedTensorType inputType = tensorType(def->getOperand(0));
        if (inputType.getNumElements() == 0) { // every index was reported
          result = arith::ConstantOp::create(
              b, loc, getScalarAttr(b, inputType.getElementType(), 0.0));
        } else {
          result = readStored(b, loc, def->getOperand(0),
                              selectedPosition(b, loc, read, space, indices));
        }
      } else if (auto view = dyn_cast<ViewOpInterface>(def)) {
        // A view: the chain below it at the operand's position, evaluated
        // apart (its values at other positions than this space's).
        Value source = def->getOperand(0);
        DenseMap<Value, Value> sourceMemo;
        result = eval(b, loc, source, tensorType(source),
                      sourcePosition(b, loc, view, space, indices), sourceMemo);
      } else {
        auto scalarOp = cast<ScalarOpInterface>(def);
        SmallVector<Value> operands;
        for (Value operand : def->getOperands())
          operands.push_back(eval(b, loc, operand, space, indices, memo));
        result = scalarOp.buildScalar(b, loc, operands,
                                      tensorType(v).getElementType());
      }
    }
    memo[v] = result;
    return result;
  }

  /// The position in a value of `type` (which broadcasts to `space`) that
  /// position `indices` of `space` reads.
  static SmallVector<Value> broadcastPosition(OpBuilder &b, Location loc,
                                              RankedTensorType type,
                                              RankedTensorType space,
                                              ValueRange indices) {
    int64_t offset = space.getRank() - type.getRank();
    SmallVector<Value> at;
    for (int64_t d = 0; d < type.getRank(); ++d)
      at.push_back(type.getDimSize(d) == 1 && space.getDimSize(offset + d) != 1
                       ? indexConstant(b, loc, 0)
                       : indices[offset + d]);
    return at;
  }

  /// The position in its operand that the view `view` reads for position
  /// `indices` of a loop over `space` (its result broadcasts to `space`).
  static SmallVector<Value> sourcePosition(OpBuilder &b, Location loc,
                                           ViewOpInterface view,
                                           RankedTensorType space,
                                           ValueRange indices) {
    return view.buildSourcePosition(
        b, loc,
        broadcastPosition(b, loc, tensorType(view->getResult(0)), space,
                          indices));
  }

  /// The position in its input that the indexed read `read` (of stored
  /// operands) selects for position `indices` of a loop over `space` (its
  /// result broadcasts to `space`): its index element read there.
  SmallVector<Value> selectedPosition(OpBuilder &b, Location loc,
                                      IndexedReadOpInterface read,
                                      RankedTensorType space,
                                      ValueRange indices) const {
    SmallVector<Value> at = broadcastPosition(
        b, loc, tensorType(read->getResult(0)), space, indices);
    Value index = readStored(b, loc, read->getOperand(1),
                             read.buildIndexPosition(b, loc, at));
    return read.buildInputPosition(b, loc, at, index);
  }

  /// What a kernel reading `v` over `space` prefetches (ElementPrefetch)
  /// when `v`'s chain holds an indexed read: the inputs of its indexed
  /// reads and the block arguments of `space`'s shape it reads (of a
  /// view's operand's shape below a view; broadcast ones are small and
  /// stay in cache), at most kMaxPrefetchedInputs of
  /// them; their read-only buffers are made at `b`'s place, before the
  /// kernel. Empty otherwise.
  ElementPrefetch prefetcher(OpBuilder &b, Location loc, Value v,
                             RankedTensorType space) const {
    // What is read, and the views between `v` and it (outermost first):
    // a read under a view is prefetched at the view's source position.
    struct Read {
      Value value; // a block argument or an indexed read's result
      SmallVector<ViewOpInterface> views;
    };
    SmallVector<Read> reads;
    llvm::SmallPtrSet<Value, 8> seen;
    SmallVector<Read> work{{v, {}}};
    while (!work.empty() &&
           static_cast<int64_t>(reads.size()) < kMaxPrefetchedInputs) {
      Read current = work.pop_back_val();
      if (!seen.insert(current.value).second || rowRules.count(current.value))
        continue;
      RankedTensorType at =
          current.views.empty()
              ? space
              : tensorType(current.views.back()->getOperand(0));
      if (isa<BlockArgument>(current.value)) {
        if (tensorType(current.value).getShape() == at.getShape())
          reads.push_back(current);
        continue;
      }
      Operation *def = current.value.getDefiningOp();
      if (isa<IndexedReadOpInterface>(def)) {
        if (isa<BlockArgument>(def->getOperand(0)) &&
            tensorType(def->getOperand(0)).getNumElements() > 0)
          reads.push_back(current);
        continue;
      }
      if (auto view = dyn_cast<ViewOpInterface>(def)) {
        Read below{def->getOperand(0), current.views};
        below.views.push_back(view);
        work.push_back(std::move(below));
        continue;
      }
      if (isa<ScalarOpInterface>(def))
        for (Value operand : def->getOperands())
          work.push_back({operand, current.views});
    }
    // Without an indexed read the chain's loads follow the input's layout;
    // prefetching them as well measured faster for a product x * y summed
    // over dim 0 (65536x256 f32: 3.9 -> 3.2 ms) but slower where the
    // chain's arithmetic bounds the kernel (the amax of exp(x): 2.8 ->
    // 3.1), so such chains do not.
    bool scattered = llvm::any_of(reads, [](const Read &read) {
      return !isa<BlockArgument>(read.value);
    });
    if (!scattered)
      return {};
    SmallVector<Value> buffers;
    for (const Read &read : reads) {
      Value stored = isa<BlockArgument>(read.value)
                         ? read.value
                         : read.value.getDefiningOp()->getOperand(0);
      buffers.push_back(readOnlyBuffer(
          b, loc, op.getInputs()[cast<BlockArgument>(stored).getArgNumber()]));
    }
    return {[this, reads, buffers, space](OpBuilder &nb, Location l,
                                          ValueRange indices) {
              for (auto [read, buffer] : llvm::zip_equal(reads, buffers)) {
                RankedTensorType readSpace = space;
                SmallVector<Value> readIndices(indices);
                for (ViewOpInterface view : read.views) {
                  readIndices =
                      sourcePosition(nb, l, view, readSpace, readIndices);
                  readSpace = tensorType(view->getOperand(0));
                }
                auto indexed = dyn_cast_or_null<IndexedReadOpInterface>(
                    read.value.getDefiningOp());
                SmallVector<Value> at =
                    indexed ? selectedPosition(nb, l, indexed, readSpace,
                                               readIndices)
                            : broadcastPosition(nb, l, tensorType(read.value),
                                                readSpace, readIndices);
                memref::PrefetchOp::create(nb, l, buffer, at, /*isWrite=*/false,
                                           /*localityHint=*/3,
                                           /*isDataCache=*/true);
              }
            },
            scattered};
  }

  /// The element at `at` of `inner`, a block argument (the group's operand,
  /// as stored) or a splat constant.
  Value readStored(OpBuilder &b, Location loc, Value inner,
                   ValueRange at) const {
    if (auto arg = dyn_cast<BlockArgument>(inner))
      return tensor::ExtractOp::create(b, loc,
                                       op.getInputs()[arg.getArgNumber()], at);
    Attribute value;
    if (!matchPattern(inner, m_Constant(&value)))
      llvm_unreachable("the verifier allows only block arguments and splat "
                       "constants here");
    return arith::ConstantOp::create(
        b, loc, cast<DenseElementsAttr>(value).getSplatValue<TypedAttr>());
  }

  mutable FusedOp op;
};

/// Bytes of fused input a runtime kernel consumes per tile: the tile is
/// computed right before the kernel reads it and stays in cache.
constexpr int64_t kRuntimeTileBytes = 4 << 20;

/// A runtime kernel (topk, kthvalue, max/min, argmax/argmin) whose input is
/// a fused producer chain: the chain is evaluated into one tile of whole
/// rows at a time (a parallel generic, ~kRuntimeTileBytes), and the kernel
/// runs on the tile while it is in cache; its results go to their place in
/// the full results. Tiles split the outermost dim that is not the kernel's
/// dim, so each kernel call sees complete rows and the results are the
/// same as one call on the whole input. A 1-D input (or a flattened argmax)
/// is one tile.
SmallVector<Value> lowerFusedRuntimeKernel(OpBuilder &b, Operation *anchor,
                                           const RuntimeKernel &kernel,
                                           const FusedEvaluator &evaluator) {
  Location loc = anchor->getLoc();
  Value input = anchor->getOperand(0);
  RankedTensorType inputType = tensorType(input);
  int64_t rank = inputType.getRank();
  std::optional<int64_t> tileDim;
  // Tiles keep the CPU's materialized input in cache; the GPU takes it
  // whole.
  if (!kernel.flatten && !isGpuTarget(b))
    for (int64_t d = 0; d < rank; ++d)
      if (d != kernel.dim && inputType.getDimSize(d) > 1) {
        tileDim = d;
        break;
      }
  int64_t extent = tileDim ? inputType.getDimSize(*tileDim) : 1;
  int64_t sliceBytes =
      std::max<int64_t>(1, inputType.getNumElements() /
                               std::max<int64_t>(extent, 1)) *
      std::max<int64_t>(1, inputType.getElementTypeBitWidth() / 8);
  // The largest divisor of the extent that keeps a tile within budget, so
  // every tile has the same static shape.
  int64_t rows = extent;
  if (tileDim) {
    rows = 1;
    for (int64_t r = extent; r >= 1; --r)
      if (extent % r == 0 && r * sliceBytes <= kRuntimeTileBytes) {
        rows = r;
        break;
      }
  }
  auto evaluateTile = [&](OpBuilder &tb, Location tl, RankedTensorType tileType,
                          Value offset) {
    Value init = emptyTensor(tb, tl, tileType);
    auto generic = linalg::GenericOp::create(
        tb, tl, TypeRange{tileType}, ValueRange{}, ValueRange{init},
        SmallVector<AffineMap>{
            AffineMap::getMultiDimIdentityMap(rank, tb.getContext())},
        parallelIterators(rank), [&](OpBuilder &nb, Location l, ValueRange) {
          SmallVector<Value> ivs = loopIndices(nb, l, rank);
          if (offset)
            ivs[*tileDim] = arith::AddIOp::create(nb, l, ivs[*tileDim], offset);
          DenseMap<Value, Value> memo;
          linalg::YieldOp::create(
              nb, l, evaluator.eval(nb, l, input, inputType, ivs, memo));
        });
    return generic.getResult(0);
  };
  auto takeResults = [&](ArrayRef<Value> values) {
    return SmallVector<Value>(values.take_back(anchor->getNumResults()));
  };
  if (!tileDim || rows == extent) {
    remarkKernel(b, loc,
                 "fused {0}: the producer chain is evaluated whole ({1} "
                 "bytes) before the runtime kernel reads it",
                 anchor->getName().getStringRef(), sliceBytes * extent);
    Value whole = evaluateTile(b, loc, inputType, Value());
    return takeResults(emitRuntimeCall(b, anchor, loc, kernel.name, whole,
                                       kernel.resultTypes, kernel.k, kernel.dim,
                                       kernel.flag0, kernel.flag1));
  }
  remarkKernel(b, loc,
               "fused {0}: the producer chain is evaluated into {1} tiles of "
               "{2} along dim {3} ({4} bytes each), and the runtime kernel "
               "reads each while it is in cache",
               anchor->getName().getStringRef(), extent / rows, rows, *tileDim,
               rows * sliceBytes);
  // The tiled dim's position in the results.
  int64_t resultDim =
      (kernel.dimKept || *tileDim < kernel.dim) ? *tileDim : *tileDim - 1;
  SmallVector<int64_t> tileShape(inputType.getShape());
  tileShape[*tileDim] = rows;
  auto tileType = RankedTensorType::get(tileShape, inputType.getElementType());
  SmallVector<Type> tileResultTypes;
  SmallVector<Value> fullResults;
  for (Type t : kernel.resultTypes) {
    auto type = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(type.getShape());
    shape[resultDim] = rows;
    tileResultTypes.push_back(
        RankedTensorType::get(shape, type.getElementType()));
    fullResults.push_back(emptyTensor(b, loc, type));
  }
  auto loop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), indexConstant(b, loc, extent / rows),
      indexConstant(b, loc, 1), fullResults,
      [&](OpBuilder &lb, Location l, Value tile, ValueRange acc) {
        Value offset =
            arith::MulIOp::create(lb, l, tile, indexConstant(lb, l, rows));
        Value tileInput = evaluateTile(lb, l, tileType, offset);
        SmallVector<Value> tileResults = emitRuntimeCall(
            lb, anchor, l, kernel.name, tileInput, tileResultTypes, kernel.k,
            kernel.dim, kernel.flag0, kernel.flag1);
        SmallVector<Value> updated;
        for (auto [part, full] : llvm::zip_equal(tileResults, acc)) {
          auto partType = tensorType(part);
          SmallVector<OpFoldResult> offsets(partType.getRank(),
                                            lb.getIndexAttr(0));
          offsets[resultDim] = offset;
          SmallVector<OpFoldResult> sizes,
              strides(partType.getRank(), lb.getIndexAttr(1));
          for (int64_t size : partType.getShape())
            sizes.push_back(lb.getIndexAttr(size));
          updated.push_back(tensor::InsertSliceOp::create(
              lb, l, part, full, offsets, sizes, strides));
        }
        scf::YieldOp::create(lb, l, updated);
      });
  return takeResults(SmallVector<Value>(loop.getResults()));
}

/// A row group (kiln-fuse-elementwise{row-groups}): reductions over the
/// last dims (one, or the runs FusedOp::collapseRowDims leaves) whose
/// results the elementwise chain broadcasts back over the same rows. One
/// scf.forall over the rows; each row computes its reductions in program
/// order (each reading its input chain, which may use the earlier ones'
/// results; over the row's elements as one run, the order of the
/// reduction kernels, which coalesce those dims), then the chain, a loop
/// per row dim, into its slice of the results -- the row read from memory
/// once, its other passes from cache.
FailureOr<SmallVector<Value>> lowerRowGroup(OpBuilder &b, FusedOp op,
                                            FusedEvaluator &evaluator) {
  Location loc = op.getLoc();
  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  // The rows' type: the input of the group's reductions; a row spans its
  // last `run` dims (`row`), `n` elements.
  RankedTensorType space = op.getRowType();
  ArrayRef<int64_t> rowShape = space.getShape();
  int64_t run = op.getRowDims();
  ArrayRef<int64_t> row = rowShape.take_back(run);
  int64_t rank = rowShape.size(), n = ShapedType::getNumElements(row);
  SmallVector<int64_t> grid(rowShape.drop_back(run));
  // Results of the rows' shape (`full`, written row by row by the chain)
  // and per-row results (one element per row).
  SmallVector<int64_t> full, perRow;
  for (auto [i, result] : llvm::enumerate(op.getResults()))
    (tensorType(result).getShape() == rowShape ? full : perRow).push_back(i);
  SmallVector<Value> outputs = emptyTensors(b, loc, op.getResultTypes());
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Value> coords;
  scf::ForallOp forall = createGridForall(b, loc, grid, outputs, coords);
  // The row's slice of each full result, written in place.
  SmallVector<Type> fullTypes;
  SmallVector<Value> fullShared;
  for (int64_t i : full) {
    fullTypes.push_back(op.getResult(i).getType());
    fullShared.push_back(forall.getRegionIterArgs()[i]);
  }
  ResultRows rows(b, loc, fullShared, coords, fullTypes, row);
  // A softmax whose exps are kept in a result's row (the first of its
  // element type and the rows' shape): computed once, read back from cache
  // by the later passes and overwritten in place by the last one.
  Value keptSoftmax, keptSum;
  int64_t keptRow = -1; // the result whose row holds them
  // Each reduction's value for this row.
  DenseMap<Value, Value> rowValues;
  int64_t rowOps = 0;
  // The next row of the group's operands is prefetched in one pass over
  // the row: the last softmax or float sum/product (a lane loop), which
  // runs on the row in cache when an earlier pass brought it in.
  // (reduceRow takes a prefetch only where the reduction needs lanes.)
  auto runsLanes = [](Operation &inner) {
    if (!isa<SumOp, ProdOp>(inner))
      return false;
    Type elementType = tensorType(inner.getOperand(0)).getElementType();
    return isa<SumOp>(inner)
               ? ReductionCombiner<SumOp>::needsLanes(elementType)
               : ReductionCombiner<ProdOp>::needsLanes(elementType);
  };
  Operation *prefetchAt = nullptr;
  for (Operation &inner : body.without_terminator())
    if (isa<SoftmaxOp, LogSoftmaxOp>(inner) || runsLanes(inner))
      prefetchAt = &inner;
  NextRowPrefetch nextRow(b, loc, coords, grid, n,
                          prefetchAt ? ValueRange(op.getInputs())
                                     : ValueRange{});
  auto prefetchIn = [&](Operation &inner) {
    return &inner == prefetchAt && nextRow;
  };
  for (Operation &inner : body.without_terminator()) {
    bool isLog = isa<LogSoftmaxOp>(inner);
    if (!inner.hasTrait<kiln::OpTrait::Reduction>() &&
        !isa<SoftmaxOp, LogSoftmaxOp>(inner))
      continue;
    ++rowOps;
    Value input = inner.getOperand(0);
    RankedTensorType inputType = tensorType(input);
    // The row as one run of its n elements, as the reduction kernels
    // reduce it (their order; they coalesce the row's dims): position j
    // read at the row dims' positions it stands for.
    SmallVector<int64_t> flatShape(grid);
    flatShape.push_back(n);
    auto flatType =
        RankedTensorType::get(flatShape, inputType.getElementType());
    SmallVector<Value> indices(coords);
    indices.push_back(Value());
    auto read = [&](OpBuilder &nb, Location l, ValueRange at) {
      SmallVector<Value> position(at.drop_back());
      if (run == 1)
        position.push_back(at.back());
      else
        llvm::append_range(position, delinearizeIndex(nb, l, at.back(), row));
      DenseMap<Value, Value> memo(rowValues);
      return SmallVector<Value>{
          evaluator.eval(nb, l, input, inputType, position, memo)};
    };
    if (isa<SoftmaxOp, LogSoftmaxOp>(inner)) {
      // The row's maximum m and sum s of exp(x - m), in the operations and
      // order of softmax's kernels; its elements, exp(x - m) * (1 / s) (or
      // x - m - log(s)), where the chain reads them.
      auto floatType = cast<FloatType>(inputType.getElementType());
      Value m = reduceRow<AmaxOp>(b, loc, inputType, indices, read);
      // The row of the first result of the rows' shape and the softmax's
      // type holds them (the chain overwrites it last, each element after
      // reading it).
      auto scratch = llvm::find_if(rows.types, [&](Type type) {
        return cast<RankedTensorType>(type).getElementType() == floatType;
      });
      if (!isLog && !keptSoftmax && scratch != rows.types.end()) {
        keptRow = std::distance(rows.types.begin(), scratch);
        Value exps, s;
        std::tie(exps, s) = keepExpsInRow(
            b, loc, rows.inits[keptRow], m,
            [&](OpBuilder &nb, Location l, Value j) {
              SmallVector<Value> at(coords);
              at.push_back(j);
              DenseMap<Value, Value> memo(rowValues);
              return evaluator.eval(nb, l, input, inputType, at, memo);
            },
            prefetchIn(inner)
                ? function_ref<void(OpBuilder &, Location, Value, int64_t)>(
                      nextRow)
                : nullptr);
        evaluator.rowRules[inner.getResult(0)] =
            [exps, s](OpBuilder &nb, Location l, ValueRange at,
                      DenseMap<Value, Value> &) {
              Value e = tensor::ExtractOp::create(nb, l, exps, at.back());
              return Value(arith::MulFOp::create(nb, l, e, s));
            };
        rows.inits[keptRow] = exps;
        keptSoftmax = inner.getResult(0);
        keptSum = s;
        continue;
      }
      Value s = rowExpSum(b, loc, inputType, indices, read, m, isLog,
                          prefetchIn(inner) ? lanePrefetch(nextRow) : nullptr);
      evaluator.rowRules[inner.getResult(0)] =
          [&evaluator, input, inputType, m, s,
           isLog](OpBuilder &nb, Location l, ValueRange at,
                  DenseMap<Value, Value> &memo) {
            return softmaxElement(
                nb, l, evaluator.eval(nb, l, input, inputType, at, memo), m, s,
                isLog);
          };
      continue;
    }
    Value value =
        llvm::TypeSwitch<Operation *, Value>(&inner)
            .Case([&](SumOp) {
              return reduceRow<SumOp>(b, loc, flatType, indices, read,
                                      prefetchIn(inner) ? lanePrefetch(nextRow)
                                                        : nullptr);
            })
            .Case([&](ProdOp) {
              return reduceRow<ProdOp>(b, loc, flatType, indices, read,
                                       prefetchIn(inner) ? lanePrefetch(nextRow)
                                                         : nullptr);
            })
            .Case([&](AmaxOp) {
              return reduceRow<AmaxOp>(b, loc, flatType, indices, read);
            })
            .Case([&](AminOp) {
              return reduceRow<AminOp>(b, loc, flatType, indices, read);
            })
            .Default([](Operation *) { return Value(); });
    if (!value)
      return op.emitError("kiln.fused: no row lowering for ")
             << inner.getName();
    rowValues[inner.getResult(0)] = value;
  }
  remarkKernel(b, loc,
               "row group of {0}: one kernel, rows in parallel; each row "
               "({1} elements) is read from memory once and stays in cache "
               "for its {2} reduction(s) and the elementwise chain",
               typeText(space), n, rowOps);
  // Each per-row result, one element written in place at the row's
  // position (a slice of the shared output: a fresh one-element tensor
  // would be a buffer allocated per row).
  SmallVector<Value> rowResults;
  SmallVector<SmallVector<OpFoldResult>> rowOffsets, rowSizes;
  for (int64_t i : perRow) {
    auto type = tensorType(op.getResult(i));
    SmallVector<Value> at(coords);
    if (type.getRank() == rank) // keepdim: 1 along the row's dims
      at.append(run, indexConstant(b, loc, 0));
    DenseMap<Value, Value> memo(rowValues);
    Value element =
        evaluator.eval(b, loc, yield.getValues()[i], type, at, memo);
    SmallVector<int64_t> ones(type.getRank(), 1);
    SmallVector<OpFoldResult> offsets(at.begin(), at.end()),
        unit(type.getRank(), b.getIndexAttr(1));
    Value slot = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get(ones, type.getElementType()),
        forall.getRegionIterArgs()[i], offsets, unit, unit);
    SmallVector<Value> origin(type.getRank(), indexConstant(b, loc, 0));
    rowResults.push_back(
        tensor::InsertOp::create(b, loc, element, slot, origin));
    rowOffsets.push_back(offsets);
    rowSizes.push_back(unit);
  }
  // The chain into the row's slice of each full result, in place (reading
  // the kept exps from the same row, element by element), a loop per row
  // dim: an operand constant along the inner ones (a group norm's
  // per-channel weight in rows of [C/G, H*W]) is read once per line.
  SmallVector<Value> fullRows;
  if (!full.empty()) {
    MLIRContext *ctx = b.getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(run, ctx);
    SmallVector<Value> ins;
    if (keptSoftmax)
      ins.push_back(rows.inits[keptRow]);
    SmallVector<AffineMap> maps(ins.size() + rows.inits.size(), identity);
    auto generic = linalg::GenericOp::create(
        b, loc, rows.types, ins, rows.inits, maps, parallelIterators(run),
        [&](OpBuilder &nb, Location l, ValueRange args) {
          SmallVector<Value> at(coords);
          for (int64_t d = 0; d < run; ++d)
            at.push_back(linalg::IndexOp::create(nb, l, d));
          DenseMap<Value, Value> memo(rowValues);
          if (keptSoftmax)
            memo[keptSoftmax] = arith::MulFOp::create(nb, l, args[0], keptSum);
          SmallVector<Value> results;
          for (int64_t i : full)
            results.push_back(
                evaluator.eval(nb, l, yield.getValues()[i], space, at, memo));
          linalg::YieldOp::create(nb, l, results);
        });
    fullRows.assign(generic.getResults().begin(), generic.getResults().end());
  }
  // Into the shared outputs (the forall's terminator), in the results'
  // order (folding a one-row forall takes its inserts in that order).
  SmallVector<Value> parts(op.getNumResults());
  SmallVector<ArrayRef<OpFoldResult>> offsets(op.getNumResults(), rows.offsets),
      sizes(op.getNumResults(), rows.sizes);
  for (auto [i, row] : llvm::zip_equal(full, fullRows))
    parts[i] = row;
  for (auto [k, i] : llvm::enumerate(perRow)) {
    parts[i] = rowResults[k];
    offsets[i] = rowOffsets[k];
    sizes[i] = rowSizes[k]; // all 1, as the strides
  }
  OpBuilder::InsertionGuard terminatorGuard(b);
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [i, part] : llvm::enumerate(parts))
    tensor::ParallelInsertSliceOp::create(
        b, loc, part, forall.getRegionIterArgs()[i], offsets[i], sizes[i],
        ArrayRef(rows.strides).take_front(sizes[i].size()));
  return SmallVector<Value>(forall.getResults());
}

/// One block's reduction `OpTy` (sum, prod, amax, amin over dim 1 of
/// `inputType`, [O, C, T]) of what `read` gives at (o, c, first + j), for
/// the block's `block` columns j: a tensor<block x element> of the
/// reduction's values. The operations of the column reduction kernel
/// (buildColumnReduction) per column in its order -- float sums and
/// products into 32 lanes by reduced index (laneOf), merged in the fixed
/// tree; the rest one accumulator, the rows in order -- so the same bits,
/// and its walk (columnScheme): accumulators in registers
/// (buildColumnBlockInRegisters) for float reductions with at most 256
/// rows over 32 lanes or with one accumulator, else a [lane, column] block
/// of them in memory. `prefetch` (the first pass) prefetches at an
/// element's (o, c, t); in memory, a row's every `lineElements` columns.
template <typename OpTy>
Value reduceColumnBlock(OpBuilder &b, Location loc, RankedTensorType inputType,
                        Value o, Value first, int64_t block, ElementReader read,
                        const ElementPrefetch *prefetch, int64_t lineElements) {
  using Lower = ReductionCombiner<OpTy>;
  Type elementType = inputType.getElementType();
  bool keys = Lower::usesKeys(b, elementType);
  int64_t rows = inputType.getDimSize(1);
  LaneReduction lanes = Lower::laneReduction(keys);
  bool useLanes = Lower::needsLanes(elementType);
  int64_t laneCount = useLanes && spreadsOverLanes(rows) ? kReductionLanes : 1;
  TypedAttr identity = Lower::identity(b, elementType, keys);
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  Value accs;
  ColumnScheme scheme = columnScheme(
      inputType, ArrayRef<int64_t>{1}, useLanes,
      /*scattered=*/false, [&] { return elementReadCost(b, loc, 3, read); });
  if (scheme == ColumnScheme::LanesInTreeOrder ||
      scheme == ColumnScheme::RowsInRegisters) {
    // The column reduction kernel's accumulators in registers.
    SmallVector<Value> indices{o, Value(), Value()};
    auto combineBody = [&](OpBuilder &nb, Location l, ValueRange xs,
                           ValueRange old, ValueRange) {
      return SmallVector<Value>{Lower::combine(nb, l, xs[0], old[0], keys)};
    };
    accs = buildColumnBlockInRegisters(
        b, loc, inputType, ArrayRef<int64_t>{1}, indices, first, block,
        identity, read, combineBody, useLanes ? &lanes : nullptr, laneCount > 1,
        prefetch, kColumnPrefetchRows);
    laneCount = 1;
  } else {
    Value acc = filledTensor(
        b, loc, RankedTensorType::get({laneCount, block}, identity.getType()),
        identity);
    auto rowLoop = scf::ForOp::create(
        b, loc, zero, indexConstant(b, loc, rows), one, ValueRange{acc},
        [&](OpBuilder &rb, Location rl, Value c, ValueRange accs) {
          Value lane = useLanes ? laneOf(rb, rl, c, rows) : zero;
          if (prefetch) {
            // kColumnPrefetchRows rows ahead, a line at a time.
            Value ahead = arith::MinUIOp::create(
                rb, rl,
                arith::AddIOp::create(
                    rb, rl, c, indexConstant(rb, rl, kColumnPrefetchRows)),
                indexConstant(rb, rl, rows - 1));
            for (int64_t k = 0; k < block; k += lineElements)
              (*prefetch)(
                  rb, rl,
                  ValueRange{o, ahead,
                             arith::AddIOp::create(rb, rl, first,
                                                   indexConstant(rb, rl, k))});
          }
          auto combine = [&](OpBuilder &cb, Location cl, Value old, Value j) {
            Value t = arith::AddIOp::create(cb, cl, first, j);
            Value x = read(cb, cl, ValueRange{o, c, t})[0];
            return useLanes ? Lower::merge(cb, cl, old, x, keys)
                            : Lower::combine(cb, cl, x, old, keys);
          };
          scf::YieldOp::create(rb, rl,
                               updateColumnLane(rb, rl, accs[0], lane,
                                                indexConstant(rb, rl, block),
                                                combine));
        });
    accs = rowLoop.getResult(0);
  }
  // Per column: the lanes' tree and the value.
  auto finish = scf::ForOp::create(
      b, loc, zero, indexConstant(b, loc, block), one,
      ValueRange{tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{block},
                                         elementType)},
      [&](OpBuilder &fb, Location fl, Value j, ValueRange values) {
        Value merged = mergeColumnLanes(fb, fl, accs, j, laneCount, &lanes);
        Value value = Lower::result(fb, fl, merged, elementType, keys);
        scf::YieldOp::create(fb, fl,
                             Value(tensor::InsertOp::create(
                                 fb, fl, value, values[0], ValueRange{j})));
      });
  return finish.getResult(0);
}

/// The least elementReadCost of a column group's reduction term that is
/// computed once into a tile of the block (a transcendental op) rather than
/// again where the chain reads it. softmax over dim 1 of 32x64x56x56 f32 (a
/// column group over [32, 64, 3136], blocks of 112 columns), exp(x - m)
/// computed twice against once, on a Zen 3: the bench row 7.6-7.8 -> 6.7-6.9
/// ms at 1 thread; a C harness of the kernel, best of 10 runs, 7.7-8.3 /
/// 3.8-4.0 -> 6.8-7.1 / 3.3-3.4 ms at 1 / 2 threads. (Prefetching the
/// results' block for writing during the last reduction, so that the
/// chain's stores hit the cache, measured no faster.)
constexpr int64_t kKeptTermMinReadCost = 16;

/// Whether `term`, the operand of the column group's reduction `reduction`,
/// is worth keeping in a tile of the block: a computed value of the group's
/// full shape that some other op of the group reads as well.
bool keepsTerms(Value term, Operation *reduction, RankedTensorType space) {
  return !isa<BlockArgument>(term) &&
         tensorType(term).getShape() == space.getShape() &&
         llvm::any_of(term.getUsers(),
                      [&](Operation *user) { return user != reduction; });
}

/// A column group (kiln-fuse-elementwise's formColumnGroups): keepdim
/// reductions over dim 1 of rows [O, C, T] whose results the chain
/// broadcasts back over C (a layer norm over the channels of
/// [N, C, H*W]). One scf.forall over (o, block of B columns of T;
/// kiln::conversion::columnGroupBlock); in each, in program order, the
/// reductions (reduceColumnBlock: the column reduction kernel's bits) and
/// the values computed from them alone (constant along C: a variance's
/// reciprocal square root), B of each, then the chain over the block's
/// C x B elements into its slice of each result -- the block read from
/// memory by the first pass and from cache by the others.
FailureOr<SmallVector<Value>> lowerColumnGroup(OpBuilder &b, FusedOp op,
                                               FusedEvaluator &evaluator) {
  Location loc = op.getLoc();
  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  RankedTensorType space = op.getRowType();
  int64_t outer = space.getDimSize(0), rows = space.getDimSize(1),
          columns = space.getDimSize(2);
  int64_t bytes = widestReducedElementBytes(llvm::map_to_vector(
      body.without_terminator(), [](Operation &inner) { return &inner; }));
  // kiln-fuse-elementwise forms groups with a planned block; a hand-written
  // one without takes the largest divisor of T of at most 512 bytes.
  int64_t block =
      kiln::conversion::columnGroupBlock(rows, columns, bytes)
          .value_or(kiln::conversion::largestDivisor(
              columns, kiln::conversion::kColumnGroupBlockBytes / bytes));
  SmallVector<int64_t> grid{outer, columns / block};
  // The first reduction reads the block from memory: its operands of the
  // rows' C and T are prefetched kColumnPrefetchRows rows ahead (each row's
  // piece of the block lies in another page, out of reach of the hardware's
  // stream prefetch).
  SmallVector<std::pair<Value, bool>> prefetched; // buffer, varies along O
  for (Value input : op.getInputs()) {
    ArrayRef<int64_t> shape = tensorType(input).getShape();
    if (shape[1] == rows && shape[2] == columns && rows > 1)
      prefetched.push_back({readOnlyBuffer(b, loc, input), shape[0] > 1});
  }
  SmallVector<Value> outputs = emptyTensors(b, loc, op.getResultTypes());
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Value> coords;
  scf::ForallOp forall = createGridForall(b, loc, grid, outputs, coords);
  Value o = coords[0];
  Value first =
      arith::MulIOp::create(b, loc, coords[1], indexConstant(b, loc, block));
  Value zero = indexConstant(b, loc, 0);
  MLIRContext *ctx = b.getContext();
  int64_t lineElements = std::max<int64_t>(1, 64 / bytes);

  // The first pass's prefetch: the operands stored on [O, C, T] at an
  // element's (o, c, t).
  ElementPrefetch prefetchRows;
  prefetchRows.at = [&](OpBuilder &pb, Location pl, ValueRange at) {
    for (auto [buffer, alongO] : prefetched)
      memref::PrefetchOp::create(
          pb, pl, buffer, ValueRange{alongO ? at[0] : zero, at[1], at[2]},
          /*isWrite=*/false, /*localityHint=*/3,
          /*isDataCache=*/true);
  };
  // A value of B per block: read at column t of the block.
  auto perColumn = [&](Value v, Value values) {
    evaluator.rowRules[v] = [values, first](OpBuilder &nb, Location l,
                                            ValueRange at,
                                            DenseMap<Value, Value> &) {
      Value j = arith::SubIOp::create(nb, l, at[2], first);
      return Value(tensor::ExtractOp::create(nb, l, values, ValueRange{j}));
    };
  };
  // `values` at the block's columns (of [O, 1, T] shapes: one loop over B)
  // or at its C x B elements (`alongRows`: a loop over C, then B), into
  // `inits`.
  auto evaluateBlock = [&](ValueRange values, ValueRange inits,
                           bool alongRows) {
    int64_t loops = alongRows ? 2 : 1;
    SmallVector<Type> types;
    for (Value init : inits)
      types.push_back(init.getType());
    SmallVector<AffineMap> maps(inits.size(),
                                AffineMap::getMultiDimIdentityMap(loops, ctx));
    auto generic = linalg::GenericOp::create(
        b, loc, types, ValueRange{}, inits, maps, parallelIterators(loops),
        [&](OpBuilder &nb, Location l, ValueRange) {
          Value c = alongRows ? Value(linalg::IndexOp::create(nb, l, 0)) : zero;
          Value t = arith::AddIOp::create(
              nb, l, first, linalg::IndexOp::create(nb, l, loops - 1));
          SmallVector<Value> at{o, c, t}, results;
          DenseMap<Value, Value> memo;
          for (Value v : values)
            results.push_back(evaluator.eval(nb, l, v, space, at, memo));
          linalg::YieldOp::create(nb, l, results);
        });
    return SmallVector<Value>(generic.getResults());
  };
  // Values computed from the reductions (and constant along C).
  llvm::SmallPtrSet<Value, 16> fromReductions;
  int64_t reductions = 0, keptTerms = 0;
  for (Operation &inner : body.without_terminator()) {
    if (inner.hasTrait<kiln::OpTrait::Reduction>()) {
      ++reductions;
      Value input = inner.getOperand(0);
      RankedTensorType inputType = tensorType(input);
      auto read = [&](OpBuilder &nb, Location l, ValueRange at) {
        DenseMap<Value, Value> memo;
        return SmallVector<Value>{
            evaluator.eval(nb, l, input, inputType, at, memo)};
      };
      // A costly term the chain reads again (a softmax's exp(x - m), summed
      // and then scaled): its C x B values into a tile once, which the
      // reduction and the chain read -- the same values, so the same bits.
      // Not for the first reduction, which brings the block in from memory
      // with its prefetch.
      if (reductions > 1 && keepsTerms(input, &inner, space) &&
          elementReadCost(b, loc, space.getRank(), read) >=
              kKeptTermMinReadCost) {
        Value tile = evaluateBlock(ValueRange{input},
                                   ValueRange{tensor::EmptyOp::create(
                                       b, loc, ArrayRef<int64_t>{rows, block},
                                       inputType.getElementType())},
                                   /*alongRows=*/true)[0];
        evaluator.rowRules[input] = [tile, first](OpBuilder &nb, Location l,
                                                  ValueRange at,
                                                  DenseMap<Value, Value> &) {
          Value j = arith::SubIOp::create(nb, l, at[2], first);
          return Value(
              tensor::ExtractOp::create(nb, l, tile, ValueRange{at[1], j}));
        };
        ++keptTerms;
      }
      const ElementPrefetch *firstPass = nullptr;
      if (reductions == 1 && !prefetched.empty())
        firstPass = &prefetchRows;
      auto reduce = [&](auto kind) {
        return reduceColumnBlock<decltype(kind)>(
            b, loc, inputType, o, first, block, read, firstPass, lineElements);
      };
      Value values = llvm::TypeSwitch<Operation *, Value>(&inner)
                         .Case([&](SumOp) { return reduce(SumOp()); })
                         .Case([&](ProdOp) { return reduce(ProdOp()); })
                         .Case([&](AmaxOp) { return reduce(AmaxOp()); })
                         .Case([&](AminOp) { return reduce(AminOp()); })
                         .Default([](Operation *) { return Value(); });
      if (!values)
        return op.emitError("kiln.fused: no column lowering for ")
               << inner.getName();
      perColumn(inner.getResult(0), values);
      fromReductions.insert(inner.getResult(0));
      continue;
    }
    if (inner.getNumResults() != 1 ||
        tensorType(inner.getResult(0)).getDimSize(1) != 1 ||
        llvm::none_of(inner.getOperands(), [&](Value operand) {
          return fromReductions.contains(operand);
        }))
      continue;
    // Once per column, not per element.
    Value result = inner.getResult(0);
    fromReductions.insert(result);
    Value values = evaluateBlock(ValueRange{result},
                                 ValueRange{tensor::EmptyOp::create(
                                     b, loc, ArrayRef<int64_t>{block},
                                     tensorType(result).getElementType())},
                                 /*alongRows=*/false)[0];
    perColumn(result, values);
  }
  remarkKernel(b, loc,
               "column group of {0}: one kernel, blocks of {1} columns in "
               "parallel; each block ({2} x {1} elements) is read from memory "
               "once and stays in cache for its {3} reduction(s) and the "
               "elementwise chain{4}",
               typeText(space), block, rows, reductions,
               keptTerms ? llvm::formatv("; {0} costly term(s) the chain reads "
                                         "again computed once into a tile of "
                                         "the block",
                                         keptTerms)
                               .str()
                         : std::string());
  // Each result's slice: [1, C, B] of a full one, [1, 1, B] of a column
  // one, written in place.
  SmallVector<Value> slices, fullValues, columnValues;
  SmallVector<int64_t> full, perBlock;
  SmallVector<SmallVector<OpFoldResult>> sizes;
  SmallVector<OpFoldResult> offsets{o, b.getIndexAttr(0), first},
      strides(3, b.getIndexAttr(1));
  for (auto [i, result] : llvm::enumerate(op.getResults())) {
    RankedTensorType type = tensorType(result);
    bool isFull = type.getShape() == space.getShape();
    (isFull ? full : perBlock).push_back(i);
    (isFull ? fullValues : columnValues).push_back(yield.getValues()[i]);
    SmallVector<OpFoldResult> size{b.getIndexAttr(1),
                                   b.getIndexAttr(isFull ? rows : 1),
                                   b.getIndexAttr(block)};
    auto sliceType =
        isFull ? RankedTensorType::get({rows, block}, type.getElementType())
               : RankedTensorType::get({block}, type.getElementType());
    slices.push_back(tensor::ExtractSliceOp::create(
        b, loc, sliceType, forall.getRegionIterArgs()[i], offsets, size,
        strides));
    sizes.push_back(size);
  }
  SmallVector<Value> parts(op.getNumResults());
  if (!perBlock.empty()) {
    SmallVector<Value> inits;
    for (int64_t i : perBlock)
      inits.push_back(slices[i]);
    for (auto [i, part] :
         llvm::zip_equal(perBlock, evaluateBlock(columnValues, inits,
                                                 /*alongRows=*/false)))
      parts[i] = part;
  }
  if (!full.empty()) {
    SmallVector<Value> inits;
    for (int64_t i : full)
      inits.push_back(slices[i]);
    for (auto [i, part] : llvm::zip_equal(
             full, evaluateBlock(fullValues, inits, /*alongRows=*/true)))
      parts[i] = part;
  }
  OpBuilder::InsertionGuard terminatorGuard(b);
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [i, part] : llvm::enumerate(parts))
    tensor::ParallelInsertSliceOp::create(b, loc, part,
                                          forall.getRegionIterArgs()[i],
                                          offsets, sizes[i], strides);
  return SmallVector<Value>(forall.getResults());
}

} // namespace

FailureOr<SmallVector<Value>> lowerFused(OpBuilder &b, FusedOp op,
                                         ErrorSites &sites) {
  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  FusedEvaluator evaluator(op);
  // The verifier has checked the region's form.
  FusedOp::Form form = op.getForm();
  if (form == FusedOp::Form::Elementwise) {
    // One generic over the results' shape; operands arrive through
    // broadcasting indexing maps. An operand of another shape is read only
    // below a view, which loads it where the view reads (tensor.extract).
    auto space = cast<RankedTensorType>(op.getResult(0).getType());
    MLIRContext *ctx = b.getContext();
    SmallVector<AffineMap> maps;
    SmallVector<Value> inputs;
    SmallVector<BlockArgument> mapped;
    for (auto [input, arg] : llvm::zip(op.getInputs(), body.getArguments())) {
      if (!isExpandableTo(tensorType(input).getShape(), space.getShape()))
        continue;
      inputs.push_back(input);
      mapped.push_back(arg);
      maps.push_back(broadcastMap(tensorType(input), space, ctx));
    }
    SmallVector<Value> inits;
    for (Type t : op.getResultTypes()) {
      auto type = cast<RankedTensorType>(t);
      inits.push_back(emptyTensor(b, op.getLoc(), type));
      maps.push_back(AffineMap::getMultiDimIdentityMap(space.getRank(), ctx));
    }
    auto generic = linalg::GenericOp::create(
        b, op.getLoc(), op.getResultTypes(), inputs, inits, maps,
        parallelIterators(space.getRank()),
        [&](OpBuilder &nb, Location l, ValueRange args) {
          DenseMap<Value, Value> memo;
          for (auto [arg, scalar] :
               llvm::zip(mapped, args.take_front(mapped.size())))
            memo[arg] = scalar;
          // The loop's position, for the views the chain reads through (it
          // loads what is below them where they read); every other operand
          // is an argument.
          SmallVector<Value> ivs;
          if (llvm::any_of(body, llvm::IsaPred<ViewOpInterface>))
            for (int64_t d = 0; d < space.getRank(); ++d)
              ivs.push_back(linalg::IndexOp::create(nb, l, d));
          SmallVector<Value> results;
          for (Value v : yield.getValues())
            results.push_back(evaluator.eval(nb, l, v, space, ivs, memo));
          linalg::YieldOp::create(nb, l, results);
        });
    return SmallVector<Value>(generic.getResults());
  }

  // A row group (reductions over the last dim of rows of one shape, their
  // results broadcast back over the rows or yielded per row) or a column
  // group (reductions over the middle dim of [O, C, T], a block of columns
  // at a time). A GPU thread per row or block would be slow; the GPU
  // pipeline does not form them, and a hand-written one gets a diagnostic.
  if (form == FusedOp::Form::RowGroup || form == FusedOp::Form::ColumnGroup) {
    bool rows = form == FusedOp::Form::RowGroup;
    if (isGpuTarget(b))
      return op.emitOpError("is a ")
             << (rows ? "row" : "column")
             << " group, which only the CPU lowers (kiln-fuse-elementwise "
                "makes them with row-groups, which the CPU pipeline sets); "
                "for the cuda target, write its ops unfused";
    return rows ? lowerRowGroup(b, op, evaluator)
                : lowerColumnGroup(b, op, evaluator);
  }
  Operation *anchor = op.getAnchor();
  // A value the anchor reads as stored (gather's index): the group's operand,
  // or a constant copied out of the region.
  auto outside = [&](Value inner) -> Value {
    if (auto arg = dyn_cast<BlockArgument>(inner))
      return op.getInputs()[arg.getArgNumber()];
    return b.clone(*inner.getDefiningOp())->getResult(0);
  };
  // Indexed reads in the anchor's chains are evaluated in place; their
  // indices are checked here, before the kernel, as their own kernels would.
  for (Operation &inner : body) {
    auto read = dyn_cast<IndexedReadOpInterface>(inner);
    if (!read || &inner == anchor)
      continue;
    auto [lo, hi] = read.getValidIndexRange();
    checkIndicesUpFront(b, inner.getLoc(), sites.add(&inner),
                        outside(inner.getOperand(1)), lo, hi, hi);
    remarkKernel(b, inner.getLoc(),
                 "{0} of {1}: every index checked up front, then read in "
                 "place by the kernel of {2} (the selected elements are "
                 "never stored)",
                 inner.getName().getStringRef(),
                 typeText(inner.getOperand(0).getType()),
                 anchor->getName().getStringRef());
  }

  // A runtime kernel reads a tile of the fused chain at a time.
  if (std::optional<RuntimeKernel> kernel = getRuntimeKernel(anchor))
    return lowerFusedRuntimeKernel(b, anchor, *kernel, evaluator);

  // An anchor: its input is the fused producer chain, evaluated where the
  // kernel reads; its result elements go through the fused epilogue.
  Value input = anchor->getOperand(0);
  Value anchorResult = anchor->getResult(0);
  auto inputType = tensorType(input);
  auto resultType = tensorType(anchorResult);
  KernelIO io;
  io.read = [&](OpBuilder &nb, Location l, ValueRange indices) {
    DenseMap<Value, Value> memo;
    return evaluator.eval(nb, l, input, inputType, indices, memo);
  };
  io.finish = [&](OpBuilder &nb, Location l, Value element,
                  ValueRange resultIndices) {
    DenseMap<Value, Value> memo;
    memo[anchorResult] = element;
    SmallVector<Value> results;
    for (Value v : yield.getValues())
      results.push_back(
          evaluator.eval(nb, l, v, resultType, resultIndices, memo));
    return results;
  };
  io.resultTypes.assign(op.getResultTypes().begin(), op.getResultTypes().end());
  io.sources.assign(op.getInputs().begin(), op.getInputs().end());
  if (!isGpuTarget(b))
    io.prefetch = evaluator.prefetcher(b, op.getLoc(), input, inputType);
  // An anchor reading a group operand itself (only consumers fused: mean's
  // division) reads a stored tensor.
  if (auto arg = dyn_cast<BlockArgument>(input))
    if (op.getInputs()[arg.getArgNumber()].getType() == inputType)
      io.stored = op.getInputs()[arg.getArgNumber()];
  return llvm::TypeSwitch<Operation *, FailureOr<SmallVector<Value>>>(anchor)
      .Case<SumOp, ProdOp, AmaxOp, AminOp>(
          [&](Operation *reduction) -> FailureOr<SmallVector<Value>> {
            return lowerReductionKernel(b, reduction, io);
          })
      .Case<SoftmaxOp, LogSoftmaxOp>(
          [&](Operation *softmax) -> FailureOr<SmallVector<Value>> {
            return lowerSoftmaxKernel(b, softmax, io);
          })
      .Case([&](GatherOp gather) {
        return lowerGatherAlongDim(b, gather, inputType,
                                   outside(gather.getIndex()), gather.getDim(),
                                   /*perSlice=*/false, sites, io);
      })
      .Case([&](IndexSelectOp select) {
        return lowerGatherAlongDim(b, select, inputType,
                                   outside(select.getIndex()), select.getDim(),
                                   /*perSlice=*/true, sites, io);
      })
      .Default([&](Operation *other) -> FailureOr<SmallVector<Value>> {
        return other->emitOpError("cannot be lowered as the anchor of a "
                                  "fused kernel");
      });
}

} // namespace kiln::lowering
