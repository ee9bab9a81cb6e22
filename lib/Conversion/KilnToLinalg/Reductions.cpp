//===- Reductions.cpp - Reduction kernels ---------------------------------===//
//
// sum, prod, amax and amin, and the reduction builders every kernel
// uses: the lane order of float sums and products, split reductions of
// few long rows, column reductions, coalesced dims.
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

bool spreadsOverLanes(int64_t size) { return size >= kReductionLanes; }

Value laneOf(OpBuilder &b, Location loc, Value i, int64_t size) {
  if (!spreadsOverLanes(size))
    return arith::ConstantIndexOp::create(b, loc, 0);
  return arith::RemUIOp::create(
      b, loc, i, arith::ConstantIndexOp::create(b, loc, kReductionLanes));
}

namespace {

/// Bounds [0, size) with step 1 of the loops over `dims` of `type`.
void appendLoopBounds(OpBuilder &b, Location loc, RankedTensorType type,
                      ArrayRef<int64_t> dims, SmallVectorImpl<Value> &lbs,
                      SmallVectorImpl<Value> &ubs,
                      SmallVectorImpl<Value> &steps) {
  for (int64_t d : dims) {
    lbs.push_back(indexConstant(b, loc, 0));
    ubs.push_back(indexConstant(b, loc, type.getDimSize(d)));
    steps.push_back(indexConstant(b, loc, 1));
  }
}

/// The main-loop steps [first, first + stepCount) of a lane reduction
/// (`first` a position in the line: a multiple of kReductionLanes) taken
/// into `acc`.
using LaneStepWalk =
    function_ref<Value(OpBuilder &, Location, OpFoldResult, int64_t, Value)>;

/// The lane order's main loop over the `steps` steps of a line, in one
/// place for every kernel that follows it (the CPU's rows and columns, the
/// GPU's lanes): `walk` takes the steps straight into `acc` when they fit
/// one block (laneBlocks), else each block of kLaneBlockSteps steps, then
/// the last, shorter one, into accumulators from `fresh()`, merged into
/// `acc` by `merge`. Returns `acc` after the steps (the tail is the
/// caller's).
Value buildLaneBlocks(
    OpBuilder &b, Location loc, int64_t steps, Value acc, LaneStepWalk walk,
    function_ref<Value(OpBuilder &, Location)> fresh,
    function_ref<Value(OpBuilder &, Location, Value, Value)> merge) {
  auto [wholeBlocks, lastSteps] = laneBlocks(steps);
  if (wholeBlocks == 0)
    return steps > 0 ? walk(b, loc, b.getIndexAttr(0), steps, acc) : acc;
  int64_t blockSize = kLaneBlockSteps * kReductionLanes;
  int64_t blocksEnd = wholeBlocks * blockSize;
  auto blockLoop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), indexConstant(b, loc, blocksEnd),
      indexConstant(b, loc, blockSize), ValueRange{acc},
      [&](OpBuilder &ib, Location il, Value first, ValueRange a) {
        Value part = walk(ib, il, first, kLaneBlockSteps, fresh(ib, il));
        scf::YieldOp::create(ib, il, merge(ib, il, a[0], part));
      });
  acc = blockLoop.getResult(0);
  if (lastSteps > 0)
    acc = merge(
        b, loc, acc,
        walk(b, loc, b.getIndexAttr(blocksEnd), lastSteps, fresh(b, loc)));
  return acc;
}

/// The positions [first, first + stepCount x kReductionLanes) of a
/// LaneStepWalk, constants where `first` is one.
std::pair<Value, Value> laneStepRange(OpBuilder &b, Location loc,
                                      OpFoldResult first, int64_t stepCount) {
  int64_t length = stepCount * kReductionLanes;
  if (std::optional<int64_t> at = getConstantIntValue(first))
    return {indexConstant(b, loc, *at), indexConstant(b, loc, *at + length)};
  Value begin = cast<Value>(first);
  return {begin,
          arith::AddIOp::create(b, loc, begin, indexConstant(b, loc, length))};
}

} // namespace

Value mergeLaneTail(OpBuilder &b, Location loc, Value acc, ValueRange tail,
                    Value pad, const LaneReduction &lanes) {
  SmallVector<Value> terms(kReductionLanes, pad);
  SmallVector<bool> inTail(kReductionLanes, false);
  for (auto [lane, term] : llvm::enumerate(tail)) {
    terms[lane] = term;
    inTail[lane] = true;
  }
  Value merged =
      lanes.merge(b, loc, acc,
                  vector::FromElementsOp::create(
                      b, loc, cast<VectorType>(acc.getType()), terms));
  Value mask = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(VectorType::get({kReductionLanes}, b.getI1Type()),
                             ArrayRef(inTail)));
  return arith::SelectOp::create(b, loc, mask, merged, acc);
}

Value foldLanes(OpBuilder &b, Location loc, Value acc,
                const LaneReduction &lanes) {
  for (int64_t half = kReductionLanes / 2; half >= 1; half /= 2) {
    Value low =
        vector::ExtractStridedSliceOp::create(b, loc, acc, {0}, {half}, {1});
    Value high =
        vector::ExtractStridedSliceOp::create(b, loc, acc, {half}, {half}, {1});
    acc = lanes.merge(b, loc, low, high);
  }
  return vector::ExtractOp::create(b, loc, acc, 0);
}

namespace {

/// The vector of one main-loop step's terms (one per lane). LLVM's SLP
/// vectorizer turns the lanes' scalar chains into vector code from this
/// build vector; given all 32 lanes at once, it vectorizes a chain whose
/// terms hold two expansions of the same math function (log|x| + log|y|,
/// the two logs of a binary cross-entropy) only partly -- lanes 0-15, 16-23,
/// 24-27, 28-29 and two scalar lanes, as LLVM 22's opt -O3 shows on the IR
/// -- and the step runs 2-3x slower than the same chain in an elementwise
/// kernel. Two build vectors of 16 lanes, concatenated, vectorize whole
/// (1 thread, 4096x1024 f32: sum of log|x| + log(exp x) 14.4 -> 6.1 ms, a
/// binary cross-entropy's mean 15.1 -> 7.1 ms), but cost a chain with one
/// expansion 3-13% (sum of log|x| 2.25 -> 2.55 ms: the single 32-lane tree
/// interleaves four independent vectors), so only steps whose terms
/// repeat a math op take them. The same scalar operations either way: the
/// same bits.
Value buildLaneBatch(OpBuilder &b, Location loc, VectorType vectorType,
                     ArrayRef<Value> terms) {
  llvm::SmallDenseMap<OperationName, int64_t> mathOps;
  bool repeats = false;
  if (Value first = terms.empty() ? Value() : terms.front())
    if (Block *block = first.getParentBlock())
      for (Operation &op : *block)
        if (isa<math::MathDialect>(op.getDialect()) &&
            ++mathOps[op.getName()] > static_cast<int64_t>(terms.size()))
          repeats = true;
  int64_t count = terms.size(), half = count / 2;
  if (!repeats || half == 0 || count % 2 != 0)
    return vector::FromElementsOp::create(b, loc, vectorType, terms);
  auto halfType = VectorType::get({half}, vectorType.getElementType());
  Value low =
      vector::FromElementsOp::create(b, loc, halfType, terms.take_front(half));
  Value high =
      vector::FromElementsOp::create(b, loc, halfType, terms.drop_front(half));
  return vector::ShuffleOp::create(
      b, loc, low, high, llvm::to_vector(llvm::seq<int64_t>(0, count)));
}

} // namespace

Value buildLaneLoops(OpBuilder &b, Location loc, RankedTensorType inputType,
                     ArrayRef<int64_t> reducedDims,
                     SmallVectorImpl<Value> &indices, TypedAttr init,
                     ElementReader read, const LaneReduction &lanes) {
  int64_t count = kReductionLanes;
  int64_t inner = reducedDims.back();
  int64_t size = inputType.getDimSize(inner);
  int64_t mainEnd = size / count * count;
  auto vectorType = VectorType::get({count}, init.getType());
  Value initial = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(vectorType, init));
  auto term = [&](OpBuilder &ib, Location il) {
    return lanes.term(ib, il, read(ib, il, indices), indices);
  };
  SmallVector<Value> lbs, ubs, steps;
  appendLoopBounds(b, loc, inputType, reducedDims.drop_back(), lbs, ubs, steps);
  scf::LoopNest nest = scf::buildLoopNest(
      b, loc, lbs, ubs, steps, ValueRange{initial},
      [&](OpBuilder &ob, Location ol, ValueRange ivs, ValueRange accs) {
        for (auto [iv, d] : llvm::zip_equal(ivs, reducedDims.drop_back()))
          indices[d] = iv;
        if (mainEnd == 0 && size == 0)
          return scf::ValueVector(accs);
        // The main-loop steps [first, first + stepCount) taken into `acc`.
        auto steps = [&](OpBuilder &sb, Location sl, OpFoldResult first,
                         int64_t stepCount, Value acc) {
          auto [begin, end] = laneStepRange(sb, sl, first, stepCount);
          auto loop = scf::ForOp::create(
              sb, sl, begin, end, indexConstant(sb, sl, count), acc,
              [&](OpBuilder &ib, Location il, Value i, ValueRange a) {
                if (lanes.prefetch)
                  lanes.prefetch(ib, il, i);
                SmallVector<Value> terms;
                for (int64_t lane = 0; lane < count; ++lane) {
                  indices[inner] = arith::AddIOp::create(
                      ib, il, i, indexConstant(ib, il, lane));
                  terms.push_back(term(ib, il));
                }
                Value batch = buildLaneBatch(ib, il, vectorType, terms);
                scf::YieldOp::create(ib, il, lanes.merge(ib, il, a[0], batch));
              });
          return loop.getResult(0);
        };
        SmallVector<Value> afterMain(accs);
        afterMain[0] = buildLaneBlocks(
            ob, ol, mainEnd / count, afterMain[0], steps,
            [&](OpBuilder &sb, Location sl) -> Value {
              return arith::ConstantOp::create(
                  sb, sl, DenseElementsAttr::get(vectorType, init));
            },
            [&](OpBuilder &sb, Location sl, Value acc, Value part) {
              return lanes.merge(sb, sl, acc, part);
            });
        if (mainEnd == size)
          return scf::ValueVector(afterMain);
        if (mainEnd == 0 && !lanes.orderFree) {
          // A line shorter than the lanes: all of it into lane 0, in order,
          // carried as a scalar. Each line a scalar chain, LLVM vectorizes
          // across lines instead (log_softmax over 4096x10: 47 us, 112
          // with the elements spread over the lanes).
          auto lineLoop = scf::ForOp::create(
              ob, ol, indexConstant(ob, ol, 0), indexConstant(ob, ol, size),
              indexConstant(ob, ol, 1),
              ValueRange{vector::ExtractOp::create(ob, ol, afterMain[0], 0)},
              [&](OpBuilder &ib, Location il, Value i, ValueRange acc) {
                indices[inner] = i;
                scf::YieldOp::create(ib, il,
                                     lanes.merge(ib, il, acc[0], term(ib, il)));
              });
          return scf::ValueVector{Value(vector::InsertOp::create(
              ob, ol, lineLoop.getResult(0), afterMain[0], 0))};
        }
        // The tail: element mainEnd + j goes to lane j.
        SmallVector<Value> tail;
        for (int64_t lane = 0; lane < size - mainEnd; ++lane) {
          indices[inner] = indexConstant(ob, ol, mainEnd + lane);
          tail.push_back(term(ob, ol));
        }
        return scf::ValueVector{
            mergeLaneTail(ob, ol, afterMain[0], tail,
                          arith::ConstantOp::create(ob, ol, init), lanes)};
      });
  return foldLanes(b, loc, nest.results.front(), lanes);
}

namespace {

/// Merges the lanes' partial results (`partial[j]` of lane j) in the fixed
/// tree of the lane order: lane j + half into lane j for half = n/2, ...,
/// 1; returns lane 0's.
Value mergeLaneTree(OpBuilder &b, Location loc, SmallVector<Value> partial,
                    const LaneReduction &lanes) {
  for (int64_t half = partial.size() / 2; half >= 1; half /= 2)
    for (int64_t j = 0; j < half; ++j)
      partial[j] = lanes.merge(b, loc, partial[j], partial[j + half]);
  return partial[0];
}

/// The results of a reduction kernel over the kept positions: a tensor of
/// `keptShape` per element type, empty outputs and identity maps.
void reductionOutputs(OpBuilder &b, Location loc, ArrayRef<int64_t> keptShape,
                      ArrayRef<Type> elementTypes,
                      SmallVectorImpl<Type> &resultTypes,
                      SmallVectorImpl<Value> &outputs,
                      SmallVectorImpl<AffineMap> &maps) {
  for (Type elementType : elementTypes) {
    resultTypes.push_back(RankedTensorType::get(keptShape, elementType));
    outputs.push_back(tensor::EmptyOp::create(b, loc, keptShape, elementType));
    maps.push_back(
        AffineMap::getMultiDimIdentityMap(keptShape.size(), b.getContext()));
  }
}

/// The lane reduction of buildLaneLoops for the GPU, as two kernels with
/// exactly the CPU's order of operations (so the bits match): the first has
/// one thread per (kept position, lane) and computes that lane's partial
/// result (its elements j, j + 32, ... of the innermost reduced dim: laneOf),
/// the second merges the 32 partials of each kept position
/// in the same fixed tree and applies `finalize`. The lane dim is innermost
/// when the input's last dim is reduced (a warp reads 32 consecutive
/// elements) and outermost otherwise (consecutive threads read consecutive
/// kept positions): both load coalesced.
SmallVector<Value>
buildGpuLaneReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                      ElementReader read, ArrayRef<int64_t> keptDims,
                      ArrayRef<int64_t> reducedDims, TypedAttr init,
                      const LaneReduction &lanes, ReductionFinalizer finalize,
                      TypeRange finalTypes) {
  MLIRContext *ctx = b.getContext();
  int64_t rank = inputType.getRank();
  int64_t count = kReductionLanes;
  int64_t keptRank = keptDims.size();
  SmallVector<int64_t> keptShape;
  for (int64_t d : keptDims)
    keptShape.push_back(inputType.getDimSize(d));
  bool laneInnermost = reducedDims.back() == rank - 1;
  int64_t lanePos = laneInnermost ? keptRank : 0;
  SmallVector<int64_t> partialShape(keptShape);
  partialShape.insert(partialShape.begin() + lanePos, count);
  Type accType = init.getType();
  int64_t inner = reducedDims.back();
  int64_t size = inputType.getDimSize(inner);
  int64_t mainEnd = size / count * count;

  // Kernel 1: one partial result per (kept position, lane).
  auto partialType = RankedTensorType::get(partialShape, accType);
  Value empty = tensor::EmptyOp::create(b, loc, partialShape, accType);
  auto partials = linalg::GenericOp::create(
      b, loc, TypeRange{partialType}, ValueRange{}, ValueRange{empty},
      AffineMap::getMultiDimIdentityMap(keptRank + 1, ctx),
      parallelIterators(keptRank + 1),
      [&](OpBuilder &nb, Location l, ValueRange) {
        SmallVector<Value> indices(rank);
        for (auto [i, d] : llvm::enumerate(keptDims))
          indices[d] = linalg::IndexOp::create(
              nb, l, static_cast<int64_t>(i) + (laneInnermost ? 0 : 1));
        Value lane = linalg::IndexOp::create(nb, l, lanePos);
        Value initial = arith::ConstantOp::create(nb, l, init);
        auto term = [&](OpBuilder &ib, Location il) {
          return lanes.term(ib, il, read(ib, il, indices), indices);
        };
        SmallVector<Value> lbs, ubs, steps;
        appendLoopBounds(nb, l, inputType, reducedDims.drop_back(), lbs, ubs,
                         steps);
        scf::LoopNest nest = scf::buildLoopNest(
            nb, l, lbs, ubs, steps, ValueRange{initial},
            [&](OpBuilder &ob, Location ol, ValueRange ivs,
                ValueRange accs) -> scf::ValueVector {
              for (auto [iv, d] : llvm::zip_equal(ivs, reducedDims.drop_back()))
                indices[d] = iv;
              Value acc = accs[0];
              // The lane's elements of the main-loop steps [first, first +
              // stepCount) (first a position: a multiple of the lanes) taken
              // into `a`. Four per iteration when they divide evenly: their
              // loads first, then the merges in order (the same operations
              // as one at a time).
              auto steps = [&](OpBuilder &sb, Location sl, OpFoldResult first,
                               int64_t stepCount, Value a) {
                int64_t perStep = stepCount % 4 == 0 ? 4 : 1;
                Value begin, end;
                if (std::optional<int64_t> at = getConstantIntValue(first)) {
                  begin = *at == 0
                              ? lane
                              : Value(arith::AddIOp::create(
                                    sb, sl, indexConstant(sb, sl, *at), lane));
                  end = indexConstant(sb, sl, *at + stepCount * count);
                } else {
                  Value start = cast<Value>(first);
                  begin = arith::AddIOp::create(sb, sl, start, lane);
                  end = arith::AddIOp::create(
                      sb, sl, start, indexConstant(sb, sl, stepCount * count));
                }
                auto loop = scf::ForOp::create(
                    sb, sl, begin, end, indexConstant(sb, sl, count * perStep),
                    ValueRange{a},
                    [&](OpBuilder &ib, Location il, Value i, ValueRange c) {
                      SmallVector<Value> terms;
                      for (int64_t u = 0; u < perStep; ++u) {
                        indices[inner] =
                            u == 0 ? i
                                   : Value(arith::AddIOp::create(
                                         ib, il, i,
                                         indexConstant(ib, il, u * count)));
                        terms.push_back(term(ib, il));
                      }
                      Value merged = c[0];
                      for (Value t : terms)
                        merged = lanes.merge(ib, il, merged, t);
                      scf::YieldOp::create(ib, il, merged);
                    });
                return loop.getResult(0);
              };
              // The CPU's blocks (buildLaneLoops, the column reductions):
              // its bits.
              acc = buildLaneBlocks(
                  ob, ol, mainEnd / count, acc, steps,
                  [&](OpBuilder &sb, Location sl) -> Value {
                    return arith::ConstantOp::create(sb, sl, init);
                  },
                  [&](OpBuilder &sb, Location sl, Value a, Value part) {
                    return lanes.merge(sb, sl, a, part);
                  });
              if (mainEnd == size)
                return {acc};
              // The tail: element mainEnd + lane, where it exists; a line
              // shorter than the lanes all in lane 0.
              Value tailBegin, step = indexConstant(ob, ol, count);
              if (mainEnd > 0) {
                tailBegin = arith::AddIOp::create(
                    ob, ol, lane, indexConstant(ob, ol, mainEnd));
              } else {
                Value isFirst =
                    arith::CmpIOp::create(ob, ol, arith::CmpIPredicate::eq,
                                          lane, indexConstant(ob, ol, 0));
                tailBegin = arith::SelectOp::create(
                    ob, ol, isFirst, indexConstant(ob, ol, 0),
                    indexConstant(ob, ol, size));
                step = indexConstant(ob, ol, 1);
              }
              auto tailLoop = scf::ForOp::create(
                  ob, ol, tailBegin, indexConstant(ob, ol, size), step,
                  ValueRange{acc},
                  [&](OpBuilder &ib, Location il, Value i, ValueRange a) {
                    indices[inner] = i;
                    scf::YieldOp::create(
                        ib, il, lanes.merge(ib, il, a[0], term(ib, il)));
                  });
              return {tailLoop.getResult(0)};
            });
        linalg::YieldOp::create(nb, l, nest.results.front());
      });
  Value partial = partials.getResult(0);

  // Kernel 2: the fixed merge tree over the 32 partials, then `finalize`.
  SmallVector<Type> resultTypes;
  SmallVector<Value> outputs;
  SmallVector<AffineMap> maps;
  reductionOutputs(b, loc, keptShape,
                   finalize ? SmallVector<Type>(finalTypes)
                            : SmallVector<Type>{accType},
                   resultTypes, outputs, maps);
  auto merged = linalg::GenericOp::create(
      b, loc, resultTypes, ValueRange{}, outputs, maps,
      parallelIterators(keptRank), [&](OpBuilder &nb, Location l, ValueRange) {
        SmallVector<Value> kept = loopIndices(nb, l, keptRank);
        SmallVector<Value> acc;
        for (int64_t j = 0; j < count; ++j) {
          SmallVector<Value> at(kept);
          at.insert(at.begin() + lanePos, indexConstant(nb, l, j));
          acc.push_back(tensor::ExtractOp::create(nb, l, partial, at));
        }
        SmallVector<Value> results{mergeLaneTree(nb, l, acc, lanes)};
        if (finalize)
          results = finalize(nb, l, results, kept);
        linalg::YieldOp::create(nb, l, results);
      });
  return SmallVector<Value>(merged.getResults());
}

SmallVector<Value>
buildSplitReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                    ElementReader read, ArrayRef<bool> mask,
                    ArrayRef<TypedAttr> inits, ReductionBody body,
                    ReductionFinalizer finalize, TypeRange finalTypes,
                    const LaneReduction *lanes, const LaneReduction &merge,
                    const kiln::conversion::ReductionSplit &split,
                    const ElementPrefetch &prefetch);

SmallVector<Value> buildColumnReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType, ElementReader read,
    ArrayRef<int64_t> keptDims, ArrayRef<int64_t> reducedDims, TypedAttr init,
    ReductionBody body, const LaneReduction *lanes, ReductionFinalizer finalize,
    TypeRange finalTypes, const ElementPrefetch &prefetch, ColumnScheme scheme);

/// The dims of a reduction's input seen as one dim each
/// (kiln::conversion::coalesceDims, the rule the canonicalization of a
/// reduction of a permute checks too): the dims of other sizes than 1, runs
/// of consecutive ones that are all reduced or all kept merged.
struct CoalescedDims {
  SmallVector<SmallVector<int64_t, 2>> groups; // the input's dims, in order
  SmallVector<int64_t> shape;
  SmallVector<bool> mask;

  CoalescedDims(RankedTensorType type, ArrayRef<bool> reduced) {
    for (kiln::conversion::DimRun &run :
         kiln::conversion::coalesceDims(type.getShape(), reduced)) {
      groups.push_back(std::move(run.dims));
      shape.push_back(run.size);
      mask.push_back(run.reduced);
    }
  }
  /// Whether the input's dims are not already these.
  bool changes(RankedTensorType type) const {
    return static_cast<int64_t>(shape.size()) != type.getRank();
  }
};

SmallVector<Value> buildCoalescedReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    const CoalescedDims &coalesced, ElementReader read, ArrayRef<bool> mask,
    ArrayRef<TypedAttr> inits, ReductionBody body, ReductionFinalizer finalize,
    TypeRange finalTypes, const LaneReduction *lanes, bool maySplit,
    const LaneReduction *orderFree, const ElementPrefetch &prefetch,
    StringRef explain, Value stored);

/// How many bytes of a column reduction's input are prefetched ahead when an
/// indexed read selects its rows at random: about that much must be on its
/// way from memory to keep up with it, since no hardware prefetch guesses
/// the next row (1 thread, sums of rows selected at random, blocks of 512
/// bytes of 65536 rows of 32768x256 f32: 2.46 ms 4 rows ahead, 1.86 8
/// ahead, 1.61 16 ahead, 1.95 32 ahead; rows of 256 bytes, 200000 of
/// 100000x64: 0.85 32 ahead, 0.89 64, 1.03 128; rows of
/// 64 bytes, 1000000 of 262144x16: 2.09 32 ahead, 1.83 64, 1.67 128, 1.79
/// 256), at most kMaxScatteredPrefetchRows rows ahead.
constexpr int64_t kScatteredPrefetchBytes = 8192;

constexpr int64_t kMaxScatteredPrefetchRows = 128;

/// The most reduced elements per column for which a column reduction with
/// 32 lanes walks the lanes one after another with their accumulators in
/// registers (buildColumnBlockInRegisters), instead of the rows in order
/// with all 32 lanes' accumulators in memory. With a few rows per lane the
/// memory accumulators' loads and stores, their fill and their merge cost
/// about what the input's loads do; with many, the lanes' walk (rows 32
/// apart) loses to the rows in order. A C prototype of the two kernels
/// (1 thread, f32 sums over the middle dim, blocks of 128 columns): 64 rows
/// of 8x64x3136 (in cache) 0.14 -> 0.08 ms, 32x64x3136 1.0 -> 0.57,
/// 128x64x3136 (from memory) 5.3 -> 3.3; 128 rows of 16x128x4096 1.44 ->
/// 1.07; 512 rows of 1x512x4096 level (0.12); 2048 rows of 1x2048x4096
/// 1.2 -> 1.4 and 4096 of 4096x4096 2.8 -> 3.5.
constexpr int64_t kColumnTreeOrderMaxElements = 256;

} // namespace

std::optional<kiln::conversion::ReductionSplit>
planReductionSplit(RankedTensorType inputType, ArrayRef<bool> mask) {
  Type element = inputType.getElementType();
  return kiln::conversion::planReductionSplit(
      inputType.getShape(), mask,
      element.isIntOrFloat()
          ? std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8)
          : 8);
}

namespace {

/// The vectors `pieces` (of one type) one after another in one vector.
Value concatenate(OpBuilder &b, Location loc, SmallVector<Value> pieces) {
  while (pieces.size() > 1) {
    int64_t length =
        cast<VectorType>(pieces.front().getType()).getNumElements();
    SmallVector<Value> pairs;
    for (size_t i = 0; i < pieces.size(); i += 2)
      pairs.push_back(vector::ShuffleOp::create(
          b, loc, pieces[i], pieces[i + 1],
          llvm::to_vector(llvm::seq<int64_t>(0, 2 * length))));
    pieces = std::move(pairs);
  }
  return pieces.front();
}

/// The groups of rows one iteration of buildLaneRowsReduction evaluates
/// into its buffer before it transposes the first: a group's loads then
/// come long after the stores that wrote its rows, which the core cannot
/// forward to loads that straddle them (1 thread, 262144 rows, f32, us, 1
/// group -> 4 -> 8: a norm of rows of 5 354 -> 164 -> 138; a sum of exp
/// over rows of 10 609 -> 439 -> 455; rows of 4 305 -> 212 -> 187).
constexpr int64_t kBufferedGroups = 8;

/// On the CPU, a float lane reduction (sum, mean, prod, norm) of rows of
/// `inputType` [rows, n] along dim 1 with n from kLaneRowsMinLength to
/// kLaneRowsMaxLength and at least `width` rows (laneRowsWidth): an
/// scf.forall over groups of `width` rows, a row per lane of a vector.
/// The rows' pieces of `side` elements (n rounded up to a power of two, at
/// most `width`) are transposed in registers, width / side tiles of side x
/// side side by side in the vectors, and merged element j after element j
/// into the lanes' accumulators: the order of buildLaneLoops for a line
/// shorter than the lanes (all of it into lane 0, in order), then its tree
/// of the other lanes' identities, so the same bits. A `stored` input (its
/// elements the terms) is read in place, a masked load per row's piece, or,
/// with rows of `side` elements, whole vectors of consecutive rows (the
/// lanes then hold the rows in another order, put back before the results
/// are written). Otherwise the terms (a fused producer chain's values) are
/// evaluated first, in order, into a row-major buffer: a loop LLVM
/// vectorizes, over kBufferedGroups groups. A loop over the iteration's
/// rows applies `finalize`. A last group of fewer rows pads its buffer with
/// zeros, or reads the input's last row again (masked past its end) in the
/// lanes past it, and writes only its rows. LLVM vectorized the scalar
/// chain of each row across the rows only where it unrolled the row's
/// loop: a sum of exp(x) over 262144x16 f32 ran one row at a time, 9.0 ms
/// at 1 thread (0.67 now; PyTorch 3.0).
SmallVector<Value>
buildLaneRowsReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                       int64_t width, ElementReader read, Value stored,
                       TypedAttr init, const LaneReduction &lanes,
                       ReductionFinalizer finalize, TypeRange finalTypes) {
  int64_t rows = inputType.getDimSize(0), n = inputType.getDimSize(1);
  // (Rows of 4 elements: 8 shuffles transpose 16 of them, 64 as 16 x 16
  // tiles.)
  int64_t side = std::min<int64_t>(width, llvm::PowerOf2Ceil(n));
  int64_t blocks = (n + side - 1) / side;
  int64_t subgroups = stored ? 1 : kBufferedGroups;
  int64_t group = width * subgroups;
  auto floatType = cast<FloatType>(init.getType());
  auto laneType = VectorType::get({width}, floatType);
  auto pieceType = VectorType::get({side}, floatType);
  auto maskType = VectorType::get({side}, b.getI1Type());
  SmallVector<Type> elementTypes;
  if (finalize)
    elementTypes.assign(finalTypes.begin(), finalTypes.end());
  else
    elementTypes.push_back(floatType);
  SmallVector<Value> outputs;
  for (Type elementType : elementTypes)
    outputs.push_back(tensor::EmptyOp::create(b, loc, {rows}, elementType));
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Value> coords;
  scf::ForallOp forall =
      createGridForall(b, loc, {(rows + group - 1) / group}, outputs, coords);
  Value first =
      arith::MulIOp::create(b, loc, coords[0], indexConstant(b, loc, group));
  Value count = arith::MinSIOp::create(
      b, loc, indexConstant(b, loc, group),
      arith::SubIOp::create(b, loc, indexConstant(b, loc, rows), first));
  Value zero = indexConstant(b, loc, 0);
  Value size = indexConstant(b, loc, n);
  Value pad = arith::ConstantOp::create(b, loc, b.getFloatAttr(floatType, 0.0));
  Value zeros = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(pieceType, b.getFloatAttr(floatType, 0.0)));
  // The piece of a tile: row `row` (of the iteration's), the elements of
  // block `block` under `mask`. With rows of `side` elements, `whole`
  // loads `width / side` rows from row `row` on as one vector instead.
  std::function<Value(OpBuilder &, Location, Value row, int64_t block,
                      Value mask)>
      piece;
  std::function<Value(OpBuilder &, Location, Value row)> whole;
  bool contiguous = n == side && side < width;
  Value input, rowMajor;
  if (stored) {
    // The input's last row for the lanes past it.
    input = flatten(b, loc, stored);
    piece = [&](OpBuilder &nb, Location l, Value row, int64_t block,
                Value mask) -> Value {
      Value at = arith::MinSIOp::create(
          nb, l, arith::AddIOp::create(nb, l, first, row),
          indexConstant(nb, l, rows - 1));
      return vector::TransferReadOp::create(
          nb, l, pieceType, input,
          ValueRange{arith::AddIOp::create(
              nb, l, arith::MulIOp::create(nb, l, at, size),
              indexConstant(nb, l, block * side))},
          AffineMap::getMultiDimIdentityMap(1, nb.getContext()), pad, mask,
          nb.getBoolArrayAttr({true}));
    };
    // (Masked past the input's end.)
    whole = [&](OpBuilder &nb, Location l, Value row) -> Value {
      return vector::TransferReadOp::create(
          nb, l, laneType, input,
          ValueRange{arith::MulIOp::create(
              nb, l, arith::AddIOp::create(nb, l, first, row), size)},
          pad, ArrayRef<bool>{false});
    };
  } else {
    // The iteration's terms, row-major (a memref: see lowerLaneRows),
    // zeros past its last row.
    rowMajor =
        memref::AllocOp::create(b, loc, MemRefType::get({n * group}, floatType),
                                b.getI64IntegerAttr(64));
    piece = [&](OpBuilder &nb, Location l, Value row, int64_t block,
                Value mask) -> Value {
      return vector::MaskedLoadOp::create(
          nb, l, pieceType, rowMajor,
          ValueRange{arith::AddIOp::create(
              nb, l, arith::MulIOp::create(nb, l, row, size),
              indexConstant(nb, l, block * side))},
          mask, zeros);
    };
    // (The loads of the stores that wrote them: forwarded.)
    whole = [&](OpBuilder &nb, Location l, Value row) -> Value {
      return vector::LoadOp::create(
          nb, l, laneType, rowMajor,
          ValueRange{arith::MulIOp::create(nb, l, row, size)});
    };
    fillBuffer(b, loc, rowMajor, arith::MulIOp::create(b, loc, count, size),
               n * group, pad, [&](OpBuilder &nb, Location l, Value p) {
                 // Row p / n, element p % n (delinearized so that LLVM sees
                 // consecutive positions at consecutive addresses).
                 Value row = arith::DivUIOp::create(nb, l, p, size);
                 SmallVector<Value> indices{
                     arith::AddIOp::create(nb, l, first, row),
                     arith::SubIOp::create(
                         nb, l, p, arith::MulIOp::create(nb, l, row, size))};
                 return lanes.term(nb, l, read(nb, l, indices), indices);
               });
  }
  // (Allocations, not allocas: kiln-iteration-scratch puts them on the
  // thread's stack once the loop is a worksharing loop.)
  Value accs = memref::AllocOp::create(
      b, loc, MemRefType::get({group}, floatType), b.getI64IntegerAttr(64));
  Value identity = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(laneType, cast<FloatAttr>(init).getValue()));
  // Each group of `width` rows: each block transposed, its elements merged
  // in order, then foldLanes' tree, lane 0 merging the other lanes'
  // identities.
  auto reduceGroup = [&](OpBuilder &nb, Location l, Value firstRow) {
    Value acc = identity;
    for (int64_t block = 0; block < blocks; ++block) {
      int64_t inBlock = std::min(side, n - block * side);
      SmallVector<Value> tile;
      if (contiguous) {
        // Vector v holds rows v P, ..., v P + P - 1 (P = width / side).
        for (int64_t v = 0; v < side; ++v)
          tile.push_back(whole(
              nb, l,
              arith::AddIOp::create(nb, l, firstRow,
                                    indexConstant(nb, l, v * (width / side)))));
      } else {
        // Vector v holds the pieces of rows v, side + v, 2 side + v, ...
        Value mask = vector::CreateMaskOp::create(
            nb, l, maskType, ValueRange{indexConstant(nb, l, inBlock)});
        for (int64_t v = 0; v < side; ++v) {
          SmallVector<Value> pieces;
          for (int64_t q = 0; q < width / side; ++q)
            pieces.push_back(
                piece(nb, l,
                      arith::AddIOp::create(nb, l, firstRow,
                                            indexConstant(nb, l, q * side + v)),
                      block, mask));
          tile.push_back(concatenate(nb, l, pieces));
        }
      }
      tile = kiln::conversion::transposeTile(nb, l, tile);
      for (int64_t k = 0; k < inBlock; ++k)
        acc = lanes.merge(nb, l, acc, tile[k]);
    }
    Value others = identity;
    for (int64_t half = kReductionLanes / 2; half >= 1; half /= 2) {
      acc = lanes.merge(nb, l, acc, others);
      if (half > 1)
        others = lanes.merge(nb, l, others, others);
    }
    if (contiguous) {
      // Lane q side + i holds row i P + q.
      SmallVector<int64_t> rowLanes;
      for (int64_t r = 0; r < width; ++r)
        rowLanes.push_back(r % (width / side) * side + r / (width / side));
      acc = vector::ShuffleOp::create(nb, l, acc, acc, rowLanes);
    }
    vector::StoreOp::create(nb, l, acc, accs, ValueRange{firstRow});
  };
  if (subgroups == 1)
    reduceGroup(b, loc, zero);
  else
    scf::ForOp::create(
        b, loc, zero, indexConstant(b, loc, group),
        indexConstant(b, loc, width), ValueRange{},
        [&](OpBuilder &nb, Location l, Value firstRow, ValueRange) {
          reduceGroup(nb, l, firstRow);
          scf::YieldOp::create(nb, l);
        });
  // The iteration's results: positions [first, first + count).
  writeForallSlices(
      b, loc, forall, first, count, [&](OpBuilder &nb, Location l, Value p) {
        SmallVector<Value> results{
            memref::LoadOp::create(nb, l, accs, ValueRange{p})};
        if (!finalize)
          return results;
        return finalize(nb, l, results,
                        ValueRange{arith::AddIOp::create(nb, l, first, p)});
      });
  return SmallVector<Value>(forall.getResults());
}

} // namespace

SmallVector<Value> buildReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType, ElementReader read,
    ArrayRef<bool> mask, ArrayRef<TypedAttr> inits, ReductionBody body,
    ReductionFinalizer finalize, TypeRange finalTypes,
    const LaneReduction *lanes, bool maySplit, const LaneReduction *orderFree,
    const ElementPrefetch &prefetch, StringRef explain, Value stored) {
  // Unit dims, reduced or kept, hold one position, and consecutive dims
  // reduced (kept) alike are one dim: the reduction of the tensor seen so
  // (buildCoalescedReduction).
  if (inputType.getRank() > 1)
    if (CoalescedDims coalesced(inputType, mask); coalesced.changes(inputType))
      return buildCoalescedReduction(
          b, loc, inputType, coalesced, read, mask, inits, body, finalize,
          finalTypes, lanes, maySplit, orderFree, prefetch, explain, stored);
  int64_t rank = inputType.getRank();
  SmallVector<int64_t> keptShape, reducedDims, keptDims;
  for (int64_t d = 0; d < rank; ++d) {
    if (mask[d]) {
      reducedDims.push_back(d);
    } else {
      keptDims.push_back(d);
      keptShape.push_back(inputType.getDimSize(d));
    }
  }
  int64_t keptRank = keptShape.size();
  int64_t kept = ShapedType::getNumElements(keptShape);
  std::string what = !explain.empty()
                         ? explain.str() + " of " + typeText(inputType) +
                               " over dims " + dimList(reducedDims)
                         : std::string();
  // Lines of the innermost reduced dim shorter than the lanes all go to
  // lane 0 (laneOf), in order; the other lanes add only the identity.
  const char *order =
      !lanes ? ""
      : lanes->orderFree
          ? "; keys: each line's elements spread over the 32 lanes, one "
            "vector, folded in a tree (a maximum or minimum of keys does not "
            "depend on the order)"
      : reducedDims.empty() ||
              spreadsOverLanes(inputType.getDimSize(reducedDims.back()))
          ? "; float: 32 lanes, each its share of the elements in order, "
            "merged in a fixed tree (the same bits on every thread count "
            "and target)"
          : "; float: the innermost reduced dim is shorter than the 32 "
            "lanes, so every element goes to lane 0, in order (the same "
            "bits on every thread count and target)";
  // Lane reductions split (in the lane order); so do reductions whose
  // result does not depend on the order (`orderFree`: max, min, integer
  // sums), each segment then a free loop that LLVM vectorizes.
  const LaneReduction *merge = lanes ? lanes : orderFree;
  if (merge && maySplit)
    if (auto split = planReductionSplit(inputType, mask)) {
      if (!explain.empty())
        remarkKernel(
            b, loc,
            "{0}: {1} kept position(s) would leave threads idle, so dim {2} "
            "is split into {3} segments of {4} position(s) reduced in "
            "parallel{5}, then merged ({6} kernels){7}",
            what, kept, split->dim, split->segments, split->length,
            split->rest ? llvm::formatv(", the {0} position(s) after them by "
                                        "a kernel of their own",
                                        split->rest)
                              .str()
                        : std::string(),
            split->rest ? 3 : 2, order);
      return buildSplitReduction(b, loc, inputType, read, mask, inits, body,
                                 finalize, finalTypes, lanes, *merge, *split,
                                 prefetch);
    }
  if (lanes && !reducedDims.empty() && isGpuTarget(b)) {
    if (!explain.empty())
      remarkKernel(b, loc,
                   "{0}: GPU, a thread per (kept position, lane) computes the "
                   "lane's partial result, a second kernel merges the 32 "
                   "partials of each of the {1} kept positions{2}",
                   what, kept, order);
    return buildGpuLaneReduction(b, loc, inputType, read, keptDims, reducedDims,
                                 inits.front(), *lanes, finalize, finalTypes);
  }
  // Short rows, a row per lane (buildLaneRowsReduction).
  if (lanes && !isGpuTarget(b) && rank == 2 && !mask[0] && mask[1] &&
      inits.size() == 1 &&
      (inputType.getElementType().isF32() ||
       inputType.getElementType().isF64()) &&
      inits.front().getType() == inputType.getElementType())
    if (int64_t width = kiln::conversion::laneRowsWidth(
            kept, inputType.getDimSize(1),
            inputType.getElementType().getIntOrFloatBitWidth(),
            cpuVectorBits(b))) {
      if (!explain.empty())
        remarkKernel(
            b, loc,
            "{0}: rows of {1} elements, {2} rows at a time, a row per lane "
            "of a vector: {3} and transposed in registers, each row's "
            "elements merged in order (the same bits as a row at a time, on "
            "every thread count)",
            what, inputType.getDimSize(1), width,
            stored ? "the rows read in place"
                   : "the terms (the fused producer chain) computed in order "
                     "into a buffer in the cache, then read from it");
      return buildLaneRowsReduction(b, loc, inputType, width, read, stored,
                                    inits.front(), *lanes, finalize,
                                    finalTypes);
    }
  // The innermost dim kept (a sum over dim 0 of a matrix): rows outside,
  // contiguous columns inside.
  if (!isGpuTarget(b) && !reducedDims.empty() && !mask.back() &&
      inits.size() == 1 && inputType.getDimSize(rank - 1) > 0) {
    ColumnScheme scheme = columnScheme(
        inputType, reducedDims, lanes != nullptr, prefetch.scattered,
        [&] { return elementReadCost(b, loc, rank, read); });
    if (!explain.empty()) {
      std::string walk;
      switch (scheme) {
      case ColumnScheme::NarrowRows:
        walk = "fewer columns than a vector holds, so groups of rows update "
               "consecutive lanes' accumulators as one vector";
        break;
      case ColumnScheme::LanesInTreeOrder:
        walk = llvm::formatv("at most {0} reduced elements per column, so "
                             "each block of contiguous columns walks the 32 "
                             "lanes one after another in their merge tree's "
                             "order, each lane's rows into accumulators in "
                             "registers",
                             kColumnTreeOrderMaxElements)
                   .str();
        break;
      case ColumnScheme::RowsInRegisters:
        walk = "each block of contiguous columns walks the reduced rows in "
               "order with vector loads and accumulators in registers";
        break;
      case ColumnScheme::AccumulatorsInMemory:
        walk = "each block of contiguous columns walks the reduced rows in "
               "order, each row into its lane's accumulators (in memory)";
        break;
      }
      remarkKernel(b, loc,
                   "{0}: column reduction, the innermost dim is kept: {1}; "
                   "blocks in parallel{2}",
                   what, walk, order);
    }
    return buildColumnReduction(b, loc, inputType, read, keptDims, reducedDims,
                                inits.front(), body, lanes, finalize,
                                finalTypes, prefetch, scheme);
  }
  if (!reducedDims.empty() && !explain.empty())
    remarkKernel(b, loc,
                 "{0}: row reduction, {1} kept position(s) in parallel, each "
                 "reducing {2} element(s) with its accumulators in "
                 "registers{3}",
                 what, kept,
                 ShapedType::getNumElements(inputType.getShape()) /
                     std::max<int64_t>(kept, 1),
                 lanes ? StringRef(order)
                       : StringRef("; each in its row-major order"));
  SmallVector<Type> elementTypes;
  if (finalize)
    elementTypes.assign(finalTypes.begin(), finalTypes.end());
  else
    for (TypedAttr init : inits)
      elementTypes.push_back(init.getType());
  SmallVector<Type> resultTypes;
  SmallVector<Value> outputs;
  SmallVector<AffineMap> maps;
  reductionOutputs(b, loc, keptShape, elementTypes, resultTypes, outputs, maps);
  auto generic = linalg::GenericOp::create(
      b, loc, resultTypes, ValueRange{}, outputs, maps,
      parallelIterators(keptRank), [&](OpBuilder &nb, Location l, ValueRange) {
        SmallVector<Value> indices(rank), kept;
        for (auto [i, d] : llvm::enumerate(keptDims)) {
          indices[d] = linalg::IndexOp::create(nb, l, i);
          kept.push_back(indices[d]);
        }
        SmallVector<Value> initial;
        for (TypedAttr init : inits)
          initial.push_back(arith::ConstantOp::create(nb, l, init));
        auto step = [&](OpBuilder &ib, Location il,
                        ValueRange accs) -> SmallVector<Value> {
          return body(ib, il, read(ib, il, indices), accs, indices);
        };
        SmallVector<Value> results;
        if (reducedDims.empty()) {
          results = step(nb, l, initial);
        } else if (lanes) {
          results = {buildLaneLoops(nb, l, inputType, reducedDims, indices,
                                    inits.front(), read, *lanes)};
        } else {
          SmallVector<Value> lbs, ubs, steps;
          appendLoopBounds(nb, l, inputType, reducedDims, lbs, ubs, steps);
          scf::LoopNest nest = scf::buildLoopNest(
              nb, l, lbs, ubs, steps, initial,
              [&](OpBuilder &ib, Location il, ValueRange ivs, ValueRange accs) {
                for (auto [iv, d] : llvm::zip_equal(ivs, reducedDims))
                  indices[d] = iv;
                return scf::ValueVector(step(ib, il, accs));
              });
          results.assign(nest.results.begin(), nest.results.end());
        }
        if (finalize)
          results = finalize(nb, l, results, kept);
        linalg::YieldOp::create(nb, l, results);
      });
  return SmallVector<Value>(generic.getResults());
}

namespace {

/// A reduction over few kept positions in two stages, so that it runs on
/// many threads (the CPU's workers, the GPU's), as `split` says
/// (planReductionSplit): the first segments x length positions of dim
/// `split.dim` of the input are seen as [segments, length], the segment
/// index a kept dim of the first stage -- each segment reduced into a
/// partial result, in parallel, in the lane order with `lanes` --; the
/// `split.rest` positions after them (if any) are reduced by a kernel of
/// their own (a reduction of that slice of the input: the lane order of
/// its shape); and the last stage combines the segments' partials of each
/// kept position with `merge` (in the lane order with `lanes`), merges the
/// rest's partial into that, then applies `finalize`. The order depends on
/// the shape only: the same bits on every thread count and target.
SmallVector<Value>
buildSplitReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                    ElementReader read, ArrayRef<bool> mask,
                    ArrayRef<TypedAttr> inits, ReductionBody body,
                    ReductionFinalizer finalize, TypeRange finalTypes,
                    const LaneReduction *lanes, const LaneReduction &merge,
                    const kiln::conversion::ReductionSplit &split,
                    const ElementPrefetch &prefetch) {
  int64_t dim = split.dim, segments = split.segments, inner = split.length;
  SmallVector<int64_t> shape(inputType.getShape());
  shape[dim] = inner;
  shape.insert(shape.begin() + dim, segments);
  auto splitType = RankedTensorType::get(shape, inputType.getElementType());
  SmallVector<bool> splitMask(mask);
  splitMask.insert(splitMask.begin() + dim, false);
  // Indices of the split view -> indices of the input.
  auto original = [&](OpBuilder &nb, Location l, ValueRange ivs) {
    SmallVector<Value> at(ivs.begin(), ivs.end());
    at[dim] = arith::AddIOp::create(
        nb, l,
        arith::MulIOp::create(nb, l, ivs[dim], indexConstant(nb, l, inner)),
        ivs[dim + 1]);
    at.erase(at.begin() + dim + 1);
    return at;
  };
  // The partials of a view of the input, one per kept position of the
  // view: its indices map to the input's through `toInput`, which the
  // read, the body, the lanes' terms and (with `viewPrefetch`) the
  // prefetch follow.
  auto reduceView = [&](RankedTensorType viewType, ArrayRef<bool> viewMask,
                        auto toInput, bool viewPrefetch) -> Value {
    LaneReduction viewLanes{
        [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange ivs) {
          return lanes->term(nb, l, xs, toInput(nb, l, ivs));
        },
        merge.merge};
    ElementPrefetch mappedPrefetch;
    if (viewPrefetch && prefetch)
      mappedPrefetch = {[&](OpBuilder &nb, Location l, ValueRange ivs) {
                          prefetch(nb, l, toInput(nb, l, ivs));
                        },
                        prefetch.scattered};
    return buildReduction(
        b, loc, viewType,
        [&](OpBuilder &nb, Location l, ValueRange ivs) {
          return read(nb, l, toInput(nb, l, ivs));
        },
        viewMask, inits,
        [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
            ValueRange ivs) {
          return body(nb, l, xs, acc, toInput(nb, l, ivs));
        },
        /*finalize=*/nullptr, /*finalTypes=*/{}, lanes ? &viewLanes : nullptr,
        /*maySplit=*/false, /*orderFree=*/nullptr, mappedPrefetch)[0];
  };
  Value partials =
      reduceView(splitType, splitMask, original, /*viewPrefetch=*/true);

  // The partials' shape is the kept dims with the segment dim where `dim`
  // was: reduce that one.
  RankedTensorType partialType = tensorType(partials);
  int64_t segmentPos = llvm::count(mask.take_front(dim), false);
  SmallVector<bool> mergeMask(partialType.getRank(), false);
  mergeMask[segmentPos] = true;
  LaneReduction mergeLanes{
      [](OpBuilder &, Location, ValueRange xs, ValueRange) { return xs[0]; },
      merge.merge};
  auto readPartial = [&](OpBuilder &nb, Location l, ValueRange ivs) {
    return SmallVector<Value>{tensor::ExtractOp::create(nb, l, partials, ivs)};
  };
  auto mergeBody = [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
                       ValueRange) {
    return SmallVector<Value>{merge.merge(nb, l, acc[0], xs[0])};
  };
  // The rest: positions segments x length + j of `dim`, reduced as a
  // tensor of their own into one partial per kept position.
  Value restPartials;
  if (split.rest) {
    int64_t restStart = segments * inner;
    SmallVector<int64_t> restShape(inputType.getShape());
    restShape[dim] = split.rest;
    auto fromRest = [&](OpBuilder &nb, Location l, ValueRange ivs) {
      SmallVector<Value> at(ivs.begin(), ivs.end());
      at[dim] = arith::AddIOp::create(nb, l, ivs[dim],
                                      indexConstant(nb, l, restStart));
      return at;
    };
    restPartials =
        reduceView(RankedTensorType::get(restShape, inputType.getElementType()),
                   mask, fromRest, /*viewPrefetch=*/false);
  }
  // The last stage: the segments' partials merged, then the rest's.
  auto withRest = [&](OpBuilder &nb, Location l, ValueRange accs,
                      ValueRange kept) {
    SmallVector<Value> results{merge.merge(
        nb, l, accs[0], tensor::ExtractOp::create(nb, l, restPartials, kept))};
    return finalize ? finalize(nb, l, results, kept) : results;
  };
  SmallVector<Type> accTypes{inits.front().getType()};
  return buildReduction(
      b, loc, partialType, readPartial, mergeMask, inits, mergeBody,
      restPartials ? ReductionFinalizer(withRest) : finalize,
      restPartials && !finalize ? TypeRange(accTypes) : finalTypes,
      lanes ? &mergeLanes : nullptr, /*maySplit=*/false);
}

/// A reduction over the input seen with its dims coalesced (CoalescedDims):
/// the plans key on the innermost dims and the length of the innermost
/// reduced dim's lines. A reduced dim followed by unit dims ([N, C, 1, 1]
/// summed over C, class scores after a global pooling) was a column
/// reduction of one column; a reduced unit dim innermost sent every
/// element to lane 0, one serial chain; a mean over the 7x7 positions of
/// [N, C, 7, 7] (a global average pooling) reduced lines of 7 elements, in
/// order into lane 0, where the 49 of each channel lie one after another.
/// The callbacks get the input's indices (the coalesced ones delinearized,
/// 0 at the unit dims; LLVM folds the division and remainder of a
/// contiguous address back into the position), the finalizer the kept
/// dims' (0 at the kept unit dims); the results, of the coalesced kept
/// dims, take the kept dims' shape through a view. The lane order is the
/// coalesced input's: the bits of the same reduction of the input reshaped
/// to the coalesced shape.
SmallVector<Value> buildCoalescedReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    const CoalescedDims &coalesced, ElementReader read, ArrayRef<bool> mask,
    ArrayRef<TypedAttr> inits, ReductionBody body, ReductionFinalizer finalize,
    TypeRange finalTypes, const LaneReduction *lanes, bool maySplit,
    const LaneReduction *orderFree, const ElementPrefetch &prefetch,
    StringRef explain, Value stored) {
  int64_t rank = inputType.getRank();
  auto coalescedType =
      RankedTensorType::get(coalesced.shape, inputType.getElementType());
  SmallVector<int64_t> keptShape, coalescedKept, coalescedDims;
  for (int64_t d = 0; d < rank; ++d)
    if (!mask[d])
      keptShape.push_back(inputType.getDimSize(d));
  for (auto [i, reduced] : llvm::enumerate(coalesced.mask)) {
    if (!reduced)
      coalescedKept.push_back(coalesced.shape[i]);
    else
      coalescedDims.push_back(i);
  }
  if (!explain.empty()) {
    bool unitDims = llvm::is_contained(inputType.getShape(), 1);
    bool merged = llvm::any_of(coalesced.groups,
                               [](auto &group) { return group.size() > 1; });
    remarkKernel(b, loc,
                 "{0} of {1}: {2}{3}{4}, so it is reduced as {5} over "
                 "dims {6}",
                 explain, typeText(inputType),
                 unitDims ? "its unit dims hold one position each" : "",
                 unitDims && merged ? " and " : "",
                 merged ? "consecutive dims reduced (or kept) alike are one "
                          "run of elements"
                        : "",
                 typeText(coalescedType), dimList(coalescedDims));
  }
  // Indices of the coalesced input -> the input's.
  auto original = [&](OpBuilder &nb, Location l, ValueRange ivs) {
    SmallVector<Value> at(rank, indexConstant(nb, l, 0));
    for (auto [iv, group] : llvm::zip_equal(ivs, coalesced.groups)) {
      if (group.size() == 1) {
        at[group.front()] = iv;
        continue;
      }
      SmallVector<int64_t> sizes;
      for (int64_t d : group)
        sizes.push_back(inputType.getDimSize(d));
      for (auto [d, position] :
           llvm::zip_equal(group, delinearizeIndex(nb, l, iv, sizes)))
        at[d] = position;
    }
    return at;
  };
  auto coalescedRead = [&](OpBuilder &nb, Location l, ValueRange ivs) {
    return read(nb, l, original(nb, l, ivs));
  };
  auto coalescedBody = [&](OpBuilder &nb, Location l, ValueRange xs,
                           ValueRange acc, ValueRange ivs) {
    return body(nb, l, xs, acc, original(nb, l, ivs));
  };
  // The kept positions (of the coalesced kept dims) -> the kept dims'.
  auto coalescedFinalize = [&](OpBuilder &nb, Location l, ValueRange accs,
                               ValueRange kept) {
    SmallVector<Value> ivs(coalesced.shape.size());
    for (int64_t i = 0, k = 0, n = ivs.size(); i < n; ++i)
      ivs[i] = coalesced.mask[i] ? indexConstant(nb, l, 0) : kept[k++];
    SmallVector<Value> at = original(nb, l, ivs), keptAt;
    for (int64_t d = 0; d < rank; ++d)
      if (!mask[d])
        keptAt.push_back(at[d]);
    return finalize(nb, l, accs, keptAt);
  };
  // A lane reduction's prefetch follows the innermost reduced dim's
  // positions: kept when that dim is the coalesced one.
  std::optional<int64_t> innermost;
  for (int64_t d = 0; d < rank; ++d)
    if (mask[d])
      innermost = d;
  bool sameInnermost = !coalescedDims.empty() && innermost &&
                       coalesced.groups[coalescedDims.back()] ==
                           SmallVector<int64_t, 2>{*innermost};
  auto coalescedLanes = [&](const LaneReduction *from) {
    LaneReduction to{[&original, from](OpBuilder &nb, Location l, ValueRange xs,
                                       ValueRange ivs) {
                       return from->term(nb, l, xs, original(nb, l, ivs));
                     },
                     from->merge};
    to.orderFree = from->orderFree;
    if (sameInnermost)
      to.prefetch = from->prefetch;
    return to;
  };
  std::optional<LaneReduction> newLanes, newOrderFree;
  if (lanes)
    newLanes = coalescedLanes(lanes);
  if (orderFree)
    newOrderFree = coalescedLanes(orderFree);
  ElementPrefetch coalescedPrefetch;
  if (prefetch)
    coalescedPrefetch = {[&](OpBuilder &nb, Location l, ValueRange ivs) {
                           prefetch(nb, l, original(nb, l, ivs));
                         },
                         prefetch.scattered};
  SmallVector<Value> results = buildReduction(
      b, loc, coalescedType, coalescedRead, coalesced.mask, inits,
      coalescedBody, finalize ? ReductionFinalizer(coalescedFinalize) : nullptr,
      finalTypes, newLanes ? &*newLanes : nullptr, maySplit,
      newOrderFree ? &*newOrderFree : nullptr, coalescedPrefetch, explain,
      stored);
  for (Value &result : results) {
    auto type =
        RankedTensorType::get(keptShape, tensorType(result).getElementType());
    if (result.getType() != type)
      result = tensor::ExpandShapeOp::create(
          b, loc, type, result, expansionGroups(coalescedKept, keptShape));
  }
  return results;
}

} // namespace

SmallVector<Value> buildReduction(
    OpBuilder &b, Location loc, ValueRange inputs, ArrayRef<bool> mask,
    ArrayRef<TypedAttr> inits,
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange,
                                    ValueRange, ValueRange)>
        body,
    const LaneReduction *lanes) {
  auto read = [&](OpBuilder &b, Location l, ValueRange indices) {
    SmallVector<Value> elements;
    for (Value input : inputs)
      elements.push_back(tensor::ExtractOp::create(b, l, input, indices));
    return elements;
  };
  return buildReduction(b, loc, tensorType(inputs.front()), read, mask, inits,
                        body, /*finalize=*/nullptr, /*finalTypes=*/{}, lanes);
}

namespace {

/// Whether a float maximum or minimum (ExtremeKeys) over lines of `line`
/// contiguous elements of `bitWidth` bits takes the lane scheme, the line
/// spread over the 32 lanes as one vector and folded by the tree (keys do
/// not depend on the order): f32 lines of 9 to 16 or of 32 elements, f64
/// of 10 to 32. Its own loop over such lines LLVM unrolls whole and vectorizes
/// across the lines, each element inserted into its vector one at a time
/// (in cache, 65536 lines, f32 µs: 16 elements 217 -> 94, 32 425 -> 119,
/// 12 182 -> 99; f64 16 238 -> 125, 24 368 -> 148, 32 777 -> 267); lines
/// of up to 8 it vectorizes well so (f32 4 17 against 65 spread, 8 44
/// against 79; f64 9 100 against 127), and f32 lines of 17 to 31 within
/// the line (17 97 against 128 spread, 31 135 against 175); from 33 on the
/// two are level in f32, and LLVM's loop 10-20% ahead in f64.
bool keysSpreadOverLanes(int64_t line, unsigned bitWidth) {
  if (line > kReductionLanes)
    return false;
  if (bitWidth == 64)
    return line >= 10;
  return (line >= 9 && line <= 16) || line == kReductionLanes;
}

/// sum, prod, amax, amin: the reduction kernel (ReductionCombiner's
/// accumulator), for the op or as the anchor of a fused group.
template <typename OpTy> struct LowerDimsReduction : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  using Combiner = ReductionCombiner<OpTy>;

  /// The reduction kernel; with a fused epilogue its results are the
  /// group's.
  static SmallVector<Value> lower(OpBuilder &b, OpTy op, const KernelIO &io) {
    Location loc = op.getLoc();
    RankedTensorType inputType = tensorType(op.getInput());
    SmallVector<bool> mask = getReducedDimsMask(inputType, op.getDims());
    bool keepdim = op.getKeepdim();
    Type elementType = inputType.getElementType();
    bool keys = Combiner::usesKeys(b, elementType);
    auto read = [&](OpBuilder &nb, Location l, ValueRange indices) {
      return SmallVector<Value>{io.read(nb, l, indices)};
    };
    auto finalize = [&](OpBuilder &nb, Location l, ValueRange accs,
                        ValueRange kept) {
      SmallVector<Value> resultIndices;
      for (int64_t d = 0, k = 0; d < inputType.getRank(); ++d) {
        if (!mask[d])
          resultIndices.push_back(kept[k++]);
        else if (keepdim)
          resultIndices.push_back(indexConstant(nb, l, 0));
      }
      return io.finishElement(
          nb, l, Combiner::result(nb, l, accs[0], elementType, keys),
          resultIndices);
    };
    LaneReduction lanes = Combiner::laneReduction(keys);
    lanes.orderFree = keys;
    // The innermost reduced line as the lowering sees it (the coalesced
    // input's last dim) -- none when that dim is kept.
    auto runs = kiln::conversion::coalesceDims(inputType.getShape(), mask);
    int64_t line = !runs.empty() && runs.back().reduced ? runs.back().size : 1;
    bool useLanes = Combiner::needsLanes(elementType) || isGpuTarget(b) ||
                    (keys && keysSpreadOverLanes(
                                 line, elementType.getIntOrFloatBitWidth()));
    SmallVector<Value> results = buildReduction(
        b, loc, inputType, read, mask,
        {Combiner::identity(b, elementType, keys)},
        [keys](OpBuilder &nb, Location l, ValueRange x, ValueRange acc,
               ValueRange) {
          return SmallVector<Value>{
              Combiner::combine(nb, l, x[0], acc[0], keys)};
        },
        finalize, io.resultElementTypes(), useLanes ? &lanes : nullptr,
        /*maySplit=*/true, /*orderFree=*/&lanes, io.elementPrefetch(b, loc),
        /*explain=*/op->getName().getStringRef(), io.stored);
    for (auto [result, type] : llvm::zip_equal(results, io.resultTypes))
      result = reshapeTo(b, loc, result, cast<RankedTensorType>(type));
    return results;
  }

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op,
                       lower(rewriter, op, KernelIO::plain(op, op.getInput())));
    return success();
  }
};

} // namespace

template <typename OpTy>
Value reduceRow(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    SmallVector<Value> &indices, ElementReader read,
    std::function<void(OpBuilder &, Location, Value first)> prefetch) {
  using Lower = ReductionCombiner<OpTy>;
  Type elementType = inputType.getElementType();
  bool keys = Lower::usesKeys(b, elementType);
  int64_t inner = inputType.getRank() - 1;
  if (Lower::needsLanes(elementType)) {
    TypedAttr identity = Lower::identity(b, elementType, keys);
    auto merge = [keys](OpBuilder &nb, Location l, Value acc, Value x) {
      return Lower::merge(nb, l, acc, x, keys);
    };
    auto element = [](OpBuilder &, Location, ValueRange x, ValueRange) {
      return x[0];
    };
    int64_t n = inputType.getDimSize(inner);
    auto split = planReductionSplit(
        RankedTensorType::get(
            {inputType.getNumElements() / std::max<int64_t>(n, 1), n},
            elementType),
        {false, true});
    if (!split)
      return buildLaneLoops(b, loc, inputType, {inner}, indices, identity, read,
                            {element, merge, std::move(prefetch)});
    int64_t segments = split->segments, length = split->length;
    SmallVector<int64_t> shape(inputType.getShape());
    shape[inner] = length;
    auto segmentType = RankedTensorType::get(shape, elementType);
    shape[inner] = segments;
    auto partialsType = RankedTensorType::get(shape, elementType);
    // Partial `at[inner]`: its segment's elements in the lane order.
    auto partial = [&](OpBuilder &nb, Location l, ValueRange at) {
      Value start =
          arith::MulIOp::create(nb, l, at[inner], indexConstant(nb, l, length));
      std::function<void(OpBuilder &, Location, Value)> segmentPrefetch;
      if (prefetch)
        segmentPrefetch = [&, start](OpBuilder &ob, Location ol, Value first) {
          prefetch(ob, ol, arith::AddIOp::create(ob, ol, start, first));
        };
      SmallVector<Value> segmentAt(at.begin(), at.end());
      auto segmentRead = readFrom(read, inner, start);
      return SmallVector<Value>{
          buildLaneLoops(nb, l, segmentType, {inner}, segmentAt, identity,
                         segmentRead, {element, merge, segmentPrefetch})};
    };
    Value merged = buildLaneLoops(b, loc, partialsType, {inner}, indices,
                                  identity, partial, {element, merge});
    if (!split->rest)
      return merged;
    // The rest after the segments, in the lane order of a row of its own:
    // the split's rest kernel's operations.
    shape[inner] = split->rest;
    auto restType = RankedTensorType::get(shape, elementType);
    auto restRead =
        readFrom(read, inner, indexConstant(b, loc, segments * length));
    Value rest = buildLaneLoops(b, loc, restType, {inner}, indices, identity,
                                restRead, {element, merge});
    return merge(b, loc, merged, rest);
  }
  Value init =
      arith::ConstantOp::create(b, loc, Lower::identity(b, elementType, keys));
  auto loop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0),
      indexConstant(b, loc, inputType.getDimSize(inner)),
      indexConstant(b, loc, 1), ValueRange{init},
      [&](OpBuilder &ib, Location il, Value j, ValueRange acc) {
        indices[inner] = j;
        Value x = read(ib, il, indices)[0];
        scf::YieldOp::create(ib, il, Lower::combine(ib, il, x, acc[0], keys));
      });
  return Lower::result(b, loc, loop.getResult(0), elementType, keys);
}

Value updateColumnLane(
    OpBuilder &b, Location loc, Value acc, Value lane, Value width,
    function_ref<Value(OpBuilder &, Location, Value old, Value c)> combine) {
  auto loop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), width, indexConstant(b, loc, 1),
      ValueRange{acc},
      [&](OpBuilder &cb, Location cl, Value c, ValueRange accs) {
        Value old =
            tensor::ExtractOp::create(cb, cl, accs[0], ValueRange{lane, c});
        scf::YieldOp::create(
            cb, cl,
            Value(tensor::InsertOp::create(cb, cl, combine(cb, cl, old, c),
                                           accs[0], ValueRange{lane, c})));
      });
  return loop.getResult(0);
}

Value mergeColumnLanes(OpBuilder &b, Location loc, Value acc, Value c,
                       int64_t laneCount, const LaneReduction *lanes) {
  SmallVector<Value> partial;
  for (int64_t lane = 0; lane < laneCount; ++lane)
    partial.push_back(tensor::ExtractOp::create(
        b, loc, acc, ValueRange{indexConstant(b, loc, lane), c}));
  return laneCount > 1 ? mergeLaneTree(b, loc, partial, *lanes) : partial[0];
}

/// The most an element's read may cost (elementReadCost) for a column
/// reduction to keep its accumulators in registers: each row's body reads
/// the block's columns one by one, so a long fused chain is built (and
/// compiled) 128 times per row, where the loop over the columns of the
/// memory accumulators builds it once and LLVM vectorizes that loop. A sum
/// over dim 1 of exp(x) * log(|x| + 1) + tanh(x) of 8x64x1024 f32 compiled
/// in 1.13 s in registers against 0.16 in memory, and ran in 0.45 ms
/// against 0.38 at 1 thread.
static constexpr int64_t kColumnRegistersMaxReadCost = 16;

int64_t elementReadCost(OpBuilder &b, Location loc, int64_t rank,
                        ElementReader read) {
  // Built where the kernel will read (the reader may look at the enclosing
  // ops: the target), inside an op of its own that is then erased, by a
  // builder without the caller's listener, which never sees these ops.
  OpBuilder pb(b.getContext());
  pb.setInsertionPoint(b.getInsertionBlock(), b.getInsertionPoint());
  auto probe = scf::ExecuteRegionOp::create(pb, loc, TypeRange{});
  pb.createBlock(&probe.getRegion());
  Value zero = arith::ConstantIndexOp::create(pb, loc, 0);
  SmallVector<Value> indices(rank, zero);
  read(pb, loc, indices);
  int64_t cost = 0;
  probe.getRegion().walk([&](Operation *op) {
    if (op == zero.getDefiningOp())
      return;
    bool transcendental =
        isa<math::MathDialect>(op->getDialect()) &&
        !isa<math::AbsFOp, math::AbsIOp, math::SqrtOp, math::RsqrtOp,
             math::FloorOp, math::CeilOp, math::TruncOp, math::RoundOp,
             math::RoundEvenOp, math::FmaOp, math::CopySignOp>(op);
    cost += transcendental ? kColumnRegistersMaxReadCost : 1;
  });
  probe->erase();
  return cost;
}

ColumnScheme columnScheme(RankedTensorType inputType,
                          ArrayRef<int64_t> reducedDims, bool hasLanes,
                          bool scattered, function_ref<int64_t()> readCost) {
  int64_t rank = inputType.getRank();
  int64_t columns = inputType.getDimSize(rank - 1);
  int64_t inner = reducedDims.back();
  bool spread = hasLanes && spreadsOverLanes(inputType.getDimSize(inner));
  int64_t bits = inputType.getElementTypeBitWidth();
  if (spread && columns < elementsPerLine(bits) && inner == rank - 2)
    return ColumnScheme::NarrowRows;
  // Rows an indexed read selects keep their own prefetching (bags of rows
  // carried from one reduction into the next); a costly read, its fused
  // chain (kColumnRegistersMaxReadCost); narrow element types would
  // take 128 or more scalar reads per row; integer sums measured no faster
  // in registers (i64 over dim 0 of 1000x1000 at 1 / 2 threads: 0.077 /
  // 0.053 ms in memory, 0.080-0.085 / 0.059 in registers).
  int64_t reducedCount = 1;
  for (int64_t d : reducedDims)
    reducedCount *= inputType.getDimSize(d);
  if (scattered || bits < 32 || !isa<FloatType>(inputType.getElementType()) ||
      (spread && reducedCount > kColumnTreeOrderMaxElements) ||
      readCost() > kColumnRegistersMaxReadCost)
    return ColumnScheme::AccumulatorsInMemory;
  return spread ? ColumnScheme::LanesInTreeOrder
                : ColumnScheme::RowsInRegisters;
}

/// A block of a column reduction (buildColumnReduction) with its
/// accumulators in registers: a vector of `block` columns (chunks of one
/// 512-bit vector) per partial result, carried through the reduced rows'
/// loops, each row's `block` elements read as scalars and assembled into
/// the chunks (which LLVM's SLP vectorizer turns into vector loads and
/// operations, as in buildLaneLoops). With `lanes` over 32 lanes
/// (`treeOrder`), the lanes are walked one at a time, in the order of
/// their merge tree (lane bitreverse(i) at step i: 0, 16, 8, 24, ...), each
/// lane's elements (innermost reduced index l, l + 32, ..., in row-major
/// order) into one vector, and the finished subtrees kept on a stack of
/// partial rows, merged as a binary counter does: after step i, as many
/// merges as i has trailing ones -- for every column exactly the merges of
/// mergeLaneTree, with the left operand the lower lane, so the same bits.
/// Otherwise the reduced rows are walked in order into one vector of
/// accumulators (`lanes` with every element in lane 0, or `body`). Returns
/// the block's results as a [1, block] tensor.
Value buildColumnBlockInRegisters(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    ArrayRef<int64_t> reducedDims, SmallVectorImpl<Value> &indices, Value first,
    int64_t block, TypedAttr init, ElementReader read, ReductionBody body,
    const LaneReduction *lanes, bool treeOrder, const ElementPrefetch *prefetch,
    int64_t rowsAhead) {
  int64_t rank = inputType.getRank();
  int64_t inner = reducedDims.back();
  int64_t innerSize = inputType.getDimSize(inner);
  Type accType = init.getType();
  int64_t chunkLanes = elementsPerLine(accType.getIntOrFloatBitWidth());
  SmallVector<VectorType> chunkTypes;
  for (int64_t start = 0; start < block; start += chunkLanes)
    chunkTypes.push_back(
        VectorType::get({std::min(chunkLanes, block - start)}, accType));
  // The block's column indices, computed once.
  SmallVector<Value> columnIndex;
  for (int64_t c = 0; c < block; ++c)
    columnIndex.push_back(
        arith::AddIOp::create(b, loc, first, indexConstant(b, loc, c)));
  auto initialChunks = [&](OpBuilder &ib, Location il) {
    SmallVector<Value> chunks;
    for (VectorType type : chunkTypes)
      chunks.push_back(arith::ConstantOp::create(
          ib, il, DenseElementsAttr::get(type, init)));
    return chunks;
  };
  // One reduced row (the reduced indices set) into the chunks.
  auto updateRow = [&](OpBuilder &ub, Location ul, ValueRange chunks) {
    SmallVector<Value> updated;
    for (auto [k, chunk] : llvm::enumerate(chunks)) {
      VectorType type = chunkTypes[k];
      SmallVector<Value> values;
      for (int64_t e = 0; e < type.getNumElements(); ++e) {
        indices[rank - 1] = columnIndex[k * chunkLanes + e];
        SmallVector<Value> xs = read(ub, ul, indices);
        if (lanes) {
          values.push_back(lanes->term(ub, ul, xs, indices));
        } else {
          Value old = vector::ExtractOp::create(ub, ul, chunk, e);
          values.push_back(body(ub, ul, xs, ValueRange{old}, indices)[0]);
        }
      }
      Value assembled = vector::FromElementsOp::create(ub, ul, type, values);
      updated.push_back(lanes ? lanes->merge(ub, ul, chunk, assembled)
                              : assembled);
    }
    return updated;
  };
  // Prefetches the block's part of the reduced row at `indices`.
  auto prefetchRow = [&](OpBuilder &pb, Location pl) {
    for (int64_t c = 0; c < block; c += chunkLanes) {
      SmallVector<Value> at(indices.begin(), indices.end());
      at[rank - 1] = columnIndex[c];
      (*prefetch)(pb, pl, at);
    }
  };
  SmallVector<Value> lbs, ubs, steps;
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  Value result =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{1, block}, accType);
  auto writeChunks = [&](OpBuilder &wb, Location wl, ValueRange chunks,
                         Value into, Value row) {
    for (auto [k, chunk] : llvm::enumerate(chunks))
      into = vector::TransferWriteOp::create(
                 wb, wl, chunk, into,
                 ValueRange{row, indexConstant(wb, wl, k * chunkLanes)},
                 ArrayRef<bool>{true})
                 .getResult();
    return into;
  };
  if (!treeOrder) {
    // The reduced rows in order.
    appendLoopBounds(b, loc, inputType, reducedDims, lbs, ubs, steps);
    scf::LoopNest nest = scf::buildLoopNest(
        b, loc, lbs, ubs, steps, initialChunks(b, loc),
        [&](OpBuilder &ob, Location ol, ValueRange ivs,
            ValueRange chunks) -> scf::ValueVector {
          for (auto [iv, d] : llvm::zip_equal(ivs, reducedDims))
            indices[d] = iv;
          if (prefetch) {
            Value current = indices[inner];
            indices[inner] = arith::MinUIOp::create(
                ob, ol,
                arith::AddIOp::create(ob, ol, current,
                                      indexConstant(ob, ol, rowsAhead)),
                indexConstant(ob, ol, innerSize - 1));
            prefetchRow(ob, ol);
            indices[inner] = current;
          }
          return updateRow(ob, ol, chunks);
        });
    return writeChunks(b, loc, nest.results, result, zero);
  }
  // The lanes in tree order, finished subtrees on `stack`: before step i,
  // popcount(i) of them (at most 5).
  int64_t lanes32 = kReductionLanes, levels = llvm::Log2_64(lanes32);
  Value stack = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{levels, block}, accType);
  // bitreverse(i) over `levels` bits.
  auto laneAt = [&](OpBuilder &lb, Location ll, Value i) {
    Value lane = indexConstant(lb, ll, 0);
    for (int64_t bit = 0; bit < levels; ++bit) {
      Value set = arith::AndIOp::create(
          lb, ll, arith::ShRUIOp::create(lb, ll, i, indexConstant(lb, ll, bit)),
          one);
      lane = arith::OrIOp::create(
          lb, ll, lane,
          arith::ShLIOp::create(lb, ll, set,
                                indexConstant(lb, ll, levels - 1 - bit)));
    }
    return lane;
  };
  appendLoopBounds(b, loc, inputType, reducedDims.drop_back(), lbs, ubs, steps);
  // The loops over lane `lane`'s rows, `rowBody` on each.
  auto laneRows =
      [&](OpBuilder &nb, Location nl, Value lane, ValueRange initial,
          function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)>
              rowBody) {
        scf::LoopNest nest = scf::buildLoopNest(
            nb, nl, lbs, ubs, steps, initial,
            [&](OpBuilder &ob, Location ol, ValueRange ivs,
                ValueRange outer) -> scf::ValueVector {
              for (auto [iv, d] : llvm::zip_equal(ivs, reducedDims.drop_back()))
                indices[d] = iv;
              auto rows = scf::ForOp::create(
                  ob, ol, lane, indexConstant(ob, ol, innerSize),
                  indexConstant(ob, ol, lanes32), outer,
                  [&](OpBuilder &rb, Location rl, Value row, ValueRange inner) {
                    indices[reducedDims.back()] = row;
                    scf::YieldOp::create(rb, rl, rowBody(rb, rl, inner));
                  });
              return scf::ValueVector(rows.getResults());
            });
        return SmallVector<Value>(nest.results);
      };
  auto steps32 = scf::ForOp::create(
      b, loc, zero, indexConstant(b, loc, lanes32), one,
      ValueRange{stack, zero},
      [&](OpBuilder &sb, Location sl, Value i, ValueRange carried) {
        Value partials = carried[0], depth = carried[1];
        if (prefetch) {
          // The rows of the lane kColumnPrefetchRows steps ahead.
          Value ahead = arith::AddIOp::create(
              sb, sl, i, indexConstant(sb, sl, kColumnPrefetchRows));
          Value inRange =
              arith::CmpIOp::create(sb, sl, arith::CmpIPredicate::ult, ahead,
                                    indexConstant(sb, sl, lanes32));
          scf::IfOp::create(sb, sl, inRange, [&](OpBuilder &pb, Location pl) {
            laneRows(pb, pl, laneAt(pb, pl, ahead), ValueRange{},
                     [&](OpBuilder &rb, Location rl, ValueRange) {
                       prefetchRow(rb, rl);
                       return SmallVector<Value>{};
                     });
            scf::YieldOp::create(pb, pl);
          });
        }
        SmallVector<Value> chunks =
            laneRows(sb, sl, laneAt(sb, sl, i), initialChunks(sb, sl),
                     [&](OpBuilder &rb, Location rl, ValueRange current) {
                       return updateRow(rb, rl, current);
                     });
        // Merge level `level` when i's lowest level + 1 bits are all ones:
        // the stack's top holds the subtree to the left.
        Value next = arith::AddIOp::create(sb, sl, i, one);
        for (int64_t level = 0; level < levels; ++level) {
          Value low = arith::AndIOp::create(
              sb, sl, next, indexConstant(sb, sl, (int64_t{2} << level) - 1));
          Value merges = arith::CmpIOp::create(sb, sl, arith::CmpIPredicate::eq,
                                               low, zero);
          Value at = arith::SubIOp::create(sb, sl, depth, one);
          auto merged = scf::IfOp::create(
              sb, sl, merges,
              [&](OpBuilder &mb, Location ml) {
                SmallVector<Value> out;
                for (auto [k, chunk] : llvm::enumerate(chunks)) {
                  Value left = vector::TransferReadOp::create(
                      mb, ml, chunkTypes[k], partials,
                      ValueRange{at, indexConstant(mb, ml, k * chunkLanes)},
                      arith::ConstantOp::create(mb, ml, init),
                      ArrayRef<bool>{true});
                  out.push_back(lanes->merge(mb, ml, left, chunk));
                }
                scf::YieldOp::create(mb, ml, out);
              },
              [&](OpBuilder &mb, Location ml) {
                scf::YieldOp::create(mb, ml, chunks);
              });
          chunks.assign(merged.getResults().begin(), merged.getResults().end());
          depth = arith::SelectOp::create(sb, sl, merges, at, depth);
        }
        partials = writeChunks(sb, sl, chunks, partials, depth);
        scf::YieldOp::create(
            sb, sl,
            ValueRange{partials, arith::AddIOp::create(sb, sl, depth, one)});
      });
  SmallVector<Value> finalChunks;
  for (auto [k, type] : llvm::enumerate(chunkTypes))
    finalChunks.push_back(vector::TransferReadOp::create(
        b, loc, type, steps32.getResult(0),
        ValueRange{zero, indexConstant(b, loc, k * chunkLanes)},
        arith::ConstantOp::create(b, loc, init), ArrayRef<bool>{true}));
  return writeChunks(b, loc, finalChunks, result, zero);
}

namespace {

/// A reduction whose input keeps its innermost dim (a sum over dim 0 of a
/// row-major matrix), on the CPU. Walking each kept position's reduced
/// elements would read memory with a stride (one cache line per element);
/// instead an scf.forall over (outer kept position, block of columns of the
/// innermost dim) walks the reduced dims outside and the block's columns
/// inside, contiguous (vectorized by LLVM), updating a block of
/// accumulators: with `lanes`, 32 per column, the reduced element of
/// innermost index i going to lane i % 32, and the lanes merged in the fixed
/// tree -- for every column exactly the operations of buildLaneLoops (its
/// blocks of kLaneBlockSteps steps included), so the same bits; without,
/// `body` in the reduced elements' row-major order.
/// columnScheme picks how: accumulators in registers
/// (buildColumnBlockInRegisters: the lanes in tree order, or one
/// accumulator per column), narrow rows, or a [lane, column] block of
/// accumulators in memory, the rows in order. `finalize` then applies per
/// column.
SmallVector<Value>
buildColumnReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                     ElementReader read, ArrayRef<int64_t> keptDims,
                     ArrayRef<int64_t> reducedDims, TypedAttr init,
                     ReductionBody body, const LaneReduction *lanes,
                     ReductionFinalizer finalize, TypeRange finalTypes,
                     const ElementPrefetch &prefetch, ColumnScheme scheme) {
  OpBuilder::InsertionGuard guard(b);
  int64_t rank = inputType.getRank();
  int64_t columns = inputType.getDimSize(rank - 1);
  int64_t inner = reducedDims.back();
  int64_t innerSize = inputType.getDimSize(inner);
  // Fewer reduced rows than lanes (innermost reduced dim): every row goes
  // to lane 0 (laneOf), and the other lanes would stay at the identity,
  // which their tree adds to lane 0 without changing its bits (x + +0 is
  // x, lane 0 starting at +0 is never -0; x * 1 is x): one lane, no tree.
  // A sum over dim 1 of 4096x16x64 f32 filled and merged 32 lanes per 16
  // rows: 0.81 -> 0.37 ms at 1 thread (PyTorch 0.41).
  int64_t laneCount =
      lanes && spreadsOverLanes(innerSize) ? kReductionLanes : 1;
  // Blocks of 512 bytes of a row, 128 f32 or 64 f64 columns: 32 lanes of
  // accumulators are 16 KB, half the L1 cache (a block of 512 f32 without
  // lanes measured no faster; 128 f64 columns, 32 KB of accumulators, sum
  // over dim 0 of 1000x1001 f64 in 190 us instead of 163; 32 f32 columns
  // 104 us instead of 81 on 1000x1001).
  int64_t elementBytes =
      std::max<int64_t>(1, inputType.getElementTypeBitWidth() / 8);
  // Narrow rows (below): fewer columns than a 512-bit vector (a 64-byte
  // cache line) holds.
  int64_t lineElements = elementsPerLine(inputType.getElementTypeBitWidth());
  bool narrow = scheme == ColumnScheme::NarrowRows;
  bool inRegisters = scheme == ColumnScheme::LanesInTreeOrder ||
                     scheme == ColumnScheme::RowsInRegisters;
  int64_t block = std::min(columns, 512 / elementBytes);
  // In registers, a block that divides the columns when one of at least
  // half the width does: a narrower last block takes loops of its own.
  if (inRegisters && columns % block != 0)
    if (int64_t divisor = kiln::conversion::largestDivisor(columns, block);
        2 * divisor >= block)
      block = divisor;
  int64_t blocks = (columns + block - 1) / block;
  Type accType = init.getType();
  SmallVector<int64_t> keptShape, grid;
  for (int64_t d : keptDims)
    keptShape.push_back(inputType.getDimSize(d));
  grid.assign(keptShape.begin(), keptShape.end() - 1);
  grid.push_back(blocks);
  SmallVector<Type> elementTypes =
      finalize ? SmallVector<Type>(finalTypes) : SmallVector<Type>{accType};
  SmallVector<Value> outputs;
  for (Type type : elementTypes)
    outputs.push_back(tensor::EmptyOp::create(b, loc, keptShape, type));
  SmallVector<Value> coords;
  scf::ForallOp forall = createGridForall(b, loc, grid, outputs, coords);
  Value first = arith::MulIOp::create(b, loc, coords.back(),
                                      indexConstant(b, loc, block));
  Value width = arith::MinSIOp::create(
      b, loc, indexConstant(b, loc, block),
      arith::SubIOp::create(b, loc, indexConstant(b, loc, columns), first));
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  SmallVector<Value> indices(rank);
  for (auto [i, d] : llvm::enumerate(keptDims.drop_back()))
    indices[d] = coords[i];
  // The accumulator's next value from its `old` one and the element at
  // `indices` (the block's column c, the reduced indices set).
  auto combine = [&](OpBuilder &ub, Location ul, Value old, Value c) -> Value {
    indices[rank - 1] = arith::AddIOp::create(ub, ul, first, c);
    SmallVector<Value> xs = read(ub, ul, indices);
    return lanes ? lanes->merge(ub, ul, old, lanes->term(ub, ul, xs, indices))
                 : body(ub, ul, xs, ValueRange{old}, indices)[0];
  };
  // Narrow rows (fewer columns than a 512-bit vector holds, one block, the
  // innermost reduced dim right before them): the per-row column loop is
  // too short to vectorize -- a scalar load, add and store per element.
  // But consecutive rows are contiguous, and so are the accumulators of
  // consecutive lanes ([lane, column], row-major). A group of `unroll`
  // rows, whose unroll x columns elements fill whole vectors, updates as
  // many consecutive accumulators, read and written as one vector and
  // updated element by element, which LLVM's SLP vectorizer turns into
  // vector loads and adds (sum over dim 0 of 4096x10 f32 at 1 thread: 15 ->
  // 2 us). The same operations per accumulator, so the same bits.
  int64_t unroll = lineElements / std::gcd(columns, lineElements);
  // `rows` rows from row `row0` of the innermost reduced dim into the
  // consecutive accumulators from lane `lane0` on (narrow rows), a vector
  // of them at a time (fewer for a tail row).
  auto updateRows = [&](OpBuilder &gb, Location gl, Value acc, Value row0,
                        Value lane0, int64_t rows) -> Value {
    Value offset =
        arith::MulIOp::create(gb, gl, lane0, indexConstant(gb, gl, columns));
    Value pad = arith::ConstantOp::create(gb, gl, init);
    int64_t count = rows * columns;
    for (int64_t start = 0; start < count; start += lineElements) {
      int64_t size = std::min(lineElements, count - start);
      auto type = VectorType::get({size}, accType);
      Value at =
          arith::AddIOp::create(gb, gl, offset, indexConstant(gb, gl, start));
      Value vector = vector::TransferReadOp::create(
          gb, gl, type, acc, ValueRange{at}, pad, ArrayRef<bool>{true});
      for (int64_t e = 0; e < size; ++e) {
        int64_t u = (start + e) / columns, c = (start + e) % columns;
        indices[inner] =
            arith::AddIOp::create(gb, gl, row0, indexConstant(gb, gl, u));
        Value old = vector::ExtractOp::create(gb, gl, vector, e);
        vector = vector::InsertOp::create(
            gb, gl, combine(gb, gl, old, indexConstant(gb, gl, c)), vector, e);
      }
      acc = vector::TransferWriteOp::create(gb, gl, vector, acc, ValueRange{at},
                                            ArrayRef<bool>{true})
                .getResult();
    }
    return acc;
  };
  // The input is prefetched `rowsAhead` reduced rows ahead: each
  // row's segment of the block lies in another page, out of reach of the
  // hardware's stream prefetch (and an indexed read in the chain selects
  // rows at random: 65536 rows of 32768x256 f32 summed, 2.86 -> 1.87 ms at
  // 1 thread). Narrow rows are read in order, and not prefetched when an
  // indexed read selects them either: a row's prefetches cost about what
  // its load and add do, and they gained only on a table larger than this
  // machine's L3 (1000000 rows of 8 f32 summed: 2.9 -> 2.2 ms at 1 thread
  // from 1000000x8, 32 MB; 0.93 -> 1.03 from 262144x8).
  int64_t stride =
      elementBytes *
      ShapedType::getNumElements(inputType.getShape().drop_front(inner + 1));
  bool prefetchRows =
      prefetch && !narrow &&
      (prefetch.scattered || stride >= kColumnPrefetchMinStride);
  int64_t rowsAhead =
      prefetch.scattered ? std::clamp<int64_t>(
                               kScatteredPrefetchBytes / (block * elementBytes),
                               kColumnPrefetchRows, kMaxScatteredPrefetchRows)
                         : kColumnPrefetchRows;
  // Scattered rows are prefetched across the end of a reduction into the
  // next one when the next coordinate this thread reduces (one block of
  // columns, the reduced dim right before them) is the next index of the
  // dim before the innermost reduced one: bags of a few selected rows, of
  // which a prefetch clamped to the bag reached only the last (4096 bags of
  // 16 rows of 100000x64 f32 summed at 1 thread: 1.90 -> 0.57-0.68 ms in
  // bench/run.py, 1.5-1.9 -> 0.72-0.77 in a noisier moment).
  bool carryAhead =
      prefetch.scattered && blocks == 1 && inner >= 1 && inner == rank - 2;
  Value acc;
  if (inRegisters) {
    auto blockOf = [&](OpBuilder &rb, Location rl, int64_t size) {
      return buildColumnBlockInRegisters(
          rb, rl, inputType, reducedDims, indices, first, size, init, read,
          body, lanes, laneCount > 1, prefetchRows ? &prefetch : nullptr,
          rowsAhead);
    };
    if (int64_t tail = columns % block; tail == 0 || blocks == 1) {
      acc = blockOf(b, loc, block);
    } else {
      // The last block is narrower: its own loops, whose column indices
      // stay consecutive (clamped ones would not vectorize).
      Value full = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                         width, indexConstant(b, loc, block));
      auto accType1 = RankedTensorType::get({1, block}, accType);
      acc = scf::IfOp::create(
                b, loc, full,
                [&](OpBuilder &tb, Location tl) {
                  scf::YieldOp::create(tb, tl, blockOf(tb, tl, block));
                },
                [&](OpBuilder &tb, Location tl) {
                  Value part = blockOf(tb, tl, tail);
                  Value whole = tensor::EmptyOp::create(
                      tb, tl, accType1.getShape(), accType);
                  SmallVector<OpFoldResult> zeros(2, tb.getIndexAttr(0)),
                      ones(2, tb.getIndexAttr(1));
                  SmallVector<OpFoldResult> sizes{tb.getIndexAttr(1),
                                                  tb.getIndexAttr(tail)};
                  scf::YieldOp::create(
                      tb, tl,
                      Value(tensor::InsertSliceOp::create(tb, tl, part, whole,
                                                          zeros, sizes, ones)));
                })
                .getResult(0);
    }
    laneCount = 1;
  } else {
    // The block's accumulators, [lane, column], all at `init` (narrow
    // rows: flattened, consecutive lanes' accumulators adjacent).
    // Each lane's row of accumulators starts on a 64-byte line (padded
    // past the block's columns, never read): rows of 24 or 40 f32 made
    // every vector of a lane's update straddle two lines, and the sum
    // over dim 0 of 50000x40 f32 ran 4x slower than that of 50000x64.
    int64_t accColumns =
        narrow ? block
               : llvm::alignTo(
                     block, elementsPerLine(accType.getIntOrFloatBitWidth()));
    auto accType2 = RankedTensorType::get({laneCount, accColumns}, accType);
    auto freshAccumulators = [&](OpBuilder &fb, Location fl) -> Value {
      Value fresh = filledTensor(fb, fl, accType2, init);
      if (narrow)
        fresh = tensor::CollapseShapeOp::create(
            fb, fl, fresh, ArrayRef<ReassociationIndices>{{0, 1}});
      return fresh;
    };
    // Rows [begin, end) of the innermost reduced dim into `acc`.
    auto walkRows = [&](OpBuilder &ob, Location ol, Value begin, Value end,
                        Value acc) -> Value {
      if (narrow) {
        // Groups of `unroll` rows (a divisor of kReductionLanes, and
        // `begin` a multiple of it, so a group's lanes are consecutive),
        // then the rows left over one at a time.
        Value unrollValue = indexConstant(ob, ol, unroll);
        std::optional<int64_t> from = getConstantIntValue(begin),
                               to = getConstantIntValue(end);
        Value grouped =
            from && to
                ? indexConstant(ob, ol, *from + (*to - *from) / unroll * unroll)
                : Value(arith::AddIOp::create(
                      ob, ol, begin,
                      arith::MulIOp::create(
                          ob, ol,
                          arith::DivUIOp::create(
                              ob, ol, arith::SubIOp::create(ob, ol, end, begin),
                              unrollValue),
                          unrollValue)));
        auto groups = scf::ForOp::create(
            ob, ol, begin, grouped, unrollValue, ValueRange{acc},
            [&](OpBuilder &gb, Location gl, Value row0, ValueRange a) {
              scf::YieldOp::create(gb, gl,
                                   updateRows(gb, gl, a[0], row0,
                                              laneOf(gb, gl, row0, innerSize),
                                              unroll));
            });
        auto tail = scf::ForOp::create(
            ob, ol, grouped, end, one, groups.getResults(),
            [&](OpBuilder &tb, Location tl, Value i, ValueRange a) {
              scf::YieldOp::create(
                  tb, tl,
                  updateRows(tb, tl, a[0], i, laneOf(tb, tl, i, innerSize), 1));
            });
        return tail.getResult(0);
      }
      auto rows = scf::ForOp::create(
          ob, ol, begin, end, one, ValueRange{acc},
          [&](OpBuilder &rb, Location rl, Value i, ValueRange a) {
            indices[inner] = i;
            Value lane = lanes ? laneOf(rb, rl, i, innerSize) : zero;
            if (prefetchRows) {
              SmallVector<Value> ahead(indices);
              Value next = arith::AddIOp::create(
                  rb, rl, i, indexConstant(rb, rl, rowsAhead));
              if (carryAhead) {
                // Past the last row, the rows of the next reduction.
                Value size = indexConstant(rb, rl, innerSize);
                ahead[inner] = arith::RemUIOp::create(rb, rl, next, size);
                ahead[inner - 1] = arith::MinUIOp::create(
                    rb, rl,
                    arith::AddIOp::create(
                        rb, rl, indices[inner - 1],
                        arith::DivUIOp::create(rb, rl, next, size)),
                    indexConstant(rb, rl, inputType.getDimSize(inner - 1) - 1));
              } else {
                ahead[inner] = arith::MinUIOp::create(
                    rb, rl, next, indexConstant(rb, rl, innerSize - 1));
              }
              scf::ForOp::create(
                  rb, rl, zero, width, indexConstant(rb, rl, lineElements),
                  ValueRange{},
                  [&](OpBuilder &pb, Location pl, Value c, ValueRange) {
                    SmallVector<Value> at(ahead);
                    at[rank - 1] = arith::AddIOp::create(pb, pl, first, c);
                    prefetch(pb, pl, at);
                    scf::YieldOp::create(pb, pl);
                  });
            }
            scf::YieldOp::create(
                rb, rl, updateColumnLane(rb, rl, a[0], lane, width, combine));
          });
      return rows.getResult(0);
    };
    // A block of rows' accumulators merged into `acc`, lane by lane and
    // column by column (all `accColumns` columns: past `width` both hold
    // `init`).
    auto mergeBlock = [&](OpBuilder &mb, Location ml, Value acc,
                          Value part) -> Value {
      auto loop = scf::ForOp::create(
          mb, ml, zero, indexConstant(mb, ml, laneCount * accColumns), one,
          ValueRange{acc},
          [&](OpBuilder &lb, Location ll, Value i, ValueRange a) {
            SmallVector<Value> at{i};
            if (!narrow) {
              Value columnsValue = indexConstant(lb, ll, accColumns);
              at = {arith::DivUIOp::create(lb, ll, i, columnsValue),
                    arith::RemUIOp::create(lb, ll, i, columnsValue)};
            }
            Value old = tensor::ExtractOp::create(lb, ll, a[0], at);
            Value add = tensor::ExtractOp::create(lb, ll, part, at);
            scf::YieldOp::create(
                lb, ll,
                Value(tensor::InsertOp::create(
                    lb, ll, lanes->merge(lb, ll, old, add), a[0], at)));
          });
      return loop.getResult(0);
    };
    SmallVector<Value> lbs, ubs, steps;
    ArrayRef<int64_t> outerDims = ArrayRef<int64_t>(reducedDims).drop_back();
    appendLoopBounds(b, loc, inputType, outerDims, lbs, ubs, steps);
    scf::LoopNest nest = scf::buildLoopNest(
        b, loc, lbs, ubs, steps, ValueRange{freshAccumulators(b, loc)},
        [&](OpBuilder &ob, Location ol, ValueRange ivs,
            ValueRange accs) -> scf::ValueVector {
          for (auto [iv, d] : llvm::zip(ivs, outerDims))
            indices[d] = iv;
          // The lane order's blocks (buildLaneBlocks): a line of more than
          // kLaneBlockSteps steps of 32 rows adds each block of them into
          // accumulators from `init`, merged into the running ones; the
          // rows after the last whole step (the tail) go straight in. A
          // line of one block keeps one loop over all its rows.
          int64_t mainEnd = innerSize / kReductionLanes * kReductionLanes;
          if (laneCount == 1 ||
              laneBlocks(mainEnd / kReductionLanes).first == 0)
            return {walkRows(ob, ol, zero, indexConstant(ob, ol, innerSize),
                             accs[0])};
          Value acc = buildLaneBlocks(
              ob, ol, mainEnd / kReductionLanes, accs[0],
              [&](OpBuilder &sb, Location sl, OpFoldResult first,
                  int64_t stepCount, Value a) {
                auto [begin, end] = laneStepRange(sb, sl, first, stepCount);
                return walkRows(sb, sl, begin, end, a);
              },
              freshAccumulators, mergeBlock);
          if (mainEnd < innerSize)
            acc = walkRows(ob, ol, indexConstant(ob, ol, mainEnd),
                           indexConstant(ob, ol, innerSize), acc);
          return {acc};
        });
    acc = nest.results.front();
    if (narrow)
      acc = tensor::ExpandShapeOp::create(
          b, loc, RankedTensorType::get({laneCount, block}, accType), acc,
          ArrayRef<ReassociationIndices>{{0, 1}});
  }
  // Per column: the lanes' tree, then `finalize`, written into the
  // block's slice of each result (in place after bufferization).
  SmallVector<OpFoldResult> offsets, sizes, strides;
  for (Value coord : ArrayRef<Value>(coords).drop_back()) {
    offsets.push_back(coord);
    sizes.push_back(b.getIndexAttr(1));
  }
  offsets.push_back(first);
  sizes.push_back(width);
  strides.assign(offsets.size(), b.getIndexAttr(1));
  SmallVector<Value> blockResults;
  for (auto [type, shared] :
       llvm::zip_equal(elementTypes, forall.getRegionIterArgs()))
    blockResults.push_back(tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({ShapedType::kDynamic}, type), shared,
        offsets, sizes, strides));
  auto finish = scf::ForOp::create(
      b, loc, zero, width, one, blockResults,
      [&](OpBuilder &fb, Location fl, Value c, ValueRange results) {
        SmallVector<Value> values{
            mergeColumnLanes(fb, fl, acc, c, laneCount, lanes)};
        if (finalize) {
          SmallVector<Value> kept(coords.begin(), coords.end() - 1);
          kept.push_back(arith::AddIOp::create(fb, fl, first, c));
          values = finalize(fb, fl, values, kept);
        }
        SmallVector<Value> updated;
        for (auto [value, result] : llvm::zip_equal(values, results))
          updated.push_back(
              tensor::InsertOp::create(fb, fl, value, result, ValueRange{c}));
        scf::YieldOp::create(fb, fl, updated);
      });
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [result, shared] :
       llvm::zip_equal(finish.getResults(), forall.getRegionIterArgs()))
    tensor::ParallelInsertSliceOp::create(b, loc, result, shared, offsets,
                                          sizes, strides);
  return SmallVector<Value>(forall.getResults());
}

} // namespace

template Value
reduceRow<SumOp>(OpBuilder &, Location, RankedTensorType, SmallVector<Value> &,
                 ElementReader,
                 std::function<void(OpBuilder &, Location, Value)>);
template Value
reduceRow<ProdOp>(OpBuilder &, Location, RankedTensorType, SmallVector<Value> &,
                  ElementReader,
                  std::function<void(OpBuilder &, Location, Value)>);
template Value
reduceRow<AmaxOp>(OpBuilder &, Location, RankedTensorType, SmallVector<Value> &,
                  ElementReader,
                  std::function<void(OpBuilder &, Location, Value)>);
template Value
reduceRow<AminOp>(OpBuilder &, Location, RankedTensorType, SmallVector<Value> &,
                  ElementReader,
                  std::function<void(OpBuilder &, Location, Value)>);

SmallVector<Value> lowerReductionKernel(OpBuilder &b, Operation *op,
                                        const KernelIO &io) {
  return llvm::TypeSwitch<Operation *, SmallVector<Value>>(op)
      .Case<SumOp, ProdOp, AmaxOp, AminOp>([&](auto reduction) {
        return LowerDimsReduction<decltype(reduction)>::lower(b, reduction, io);
      });
}

void populateReductionPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerDimsReduction<SumOp>, LowerDimsReduction<ProdOp>,
               LowerDimsReduction<AmaxOp>, LowerDimsReduction<AminOp>>(
      patterns.getContext());
}

} // namespace kiln::lowering
