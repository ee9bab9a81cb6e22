//===- KilnOps.cpp - Kiln dialect ops -------------------------------------===//
//
// Type inference (with the diagnostics users see), verifiers, folders and
// canonicalization patterns of the kiln ops.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Conversion/ReductionPlan.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallBitVector.h"

#include <cmath>

using namespace mlir;
using namespace kiln;
using kiln::inference::OpDiagnostic;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace kiln {
/// `inner o outer` for permute(permute(x, inner), outer): result dim i is
/// x's dim inner[outer[i]]. Both permutations are normalized first.
DenseI64ArrayAttr composePermutations(Builder &builder, DenseI64ArrayAttr inner,
                                      DenseI64ArrayAttr outer) {
  int64_t rank = inner.size();
  SmallVector<int64_t> composed;
  for (int64_t o : outer.asArrayRef()) {
    int64_t i = *normalizeDim(o, rank);
    composed.push_back(*normalizeDim(inner[i], rank));
  }
  return builder.getDenseI64ArrayAttr(composed);
}
} // namespace kiln

#include "KilnCanonicalize.inc"

/// A splat attribute of `type` holding `value` converted to its element type.
static DenseElementsAttr getSplat(ShapedType type, double value) {
  Builder builder(type.getContext());
  return DenseElementsAttr::get(
      type, getScalarAttr(builder, type.getElementType(), value));
}

/// Whether `attr` is a splat of `value`. A float zero matches only with the
/// requested sign (`negativeZero`).
static bool isSplatOf(Attribute attr, double value, bool negativeZero = false) {
  auto splat = dyn_cast_if_present<SplatElementsAttr>(attr);
  if (!splat)
    return false;
  Attribute element = splat.getSplatValue<Attribute>();
  if (auto f = dyn_cast<FloatAttr>(element)) {
    APFloat v = f.getValue();
    if (v.isZero() && value == 0.0)
      return v.isNegative() == negativeZero;
    return v.convertToDouble() == value;
  }
  if (auto i = dyn_cast<IntegerAttr>(element))
    return i.getValue().getSExtValue() == static_cast<int64_t>(value);
  return false;
}

/// Returns `value` as the fold result when it already has the op's type.
static OpFoldResult foldTo(Value value, Type resultType) {
  return value.getType() == resultType ? OpFoldResult(value) : nullptr;
}

static LogicalResult checkIntegral(Operation *op, Type elementType,
                                   StringRef name, double value) {
  if (isa<FloatType>(elementType))
    return success();
  if (!std::isfinite(value) || std::trunc(value) != value)
    return op->emitOpError()
           << name << " (" << inference::formatNumber(value)
           << ") must be integral for element type " << elementType;
  unsigned width = elementType.getIntOrFloatBitWidth();
  if (width == 1 && value != 0.0 && value != 1.0)
    return op->emitOpError() << name << " (" << inference::formatNumber(value)
                             << ") must be 0 or 1 for element type i1";
  double limit = std::ldexp(1.0, width - 1);
  if (width > 1 && (value < -limit || value >= limit))
    return op->emitOpError() << name << " (" << inference::formatNumber(value)
                             << ") does not fit element type " << elementType;
  return success();
}

static LogicalResult checkReductionKind(const OpDiagnostic &diag,
                                        StringRef kind) {
  if (kind == "mean" || kind == "sum" || kind == "none")
    return success();
  return diag("reduction must be \"mean\", \"sum\" or \"none\", got \"", kind,
              "\"");
}

//===----------------------------------------------------------------------===//
// Creation ops
//===----------------------------------------------------------------------===//

LogicalResult ConstantOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  ElementsAttr value = adaptor.getValue();
  if (!value)
    return diag("requires a 'value' attribute");
  types.push_back(value.getType());
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult FullOp::verify() {
  return checkIntegral(*this, getType().getElementType(), "value",
                       getValue().convertToDouble());
}

OpFoldResult FullOp::fold(FoldAdaptor) {
  return getSplat(getType(), getValue().convertToDouble());
}

OpFoldResult ZerosLikeOp::fold(FoldAdaptor) { return getSplat(getType(), 0.0); }

OpFoldResult OnesLikeOp::fold(FoldAdaptor) { return getSplat(getType(), 1.0); }

LogicalResult ArangeOp::verify() {
  auto type = getType();
  if (type.getRank() != 1)
    return emitOpError() << "result must be 1-D, got " << type;
  double start = getStart().convertToDouble();
  double step = getStep().convertToDouble();
  if (!std::isfinite(start) || !std::isfinite(step))
    return emitOpError() << "start (" << inference::formatNumber(start)
                         << ") and step (" << inference::formatNumber(step)
                         << ") must be finite";
  if (step == 0.0)
    return emitOpError("step must be non-zero");
  Type elementType = type.getElementType();
  if (failed(checkIntegral(*this, elementType, "start", start)) ||
      failed(checkIntegral(*this, elementType, "step", step)))
    return failure();
  return checkIntegral(*this, elementType, "last value",
                       start +
                           step * std::max<int64_t>(type.getDimSize(0) - 1, 0));
}

//===----------------------------------------------------------------------===//
// Elementwise ops
//===----------------------------------------------------------------------===//

OpFoldResult AddOp::fold(FoldAdaptor adaptor) {
  // x + 0 is x for integers; for floats only -0.0 is an exact identity
  // (-0.0 + +0.0 is +0.0).
  bool isFloat = isa<FloatType>(getType().getElementType());
  if (isSplatOf(adaptor.getRhs(), 0.0, /*negativeZero=*/isFloat))
    return foldTo(getLhs(), getType());
  if (isSplatOf(adaptor.getLhs(), 0.0, /*negativeZero=*/isFloat))
    return foldTo(getRhs(), getType());
  return nullptr;
}

OpFoldResult SubOp::fold(FoldAdaptor adaptor) {
  // x - (+0) is x, signed zeros included.
  if (isSplatOf(adaptor.getRhs(), 0.0))
    return foldTo(getLhs(), getType());
  return nullptr;
}

OpFoldResult MulOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 1.0))
    return foldTo(getLhs(), getType());
  if (isSplatOf(adaptor.getLhs(), 1.0))
    return foldTo(getRhs(), getType());
  return nullptr;
}

OpFoldResult DivOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 1.0))
    return foldTo(getLhs(), getType());
  return nullptr;
}

namespace {
/// pow(x, c) for a splat constant c, the way PyTorch's
/// pow_tensor_scalar_optimized_kernel computes it: the same bits as
/// torch.pow, and multiplications instead of a libm call per element.
struct PowOfConstant : OpRewritePattern<PowOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(PowOp op,
                                PatternRewriter &rewriter) const override {
    Value x = op.getLhs();
    // The exponent must not broadcast x to a larger shape.
    if (x.getType() != op.getType())
      return failure();
    DenseElementsAttr exponent;
    if (!matchPattern(op.getRhs(), m_Constant(&exponent)) ||
        !exponent.isSplat())
      return failure();
    double e = exponent.getSplatValue<APFloat>().convertToDouble();
    Location loc = op.getLoc();
    auto one = [&]() {
      return FullOp::create(
          rewriter, loc, RankedTensorType::get({}, cast<RankedTensorType>(x.getType()).getElementType()),
          rewriter.getF64FloatAttr(1.0));
    };
    Value result;
    if (e == 1.0)
      result = x;
    else if (e == 2.0)
      result = MulOp::create(rewriter, loc, x, x);
    else if (e == 3.0)
      result = MulOp::create(rewriter, loc, MulOp::create(rewriter, loc, x, x),
                             x);
    else if (e == 0.5)
      result = SqrtOp::create(rewriter, loc, x);
    else if (e == -0.5)
      result = RsqrtOp::create(rewriter, loc, x);
    else if (e == -1.0)
      result = DivOp::create(rewriter, loc, one(), x);
    else if (e == -2.0)
      result = DivOp::create(rewriter, loc, one(),
                             MulOp::create(rewriter, loc, x, x));
    else
      return failure();
    rewriter.replaceOp(op, result);
    return success();
  }
};
} // namespace

void PowOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                        MLIRContext *context) {
  results.add<PowOfConstant>(context);
}

void AddOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                        MLIRContext *context) {
  results.add<AddOfNegRhs, AddOfNegLhs>(context);
}

void SubOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                        MLIRContext *context) {
  results.add<SubOfNeg>(context);
}

LogicalResult ClampOp::verify() {
  std::optional<APFloat> min = getMin(), max = getMax();
  if (!min && !max)
    return emitOpError("requires at least one of 'min' and 'max'");
  Type elementType = getType().getElementType();
  if (min &&
      failed(checkIntegral(*this, elementType, "min", min->convertToDouble())))
    return failure();
  if (max &&
      failed(checkIntegral(*this, elementType, "max", max->convertToDouble())))
    return failure();
  return success();
}

LogicalResult WhereOp::inferReturnTypes(MLIRContext *ctx,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> cond = diag.tensor(adaptor.getCond(), "cond");
  FailureOr<RankedTensorType> lhs = diag.tensor(adaptor.getLhs(), "lhs");
  FailureOr<RankedTensorType> rhs = diag.tensor(adaptor.getRhs(), "rhs");
  if (failed(cond) || failed(lhs) || failed(rhs))
    return failure();
  if (!cond->getElementType().isInteger(1))
    return diag("cond must have element type i1, got ", cond->getElementType());
  if (lhs->getElementType() != rhs->getElementType())
    return diag("lhs and rhs must have the same element type, got ",
                lhs->getElementType(), " and ", rhs->getElementType());
  std::optional<SmallVector<int64_t>> shape =
      broadcastShapes(cond->getShape(), lhs->getShape());
  if (shape)
    shape = broadcastShapes(*shape, rhs->getShape());
  if (!shape)
    return diag("operand types ", *cond, ", ", *lhs, " and ", *rhs,
                " are not broadcast-compatible");
  types.push_back(RankedTensorType::get(*shape, lhs->getElementType()));
  return success();
}

OpFoldResult WhereOp::fold(FoldAdaptor adaptor) {
  if (getLhs() == getRhs())
    return foldTo(getLhs(), getType());
  auto cond = dyn_cast_if_present<SplatElementsAttr>(adaptor.getCond());
  if (!cond)
    return nullptr;
  return foldTo(cond.getSplatValue<bool>() ? getLhs() : getRhs(), getType());
}

OpFoldResult CastOp::fold(FoldAdaptor) { return foldTo(getInput(), getType()); }

LogicalResult EqualOp::inferReturnTypes(MLIRContext *ctx,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> lhs = diag.tensor(adaptor.getLhs(), "lhs");
  FailureOr<RankedTensorType> rhs = diag.tensor(adaptor.getRhs(), "rhs");
  if (failed(lhs) || failed(rhs))
    return failure();
  if (lhs->getElementType() != rhs->getElementType())
    return diag("operands must have the same element type, got ",
                lhs->getElementType(), " and ", rhs->getElementType());
  types.push_back(RankedTensorType::get({}, IntegerType::get(ctx, 1)));
  return success();
}

/// Operands of different shapes are never equal (torch.equal); a tensor of
/// integers or bools equals itself. A float tensor may hold a NaN, which
/// equals nothing, itself included.
OpFoldResult EqualOp::fold(FoldAdaptor) {
  auto lhs = cast<RankedTensorType>(getLhs().getType());
  auto rhs = cast<RankedTensorType>(getRhs().getType());
  if (lhs.getShape() != rhs.getShape())
    return DenseElementsAttr::get(getType(), false);
  if (getLhs() == getRhs() && !isa<FloatType>(lhs.getElementType()))
    return DenseElementsAttr::get(getType(), true);
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  auto inputType = cast<RankedTensorType>(getInput().getType());
  auto resultType = getType();
  if (inputType.getElementType() != resultType.getElementType())
    return emitOpError() << "result element type "
                         << resultType.getElementType()
                         << " differs from the operand's "
                         << inputType.getElementType();
  if (inputType.getNumElements() != resultType.getNumElements())
    return emitOpError() << "result type " << resultType << " has "
                         << resultType.getNumElements()
                         << " elements but the operand " << inputType << " has "
                         << inputType.getNumElements();
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto producer = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(producer.getInput());
    return getResult();
  }
  if (auto dense = dyn_cast_if_present<DenseElementsAttr>(adaptor.getInput()))
    return dense.reshape(getType());
  return nullptr;
}

namespace {
/// reshape(f(x, y, ...)) -> f(reshape(x), reshape(y), ...) for an
/// elementwise `f` whose result only the reshape uses and whose operands
/// have its shape or are rank-0 (broadcast scalars, kept): elementwise ops
/// map each element on its own, so they commute with a reshape. The reshape
/// moves towards the graph's stored tensors, where it is a view that costs
/// nothing, and the chain it separated fuses into one kernel with what
/// reads its result (the amax of exp(x) * 0.5 flattened, 65536x256 f32:
/// 3 kernels, 4.5-4.6 ms at 1 thread -> 2 kernels, 3.3 ms, the chain no
/// longer stored). Keyed off the Elementwise trait.
struct ReshapeOfElementwise : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    Operation *producer = op.getInput().getDefiningOp();
    if (!producer || !producer->hasTrait<kiln::OpTrait::Elementwise>() ||
        producer->getNumResults() != 1 || !producer->hasOneUse() ||
        producer->getNumRegions() != 0 || matchPattern(producer, m_Constant()))
      return failure();
    ArrayRef<int64_t> shape = op.getInput().getType().getShape();
    for (Value operand : producer->getOperands()) {
      auto type = dyn_cast<RankedTensorType>(operand.getType());
      if (!type || (type.getRank() != 0 && type.getShape() != shape))
        return failure();
    }
    SmallVector<Value> operands;
    for (Value operand : producer->getOperands()) {
      auto type = cast<RankedTensorType>(operand.getType());
      operands.push_back(
          type.getShape() != shape // rank 0: broadcast as before
              ? operand
              : ReshapeOp::create(rewriter, op.getLoc(),
                                  RankedTensorType::get(op.getType().getShape(),
                                                        type.getElementType()),
                                  operand)
                    .getResult());
    }
    OperationState state(producer->getLoc(), producer->getName(), operands,
                         TypeRange{op.getType()}, producer->getAttrs());
    rewriter.replaceOp(op, rewriter.create(state)->getResults());
    return success();
  }
};
} // namespace

void ReshapeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                            MLIRContext *context) {
  results.add<ReshapeOfElementwise>(context);
}

LogicalResult ExpandOp::verify() {
  auto inputType = cast<RankedTensorType>(getInput().getType());
  auto resultType = getType();
  if (inputType.getElementType() != resultType.getElementType())
    return emitOpError() << "result element type "
                         << resultType.getElementType()
                         << " differs from the operand's "
                         << inputType.getElementType();
  if (!isExpandableTo(inputType.getShape(), resultType.getShape()))
    return emitOpError() << "operand type " << inputType
                         << " cannot be expanded to " << resultType
                         << " (each operand dim, aligned from the end, must "
                            "be 1 or equal to the result dim)";
  return success();
}

OpFoldResult ExpandOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto producer = getInput().getDefiningOp<ExpandOp>()) {
    getInputMutable().assign(producer.getInput());
    return getResult();
  }
  if (auto splat = dyn_cast_if_present<SplatElementsAttr>(adaptor.getInput()))
    return SplatElementsAttr::get(getType(), splat.getSplatValue<Attribute>());
  return nullptr;
}

LogicalResult PermuteOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> type = diag.tensor(adaptor.getInput(), "input");
  if (failed(type))
    return failure();
  ArrayRef<int64_t> dims = adaptor.getDims();
  int64_t rank = type->getRank();
  if (static_cast<int64_t>(dims.size()) != rank)
    return diag("dims has ", dims.size(), " entries but the operand has rank ",
                rank);
  SmallVector<int64_t> shape;
  llvm::SmallBitVector seen(rank);
  for (int64_t dim : dims) {
    FailureOr<int64_t> normalized = diag.dim(dim, rank);
    if (failed(normalized))
      return failure();
    if (seen.test(*normalized))
      return diag("dim ", dim, " appears more than once in dims");
    seen.set(*normalized);
    shape.push_back(type->getDimSize(*normalized));
  }
  types.push_back(RankedTensorType::get(shape, type->getElementType()));
  return success();
}

OpFoldResult PermuteOp::fold(FoldAdaptor adaptor) {
  int64_t rank = getDims().size();
  bool identity = llvm::all_of(llvm::enumerate(getDims()), [&](auto it) {
    return *normalizeDim(it.value(), rank) == static_cast<int64_t>(it.index());
  });
  if (identity)
    return getInput();
  if (auto splat = dyn_cast_if_present<SplatElementsAttr>(adaptor.getInput()))
    return SplatElementsAttr::get(getType(), splat.getSplatValue<Attribute>());
  return nullptr;
}

void PermuteOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                            MLIRContext *context) {
  results.add<PermuteOfPermute>(context);
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> lhs = diag.tensor(adaptor.getLhs(), "lhs");
  FailureOr<RankedTensorType> rhs = diag.tensor(adaptor.getRhs(), "rhs");
  if (failed(lhs) || failed(rhs))
    return failure();
  if (lhs->getElementType() != rhs->getElementType())
    return diag("operands must have the same element type, got ",
                lhs->getElementType(), " and ", rhs->getElementType());
  if (lhs->getRank() == 0 || rhs->getRank() == 0)
    return diag("operands must be at least 1-D, got ", *lhs, " and ", *rhs);

  // Promote 1-D operands to matrices: [k] -> [1, k] (lhs), [k] -> [k, 1]
  // (rhs); the added dims are dropped from the result.
  SmallVector<int64_t> lhsShape(lhs->getShape()), rhsShape(rhs->getShape());
  bool lhsVector = lhsShape.size() == 1, rhsVector = rhsShape.size() == 1;
  if (lhsVector)
    lhsShape.insert(lhsShape.begin(), 1);
  if (rhsVector)
    rhsShape.push_back(1);
  int64_t k = lhsShape.back(), rhsK = rhsShape[rhsShape.size() - 2];
  if (k != rhsK)
    return diag("contracting dims differ: lhs ", *lhs, " has ", k,
                " columns but rhs ", *rhs, " has ", rhsK, " rows");
  ArrayRef<int64_t> lhsBatch = ArrayRef(lhsShape).drop_back(2);
  ArrayRef<int64_t> rhsBatch = ArrayRef(rhsShape).drop_back(2);
  std::optional<SmallVector<int64_t>> shape =
      broadcastShapes(lhsBatch, rhsBatch);
  if (!shape)
    return diag("batch dims of ", *lhs, " and ", *rhs,
                " are not broadcast-compatible");
  if (!lhsVector)
    shape->push_back(lhsShape[lhsShape.size() - 2]);
  if (!rhsVector)
    shape->push_back(rhsShape.back());
  types.push_back(RankedTensorType::get(*shape, lhs->getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

LogicalResult NormOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  double p = adaptor.getP().convertToDouble();
  if (!(p > 0.0))
    return diag("p (", inference::formatNumber(p), ") must be greater than 0");
  return inference::inferDimsReductionTypes(
      loc, getOperationName(), adaptor.getInput(), adaptor.getDims(),
      adaptor.getKeepdim(),
      /*hasIdentity=*/true, types);
}

namespace {
template <typename OpTy, typename... Ts>
constexpr bool isOneOf = (std::is_same_v<OpTy, Ts> || ...);

/// The dims `op` reduces, as a mask over the dims of its input `type`: its
/// `dims` (getReducedDimsMask: all when absent or empty) or its `dim`; none
/// for an index into the flattened tensor (argmax without a dim).
template <typename OpTy>
std::optional<SmallVector<bool>> reducedDimsMask(OpTy op,
                                                 RankedTensorType type) {
  if constexpr (isOneOf<OpTy, MaxOp, MinOp, ArgmaxOp, ArgminOp>) {
    std::optional<uint64_t> dim = op.getDim();
    if (!dim)
      return std::nullopt;
    SmallVector<bool> mask(type.getRank(), false);
    mask[*normalizeDim(static_cast<int64_t>(*dim), type.getRank())] = true;
    return mask;
  } else {
    return getReducedDimsMask(type, op.getDims());
  }
}

/// reduce(permute(x, perm)) -> permute(reduce(x over the permuted dims)):
/// the reduction reads x in place instead of a transposed copy of it (a
/// copy of the whole input, then a read of it), and what is permuted, if
/// anything, is its smaller result (sum over dim 1 of x^T, 2048x2048 f32:
/// 1.58 -> 0.33 ms at one thread). Exact: each result element reduces the
/// same elements in the same order -- the reduced dims' order is kept, or
/// does not matter (reducesInAnyOrder) --, and the lanes and splits of a
/// reduction depend on the sizes of its runs of consecutive reduced dims
/// in that order (reducedRuns) and the number of kept positions, which the
/// rewrite checks the permutation does not change.
template <typename OpTy> struct ReductionOfPermute : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    auto permute = op.getInput().template getDefiningOp<PermuteOp>();
    if (!permute)
      return failure();
    int64_t rank = permute.getType().getRank();
    if (rank == 0)
      return failure();
    std::optional<SmallVector<bool>> reducedInP =
        reducedDimsMask(op, permute.getType());
    if (!reducedInP)
      return failure();
    // Dim i of the permute's result is dim perm[i] of x.
    SmallVector<int64_t> perm;
    for (int64_t d : permute.getDims())
      perm.push_back(*normalizeDim(d, rank));
    std::optional<SmallVector<int64_t>> reducedInX =
        getReducedDimsThroughPermute(permute.getType().getShape(), *reducedInP,
                                     perm, reducesInAnyOrder(op));
    if (!reducedInX)
      return failure();
    SmallVector<int64_t> &dims = *reducedInX;

    NamedAttrList attrs(op->getAttrDictionary());
    if constexpr (isOneOf<OpTy, MaxOp, MinOp, ArgmaxOp, ArgminOp>)
      attrs.set(op.getDimAttrName(), rewriter.getI64IntegerAttr(dims[0]));
    else if (std::optional<ArrayRef<int64_t>> all = op.getDims();
             all && !all->empty()) // else every dim, of x too
      attrs.set(op.getDimsAttrName(), rewriter.getDenseI64ArrayAttr(dims));
    Location loc = op.getLoc();
    auto inner = OpTy::create(rewriter, loc, ValueRange{permute.getInput()},
                              attrs.getAttrs());
    // The order of the result's dims: with keepdim, the permute's; else
    // the kept dims of the permute's result, each at its x dim's place
    // among x's kept dims.
    SmallVector<int64_t> order;
    if (op.getKeepdim()) {
      order = perm;
    } else {
      llvm::SmallBitVector reducedInX(rank);
      for (int64_t d : dims)
        reducedInX.set(d);
      SmallVector<int64_t> place(rank, -1);
      for (int64_t d = 0, next = 0; d < rank; ++d)
        if (!reducedInX[d])
          place[d] = next++;
      for (int64_t i = 0; i < rank; ++i)
        if (!(*reducedInP)[i])
          order.push_back(place[perm[i]]);
    }
    bool identity = llvm::equal(order, llvm::seq<int64_t>(0, order.size()));
    SmallVector<Value> results;
    for (Value result : inner->getResults())
      results.push_back(identity ? result
                                 : Value(PermuteOp::create(
                                       rewriter, loc, result,
                                       rewriter.getDenseI64ArrayAttr(order))));
    rewriter.replaceOp(op, results);
    return success();
  }
};
} // namespace

namespace {
/// A reduction with keepdim also reduces its input's dims of size 1: the
/// same result shape (those dims stay 1) and values (each holds one
/// position), and the same bits (the lowering drops unit dims before it
/// plans a reduction, CoalescedDims). In this form the reduced dims of
/// [N, C, 1, 1] over C are a trailing run, the rows of a row group (a
/// layer norm over C after a global pooling is one kernel).
template <typename OpTy>
struct KeepdimReducesUnitDims : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    std::optional<ArrayRef<int64_t>> dims = op.getDims();
    if (!op.getKeepdim() || !dims || dims->empty())
      return failure(); // without keepdim the unit dims would be dropped
    auto type = cast<RankedTensorType>(op.getInput().getType());
    SmallVector<bool> mask = getReducedDimsMask(type, *dims);
    bool added = false;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (type.getDimSize(d) == 1 && !mask[d])
        mask[d] = added = true;
    if (!added)
      return failure();
    SmallVector<int64_t> reduced;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (mask[d])
        reduced.push_back(d);
    rewriter.modifyOpInPlace(
        op, [&] { op.setDimsAttr(rewriter.getDenseI64ArrayAttr(reduced)); });
    return success();
  }
};
} // namespace

#define KILN_REDUCTION_CANONICALIZATION(Op)                                    \
  void Op::getCanonicalizationPatterns(RewritePatternSet &results,             \
                                       MLIRContext *context) {                 \
    results.add<ReductionOfPermute<Op>>(context);                              \
  }
#define KILN_DIMS_REDUCTION_CANONICALIZATION(Op)                               \
  void Op::getCanonicalizationPatterns(RewritePatternSet &results,             \
                                       MLIRContext *context) {                 \
    results.add<ReductionOfPermute<Op>, KeepdimReducesUnitDims<Op>>(context);  \
  }
KILN_DIMS_REDUCTION_CANONICALIZATION(SumOp)
KILN_DIMS_REDUCTION_CANONICALIZATION(MeanOp)
KILN_DIMS_REDUCTION_CANONICALIZATION(ProdOp)
KILN_DIMS_REDUCTION_CANONICALIZATION(AmaxOp)
KILN_DIMS_REDUCTION_CANONICALIZATION(AminOp)
KILN_DIMS_REDUCTION_CANONICALIZATION(NormOp)
#undef KILN_DIMS_REDUCTION_CANONICALIZATION
KILN_REDUCTION_CANONICALIZATION(MaxOp)
KILN_REDUCTION_CANONICALIZATION(MinOp)
KILN_REDUCTION_CANONICALIZATION(ArgmaxOp)
KILN_REDUCTION_CANONICALIZATION(ArgminOp)
#undef KILN_REDUCTION_CANONICALIZATION

/// Size of the (normalized) dim `dim` of `type`; a rank-0 tensor has one
/// element along its only virtual dim.
static int64_t getSizeAlong(RankedTensorType type, int64_t dim) {
  return type.getRank() == 0 ? 1 : type.getDimSize(dim);
}

LogicalResult TopkOp::inferReturnTypes(MLIRContext *ctx,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> type = diag.tensor(adaptor.getInput(), "input");
  if (failed(type))
    return failure();
  auto dimAttr = static_cast<int64_t>(adaptor.getDim());
  FailureOr<int64_t> dim = diag.dim(dimAttr, type->getRank());
  if (failed(dim))
    return failure();
  auto k = static_cast<int64_t>(adaptor.getK());
  int64_t size = getSizeAlong(*type, *dim);
  if (k < 0)
    return diag("k (", k, ") must be non-negative");
  if (k > size)
    return diag("k (", k, ") exceeds the size of dim ", dimAttr, " (", size,
                ")");
  if (type->getRank() == 0 && k != 1)
    return diag("k (", k, ") must be 1 for a rank-0 operand");
  SmallVector<int64_t> shape(type->getShape());
  if (!shape.empty())
    shape[*dim] = k;
  types.push_back(RankedTensorType::get(shape, type->getElementType()));
  types.push_back(RankedTensorType::get(shape, IntegerType::get(ctx, 64)));
  return success();
}

LogicalResult KthvalueOp::inferReturnTypes(MLIRContext *ctx,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> type = diag.tensor(adaptor.getInput(), "input");
  if (failed(type))
    return failure();
  auto dimAttr = static_cast<int64_t>(adaptor.getDim());
  FailureOr<int64_t> dim = diag.dim(dimAttr, type->getRank());
  if (failed(dim))
    return failure();
  auto k = static_cast<int64_t>(adaptor.getK());
  int64_t size = getSizeAlong(*type, *dim);
  if (k < 1 || k > size)
    return diag("k (", k, ") is out of range for dim ", dimAttr, " of size ",
                size, " (expected 1 <= k <= ", size, ")");
  return inference::inferDimReductionTypes(loc, getOperationName(),
                                           adaptor.getInput(), dimAttr,
                                           adaptor.getKeepdim(),
                                           /*indicesOnly=*/false, types);
}

//===----------------------------------------------------------------------===//
// Indexing ops
//===----------------------------------------------------------------------===//

LogicalResult GatherOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> input = diag.tensor(adaptor.getInput(), "input");
  FailureOr<RankedTensorType> index = diag.tensor(adaptor.getIndex(), "index");
  if (failed(input) || failed(index))
    return failure();
  auto dimAttr = static_cast<int64_t>(adaptor.getDim());
  FailureOr<int64_t> dim = diag.dim(dimAttr, input->getRank());
  if (failed(dim))
    return failure();
  if (index->getRank() != input->getRank())
    return diag("index must have the same rank as the input (",
                input->getRank(), "), got ", *index);
  for (int64_t d = 0, e = input->getRank(); d < e; ++d)
    if (d != *dim && index->getDimSize(d) > input->getDimSize(d))
      return diag("index size ", index->getDimSize(d), " at dim ", d,
                  " exceeds the input size ", input->getDimSize(d),
                  " (only dim ", dimAttr, " may be larger)");
  types.push_back(
      RankedTensorType::get(index->getShape(), input->getElementType()));
  return success();
}

LogicalResult IndexSelectOp::inferReturnTypes(MLIRContext *,
                                              std::optional<Location> loc,
                                              Adaptor adaptor,
                                              SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> input = diag.tensor(adaptor.getInput(), "input");
  FailureOr<RankedTensorType> index = diag.tensor(adaptor.getIndex(), "index");
  if (failed(input) || failed(index))
    return failure();
  FailureOr<int64_t> dim =
      diag.dim(static_cast<int64_t>(adaptor.getDim()), input->getRank());
  if (failed(dim))
    return failure();
  if (index->getRank() > 1)
    return diag("index must be 1-D or rank 0, got ", *index);
  SmallVector<int64_t> shape(input->getShape());
  if (shape.empty()) {
    if (index->getNumElements() != 1)
      return diag("index must hold exactly one element for a rank-0 input, "
                  "got ",
                  *index);
  } else {
    shape[*dim] = index->getNumElements();
  }
  types.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult TakeOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> input = diag.tensor(adaptor.getInput(), "input");
  FailureOr<RankedTensorType> index = diag.tensor(adaptor.getIndex(), "index");
  if (failed(input) || failed(index))
    return failure();
  if (input->getNumElements() == 0 && index->getNumElements() != 0)
    return diag("cannot take from an empty input ", *input);
  types.push_back(
      RankedTensorType::get(index->getShape(), input->getElementType()));
  return success();
}

LogicalResult ScatterAddOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> base = diag.tensor(adaptor.getBase(), "base");
  FailureOr<RankedTensorType> index = diag.tensor(adaptor.getIndex(), "index");
  FailureOr<RankedTensorType> src = diag.tensor(adaptor.getSrc(), "src");
  if (failed(base) || failed(index) || failed(src))
    return failure();
  auto dimAttr = static_cast<int64_t>(adaptor.getDim());
  FailureOr<int64_t> dim = diag.dim(dimAttr, base->getRank());
  if (failed(dim))
    return failure();
  if (src->getElementType() != base->getElementType())
    return diag("src element type ", src->getElementType(),
                " differs from the base element type ", base->getElementType());
  if (index->getRank() != base->getRank() || src->getRank() != base->getRank())
    return diag("base, index and src must have the same rank, got ", *base,
                ", ", *index, " and ", *src);
  for (int64_t d = 0, e = base->getRank(); d < e; ++d) {
    if (index->getDimSize(d) > src->getDimSize(d))
      return diag("index size ", index->getDimSize(d), " at dim ", d,
                  " exceeds the src size ", src->getDimSize(d));
    if (d != *dim && index->getDimSize(d) > base->getDimSize(d))
      return diag("index size ", index->getDimSize(d), " at dim ", d,
                  " exceeds the base size ", base->getDimSize(d), " (only dim ",
                  dimAttr, " may be larger)");
  }
  types.push_back(*base);
  return success();
}

LogicalResult IndexAddOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> base = diag.tensor(adaptor.getBase(), "base");
  FailureOr<RankedTensorType> index = diag.tensor(adaptor.getIndex(), "index");
  FailureOr<RankedTensorType> src = diag.tensor(adaptor.getSrc(), "src");
  if (failed(base) || failed(index) || failed(src))
    return failure();
  FailureOr<int64_t> dim =
      diag.dim(static_cast<int64_t>(adaptor.getDim()), base->getRank());
  if (failed(dim))
    return failure();
  if (index->getRank() > 1)
    return diag("index must be 1-D or rank 0, got ", *index);
  if (src->getElementType() != base->getElementType())
    return diag("src element type ", src->getElementType(),
                " differs from the base element type ", base->getElementType());
  SmallVector<int64_t> srcShape(base->getShape());
  if (!srcShape.empty())
    srcShape[*dim] = index->getNumElements();
  else if (index->getNumElements() != 1)
    return diag("index must hold exactly one element for a rank-0 base, got ",
                *index);
  if (src->getShape() != ArrayRef(srcShape))
    return diag("src must have type ",
                RankedTensorType::get(srcShape, base->getElementType()),
                " (the base with dim ", adaptor.getDim(),
                " resized to the number of indices), got ", *src);
  types.push_back(*base);
  return success();
}

LogicalResult PutOp::inferReturnTypes(MLIRContext *,
                                      std::optional<Location> loc,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  FailureOr<RankedTensorType> base = diag.tensor(adaptor.getBase(), "base");
  FailureOr<RankedTensorType> index = diag.tensor(adaptor.getIndex(), "index");
  FailureOr<RankedTensorType> src = diag.tensor(adaptor.getSrc(), "src");
  if (failed(base) || failed(index) || failed(src))
    return failure();
  if (src->getElementType() != base->getElementType())
    return diag("src element type ", src->getElementType(),
                " differs from the base element type ", base->getElementType());
  if (index->getNumElements() != src->getNumElements())
    return diag("index ", *index, " and src ", *src,
                " must have the same number of elements");
  if (base->getNumElements() == 0 && index->getNumElements() != 0)
    return diag("cannot put into an empty base ", *base);
  types.push_back(*base);
  return success();
}

//===----------------------------------------------------------------------===//
// Neural-network ops
//===----------------------------------------------------------------------===//

LogicalResult MseLossOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  if (failed(checkReductionKind(diag, adaptor.getReduction())))
    return failure();
  SmallVector<Type, 1> elementwise;
  if (failed(inference::inferBroadcastTypes(
          loc, getOperationName(), adaptor.getInput(), adaptor.getTarget(),
          /*maskResult=*/false, elementwise)))
    return failure();
  auto type = cast<RankedTensorType>(elementwise.front());
  if (adaptor.getReduction() == "none")
    types.push_back(type);
  else
    types.push_back(RankedTensorType::get({}, type.getElementType()));
  return success();
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *,
                                               std::optional<Location> loc,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, getOperationName());
  if (failed(checkReductionKind(diag, adaptor.getReduction())))
    return failure();
  FailureOr<RankedTensorType> logits =
      diag.tensor(adaptor.getLogits(), "logits");
  FailureOr<RankedTensorType> target =
      diag.tensor(adaptor.getTarget(), "target");
  if (failed(logits) || failed(target))
    return failure();
  if (logits->getRank() != 1 && logits->getRank() != 2)
    return diag("logits must be [C] or [N, C], got ", *logits);
  if (logits->getDimSize(logits->getRank() - 1) == 0)
    return diag("logits must have at least one class, got ", *logits);
  SmallVector<int64_t> perSample(logits->getShape().drop_back());
  if (target->getShape() != ArrayRef(perSample))
    return diag("target must have shape ", formatShape(perSample),
                " for logits ", *logits, ", got ", *target);
  Type elementType = logits->getElementType();
  if (adaptor.getReduction() == "none")
    types.push_back(RankedTensorType::get(perSample, elementType));
  else
    types.push_back(RankedTensorType::get({}, elementType));
  return success();
}

#define GET_OP_CLASSES
#include "kiln/Dialect/Kiln/IR/KilnOps.cpp.inc"

//===----------------------------------------------------------------------===//
// fused
//===----------------------------------------------------------------------===//

int64_t kiln::tensorByteSize(Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  int64_t bits = type.getElementType().getIntOrFloatBitWidth();
  return type.getNumElements() * std::max<int64_t>(bits / 8, 1);
}

int64_t kiln::widestReducedElementBytes(ArrayRef<Operation *> ops) {
  int64_t bytes = 1;
  for (Operation *op : ops)
    if (op->hasTrait<kiln::OpTrait::Reduction>())
      bytes = std::max<int64_t>(
          bytes, cast<RankedTensorType>(op->getOperand(0).getType())
                         .getElementTypeBitWidth() /
                     8);
  return bytes;
}

bool kiln::isSplatConstant(Operation *op) {
  Attribute value;
  if (!op || !op->hasTrait<mlir::OpTrait::ConstantLike>() ||
      op->getNumResults() != 1 ||
      !matchPattern(op->getResult(0), m_Constant(&value)))
    return false;
  auto elements = dyn_cast<DenseElementsAttr>(value);
  return elements && elements.isSplat();
}

namespace {

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

} // namespace

bool kiln::reducesInAnyOrder(Operation *op) {
  if (isa<SumOp, ProdOp>(op))
    return isa<IntegerType>(
        cast<RankedTensorType>(op->getResult(0).getType()).getElementType());
  return !isa<MeanOp, NormOp>(op);
}

std::optional<SmallVector<int64_t>>
kiln::getReducedDimsThroughPermute(ArrayRef<int64_t> permutedShape,
                                   ArrayRef<bool> reducedInP,
                                   ArrayRef<int64_t> perm, bool inAnyOrder) {
  int64_t rank = static_cast<int64_t>(perm.size());
  // x's reduced dims, in the permute's order, and x's shape.
  SmallVector<int64_t> dims, shape(rank);
  SmallVector<bool> reducedInX(rank, false);
  for (int64_t i = 0; i < rank; ++i) {
    shape[perm[i]] = permutedShape[i];
    if (reducedInP[i]) {
      dims.push_back(perm[i]);
      reducedInX[perm[i]] = true;
    }
  }
  // The lowering merges consecutive reduced dims into one (reducedRuns):
  // the permutation must not join or part them (NCHW over (0, 2, 3) is
  // lines of H x W, NHWC over (0, 1, 2) one dim of N x H x W).
  if (!inAnyOrder &&
      (!llvm::is_sorted(dims) ||
       kiln::conversion::reducedRuns(permutedShape, reducedInP) !=
           kiln::conversion::reducedRuns(shape, reducedInX)))
    return std::nullopt;
  llvm::sort(dims);
  return dims;
}

int64_t kiln::getReducedTrailingRun(Operation *op) {
  if (!isa<SumOp, ProdOp, AmaxOp, AminOp>(op) || op->getNumOperands() != 1)
    return 0;
  auto type = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
  if (!type || type.getRank() == 0)
    return 0;
  auto dims = op->getAttrOfType<DenseI64ArrayAttr>("dims");
  SmallVector<bool> mask = getReducedDimsMask(
      type, dims ? std::optional<ArrayRef<int64_t>>(dims.asArrayRef())
                 : std::nullopt);
  int64_t rank = type.getRank(), run = 0;
  while (run < rank && mask[rank - 1 - run])
    ++run;
  // With keepdim, a unit dim reduced before the run is one kept: the same
  // result (canonicalization has keepdim reductions reduce their unit dims
  // too, so a layer norm's over the last dim of [1, R, C] reduces dims 0
  // and 2).
  auto keepdim = op->getAttrOfType<BoolAttr>("keepdim");
  bool keeps = keepdim && keepdim.getValue();
  for (int64_t d = 0; d < rank - run; ++d)
    if (mask[d] && !(keeps && type.getDimSize(d) == 1))
      return 0;
  return run;
}

SmallVector<int64_t> kiln::getRowValueShape(ArrayRef<int64_t> rows, int64_t run,
                                            bool keepDim) {
  SmallVector<int64_t> shape(rows.drop_back(run));
  if (keepDim)
    shape.append(run, 1);
  return shape;
}

Operation *kiln::findNonRowUser(Operation *reduction, ArrayRef<int64_t> row,
                                function_ref<bool(Operation *)> within) {
  SmallVector<Operation *> work{reduction};
  llvm::SmallPtrSet<Operation *, 8> seen;
  while (!work.empty()) {
    Operation *current = work.pop_back_val();
    for (Operation *user : current->getUsers()) {
      if (!within(user) || !seen.insert(user).second)
        continue;
      if (user->getNumResults() != 1 || shapeOf(user->getResult(0)) != row)
        return user;
      work.push_back(user);
    }
  }
  return nullptr;
}

namespace {

/// Whether `op` is a reduction that could reduce rows in a row group: one
/// input, one result of another shape than the input.
bool reducesRows(Operation &op, ArrayRef<int64_t> rows) {
  return op.hasTrait<kiln::OpTrait::Reduction>() &&
         op.hasTrait<kiln::OpTrait::FusesProducers>() &&
         op.getNumOperands() == 1 && op.getNumResults() == 1 &&
         shapeOf(op.getOperand(0)) == rows && shapeOf(op.getResult(0)) != rows;
}

/// Whether `op` is a softmax or log_softmax along the last dim.
bool normalizesLastDim(Operation &op) {
  if (!isa<SoftmaxOp, LogSoftmaxOp>(op))
    return false;
  auto dim = op.getAttrOfType<IntegerAttr>("dim");
  int64_t rank = static_cast<int64_t>(shapeOf(op.getOperand(0)).size());
  return dim && (dim.getInt() == rank - 1 || dim.getInt() == -1);
}

/// The rows of a row group that also yields per-row values (reductions
/// without the chain broadcasting them back, values of its chain): every
/// op with FusesProducers reduces one trailing run of dims (the same run)
/// or normalizes the last dim of inputs of one shape, at least one
/// reduces, and there are two or more of them, or a result has the rows'
/// shape. Null when the region is not such a group.
std::optional<ArrayRef<int64_t>> rowsOfRowOps(FusedOp op) {
  std::optional<ArrayRef<int64_t>> rows;
  int64_t count = 0, run = 0;
  bool normalizes = false, reshapes = false;
  for (Operation &inner : op.getBody().front()) {
    if (!inner.hasTrait<kiln::OpTrait::FusesProducers>())
      continue;
    int64_t reduced = getReducedTrailingRun(&inner);
    if (!reduced && !normalizesLastDim(inner))
      return std::nullopt;
    ArrayRef<int64_t> shape = shapeOf(inner.getOperand(0));
    if ((rows && *rows != shape) || (reduced && run && reduced != run))
      return std::nullopt;
    rows = shape;
    if (reduced)
      run = reduced;
    else
      normalizes = true;
    reshapes |= reduced && shapeOf(inner.getResult(0)) != shape;
    ++count;
  }
  if (!rows || !run || (normalizes && run != 1))
    return std::nullopt;
  // One reduction and a result of the rows' shape: unless the reduction
  // keeps that shape too (it reduces only dims of size 1, and the region
  // is its epilogue).
  if (count >= 2 ||
      (reshapes && llvm::any_of(op.getResults(), [&](Value result) {
         return shapeOf(result) == *rows;
       })))
    return rows;
  return std::nullopt;
}

/// Whether `op` reduces a column group's rows: a keepdim sum, prod, amax
/// or amin over dim 1 (only) of a rank-3 input whose dims 1 and 2 are over
/// 1 (over a dim of 1 it keeps the shape: an anchored kernel's epilogue).
bool reducesColumns(Operation &op) {
  if (!isa<SumOp, ProdOp, AmaxOp, AminOp>(op))
    return false;
  auto keepdim = op.getAttrOfType<BoolAttr>("keepdim");
  auto dims = op.getAttrOfType<DenseI64ArrayAttr>("dims");
  ArrayRef<int64_t> shape = shapeOf(op.getOperand(0));
  return keepdim && keepdim.getValue() && dims && dims.size() == 1 &&
         shape.size() == 3 && normalizeDim(dims[0], 3) == 1 && shape[1] > 1 &&
         shape[2] > 1;
}

/// Whether the region is a column group: every op with FusesProducers
/// reduces columns of one shape, and a result has that shape.
bool isColumnGroup(FusedOp op) {
  std::optional<ArrayRef<int64_t>> rows;
  for (Operation &inner : op.getBody().front()) {
    if (!inner.hasTrait<kiln::OpTrait::FusesProducers>())
      continue;
    if (!reducesColumns(inner) ||
        (rows && *rows != shapeOf(inner.getOperand(0))))
      return false;
    rows = shapeOf(inner.getOperand(0));
  }
  return rows && llvm::any_of(op.getResults(), [&](Value result) {
           return shapeOf(result) == *rows;
         });
}

} // namespace

FusedOp::Form FusedOp::getForm() {
  if (getNumResults() == 0)
    return Form::Elementwise;
  if (isColumnGroup(*this))
    return Form::ColumnGroup;
  ArrayRef<int64_t> rows = shapeOf(getResult(0));
  bool anchored = false;
  for (Operation &inner : getBody().front()) {
    if (!inner.hasTrait<kiln::OpTrait::FusesProducers>())
      continue;
    if (reducesRows(inner, rows))
      return Form::RowGroup;
    anchored = true;
  }
  if (!anchored)
    return Form::Elementwise;
  return rowsOfRowOps(*this) ? Form::RowGroup : Form::Anchored;
}

RankedTensorType FusedOp::getRowType() {
  assert((getForm() == Form::RowGroup || getForm() == Form::ColumnGroup) &&
         "not a row or column group");
  for (Operation &inner : getBody().front())
    if (inner.hasTrait<kiln::OpTrait::Reduction>() &&
        inner.hasTrait<kiln::OpTrait::FusesProducers>())
      return cast<RankedTensorType>(inner.getOperand(0).getType());
  llvm_unreachable("a row group without a reduction");
}

int64_t FusedOp::getRowDims() {
  assert(getForm() == Form::RowGroup && "not a row group");
  for (Operation &inner : getBody().front())
    if (inner.hasTrait<kiln::OpTrait::Reduction>() &&
        inner.hasTrait<kiln::OpTrait::FusesProducers>())
      return getReducedTrailingRun(&inner);
  llvm_unreachable("a row group without a reduction");
}

Operation *FusedOp::getAnchor() {
  if (getForm() != Form::Anchored)
    return nullptr;
  for (Operation &inner : llvm::reverse(getBody().front()))
    if (inner.hasTrait<kiln::OpTrait::FusesProducers>())
      return &inner;
  return nullptr;
}

LogicalResult FusedOp::verify() {
  Block &body = getBody().front();
  if (body.getArgumentTypes() != getInputs().getTypes())
    return emitOpError("region arguments must have the types of the "
                       "operands");
  auto yield = body.empty() ? YieldOp() : dyn_cast<YieldOp>(body.back());
  if (!yield)
    return emitOpError("region must end with kiln.yield");
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("kiln.yield operands must have the types of the "
                       "results");
  if (getNumResults() == 0)
    return emitOpError("must have at least one result");
  return success();
}

/// The region is one of the forms the lowering builds a kernel for (see
/// the op's description); ops inside are verified already.
LogicalResult FusedOp::verifyRegions() {
  Block &body = getBody().front();
  auto yield = cast<YieldOp>(body.back());
  // Ops with FusesProducers, indexed reads without (take), and views.
  SmallVector<Operation *> anchors, reads, views;
  for (Operation &inner : body.without_terminator()) {
    if (inner.hasTrait<mlir::OpTrait::ConstantLike>()) {
      if (!isSplatConstant(&inner))
        return inner.emitOpError("in a kiln.fused region must be a splat "
                                 "constant (a kernel reads other constants "
                                 "as operands)");
      continue;
    }
    if (inner.hasTrait<kiln::OpTrait::Elementwise>() &&
        isa<ScalarOpInterface>(inner))
      continue;
    if (inner.hasTrait<kiln::OpTrait::FusesProducers>()) {
      anchors.push_back(&inner);
      continue;
    }
    if (isa<IndexedReadOpInterface>(inner)) {
      reads.push_back(&inner);
      continue;
    }
    if (isa<ViewOpInterface>(inner)) {
      views.push_back(&inner);
      continue;
    }
    return inner.emitOpError(
        "cannot be part of a kiln.fused region: it holds only elementwise "
        "ops, splat constants, ops with FusesProducers (reductions, "
        "softmaxes, selections, gathers), indexed reads and views");
  }
  Form form = getForm();
  if (form != Form::Anchored && !reads.empty())
    return reads.front()->emitOpError(
        "in a kiln.fused region must be read by the chain of an op with "
        "FusesProducers (a reduction, softmax, selection or gather), which "
        "evaluates it where it reads");
  if ((form == Form::RowGroup || form == Form::ColumnGroup) && !views.empty())
    return views.front()->emitOpError(
        "cannot be part of a row or column group, which evaluates its "
        "rows' chain itself; a view belongs to an elementwise loop or the "
        "chain of an op with FusesProducers (a reduction, softmax, "
        "selection or gather), which evaluates it where it reads");
  switch (form) {
  case Form::Elementwise: {
    ArrayRef<int64_t> shape = shapeOf(getResult(0));
    for (auto [i, result] : llvm::enumerate(getResults()))
      if (shapeOf(result) != shape)
        return emitOpError("is one elementwise loop over its results, so "
                           "they need one shape: result #")
               << i << " has shape " << formatShape(shapeOf(result))
               << ", result #0 " << formatShape(shape);
    return success();
  }
  case Form::RowGroup: {
    ArrayRef<int64_t> rows = getRowType().getShape();
    // A row spans the last `run` dims (those the first reduction reduces).
    // Per-row values: a reduction's, with keepdim (those dims 1) or without
    // (those dims dropped).
    int64_t run = getRowDims();
    if (!run)
      for (Operation *anchor : anchors)
        if (anchor->hasTrait<kiln::OpTrait::Reduction>())
          return anchor->emitOpError(
                     "in a row group must reduce the last dim, or the last "
                     "few, of an input of the rows' shape ")
                 << formatShape(rows);
    SmallVector<int64_t> kept = getRowValueShape(rows, run, true),
                         dropped = getRowValueShape(rows, run, false);
    for (auto [i, result] : llvm::enumerate(getResults()))
      if (shapeOf(result) != rows && shapeOf(result) != ArrayRef(kept) &&
          shapeOf(result) != ArrayRef(dropped))
        return emitOpError("is a row group over rows of shape ")
               << formatShape(rows) << ", so each result has that shape or "
               << "a row's: " << formatShape(kept) << " or "
               << formatShape(dropped) << "; result #" << i << " has shape "
               << formatShape(shapeOf(result));
    for (Operation *anchor : anchors) {
      if (isa<SumOp, ProdOp, AmaxOp, AminOp>(anchor)) {
        if (getReducedTrailingRun(anchor) != run ||
            shapeOf(anchor->getOperand(0)) != rows)
          return anchor->emitOpError("in a row group must reduce the last ")
                 << run << " dim(s), as its first reduction does, of an "
                 << "input of the rows' shape " << formatShape(rows);
        auto keepdim = anchor->getAttrOfType<BoolAttr>("keepdim");
        if (keepdim && keepdim.getValue())
          continue;
        // Without keepdim the value is the row's: broadcast against the
        // rows it would line up with the columns, so only values of its
        // shape may be computed from it.
        if (Operation *user =
                findNonRowUser(anchor, dropped,
                               [](Operation *op) { return !isa<YieldOp>(op); }))
          return user->emitOpError("in a row group uses the per-row value of ")
                 << anchor->getName()
                 << " without keepdim, so its result must have the shape "
                 << formatShape(dropped);
        continue;
      }
      if (isa<SoftmaxOp, LogSoftmaxOp>(anchor)) {
        if (!normalizesLastDim(*anchor) ||
            shapeOf(anchor->getResult(0)) != rows || run != 1)
          return anchor->emitOpError(
                     "in a row group must normalize the last dim of rows "
                     "of the shape ")
                 << formatShape(rows) << ", which its reductions reduce";
        continue;
      }
      return anchor->emitOpError(
          "cannot be part of a row group, which holds only sum, prod, amax "
          "and amin along the rows, and softmax and log_softmax of them");
    }
    return success();
  }
  case Form::ColumnGroup: {
    ArrayRef<int64_t> rows = getRowType().getShape();
    SmallVector<int64_t> column{rows[0], 1, rows[2]};
    for (auto [i, result] : llvm::enumerate(getResults()))
      if (shapeOf(result) != rows && shapeOf(result) != ArrayRef(column))
        return emitOpError("is a column group over rows of shape ")
               << formatShape(rows) << ", so each result has that shape or "
               << "the columns': " << formatShape(column) << "; result #" << i
               << " has shape " << formatShape(shapeOf(result));
    return success();
  }
  case Form::Anchored: {
    // The anchor is the last op with FusesProducers; any before it must be
    // indexed reads, which the chains evaluate in place.
    Operation *anchor = anchors.back();
    for (Operation *view : views)
      if (anchor->isBeforeInBlock(view))
        return view->emitOpError(
                   "in a kiln.fused region must be in the input chain of ")
               << anchor->getName()
               << ", not in its epilogue, which is evaluated at the "
                  "positions of its result";
    reads.append(anchors.begin(), anchors.end() - 1);
    for (Operation *read : reads) {
      if (!isa<IndexedReadOpInterface>(read))
        return emitOpError("holds ")
               << anchors.size()
               << " ops with FusesProducers, but a kernel has one (a row "
                  "group several reductions along the same last dims of "
                  "rows of one shape; indexed reads may be evaluated in its "
                  "chains)";
      for (OpOperand &operand : read->getOpOperands()) {
        Operation *def = operand.get().getDefiningOp();
        if (def && !isSplatConstant(def))
          return read->emitOpError("operand #")
                 << operand.getOperandNumber()
                 << " in a kiln.fused region must be a block argument or a "
                    "splat constant: an indexed read in a kernel's chain "
                    "reads its input and index as stored";
      }
    }
    for (OpOperand &operand : anchor->getOpOperands().drop_front()) {
      Operation *def = operand.get().getDefiningOp();
      if (def && !isSplatConstant(def))
        return anchor->emitOpError("operand #")
               << operand.getOperandNumber()
               << " in a kiln.fused region must be a block argument or a "
                  "splat constant: only the first operand is computed by "
                  "the fused chain";
    }
    if (!anchor->hasTrait<kiln::OpTrait::FusesConsumers>()) {
      if (ValueRange(yield.getValues()) != ValueRange(anchor->getResults()))
        return emitOpError("must yield the results of ")
               << anchor->getName()
               << " as they are: it takes no elementwise epilogue";
      return success();
    }
    if (anchor->getNumResults() != 1)
      return anchor->emitOpError("with FusesConsumers must have one result");
    ArrayRef<int64_t> elements = shapeOf(anchor->getResult(0));
    for (auto [i, result] : llvm::enumerate(getResults()))
      if (shapeOf(result) != elements)
        return emitOpError("applies its epilogue to each element of ")
               << anchor->getName() << "'s result, so every result needs its "
               << "shape " << formatShape(elements) << ": result #" << i
               << " has shape " << formatShape(shapeOf(result));
    return success();
  }
  }
  llvm_unreachable("unknown kiln.fused form");
}
