//===- KilnScalar.cpp - Scalar semantics of elementwise kiln ops ----------===//
//
// Each elementwise op states, through ScalarOpInterface, how one result
// element is computed with arith/math ops. The semantics are PyTorch's:
// NaN propagates through maximum/minimum/clamp, comparisons with NaN are
// false except `ne`, `round` rounds halves to even, float->int casts
// truncate toward zero (saturating, NaN gives 0).
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace kiln;

#include "kiln/Dialect/Kiln/IR/KilnInterfaces.cpp.inc"

static bool isFloat(Type type) { return isa<FloatType>(type); }

TypedAttr kiln::getScalarAttr(Builder &b, Type type, double value) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return b.getFloatAttr(floatType, value);
  return b.getIntegerAttr(type, static_cast<int64_t>(value));
}

static Value constantLike(OpBuilder &b, Location loc, Type type, double value) {
  return arith::ConstantOp::create(b, loc, getScalarAttr(b, type, value));
}

//===----------------------------------------------------------------------===//
// Unary ops
//===----------------------------------------------------------------------===//

Value NegOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type type) {
  if (isFloat(type))
    return arith::NegFOp::create(b, loc, operands[0]);
  return arith::SubIOp::create(b, loc, constantLike(b, loc, type, 0),
                               operands[0]);
}

Value AbsOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type type) {
  if (isFloat(type))
    return math::AbsFOp::create(b, loc, operands[0]);
  return math::AbsIOp::create(b, loc, operands[0]);
}

Value SqrtOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                          Type) {
  return math::SqrtOp::create(b, loc, operands[0]);
}

Value RsqrtOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                           Type type) {
  // 1 / sqrt(x), correctly rounded twice as in PyTorch's CPU kernel (not the
  // approximate rsqrt instruction).
  Value root = math::SqrtOp::create(b, loc, operands[0]);
  return arith::DivFOp::create(b, loc, constantLike(b, loc, type, 1.0), root);
}

Value ExpOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type) {
  return math::ExpOp::create(b, loc, operands[0]);
}

Value LogOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type) {
  return math::LogOp::create(b, loc, operands[0]);
}

Value FloorOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                           Type) {
  return math::FloorOp::create(b, loc, operands[0]);
}

Value CeilOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                          Type) {
  return math::CeilOp::create(b, loc, operands[0]);
}

Value TruncOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                           Type) {
  return math::TruncOp::create(b, loc, operands[0]);
}

Value FracOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                          Type) {
  Value whole = math::TruncOp::create(b, loc, operands[0]);
  return arith::SubFOp::create(b, loc, operands[0], whole);
}

Value RoundOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                           Type) {
  return math::RoundEvenOp::create(b, loc, operands[0]);
}

Value SigmoidOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                             Type type) {
  // 1 / (1 + exp(-x)): exp overflows to inf for very negative x, giving 0.
  Value one = constantLike(b, loc, type, 1.0);
  Value negated = arith::NegFOp::create(b, loc, operands[0]);
  Value denominator =
      arith::AddFOp::create(b, loc, one, math::ExpOp::create(b, loc, negated));
  return arith::DivFOp::create(b, loc, one, denominator);
}

Value TanhOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                          Type) {
  return math::TanhOp::create(b, loc, operands[0]);
}

Value ErfOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type) {
  return math::ErfOp::create(b, loc, operands[0]);
}

Value ReluOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                          Type type) {
  // x > 0 ? x : 0, keeping NaN (PyTorch: relu(nan) = nan, relu(-0) = -0...
  // except that clamp_min(-0, 0) gives 0; both compare equal).
  Value x = operands[0];
  Value zero = constantLike(b, loc, type, 0.0);
  Value keep =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UGT, x, zero);
  return arith::SelectOp::create(b, loc, keep, x, zero);
}

//===----------------------------------------------------------------------===//
// Binary ops
//===----------------------------------------------------------------------===//

Value AddOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type type) {
  if (isFloat(type))
    return arith::AddFOp::create(b, loc, operands[0], operands[1]);
  return arith::AddIOp::create(b, loc, operands[0], operands[1]);
}

Value SubOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type type) {
  if (isFloat(type))
    return arith::SubFOp::create(b, loc, operands[0], operands[1]);
  return arith::SubIOp::create(b, loc, operands[0], operands[1]);
}

Value MulOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type type) {
  if (isFloat(type))
    return arith::MulFOp::create(b, loc, operands[0], operands[1]);
  return arith::MulIOp::create(b, loc, operands[0], operands[1]);
}

Value DivOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type) {
  return arith::DivFOp::create(b, loc, operands[0], operands[1]);
}

Value MaximumOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                             Type type) {
  if (isFloat(type)) // NaN-propagating, as torch.maximum
    return arith::MaximumFOp::create(b, loc, operands[0], operands[1]);
  return arith::MaxSIOp::create(b, loc, operands[0], operands[1]);
}

Value MinimumOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                             Type type) {
  if (isFloat(type))
    return arith::MinimumFOp::create(b, loc, operands[0], operands[1]);
  return arith::MinSIOp::create(b, loc, operands[0], operands[1]);
}

Value PowOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                         Type) {
  return math::PowFOp::create(b, loc, operands[0], operands[1]);
}

//===----------------------------------------------------------------------===//
// Comparisons
//===----------------------------------------------------------------------===//

/// Compares two scalars of the same type: ordered float predicates (false on
/// NaN) except `ne`, which is unordered (true on NaN); signed integers;
/// unsigned for i1 (false < true).
static Value compare(OpBuilder &b, Location loc, ValueRange operands,
                     arith::CmpFPredicate floatPredicate,
                     arith::CmpIPredicate signedPredicate,
                     arith::CmpIPredicate boolPredicate) {
  Type type = operands[0].getType();
  if (isFloat(type))
    return arith::CmpFOp::create(b, loc, floatPredicate, operands[0],
                                 operands[1]);
  return arith::CmpIOp::create(
      b, loc, type.isInteger(1) ? boolPredicate : signedPredicate, operands[0],
      operands[1]);
}

Value GtOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands, Type) {
  return compare(b, loc, operands, arith::CmpFPredicate::OGT,
                 arith::CmpIPredicate::sgt, arith::CmpIPredicate::ugt);
}

Value GeOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands, Type) {
  return compare(b, loc, operands, arith::CmpFPredicate::OGE,
                 arith::CmpIPredicate::sge, arith::CmpIPredicate::uge);
}

Value LtOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands, Type) {
  return compare(b, loc, operands, arith::CmpFPredicate::OLT,
                 arith::CmpIPredicate::slt, arith::CmpIPredicate::ult);
}

Value LeOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands, Type) {
  return compare(b, loc, operands, arith::CmpFPredicate::OLE,
                 arith::CmpIPredicate::sle, arith::CmpIPredicate::ule);
}

Value EqOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands, Type) {
  return compare(b, loc, operands, arith::CmpFPredicate::OEQ,
                 arith::CmpIPredicate::eq, arith::CmpIPredicate::eq);
}

Value NeOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands, Type) {
  return compare(b, loc, operands, arith::CmpFPredicate::UNE,
                 arith::CmpIPredicate::ne, arith::CmpIPredicate::ne);
}

//===----------------------------------------------------------------------===//
// Other elementwise ops
//===----------------------------------------------------------------------===//

Value ClampOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                           Type type) {
  // torch.clamp's scalar rule: x < lo ? lo : x, then x > hi ? hi : x. NaN
  // propagates (it compares false); lo > hi gives hi; and x is kept when it
  // equals a bound, so clamp(-0.0, min=0) is -0.0 (maximumf gave +0.0, and
  // the gradient of sqrt after it +inf where PyTorch's is -inf: the API
  // fuzzer, seed 160). x86 computes each select as one maxps / minps, whose
  // rule it is.
  Value x = operands[0];
  if (std::optional<APFloat> lo = getMin()) {
    Value bound = constantLike(b, loc, type, lo->convertToDouble());
    x = isFloat(type) ? Value(arith::SelectOp::create(
                            b, loc,
                            arith::CmpFOp::create(
                                b, loc, arith::CmpFPredicate::OLT, x, bound),
                            bound, x))
                      : Value(arith::MaxSIOp::create(b, loc, x, bound));
  }
  if (std::optional<APFloat> hi = getMax()) {
    Value bound = constantLike(b, loc, type, hi->convertToDouble());
    x = isFloat(type) ? Value(arith::SelectOp::create(
                            b, loc,
                            arith::CmpFOp::create(
                                b, loc, arith::CmpFPredicate::OGT, x, bound),
                            bound, x))
                      : Value(arith::MinSIOp::create(b, loc, x, bound));
  }
  return x;
}

Value WhereOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                           Type) {
  return arith::SelectOp::create(b, loc, operands[0], operands[1], operands[2]);
}

Value ExpandOp::buildScalar(OpBuilder &, Location, ValueRange operands, Type) {
  return operands[0];
}

/// Float to signed integer, truncating toward zero and saturating at the
/// integer range; NaN gives 0 (like LLVM's fptosi.sat, and defined where
/// PyTorch's result is platform-dependent).
static Value floatToInt(OpBuilder &b, Location loc, Value x, IntegerType type) {
  auto floatType = cast<FloatType>(x.getType());
  unsigned width = type.getWidth();
  double limit = std::ldexp(1.0, width - 1); // 2^(w-1), exact in f32/f64
  Value lowBound = constantLike(b, loc, floatType, -limit);
  Value highBound = constantLike(b, loc, floatType, limit);
  Value isNan = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, x, x);
  Value tooLow =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, lowBound);
  Value tooHigh =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE, x, highBound);
  Value safe = arith::SelectOp::create(
      b, loc,
      arith::OrIOp::create(b, loc, isNan,
                           arith::OrIOp::create(b, loc, tooLow, tooHigh)),
      constantLike(b, loc, floatType, 0.0), x);
  Value converted = arith::FPToSIOp::create(b, loc, type, safe);
  APInt minValue = APInt::getSignedMinValue(width);
  APInt maxValue = APInt::getSignedMaxValue(width);
  Value minInt =
      arith::ConstantOp::create(b, loc, IntegerAttr::get(type, minValue));
  Value maxInt =
      arith::ConstantOp::create(b, loc, IntegerAttr::get(type, maxValue));
  converted = arith::SelectOp::create(b, loc, tooLow, minInt, converted);
  return arith::SelectOp::create(b, loc, tooHigh, maxInt, converted);
}

Value CastOp::buildScalar(OpBuilder &b, Location loc, ValueRange operands,
                          Type to) {
  Value x = operands[0];
  Type from = x.getType();
  if (from == to)
    return x;
  auto fromFloat = dyn_cast<FloatType>(from);
  auto toFloat = dyn_cast<FloatType>(to);
  if (fromFloat && toFloat) {
    if (fromFloat.getWidth() < toFloat.getWidth())
      return arith::ExtFOp::create(b, loc, to, x);
    return arith::TruncFOp::create(b, loc, to, x);
  }
  if (to.isInteger(1)) { // anything -> bool is x != 0 (NaN is true)
    Value zero = constantLike(b, loc, from, 0.0);
    if (fromFloat)
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, x, zero);
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, x, zero);
  }
  if (fromFloat)
    return floatToInt(b, loc, x, cast<IntegerType>(to));
  bool fromBool = from.isInteger(1);
  if (toFloat)
    return fromBool ? Value(arith::UIToFPOp::create(b, loc, to, x))
                    : Value(arith::SIToFPOp::create(b, loc, to, x));
  unsigned fromWidth = from.getIntOrFloatBitWidth();
  unsigned toWidth = to.getIntOrFloatBitWidth();
  if (fromWidth > toWidth)
    return arith::TruncIOp::create(b, loc, to, x);
  return fromBool ? Value(arith::ExtUIOp::create(b, loc, to, x))
                  : Value(arith::ExtSIOp::create(b, loc, to, x));
}

//===----------------------------------------------------------------------===//
// Indexed reads
//===----------------------------------------------------------------------===//

/// The size of the dim an op with a `dim` attribute indexes along (1 for a
/// rank-0 input).
static int64_t indexedDimSize(RankedTensorType input, int64_t dim) {
  if (input.getRank() == 0)
    return 1;
  return input.getDimSize(*normalizeDim(dim, input.getRank()));
}

/// `resultPosition` with the indexed dim replaced by the index (in bounds).
static SmallVector<Value> replaceIndexedDim(OpBuilder &b, Location loc,
                                            RankedTensorType input, int64_t dim,
                                            ValueRange resultPosition,
                                            Value index) {
  SmallVector<Value> at(resultPosition);
  if (input.getRank() > 0)
    at[*normalizeDim(dim, input.getRank())] =
        inBoundsIndex(b, loc, index, indexedDimSize(input, dim));
  return at;
}

std::pair<int64_t, int64_t> GatherOp::getValidIndexRange() {
  return {0, indexedDimSize(getInput().getType(), getDim())};
}

SmallVector<Value> GatherOp::buildIndexPosition(OpBuilder &, Location,
                                                ValueRange resultPosition) {
  return SmallVector<Value>(resultPosition);
}

SmallVector<Value> GatherOp::buildInputPosition(OpBuilder &b, Location loc,
                                                ValueRange resultPosition,
                                                Value index) {
  return replaceIndexedDim(b, loc, getInput().getType(), getDim(),
                           resultPosition, index);
}

std::pair<int64_t, int64_t> IndexSelectOp::getValidIndexRange() {
  return {0, indexedDimSize(getInput().getType(), getDim())};
}

SmallVector<Value>
IndexSelectOp::buildIndexPosition(OpBuilder &b, Location loc,
                                  ValueRange resultPosition) {
  // A 1-D index holds one entry per position along the dim; a rank-0 one
  // is the only entry (as is a 1-D one of a rank-0 input).
  if (getIndex().getType().getRank() == 0)
    return {};
  if (resultPosition.empty())
    return {arith::ConstantIndexOp::create(b, loc, 0)};
  return {resultPosition[*normalizeDim(getDim(), resultPosition.size())]};
}

SmallVector<Value> IndexSelectOp::buildInputPosition(OpBuilder &b, Location loc,
                                                     ValueRange resultPosition,
                                                     Value index) {
  return replaceIndexedDim(b, loc, getInput().getType(), getDim(),
                           resultPosition, index);
}

std::pair<int64_t, int64_t> TakeOp::getValidIndexRange() {
  int64_t numel = getInput().getType().getNumElements();
  return {-numel, numel};
}

SmallVector<Value> TakeOp::buildIndexPosition(OpBuilder &, Location,
                                              ValueRange resultPosition) {
  return SmallVector<Value>(resultPosition);
}

SmallVector<Value> TakeOp::buildInputPosition(OpBuilder &b, Location loc,
                                              ValueRange, Value index) {
  // A negative flat index counts from the end; the flat position is then
  // split into the input's (row-major) coordinates.
  return flatIndexPosition(b, loc, index, getInput().getType().getShape());
}

int64_t GatherOp::getContiguousRun() { return 1; }

int64_t IndexSelectOp::getContiguousRun() {
  RankedTensorType input = getInput().getType();
  if (input.getRank() == 0)
    return 1;
  int64_t dim = *normalizeDim(getDim(), input.getRank());
  return ShapedType::getNumElements(input.getShape().drop_front(dim + 1));
}

int64_t TakeOp::getContiguousRun() { return 1; }

//===----------------------------------------------------------------------===//
// Views (ViewOpInterface)
//===----------------------------------------------------------------------===//

SmallVector<Value> ReshapeOp::buildSourcePosition(OpBuilder &b, Location loc,
                                                  ValueRange resultPosition) {
  ArrayRef<int64_t> from = getInput().getType().getShape();
  ArrayRef<int64_t> to = getType().getShape();
  // Both shapes are row-major orders of the same elements: the dims they
  // end with in common carry their indices over unchanged, and the leading
  // dims before them are one flat index, linearized over the result's and
  // split over the operand's (no division when the operand has one such
  // dim: splitting rows into bags is a multiply-add).
  size_t common = 0;
  while (common < from.size() && common < to.size() &&
         from[from.size() - 1 - common] == to[to.size() - 1 - common])
    ++common;
  ArrayRef<int64_t> toLead = to.drop_back(common);
  ArrayRef<int64_t> fromLead = from.drop_back(common);
  Value flat;
  for (auto [size, index] : llvm::zip(toLead, resultPosition)) {
    if (size == 1)
      continue; // its index is 0
    flat = !flat ? index
                 : arith::AddIOp::create(
                       b, loc,
                       arith::MulIOp::create(b, loc, flat,
                                             indexConstant(b, loc, size)),
                       index);
  }
  if (!flat)
    flat = indexConstant(b, loc, 0);
  // Split over the operand's leading dims, the last first; the first
  // non-unit one takes what is left (below its size: no remainder).
  int64_t outermost =
      llvm::find_if(fromLead, [](int64_t size) { return size != 1; }) -
      fromLead.begin();
  SmallVector<Value> position(fromLead.size());
  for (int64_t d = static_cast<int64_t>(fromLead.size()) - 1; d >= 0; --d) {
    if (fromLead[d] == 1) {
      position[d] = indexConstant(b, loc, 0);
    } else if (d == outermost) {
      position[d] = flat;
    } else {
      Value size = indexConstant(b, loc, fromLead[d]);
      position[d] = arith::RemUIOp::create(b, loc, flat, size);
      flat = arith::DivUIOp::create(b, loc, flat, size);
    }
  }
  llvm::append_range(position, resultPosition.take_back(common));
  return position;
}

bool ReshapeOp::keepsLastDim() {
  ArrayRef<int64_t> from = getInput().getType().getShape();
  ArrayRef<int64_t> to = getType().getShape();
  return !from.empty() && !to.empty() && from.back() == to.back();
}

bool ReshapeOp::isFreeAlone() { return true; }

SmallVector<Value> PermuteOp::buildSourcePosition(OpBuilder &, Location,
                                                  ValueRange resultPosition) {
  // Result dim i is operand dim dims[i].
  int64_t rank = getInput().getType().getRank();
  SmallVector<Value> position(rank);
  for (auto [i, d] : llvm::enumerate(getDims()))
    position[*normalizeDim(d, rank)] = resultPosition[i];
  return position;
}

bool PermuteOp::keepsLastDim() {
  int64_t rank = getInput().getType().getRank();
  return rank > 0 && *normalizeDim(getDims().back(), rank) == rank - 1;
}

bool PermuteOp::isFreeAlone() { return false; }
