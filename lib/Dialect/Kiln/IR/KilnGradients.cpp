//===- KilnGradients.cpp - Gradient rules of kiln ops ---------------------===//
//
// Each op's DifferentiableOpInterface::buildVJP: PyTorch's reverse-mode rule
// (torch/csrc/autograd/FunctionsManual.cpp and derivatives.yaml), written
// with kiln ops. Rules reuse forward results where PyTorch does (exp, tanh,
// sigmoid, sqrt, softmax, amax, prod), and every gradient of a broadcast
// operand is summed back to that operand's shape. kiln-autodiff drives them;
// docs/autodiff.md tabulates them.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"

#include <cmath>

using namespace mlir;
using namespace kiln;

namespace {

/// Builds the kiln ops gradient rules are made of, at one location.
class GradBuilder {
public:
  GradBuilder(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  static RankedTensorType typeOf(Value v) {
    return cast<RankedTensorType>(v.getType());
  }

  /// A tensor of `type` filled with `value`.
  Value full(Type type, double value) {
    return FullOp::create(b, loc, type, b.getF64FloatAttr(value));
  }
  /// A rank-0 tensor of `like`'s element type (broadcasts in binary ops).
  Value scalar(Value like, double value) {
    return full(RankedTensorType::get({}, typeOf(like).getElementType()),
                value);
  }
  Value zerosLike(Value v) { return full(v.getType(), 0.0); }

  Value add(Value x, Value y) { return AddOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return MulOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return DivOp::create(b, loc, x, y); }
  Value neg(Value x) { return NegOp::create(b, loc, x); }
  Value pow(Value x, Value y) { return PowOp::create(b, loc, x, y); }
  Value eq(Value x, Value y) { return EqOp::create(b, loc, x, y); }
  Value gt(Value x, Value y) { return GtOp::create(b, loc, x, y); }
  Value lt(Value x, Value y) { return LtOp::create(b, loc, x, y); }
  Value le(Value x, Value y) { return LeOp::create(b, loc, x, y); }
  Value select(Value cond, Value x, Value y) {
    return WhereOp::create(b, loc, cond, x, y);
  }
  /// `mask` (i1) as 0/1 values of `like`'s element type.
  Value toFloat(Value mask, Value like) {
    return CastOp::create(b, loc,
                          RankedTensorType::get(typeOf(mask).getShape(),
                                                typeOf(like).getElementType()),
                          mask);
  }
  /// sign(x) as PyTorch's sgn: -1, 0 or 1, and 0 for NaN.
  Value sign(Value x) {
    Value zero = scalar(x, 0.0);
    return sub(toFloat(gt(x, zero), x), toFloat(lt(x, zero), x));
  }
  /// `where(cond, value, 0)`.
  Value maskedOrZero(Value cond, Value value) {
    return select(cond, value, scalar(value, 0.0));
  }

  Value reshape(Value v, ArrayRef<int64_t> shape) {
    RankedTensorType type = typeOf(v);
    if (type.getShape() == shape)
      return v;
    return ReshapeOp::create(
        b, loc, RankedTensorType::get(shape, type.getElementType()), v);
  }
  Value expand(Value v, ArrayRef<int64_t> shape) {
    RankedTensorType type = typeOf(v);
    if (type.getShape() == shape)
      return v;
    return ExpandOp::create(
        b, loc, RankedTensorType::get(shape, type.getElementType()), v);
  }
  Value sum(Value v, DenseI64ArrayAttr dims, bool keepdim) {
    return SumOp::create(b, loc, v, dims, b.getBoolAttr(keepdim));
  }
  Value sumAlong(Value v, int64_t dim) {
    return sum(v, b.getDenseI64ArrayAttr({dim}), /*keepdim=*/true);
  }

  /// The gradient `g` of a broadcast result summed back to `target`'s shape
  /// (the un-broadcast of PyTorch's sum_to).
  Value sumToShape(Value g, RankedTensorType target) {
    ArrayRef<int64_t> from = typeOf(g).getShape();
    ArrayRef<int64_t> to = target.getShape();
    if (from == to)
      return g;
    int64_t lead = static_cast<int64_t>(from.size() - to.size());
    SmallVector<int64_t> dims;
    for (int64_t i = 0, e = from.size(); i < e; ++i)
      if (from[i] != 1 && (i < lead || to[i - lead] == 1))
        dims.push_back(i);
    Value summed = g;
    if (!dims.empty())
      summed = sum(g, b.getDenseI64ArrayAttr(dims), /*keepdim=*/true);
    return reshape(summed, to);
  }

  /// The shape of a reduction's input with the reduced dims kept as 1.
  static SmallVector<int64_t> keptShape(RankedTensorType input,
                                        ArrayRef<bool> reduced) {
    return reduceShape(input.getShape(), reduced, /*keepDim=*/true);
  }

  /// Zeros of `input`'s type with `values` added at `indices` along `dim`:
  /// the gradient of every op that selects elements by index.
  Value scatterIntoZeros(Value input, Value indices, Value values,
                         int64_t dim) {
    return ScatterAddOp::create(b, loc, zerosLike(input), indices, values,
                                b.getI64IntegerAttr(dim));
  }

  /// Swaps the last two dims.
  Value transposeLast2(Value v) {
    int64_t rank = typeOf(v).getRank();
    SmallVector<int64_t> perm(rank);
    for (int64_t i = 0; i < rank; ++i)
      perm[i] = i;
    std::swap(perm[rank - 1], perm[rank - 2]);
    return PermuteOp::create(b, loc, v, b.getDenseI64ArrayAttr(perm));
  }

  OpBuilder &b;
  Location loc;
};

/// Whether `v` is a floating-point tensor (the only values with gradients).
bool isFloat(Value v) {
  return isa<FloatType>(cast<RankedTensorType>(v.getType()).getElementType());
}

int64_t normalizedDim(int64_t dim, Value input) {
  return *normalizeDim(dim, GradBuilder::typeOf(input).getRank());
}

/// Gradient of an op that picks `values` at `indices` along `dim` of
/// `input` (max/min/kthvalue with dim; `indices` as the op returned them,
/// reshaped to the kept-dims shape when the op dropped the dim).
Value selectionVJP(GradBuilder &g, Value input, Value indices, Value ct,
                   int64_t dim) {
  int64_t d = normalizedDim(dim, input);
  RankedTensorType inputType = GradBuilder::typeOf(input);
  SmallVector<bool> reduced(inputType.getRank(), false);
  if (inputType.getRank() > 0)
    reduced[d] = true;
  SmallVector<int64_t> kept = GradBuilder::keptShape(inputType, reduced);
  return g.scatterIntoZeros(input, g.reshape(indices, kept),
                            g.reshape(ct, kept), d);
}

} // namespace

//===----------------------------------------------------------------------===//
// Creation
//===----------------------------------------------------------------------===//

// zeros_like/ones_like read only the operand's shape: no gradient flows.
bool ZerosLikeOp::isDifferentiableOperand(unsigned) { return false; }
bool OnesLikeOp::isDifferentiableOperand(unsigned) { return false; }
LogicalResult ZerosLikeOp::buildVJP(OpBuilder &, ArrayRef<Value>,
                                    SmallVectorImpl<Value> &) {
  return success();
}
LogicalResult OnesLikeOp::buildVJP(OpBuilder &, ArrayRef<Value>,
                                   SmallVectorImpl<Value> &) {
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise unary
//===----------------------------------------------------------------------===//

LogicalResult NegOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  grads[0] = GradBuilder(b, getLoc()).neg(cts[0]);
  return success();
}

// d|x| = sgn(x): 0 at 0 (and at NaN), like PyTorch.
LogicalResult AbsOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  grads[0] = g.mul(cts[0], g.sign(getInput()));
  return success();
}

// d sqrt(x) = 1 / (2 sqrt(x)), from the forward result.
LogicalResult SqrtOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  grads[0] = g.div(cts[0], g.mul(getResult(), g.scalar(getResult(), 2.0)));
  return success();
}

// d rsqrt(x) = -0.5 rsqrt(x)^3.
LogicalResult RsqrtOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value y = getResult();
  Value cube = g.mul(g.mul(y, y), y);
  grads[0] = g.mul(g.mul(cts[0], g.scalar(y, -0.5)), cube);
  return success();
}

LogicalResult ExpOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  grads[0] = GradBuilder(b, getLoc()).mul(cts[0], getResult());
  return success();
}

LogicalResult LogOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  grads[0] = GradBuilder(b, getLoc()).div(cts[0], getInput());
  return success();
}

// Piecewise constant: zero gradient (the operand still counts as
// differentiated, as in PyTorch).
LogicalResult FloorOp::buildVJP(OpBuilder &, ArrayRef<Value>,
                                SmallVectorImpl<Value> &) {
  return success();
}
LogicalResult CeilOp::buildVJP(OpBuilder &, ArrayRef<Value>,
                               SmallVectorImpl<Value> &) {
  return success();
}
LogicalResult TruncOp::buildVJP(OpBuilder &, ArrayRef<Value>,
                                SmallVectorImpl<Value> &) {
  return success();
}
LogicalResult RoundOp::buildVJP(OpBuilder &, ArrayRef<Value>,
                                SmallVectorImpl<Value> &) {
  return success();
}

// frac(x) = x - trunc(x): slope 1.
LogicalResult FracOp::buildVJP(OpBuilder &, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  grads[0] = cts[0];
  return success();
}

// d sigmoid = y (1 - y).
LogicalResult SigmoidOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value y = getResult();
  grads[0] = g.mul(cts[0], g.mul(y, g.sub(g.scalar(y, 1.0), y)));
  return success();
}

// d tanh = 1 - y^2.
LogicalResult TanhOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value y = getResult();
  grads[0] = g.mul(cts[0], g.sub(g.scalar(y, 1.0), g.mul(y, y)));
  return success();
}

// d erf = 2 / sqrt(pi) exp(-x^2), PyTorch's rule.
LogicalResult ErfOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value x = getInput();
  Value density = ExpOp::create(b, getLoc(), g.neg(g.mul(x, x)));
  grads[0] = g.mul(g.mul(g.scalar(x, 2.0 / std::sqrt(M_PI)), density), cts[0]);
  return success();
}

// PyTorch's threshold_backward: 0 where the result <= 0, else the
// gradient -- which passes at NaN (NaN <= 0 is false), as PyTorch's does.
LogicalResult ReluOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value y = getResult();
  grads[0] = g.select(g.le(y, g.scalar(y, 0.0)), g.scalar(cts[0], 0.0), cts[0]);
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise binary (broadcasting: each gradient is summed to its operand)
//===----------------------------------------------------------------------===//

namespace {
/// Stores `lhsGrad`/`rhsGrad` (of the broadcast shape, may be null) summed to
/// the operands' shapes.
void setBinaryGrads(GradBuilder &g, Value lhs, Value rhs, Value lhsGrad,
                    Value rhsGrad, SmallVectorImpl<Value> &grads) {
  if (lhsGrad)
    grads[0] = g.sumToShape(lhsGrad, GradBuilder::typeOf(lhs));
  if (rhsGrad)
    grads[1] = g.sumToShape(rhsGrad, GradBuilder::typeOf(rhs));
}

/// maximum/minimum: PyTorch gives each operand the gradient where it is the
/// selected one and half of it where the operands are equal; `lhsLoses` is
/// the comparison under which the lhs is not selected.
void extremumVJP(GradBuilder &g, Value lhs, Value rhs, Value ct, bool isMaximum,
                 SmallVectorImpl<Value> &grads) {
  Value half = g.select(g.eq(lhs, rhs), g.mul(ct, g.scalar(ct, 0.5)), ct);
  Value lhsLoses = isMaximum ? g.lt(lhs, rhs) : g.gt(lhs, rhs);
  Value rhsLoses = isMaximum ? g.gt(lhs, rhs) : g.lt(lhs, rhs);
  Value zero = g.scalar(ct, 0.0);
  setBinaryGrads(g, lhs, rhs, g.select(lhsLoses, zero, half),
                 g.select(rhsLoses, zero, half), grads);
}
} // namespace

LogicalResult AddOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  setBinaryGrads(g, getLhs(), getRhs(), cts[0], cts[0], grads);
  return success();
}

LogicalResult SubOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  setBinaryGrads(g, getLhs(), getRhs(), cts[0], g.neg(cts[0]), grads);
  return success();
}

LogicalResult MulOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  setBinaryGrads(g, getLhs(), getRhs(), g.mul(cts[0], getRhs()),
                 g.mul(cts[0], getLhs()), grads);
  return success();
}

// d(x/y)/dx = 1/y; d(x/y)/dy = -(x/y)/y, from the forward quotient.
LogicalResult DivOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value ct = cts[0];
  setBinaryGrads(g, getLhs(), getRhs(), g.div(ct, getRhs()),
                 g.neg(g.mul(ct, g.div(getResult(), getRhs()))), grads);
  return success();
}

LogicalResult MaximumOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  extremumVJP(g, getLhs(), getRhs(), cts[0], /*isMaximum=*/true, grads);
  return success();
}

LogicalResult MinimumOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  extremumVJP(g, getLhs(), getRhs(), cts[0], /*isMaximum=*/false, grads);
  return success();
}

// d(a^b)/da = b a^(b-1), 0 where b == 0; d(a^b)/db = a^b ln(a), taken as 0
// where a == 0 and b >= 0 (PyTorch's pow_backward_self/_exponent).
LogicalResult PowOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value x = getLhs(), e = getRhs(), ct = cts[0];
  Value zero = g.scalar(ct, 0.0);
  // PyTorch's pow_backward: e * x.pow(e - 1). A constant exponent is a
  // Scalar there, e - 1 computed before the pow, which then takes its
  // constant-exponent path (rsqrt for -0.5: -inf at -0.0, where a libm pow
  // gives +inf; sqrt for 0.5: -0.0 at -0.0). Here e - 1 is a constant as
  // well, so PowOfConstant computes it the same way (the API fuzzer, seed
  // 402: the gradient of x ** 0.5 at -0.0).
  // (kiln.full: the C++ API's x.pow(0.5); kiln.constant: an IR file's.)
  std::optional<double> constant;
  DenseElementsAttr exponent;
  if (auto full = e.getDefiningOp<FullOp>())
    constant = full.getValue().convertToDouble();
  else if (matchPattern(e, m_Constant(&exponent)) && exponent.isSplat())
    constant = exponent.getSplatValue<APFloat>().convertToDouble();
  Value eMinusOne = constant ? g.full(e.getType(), *constant - 1.0)
                             : g.sub(e, g.scalar(e, 1.0));
  Value baseGrad =
      g.select(g.eq(e, zero), zero, g.mul(ct, g.mul(e, g.pow(x, eMinusOne))));
  // PyTorch's pow_backward_exponent: ct * where(x == 0 and e >= 0, 0,
  // y * log(x)) -- the upstream gradient multiplies the masked factor, so
  // a NaN one stays NaN there (the base's mask, PyTorch's too, is outside).
  Value yLog = g.mul(getResult(), LogOp::create(b, getLoc(), x));
  Value expNonNegative = GeOp::create(b, getLoc(), e, zero);
  Value expGrad = g.mul(
      ct, g.select(g.eq(x, zero), g.select(expNonNegative, zero, yLog), yLog));
  setBinaryGrads(g, x, e, baseGrad, expGrad, grads);
  return success();
}

//===----------------------------------------------------------------------===//
// clamp, where, cast
//===----------------------------------------------------------------------===//

// The gradient passes where min <= x <= max (bounds inclusive; NaN gets 0).
LogicalResult ClampOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value x = getInput(), grad = cts[0];
  if (std::optional<APFloat> hi = getMax())
    grad = g.maskedOrZero(
        LeOp::create(b, getLoc(), x, g.scalar(x, hi->convertToDouble())), grad);
  if (std::optional<APFloat> lo = getMin())
    grad = g.maskedOrZero(
        GeOp::create(b, getLoc(), x, g.scalar(x, lo->convertToDouble())), grad);
  grads[0] = grad;
  return success();
}

// The selected branch gets the gradient; the condition gets none.
LogicalResult WhereOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value ct = cts[0], zero = g.scalar(ct, 0.0);
  grads[1] = g.sumToShape(g.select(getCond(), ct, zero),
                          GradBuilder::typeOf(getLhs()));
  grads[2] = g.sumToShape(g.select(getCond(), zero, ct),
                          GradBuilder::typeOf(getRhs()));
  return success();
}

// Between float types the gradient is cast back; from integers nothing
// flows (the operand is not differentiable).
LogicalResult CastOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  if (!isFloat(getInput()))
    return success();
  Value ct = cts[0];
  grads[0] = ct.getType() == getInput().getType()
                 ? ct
                 : CastOp::create(b, getLoc(), getInput().getType(), ct);
  return success();
}

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  grads[0] = GradBuilder(b, getLoc())
                 .reshape(cts[0], GradBuilder::typeOf(getInput()).getShape());
  return success();
}

LogicalResult ExpandOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                 SmallVectorImpl<Value> &grads) {
  grads[0] = GradBuilder(b, getLoc())
                 .sumToShape(cts[0], GradBuilder::typeOf(getInput()));
  return success();
}

LogicalResult PermuteOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  ArrayRef<int64_t> perm = getDims();
  int64_t rank = perm.size();
  SmallVector<int64_t> inverse(rank);
  for (int64_t i = 0; i < rank; ++i)
    inverse[*normalizeDim(perm[i], rank)] = i;
  grads[0] =
      PermuteOp::create(b, getLoc(), cts[0], b.getDenseI64ArrayAttr(inverse));
  return success();
}

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

// 1-D operands are promoted as torch.matmul does ([k] -> [1, k] on the left,
// [k, 1] on the right); then dA = dC B^T and dB = A^T dC, each summed over
// the batch dims its operand was broadcast along.
LogicalResult MatmulOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                 SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value lhs = getLhs(), rhs = getRhs(), ct = cts[0];
  RankedTensorType lhsType = g.typeOf(lhs), rhsType = g.typeOf(rhs);
  if (lhsType.getRank() == 1 && rhsType.getRank() == 1) {
    grads[0] = g.mul(ct, rhs);
    grads[1] = g.mul(ct, lhs);
    return success();
  }
  Value lhs2 = lhs, rhs2 = rhs;
  if (lhsType.getRank() == 1)
    lhs2 = g.reshape(lhs, {1, lhsType.getDimSize(0)});
  if (rhsType.getRank() == 1)
    rhs2 = g.reshape(rhs, {rhsType.getDimSize(0), 1});
  // The result shape with the promoted unit dims put back.
  SmallVector<int64_t> promoted(g.typeOf(ct).getShape());
  if (rhsType.getRank() == 1)
    promoted.push_back(1);
  if (lhsType.getRank() == 1)
    promoted.insert(promoted.end() - 1, 1);
  Value ct2 = g.reshape(ct, promoted);
  Value lhsGrad = MatmulOp::create(b, getLoc(), ct2, g.transposeLast2(rhs2));
  Value rhsGrad = MatmulOp::create(b, getLoc(), g.transposeLast2(lhs2), ct2);
  grads[0] =
      g.reshape(g.sumToShape(lhsGrad, g.typeOf(lhs2)), lhsType.getShape());
  grads[1] =
      g.reshape(g.sumToShape(rhsGrad, g.typeOf(rhs2)), rhsType.getShape());
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

namespace {
/// What the rules of a `dims` reduction share: the input type, the reduced
/// dims, and the result cotangent reshaped to the kept-dims shape.
struct DimsReduction {
  DimsReduction(GradBuilder &g, Value input,
                std::optional<ArrayRef<int64_t>> dims, Value ct)
      : type(GradBuilder::typeOf(input)),
        reduced(getReducedDimsMask(type, dims)),
        kept(GradBuilder::keptShape(type, reduced)), keptCt(keep(g, ct)) {}
  /// A reduced value (the forward result) with the kept dims; a rank-0
  /// value already broadcasts against the input.
  Value keep(GradBuilder &g, Value v) {
    return GradBuilder::typeOf(v).getRank() == 0 ? v : g.reshape(v, kept);
  }
  int64_t count() const { return getReducedCount(type, reduced); }

  RankedTensorType type;
  SmallVector<bool> reduced;
  SmallVector<int64_t> kept;
  Value keptCt;
};

/// amax/amin: the gradient is split evenly among the elements equal to the
/// extreme (PyTorch's scale_grad_by_count; a NaN extreme gives NaN).
Value evenSplitVJP(GradBuilder &g, Value input, Value keptCt, Value keptResult,
                   DenseI64ArrayAttr dims) {
  Value mask = g.toFloat(g.eq(input, keptResult), input);
  Value count = g.sum(mask, dims, /*keepdim=*/true);
  return g.mul(g.div(keptCt, count), mask);
}
} // namespace

LogicalResult SumOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  DimsReduction r(g, getInput(), getDims(), cts[0]);
  grads[0] = g.expand(r.keptCt, r.type.getShape());
  return success();
}

LogicalResult MeanOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  DimsReduction r(g, getInput(), getDims(), cts[0]);
  Value scaled = g.div(r.keptCt, g.scalar(r.keptCt, double(r.count())));
  grads[0] = g.expand(scaled, r.type.getShape());
  return success();
}

// prod: d/dx_i = product of the other elements, exact with zeros. With no
// zero in a group that is prod / x_i; with exactly one zero only the zero's
// position gets the product of the others; with two or more all get 0.
LogicalResult ProdOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value x = getInput();
  DimsReduction r(g, x, getDims(), cts[0]);
  DenseI64ArrayAttr dims = getDimsAttr();
  Value zero = g.scalar(x, 0.0), one = g.scalar(x, 1.0);
  Value isZero = g.eq(x, zero);
  Value zeroCount = g.sum(g.toFloat(isZero, x), dims, /*keepdim=*/true);
  Value othersProduct = ProdOp::create(b, getLoc(), g.select(isZero, one, x),
                                       dims, b.getBoolAttr(true));
  Value atZero = g.maskedOrZero(g.eq(zeroCount, one), othersProduct);
  Value elsewhere =
      g.maskedOrZero(g.eq(zeroCount, zero), g.div(othersProduct, x));
  grads[0] = g.mul(g.select(isZero, atZero, elsewhere), r.keptCt);
  return success();
}

namespace {
template <typename OpT>
LogicalResult extremeVJP(OpT op, OpBuilder &b, ArrayRef<Value> cts,
                         SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, op.getLoc());
  DimsReduction r(g, op.getInput(), op.getDims(), cts[0]);
  grads[0] = evenSplitVJP(g, op.getInput(), r.keptCt, r.keep(g, op.getResult()),
                          op.getDimsAttr());
  return success();
}
} // namespace

LogicalResult AmaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  return extremeVJP(*this, b, cts, grads);
}
LogicalResult AminOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  return extremeVJP(*this, b, cts, grads);
}

// PyTorch's norm_backward: p = 2: x / ||x||; p = 1: sgn(x); p = inf: sgn(x)
// split evenly among the elements of largest magnitude; otherwise
// sgn(x) |x|^(p-1) / ||x||^(p-1) (0 at x == 0). Every rule gives 0 where the
// norm is 0.
LogicalResult NormOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value x = getInput();
  DimsReduction r(g, x, getDims(), cts[0]);
  Value norm = r.keep(g, getResult());
  double p = getP().convertToDouble();
  Value zero = g.scalar(x, 0.0);
  Value normIsZero = g.eq(norm, zero);
  if (p == 1.0) {
    grads[0] = g.mul(g.sign(x), r.keptCt);
    return success();
  }
  if (std::isinf(p)) {
    Value magnitude = AbsOp::create(b, getLoc(), x);
    grads[0] = g.mul(g.sign(x),
                     evenSplitVJP(g, magnitude, r.keptCt, norm, getDimsAttr()));
    return success();
  }
  if (p == 2.0) {
    grads[0] = g.mul(x, g.select(normIsZero, zero, g.div(r.keptCt, norm)));
    return success();
  }
  Value pMinus1 = g.scalar(x, p - 1.0);
  Value scaled =
      g.mul(g.sign(x), g.pow(AbsOp::create(b, getLoc(), x), pMinus1));
  scaled = g.select(g.eq(x, zero), zero, scaled);
  Value scale =
      g.select(normIsZero, zero, g.div(r.keptCt, g.pow(norm, pMinus1)));
  grads[0] = g.mul(scaled, scale);
  return success();
}

// Values picked by index: the gradient goes back to the position each index
// names (scatter into zeros).
namespace {
template <typename OpT>
LogicalResult valueIndexVJP(OpT op, OpBuilder &b, ArrayRef<Value> cts,
                            SmallVectorImpl<Value> &grads) {
  if (!cts[0])
    return success();
  GradBuilder g(b, op.getLoc());
  grads[0] = selectionVJP(g, op.getInput(), op.getIndices(), cts[0],
                          static_cast<int64_t>(op.getDim()));
  return success();
}
} // namespace

LogicalResult MaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  return valueIndexVJP(*this, b, cts, grads);
}
LogicalResult MinOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  return valueIndexVJP(*this, b, cts, grads);
}
LogicalResult KthvalueOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                   SmallVectorImpl<Value> &grads) {
  return valueIndexVJP(*this, b, cts, grads);
}

LogicalResult TopkOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  if (!cts[0])
    return success();
  GradBuilder g(b, getLoc());
  grads[0] = g.scatterIntoZeros(
      getInput(), getIndices(), cts[0],
      normalizedDim(static_cast<int64_t>(getDim()), getInput()));
  return success();
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

LogicalResult GatherOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                 SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  grads[0] = g.scatterIntoZeros(getInput(), getIndex(), cts[0],
                                static_cast<int64_t>(getDim()));
  return success();
}

LogicalResult IndexSelectOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                      SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  grads[0] = IndexAddOp::create(b, getLoc(), g.zerosLike(getInput()),
                                getIndex(), cts[0], getDimAttr());
  return success();
}

LogicalResult TakeOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                               SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  grads[0] = PutOp::create(b, getLoc(), g.zerosLike(getInput()), getIndex(),
                           cts[0], b.getBoolAttr(true));
  return success();
}

// base gets the gradient unchanged; src gets it gathered at the indices.
// src may be larger than the index: its elements outside the index's extent
// were not added and get 0 (the gathered block is scattered into zeros at
// its own position).
LogicalResult ScatterAddOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                     SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value ct = cts[0];
  grads[0] = ct;
  Value picked = GatherOp::create(b, getLoc(), ct, getIndex(), getDimAttr());
  RankedTensorType indexType = g.typeOf(getIndex());
  RankedTensorType srcType = g.typeOf(getSrc());
  if (indexType.getShape() == srcType.getShape()) {
    grads[2] = picked;
    return success();
  }
  int64_t d = normalizedDim(static_cast<int64_t>(getDim()), getSrc());
  int64_t extent = indexType.getRank() ? indexType.getDimSize(d) : 1;
  Value positions = ArangeOp::create(
      b, getLoc(), RankedTensorType::get({extent}, indexType.getElementType()),
      b.getF64FloatAttr(0.0), b.getF64FloatAttr(1.0));
  SmallVector<int64_t> along(indexType.getRank(), 1);
  if (!along.empty())
    along[d] = extent;
  positions = g.expand(g.reshape(positions, along), indexType.getShape());
  grads[2] = g.scatterIntoZeros(getSrc(), positions, picked, d);
  return success();
}

LogicalResult IndexAddOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                   SmallVectorImpl<Value> &grads) {
  grads[0] = cts[0];
  grads[2] =
      IndexSelectOp::create(b, getLoc(), cts[0], getIndex(), getDimAttr());
  return success();
}

// put: src gets the gradient at its indices; base gets it everywhere with
// accumulate, and only where nothing was written without.
LogicalResult PutOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                              SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value ct = cts[0];
  grads[0] = getAccumulate()
                 ? ct
                 : PutOp::create(b, getLoc(), ct, getIndex(),
                                 g.zerosLike(getSrc()), b.getBoolAttr(false))
                       .getResult();
  grads[2] = g.reshape(TakeOp::create(b, getLoc(), ct, getIndex()),
                       g.typeOf(getSrc()).getShape());
  return success();
}

//===----------------------------------------------------------------------===//
// Neural-network ops
//===----------------------------------------------------------------------===//

// y (ct - sum(ct y)), from the forward softmax.
LogicalResult SoftmaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value y = getResult(), ct = cts[0];
  int64_t d = normalizedDim(static_cast<int64_t>(getDim()), y);
  grads[0] = g.mul(y, g.sub(ct, g.sumAlong(g.mul(ct, y), d)));
  return success();
}

// ct - exp(y) sum(ct), from the forward log-probabilities.
LogicalResult LogSoftmaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                     SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value y = getResult(), ct = cts[0];
  int64_t d = normalizedDim(static_cast<int64_t>(getDim()), y);
  grads[0] = g.sub(ct, g.mul(ExpOp::create(b, getLoc(), y), g.sumAlong(ct, d)));
  return success();
}

namespace {
/// The per-element cotangent of a loss with `reduction` over `count`
/// elements: ct / count for "mean", ct for "sum" and "none".
Value perElementCt(GradBuilder &g, Value ct, StringRef reduction,
                   int64_t count) {
  if (reduction == "mean")
    return g.div(ct, g.scalar(ct, static_cast<double>(count)));
  return ct;
}
} // namespace

// 2 (input - target) ct, summed to each operand's shape.
LogicalResult MseLossOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                  SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value diff = g.sub(getInput(), getTarget());
  int64_t count = g.typeOf(diff).getNumElements();
  Value scale = g.mul(perElementCt(g, cts[0], getReduction(), count),
                      g.scalar(diff, 2.0));
  Value grad = g.mul(diff, scale);
  setBinaryGrads(g, getInput(), getTarget(), grad, g.neg(grad), grads);
  return success();
}

// (softmax(logits) - onehot(target)) ct per sample.
LogicalResult CrossEntropyOp::buildVJP(OpBuilder &b, ArrayRef<Value> cts,
                                       SmallVectorImpl<Value> &grads) {
  GradBuilder g(b, getLoc());
  Value logits = getLogits(), target = getTarget();
  RankedTensorType logitsType = g.typeOf(logits);
  RankedTensorType targetType = g.typeOf(target);
  int64_t classDim = logitsType.getRank() - 1;
  // Per-sample shape with a unit class dim: [N, 1] or [1].
  SmallVector<int64_t> column(targetType.getShape());
  column.push_back(1);
  Value probs =
      SoftmaxOp::create(b, getLoc(), logits, b.getI64IntegerAttr(classDim));
  // The one-hot target as a comparison with the class numbers: elementwise,
  // so the whole gradient fuses into the softmax's last pass (a scatter
  // into zeros wrote the [N, C] tensor twice more).
  int64_t classes = logitsType.getDimSize(classDim);
  Value classNumbers = ArangeOp::create(
      b, getLoc(), RankedTensorType::get({classes}, b.getI64Type()),
      b.getF64FloatAttr(0.0), b.getF64FloatAttr(1.0));
  Value onehot =
      g.toFloat(g.eq(g.reshape(target, column), classNumbers), logits);
  int64_t samples = targetType.getNumElements();
  Value ct = perElementCt(g, cts[0], getReduction(), samples);
  if (getReduction() == "none")
    ct = g.reshape(ct, column);
  grads[0] = g.mul(g.sub(probs, onehot), ct);
  return success();
}
