//===- ApproximateMath.cpp - Vectorizable math ----------------------------===//
//
// f32 exp and tanh through MLIR's polynomial approximations, f32 pow and
// log computed in f64 with polynomials (ExpandPowF32, ExpandLogF32), and
// f64 exp (ExpandExpF64): code that LLVM vectorizes in place of a scalar
// libm call per element.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <limits>

namespace kiln {
#define GEN_PASS_DEF_KILNAPPROXIMATEMATH
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// Builds f64 arithmetic of the shape of an f32 scalar or vector `type`
/// (the scalar bodies of linalg ops, or vectors).
struct F64Math {
  F64Math(ImplicitLocOpBuilder &b, Type type) : b(b), type(type) {
    f64 = like(b.getF64Type());
    i64 = like(b.getI64Type());
  }
  Type like(Type element) const {
    if (auto vector = dyn_cast<VectorType>(type))
      return vector.clone(element);
    return element;
  }
  Value splat(Type t, TypedAttr value) {
    if (auto vector = dyn_cast<VectorType>(t))
      return arith::ConstantOp::create(b,
                                       DenseElementsAttr::get(vector, value));
    return arith::ConstantOp::create(b, value);
  }
  Value real(double v) { return splat(f64, b.getF64FloatAttr(v)); }
  Value integer(int64_t v) { return splat(i64, b.getI64IntegerAttr(v)); }
  Value yes() { return splat(like(b.getI1Type()), b.getBoolAttr(true)); }
  Value cmp(arith::CmpFPredicate predicate, Value lhs, Value rhs) {
    return arith::CmpFOp::create(b, predicate, lhs, rhs);
  }
  Value mul(Value lhs, Value rhs) { return arith::MulFOp::create(b, lhs, rhs); }
  Value add(Value lhs, Value rhs) { return arith::AddFOp::create(b, lhs, rhs); }
  Value fma(Value a, Value x, Value c) {
    return math::FmaOp::create(b, a, x, c);
  }
  Value select(Value condition, Value yes, Value no) {
    return arith::SelectOp::create(b, condition, yes, no);
  }
  Value both(Value lhs, Value rhs) {
    return arith::AndIOp::create(b, lhs, rhs);
  }
  Value either(Value lhs, Value rhs) {
    return arith::OrIOp::create(b, lhs, rhs);
  }
  Value isNaN(Value v) { return cmp(arith::CmpFPredicate::UNO, v, v); }

  /// e^r by its Taylor series to `degree`, Horner's rule in fused
  /// multiply-adds down to the 1.
  Value expTaylor(Value r, int degree) {
    double factorial = 1;
    for (int k = 1; k <= degree; ++k)
      factorial *= k;
    Value taylor = real(1.0 / factorial);
    for (int k = degree - 1; k >= 0; --k) {
      factorial /= (k + 1);
      taylor = fma(taylor, r, real(1.0 / factorial));
    }
    return taylor;
  }

  /// 2^k for an i64 `k` in [-1022, 1023], from its exponent bits.
  Value powerOfTwo(Value k) {
    return arith::BitcastOp::create(
        b, f64,
        arith::ShLIOp::create(b, arith::AddIOp::create(b, k, integer(1023)),
                              integer(52)));
  }

  /// For a positive normal `ax`: {e, log(m)} with ax = m * 2^e, m in
  /// [sqrt(1/2), sqrt(2)), e as f64. log(m) = 2 atanh(s), s = (m - 1) / (m
  /// + 1), |s| <= 0.1716, by its series to s^17 in fused multiply-adds
  /// (truncation below 1e-15 relative; m - 1 is exact, so log(m) stays
  /// accurate relative to itself next to 1).
  std::pair<Value, Value> logParts(Value ax) {
    Value bits = arith::BitcastOp::create(b, i64, ax);
    Value exponent = arith::SubIOp::create(
        b, arith::ShRUIOp::create(b, bits, integer(52)), integer(1023));
    Value mantissa = arith::BitcastOp::create(
        b, f64,
        arith::OrIOp::create(
            b, arith::AndIOp::create(b, bits, integer((int64_t(1) << 52) - 1)),
            integer(int64_t(1023) << 52)));
    Value high =
        cmp(arith::CmpFPredicate::OGT, mantissa, real(1.4142135623730951));
    mantissa = select(high, mul(mantissa, real(0.5)), mantissa);
    exponent =
        select(high, arith::AddIOp::create(b, exponent, integer(1)), exponent);
    Value s = arith::DivFOp::create(b, add(mantissa, real(-1.0)),
                                    add(mantissa, real(1.0)));
    Value s2 = mul(s, s);
    Value series = real(1.0 / 17);
    for (int k = 7; k >= 0; --k)
      series = fma(series, s2, real(1.0 / (2 * k + 1)));
    return {arith::SIToFPOp::create(b, f64, exponent),
            mul(mul(real(2.0), s), series)};
  }

  ImplicitLocOpBuilder &b;
  Type type, f64, i64;
};

/// Rewrites an f32 (scalar or vector) math op as an f64 computation of its
/// operands, extended, rounded once to f32 at the end: `compute` returns
/// the f64 result.
template <typename OpTy> struct InF64Pattern : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  virtual Value compute(F64Math &m, ArrayRef<Value> operands) const = 0;
  /// Whether to leave `op` to LLVM.
  virtual bool keep(OpTy) const { return false; }

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32() || keep(op))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    F64Math m(b, type);
    SmallVector<Value> operands;
    for (Value operand : op->getOperands())
      operands.push_back(arith::ExtFOp::create(b, m.f64, operand));
    rewriter.replaceOp(op,
                       arith::TruncFOp::create(b, type, compute(m, operands)));
    return success();
  }
};

/// The value of `v` when it is a constant, or a block argument of a
/// linalg op's body standing for a splat constant input (the operands of
/// fused kernels), else nothing.
std::optional<double> splatConstant(Value v) {
  if (auto argument = dyn_cast<BlockArgument>(v))
    if (auto linalgOp =
            dyn_cast<linalg::LinalgOp>(argument.getOwner()->getParentOp()))
      if (argument.getArgNumber() < linalgOp.getNumDpsInputs())
        v = linalgOp.getDpsInputOperand(argument.getArgNumber())->get();
  Attribute attribute;
  if (!matchPattern(v, m_Constant(&attribute)))
    return std::nullopt;
  if (auto elements = dyn_cast<DenseFPElementsAttr>(attribute))
    if (elements.isSplat())
      return elements.getSplatValue<APFloat>().convertToDouble();
  if (auto scalar = dyn_cast<FloatAttr>(attribute))
    return scalar.getValueAsDouble();
  return std::nullopt;
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLn2 = 0.6931471805599453;

/// f32 pow(x, y) as 2^(y * log2|x|), evaluated in f64 and rounded once to
/// f32, with C's special cases (pow(x, 0) = pow(1, y) = pow(-1, +-inf) =
/// 1; a negative finite x to a non-integer power is NaN; an odd integer
/// power keeps x's sign, zeros included; other NaNs propagate).
///
/// log2|x| = e + log(m) / ln 2 (F64Math::logParts). 2^t: t clamped to
/// [-200, 200] (beyond f32's range either way), t = n + f with n =
/// roundeven(t), e^(f ln 2) by its Taylor series to degree 11 (|f ln 2| <=
/// 0.347; truncation below 1e-14) in fused multiply-adds, times 2^n built
/// from its exponent bits. The f64 result is within about 1e-12 relative
/// of the exact power for every result in f32's range (|t| <= 150), so
/// rounding it to f32 gives the correctly rounded answer except within
/// that distance of a halfway point (1 ulp then): as close as libm's powf,
/// and vectorizable.
struct ExpandPowF32 : InF64Pattern<math::PowFOp> {
  using InF64Pattern::InF64Pattern;

  /// Exponents LLVM turns into exact cheaper code (pow(x, 2) = x * x,
  /// pow(x, 1) = x, pow(x, 0.5) = |sqrt(x)| but +inf at -inf, ...) stay
  /// powf calls: the gradient of x^2 is 2 x^1, and the forward and
  /// backward of a where/clamp/pow chain took 45 ms instead of 10.5 with
  /// pow(x, 1) expanded.
  bool keep(math::PowFOp op) const override {
    std::optional<double> exponent = splatConstant(op.getRhs());
    return exponent &&
           llvm::is_contained(
               std::initializer_list<double>{0.0, 1.0, 2.0, -1.0, 0.5},
               *exponent);
  }

  Value compute(F64Math &m, ArrayRef<Value> operands) const override {
    using P = arith::CmpFPredicate;
    ImplicitLocOpBuilder &b = m.b;
    Value x = operands[0], y = operands[1];
    Value ax = math::AbsFOp::create(b, x);

    // log2|x| (|x| is a normal f64 unless 0, inf or NaN: fixed below).
    auto [exponent, logM] = m.logParts(ax);
    Value log2x = m.add(exponent, m.mul(logM, m.real(1 / kLn2)));
    log2x = m.select(m.cmp(P::OEQ, ax, m.real(0.0)), m.real(-kInf), log2x);
    log2x = m.select(m.cmp(P::OEQ, ax, m.real(kInf)), m.real(kInf), log2x);

    // 2^t, t = y log2|x| in [-200, 200] (NaN stays NaN).
    Value t = m.mul(y, log2x);
    t = arith::MinimumFOp::create(
        b, arith::MaximumFOp::create(b, t, m.real(-200.0)), m.real(200.0));
    Value n = math::RoundEvenOp::create(b, t);
    Value r = m.mul(arith::SubFOp::create(b, t, n), m.real(kLn2));
    Value taylor = m.expTaylor(r, 11);
    Value nSafe = m.select(m.isNaN(n), m.real(0.0), n);
    Value result =
        m.mul(taylor, m.powerOfTwo(arith::FPToSIOp::create(b, m.i64, nSafe)));

    // Signs and special cases.
    Value yInteger = m.cmp(P::OEQ, math::FloorOp::create(b, y), y);
    Value half = m.mul(y, m.real(0.5));
    Value yOdd =
        m.both(yInteger, m.cmp(P::ONE, math::FloorOp::create(b, half), half));
    Value xNegative = arith::CmpIOp::create(
        b, arith::CmpIPredicate::slt, arith::BitcastOp::create(b, m.i64, x),
        m.integer(0));
    result = m.select(m.both(xNegative, yOdd), arith::NegFOp::create(b, result),
                      result);
    Value negativeFinite =
        m.both(m.cmp(P::OLT, x, m.real(0.0)), m.cmp(P::ONE, x, m.real(-kInf)));
    Value notInteger = arith::XOrIOp::create(b, yInteger, m.yes());
    result = m.select(m.either(m.both(negativeFinite, notInteger),
                               m.either(m.isNaN(x), m.isNaN(y))),
                      m.real(std::numeric_limits<double>::quiet_NaN()), result);
    Value one = m.either(
        m.either(m.cmp(P::OEQ, y, m.real(0.0)), m.cmp(P::OEQ, x, m.real(1.0))),
        m.both(m.cmp(P::OEQ, ax, m.real(1.0)),
               m.cmp(P::OEQ, math::AbsFOp::create(b, y), m.real(kInf))));
    return m.select(one, m.real(1.0), result);
  }
};

/// f32 log(x) as e ln 2 + log(m) (F64Math::logParts) in f64, rounded once
/// to f32: log of a subnormal input is exact to the last bit (MLIR's f32
/// approximation flushes them), the rest within about 1e-15 relative
/// before the rounding. log(+-0) = -inf, log(x < 0) = NaN, log(inf) = inf,
/// NaN propagates.
struct ExpandLogF32 : InF64Pattern<math::LogOp> {
  using InF64Pattern::InF64Pattern;

  Value compute(F64Math &m, ArrayRef<Value> operands) const override {
    using P = arith::CmpFPredicate;
    Value x = operands[0];
    auto [exponent, logM] = m.logParts(x);
    Value result = m.fma(exponent, m.real(kLn2), logM);
    result = m.select(m.cmp(P::OEQ, x, m.real(0.0)), m.real(-kInf), result);
    result = m.select(m.cmp(P::OEQ, x, m.real(kInf)), m.real(kInf), result);
    // Negative inputs (not -0) and NaN.
    return m.select(m.cmp(P::ULT, x, m.real(0.0)),
                    m.real(std::numeric_limits<double>::quiet_NaN()), result);
  }
};

/// f64 exp(x), vectorizable (libm's exp is a scalar call per element:
/// 2.5x slower than PyTorch's vectorized one). x is clamped to [-746, 710],
/// beyond which the result is 0 or inf either way; n = roundeven(x / ln 2)
/// and r = x - n ln 2 by two fused multiply-adds with ln 2 split in two
/// (fdlibm's ln2_hi, whose low bits are zero, and ln2_lo), |r| <= 0.35;
/// e^r by its Taylor series to degree 13 (truncation below 1e-17
/// relative) in fused multiply-adds; then times 2^n as two exact powers of
/// two, 2^floor(n/2) and 2^(n - floor(n/2)), each a normal f64: the first
/// product is exact, the second rounds once, into the subnormals where the
/// result is one, or overflows to inf. NaN propagates. The formula is the
/// same scalar and vectorized, so fused and unfused code give the same
/// bits.
struct ExpandExpF64 : OpRewritePattern<math::ExpOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::ExpOp op,
                                PatternRewriter &rewriter) const override {
    if (!getElementTypeOrSelf(op.getType()).isF64())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    F64Math m(b, op.getType());
    Value x = op.getOperand();
    Value clamped = arith::MinimumFOp::create(
        b, arith::MaximumFOp::create(b, x, m.real(-746.0)), m.real(710.0));
    Value n = math::RoundEvenOp::create(b, m.mul(clamped, m.real(1 / kLn2)));
    n = m.select(m.isNaN(n), m.real(0.0), n);
    Value minusN = arith::NegFOp::create(b, n);
    Value r = m.fma(minusN, m.real(6.93147180369123816490e-01), clamped);
    r = m.fma(minusN, m.real(1.90821492927058770002e-10), r);
    // Horner's rule to the 1 (measured against glibc's exp over 1.2M points
    // of its range: 6% of results 1 ulp away, none further; rounding 1 + (r
    // + r^2 q(r)) last instead: 9%).
    Value taylor = m.expTaylor(r, 13);
    Value whole = arith::FPToSIOp::create(b, m.i64, n);
    Value half = arith::ShRSIOp::create(b, whole, m.integer(1));
    Value result = m.mul(m.mul(taylor, m.powerOfTwo(half)),
                         m.powerOfTwo(arith::SubIOp::create(b, whole, half)));
    rewriter.replaceOp(op, m.select(m.isNaN(x), x, result));
    return success();
  }
};

struct KilnApproximateMathPass
    : kiln::impl::KilnApproximateMathBase<KilnApproximateMathPass> {
  void runOnOperation() override {
    // Only the math ops, and what computes pow's exponents, are visited:
    // the greedy driver over a whole deep network took 0.45 s of its 3.7 s
    // compile.
    MLIRContext *context = &getContext();
    GreedyRewriteConfig config;
    config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
    // Fold the exponents first, so that ExpandPowF32 sees constants (the
    // gradient of x^2 computes its exponent as 2 - 1).
    SetVector<Operation *> exponents;
    getOperation()->walk([&](math::PowFOp pow) {
      if (Operation *def = pow.getRhs().getDefiningOp()) {
        BackwardSliceOptions options;
        options.omitBlockArguments = true;
        (void)getBackwardSlice(def, &exponents, options);
        exponents.insert(def);
      }
    });
    if (!exponents.empty())
      (void)applyOpPatternsGreedily(
          exponents.takeVector(),
          FrozenRewritePatternSet(RewritePatternSet(context)), config);
    SmallVector<Operation *> mathOps;
    getOperation()->walk([&](Operation *op) {
      if (isa<math::ExpOp, math::TanhOp, math::PowFOp, math::LogOp>(op))
        mathOps.push_back(op);
    });
    RewritePatternSet patterns(context);
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == "exp" || name == "math.exp" || name == "tanh" ||
             name == "math.tanh";
    });
    patterns.add<ExpandPowF32, ExpandLogF32, ExpandExpF64>(context);
    if (failed(applyOpPatternsGreedily(mathOps, std::move(patterns), config)))
      signalPassFailure();
  }
};
} // namespace
