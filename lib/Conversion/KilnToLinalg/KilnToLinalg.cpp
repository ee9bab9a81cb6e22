//===- KilnToLinalg.cpp - Lower kiln ops to linalg/tensor/scf -------------===//
//
// Every (decomposed) kiln op on tensors becomes linalg/tensor/arith/math/scf
// IR, ready for one-shot bufferization. See Passes.td for the overview.
//
//===----------------------------------------------------------------------===//

#include "../ErrorSites.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Conversion/VectorTranspose.h"
#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Runtime/SelectionPlan.h"
// The GPU runtime's launch plan for topk/kthvalue (header-only, shared with
// lib/Runtime/Cuda.cpp and the device kernels), for the remarks.
#include "../../Runtime/Device/TopkPlan.h"

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
#include "mlir/IR/Remarks.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>
#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_CONVERTKILNTOLINALG
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

using kiln::conversion::ErrorSites;

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

/// Reports how the kernel built at `loc` runs: an optimization remark
/// (analysis `Kernel`, category `kiln-lower`; kiln-opt --remarks-filter,
/// kiln-run --remarks). `fmt` is an llvm::formatv format; nothing is
/// formatted unless remarks are enabled.
/// `near` is an op of the function (for its name), or null.
template <typename... Ts>
void remarkKernelNear(Operation *near, Location loc, const char *fmt,
                      Ts &&...ts) {
  if (!loc->getContext()->getRemarkEngine())
    return;
  func::FuncOp function;
  if (near)
    function = isa<func::FuncOp>(near) ? cast<func::FuncOp>(near)
                                       : near->getParentOfType<func::FuncOp>();
  remark::analysis(
      loc, remark::RemarkOpts::name("Kernel")
               .category("kiln-lower")
               .function(function ? function.getSymName() : StringRef()))
      << remark::add(fmt, std::forward<Ts>(ts)...);
}

/// remarkKernelNear for the function `b` builds in.
template <typename... Ts>
void remarkKernel(OpBuilder &b, Location loc, const char *fmt, Ts &&...ts) {
  Block *block = b.getInsertionBlock();
  remarkKernelNear(block ? block->getParentOp() : nullptr, loc, fmt,
                   std::forward<Ts>(ts)...);
}

/// "[1, 2]": dims for remark texts.
std::string dimList(ArrayRef<int64_t> dims) {
  std::string text = "[";
  for (auto [i, d] : llvm::enumerate(dims))
    text += (i ? ", " : "") + std::to_string(d);
  return text + "]";
}

/// A type as text, for remark texts.
std::string typeText(Type type) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << type;
  return text;
}

RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

Value i64Constant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIntOp::create(b, loc, value, 64);
}

/// A fresh tensor of `type` (a ranked tensor type), for an op to write.
Value emptyTensor(OpBuilder &b, Location loc, Type type) {
  auto ranked = cast<RankedTensorType>(type);
  return tensor::EmptyOp::create(b, loc, ranked.getShape(),
                                 ranked.getElementType());
}

/// One fresh tensor per type of `types` (a kernel's outputs).
SmallVector<Value> emptyTensors(OpBuilder &b, Location loc, TypeRange types) {
  return llvm::map_to_vector(
      types, [&](Type type) { return emptyTensor(b, loc, type); });
}

/// A tensor of `type` filled with `value` (linalg.fill of a tensor.empty).
Value filledTensor(OpBuilder &b, Location loc, RankedTensorType type,
                   TypedAttr value) {
  Value empty = emptyTensor(b, loc, type);
  Value scalar = arith::ConstantOp::create(b, loc, value);
  return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{empty})
      .getResult(0);
}

/// Identity of a max (lowest value) / min (highest value) reduction.
TypedAttr extremeAttr(Builder &b, Type type, bool lowest) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return b.getFloatAttr(
        floatType, APFloat::getInf(floatType.getFloatSemantics(), lowest));
  unsigned width = type.getIntOrFloatBitWidth();
  return b.getIntegerAttr(type, lowest ? APInt::getSignedMinValue(width)
                                       : APInt::getSignedMaxValue(width));
}

/// `value` reshaped to `type` (same elements), or `value` itself.
Value reshapeTo(OpBuilder &b, Location loc, Value value,
                RankedTensorType type) {
  if (value.getType() == type)
    return value;
  auto shapeType = RankedTensorType::get({type.getRank()}, b.getIndexType());
  SmallVector<APInt> sizes;
  for (int64_t size : type.getShape())
    sizes.push_back(APInt(64, size));
  Value shape = arith::ConstantOp::create(
      b, loc, DenseIntElementsAttr::get(shapeType, sizes));
  return tensor::ReshapeOp::create(b, loc, type, value, shape);
}

/// The indexing map reading an operand of `operandType` broadcast to a loop
/// nest over `resultType` (dims align at the end; size-1 dims read index 0).
AffineMap broadcastMap(RankedTensorType operandType,
                       RankedTensorType resultType, MLIRContext *ctx) {
  int64_t offset = resultType.getRank() - operandType.getRank();
  SmallVector<AffineExpr> exprs;
  for (int64_t d = 0; d < operandType.getRank(); ++d) {
    if (operandType.getDimSize(d) == 1 &&
        resultType.getDimSize(offset + d) != 1)
      exprs.push_back(getAffineConstantExpr(0, ctx));
    else
      exprs.push_back(getAffineDimExpr(offset + d, ctx));
  }
  return AffineMap::get(resultType.getRank(), 0, exprs, ctx);
}

/// Declares (once) the runtime function `name` with C interface.
/// Whether the module being lowered targets the GPU (convert-kiln-to-linalg
/// {target=cuda} sets kTargetAttrName): reductions then split their lanes
/// across threads (buildGpuLaneReduction).
bool isGpuTarget(OpBuilder &b) {
  Operation *parent = b.getInsertionBlock()->getParentOp();
  auto module = isa<ModuleOp>(parent) ? cast<ModuleOp>(parent)
                                      : parent->getParentOfType<ModuleOp>();
  auto target = module ? module->getAttrOfType<StringAttr>(kTargetAttrName)
                       : StringAttr();
  return target && target.getValue() == "cuda";
}

/// Float maximum and minimum reductions on the CPU run on integer keys,
/// one integer max per element: the float's bits (sign flipped for a
/// minimum, which is then -max(-x)) with the other bits of negative values
/// flipped, so that signed integer order is the float order with -0 < +0;
/// then less the mantissa's all-ones, so that NaNs of either sign wrap
/// around to above +inf's key. The reduction is then IEEE maximum /
/// minimum exactly (NaN propagates, +0 beats -0) in any order: the loops
/// vectorize and split freely, and the bits never depend on the order.
/// LLVM's x86 lowering of a vector arith.maximumf is six instructions on
/// the accumulator's dependency chain (signed zeros, then NaN): amax over
/// dim 1 of 1024x1024 floats took 119 us, PyTorch 48. The GPU keeps
/// arith.maximumf (one max.NaN instruction).
struct ExtremeKeys {
  static bool applies(OpBuilder &b, Type elementType) {
    return isa<FloatType>(elementType) && !isGpuTarget(b);
  }
  static IntegerType keyType(Type floatType) {
    return IntegerType::get(floatType.getContext(),
                            floatType.getIntOrFloatBitWidth());
  }
  /// The key of -inf (of +inf for a minimum): the identity.
  static TypedAttr identity(Builder &b, Type floatType) {
    return b.getIntegerAttr(
        keyType(floatType),
        APInt::getSignedMinValue(floatType.getIntOrFloatBitWidth()));
  }
  static Value constant(OpBuilder &b, Location loc, Type type,
                        const APInt &value) {
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, value));
  }
  /// x ^ ((x >>s (width - 1)) & signed max): flips the bits below the
  /// sign of negative values (its own inverse; an AVX-512 shift and one
  /// ternary logic op).
  static Value flipNegatives(OpBuilder &b, Location loc, Value x) {
    Type type = x.getType();
    unsigned width = type.getIntOrFloatBitWidth();
    Value sign = arith::ShRSIOp::create(
        b, loc, x, constant(b, loc, type, APInt(width, width - 1)));
    Value mask = arith::AndIOp::create(
        b, loc, sign, constant(b, loc, type, APInt::getSignedMaxValue(width)));
    return arith::XOrIOp::create(b, loc, x, mask);
  }
  /// `bits` with the sign flipped for a minimum (-max(-x)).
  static Value orientSign(OpBuilder &b, Location loc, Value bits, bool isMax) {
    if (isMax)
      return bits;
    Type type = bits.getType();
    return arith::XOrIOp::create(
        b, loc, bits,
        constant(b, loc, type,
                 APInt::getSignMask(type.getIntOrFloatBitWidth())));
  }
  /// The mantissa's all-ones: the keys' offset.
  static APInt offset(Type floatType) {
    const llvm::fltSemantics &semantics =
        cast<FloatType>(floatType).getFloatSemantics();
    return APInt::getLowBitsSet(floatType.getIntOrFloatBitWidth(),
                                APFloat::semanticsPrecision(semantics) - 1);
  }
  static Value encode(OpBuilder &b, Location loc, Value x, bool isMax) {
    Type floatType = x.getType();
    Type type = keyType(floatType);
    Value bits =
        orientSign(b, loc, arith::BitcastOp::create(b, loc, type, x), isMax);
    return arith::SubIOp::create(b, loc, flipNegatives(b, loc, bits),
                                 constant(b, loc, type, offset(floatType)));
  }
  static Value decode(OpBuilder &b, Location loc, Value key, Type floatType,
                      bool isMax) {
    Value bits = flipNegatives(
        b, loc,
        arith::AddIOp::create(
            b, loc, key, constant(b, loc, key.getType(), offset(floatType))));
    return arith::BitcastOp::create(b, loc, floatType,
                                    orientSign(b, loc, bits, isMax));
  }
  static Value merge(OpBuilder &b, Location loc, Value acc, Value key) {
    return arith::MaxSIOp::create(b, loc, acc, key);
  }
};

/// The private declaration of runtime function `name` in `anchor`'s
/// module, created on first use. Functions taking memrefs are called
/// through their C interface (`_mlir_ciface_<name>`); `cInterface = false`
/// calls `name` itself (scalar arguments and results).
func::FuncOp getOrDeclareRuntimeFunc(Operation *anchor, StringRef name,
                                     FunctionType type, OpBuilder &rewriter,
                                     bool cInterface = true) {
  auto module = anchor->getParentOfType<ModuleOp>();
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToStart(module.getBody());
  auto func = func::FuncOp::create(rewriter, module.getLoc(), name, type);
  func.setPrivate();
  if (cInterface)
    func->setAttr("llvm.emit_c_interface", rewriter.getUnitAttr());
  return func;
}

/// The buffer of `tensor` (identity layout), read-only: for prefetches and
/// runtime calls that read it.
Value readOnlyBuffer(OpBuilder &b, Location loc, Value tensor) {
  RankedTensorType type = tensorType(tensor);
  return bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
      /*readOnly=*/b.getUnitAttr());
}

/// Row-major linearization of `indices` over `shape` (index type).
Value linearize(OpBuilder &b, Location loc, ValueRange indices,
                ArrayRef<int64_t> shape) {
  Value flat = indexConstant(b, loc, 0);
  for (auto [index, size] : llvm::zip_equal(indices, shape)) {
    flat = arith::MulIOp::create(b, loc, flat, indexConstant(b, loc, size));
    flat = arith::AddIOp::create(b, loc, flat, index);
  }
  return flat;
}

SmallVector<Value> loopIndices(OpBuilder &b, Location loc, int64_t rank) {
  SmallVector<Value> indices;
  for (int64_t d = 0; d < rank; ++d)
    indices.push_back(linalg::IndexOp::create(b, loc, d));
  return indices;
}

SmallVector<utils::IteratorType> parallelIterators(int64_t rank) {
  return SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel);
}

/// Reads the elements of a (possibly virtual) tensor at `indices`: a load
/// from a stored tensor, or a fused producer chain evaluated there.
using ElementReader =
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange indices)>;

/// Prefetches what a kernel will read at `indices`: its stored input's
/// element, or the stored elements a fused producer chain reads there (an
/// indexed read's selected element). Empty: nothing to prefetch.
struct ElementPrefetch {
  std::function<void(OpBuilder &, Location, ValueRange indices)> at;
  /// Whether positions next to each other may lie far apart in memory (an
  /// indexed read selects them), whatever the input's shape.
  bool scattered = false;

  explicit operator bool() const { return static_cast<bool>(at); }
  void operator()(OpBuilder &b, Location loc, ValueRange indices) const {
    at(b, loc, indices);
  }
};

/// Maps the accumulators of a reduction at one kept position (`kept`: the
/// indices of the kept dims) to the kernel's result elements: a fused
/// epilogue.
using ReductionFinalizer = function_ref<SmallVector<Value>(
    OpBuilder &, Location, ValueRange accumulators, ValueRange kept)>;

/// A float sum or product, computed in an order fixed by the IR (see
/// buildReduction): `term` is what one input element contributes (x, or
/// exp(x - max) in softmax), `merge` adds it to a partial result; both work
/// on scalars and on vectors.
struct LaneReduction {
  std::function<Value(OpBuilder &, Location, ValueRange elements,
                      ValueRange indices)>
      term;
  std::function<Value(OpBuilder &, Location, Value acc, Value term)> merge;
  /// Optional: called at the start of each main-loop step with its first
  /// position in the line (the step covers kReductionLanes positions).
  std::function<void(OpBuilder &, Location, Value first)> prefetch = nullptr;
};

/// Partial results per reduction in the lane scheme.
constexpr int64_t kReductionLanes = 32;

/// Whether a line of `size` elements (the innermost reduced dim) spreads
/// over the lanes; a shorter one goes to lane 0, reduced in order.
bool spreadsOverLanes(int64_t size) { return size >= kReductionLanes; }

/// The lane that element `i` of a line of `size` elements (the innermost
/// reduced dim) goes to in the lane order: i % 32, or 0 in a line shorter
/// than the lanes (reduced in order).
Value laneOf(OpBuilder &b, Location loc, Value i, int64_t size) {
  if (!spreadsOverLanes(size))
    return arith::ConstantIndexOp::create(b, loc, 0);
  return arith::RemUIOp::create(
      b, loc, i, arith::ConstantIndexOp::create(b, loc, kReductionLanes));
}

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

/// The lane order's tail: `tail` (fewer than kReductionLanes terms, the
/// elements after the last whole step) merged into the first lanes of
/// `acc`, the other lanes kept. A whole vector of terms (`pad` past the
/// tail) is merged and a constant mask selects.
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

/// The lane order's last step: the kReductionLanes partial results of
/// `acc` merged in a fixed tree (lanes 0-15 + lanes 16-31, then 0-7 + 8-15,
/// ...); returns lane 0's.
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

/// The loops of a lane reduction: a vector of kReductionLanes partial
/// results; lane j takes the elements j, j + 32, ... of the innermost
/// reduced dim (element i goes to lane i % 32; in a line shorter than 32,
/// all go to lane 0 in order: laneOf), then the lanes are merged in a fixed
/// tree (lanes 0-15 + lanes 16-31, then 0-7 + 8-15, ...).
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
        ValueRange afterMain = accs;
        scf::ForOp mainLoop;
        if (mainEnd > 0)
          mainLoop = scf::ForOp::create(
              ob, ol, indexConstant(ob, ol, 0), indexConstant(ob, ol, mainEnd),
              indexConstant(ob, ol, count), accs,
              [&](OpBuilder &ib, Location il, Value i, ValueRange acc) {
                if (lanes.prefetch)
                  lanes.prefetch(ib, il, i);
                SmallVector<Value> terms;
                for (int64_t lane = 0; lane < count; ++lane) {
                  indices[inner] = arith::AddIOp::create(
                      ib, il, i, indexConstant(ib, il, lane));
                  terms.push_back(term(ib, il));
                }
                Value batch = buildLaneBatch(ib, il, vectorType, terms);
                scf::YieldOp::create(ib, il,
                                     lanes.merge(ib, il, acc[0], batch));
              });
        if (mainLoop)
          afterMain = mainLoop.getResults();
        if (mainEnd == size)
          return scf::ValueVector(afterMain);
        if (mainEnd == 0) {
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
              if (mainEnd > 0) {
                // Four of the lane's elements per iteration when they
                // divide evenly: their loads first, then the merges in
                // order (the same operations as one at a time).
                int64_t perStep = (mainEnd / count) % 4 == 0 ? 4 : 1;
                auto mainLoop = scf::ForOp::create(
                    ob, ol, lane, indexConstant(ob, ol, mainEnd),
                    indexConstant(ob, ol, count * perStep), ValueRange{acc},
                    [&](OpBuilder &ib, Location il, Value i, ValueRange a) {
                      SmallVector<Value> terms;
                      for (int64_t u = 0; u < perStep; ++u) {
                        indices[inner] =
                            u == 0 ? i
                                   : Value(arith::AddIOp::create(
                                         ib, il, i,
                                         indexConstant(ib, il, u * count)));
                        terms.push_back(term(ib, il));
                      }
                      Value merged = a[0];
                      for (Value t : terms)
                        merged = lanes.merge(ib, il, merged, t);
                      scf::YieldOp::create(ib, il, merged);
                    });
                acc = mainLoop.getResult(0);
              }
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

/// The body of a reduction: (elements, accumulators, input indices) ->
/// the new accumulators.
using ReductionBody = function_ref<SmallVector<Value>(
    OpBuilder &, Location, ValueRange, ValueRange, ValueRange)>;

SmallVector<Value> buildSplitReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType, ElementReader read,
    ArrayRef<bool> mask, ArrayRef<TypedAttr> inits, ReductionBody body,
    ReductionFinalizer finalize, TypeRange finalTypes,
    const LaneReduction *lanes, const LaneReduction &merge, int64_t dim,
    int64_t segments, const ElementPrefetch &prefetch);

SmallVector<Value> buildColumnReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType, ElementReader read,
    ArrayRef<int64_t> keptDims, ArrayRef<int64_t> reducedDims, TypedAttr init,
    ReductionBody body, const LaneReduction *lanes, ReductionFinalizer finalize,
    TypeRange finalTypes, const ElementPrefetch &prefetch);

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

SmallVector<Value>
buildCoalescedReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                        const CoalescedDims &coalesced, ElementReader read,
                        ArrayRef<bool> mask, ArrayRef<TypedAttr> inits,
                        ReductionBody body, ReductionFinalizer finalize,
                        TypeRange finalTypes, const LaneReduction *lanes,
                        bool maySplit, const LaneReduction *orderFree,
                        const ElementPrefetch &prefetch, StringRef explain);

/// Whether `type` has a dim of size 1 (and another dim: a tensor<1xT> is
/// left alone).
bool hasUnitDims(RankedTensorType type) {
  return type.getRank() > 1 && llvm::is_contained(type.getShape(), 1);
}

/// The reassociation that expands `from` (no unit dims) into `to`, a shape
/// with the same elements whose consecutive dims multiply to each of
/// `from`'s (unit dims join a neighbouring group; an empty dim's group ends
/// at an empty dim).
SmallVector<ReassociationIndices> expansionGroups(ArrayRef<int64_t> from,
                                                  ArrayRef<int64_t> to) {
  SmallVector<ReassociationIndices> groups;
  int64_t j = 0, rank = to.size();
  for (int64_t size : from) {
    // (An empty dim takes dims up to an empty one: [0, 5] into [1, 0, 5].)
    ReassociationIndices group;
    for (int64_t product = 1;
         (size == 0 ? product != 0 : product < size) && j < rank; ++j) {
      group.push_back(j);
      product *= to[j];
    }
    groups.push_back(group);
  }
  for (; j < rank && !groups.empty(); ++j)
    groups.back().push_back(j);
  return groups;
}

/// `shape` without its unit dims.
SmallVector<int64_t> withoutUnitDims(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> sizes;
  for (int64_t size : shape)
    if (size != 1)
      sizes.push_back(size);
  return sizes;
}

/// `value` (a tensor of `type`'s shape without its unit dims) as a tensor
/// of `type`: a view, which bufferization keeps in place.
Value expandUnitDims(OpBuilder &b, Location loc, Value value,
                     RankedTensorType type) {
  if (value.getType() == type)
    return value;
  return tensor::ExpandShapeOp::create(
      b, loc, type, value,
      expansionGroups(withoutUnitDims(type.getShape()), type.getShape()));
}

/// `value` without its unit dims (a view).
Value collapseUnitDims(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape = withoutUnitDims(type.getShape());
  if (static_cast<int64_t>(shape.size()) == type.getRank())
    return value;
  return tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get(shape, type.getElementType()), value,
      expansionGroups(shape, type.getShape()));
}

/// How many rows ahead a column reduction prefetches its input when the
/// rows are stored in order (sum over dim 0 of 65536x256 f32 at 1 thread:
/// 1.86 ms 4 rows ahead, 1.94 8 ahead, 2.15 16 ahead).
constexpr int64_t kColumnPrefetchRows = 4;

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

/// The least distance (bytes) between consecutive reduced rows at which a
/// column reduction prefetches its input (unless an indexed read scatters
/// the rows): closer rows stream in with the hardware's prefetch, and the
/// prefetches only cost (sum over dim 0 of 100000x40 f32 x*y at 1 thread:
/// 0.48 -> 0.65 ms prefetched); farther ones gain (f32 at 1 thread, stored,
/// split reductions, which did not prefetch before: 65536x256, rows 1 KB
/// apart, 2.16 -> 1.81 ms; 16384x1000 2.92 -> 2.28).
constexpr int64_t kColumnPrefetchMinStride = 1024;

/// planReductionSplit of ReductionPlan.h on `inputType`'s shape.
std::optional<std::pair<int64_t, int64_t>>
planReductionSplit(RankedTensorType inputType, ArrayRef<bool> mask) {
  return kiln::conversion::planReductionSplit(inputType.getShape(), mask);
}

/// Builds a reduction over the dims flagged in `mask` of a tensor of
/// `inputType` read through `read`, with the accumulators in registers: a
/// parallel linalg.generic over the kept dims whose body runs an scf.for
/// nest over the reduced dims (the last dim innermost) carrying the
/// accumulators. Kept dims become parallel (OpenMP) loops; each reduction
/// runs start to end in one thread, so its order never depends on the
/// thread count. `inits` are the scalar initial values; `body(b, loc,
/// elements, accumulators, indices)` returns the new accumulators, where
/// `indices` are the full input indices. Without `finalize` it returns one
/// tensor per accumulator in the reduced (non-keepdim) shape; with it, one
/// per element `finalize` returns, of `finalTypes`.
///
/// With `lanes` (float sums and products, which are not associative; one
/// accumulator), the order of the operations is fixed by the IR itself
/// rather than left to LLVM's vectorizer: a vector of kReductionLanes
/// partial results takes the elements of the innermost reduced dim
/// round-robin, and the lanes are merged in a fixed tree (buildLaneLoops).
/// The result then does not depend on the vector width LLVM picks, on the
/// loop body (a fused producer chain or a plain load), or on threads; and a
/// GPU warp of 32 threads can reproduce the order exactly.
///
/// On the CPU, a reduction that keeps the input's innermost dim walks the
/// reduced dims outside and contiguous columns inside instead
/// (buildColumnReduction: the same order per column; what `prefetch`
/// names is prefetched a few rows ahead). With `maySplit`, a reduction over few
/// kept positions with `lanes`, or with an `orderFree` merge (max, min,
/// integer sums: any order gives the same result), is split into segments
/// reduced in parallel (planReductionSplit, buildSplitReduction).
///
/// With `explain` (the op's name), the plan chosen is reported as a
/// kiln-lower remark: for the reduction ops themselves, not the reductions
/// other kernels use.
SmallVector<Value>
buildReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
               ElementReader read, ArrayRef<bool> mask,
               ArrayRef<TypedAttr> inits, ReductionBody body,
               ReductionFinalizer finalize = nullptr, TypeRange finalTypes = {},
               const LaneReduction *lanes = nullptr, bool maySplit = true,
               const LaneReduction *orderFree = nullptr,
               const ElementPrefetch &prefetch = {}, StringRef explain = {}) {
  // Unit dims, reduced or kept, hold one position, and consecutive dims
  // reduced (kept) alike are one dim: the reduction of the tensor seen so
  // (buildCoalescedReduction).
  if (inputType.getRank() > 1)
    if (CoalescedDims coalesced(inputType, mask); coalesced.changes(inputType))
      return buildCoalescedReduction(b, loc, inputType, coalesced, read, mask,
                                     inits, body, finalize, finalTypes, lanes,
                                     maySplit, orderFree, prefetch, explain);
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
        remarkKernel(b, loc,
                     "{0}: {1} kept position(s) would leave threads idle, so "
                     "dim {2} is split into {3} segments reduced in parallel, "
                     "then merged (2 kernels){4}",
                     what, kept, split->first, split->second, order);
      return buildSplitReduction(b, loc, inputType, read, mask, inits, body,
                                 finalize, finalTypes, lanes, *merge,
                                 split->first, split->second, prefetch);
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
  // The innermost dim kept (a sum over dim 0 of a matrix): rows outside,
  // contiguous columns inside.
  if (!isGpuTarget(b) && !reducedDims.empty() && !mask.back() &&
      inits.size() == 1 && inputType.getDimSize(rank - 1) > 0) {
    if (!explain.empty())
      remarkKernel(b, loc,
                   "{0}: column reduction, the innermost dim is kept, so each "
                   "block of contiguous columns walks the reduced rows with "
                   "vector loads and accumulators in registers; blocks in "
                   "parallel{1}",
                   what, order);
    return buildColumnReduction(b, loc, inputType, read, keptDims, reducedDims,
                                inits.front(), body, lanes, finalize,
                                finalTypes, prefetch);
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

/// A reduction over few kept positions in two stages, so that it runs on
/// many threads (the CPU's workers, the GPU's): dim `dim` of the input is
/// seen as [segments, size / segments], the segment index a kept dim of the
/// first stage -- each segment reduced into a partial result, in parallel,
/// in the lane order with `lanes` -- and the second stage combines the
/// partials of each kept position with `merge` (in the lane order with
/// `lanes`), then applies `finalize`. The order depends on the shape only:
/// the same bits on every thread count and target.
SmallVector<Value> buildSplitReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType, ElementReader read,
    ArrayRef<bool> mask, ArrayRef<TypedAttr> inits, ReductionBody body,
    ReductionFinalizer finalize, TypeRange finalTypes,
    const LaneReduction *lanes, const LaneReduction &merge, int64_t dim,
    int64_t segments, const ElementPrefetch &prefetch) {
  int64_t inner = inputType.getDimSize(dim) / segments;
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
  auto splitRead = [&](OpBuilder &nb, Location l, ValueRange ivs) {
    return read(nb, l, original(nb, l, ivs));
  };
  auto splitBody = [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange acc,
                       ValueRange ivs) {
    return body(nb, l, xs, acc, original(nb, l, ivs));
  };
  LaneReduction splitLanes{
      [&](OpBuilder &nb, Location l, ValueRange xs, ValueRange ivs) {
        return lanes->term(nb, l, xs, original(nb, l, ivs));
      },
      merge.merge};
  ElementPrefetch splitPrefetch;
  if (prefetch)
    splitPrefetch = {[&](OpBuilder &nb, Location l, ValueRange ivs) {
                       prefetch(nb, l, original(nb, l, ivs));
                     },
                     prefetch.scattered};
  Value partials =
      buildReduction(b, loc, splitType, splitRead, splitMask, inits, splitBody,
                     /*finalize=*/nullptr, /*finalTypes=*/{},
                     lanes ? &splitLanes : nullptr, /*maySplit=*/false,
                     /*orderFree=*/nullptr, splitPrefetch)[0];

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
  return buildReduction(b, loc, partialType, readPartial, mergeMask, inits,
                        mergeBody, finalize, finalTypes,
                        lanes ? &mergeLanes : nullptr, /*maySplit=*/false);
}

/// The positions, along each of `sizes` (row-major), of position `linear`
/// of their product. Each remainder is computed as linear - quotient *
/// size, not as a `remui`: a row-major address then sums quotient * size
/// and linear - quotient * size, which LLVM cancels back into the linear
/// position, so consecutive positions are seen to be consecutive in memory
/// and their loads vectorize (with `remui` they stayed 32 scalar loads).
SmallVector<Value> delinearizeIndex(OpBuilder &b, Location loc, Value linear,
                                    ArrayRef<int64_t> sizes) {
  SmallVector<Value> positions(sizes.size());
  for (int64_t i = sizes.size() - 1; i > 0; --i) {
    Value size = indexConstant(b, loc, sizes[i]);
    Value quotient = arith::DivUIOp::create(b, loc, linear, size);
    positions[i] = arith::SubIOp::create(
        b, loc, linear, arith::MulIOp::create(b, loc, quotient, size));
    linear = quotient;
  }
  positions[0] = linear;
  return positions;
}

/// Matches `index` as the position along a dim of `size` that
/// delinearizeIndex computes from `linear` (linear - (linear / size) *
/// size) and returns that quotient, linear / size.
static Value matchDelinearized(Value index, int64_t size, Value &linear) {
  auto sub = index.getDefiningOp<arith::SubIOp>();
  if (!sub)
    return Value();
  auto mul = sub.getRhs().getDefiningOp<arith::MulIOp>();
  if (!mul)
    return Value();
  auto div = mul.getLhs().getDefiningOp<arith::DivUIOp>();
  if (!div || div.getLhs() != sub.getLhs())
    return Value();
  std::optional<int64_t> byDiv = getConstantIntValue(div.getRhs()),
                         byMul = getConstantIntValue(mul.getRhs());
  if (byDiv != size || byMul != size)
    return Value();
  linear = sub.getLhs();
  return div.getResult();
}

/// Rewrites a `tensor.extract` of a stored tensor (defined outside every loop)
/// at indices that delinearizeIndex split from one position, over consecutive
/// dims, reads the tensor with those dims collapsed (a view) at that
/// position instead. LLVM folds quotient * size + (linear - quotient *
/// size) into `freeze(linear)`, whose address its loop vectorizer does not
/// see to be consecutive: a column reduction over a merged kept run (the
/// sum over dim 1 of [N, C, H, W] walks blocks of H x W) loaded each
/// vector as 16 scalar loads (2.09 -> 0.9 ms at 32x64x56x56 f32, 1 thread).
static LogicalResult readDelinearizedAsCollapsed(tensor::ExtractOp op,
                                                 RewriterBase &rewriter) {
  Value tensor = op.getTensor();
  auto type = cast<RankedTensorType>(tensor.getType());
  if (!type.hasStaticShape())
    return failure();
  // Stored: a function argument or a value of the function's body.
  Block *owner = isa<BlockArgument>(tensor)
                     ? cast<BlockArgument>(tensor).getOwner()
                     : tensor.getDefiningOp()->getBlock();
  if (!isa_and_nonnull<func::FuncOp>(owner->getParentOp()))
    return failure();
  // Groups of dims, innermost first: [k, m] read at one linear position.
  SmallVector<Value> indices(op.getIndices());
  int64_t rank = type.getRank();
  SmallVector<ReassociationIndices> groups;
  SmallVector<Value> newIndices;
  bool collapses = false;
  for (int64_t m = rank - 1; m >= 0;) {
    Value linear, quotient;
    Value q = matchDelinearized(indices[m], type.getDimSize(m), linear);
    int64_t k = m;
    Value start = linear;
    // The quotient is the next outer dim's position, itself split again
    // or taken whole.
    while (q && k > 0) {
      if (indices[k - 1] == q) {
        --k;
        quotient = q;
        break;
      }
      Value inner;
      Value next =
          matchDelinearized(indices[k - 1], type.getDimSize(k - 1), inner);
      if (!next || inner != q)
        break;
      --k;
      q = next;
    }
    if (!quotient) {
      groups.push_back({m});
      newIndices.push_back(indices[m]);
      --m;
      continue;
    }
    ReassociationIndices group;
    for (int64_t d = k; d <= m; ++d)
      group.push_back(d);
    groups.push_back(group);
    newIndices.push_back(start);
    collapses = true;
    m = k - 1;
  }
  if (!collapses)
    return failure();
  std::reverse(groups.begin(), groups.end());
  std::reverse(newIndices.begin(), newIndices.end());
  SmallVector<int64_t> shape;
  for (const ReassociationIndices &group : groups) {
    int64_t size = 1;
    for (int64_t d : group)
      size *= type.getDimSize(d);
    shape.push_back(size);
  }
  // One view per tensor and grouping, shared by its reads.
  auto collapsedType = RankedTensorType::get(shape, type.getElementType());
  Value collapsed;
  for (Operation *user : tensor.getUsers())
    if (auto view = dyn_cast<tensor::CollapseShapeOp>(user);
        view && view.getType() == collapsedType &&
        view.getReassociationIndices() == groups && view->getBlock() == owner)
      collapsed = view.getResult();
  if (!collapsed) {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointAfterValue(tensor);
    collapsed = tensor::CollapseShapeOp::create(rewriter, op.getLoc(),
                                                collapsedType, tensor, groups);
  }
  rewriter.replaceOpWithNewOp<tensor::ExtractOp>(op, collapsed, newIndices);
  return success();
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
SmallVector<Value>
buildCoalescedReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
                        const CoalescedDims &coalesced, ElementReader read,
                        ArrayRef<bool> mask, ArrayRef<TypedAttr> inits,
                        ReductionBody body, ReductionFinalizer finalize,
                        TypeRange finalTypes, const LaneReduction *lanes,
                        bool maySplit, const LaneReduction *orderFree,
                        const ElementPrefetch &prefetch, StringRef explain) {
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
      newOrderFree ? &*newOrderFree : nullptr, coalescedPrefetch, explain);
  for (Value &result : results) {
    auto type =
        RankedTensorType::get(keptShape, tensorType(result).getElementType());
    if (result.getType() != type)
      result = tensor::ExpandShapeOp::create(
          b, loc, type, result, expansionGroups(coalescedKept, keptShape));
  }
  return results;
}

/// Reads `inputs` (stored tensors of one shape) with tensor.extract.
SmallVector<Value> buildReduction(
    OpBuilder &b, Location loc, ValueRange inputs, ArrayRef<bool> mask,
    ArrayRef<TypedAttr> inits,
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange,
                                    ValueRange, ValueRange)>
        body,
    const LaneReduction *lanes = nullptr) {
  auto read = [&](OpBuilder &b, Location l, ValueRange indices) {
    SmallVector<Value> elements;
    for (Value input : inputs)
      elements.push_back(tensor::ExtractOp::create(b, l, input, indices));
    return elements;
  };
  return buildReduction(b, loc, tensorType(inputs.front()), read, mask, inits,
                        body, /*finalize=*/nullptr, /*finalTypes=*/{}, lanes);
}

/// How a kernel reads its input and produces its results. By default it
/// loads the op's stored input and returns the op's result; as the anchor of
/// a kiln.fused group it evaluates the fused producer chain where it reads
/// (`read`) and applies the fused consumers to each result element
/// (`finish`), producing the group's results (`resultTypes`).
struct KernelIO {
  std::function<Value(OpBuilder &, Location, ValueRange indices)> read;
  std::function<SmallVector<Value>(OpBuilder &, Location, Value element,
                                   ValueRange resultIndices)>
      finish;
  SmallVector<Type> resultTypes;
  /// The stored input of a plain kernel (null when `read` evaluates a fused
  /// producer chain).
  Value stored;
  /// The stored tensors `read` reads (the input, or the fused group's
  /// operands): what a rows-in-cache kernel prefetches the next row of.
  SmallVector<Value> sources;
  /// Prefetches what `read` reads at some indices, for a fused producer
  /// chain (a stored input's buffer is made by `elementPrefetch`).
  ElementPrefetch prefetch;

  /// What a kernel reading this input prefetches: the stored input's
  /// element (its buffer made at `b`'s place, before the kernel), or the
  /// fused chain's `prefetch`.
  ElementPrefetch elementPrefetch(OpBuilder &b, Location loc) const {
    if (!stored)
      return prefetch;
    Value buffer = readOnlyBuffer(b, loc, stored);
    return {[buffer](OpBuilder &nb, Location l, ValueRange indices) {
      memref::PrefetchOp::create(nb, l, buffer, indices, /*isWrite=*/false,
                                 /*localityHint=*/3, /*isDataCache=*/true);
    }};
  }

  /// The plain kernel of `op`: loads `input`, returns the op's results.
  static KernelIO plain(Operation *op, Value input) {
    KernelIO io;
    io.stored = input;
    io.sources = {input};
    io.read = [input](OpBuilder &b, Location l, ValueRange indices) {
      return Value(tensor::ExtractOp::create(b, l, input, indices));
    };
    io.resultTypes.assign(op->getResultTypes().begin(),
                          op->getResultTypes().end());
    return io;
  }
  SmallVector<Value> finishElement(OpBuilder &b, Location l, Value element,
                                   ValueRange resultIndices) const {
    if (!finish)
      return {element};
    return finish(b, l, element, resultIndices);
  }
  SmallVector<Type> resultElementTypes() const {
    SmallVector<Type> types;
    for (Type type : resultTypes)
      types.push_back(cast<RankedTensorType>(type).getElementType());
    return types;
  }
};

//===----------------------------------------------------------------------===//
// Elementwise ops (any op with ScalarOpInterface)
//===----------------------------------------------------------------------===//

struct LowerElementwise : OpInterfaceRewritePattern<ScalarOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;
  LogicalResult matchAndRewrite(ScalarOpInterface op,
                                PatternRewriter &rewriter) const override {
    Location loc = op->getLoc();
    auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
    MLIRContext *ctx = rewriter.getContext();
    SmallVector<AffineMap> maps;
    for (Value operand : op->getOperands())
      maps.push_back(broadcastMap(tensorType(operand), resultType, ctx));
    maps.push_back(
        AffineMap::getMultiDimIdentityMap(resultType.getRank(), ctx));
    Value init = emptyTensor(rewriter, loc, resultType);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{resultType}, op->getOperands(),
        ValueRange{init}, maps, parallelIterators(resultType.getRank()),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value result = op.buildScalar(b, l, args.drop_back(),
                                        resultType.getElementType());
          linalg::YieldOp::create(b, l, result);
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Creation ops
//===----------------------------------------------------------------------===//

struct LowerConstant : OpRewritePattern<ConstantOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConstantOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, op.getValue());
    return success();
  }
};

/// full / zeros_like / ones_like: a splat constant.
template <typename OpTy> struct LowerSplat : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    auto folded = dyn_cast_if_present<DenseElementsAttr>(
        op.fold(typename OpTy::FoldAdaptor({}, op))
            .template dyn_cast<Attribute>());
    if (!folded)
      return rewriter.notifyMatchFailure(op, "does not fold to a splat");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, folded);
    return success();
  }
};

struct LowerArange : OpRewritePattern<ArangeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ArangeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Type elementType = type.getElementType();
    double start = op.getStart().convertToDouble();
    double step = op.getStep().convertToDouble();
    Value init =
        tensor::EmptyOp::create(rewriter, loc, type.getShape(), elementType);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{}, ValueRange{init},
        SmallVector<AffineMap>{
            AffineMap::getMultiDimIdentityMap(1, rewriter.getContext())},
        parallelIterators(1), [&](OpBuilder &b, Location l, ValueRange) {
          Value i = arith::IndexCastOp::create(
              b, l, b.getI64Type(), linalg::IndexOp::create(b, l, 0));
          Value value;
          if (isa<FloatType>(elementType)) {
            // start + i * step in double, then rounded once (PyTorch).
            Value fi = arith::SIToFPOp::create(b, l, b.getF64Type(), i);
            Value v = arith::AddFOp::create(
                b, l, arith::ConstantOp::create(b, l, b.getF64FloatAttr(start)),
                arith::MulFOp::create(
                    b, l, fi,
                    arith::ConstantOp::create(b, l, b.getF64FloatAttr(step))));
            value = elementType.isF64()
                        ? v
                        : Value(arith::TruncFOp::create(b, l, elementType, v));
          } else {
            value = arith::AddIOp::create(
                b, l, i64Constant(b, l, static_cast<int64_t>(start)),
                arith::MulIOp::create(
                    b, l, i, i64Constant(b, l, static_cast<int64_t>(step))));
          }
          linalg::YieldOp::create(b, l, value);
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

struct LowerReshape : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, reshapeTo(rewriter, op.getLoc(), op.getInput(), op.getType()));
    return success();
  }
};

struct LowerPermute : OpRewritePattern<PermuteOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(PermuteOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = op.getType();
    SmallVector<int64_t> perm;
    for (int64_t d : op.getDims())
      perm.push_back(*normalizeDim(d, type.getRank()));
    Value init = emptyTensor(rewriter, op.getLoc(), type);
    auto transpose = linalg::TransposeOp::create(rewriter, op.getLoc(),
                                                 op.getInput(), init, perm);
    rewriter.replaceOp(op, transpose.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// sum, prod, amax, amin: one accumulator combined elementwise (float
/// amax and amin on the CPU: on ExtremeKeys).
template <typename OpTy> struct LowerDimsReduction : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  static constexpr bool kIsMax = std::is_same_v<OpTy, AmaxOp>;
  static constexpr bool kIsExtreme = kIsMax || std::is_same_v<OpTy, AminOp>;

  /// Whether the accumulators are ExtremeKeys.
  static bool usesKeys(OpBuilder &b, Type elementType) {
    return kIsExtreme && ExtremeKeys::applies(b, elementType);
  }

  static TypedAttr identity(OpBuilder &b, Type type, bool keys) {
    if constexpr (std::is_same_v<OpTy, SumOp>)
      return getScalarAttr(b, type, 0.0);
    else if constexpr (std::is_same_v<OpTy, ProdOp>)
      return getScalarAttr(b, type, 1.0);
    else if (keys)
      return ExtremeKeys::identity(b, type);
    else
      return extremeAttr(b, type, /*lowest=*/kIsMax);
  }

  /// Two accumulators combined. Float sums and products are computed in a
  /// fixed order (the lanes of buildReduction), so they carry no
  /// reassociation flag; maxima and minima (keys, integers, or the GPU's
  /// NaN-propagating floats) are exactly associative, so LLVM may
  /// reassociate them freely (no bits change) and vectorizes them directly.
  static Value merge(OpBuilder &b, Location loc, Value acc, Value x,
                     bool keys) {
    if (keys)
      return ExtremeKeys::merge(b, loc, acc, x);
    bool isFloat = isa<FloatType>(getElementTypeOrSelf(x.getType()));
    auto reassoc = arith::FastMathFlags::reassoc;
    if constexpr (std::is_same_v<OpTy, SumOp>)
      return isFloat ? Value(arith::AddFOp::create(b, loc, acc, x))
                     : Value(arith::AddIOp::create(b, loc, acc, x));
    else if constexpr (std::is_same_v<OpTy, ProdOp>)
      return isFloat ? Value(arith::MulFOp::create(b, loc, acc, x))
                     : Value(arith::MulIOp::create(b, loc, acc, x));
    else if constexpr (kIsMax)
      return isFloat ? Value(arith::MaximumFOp::create(b, loc, acc, x, reassoc))
                     : Value(arith::MaxSIOp::create(b, loc, acc, x));
    else
      return isFloat ? Value(arith::MinimumFOp::create(b, loc, acc, x, reassoc))
                     : Value(arith::MinSIOp::create(b, loc, acc, x));
  }

  /// Element `x` combined into accumulator `acc`.
  static Value combine(OpBuilder &b, Location loc, Value x, Value acc,
                       bool keys) {
    if (keys)
      return ExtremeKeys::merge(b, loc, acc,
                                ExtremeKeys::encode(b, loc, x, kIsMax));
    return merge(b, loc, acc, x, /*keys=*/false);
  }

  /// The reduction's value from its final accumulator.
  static Value result(OpBuilder &b, Location loc, Value acc, Type elementType,
                      bool keys) {
    if (keys)
      return ExtremeKeys::decode(b, loc, acc, elementType, kIsMax);
    return acc;
  }

  /// The lane order's element term (the element itself) and merge.
  static LaneReduction laneReduction(bool keys) {
    return {
        [](OpBuilder &, Location, ValueRange x, ValueRange) { return x[0]; },
        [keys](OpBuilder &nb, Location l, Value acc, Value x) {
          return merge(nb, l, acc, x, keys);
        }};
  }

  /// Float sums and products use the fixed lane order.
  static bool needsLanes(Type elementType) {
    return isa<FloatType>(elementType) &&
           (std::is_same_v<OpTy, SumOp> || std::is_same_v<OpTy, ProdOp>);
  }

  /// The reduction kernel; with a fused epilogue its results are the
  /// group's.
  static SmallVector<Value> lower(OpBuilder &b, OpTy op, const KernelIO &io) {
    Location loc = op.getLoc();
    RankedTensorType inputType = tensorType(op.getInput());
    SmallVector<bool> mask = getReducedDimsMask(inputType, op.getDims());
    bool keepdim = op.getKeepdim();
    Type elementType = inputType.getElementType();
    bool keys = usesKeys(b, elementType);
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
      return io.finishElement(nb, l, result(nb, l, accs[0], elementType, keys),
                              resultIndices);
    };
    LaneReduction lanes = laneReduction(keys);
    SmallVector<Value> results = buildReduction(
        b, loc, inputType, read, mask, {identity(b, elementType, keys)},
        [keys](OpBuilder &nb, Location l, ValueRange x, ValueRange acc,
               ValueRange) {
          return SmallVector<Value>{combine(nb, l, x[0], acc[0], keys)};
        },
        finalize, io.resultElementTypes(),
        needsLanes(elementType) || isGpuTarget(b) ? &lanes : nullptr,
        /*maySplit=*/true, /*orderFree=*/&lanes, io.elementPrefetch(b, loc),
        /*explain=*/op->getName().getStringRef());
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

/// One row's reduction `OpTy` (sum, prod, amax, amin over the last dim of
/// `inputType`) of what `read` gives at `indices` (the row's coordinates,
/// then the position in the row): the operations of the reduction kernel
/// in its order -- the lane order for float sums and products, one loop
/// otherwise -- so the same bits. Rows the kernel splits (planReductionSplit
/// of ReductionPlan.h: few long rows) reduce each segment in the lane order
/// and merge the segments' partials as the split's second kernel does: a
/// lane loop over the segments whose elements are the partials, each
/// computed where that loop reads it (no partial is stored).
template <typename OpTy>
Value reduceRow(OpBuilder &b, Location loc, RankedTensorType inputType,
                SmallVector<Value> &indices, ElementReader read,
                std::function<void(OpBuilder &, Location, Value first)>
                    prefetch = nullptr) {
  using Lower = LowerDimsReduction<OpTy>;
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
    auto split = kiln::conversion::planReductionSplit(
        {inputType.getNumElements() / std::max<int64_t>(n, 1), n},
        {false, true});
    int64_t segments = split ? split->second : 1;
    if (segments == 1)
      return buildLaneLoops(b, loc, inputType, {inner}, indices, identity, read,
                            {element, merge, std::move(prefetch)});
    int64_t length = n / segments;
    SmallVector<int64_t> shape(inputType.getShape());
    shape[inner] = length;
    auto segmentType = RankedTensorType::get(shape, elementType);
    shape[inner] = segments;
    auto partialsType = RankedTensorType::get(shape, elementType);
    // Partial `at[inner]`: its segment's elements in the lane order.
    auto partial = [&](OpBuilder &nb, Location l, ValueRange at) {
      Value start =
          arith::MulIOp::create(nb, l, at[inner], indexConstant(nb, l, length));
      auto offset = [start](OpBuilder &ob, Location ol, Value j) {
        return Value(arith::AddIOp::create(ob, ol, start, j));
      };
      std::function<void(OpBuilder &, Location, Value)> segmentPrefetch;
      if (prefetch)
        segmentPrefetch = [&](OpBuilder &ob, Location ol, Value first) {
          prefetch(ob, ol, offset(ob, ol, first));
        };
      SmallVector<Value> segmentAt(at.begin(), at.end());
      auto segmentRead = [&](OpBuilder &ob, Location ol, ValueRange pos) {
        SmallVector<Value> rowAt(pos.begin(), pos.end());
        rowAt[inner] = offset(ob, ol, pos[inner]);
        return read(ob, ol, rowAt);
      };
      return SmallVector<Value>{
          buildLaneLoops(nb, l, segmentType, {inner}, segmentAt, identity,
                         segmentRead, {element, merge, segmentPrefetch})};
    };
    return buildLaneLoops(b, loc, partialsType, {inner}, indices, identity,
                          partial, {element, merge});
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

/// softmax's element exp(x - m) * s (`s` the reciprocal of the sum), or
/// log_softmax's x - m - s (`s` the log of the sum).
Value softmaxElement(OpBuilder &b, Location loc, Value x, Value m, Value s,
                     bool isLog) {
  Value shifted = arith::SubFOp::create(b, loc, x, m);
  return isLog ? Value(arith::SubFOp::create(b, loc, shifted, s))
               : Value(arith::MulFOp::create(
                     b, loc, math::ExpOp::create(b, loc, shifted), s));
}

/// 1 / `sum`, once per row: softmax multiplies each exp(x - m) by it, as
/// PyTorch's CPU softmax does -- the same formula, and a multiplication
/// per element instead of a division (a 512-bit division takes several
/// times a multiplication's throughput).
Value reciprocal(OpBuilder &b, Location loc, Value sum) {
  Value one =
      arith::ConstantOp::create(b, loc, b.getFloatAttr(sum.getType(), 1.0));
  return arith::DivFOp::create(b, loc, one, sum);
}

/// The sum of exp(x - m) over a row (what `read` gives at `indices`) in
/// the lane order -- softmax's row sum, in its kernels' operations and
/// order -- as its reciprocal for softmax or its log for log_softmax (what
/// softmaxElement takes).
Value rowExpSum(OpBuilder &b, Location loc, RankedTensorType inputType,
                SmallVector<Value> &indices, ElementReader read, Value m,
                bool isLog,
                std::function<void(OpBuilder &, Location, Value first)>
                    prefetch = nullptr) {
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

LogicalResult lowerRuntimeCall(Operation *op, StringRef name, Value input,
                               ArrayRef<Type> resultTypes, int64_t k,
                               int64_t dim, bool flag0, bool flag1,
                               PatternRewriter &rewriter);

/// max/min with dim and argmax/argmin call the runtime's vectorized
/// (value, index) scan, `kiln_rt_argreduce_<type>`.
template <typename OpTy> struct LowerMaxMin : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    return lowerRuntimeCall(
        op, "argreduce", op.getInput(),
        {op.getValues().getType(), op.getIndices().getType()}, /*k=*/0,
        *normalizeDim(op.getDim(), type.getRank()), std::is_same_v<OpTy, MaxOp>,
        /*flatten=*/false, rewriter);
  }
};

template <typename OpTy> struct LowerArg : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    std::optional<uint64_t> dim = op.getDim();
    // The values the scan also produces are not used.
    auto valuesType =
        RankedTensorType::get(op.getType().getShape(), type.getElementType());
    return lowerRuntimeCall(
        op, "argreduce", op.getInput(), {valuesType, op.getType()},
        /*k=*/0,
        dim ? *normalizeDim(static_cast<int64_t>(*dim), type.getRank()) : 0,
        std::is_same_v<OpTy, ArgmaxOp>, /*flatten=*/!dim.has_value(), rewriter);
  }
};

struct LowerEqual : OpRewritePattern<EqualOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EqualOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType lhsType = tensorType(op.getLhs());
    if (lhsType.getShape() != tensorType(op.getRhs()).getShape()) {
      rewriter.replaceOpWithNewOp<arith::ConstantOp>(
          op, DenseElementsAttr::get(op.getType(), false));
      return success();
    }
    // all(lhs == rhs) over every dim.
    SmallVector<bool> mask(lhsType.getRank(), true);
    Value result = buildReduction(
        rewriter, loc, ValueRange{op.getLhs(), op.getRhs()}, mask,
        {rewriter.getBoolAttr(true)},
        [](OpBuilder &b, Location l, ValueRange xs, ValueRange acc,
           ValueRange) {
          Value same;
          if (isa<FloatType>(xs[0].getType()))
            same = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, xs[0],
                                         xs[1]);
          else
            same = arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, xs[0],
                                         xs[1]);
          return SmallVector<Value>{arith::AndIOp::create(b, l, acc[0], same)};
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// softmax / log_softmax
//===----------------------------------------------------------------------===//

/// Three kernels per softmax, each one pass: the row maximum m, the row sum
/// s of exp(x - m) (both vectorized reductions along `dim`), and the
/// elementwise exp(x - m) * (1 / s) (or x - m - log(s)). Infinities and NaN
/// give PyTorch's answers: NaN or +inf in a row makes the row NaN, -inf entries
/// contribute 0, an all -inf row is NaN.
Value asUnrankedBuffer(OpBuilder &b, Location loc, Value tensor);
scf::ForallOp createGridForall(OpBuilder &b, Location loc,
                               ArrayRef<int64_t> grid, ValueRange shared,
                               SmallVector<Value> &coords);

/// The rows of an scf.forall over rows (the rows-in-cache kernels): each
/// result's row at `coords` (`n` elements) as a slice of the forall's
/// shared output, written in place -- a fresh row tensor would be a buffer
/// per row, copied.
struct ResultRows {
  SmallVector<OpFoldResult> offsets, sizes, strides;
  SmallVector<Value> inits; // the slices, to write the rows into
  SmallVector<Type> types;  // tensor<n x element> (or the row's dims)

  ResultRows(OpBuilder &b, Location loc, scf::ForallOp forall,
             ArrayRef<Value> coords, TypeRange resultTypes, int64_t n)
      : ResultRows(b, loc, forall.getRegionIterArgs(), coords, resultTypes,
                   ArrayRef<int64_t>{n}) {}

  /// The rows of `shared` (some of a forall's shared outputs, of
  /// `resultTypes`), each of `row`'s shape (the outputs' last dims).
  ResultRows(OpBuilder &b, Location loc, ValueRange shared,
             ArrayRef<Value> coords, TypeRange resultTypes,
             ArrayRef<int64_t> row) {
    offsets.assign(coords.begin(), coords.end());
    offsets.append(row.size(), b.getIndexAttr(0));
    sizes.assign(coords.size(), b.getIndexAttr(1));
    for (int64_t size : row)
      sizes.push_back(b.getIndexAttr(size));
    strides.assign(coords.size() + row.size(), b.getIndexAttr(1));
    for (auto [t, output] : llvm::zip_equal(resultTypes, shared)) {
      auto rowType = RankedTensorType::get(
          row, cast<RankedTensorType>(t).getElementType());
      types.push_back(rowType);
      inits.push_back(tensor::ExtractSliceOp::create(b, loc, rowType, output,
                                                     offsets, sizes, strides));
    }
  }

  /// Puts `rows` back into the shared outputs (the forall's terminator) and
  /// returns the forall's results.
  SmallVector<Value> finish(OpBuilder &b, Location loc, scf::ForallOp forall,
                            ValueRange rows) const {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getTerminator().getBody());
    for (auto [row, shared] : llvm::zip_equal(rows, forall.getRegionIterArgs()))
      tensor::ParallelInsertSliceOp::create(b, loc, row, shared, offsets, sizes,
                                            strides);
    return SmallVector<Value>(forall.getResults());
  }
};
std::pair<Value, Value> allocOutput(OpBuilder &b, Location loc,
                                    RankedTensorType type);
Value asTensor(OpBuilder &b, Location loc, Value buffer, RankedTensorType type);
Value buildIndexedGeneric(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body);

/// Elements per chunk of a softmax's exp pass that prefetches the next row.
constexpr int64_t kExpChunk = 64;

/// Inputs a rows-in-cache kernel prefetches the next row of, at most.
constexpr int64_t kMaxPrefetchedInputs = 2;

/// The next row of a rows-in-cache kernel's stored inputs, prefetched in
/// one of its passes over a row: chunk by chunk of softmax's exp pass
/// (keepExpsInRow), or step by step of a lane loop (lanePrefetch: the sum
/// of exps of log_softmax, a row group's last float sum). The passes over
/// a row in cache compute, and the first of them then waited on memory
/// for the row; the hardware's stream prefetch stops at the page the row
/// ends in.
/// Prefetching the lines of the chunk's position in the next row while it
/// computes overlaps the two: softmax over 4096x4096 f32, 1 thread 6.0-6.6
/// -> 4.4-4.9 ms, 2 threads 3.1-4.5 -> 2.3-3.3 (medians of alternating
/// runs; its output prefetched for writing as well measured slower).
struct NextRowPrefetch {
  SmallVector<int64_t> grid;
  SmallVector<Value> buffers; // [rows, n] views of the inputs
  SmallVector<int64_t> lineElements;
  Value next; // the next row (the last row prefetches itself)

  /// For the row at `coords` of `grid`: every tensor of `candidates` of
  /// shape grid x (dims of n elements in all) (at most
  /// kMaxPrefetchedInputs), when there are rows after this one and a row
  /// holds a chunk.
  NextRowPrefetch(OpBuilder &b, Location loc, ArrayRef<Value> coords,
                  ArrayRef<int64_t> grid, int64_t n, ValueRange candidates)
      : NextRowPrefetch(b, loc, grid, n, candidates) {
    setRow(b, loc, coords);
  }

  /// The buffers alone (built outside a linalg.generic whose body then
  /// calls setRow with its indices).
  NextRowPrefetch(OpBuilder &b, Location loc, ArrayRef<int64_t> grid, int64_t n,
                  ValueRange candidates)
      : grid(grid) {
    if (ShapedType::getNumElements(grid) < 2 || n < kExpChunk || isGpuTarget(b))
      return;
    int64_t g = grid.size();
    for (Value candidate : candidates) {
      auto type = dyn_cast<RankedTensorType>(candidate.getType());
      if (!type || type.getRank() <= g ||
          type.getShape().take_front(g) != grid ||
          ShapedType::getNumElements(type.getShape().drop_front(g)) != n ||
          buffers.size() == kMaxPrefetchedInputs)
        continue;
      Value matrix = candidate;
      if (type.getRank() != 2) {
        ReassociationIndices outer, row; // grid has dims (2 rows or more)
        for (int64_t d = 0; d < type.getRank(); ++d)
          (d < g ? outer : row).push_back(d);
        matrix = tensor::CollapseShapeOp::create(
            b, loc, candidate, ArrayRef<ReassociationIndices>{outer, row});
      }
      buffers.push_back(readOnlyBuffer(b, loc, matrix));
      lineElements.push_back(std::max<int64_t>(
          1, 64 / std::max<int64_t>(1, type.getElementTypeBitWidth() / 8)));
    }
  }

  /// The row after the one at `coords` (the last row prefetches itself).
  void setRow(OpBuilder &b, Location loc, ArrayRef<Value> coords) {
    if (buffers.empty())
      return;
    next = arith::MinUIOp::create(
        b, loc,
        arith::AddIOp::create(b, loc, linearize(b, loc, coords, grid),
                              indexConstant(b, loc, 1)),
        indexConstant(b, loc, ShapedType::getNumElements(grid) - 1));
  }

  explicit operator bool() const { return !buffers.empty(); }

  /// Prefetches positions [c, c + count) of the next row.
  void operator()(OpBuilder &b, Location loc, Value c,
                  int64_t count = kExpChunk) const {
    for (auto [buffer, step] : llvm::zip_equal(buffers, lineElements))
      for (int64_t k = 0; k < count; k += step)
        memref::PrefetchOp::create(
            b, loc, buffer,
            ValueRange{next, arith::AddIOp::create(b, loc, c,
                                                   indexConstant(b, loc, k))},
            /*isWrite=*/false, /*localityHint=*/3, /*isDataCache=*/true);
  }
};

/// `prefetch` as a lane loop's (LaneReduction::prefetch): each step's
/// kReductionLanes positions of the next row.
std::function<void(OpBuilder &, Location, Value)>
lanePrefetch(const NextRowPrefetch &prefetch) {
  return [prefetch](OpBuilder &b, Location loc, Value first) {
    prefetch(b, loc, first, kReductionLanes);
  };
}

/// A softmax's exps kept in its result's row: exp(x - m) for each position
/// j of the row (`x(j)`) into `into` (tensor<n x f>, a slice of the
/// result), and their sum in the lane order. Returns {the row of exps, the
/// reciprocal of their sum}.
///
/// A row of at least kExpChunk elements is computed in chunks of that
/// many, each first prefetching its share of the next row (`prefetch`,
/// when given), then adding its exps to the lane partial sums -- element i
/// to lane i % 32, in order, the tail into the first lanes: buildLaneLoops'
/// order, so the same bits -- while they are in registers. A separate pass
/// reading the row back waited on its two chains of adds (128 dependent
/// adds each over 4096 f32); here they overlap the exps. softmax over
/// 4096x4096 f32 (medians of alternating runs): 1 thread 4.25-4.32 ->
/// 4.08-4.20 ms, 2 threads 2.11-2.32 -> 1.99-2.08; 128x4096, rows in L2,
/// 1 thread 0.115 -> 0.106 ms.
std::pair<Value, Value> keepExpsInRow(
    OpBuilder &b, Location loc, Value into, Value m,
    function_ref<Value(OpBuilder &, Location, Value j)> x,
    function_ref<void(OpBuilder &, Location, Value j)> prefetch = {}) {
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
  // of kReductionLanes), in place, added to the lane sums `acc`. Returns
  // {row, acc}.
  auto expsOf = [&](OpBuilder &gb, Location gl, Value row, Value acc,
                    Value first, int64_t size) -> std::pair<Value, Value> {
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
      acc = mergeLaneTail(gb, gl, acc, tail, zero, sum);
    }
    return {tensor::InsertSliceOp::create(gb, gl, chunk, row, offsets, sizes,
                                          strides),
            acc};
  };
  int64_t chunked = n / kExpChunk * kExpChunk;
  Value lanes = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(laneType, zeroAttr));
  auto loop = scf::ForOp::create(
      b, loc, indexConstant(b, loc, 0), indexConstant(b, loc, chunked),
      indexConstant(b, loc, kExpChunk), ValueRange{into, lanes},
      [&](OpBuilder &cb, Location cl, Value c, ValueRange carried) {
        if (prefetch)
          prefetch(cb, cl, c);
        auto [row, acc] = expsOf(cb, cl, carried[0], carried[1], c, kExpChunk);
        scf::YieldOp::create(cb, cl, ValueRange{row, acc});
      });
  Value exps = loop.getResult(0);
  lanes = loop.getResult(1);
  if (chunked < n)
    std::tie(exps, lanes) = expsOf(b, loc, exps, lanes,
                                   indexConstant(b, loc, chunked), n - chunked);
  return {exps, reciprocal(b, loc, foldLanes(b, loc, lanes, sum))};
}

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
    auto read = [&](OpBuilder &nb, Location l, ValueRange indices) {
      return SmallVector<Value>{io.read(nb, l, indices)};
    };
    bool empty = rank > 0 && type.getDimSize(dim) == 0;
    std::optional<std::pair<int64_t, int64_t>> split;
    if (!isGpuTarget(b) && rank > 0 && dim == rank - 1)
      split = planReductionSplit(type, mask);
    if (split)
      remarkKernel(b, loc,
                   "{0} over dim {1} of {2}: 3 kernels: each of {3} segments "
                   "of a row its maximum m' and its sum of exp(x - m') (the "
                   "segment read twice, the second time from cache), in "
                   "parallel; then each row's maximum m and sum s, the "
                   "segments' sums scaled by exp(m' - m) and added in order; "
                   "then {4} (a fused producer chain is evaluated in each "
                   "pass)",
                   name, dim, typeText(type), split->second,
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
    using Max = LowerDimsReduction<AmaxOp>;
    bool keys = Max::usesKeys(b, floatType);
    LaneReduction maxLanes{
        [](OpBuilder &, Location, ValueRange xs, ValueRange) { return xs[0]; },
        [keys](OpBuilder &nb, Location l, Value acc, Value x) {
          return Max::merge(nb, l, acc, x, keys);
        }};
    Value rowMax, rowSum;
    if (split)
      std::tie(rowMax, rowSum) = segmentStatistics(
          b, op, type, read, io.sources, split->second, isLog);
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
                    ElementReader read, ValueRange sources, int64_t segments,
                    bool isLog) {
    Location loc = op.getLoc();
    int64_t rank = type.getRank(), inner = rank - 1;
    int64_t length = type.getDimSize(inner) / segments;
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
    for (Value source : sources)
      if (auto sourceType = dyn_cast<RankedTensorType>(source.getType());
          sourceType && sourceType.getShape() == type.getShape())
        segmented.push_back(tensor::ExpandShapeOp::create(
            b, loc,
            RankedTensorType::get(segmentedShape, sourceType.getElementType()),
            source, groups));
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
    Value start = arith::MulIOp::create(sb, loc, ivs[inner],
                                        indexConstant(sb, loc, length));
    // Position j of the segment: position start + j of the row.
    auto segmentRead = [&](OpBuilder &rb, Location rl, ValueRange at) {
      SmallVector<Value> position(at.begin(), at.end());
      position[inner] = arith::AddIOp::create(rb, rl, start, position[inner]);
      return read(rb, rl, position);
    };
    SmallVector<Value> indices(ivs);
    Value segmentMax =
        reduceRow<AmaxOp>(sb, loc, segmentType, indices, segmentRead);
    Value allNegInf = arith::CmpFOp::create(sb, loc, arith::CmpFPredicate::OEQ,
                                            segmentMax, negInf);
    Value shift = arith::SelectOp::create(sb, loc, allNegInf, zero, segmentMax);
    prefetch.setRow(sb, loc, ivs);
    LaneReduction expSum{
        [shift](OpBuilder &eb, Location el, ValueRange xs, ValueRange) {
          return Value(math::ExpOp::create(
              eb, el, arith::SubFOp::create(eb, el, xs[0], shift)));
        },
        [](OpBuilder &eb, Location el, Value acc, Value term) {
          return Value(arith::AddFOp::create(eb, el, acc, term));
        },
        prefetch ? lanePrefetch(prefetch) : nullptr};
    Value segmentSum =
        buildLaneLoops(sb, loc, segmentType, {inner}, indices,
                       sb.getFloatAttr(floatType, 0.0), segmentRead, expSum);
    linalg::YieldOp::create(sb, loc, ValueRange{segmentMax, segmentSum});
    Value maxima = stats.getResult(0), sums = stats.getResult(1);
    // Per row: m = max m' (NaN-propagating), s = sum of s' exp(m' - m).
    RankedTensorType rowType =
        RankedTensorType::get(type.getShape().drop_back(), floatType);
    AffineMap rowIdentity = AffineMap::getMultiDimIdentityMap(inner, ctx);
    auto rows = linalg::GenericOp::create(
        b, loc, TypeRange{rowType, rowType}, ValueRange{},
        ValueRange{emptyTensor(b, loc, rowType), emptyTensor(b, loc, rowType)},
        SmallVector<AffineMap>{rowIdentity, rowIdentity},
        parallelIterators(inner), [&](OpBuilder &nb, Location l, ValueRange) {
          SmallVector<Value> at = loopIndices(nb, l, inner);
          at.push_back(Value());
          auto over = [&](Value init, auto step) {
            return scf::ForOp::create(nb, l, indexConstant(nb, l, 0),
                                      indexConstant(nb, l, segments),
                                      indexConstant(nb, l, 1), ValueRange{init},
                                      [&](OpBuilder &fb, Location fl, Value k,
                                          ValueRange acc) {
                                        at.back() = k;
                                        scf::YieldOp::create(
                                            fb, fl, step(fb, fl, acc[0]));
                                      })
                .getResult(0);
          };
          Value m = over(negInf, [&](OpBuilder &fb, Location fl, Value acc) {
            Value mk = tensor::ExtractOp::create(fb, fl, maxima, at);
            return Value(arith::MaximumFOp::create(fb, fl, acc, mk));
          });
          // In f64 for narrower types: one exp per segment, whose
          // rounding would otherwise add to the elements' (softmax of
          // 1x16M f32, worst relative error against f64: 1.2e-6 with the
          // scales in f32, 5.9e-7 in f64, as by the separate kernels).
          auto wide = nb.getF64Type();
          bool widen = floatType.getWidth() < 64;
          auto widened = [&](OpBuilder &fb, Location fl, Value v) {
            return widen ? Value(arith::ExtFOp::create(fb, fl, wide, v)) : v;
          };
          Value wideZero = arith::ConstantOp::create(
              nb, l, nb.getFloatAttr(widen ? Type(wide) : floatType, 0.0));
          Value wideM = widened(nb, l, m);
          Value s = over(wideZero, [&](OpBuilder &fb, Location fl, Value acc) {
            Value mk =
                widened(fb, fl, tensor::ExtractOp::create(fb, fl, maxima, at));
            Value sk =
                widened(fb, fl, tensor::ExtractOp::create(fb, fl, sums, at));
            Value scale = math::ExpOp::create(
                fb, fl, arith::SubFOp::create(fb, fl, mk, wideM));
            return Value(arith::AddFOp::create(
                fb, fl, acc, arith::MulFOp::create(fb, fl, sk, scale)));
          });
          Value finished = isLog ? Value(math::LogOp::create(nb, l, s))
                                 : reciprocal(nb, l, s);
          if (widen)
            finished = arith::TruncFOp::create(nb, l, floatType, finished);
          linalg::YieldOp::create(nb, l, ValueRange{m, finished});
        });
    return {rows.getResult(0), rows.getResult(1)};
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
          prefetch ? function_ref<void(OpBuilder &, Location, Value)>(prefetch)
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

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

/// An scf.forall with one iteration per point of `grid` (linearized)
/// updating `shared`; moves `b` to the start of its body and returns the
/// point's coordinates in `coords`.
scf::ForallOp createGridForall(OpBuilder &b, Location loc,
                               ArrayRef<int64_t> grid, ValueRange shared,
                               SmallVector<Value> &coords) {
  auto forall = scf::ForallOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{b.getIndexAttr(ShapedType::getNumElements(grid))},
      shared, /*mapping=*/std::nullopt);
  b.setInsertionPointToStart(forall.getBody());
  coords = delinearize(b, loc, forall.getInductionVars()[0], grid);
  return forall;
}

/// One reduced row of a block of column accumulators ([lane, column], as
/// buildColumnReduction and reduceColumnBlock keep them): for each of the
/// `width` columns c, acc[lane, c] = combine(acc[lane, c], c) -- a
/// contiguous loop, which LLVM vectorizes.
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

/// Column `c`'s value in a block of column accumulators of `laneCount`
/// lanes: the lanes merged in the fixed tree (mergeLaneTree), or lane 0's.
Value mergeColumnLanes(OpBuilder &b, Location loc, Value acc, Value c,
                       int64_t laneCount, const LaneReduction *lanes) {
  SmallVector<Value> partial;
  for (int64_t lane = 0; lane < laneCount; ++lane)
    partial.push_back(tensor::ExtractOp::create(
        b, loc, acc, ValueRange{indexConstant(b, loc, lane), c}));
  return laneCount > 1 ? mergeLaneTree(b, loc, partial, *lanes) : partial[0];
}

/// A reduction whose input keeps its innermost dim (a sum over dim 0 of a
/// row-major matrix), on the CPU. Walking each kept position's reduced
/// elements would read memory with a stride (one cache line per element);
/// instead an scf.forall over (outer kept position, block of columns of the
/// innermost dim) walks the reduced dims outside and the block's columns
/// inside, contiguous (vectorized by LLVM), updating a block of
/// accumulators: with `lanes`, 32 per column, the reduced element of
/// innermost index i going to lane i % 32, and the lanes merged in the fixed
/// tree -- for every column exactly the operations of buildLaneLoops, so the
/// same bits; without, `body` in the reduced elements' row-major order.
/// `finalize` then applies per column.
SmallVector<Value> buildColumnReduction(
    OpBuilder &b, Location loc, RankedTensorType inputType, ElementReader read,
    ArrayRef<int64_t> keptDims, ArrayRef<int64_t> reducedDims, TypedAttr init,
    ReductionBody body, const LaneReduction *lanes, ReductionFinalizer finalize,
    TypeRange finalTypes, const ElementPrefetch &prefetch) {
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
  int64_t block = std::min(columns, 512 / elementBytes);
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
  // The block's accumulators, [lane, column], all at `init`.
  Value accInit = filledTensor(
      b, loc, RankedTensorType::get({laneCount, block}, accType), init);
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
  // Elements per 512-bit vector, a 64-byte cache line.
  int64_t lineElements =
      512 / std::max<int64_t>(8, inputType.getElementTypeBitWidth());
  bool narrow = lanes && blocks == 1 && columns < lineElements &&
                inner == rank - 2 && spreadsOverLanes(innerSize);
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
  Value accStart = accInit;
  if (narrow)
    accStart = tensor::CollapseShapeOp::create(
        b, loc, accInit, ArrayRef<ReassociationIndices>{{0, 1}});
  SmallVector<Value> lbs, ubs, steps;
  appendLoopBounds(b, loc, inputType,
                   narrow ? ArrayRef<int64_t>(reducedDims).drop_back()
                          : ArrayRef<int64_t>(reducedDims),
                   lbs, ubs, steps);
  scf::LoopNest nest = scf::buildLoopNest(
      b, loc, lbs, ubs, steps, ValueRange{accStart},
      [&](OpBuilder &ob, Location ol, ValueRange ivs,
          ValueRange accs) -> scf::ValueVector {
        for (auto [iv, d] : llvm::zip(ivs, reducedDims))
          indices[d] = iv;
        if (narrow) {
          // Groups of `unroll` rows (a divisor of kReductionLanes, so a
          // group's lanes are consecutive), then the rows left over one at
          // a time.
          int64_t grouped = innerSize / unroll * unroll;
          auto groups = scf::ForOp::create(
              ob, ol, zero, indexConstant(ob, ol, grouped / unroll), one, accs,
              [&](OpBuilder &gb, Location gl, Value g, ValueRange acc) {
                Value row0 = arith::MulIOp::create(
                    gb, gl, g, indexConstant(gb, gl, unroll));
                scf::YieldOp::create(gb, gl,
                                     updateRows(gb, gl, acc[0], row0,
                                                laneOf(gb, gl, row0, innerSize),
                                                unroll));
              });
          auto tail = scf::ForOp::create(
              ob, ol, indexConstant(ob, ol, grouped),
              indexConstant(ob, ol, innerSize), one, groups.getResults(),
              [&](OpBuilder &tb, Location tl, Value i, ValueRange acc) {
                scf::YieldOp::create(tb, tl,
                                     updateRows(tb, tl, acc[0], i,
                                                laneOf(tb, tl, i, innerSize),
                                                1));
              });
          return {tail.getResult(0)};
        }
        Value lane = zero;
        if (lanes)
          lane = laneOf(ob, ol, ivs.back(), innerSize);
        if (prefetchRows) {
          SmallVector<Value> ahead(indices);
          Value next = arith::AddIOp::create(ob, ol, ivs.back(),
                                             indexConstant(ob, ol, rowsAhead));
          if (carryAhead) {
            // Past the last row, the rows of the next reduction.
            Value size = indexConstant(ob, ol, innerSize);
            ahead[inner] = arith::RemUIOp::create(ob, ol, next, size);
            ahead[inner - 1] = arith::MinUIOp::create(
                ob, ol,
                arith::AddIOp::create(
                    ob, ol, indices[inner - 1],
                    arith::DivUIOp::create(ob, ol, next, size)),
                indexConstant(ob, ol, inputType.getDimSize(inner - 1) - 1));
          } else {
            ahead[inner] = arith::MinUIOp::create(
                ob, ol, next, indexConstant(ob, ol, innerSize - 1));
          }
          scf::ForOp::create(
              ob, ol, zero, width, indexConstant(ob, ol, lineElements),
              ValueRange{},
              [&](OpBuilder &pb, Location pl, Value c, ValueRange) {
                SmallVector<Value> at(ahead);
                at[rank - 1] = arith::AddIOp::create(pb, pl, first, c);
                prefetch(pb, pl, at);
                scf::YieldOp::create(pb, pl);
              });
        }
        return {updateColumnLane(ob, ol, accs[0], lane, width, combine)};
      });
  Value acc = nest.results.front();
  if (narrow)
    acc = tensor::ExpandShapeOp::create(
        b, loc, RankedTensorType::get({laneCount, block}, accType), acc,
        ArrayRef<ReassociationIndices>{{0, 1}});
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

/// The runtime function returning the run's thread count (CPU).
constexpr llvm::StringLiteral kNumThreadsFn = "kiln_rt_num_threads";

/// Result rows per block of the CPU's matmul loop nest.
constexpr int64_t kMatmulRows = 4;
/// Result rows per register tile of the CPU's float matmul: with two
/// AVX-512 vectors of columns, 16 accumulators, 2 rhs vectors and a
/// broadcast in registers (of 32), no spills; each rhs row loaded serves 8
/// rows. Against 4 rows (1 thread, ms): f32 256³ 0.19 -> 0.16, 1024³ 13.8
/// -> 12.2, 4096x64x4096 26.9 -> 18.7, f64 1024³ 32.5 -> 25.1; 12 and 16
/// rows were slower (1024³: 16.6, 27.4). The same bits: each element still
/// sums in k order.
constexpr int64_t kMatmulTileRows = 8;
/// Result columns per f32 register tile (two AVX-512 vectors).
constexpr int64_t kMatmulColumns = 32;
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
/// per element).
Value buildMatmulTiles(OpBuilder &b, Location loc, MatmulOp op, Value into,
                       int64_t rowBegin, int64_t blocks, int64_t height,
                       int64_t columnBegin, int64_t groups, int64_t width) {
  RankedTensorType lhsType = tensorType(op.getLhs());
  RankedTensorType rhsType = tensorType(op.getRhs());
  RankedTensorType resultType = op.getType();
  Type elementType = resultType.getElementType();
  int64_t rank = resultType.getRank(), batchRank = rank - 2;
  int64_t kSize = lhsType.getDimSize(lhsType.getRank() - 1);
  // Iterations in (batch, column group, row chunk) order: a thread's
  // consecutive iterations share a column group, whose rhs panel stays in
  // cache while the row chunks go by. The chunk: the most row blocks
  // (dividing their count, at most kMatmulChunkBlocks) that still leave
  // kMatmulMinIterations iterations, if it packs; else one block.
  int64_t others =
      ShapedType::getNumElements(resultType.getShape().take_front(batchRank)) *
      groups;
  int64_t chunk = 1;
  for (int64_t c = std::min(blocks, kMatmulChunkBlocks); c > 1; --c)
    if (blocks % c == 0 && others * (blocks / c) >= kMatmulMinIterations) {
      chunk = c;
      break;
    }
  int64_t lanes = llvm::PowerOf2Ceil(width);
  int64_t panelBytes = kSize * lanes * elementType.getIntOrFloatBitWidth() / 8;
  bool pack = chunk >= kMatmulPackBlocks && panelBytes > kMatmulPackMinBytes;
  if (!pack)
    chunk = 1;
  SmallVector<int64_t> grid(resultType.getShape().take_front(batchRank));
  grid.append({groups, blocks / chunk});
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Value> coords;
  scf::ForallOp forall = createGridForall(b, loc, grid, into, coords);
  Value row0 = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, coords.back(),
                            indexConstant(b, loc, chunk * height)),
      indexConstant(b, loc, rowBegin));
  Value column =
      arith::AddIOp::create(b, loc,
                            arith::MulIOp::create(b, loc, coords[batchRank],
                                                  indexConstant(b, loc, width)),
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
  for (int64_t d = 0; d < batchRank; ++d) {
    offsets.push_back(coords[d]);
    sizes.push_back(b.getIndexAttr(1));
    sliceShape.push_back(1);
  }
  offsets.append({row0, column});
  sizes.append({b.getIndexAttr(chunk * height), b.getIndexAttr(width)});
  sliceShape.append({chunk * height, width});
  strides.assign(rank, b.getIndexAttr(1));
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
  auto rhsRow = [&](OpBuilder &kb, Location kl, Value k) -> Value {
    SmallVector<Value> rhsAt(rhsBatch);
    rhsAt.append({k, column});
    return vector::TransferReadOp::create(kb, kl, vectorType, op.getRhs(),
                                          rhsAt, padding, masked);
  };
  // Row k of the panel: from the packed copy or from rhs itself.
  Value panel;
  if (pack) {
    Value empty = tensor::EmptyOp::create(b, loc, {kSize, lanes}, elementType);
    panel = scf::ForOp::create(
                b, loc, zero, kBound, one, ValueRange{empty},
                [&](OpBuilder &kb, Location kl, Value k, ValueRange copy) {
                  scf::YieldOp::create(kb, kl,
                                       vector::TransferWriteOp::create(
                                           kb, kl, rhsRow(kb, kl, k), copy[0],
                                           ValueRange{k, zero}, inBounds)
                                           .getResult());
                })
                .getResult(0);
  }
  auto panelRow = [&](OpBuilder &kb, Location kl, Value k) -> Value {
    if (panel)
      return vector::TransferReadOp::create(
          kb, kl, vectorType, panel, ValueRange{k, zero}, padding, inBounds);
    return rhsRow(kb, kl, k);
  };
  auto chunkLoop = scf::ForOp::create(
      b, loc, zero, indexConstant(b, loc, chunk), one, ValueRange{slice},
      [&](OpBuilder &bb, Location bl, Value block, ValueRange tiles) {
        Value first =
            arith::MulIOp::create(bb, bl, block, indexConstant(bb, bl, height));
        Value firstRow = arith::AddIOp::create(bb, bl, row0, first);
        SmallVector<Value> initial(height, zeroVector);
        auto sums = scf::ForOp::create(
            bb, bl, zero, kBound, one, initial,
            [&](OpBuilder &kb, Location kl, Value k, ValueRange accs) {
              Value row = panelRow(kb, kl, k);
              SmallVector<Value> next;
              for (int64_t r = 0; r < height; ++r) {
                SmallVector<Value> lhsAt(lhsBatch);
                lhsAt.push_back(arith::AddIOp::create(
                    kb, kl, firstRow, indexConstant(kb, kl, r)));
                lhsAt.push_back(k);
                Value a = tensor::ExtractOp::create(kb, kl, op.getLhs(), lhsAt);
                Value product = arith::MulFOp::create(
                    kb, kl, vector::BroadcastOp::create(kb, kl, vectorType, a),
                    row);
                next.push_back(arith::AddFOp::create(kb, kl, accs[r], product));
              }
              scf::YieldOp::create(kb, kl, next);
            });
        Value tile = tiles[0];
        for (int64_t r = 0; r < height; ++r) {
          SmallVector<Value> at(batchRank, zero);
          at.append(
              {arith::AddIOp::create(bb, bl, first, indexConstant(bb, bl, r)),
               zero});
          tile = vector::TransferWriteOp::create(bb, bl, sums.getResult(r),
                                                 tile, at, masked)
                     .getResult();
        }
        scf::YieldOp::create(bb, bl, tile);
      });
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, chunkLoop.getResult(0), shared,
                                        offsets, sizes, strides);
  return forall.getResult(0);
}

/// Float matmul on the CPU in register tiles (buildMatmulTiles): blocks of
/// kMatmulTileRows rows by groups of kMatmulColumns (f32) or 16 (f64) columns,
/// then the columns left over (in groups of 8 or 16 when they are a
/// multiple of 8, else one masked group) and the rows left over (one block
/// as tall as they are) — up to four scf.forall ops, each writing its own
/// part of the result. Returns null for other element types and for
/// results too small for one full block (fewer than kMatmulRows rows or 8
/// columns), which the contraction generic handles.
Value buildRegisterBlockedMatmul(PatternRewriter &rewriter, MatmulOp op) {
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
  int64_t width = elementType.isF32() ? kMatmulColumns : 16;
  int64_t groups = m / width, tailWidth = m % width;
  // Columns left over in a multiple of 8 take groups of the largest power
  // of two dividing them, unmasked (24 columns: 3 groups of 8, 0.73 ms for
  // 1000x1000x24 against 0.83 masked to 32).
  int64_t tailGroups = 1;
  if (tailWidth % 8 == 0 && tailWidth) {
    int64_t lowest = tailWidth & -tailWidth;
    tailGroups = tailWidth / lowest;
    tailWidth = lowest;
  }
  // Fewer than kMatmulTileRows rows (but at least kMatmulRows) are one
  // block as tall as they are.
  int64_t blocks = n / kMatmulTileRows, tailHeight = n % kMatmulTileRows;
  int64_t tailRow = blocks * kMatmulTileRows, tailColumn = groups * width;
  Value result = tensor::EmptyOp::create(rewriter, loc, resultType.getShape(),
                                         elementType);
  if (groups && blocks)
    result = buildMatmulTiles(rewriter, loc, op, result, 0, blocks,
                              kMatmulTileRows, 0, groups, width);
  if (tailWidth && blocks)
    result =
        buildMatmulTiles(rewriter, loc, op, result, 0, blocks, kMatmulTileRows,
                         tailColumn, tailGroups, tailWidth);
  if (tailHeight) {
    if (groups)
      result = buildMatmulTiles(rewriter, loc, op, result, tailRow, 1,
                                tailHeight, 0, groups, width);
    if (tailWidth)
      result = buildMatmulTiles(rewriter, loc, op, result, tailRow, 1,
                                tailHeight, tailColumn, tailGroups, tailWidth);
  }
  return result;
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
Value buildMatrixVector(PatternRewriter &rewriter, MatmulOp op) {
  Location loc = op.getLoc();
  RankedTensorType lhsType = tensorType(op.getLhs());
  RankedTensorType resultType = op.getType();
  bool oneColumn = tensorType(op.getRhs()).getRank() == 2;
  Type elementType = resultType.getElementType();
  if (!elementType.isF32() && !elementType.isF64())
    return nullptr;
  int64_t lanes = elementType.isF32() ? 16 : 8;
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
  if (resultType.getRank() == 1)
    return result;
  SmallVector<ReassociationIndices> all(1);
  for (int64_t d = 0; d < resultType.getRank(); ++d)
    all[0].push_back(d);
  return tensor::ExpandShapeOp::create(rewriter, loc, resultType, result, all);
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
  int64_t lineElements = std::max<int64_t>(
      1, 512 / std::max<int64_t>(8, elementType.getIntOrFloatBitWidth()));
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
      if (Value product = buildRegisterBlockedMatmul(rewriter, op)) {
        remarkKernel(rewriter, loc,
                     "matmul {0}: register-tiled, blocks of {1} rows x {2} "
                     "columns accumulate in vector registers, rhs panels "
                     "packed when large; blocks in parallel, each element "
                     "summed in k order",
                     what, kMatmulTileRows,
                     elementType.isF32() ? kMatmulColumns : 16);
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
                     what, elementType.isF32() ? 16 : 8);
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

//===----------------------------------------------------------------------===//
// Buffers of runtime calls
//===----------------------------------------------------------------------===//

/// Views a tensor as an unranked memref for a runtime call.
Value asUnrankedBuffer(OpBuilder &b, Location loc, Value tensor) {
  return memref::CastOp::create(
      b, loc, UnrankedMemRefType::get(tensorType(tensor).getElementType(), 0),
      readOnlyBuffer(b, loc, tensor));
}

/// Allocates an output buffer for a runtime call; returns {buffer, unranked}.
std::pair<Value, Value> allocOutput(OpBuilder &b, Location loc,
                                    RankedTensorType type) {
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  Value buffer = memref::AllocOp::create(b, loc, memrefType);
  Value unranked = memref::CastOp::create(
      b, loc, UnrankedMemRefType::get(type.getElementType(), 0), buffer);
  return {buffer, unranked};
}

Value asTensor(OpBuilder &b, Location loc, Value buffer,
               RankedTensorType type) {
  return bufferization::ToTensorOp::create(b, loc, type, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

//===----------------------------------------------------------------------===//
// Indexing ops
//===----------------------------------------------------------------------===//

/// A generic over `resultType` whose body computes the element from the loop
/// indices (no inputs).
Value buildIndexedGeneric(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  Value init = emptyTensor(b, loc, resultType);
  int64_t rank = resultType.getRank();
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, ValueRange{}, ValueRange{init},
      SmallVector<AffineMap>{
          AffineMap::getMultiDimIdentityMap(rank, b.getContext())},
      parallelIterators(rank), [&](OpBuilder &nb, Location l, ValueRange) {
        linalg::YieldOp::create(nb, l, body(nb, l, loopIndices(nb, l, rank)));
      });
  return generic.getResult(0);
}

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

/// Checks every element of `index` before a parallel indexing loop: a
/// min-reduction finds the first (row-major) element outside [lo, hi), and
/// that one is reported, so the message is the same for every thread
/// count. The loop itself then only clamps (see `clampIndex`), which keeps
/// it free of calls and vectorizable.
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

/// gather and index_select: result[ivs] = input[ivs with ivs[dim] replaced
/// by the index], after the up-front check of every index. `io` reads the
/// input and finishes each element (a fused group's epilogue).
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
  if (!gpu && dim == 0 && (perSlice || rank == 1) && loopShape[0] > 1) {
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
    Value result = buildUpdateLoops(
        rewriter, loc, indexType.getShape(), op.getBase(),
        [&](OpBuilder &b, Location l, ValueRange ivs, Value acc) {
          Value index = tensor::ExtractOp::create(b, l, op.getIndex(), ivs);
          // src is read in row-major order at the same flat position.
          Value flat = linearize(b, l, ivs, indexType.getShape());
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

//===----------------------------------------------------------------------===//
// topk / kthvalue: calls into the Kiln runtime
//===----------------------------------------------------------------------===//

StringRef typeSuffix(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isF64())
    return "f64";
  return "i64";
}

/// Reports the algorithm of the runtime kernel `fnName` on `inputType`
/// (SelectionPlan.h for the CPU's selection).
void remarkRuntimeKernel(Operation *op, Location loc, StringRef fnName,
                         RankedTensorType inputType, int64_t k, int64_t dim,
                         bool flatten) {
  if (!loc->getContext()->getRemarkEngine())
    return;
  int64_t rank = inputType.getRank();
  int64_t n = flatten || rank == 0 ? inputType.getNumElements()
                                   : inputType.getDimSize(dim);
  int64_t rows = n ? inputType.getNumElements() / n : 0;
  std::string what =
      (op->getName().getStringRef() + " of " + typeText(inputType) + ": " +
       fnName + ", " + Twine(rows) + " row(s) of " + Twine(n))
          .str();
  auto module = op->getParentOfType<ModuleOp>();
  auto target = module ? module->getAttrOfType<StringAttr>(kTargetAttrName)
                       : StringAttr();
  if (target && target.getValue() == "cuda") {
    // The runtime's launch plan (Device/TopkPlan.h) depends on the shape
    // only.
    using namespace kiln::runtime::device_kernels;
    std::string plan;
    if (isa<TopkOp>(op)) {
      long long chunks = topkChunks(rows, n, k);
      plan = chunks > 1
                 ? "too few rows to fill the GPU, so each row is split "
                   "into " +
                       std::to_string(chunks) +
                       " ranges: a block per range writes its k best, then "
                       "a block per row merges them"
                 : std::string("a block (512 threads) per row");
      plan += k > 2048 ? "; k > 2048: exact radix selection (8-bit digits), "
                         "the winners sorted in global scratch"
                       : "; a histogram of the top 11 bits finds the bucket "
                         "of the k-th, about k candidates are bitonic-sorted "
                         "in shared memory (exact radix selection if more "
                         "than 2048 tie into the bucket)";
    } else if (isa<KthvalueOp>(op)) {
      long long chunks = kthvalueChunks(rows, n);
      plan = chunks > 1
                 ? "too few rows to fill the GPU, so each row is split into " +
                       std::to_string(chunks) +
                       " ranges whose blocks add their 8-bit digit counts to "
                       "the row's histogram, digit by digit"
                 : std::string("a block per row: exact radix selection of "
                               "the k-th key (8-bit digits)");
      plan += ", then the lowest index holding it";
    } else {
      plan = "a (value, index) scan: a warp per contiguous row, a block "
             "per row when rows are few, a thread per position when the "
             "dim is strided; NaN greatest, the lowest index on ties";
    }
    remarkKernelNear(op, loc, "{0}{1}: GPU, {2}", what,
                     isa<TopkOp, KthvalueOp>(op) ? ", k = " + std::to_string(k)
                                                 : std::string(),
                     plan);
    return;
  }
  // topk k = 1, the largest, runs argmax's scans (kiln_rt_topk_*).
  bool argLike = isa<ArgmaxOp, ArgminOp, MaxOp, MinOp>(op) ||
                 (isa<TopkOp>(op) && k == 1 && cast<TopkOp>(op).getLargest());
  if (argLike) {
    int64_t inner = 1, count = 1;
    for (int64_t d = dim + 1; !flatten && d < rank; ++d)
      inner *= inputType.getDimSize(d);
    for (int64_t d = 0; d < rank; ++d)
      count *= inputType.getDimSize(d);
    int64_t rows = n > 0 ? count / n / inner : 0;
    Type element = inputType.getElementType();
    int64_t bytes = std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8);
    bool shortRows =
        inner == 1 && kiln::runtime::useArgRowGroups(rows, n, bytes);
    bool contiguousFloat = inner == 1 && (element.isF32() || element.isF64());
    remarkKernelNear(
        op, loc,
        "{0}{1}: {2}; NaN greatest, the lowest index on ties; rows in "
        "parallel{3}",
        what, isa<TopkOp>(op) ? ", k = 1, the largest: argmax's scan" : "",
        shortRows ? "rows shorter than two vectors, 16 at a time, a row per "
                    "lane (each group transposed into a tile), in a 16-lane "
                    "scan of (value, index) pairs"
        : contiguousFloat ? "the extreme at memory speed, 64 bytes of lanes "
                            "per instruction, remembering the first "
                            "512-element block reaching it, then the first "
                            "index in that block (from cache)"
        : inner == 1      ? "a 16-lane scan of (value, index) pairs"
        : inner >= kiln::runtime::argColumnBlock(bytes)
            ? "a strided dim: blocks of " +
                  std::to_string(kiln::runtime::argColumnBlock(bytes)) +
                  " adjacent columns (" +
                  std::to_string(kiln::runtime::kArgColumnBlockBytes) +
                  " bytes of a row, the rows ahead prefetched), the rest 16 "
                  "at a time, each column a scan of (value, index) pairs"
            : std::string("a strided dim: 16 adjacent columns at a time, "
                          "each column a scan of (value, index) pairs"),
        inner == 1 && n >= 2 * kiln::runtime::kArgMinSegment
            ? "; with fewer rows than threads, each row is split into "
              "segments scanned in parallel and combined in order"
            : "");
    return;
  }
  using namespace kiln::runtime;
  bool f32 = inputType.getElementType().isF32();
  std::string plan =
      (f32 && useSortedCollector(k, n)
           ? "keeps the best k sorted"
           : "keeps a buffer of 2k+16 candidates compacted by a "
             "branch-free quickselect") +
      std::string(
          "; one pass per row behind a vectorized threshold test, rows in "
          "parallel");
  if (n >= kSelectionSplitLength)
    plan += "; with fewer rows than threads, rows are split into segments "
            "whose candidates merge";
  Type element = inputType.getElementType();
  bool packable = f32 || element.isF64() || element.isInteger(64);
  if (packable && useBoundSelection(n, k, f32))
    plan = std::string("bound selection: one pass keeps the best of ") +
           (k <= 16 ? "32" : "64") +
           " interleaved lanes, whose k-th best bounds the answer from "
           "below; a second "
           "pass (the row in cache) collects the elements not worse than "
           "it, which are ranked; rows in parallel";
  else if (packable && useDirectSelection(n, k))
    plan = std::string("direct selection: every element packed as a (key, "
                       "index) word, the best k moved to the front by a "
                       "branch-free quickselect, then ") +
           (isa<TopkOp>(op) ? "sorted" : "the least of them taken") +
           "; rows in parallel";
  else if (f32 && radixSelectionFits(n, k))
    plan =
        "radix selection (a histogram of 32-bit keys finds the bucket of "
        "the k-th" +
        std::string(isa<TopkOp>(op) ? ", then the k winners are sorted" : "") +
        ") when there are at least as many rows as threads; otherwise it " +
        plan;
  remarkKernelNear(op, loc, "{0}, k = {1}: {2}", what, k, plan);
}

/// Emits a call `kiln_rt_<name>_<type>(in, values, indices, k, dim, flag0,
/// flag1)` writing two new buffers of `resultTypes` (values, indices);
/// returns them as tensors.
SmallVector<Value> emitRuntimeCall(OpBuilder &b, Operation *anchor,
                                   Location loc, StringRef name, Value input,
                                   ArrayRef<Type> resultTypes, int64_t k,
                                   int64_t dim, bool flag0, bool flag1) {
  RankedTensorType inputType = tensorType(input);
  auto valuesType = cast<RankedTensorType>(resultTypes[0]);
  auto indicesType = cast<RankedTensorType>(resultTypes[1]);
  Type elementType = inputType.getElementType();
  MLIRContext *ctx = b.getContext();
  auto unrankedIn = UnrankedMemRefType::get(elementType, 0);
  auto unrankedIdx = UnrankedMemRefType::get(b.getI64Type(), 0);
  Type i64 = b.getI64Type(), i1 = b.getI1Type();
  std::string fnName =
      ("kiln_rt_" + name + "_" + typeSuffix(elementType)).str();
  func::FuncOp fn = getOrDeclareRuntimeFunc(
      anchor, fnName,
      FunctionType::get(
          ctx, {unrankedIn, unrankedIn, unrankedIdx, i64, i64, i1, i1}, {}),
      b);
  remarkRuntimeKernel(anchor, loc, fnName, inputType, k, dim,
                      /*flatten=*/name == "argreduce" && flag1);
  Value in = asUnrankedBuffer(b, loc, input);
  auto [values, valuesArg] = allocOutput(b, loc, valuesType);
  auto [indices, indicesArg] = allocOutput(b, loc, indicesType);
  func::CallOp::create(
      b, loc, fn,
      ValueRange{in, valuesArg, indicesArg, i64Constant(b, loc, k),
                 i64Constant(b, loc, dim),
                 arith::ConstantIntOp::create(b, loc, flag0, 1),
                 arith::ConstantIntOp::create(b, loc, flag1, 1)});
  return {asTensor(b, loc, values, valuesType),
          asTensor(b, loc, indices, indicesType)};
}

/// Replaces `op` with the runtime call; its results are the last
/// `op->getNumResults()` of (values, indices).
LogicalResult lowerRuntimeCall(Operation *op, StringRef name, Value input,
                               ArrayRef<Type> resultTypes, int64_t k,
                               int64_t dim, bool flag0, bool flag1,
                               PatternRewriter &rewriter) {
  SmallVector<Value> results =
      emitRuntimeCall(rewriter, op, op->getLoc(), name, input, resultTypes, k,
                      dim, flag0, flag1);
  rewriter.replaceOp(op, ArrayRef(results).take_back(op->getNumResults()));
  return success();
}

/// The runtime kernel an op calls: its name, (values, indices) types, k,
/// the normalized dim, the flags, and whether the dim stays in the results.
struct RuntimeKernel {
  StringRef name;
  SmallVector<Type> resultTypes;
  int64_t k = 0, dim = 0;
  bool flag0 = false, flag1 = false;
  bool flatten = false, dimKept = true;
};

std::optional<RuntimeKernel> getRuntimeKernel(Operation *op) {
  RankedTensorType type = tensorType(op->getOperand(0));
  auto norm = [&](int64_t dim) { return *normalizeDim(dim, type.getRank()); };
  return llvm::TypeSwitch<Operation *, std::optional<RuntimeKernel>>(op)
      .Case([&](TopkOp topk) {
        return RuntimeKernel{"topk",
                             SmallVector<Type>(topk->getResultTypes()),
                             static_cast<int64_t>(topk.getK()),
                             norm(topk.getDim()),
                             topk.getLargest(),
                             topk.getSorted(),
                             false,
                             true};
      })
      .Case([&](KthvalueOp kth) {
        return RuntimeKernel{"kthvalue",
                             SmallVector<Type>(kth->getResultTypes()),
                             static_cast<int64_t>(kth.getK()),
                             norm(kth.getDim()),
                             false,
                             false,
                             false,
                             kth.getKeepdim()};
      })
      .Case<MaxOp, MinOp>([&](auto max) {
        return RuntimeKernel{"argreduce",
                             SmallVector<Type>(max->getResultTypes()),
                             0,
                             norm(max.getDim()),
                             isa<MaxOp>(op),
                             false,
                             false,
                             max.getKeepdim()};
      })
      .Case<ArgmaxOp, ArgminOp>([&](auto arg) -> std::optional<RuntimeKernel> {
        std::optional<uint64_t> dim = arg.getDim();
        auto valuesType = RankedTensorType::get(arg.getType().getShape(),
                                                type.getElementType());
        return RuntimeKernel{"argreduce",
                             {valuesType, arg.getType()},
                             0,
                             dim ? norm(static_cast<int64_t>(*dim)) : 0,
                             isa<ArgmaxOp>(op),
                             !dim.has_value(),
                             !dim.has_value(),
                             arg.getKeepdim()};
      })
      .Default([](Operation *) { return std::nullopt; });
}

struct LowerTopk : OpRewritePattern<TopkOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TopkOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    return lowerRuntimeCall(
        op, "topk", op.getInput(),
        {op.getValues().getType(), op.getIndices().getType()}, op.getK(),
        *normalizeDim(op.getDim(), type.getRank()), op.getLargest(),
        op.getSorted(), rewriter);
  }
};

struct LowerKthvalue : OpRewritePattern<KthvalueOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(KthvalueOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    // The runtime writes keepdim-shaped results; reshape afterwards.
    return lowerRuntimeCall(
        op, "kthvalue", op.getInput(),
        {op.getValues().getType(), op.getIndices().getType()}, op.getK(),
        *normalizeDim(op.getDim(), type.getRank()),
        /*unused=*/false, /*unused=*/false, rewriter);
  }
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// kiln.fused: one kernel per group
//===----------------------------------------------------------------------===//

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
               ? LowerDimsReduction<SumOp>::needsLanes(elementType)
               : LowerDimsReduction<ProdOp>::needsLanes(elementType);
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
                ? function_ref<void(OpBuilder &, Location, Value)>(nextRow)
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
    Value element = evaluator.eval(b, loc, yield.getValues()[i], type, at, memo);
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
/// tree; the rest one accumulator, the rows in order -- so the same bits.
template <typename OpTy>
Value reduceColumnBlock(
    OpBuilder &b, Location loc, RankedTensorType inputType, Value o,
    Value first, int64_t block, ElementReader read,
    function_ref<void(OpBuilder &, Location, Value c)> prefetch = nullptr) {
  using Lower = LowerDimsReduction<OpTy>;
  Type elementType = inputType.getElementType();
  bool keys = Lower::usesKeys(b, elementType);
  int64_t rows = inputType.getDimSize(1);
  LaneReduction lanes = Lower::laneReduction(keys);
  bool useLanes = Lower::needsLanes(elementType);
  int64_t laneCount = useLanes && spreadsOverLanes(rows) ? kReductionLanes : 1;
  TypedAttr identity = Lower::identity(b, elementType, keys);
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  Value acc = filledTensor(
      b, loc, RankedTensorType::get({laneCount, block}, identity.getType()),
      identity);
  auto rowLoop = scf::ForOp::create(
      b, loc, zero, indexConstant(b, loc, rows), one, ValueRange{acc},
      [&](OpBuilder &rb, Location rl, Value c, ValueRange accs) {
        Value lane = useLanes ? laneOf(rb, rl, c, rows) : zero;
        if (prefetch)
          prefetch(rb, rl, c);
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
  Value accs = rowLoop.getResult(0);
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
  int64_t bytes = 1;
  for (Operation &inner : body)
    if (inner.hasTrait<kiln::OpTrait::Reduction>())
      bytes = std::max<int64_t>(
          bytes, tensorType(inner.getOperand(0)).getElementTypeBitWidth() / 8);
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

  auto prefetchAhead = [&](OpBuilder &pb, Location pl, Value c) {
    Value ahead = arith::MinUIOp::create(
        pb, pl,
        arith::AddIOp::create(pb, pl, c,
                              indexConstant(pb, pl, kColumnPrefetchRows)),
        indexConstant(pb, pl, rows - 1));
    for (int64_t k = 0; k < block; k += lineElements) {
      Value t = arith::AddIOp::create(pb, pl, first, indexConstant(pb, pl, k));
      for (auto [buffer, alongO] : prefetched)
        memref::PrefetchOp::create(pb, pl, buffer,
                                   ValueRange{alongO ? o : zero, ahead, t},
                                   /*isWrite=*/false, /*localityHint=*/3,
                                   /*isDataCache=*/true);
    }
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
  int64_t reductions = 0;
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
      function_ref<void(OpBuilder &, Location, Value)> firstPass = nullptr;
      if (reductions == 1 && !prefetched.empty())
        firstPass = prefetchAhead;
      auto reduce = [&](auto kind) {
        return reduceColumnBlock<decltype(kind)>(b, loc, inputType, o, first,
                                                 block, read, firstPass);
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
               "elementwise chain",
               typeText(space), block, rows, reductions);
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

/// Lowers a kiln.fused group to one kernel (softmax: its three passes).
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
      .Case([&](SumOp sum) {
        return LowerDimsReduction<SumOp>::lower(b, sum, io);
      })
      .Case([&](ProdOp prod) {
        return LowerDimsReduction<ProdOp>::lower(b, prod, io);
      })
      .Case([&](AmaxOp amax) {
        return LowerDimsReduction<AmaxOp>::lower(b, amax, io);
      })
      .Case([&](AminOp amin) {
        return LowerDimsReduction<AminOp>::lower(b, amin, io);
      })
      .Case([&](SoftmaxOp softmax) {
        return LowerSoftmax<SoftmaxOp>::lower(b, softmax, io);
      })
      .Case([&](LogSoftmaxOp logSoftmax) {
        return LowerSoftmax<LogSoftmaxOp>::lower(b, logSoftmax, io);
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

struct ConvertKilnToLinalgPass
    : kiln::impl::ConvertKilnToLinalgBase<ConvertKilnToLinalgPass> {
  using ConvertKilnToLinalgBase::ConvertKilnToLinalgBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    if (target != "cpu" && target != "cuda") {
      module.emitError("unknown target '")
          << target << "' (expected cpu or cuda)";
      return signalPassFailure();
    }
    if (target == "cuda")
      module->setAttr(kTargetAttrName, StringAttr::get(ctx, target));
    ErrorSites sites = ErrorSites::load(module);

    // Fused groups first, each into its kernel(s); the conversion below
    // then handles the ops outside them.
    SmallVector<FusedOp> fusedOps;
    module.walk([&](FusedOp op) { fusedOps.push_back(op); });
    for (FusedOp op : fusedOps) {
      IRRewriter rewriter(op);
      // A row group's rows over one dim (kiln-fuse-elementwise collapses
      // the ones it makes; this does the same for the others).
      FailureOr<FusedOp> collapsed = op.collapseRowDims(rewriter);
      if (failed(collapsed)) {
        op.emitOpError("is a row group over the last ")
            << op.getRowDims()
            << " dims whose region uses a value both per row and along "
               "the rows, which has no lowering; write those ops unfused";
        return signalPassFailure();
      }
      op = *collapsed;
      FailureOr<SmallVector<Value>> results = lowerFused(rewriter, op, sites);
      if (failed(results))
        return signalPassFailure();
      rewriter.replaceOp(op, *results);
    }

    RewritePatternSet patterns(ctx);
    patterns.add<LowerElementwise, LowerConstant, LowerSplat<FullOp>,
                 LowerSplat<ZerosLikeOp>, LowerSplat<OnesLikeOp>, LowerArange,
                 LowerReshape, LowerPermute, LowerDimsReduction<SumOp>,
                 LowerDimsReduction<ProdOp>, LowerDimsReduction<AmaxOp>,
                 LowerDimsReduction<AminOp>, LowerMaxMin<MaxOp>,
                 LowerMaxMin<MinOp>, LowerArg<ArgmaxOp>, LowerArg<ArgminOp>,
                 LowerEqual, LowerMatmul, LowerTopk, LowerKthvalue,
                 LowerSoftmax<SoftmaxOp>, LowerSoftmax<LogSoftmaxOp>>(ctx);
    patterns.add<LowerGather, LowerIndexSelect, LowerTake>(ctx, sites);
    // The GPU always sorts scatters (its alternative is one thread).
    patterns.add<LowerScatterAdd, LowerIndexAdd, LowerPut>(
        ctx, sites, sortedScatters || this->target == "cuda");

    ConversionTarget target(*ctx);
    target.addIllegalDialect<KilnDialect>();
    target.addLegalOp<ReportIndexErrorOp>();
    target.addLegalDialect<
        arith::ArithDialect, bufferization::BufferizationDialect,
        func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
        memref::MemRefDialect, scf::SCFDialect, tensor::TensorDialect,
        vector::VectorDialect>();
    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      return signalPassFailure();

    // Kernels of the entry points (public functions; the JIT makes every
    // function but the entry private): loop nests (linalg ops, outermost
    // loops) and runtime kernel calls, reported by kiln-run --stats.
    int64_t kernels = 0;
    module.walk([&](func::FuncOp func) {
      if (!func.isPublic())
        return;
      for (Operation &op : func.getBody().getOps()) {
        if (isa<linalg::LinalgOp, scf::ForOp, scf::ForallOp>(op))
          ++kernels;
        else if (auto call = dyn_cast<func::CallOp>(op))
          kernels += call.getCallee().starts_with("kiln_rt_");
      }
    });
    module->setAttr(kKernelCountAttrName,
                    IntegerAttr::get(IntegerType::get(ctx, 64), kernels));

    // Sites numbered in program order: the runtime keeps the least
    // (site, index) a run reports, which is then the earliest check that
    // failed, whichever thread reported first.
    llvm::DenseMap<int64_t, int64_t> renumbered;
    ErrorSites ordered;
    module.walk<WalkOrder::PreOrder>([&](ReportIndexErrorOp op) {
      auto [it, inserted] =
          renumbered.try_emplace(op.getSite(), ordered.sites.size());
      if (inserted)
        ordered.sites.push_back(sites.sites[op.getSite()]);
      op.setSite(it->second);
    });
    ordered.save(module);

    // Stored tensors read at delinearized positions: read collapsed
    // (readDelinearizedAsCollapsed; the CPU's vectorizer).
    if (this->target == "cpu") {
      SmallVector<tensor::ExtractOp> extracts;
      module.walk([&](tensor::ExtractOp op) { extracts.push_back(op); });
      IRRewriter rewriter(ctx);
      for (tensor::ExtractOp op : extracts) {
        rewriter.setInsertionPoint(op);
        (void)readDelinearizedAsCollapsed(op, rewriter);
      }
    }
  }
};

} // namespace
