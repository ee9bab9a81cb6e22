//===- ApproximateMath.cpp - Vectorizable math ----------------------------===//
//
// f32 exp and tanh through MLIR's polynomial approximations, and f32 pow
// computed in f64 with polynomials (ExpandPowF32): code that LLVM
// vectorizes in place of a scalar libm call per element.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <limits>

namespace kiln {
#define GEN_PASS_DEF_KILNAPPROXIMATEMATH
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// f32 pow(x, y) as 2^(y * log2|x|), evaluated in f64 and rounded once to
/// f32, with C's special cases (pow(x, 0) = pow(1, y) = pow(-1, +-inf) =
/// 1; a negative finite x to a non-integer power is NaN; an odd integer
/// power keeps x's sign, zeros included; other NaNs propagate).
///
/// log2|x|: |x| = m * 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = 2
/// atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.1716, by its series to
/// s^17 (truncation below 1e-15 relative). 2^t: t clamped to [-200, 200]
/// (beyond f32's range either way), t = n + f with n = roundeven(t), e^(f
/// ln 2) by its Taylor series to degree 11 (|f ln 2| <= 0.347; truncation
/// below 1e-14), times 2^n built from its exponent bits; Horner steps are
/// fused multiply-adds. The f64 result is within about 1e-12 relative of
/// the exact power for every result in f32's range (|t| <= 150), so
/// rounding it to f32 gives the correctly rounded answer except within
/// that distance of a halfway point (1 ulp then): as close as libm's powf,
/// and vectorizable.
struct ExpandPowF32 : OpRewritePattern<math::PowFOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::PowFOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto like = [&](Type element) -> Type {
      if (auto vector = dyn_cast<VectorType>(type))
        return vector.clone(element);
      return element;
    };
    Type f64 = like(b.getF64Type()), i64 = like(b.getI64Type());
    auto splat = [&](Type t, TypedAttr value) -> Value {
      if (auto vector = dyn_cast<VectorType>(t))
        return arith::ConstantOp::create(b,
                                         DenseElementsAttr::get(vector, value));
      return arith::ConstantOp::create(b, value);
    };
    auto real = [&](double v) { return splat(f64, b.getF64FloatAttr(v)); };
    auto integer = [&](int64_t v) {
      return splat(i64, b.getI64IntegerAttr(v));
    };
    auto cmp = [&](arith::CmpFPredicate predicate, Value lhs, Value rhs) {
      return arith::CmpFOp::create(b, predicate, lhs, rhs).getResult();
    };
    auto mul = [&](Value lhs, Value rhs) {
      return arith::MulFOp::create(b, lhs, rhs).getResult();
    };
    auto fma = [&](Value a, Value x, Value c) {
      return math::FmaOp::create(b, a, x, c).getResult();
    };
    auto add = [&](Value lhs, Value rhs) {
      return arith::AddFOp::create(b, lhs, rhs).getResult();
    };
    auto select = [&](Value condition, Value yes, Value no) {
      return arith::SelectOp::create(b, condition, yes, no).getResult();
    };
    auto both = [&](Value lhs, Value rhs) {
      return arith::AndIOp::create(b, lhs, rhs).getResult();
    };
    auto either = [&](Value lhs, Value rhs) {
      return arith::OrIOp::create(b, lhs, rhs).getResult();
    };
    const double inf = std::numeric_limits<double>::infinity();

    Value x = arith::ExtFOp::create(b, f64, op.getLhs());
    Value y = arith::ExtFOp::create(b, f64, op.getRhs());
    Value ax = math::AbsFOp::create(b, x);

    // log2|x| (|x| is a normal f64 unless 0, inf or NaN: fixed below).
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
    Value logM = mul(mul(real(2.0), s), series);
    Value log2x = add(arith::SIToFPOp::create(b, f64, exponent),
                      mul(logM, real(1.4426950408889634)));
    log2x = select(cmp(arith::CmpFPredicate::OEQ, ax, real(0.0)), real(-inf),
                   log2x);
    log2x =
        select(cmp(arith::CmpFPredicate::OEQ, ax, real(inf)), real(inf), log2x);

    // 2^t, t = y log2|x| in [-200, 200] (NaN stays NaN).
    Value t = mul(y, log2x);
    t = arith::MinimumFOp::create(
        b, arith::MaximumFOp::create(b, t, real(-200.0)), real(200.0));
    Value n = math::RoundEvenOp::create(b, t);
    Value r = mul(arith::SubFOp::create(b, t, n), real(0.6931471805599453));
    double factorial = 1;
    for (int k = 1; k <= 11; ++k)
      factorial *= k;
    Value taylor = real(1.0 / factorial);
    for (int k = 10; k >= 0; --k) {
      factorial /= (k + 1);
      taylor = fma(taylor, r, real(1.0 / factorial));
    }
    Value nSafe = select(cmp(arith::CmpFPredicate::UNO, n, n), real(0.0), n);
    Value scale = arith::BitcastOp::create(
        b, f64,
        arith::ShLIOp::create(
            b,
            arith::AddIOp::create(b, arith::FPToSIOp::create(b, i64, nSafe),
                                  integer(1023)),
            integer(52)));
    Value result = mul(taylor, scale);

    // Signs and special cases.
    Value yInteger =
        cmp(arith::CmpFPredicate::OEQ, math::FloorOp::create(b, y), y);
    Value half = mul(y, real(0.5));
    Value yOdd = both(yInteger, cmp(arith::CmpFPredicate::ONE,
                                    math::FloorOp::create(b, half), half));
    Value xNegative =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt,
                              arith::BitcastOp::create(b, i64, x), integer(0));
    result =
        select(both(xNegative, yOdd), arith::NegFOp::create(b, result), result);
    Value negativeFinite = both(cmp(arith::CmpFPredicate::OLT, x, real(0.0)),
                                cmp(arith::CmpFPredicate::ONE, x, real(-inf)));
    Value nan = real(std::numeric_limits<double>::quiet_NaN());
    result =
        select(either(both(negativeFinite,
                           arith::XOrIOp::create(b, yInteger,
                                                 splat(like(b.getI1Type()),
                                                       b.getBoolAttr(true)))),
                      either(cmp(arith::CmpFPredicate::UNO, x, x),
                             cmp(arith::CmpFPredicate::UNO, y, y))),
               nan, result);
    Value one = either(either(cmp(arith::CmpFPredicate::OEQ, y, real(0.0)),
                              cmp(arith::CmpFPredicate::OEQ, x, real(1.0))),
                       both(cmp(arith::CmpFPredicate::OEQ, ax, real(1.0)),
                            cmp(arith::CmpFPredicate::OEQ,
                                math::AbsFOp::create(b, y), real(inf))));
    result = select(one, real(1.0), result);
    rewriter.replaceOp(op, arith::TruncFOp::create(b, type, result));
    return success();
  }
};

struct KilnApproximateMathPass
    : kiln::impl::KilnApproximateMathBase<KilnApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == "exp" || name == "math.exp" || name == "tanh" ||
             name == "math.tanh";
    });
    patterns.add<ExpandPowF32>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
