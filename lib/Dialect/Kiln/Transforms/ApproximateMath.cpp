//===- ApproximateMath.cpp - Vectorizable math ----------------------------===//
//
// f32 exp as Cephes' polynomial (ExpandExpF32), f32 erf as a rational
// function (ExpandErfF32), f32 tanh through MLIR's
// polynomial approximation, f32 pow and log computed in f64 with
// polynomials (ExpandPowF32, ExpandLogF32), and f64 exp, log and tanh
// (ExpandExpF64, ExpandLogF64, ExpandTanhF64): code that LLVM vectorizes in
// place of a scalar libm call per element.
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

#include "llvm/ADT/bit.h"

#include <array>
#include <cmath>
#include <limits>

namespace kiln {
#define GEN_PASS_DEF_KILNAPPROXIMATEMATH
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// 1.5 * 2^52: F64Math::toInteger and toReal's shift.
constexpr double kIntegerShift = 0x1.8p52;

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
  /// An f32 constant of `type`'s shape (the f32 expansions).
  Value f32(float v) { return splat(type, b.getF32FloatAttr(v)); }
  /// x, or `bound` where x is beyond it (`predicate` true keeps x; the
  /// unordered predicates keep a NaN, and become one vmaxps/vminps).
  Value clampF32(arith::CmpFPredicate predicate, Value x, float bound) {
    Value limit = f32(bound);
    return select(cmp(predicate, x, limit), x, limit);
  }
  Value mul(Value lhs, Value rhs) { return arith::MulFOp::create(b, lhs, rhs); }
  Value add(Value lhs, Value rhs) { return arith::AddFOp::create(b, lhs, rhs); }
  Value sub(Value lhs, Value rhs) { return arith::SubFOp::create(b, lhs, rhs); }
  /// {s, e} with s = lhs + rhs rounded and s + e = lhs + rhs exactly
  /// (Knuth's two-sum: no condition on the magnitudes).
  std::pair<Value, Value> twoSum(Value lhs, Value rhs) {
    Value s = add(lhs, rhs);
    Value rhsPart = sub(s, lhs);
    return {s, add(sub(lhs, sub(s, rhsPart)), sub(rhs, rhsPart))};
  }
  /// {p, e} with p = lhs * rhs rounded and p + e = lhs * rhs exactly.
  std::pair<Value, Value> twoProduct(Value lhs, Value rhs) {
    Value p = mul(lhs, rhs);
    return {p, fma(lhs, rhs, arith::NegFOp::create(b, p))};
  }
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

  /// 1 / k! for k = 0 .. `degree`: e^r's Taylor coefficients (k! is exact
  /// in an f64 up to 18!, so each is its correctly rounded reciprocal).
  static SmallVector<double> inverseFactorials(int degree) {
    SmallVector<double> coefficients;
    double factorial = 1;
    for (int k = 0; k <= degree; ++k) {
      if (k > 0)
        factorial *= k;
      coefficients.push_back(1.0 / factorial);
    }
    return coefficients;
  }

  /// e^r by its Taylor series to `degree`, Horner's rule in fused
  /// multiply-adds down to the 1.
  Value expTaylor(Value r, int degree) {
    SmallVector<double> c = inverseFactorials(degree);
    Value taylor = real(c.back());
    for (double coefficient : llvm::reverse(ArrayRef(c).drop_back()))
      taylor = fma(taylor, r, real(coefficient));
    return taylor;
  }

  /// c[0] + c[1] z + ... + c[n] z^n by Estrin's scheme: pairs c[2i] +
  /// c[2i+1] z, then pairs of those with z^2, with z^4, ... -- about log2 n
  /// fused multiply-adds deep where Horner's rule chains n of them. For the
  /// f64 evaluations of f32 results, whose few extra roundings stay far
  /// below what the f32 rounding can see (f32 pow's 2^f and the log series:
  /// their loops waited on the chains' latency).
  Value estrin(Value z, ArrayRef<double> c) {
    SmallVector<Value> terms;
    for (double coefficient : c)
      terms.push_back(real(coefficient));
    Value power = z;
    while (terms.size() > 1) {
      SmallVector<Value> next;
      for (size_t i = 0; i + 1 < terms.size(); i += 2)
        next.push_back(fma(terms[i + 1], power, terms[i]));
      if (terms.size() % 2 == 1)
        next.push_back(terms.back());
      terms = std::move(next);
      if (terms.size() > 1)
        power = mul(power, power);
    }
    return terms[0];
  }

  /// An integral f64 `n` with |n| < 2^51 as an i64, exactly: the bits of
  /// n + 1.5 * 2^52 are those of 1.5 * 2^52 plus n (f64s from 2^52 on are
  /// integers, one unit apart). Two vector instructions, where x86 without
  /// AVX-512 has no f64 -> i64 vector conversion: LLVM scalarized
  /// arith.fptosi into a conversion and moves per element (on a Zen 3,
  /// AVX2, 1 thread, 1024x1024: f64 exp 2.34 -> 1.73 ms, f32 pow 6.7-7.0 ->
  /// 6.6-6.7). A NaN gives some integer (where arith.fptosi's is poison).
  Value toInteger(Value n) {
    return arith::SubIOp::create(
        b, arith::BitcastOp::create(b, i64, add(n, real(kIntegerShift))),
        integer(llvm::bit_cast<int64_t>(kIntegerShift)));
  }
  /// An i64 `k` with |k| < 2^51 as an f64, exactly, likewise (x86 without
  /// AVX-512 has no i64 -> f64 vector conversion either).
  Value toReal(Value k) {
    return sub(arith::BitcastOp::create(
                   b, f64,
                   arith::AddIOp::create(
                       b, k, integer(llvm::bit_cast<int64_t>(kIntegerShift)))),
               real(kIntegerShift));
  }

  /// 2^k for an i64 `k` in [-1022, 1023], from its exponent bits.
  Value powerOfTwo(Value k) {
    return arith::BitcastOp::create(
        b, f64,
        arith::ShLIOp::create(b, arith::AddIOp::create(b, k, integer(1023)),
                              integer(52)));
  }

  /// `v` times 2^n for an integral f64 `n` in [-1076, 1024], as two exact
  /// powers of two, 2^floor(n/2) and 2^(n - floor(n/2)), each a normal
  /// f64: the first product is exact, the second rounds once (into the
  /// subnormals where the result is one) or overflows to inf.
  Value timesPowerOfTwo(Value v, Value n) {
    Value whole = toInteger(n);
    Value half = arith::ShRSIOp::create(b, whole, integer(1));
    return mul(mul(v, powerOfTwo(half)),
               powerOfTwo(arith::SubIOp::create(b, whole, half)));
  }

  /// For a positive finite `x`: {its bits, k} with subnormals scaled by
  /// 2^54 into the normals first, k the unbiased exponent of x itself (the
  /// scaled bits' exponent less 54 for a subnormal).
  std::pair<Value, Value> exponentBits(Value x) {
    Value subnormal = cmp(arith::CmpFPredicate::OLT, x,
                          real(std::numeric_limits<double>::min()));
    Value scaled = select(subnormal, mul(x, real(0x1p54)), x);
    Value bits = arith::BitcastOp::create(b, i64, scaled);
    Value k = arith::SubIOp::create(
        b, arith::ShRSIOp::create(b, bits, integer(52)),
        select(subnormal, integer(1023 + 54), integer(1023)));
    return {bits, k};
  }

  /// For a positive normal `ax`: {e, log(m)} with ax = m * 2^e, m in
  /// [sqrt(1/2), sqrt(2)), e as f64. log(m) = 2 atanh(s), s = (m - 1) / (m
  /// + 1), |s| <= 0.1716, by its series to s^17 in fused multiply-adds
  /// (Estrin's scheme in s^2; truncation below 1e-15 relative; m - 1 is exact,
  /// so log(m) stays accurate relative to itself next to 1).
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
    SmallVector<double> coefficients;
    for (int k = 0; k <= 8; ++k)
      coefficients.push_back(1.0 / (2 * k + 1));
    Value series = estrin(s2, coefficients);
    return {toReal(exponent), mul(mul(real(2.0), s), series)};
  }

  /// `result`, |x|^y computed for finite nonzero x and finite y (and
  /// giving inf or 0 when log|x| is -inf or inf), with C's special cases
  /// and signs: pow(x, 0) = pow(1, y) = pow(-1, +-inf) = 1; a negative
  /// finite x to a non-integer power is NaN; an odd integer power keeps
  /// x's sign, zeros and infinities included; other NaNs propagate.
  Value powSpecialCases(Value x, Value y, Value result) {
    using P = arith::CmpFPredicate;
    constexpr double inf = std::numeric_limits<double>::infinity();
    Value ax = math::AbsFOp::create(b, x);
    Value yInteger = cmp(P::OEQ, math::FloorOp::create(b, y), y);
    Value half = mul(y, real(0.5));
    Value yOdd =
        both(yInteger, cmp(P::ONE, math::FloorOp::create(b, half), half));
    Value xNegative =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt,
                              arith::BitcastOp::create(b, i64, x), integer(0));
    result =
        select(both(xNegative, yOdd), arith::NegFOp::create(b, result), result);
    Value negativeFinite =
        both(cmp(P::OLT, x, real(0.0)), cmp(P::ONE, x, real(-inf)));
    Value notInteger = arith::XOrIOp::create(b, yInteger, yes());
    result = select(
        either(both(negativeFinite, notInteger), either(isNaN(x), isNaN(y))),
        real(std::numeric_limits<double>::quiet_NaN()), result);
    Value one =
        either(either(cmp(P::OEQ, y, real(0.0)), cmp(P::OEQ, x, real(1.0))),
               both(cmp(P::OEQ, ax, real(1.0)),
                    cmp(P::OEQ, math::AbsFOp::create(b, y), real(inf))));
    return select(one, real(1.0), result);
  }

  /// `result`, a log of x computed for positive normal x, with log(+-0) =
  /// -inf, log(inf) = inf, and NaN for negative inputs (not -0) and NaN.
  Value logSpecialCases(Value x, Value result) {
    using P = arith::CmpFPredicate;
    constexpr double inf = std::numeric_limits<double>::infinity();
    result = select(cmp(P::OEQ, x, real(0.0)), real(-inf), result);
    result = select(cmp(P::OEQ, x, real(inf)), real(inf), result);
    return select(cmp(P::ULT, x, real(0.0)),
                  real(std::numeric_limits<double>::quiet_NaN()), result);
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
/// ln 2 in two parts (fdlibm's ln2_hi, with 32 significant bits, so that
/// n ln2_hi is exact for the n of an argument reduction, and ln2_lo).
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;

/// The argument reduction of e^t: {t clamped to [-746, 710] (beyond, e^t
/// is 0 or inf either way), n = roundeven(clamped / ln 2)} with a NaN n
/// replaced by 0 (the caller's result is then replaced too).
std::pair<Value, Value> reduceExpArgument(F64Math &m, Value t) {
  ImplicitLocOpBuilder &b = m.b;
  Value clamped = arith::MinimumFOp::create(
      b, arith::MaximumFOp::create(b, t, m.real(-746.0)), m.real(710.0));
  Value n = math::RoundEvenOp::create(b, m.mul(clamped, m.real(1 / kLn2)));
  return {clamped, m.select(m.isNaN(n), m.real(0.0), n)};
}

/// Expands an f64 (scalar or vector) unary math op: `compute` returns its
/// value.
template <typename OpTy> struct F64Pattern : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  virtual Value compute(F64Math &m, Value x) const = 0;

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    if (!getElementTypeOrSelf(op.getType()).isF64())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    F64Math m(b, op.getType());
    rewriter.replaceOp(op, compute(m, op.getOperand()));
    return success();
  }
};

/// Exponents LLVM turns into exact cheaper code (pow(x, 2) = x * x,
/// pow(x, 1) = x, pow(x, 0.5) = |sqrt(x)| but +inf at -inf, ...) stay
/// powf calls, f32 and f64: the gradient of x^2 is 2 x^1, and the forward
/// and backward of a where/clamp/pow chain took 45 ms instead of 10.5 with
/// pow(x, 1) expanded.
bool keepPow(math::PowFOp op) {
  std::optional<double> exponent = splatConstant(op.getRhs());
  return exponent &&
         llvm::is_contained(
             std::initializer_list<double>{0.0, 1.0, 2.0, -1.0, 0.5},
             *exponent);
}

/// f32 pow(x, y) as 2^(y * log2|x|), evaluated in f64 and rounded once to
/// f32, with C's special cases (pow(x, 0) = pow(1, y) = pow(-1, +-inf) =
/// 1; a negative finite x to a non-integer power is NaN; an odd integer
/// power keeps x's sign, zeros included; other NaNs propagate).
///
/// log2|x| = e + log(m) / ln 2 (F64Math::logParts). 2^t: t clamped to
/// [-200, 200] (beyond f32's range either way), t = n + f with n =
/// roundeven(t), e^(f ln 2) by its Taylor series to degree 11 (|f ln 2| <=
/// 0.347; truncation below 1e-14) in fused multiply-adds by Estrin's scheme
/// (Horner's chain of 11 had the vector loop wait on its latency: 1024x1024
/// on a Zen 3, AVX2, 1 thread, 7.0-7.8 -> 5.5-6.3 ms with the log series'
/// alike; the same f32 results over a 1M-point sweep), times 2^n built
/// from its exponent bits. The f64 result is within about 1e-12 relative
/// of the exact power for every result in f32's range (|t| <= 150), so
/// rounding it to f32 gives the correctly rounded answer except within
/// that distance of a halfway point (1 ulp then): as close as libm's powf,
/// and vectorizable.
struct ExpandPowF32 : InF64Pattern<math::PowFOp> {
  using InF64Pattern::InF64Pattern;

  bool keep(math::PowFOp op) const override { return keepPow(op); }

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
    Value taylor = m.estrin(r, F64Math::inverseFactorials(11));
    Value nSafe = m.select(m.isNaN(n), m.real(0.0), n);
    Value result = m.mul(taylor, m.powerOfTwo(m.toInteger(nSafe)));

    return m.powSpecialCases(x, y, result);
  }
};

/// f64 pow(x, y), vectorizable (libm's pow is a scalar call per element:
/// 1024x1024 doubles took 10.7 ms against PyTorch's 9.7), as e^(y log|x|)
/// carried in double-double (a value as an unevaluated sum hi + lo) where
/// one f64 would lose bits: an error d in y log|x| is a relative error d
/// in the result, and y log|x| reaches 745.
///
/// log|x| (subnormals scaled by 2^54 first): |x| = 2^k m, m in [0.866,
/// 1.2247) with c = 1 or [1.2247, 1.732) with c = 1.5 (fdlibm's two
/// intervals), s = (m - c) / (m + c) in [-0.101, 0.101] as s_hi + s_lo
/// (m - c is exact; the division's remainder m - c - s_hi (m + c), exact
/// by a fused multiply-add and m + c's rounding error from a two-sum, gives
/// s_lo), log(m / c) = 2 atanh(s) = 2s + 2/3 s^3 (both in double-double)
/// + s^5 (2/5 + 2/7 s^2 + ... + 2/21 s^16) (truncation below 2^-77
/// relative; the tail's own rounding, below 2^-68), plus log c and k ln 2
/// (ln2_hi has 32 significant bits, so k ln2_hi is exact), summed by
/// two-sums into hi + lo (about 2^-67 relative).
///
/// t = y log|x| = t_hi + t_lo (the product's error by a fused
/// multiply-add), clamped to [-746, 710] (the result is 0 or inf beyond);
/// n = roundeven(t_hi / ln 2), r = t_hi - n ln2_hi exactly, plus t_lo - n
/// ln2_lo: r_hi + r_lo, |r_hi| <= 0.35; e^r = 1 + r_hi + r_hi^2/2 (the
/// square exact) + r_hi^3 (1/6 + ... + r_hi^11/14!) + r_lo (1 + r_hi),
/// its leading terms summed exactly and the result rounded once, then
/// times 2^n as two exact powers of two as in ExpandExpF64 (a subnormal
/// result rounds a second time there: within one unit of the least
/// subnormal). Within 0.52 ulp of the exact power over the test's sweep
/// (against long double's powl). Special cases as C's
/// (F64Math::powSpecialCases).
struct ExpandPowF64 : OpRewritePattern<math::PowFOp> {
  using OpRewritePattern::OpRewritePattern;

  /// log(1.5) and 2/3 in two parts each (from 60-digit decimals).
  static constexpr double kLog15Hi = 0x1.9f323ecbf984cp-2;
  static constexpr double kLog15Lo = -0x1.a92e513217f5cp-59;
  static constexpr double kTwoThirdsHi = 0.6666666666666666;
  static constexpr double kTwoThirdsLo = 3.700743415417188e-17;

  /// log|x| as {hi, lo} for finite nonzero x.
  static std::pair<Value, Value> logTwoParts(F64Math &m, Value ax) {
    using P = arith::CmpFPredicate;
    ImplicitLocOpBuilder &b = m.b;
    auto i64 = [&](int64_t v) { return m.integer(v); };
    auto [bits, k] = m.exponentBits(ax);
    Value one = arith::BitcastOp::create(
        b, m.f64,
        arith::OrIOp::create(
            b, arith::AndIOp::create(b, bits, i64((int64_t(1) << 52) - 1)),
            i64(int64_t(1023) << 52)));
    // m in [1, 2): from sqrt(3) up halved (k + 1), c = 1.5 from sqrt(1.5)
    // to sqrt(3).
    Value high = m.cmp(P::OGE, one, m.real(1.7320508075688772));
    Value mantissa = m.select(high, m.mul(one, m.real(0.5)), one);
    Value dk =
        m.toReal(arith::AddIOp::create(b, k, m.select(high, i64(1), i64(0))));
    Value middle = m.cmp(P::OGE, mantissa, m.real(1.2247448713915889));
    Value c = m.select(middle, m.real(1.5), m.real(1.0));

    // s = (m - c) / (m + c) as s_hi + s_lo.
    Value f = m.sub(mantissa, c);
    auto [d, dError] = m.twoSum(mantissa, c);
    Value sHi = arith::DivFOp::create(b, f, d);
    Value remainder =
        m.sub(m.fma(arith::NegFOp::create(b, sHi), d, f), m.mul(sHi, dError));
    Value sLo = arith::DivFOp::create(b, remainder, d);

    // 2/3 s^3 as v + vLo: s_hi^3 exactly to double-double, 3 s_hi^2 s_lo.
    auto [sq, sqError] = m.twoProduct(sHi, sHi);
    auto [cube, cubeError] = m.twoProduct(sq, sHi);
    cubeError = m.add(cubeError, m.add(m.mul(sHi, sqError),
                                       m.mul(m.real(3.0), m.mul(sq, sLo))));
    auto [v, vError] = m.twoProduct(cube, m.real(kTwoThirdsHi));
    vError = m.add(vError, m.add(m.mul(cube, m.real(kTwoThirdsLo)),
                                 m.mul(cubeError, m.real(kTwoThirdsHi))));
    // s^5 (2/5 + 2/7 s^2 + ...).
    Value tail = m.real(2.0 / 21);
    for (int odd = 19; odd >= 5; odd -= 2)
      tail = m.fma(tail, sq, m.real(2.0 / odd));
    tail = m.mul(m.mul(cube, sq), tail);

    // k ln2_hi + log c_hi + 2 s_hi + v, each sum exact, then the rest.
    Value logCHi = m.select(middle, m.real(kLog15Hi), m.real(0.0));
    Value logCLo = m.select(middle, m.real(kLog15Lo), m.real(0.0));
    auto [h1, e1] = m.twoSum(m.mul(dk, m.real(kLn2Hi)), logCHi);
    auto [h2, e2] = m.twoSum(h1, m.mul(m.real(2.0), sHi));
    auto [h3, e3] = m.twoSum(h2, v);
    Value rest =
        m.add(m.add(m.add(e1, e2), m.add(e3, m.mul(m.real(2.0), sLo))),
              m.add(m.add(vError, tail), m.fma(dk, m.real(kLn2Lo), logCLo)));
    return m.twoSum(h3, rest);
  }

  LogicalResult matchAndRewrite(math::PowFOp op,
                                PatternRewriter &rewriter) const override {
    if (!getElementTypeOrSelf(op.getType()).isF64() || keepPow(op))
      return failure();
    using P = arith::CmpFPredicate;
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    F64Math m(b, op.getType());
    Value x = op.getLhs(), y = op.getRhs();
    Value ax = math::AbsFOp::create(b, x);

    // Zeros, infinities and NaNs take a finite stand-in (the special
    // cases below replace their results), except that log|x| = -inf or
    // inf makes t clamp to the right end.
    Value finiteNonzero =
        m.both(m.cmp(P::ONE, ax, m.real(0.0)), m.cmp(P::ONE, ax, m.real(kInf)));
    auto [logHi, logLo] =
        logTwoParts(m, m.select(finiteNonzero, ax, m.real(2.0)));
    logHi = m.select(m.cmp(P::OEQ, ax, m.real(0.0)), m.real(-kInf), logHi);
    logHi = m.select(m.cmp(P::OEQ, ax, m.real(kInf)), m.real(kInf), logHi);
    logLo = m.select(finiteNonzero, logLo, m.real(0.0));

    // t = y log|x| as tHi + tLo, clamped (a NaN product: any, replaced).
    auto [tHi, tProductError] = m.twoProduct(y, logHi);
    Value tLo = m.fma(y, logLo, tProductError);
    auto [clamped, n] = reduceExpArgument(m, tHi);
    tLo = m.select(m.cmp(P::OEQ, clamped, tHi), tLo, m.real(0.0));

    // r = t - n ln 2 as rHi + rLo.
    Value minusN = arith::NegFOp::create(b, n);
    auto [rHi, rLo] = m.twoSum(m.fma(minusN, m.real(kLn2Hi), clamped),
                               m.fma(minusN, m.real(kLn2Lo), tLo));

    // e^r = 1 + rHi + rHi^2/2 + rHi^3 q(rHi) + rLo (1 + rHi).
    Value q = m.real(1.0 / 87178291200.0); // 1/14!
    double factorial = 87178291200.0;
    for (int k = 13; k >= 3; --k) {
      factorial /= k + 1;
      q = m.fma(q, rHi, m.real(1.0 / factorial));
    }
    auto [square, squareError] = m.twoProduct(rHi, rHi);
    auto [s1, f1] = m.twoSum(m.real(1.0), rHi);
    auto [s2, f2] = m.twoSum(s1, m.mul(square, m.real(0.5)));
    Value low =
        m.add(m.add(f1, f2),
              m.fma(squareError, m.real(0.5),
                    m.fma(m.mul(square, rHi), q, m.fma(rLo, rHi, rLo))));
    Value result = m.timesPowerOfTwo(m.add(s2, low), n);
    rewriter.replaceOp(op, m.powSpecialCases(x, y, result));
    return success();
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
    Value x = operands[0];
    auto [exponent, logM] = m.logParts(x);
    return m.logSpecialCases(x, m.fma(exponent, m.real(kLn2), logM));
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
struct ExpandExpF64 : F64Pattern<math::ExpOp> {
  using F64Pattern::F64Pattern;

  Value compute(F64Math &m, Value x) const override {
    ImplicitLocOpBuilder &b = m.b;
    auto [clamped, n] = reduceExpArgument(m, x);
    Value minusN = arith::NegFOp::create(b, n);
    Value r = m.fma(minusN, m.real(kLn2Hi), clamped);
    r = m.fma(minusN, m.real(kLn2Lo), r);
    // Horner's rule to the 1 (measured against glibc's exp over 1.2M points
    // of its range: 6% of results 1 ulp away, none further; rounding 1 + (r
    // + r^2 q(r)) last instead: 9%).
    Value result = m.timesPowerOfTwo(m.expTaylor(r, 13), n);
    return m.select(m.isNaN(x), x, result);
  }
};

/// f32 exp(x), vectorizable: Cephes' expf as MLIR's approximation has it
/// (x clamped to [-87.8, 88.8], n = round(x log2 e) clamped to at most 127,
/// r = x - n ln 2 by two fused multiply-adds with ln 2 split in two, e^r =
/// 1 + r + r^2 p(r) with p of degree 5, within 2^-22.5 relative; times 2^n,
/// 0 for n = -127: results below 2^-126 flush to 0), in fewer operations.
/// n and 2^n come from one fused multiply-add, t = x log2 e + (1.5 * 2^23 +
/// 127): at 1.5 * 2^23 an f32's spacing is 1, so t is n + 1.5 * 2^23 + 127
/// exactly, n rounded to nearest from the exact product (MLIR floors x log2
/// e + 0.5, itself rounded first); n + 127, in [0, 254], is then the low
/// bits of t's, and 2^n their shift into the exponent field. MLIR's version
/// rounds with a floor, clamps n from below as well (never reached: x >=
/// -87.8 gives n >= -127) and builds 2^n from an f32 -> i32 conversion, a
/// shift and an add. A NaN x gives a NaN r, so a NaN result (whatever 2^n
/// is made of: no conversion, no poison). The same accuracy (max 4.59 ulp
/// over [-87.3, 88.7] either way); 1 thread, rows in L2: exp of 16x4096 f32
/// 9 -> 7 us, softmax 23 -> 20 us (alternating runs; from memory, 4096x4096,
/// both unchanged: memory bounds them). The formula is the same scalar and
/// vectorized: fused and unfused code give the same bits.
struct ExpandExpF32 : OpRewritePattern<math::ExpOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::ExpOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    F64Math m(b, type); // its splat, fma, select and arithmetic, on f32 here
    Type i32 = m.like(b.getI32Type());
    constexpr float kShift = 0x1.8p23f + 127.0f;
    Value x = m.clampF32(arith::CmpFPredicate::UGE, op.getOperand(), -87.8f);
    x = m.clampF32(arith::CmpFPredicate::ULE, x, 88.8f);
    Value t = m.fma(x, m.f32(1.44269504088896341f), m.f32(kShift));
    t = m.clampF32(arith::CmpFPredicate::ULE, t, kShift + 127.0f);
    Value n = m.sub(t, m.f32(kShift));
    Value r = m.fma(m.f32(-0.693359375f), n, x);
    r = m.fma(m.f32(2.12194440e-4f), n, r);
    Value z = m.fma(r, m.f32(1.9875691500e-4f), m.f32(1.3981999507e-3f));
    for (float c : {8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                    5.0000001201e-1f})
      z = m.fma(z, r, m.f32(c));
    z = m.add(m.f32(1.0f), m.fma(z, m.mul(r, r), r));
    Value bits = arith::ShLIOp::create(b, arith::BitcastOp::create(b, i32, t),
                                       m.splat(i32, b.getI32IntegerAttr(23)));
    rewriter.replaceOp(op, m.mul(z, arith::BitcastOp::create(b, type, bits)));
    return success();
  }
};

/// f32 erf(x) as x P(x^2) / Q(x^2), x clamped to [-4, 4] (where erf rounds
/// to +-1 in f32), P of degree 6 and Q of degree 5 in x^2: one rational
/// function, fitted for this pass by weighted least squares on relative
/// error over [0, 4] (Sanathanan-Koerner iteration, in f64: within 4.6e-9
/// of erf before rounding), evaluated by fused multiply-adds in f32. Within
/// 6 ulp of float64's erf over a dense sweep of [-6, 6] (the worst near
/// |x| = 3.3-3.8, where the sums reach about 35), the result clamped to
/// [-1, 1]. About 18 operations and one
/// division, where MLIR's approximation (three intervals of degree-4
/// rationals whose coefficients are selected per element) takes twice as
/// many: erf of 4M floats at 1 thread 4.2-8.6 -> 2.3-2.6 ms; GELU (erf) of
/// 16M 15.7 -> 10.0 ms, 79% of copy bandwidth (PyTorch 17-21 ms). erf is
/// odd and the polynomials even, so the sign of -0 is kept; NaN passes the
/// clamps and propagates.
struct ExpandErfF32 : OpRewritePattern<math::ErfOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::ErfOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    F64Math m(b, type); // its splat, fma, select and arithmetic, on f32 here
    auto horner = [&](Value z, ArrayRef<float> c) {
      Value sum = m.f32(c.back());
      for (size_t i = c.size() - 1; i-- > 0;)
        sum = m.fma(sum, z, m.f32(c[i]));
      return sum;
    };
    Value x = m.clampF32(arith::CmpFPredicate::UGE, op.getOperand(), -4.0f);
    x = m.clampF32(arith::CmpFPredicate::ULE, x, 4.0f);
    Value s = m.mul(x, x);
    Value p = horner(s, {1.128379226e+00f, 1.851451993e-01f, 5.430596322e-02f,
                         3.846890759e-03f, 3.794218355e-04f, 4.680582606e-06f,
                         -1.317345344e-08f});
    Value q = horner(s, {1.000000000e+00f, 4.974140823e-01f, 1.139315665e-01f,
                         1.545588765e-02f, 1.306779915e-03f, 6.307307194e-05f});
    // Next to +-4 the rounded quotient can pass +-1 by an ulp: clamped.
    Value erf = arith::DivFOp::create(b, m.mul(x, p), q);
    erf = m.clampF32(arith::CmpFPredicate::UGE, erf, -1.0f);
    rewriter.replaceOp(op, m.clampF32(arith::CmpFPredicate::ULE, erf, 1.0f));
    return success();
  }
};

/// f64 log(x), vectorizable (libm's log is a scalar call per element):
/// fdlibm's algorithm (e_log.c) without its branches. Subnormal inputs are
/// scaled by 2^54 first; x = 2^k (1 + f) with 1 + f in [sqrt(1/2),
/// sqrt(2)); s = f / (2 + f); log(1 + f) = f - s (f - R) or, for f near
/// the ends of its interval, f - (f^2/2 - s (f^2/2 + R)), R a degree-14
/// polynomial in s (fdlibm's Lg1..Lg7, error below 2^-58.45); k ln 2 added
/// with ln 2 split in two (ln2_hi's low bits are zero, so k ln2_hi is
/// exact). Both forms are computed and one selected, as fdlibm's branch
/// would. Within 0.9 ulp of the exact log (measured against long double
/// over 4M points; glibc's: 0.52). log(+-0) = -inf, log(x < 0) = NaN,
/// log(inf) = inf, NaN propagates.
struct ExpandLogF64 : F64Pattern<math::LogOp> {
  using F64Pattern::F64Pattern;

  Value compute(F64Math &m, Value x) const override {
    ImplicitLocOpBuilder &b = m.b;
    auto i64 = [&](int64_t v) { return m.integer(v); };
    auto shr = [&](Value v, int64_t n) {
      return arith::ShRSIOp::create(b, v, i64(n));
    };
    auto addI = [&](Value l, Value r) {
      return arith::AddIOp::create(b, l, r);
    };
    auto sub = [&](Value l, Value r) { return arith::SubFOp::create(b, l, r); };

    auto [bits, k] = m.exponentBits(x);
    Value fraction =
        arith::AndIOp::create(b, bits, i64((int64_t(1) << 52) - 1));
    // Mantissas from sqrt(2) up are halved (exponent 0x3fe instead of
    // 0x3ff) and k incremented: fdlibm's (hx + 0x95f64) & 0x100000.
    Value halve = arith::AndIOp::create(
        b, addI(fraction, i64(int64_t(0x95f64) << 32)), i64(int64_t(1) << 52));
    Value mantissa = arith::BitcastOp::create(
        b, m.f64,
        arith::OrIOp::create(
            b, fraction,
            arith::XOrIOp::create(b, halve, i64(int64_t(0x3ff) << 52))));
    k = addI(k, shr(halve, 52));

    Value f = m.add(mantissa, m.real(-1.0));
    Value s = arith::DivFOp::create(b, f, m.add(f, m.real(2.0)));
    Value dk = m.toReal(k);
    Value z = m.mul(s, s);
    Value w = m.mul(z, z);
    auto horner = [&](Value v, std::initializer_list<double> coefficients) {
      Value acc;
      for (double c : llvm::reverse(coefficients))
        acc = acc ? m.add(m.real(c), m.mul(v, acc)) : m.real(c);
      return acc;
    };
    // fdlibm's Lg1..Lg7: odd and even terms in w = s^4.
    Value t1 =
        m.mul(w, horner(w, {3.999999999940941908e-01, 2.222219843214978396e-01,
                            1.531383769920937332e-01}));
    Value t2 = m.mul(
        z, horner(w, {6.666666666666735130e-01, 2.857142874366239149e-01,
                      1.818357216161805012e-01, 1.479819860511658591e-01}));
    Value r = m.add(t2, t1);
    Value hfsq = m.mul(m.mul(m.real(0.5), f), f);
    Value kHi = m.mul(dk, m.real(kLn2Hi));
    Value kLo = m.mul(dk, m.real(kLn2Lo));
    Value nearEnds =
        sub(kHi, sub(sub(hfsq, m.add(m.mul(s, m.add(hfsq, r)), kLo)), f));
    Value inside = sub(kHi, sub(sub(m.mul(s, sub(f, r)), kLo), f));
    // fdlibm's (hx - 0x6147a) | (0x6b851 - hx) > 0 on the fraction's high
    // 20 bits.
    Value high = shr(fraction, 32);
    Value useNearEnds = m.both(
        arith::CmpIOp::create(b, arith::CmpIPredicate::sge, high, i64(0x6147a)),
        arith::CmpIOp::create(b, arith::CmpIPredicate::sle, high,
                              i64(0x6b851)));
    return m.logSpecialCases(x, m.select(useNearEnds, nearEnds, inside));
  }
};

/// f64 tanh(x), vectorizable (libm's is a scalar call per element, 2.9x
/// slower than PyTorch's): for |x| < 0.75 its Taylor series x + a_1 x^3 +
/// ... + a_25 x^51 (truncation below 2^-60 relative; the a_k from the
/// recurrence (2k + 1) a_k = -sum a_i a_(k-1-i), a_0 = 1, of tanh' = 1 -
/// tanh^2, in long double); beyond, 1 - 2 / (e^(2|x|) + 1) with the f64 exp
/// above (2 / (e^(2|x|) + 1) <= 0.32 there, so exp's error shrinks in the
/// subtraction). The sign is x's, zeros included. Within 1.04 ulp of the
/// exact tanh (measured against long double over 4M points; glibc's:
/// 2.15). tanh(+-inf) = +-1; NaN propagates.
struct ExpandTanhF64 : F64Pattern<math::TanhOp> {
  using F64Pattern::F64Pattern;

  static constexpr int kTerms = 26;
  static constexpr double kSeriesBound = 0.75;

  static const std::array<double, kTerms> &coefficients() {
    static const std::array<double, kTerms> table = [] {
      std::array<long double, kTerms> a{};
      a[0] = 1;
      for (int k = 1; k < kTerms; ++k) {
        long double sum = 0;
        for (int i = 0; i < k; ++i)
          sum += a[i] * a[k - 1 - i];
        a[k] = -sum / (2 * k + 1);
      }
      std::array<double, kTerms> rounded;
      for (int k = 0; k < kTerms; ++k)
        rounded[k] = static_cast<double>(a[k]);
      return rounded;
    }();
    return table;
  }

  Value compute(F64Math &m, Value x) const override {
    ImplicitLocOpBuilder &b = m.b;
    Value ax = math::AbsFOp::create(b, x);

    const std::array<double, kTerms> &a = coefficients();
    Value z = m.mul(x, x);
    Value series = m.real(a[kTerms - 1]);
    for (int k = kTerms - 2; k >= 1; --k)
      series = m.fma(series, z, m.real(a[k]));
    Value small = m.fma(m.mul(x, z), series, x);

    // math.exp here becomes ExpandExpF64's expansion in the same rewrite.
    Value e = math::ExpOp::create(b, m.mul(m.real(2.0), ax));
    Value large = arith::SubFOp::create(
        b, m.real(1.0),
        arith::DivFOp::create(b, m.real(2.0), m.add(e, m.real(1.0))));
    Value result =
        m.select(m.cmp(arith::CmpFPredicate::OLT, ax, m.real(kSeriesBound)),
                 small, large);
    return math::CopySignOp::create(b, result, x);
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
      if (isa<math::ExpOp, math::TanhOp, math::PowFOp, math::LogOp,
              math::ErfOp>(op))
        mathOps.push_back(op);
    });
    RewritePatternSet patterns(context);
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == "tanh" || name == "math.tanh";
    });
    patterns.add<ExpandErfF32, ExpandPowF32, ExpandPowF64, ExpandLogF32,
                 ExpandExpF32, ExpandExpF64, ExpandLogF64, ExpandTanhF64>(
        context);
    if (failed(applyOpPatternsGreedily(mathOps, std::move(patterns), config)))
      return signalPassFailure();
  }
};
} // namespace
