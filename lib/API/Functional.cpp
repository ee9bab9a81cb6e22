//===- Functional.cpp - More PyTorch functions written with Kiln's ops ----===//
//
// Predicates and logical functions (isnan, isinf, isfinite, logical_*,
// any, all, sign, nan_to_num), pointwise math (reciprocal, square, log1p,
// expm1, lerp, addcmul, addcdiv), activations (softplus, elu, selu, celu,
// gelu, hardtanh, relu6, hardsigmoid, hardswish, mish, logsigmoid,
// softsign), losses and similarities (smooth_l1_loss, huber_loss, kl_div,
// cosine_similarity, normalize), shape and matrix functions (flip, roll,
// repeat, tile, tril, triu, eye, outer, dot, mv, mm, bmm, addmm), and
// shrinkage, gating and margin functions (softmin, hardshrink, softshrink,
// tanhshrink, threshold, glu, margin_ranking_loss, hinge_embedding_loss,
// soft_margin_loss, poisson_nll_loss, multilabel_soft_margin_loss,
// pairwise_distance, triplet_margin_loss, trace).
//
// Like Composite.cpp: each checks its arguments as PyTorch does, at the
// caller's location, and records ops of ops.md through the public
// functions of Ops.cpp, following PyTorch's own formula (its CPU kernel or
// reference) so values agree to the rounding of the ops, and gradients
// follow from the ops' rules. Where a rule would differ from PyTorch's
// gradient (hardtanh's bounds, the piece NaN takes, an infinity in a piece a
// where does not select), the formula is written so that it does not.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln {

using namespace detail;

namespace {

Tensor boolScalar(bool value, SourceLocation where) {
  return full({}, value ? 1.0 : 0.0, DType::Bool, where);
}

/// PyTorch refuses a bool `x` (`what`: "inputs", "operands", "targets")
/// in `fn`: an error naming it.
void refuseBool(const char *fn, const Tensor &x, const char *what,
                SourceLocation where) {
  if (x.dtype() == DType::Bool)
    throw Error(std::string(fn) + ": bool " + what +
                    " are not supported (as in PyTorch)",
                where);
}

/// PyTorch's truth value of each element (x != 0; NaN is true): a bool
/// tensor as it is.
Tensor truth(const char *fn, const Tensor &x, SourceLocation where) {
  requireDefined(fn, x, where);
  if (x.dtype() == DType::Bool)
    return x;
  return ne(x, scalarLike(0, x, where), where);
}

/// `x` in float32 when it is an integer or bool tensor (PyTorch's
/// int-to-float promotion of log1p, expm1 and the like).
Tensor asFloat(const char *fn, const Tensor &x, SourceLocation where) {
  requireDefined(fn, x, where);
  return isFloat(x.dtype()) ? x : cast(x, DType::Float32, where);
}

/// A number in `x`'s float dtype, rounded as PyTorch rounds a kernel's
/// double coefficient (to float for float32).
double coefficient(double value, const Tensor &x) {
  return x.dtype() == DType::Float32
             ? static_cast<double>(static_cast<float>(value))
             : value;
}

/// A number PyTorch converts to `x`'s dtype before its kernel uses it:
/// rounded for a float x (coefficient), truncated toward 0 for an integer
/// one.
Scalar numberIn(double value, const Tensor &x) {
  return isFloat(x.dtype()) ? Scalar(coefficient(value, x))
                            : Scalar(static_cast<int64_t>(std::trunc(value)));
}

/// log(1 + x) to about an ulp where 1 + x rounds (|x| small): log(v) -
/// ((v - 1) - x) / v with v = 1 + x, the first-order correction of the
/// rounding of v. Its gradient is 1/v up to that correction's (a Kahan
/// quotient x / (v - 1) would carry rounding noise into the gradient).
/// Beyond |x| <= 0.5 the correction is not needed (nor valid at x = -1 or
/// an infinity): log(1 + x) there, the branch reading x clamped so that
/// neither branch computes an infinity the other's gradient would meet.
Tensor log1pOf(const Tensor &x, SourceLocation where) {
  Tensor one = scalarLike(1.0, x, where);
  Tensor small = clamp(x, -0.5, 0.5, where);
  Tensor v = add(one, small, where);
  Tensor corrected =
      sub(log(v, where), div(sub(sub(v, one, where), small, where), v, where),
          where);
  Tensor inRange = le(abs(x, where), scalarLike(0.5, x, where), where);
  return kiln::where(inRange, corrected, log(add(one, x, where), where), where);
}

/// exp(x) - 1 to about an ulp for small |x|: (u - 1) + u * (x - log(u))
/// with u = exp(x) (log(u) - x is exp's rounding); exp(x) - 1 beyond
/// |x| <= 0.5, where it loses nothing.
Tensor expm1Of(const Tensor &x, SourceLocation where) {
  Tensor one = scalarLike(1.0, x, where);
  Tensor small = clamp(x, -0.5, 0.5, where);
  Tensor u = exp(small, where);
  Tensor corrected =
      add(sub(u, one, where), mul(u, sub(small, log(u, where), where), where),
          where);
  Tensor inRange = le(abs(x, where), scalarLike(0.5, x, where), where);
  return kiln::where(inRange, corrected, sub(exp(x, where), one, where), where);
}

/// log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)). Its
/// gradient is sigmoid(x), also at 0 (maximum's tie gives half).
Tensor log1pExp(const Tensor &x, SourceLocation where) {
  return add(maximum(x, scalarLike(0.0, x, where), where),
             log1pOf(exp(neg(abs(x, where), where), where), where), where);
}

/// PyTorch's elu kernel: x * scale where x > 0, else (exp(x * inputScale)
/// - 1) * negcoef (exp(x) - 1, not expm1, as PyTorch's CPU kernel).
Tensor eluFormula(const Tensor &x, double negcoef, double scale,
                  double inputScale, SourceLocation where) {
  // The negative branch reads min(x, 0): at x = +inf its exp would be
  // infinite, and the zero gradient where does not select it, times that
  // infinity, NaN (PyTorch's gradient there is `scale`).
  Tensor nonPositive = clamp(x, std::nullopt, 0.0, where);
  Tensor scaled =
      inputScale == 1.0
          ? nonPositive
          : mul(nonPositive, scalarLike(inputScale, x, where), where);
  Tensor negative =
      mul(sub(exp(scaled, where), scalarLike(1.0, x, where), where),
          scalarLike(negcoef, x, where), where);
  Tensor positive =
      scale == 1.0 ? x : mul(x, scalarLike(scale, x, where), where);
  // x <= 0 as PyTorch tests it: NaN takes the positive piece (and its
  // gradient, `scale`, times the NaN upstream).
  return kiln::where(le(x, scalarLike(0.0, x, where), where), negative,
                     positive, where);
}

/// The values of `x` in [lo, hi] (clamp's values), with PyTorch's
/// hardtanh gradient: the upstream one strictly inside (lo, hi), 0 at the
/// bounds, beyond them and at NaN (PyTorch's vectorized kernel masks with
/// lo < x < hi; its scalar tail passes NaN's gradient, so the vector path's
/// answer, which most elements get, is the one kept). NaN's value comes
/// through x * 0, whose gradient is 0.
Tensor hardClamp(const Tensor &x, double lo, double hi, SourceLocation where) {
  Tensor low = scalarLike(lo, x, where);
  Tensor high = scalarLike(hi, x, where);
  Tensor inside = logical_and(gt(x, low, where), lt(x, high, where), where);
  Tensor outside =
      kiln::where(le(x, low, where), low,
                  kiln::where(ge(x, high, where), high,
                              mul(x, scalarLike(0.0, x, where), where), where),
                  where);
  return kiln::where(inside, x, outside, where);
}

/// smooth_l1_loss's and huber_loss's pieces: 0.5 d^2 (divided by `bound`
/// when `divide`) where |d| = z < bound, else `linearPart`. The quadratic
/// piece reads d where it is selected and 0 elsewhere, so that no infinity
/// meets its zero gradient; NaN selects it (z >= bound is false), so that
/// the gradient there is NaN, as PyTorch's backward (which multiplies by
/// d) gives. 0.5 d d has the bits of PyTorch's 0.5 |d| |d|.
Tensor quadraticOrLinear(const Tensor &d, const Tensor &z, double bound,
                         bool divide, const Tensor &linearPart,
                         SourceLocation where) {
  Tensor limit = scalarLike(bound, z, where);
  Tensor beyond = ge(z, limit, where);
  Tensor ds = kiln::where(beyond, scalarLike(0.0, d, where), d, where);
  Tensor quadratic = mul(mul(scalarLike(0.5, d, where), ds, where), ds, where);
  if (divide)
    quadratic = div(quadratic, limit, where);
  return kiln::where(beyond, linearPart, quadratic, where);
}

/// Two operands of a matrix product: defined, of one dtype (PyTorch does
/// not promote in dot, mv, mm, bmm), of the given ranks.
void checkProduct(const char *fn, const Tensor &a, int64_t rankA,
                  const Tensor &b, int64_t rankB, SourceLocation where) {
  requireDefined(fn, a, where);
  requireDefined(fn, b, where);
  if (a.dim() != rankA || b.dim() != rankB)
    throw Error(std::string(fn) + ": expects " + std::to_string(rankA) +
                    "-D and " + std::to_string(rankB) + "-D tensors, got " +
                    std::to_string(a.dim()) + "-D and " +
                    std::to_string(b.dim()) + "-D",
                where);
  if (a.dtype() != b.dtype())
    throw Error(std::string(fn) +
                    ": expects both operands to have the same dtype, got " +
                    dtypeName(a.dtype()) + " and " + dtypeName(b.dtype()),
                where);
  refuseBool(fn, a, "operands", where);
}

/// The shape `a` and `b` broadcast to (the dialect's rule), or an error.
std::vector<int64_t> broadcastShapeOf(const char *fn, const Tensor &a,
                                      const Tensor &b, SourceLocation where) {
  std::optional<llvm::SmallVector<int64_t>> shape =
      broadcastShapes(a.shape(), b.shape());
  if (!shape)
    throw Error(std::string(fn) + ": shapes " + shapeText(a.shape()) + " and " +
                    shapeText(b.shape()) + " do not broadcast",
                where);
  return std::vector<int64_t>(shape->begin(), shape->end());
}

/// `v` divided by its p-norm along `dims` (kept), at least `eps`:
/// F.normalize, and cosine_similarity's two factors.
Tensor dividedByNorm(const Tensor &v, double p,
                     const std::vector<int64_t> &dims, double eps,
                     SourceLocation where) {
  Tensor length =
      clamp(norm(v, p, dims, true, where), eps, std::nullopt, where);
  return div(v, length, where);
}

/// Positions 0..n-1 shaped to stand along dim `d` of a rank-`rank` tensor.
Tensor positionsAlong(int64_t n, int64_t d, int64_t rank,
                      SourceLocation where) {
  std::vector<int64_t> shape(rank, 1);
  shape[d] = n;
  return reshape(arange(n, 0.0, 1.0, DType::Int64, where), shape, where);
}

/// tril (lower) or triu: x where col - row <= diagonal (tril) or >=
/// diagonal (triu) in the last two dims, else 0.
Tensor triangle(const char *fn, const Tensor &x, int64_t diagonal, bool lower,
                SourceLocation where) {
  requireDefined(fn, x, where);
  int64_t rank = x.dim();
  // PyTorch 1.13 returns an empty tensor of fewer dims as it is.
  if (rank < 2 && x.numel() == 0)
    return x;
  if (rank < 2)
    throw Error(std::string(fn) +
                    ": expects a tensor of at least 2 dims, got " +
                    std::to_string(rank),
                where);
  const std::vector<int64_t> &shape = x.shape();
  Tensor rows = positionsAlong(shape[rank - 2], 0, 2, where);
  Tensor cols = positionsAlong(shape[rank - 1], 1, 2, where);
  Tensor offset = sub(cols, rows, where);
  Tensor bound = scalarLike(diagonal, offset, where);
  Tensor keep = lower ? le(offset, bound, where) : ge(offset, bound, where);
  Tensor zero = x.dtype() == DType::Bool ? boolScalar(false, where)
                                         : scalarLike(0, x, where);
  return kiln::where(keep, x, zero, where);
}

} // namespace

//===----------------------------------------------------------------------===//
// Predicates and logical functions
//===----------------------------------------------------------------------===//

Tensor isnan(const Tensor &x, SourceLocation where) {
  requireDefined("isnan", x, where);
  if (!isFloat(x.dtype()))
    return full(x.shape(), 0.0, DType::Bool, where);
  return ne(x, x, where);
}

Tensor isinf(const Tensor &x, SourceLocation where) {
  requireDefined("isinf", x, where);
  if (!isFloat(x.dtype()))
    return full(x.shape(), 0.0, DType::Bool, where);
  return eq(abs(x, where),
            scalarLike(std::numeric_limits<double>::infinity(), x, where),
            where);
}

Tensor isfinite(const Tensor &x, SourceLocation where) {
  requireDefined("isfinite", x, where);
  if (!isFloat(x.dtype()))
    return full(x.shape(), 1.0, DType::Bool, where);
  // x - x is 0 for every finite x, NaN for NaN and the infinities.
  return eq(sub(x, x, where), scalarLike(0.0, x, where), where);
}

Tensor logical_not(const Tensor &x, SourceLocation where) {
  Tensor t = truth("logical_not", x, where);
  return eq(t, boolScalar(false, where), where);
}

Tensor logical_and(const Tensor &a, const Tensor &b, SourceLocation where) {
  Tensor ta = truth("logical_and", a, where);
  Tensor tb = truth("logical_and", b, where);
  return kiln::where(ta, tb, boolScalar(false, where), where);
}

Tensor logical_or(const Tensor &a, const Tensor &b, SourceLocation where) {
  Tensor ta = truth("logical_or", a, where);
  Tensor tb = truth("logical_or", b, where);
  return kiln::where(ta, boolScalar(true, where), tb, where);
}

Tensor logical_xor(const Tensor &a, const Tensor &b, SourceLocation where) {
  Tensor ta = truth("logical_xor", a, where);
  Tensor tb = truth("logical_xor", b, where);
  return ne(ta, tb, where);
}

namespace {
/// any (some element true) or all (none false) over `dims` (empty: all):
/// the count of the elements that decide, an exact int64 sum, compared
/// with 0 (so an empty reduction is false for any, true for all).
Tensor anyOrAll(const char *fn, const Tensor &x, std::vector<int64_t> dims,
                bool keepdim, bool isAny, SourceLocation where) {
  requireDefined(fn, x, where);
  (void)reducedCount(fn, x, dims, where);
  Tensor deciding = isAny ? truth(fn, x, where) : logical_not(x, where);
  if (x.dim() == 0) // dim 0 or -1 of a rank-0 tensor: itself.
    return isAny ? deciding : logical_not(deciding, where);
  Tensor count = sum(cast(deciding, DType::Int64, where), dims, keepdim, where);
  Tensor zero = scalarLike(0, count, where);
  return isAny ? gt(count, zero, where) : eq(count, zero, where);
}
} // namespace

Tensor any(const Tensor &x, SourceLocation where) {
  return anyOrAll("any", x, {}, false, true, where);
}
Tensor any(const Tensor &x, int64_t dim, bool keepdim, SourceLocation where) {
  return anyOrAll("any", x, {dim}, keepdim, true, where);
}
Tensor all(const Tensor &x, SourceLocation where) {
  return anyOrAll("all", x, {}, false, false, where);
}
Tensor all(const Tensor &x, int64_t dim, bool keepdim, SourceLocation where) {
  return anyOrAll("all", x, {dim}, keepdim, false, where);
}

Tensor sign(const Tensor &x, SourceLocation where) {
  requireDefined("sign", x, where);
  if (x.dtype() == DType::Bool)
    return x;
  // (x > 0) - (x < 0): 0 for zeros and (as PyTorch 1.13's kernel) NaN.
  Tensor zero = scalarLike(0, x, where);
  Tensor s = sub(cast(gt(x, zero, where), x.dtype(), where),
                 cast(lt(x, zero, where), x.dtype(), where), where);
  if (!isFloat(x.dtype()))
    return s;
  // PyTorch differentiates sign (its gradient is 0): a path from x, through
  // a where that always selects s (s == s: s is never NaN).
  return kiln::where(eq(s, s, where), s, x, where);
}

Tensor nan_to_num(const Tensor &x, double nan, std::optional<double> posinf,
                  std::optional<double> neginf, SourceLocation where) {
  requireDefined("nan_to_num", x, where);
  if (!isFloat(x.dtype()))
    return x;
  double largest = x.dtype() == DType::Float32
                       ? std::numeric_limits<float>::max()
                       : std::numeric_limits<double>::max();
  double inf = std::numeric_limits<double>::infinity();
  Tensor replaced =
      kiln::where(eq(x, scalarLike(-inf, x, where), where),
                  scalarLike(neginf.value_or(-largest), x, where), x, where);
  replaced = kiln::where(eq(x, scalarLike(inf, x, where), where),
                         scalarLike(posinf.value_or(largest), x, where),
                         replaced, where);
  return kiln::where(ne(x, x, where), scalarLike(nan, x, where), replaced,
                     where);
}

//===----------------------------------------------------------------------===//
// Pointwise math
//===----------------------------------------------------------------------===//

Tensor reciprocal(const Tensor &x, SourceLocation where) {
  requireDefined("reciprocal", x, where);
  Tensor xf = asFloat("reciprocal", x, where);
  return div(scalarLike(1.0, xf, where), xf, where);
}

Tensor square(const Tensor &x, SourceLocation where) {
  requireDefined("square", x, where);
  // A bool squared is an int64 (PyTorch's pow(x, 2)).
  Tensor y = x.dtype() == DType::Bool ? cast(x, DType::Int64, where) : x;
  return mul(y, y, where);
}

Tensor log1p(const Tensor &x, SourceLocation where) {
  return log1pOf(asFloat("log1p", x, where), where);
}

Tensor expm1(const Tensor &x, SourceLocation where) {
  return expm1Of(asFloat("expm1", x, where), where);
}

Tensor lerp(const Tensor &start, const Tensor &end, const Tensor &weight,
            SourceLocation where) {
  requireFloat("lerp", start, where);
  requireDefined("lerp", end, where);
  requireDefined("lerp", weight, where);
  if (end.dtype() != start.dtype() || weight.dtype() != start.dtype())
    throw Error(std::string("lerp: expects start, end and weight of one "
                            "dtype (as PyTorch), got ") +
                    dtypeName(start.dtype()) + ", " + dtypeName(end.dtype()) +
                    " and " + dtypeName(weight.dtype()),
                where);
  // PyTorch's kernel: start + w * (end - start) where |w| < 0.5, else
  // end - (end - start) * (1 - w), exact at both ends.
  Tensor difference = sub(end, start, where);
  Tensor one = scalarLike(1.0, weight, where);
  Tensor fromStart = add(start, mul(weight, difference, where), where);
  Tensor fromEnd =
      sub(end, mul(difference, sub(one, weight, where), where), where);
  Tensor small = lt(abs(weight, where), scalarLike(0.5, weight, where), where);
  return kiln::where(small, fromStart, fromEnd, where);
}

Tensor lerp(const Tensor &start, const Tensor &end, double weight,
            SourceLocation where) {
  requireFloat("lerp", start, where);
  return lerp(start, end, scalarLike(weight, start, where), where);
}

namespace {
/// addcmul and addcdiv: input + value * tensor1 (op) tensor2 in the three
/// tensors' result type (PyTorch's: `value` takes no part in it, and is
/// truncated for integers; bools are refused).
Tensor addcOp(const char *fn, const Tensor &input, const Tensor &tensor1,
              const Tensor &tensor2, Scalar value, bool divide,
              SourceLocation where) {
  requireDefined(fn, input, where);
  requireDefined(fn, tensor1, where);
  requireDefined(fn, tensor2, where);
  DType common = resultTypeOf({input, tensor1, tensor2});
  if (common == DType::Bool)
    throw Error(std::string(fn) + ": bool tensors are not supported (as in "
                                  "PyTorch)",
                where);
  if (divide && !isFloat(tensor1.dtype()) && !isFloat(tensor2.dtype()))
    throw Error(std::string(fn) +
                    ": integer division is not supported (as in PyTorch), "
                    "got " +
                    dtypeName(tensor1.dtype()) + " and " +
                    dtypeName(tensor2.dtype()),
                where);
  double v = isFloat(common) ? value.value : std::trunc(value.value);
  Tensor t1 = tensor1.to(common, where);
  Tensor t2 = tensor2.to(common, where);
  // PyTorch's kernel: input + value * tensor1 (op) tensor2.
  Tensor scaled = v == 1.0 ? t1 : mul(full({}, v, common, where), t1, where);
  Tensor term = divide ? div(scaled, t2, where) : mul(scaled, t2, where);
  return add(input.to(common, where), term, where);
}
} // namespace

Tensor addcmul(const Tensor &input, const Tensor &tensor1,
               const Tensor &tensor2, Scalar value, SourceLocation where) {
  return addcOp("addcmul", input, tensor1, tensor2, value, false, where);
}

Tensor addcdiv(const Tensor &input, const Tensor &tensor1,
               const Tensor &tensor2, Scalar value, SourceLocation where) {
  return addcOp("addcdiv", input, tensor1, tensor2, value, true, where);
}

//===----------------------------------------------------------------------===//
// Activations
//===----------------------------------------------------------------------===//

Tensor softplus(const Tensor &x, double beta, double threshold,
                SourceLocation where) {
  requireFloat("softplus", x, where);
  // PyTorch: x where x * beta > threshold, else log1p(exp(x * beta)) /
  // beta (here without exp's overflow for a large threshold).
  Tensor scaled = beta == 1.0 ? x : mul(x, scalarLike(beta, x, where), where);
  Tensor soft = log1pExp(scaled, where);
  if (beta != 1.0)
    soft = div(soft, scalarLike(beta, x, where), where);
  return kiln::where(gt(scaled, scalarLike(threshold, x, where), where), x,
                     soft, where);
}

Tensor elu(const Tensor &x, double alpha, SourceLocation where) {
  requireFloat("elu", x, where);
  return eluFormula(x, coefficient(alpha, x), 1.0, 1.0, where);
}

Tensor selu(const Tensor &x, SourceLocation where) {
  requireFloat("selu", x, where);
  // PyTorch's constants, its negative coefficient alpha * scale computed
  // in the tensor's dtype.
  double alpha = 1.6732632423543772848170429916717;
  double scale = 1.0507009873554804934193349852946;
  double negcoef = x.dtype() == DType::Float32
                       ? static_cast<double>(static_cast<float>(alpha) *
                                             static_cast<float>(scale))
                       : alpha * scale;
  return eluFormula(x, negcoef, coefficient(scale, x), 1.0, where);
}

Tensor celu(const Tensor &x, double alpha, SourceLocation where) {
  requireFloat("celu", x, where);
  if (alpha == 0.0)
    throw Error("celu: alpha must not be 0 (it divides x)", where);
  return eluFormula(x, coefficient(alpha, x), 1.0, coefficient(1.0 / alpha, x),
                    where);
}

Tensor gelu(const Tensor &x, const std::string &approximate,
            SourceLocation where) {
  requireFloat("gelu", x, where);
  if (approximate != "tanh" && approximate != "none")
    throw Error("gelu: approximate must be \"none\" or \"tanh\", got \"" +
                    approximate + "\"",
                where);
  Tensor half = scalarLike(0.5, x, where);
  Tensor one = scalarLike(1.0, x, where);
  if (approximate == "none") {
    // x * 0.5 * (1 + erf(x / sqrt(2))), PyTorch's kernel.
    Tensor scaled = mul(x, scalarLike(M_SQRT1_2, x, where), where);
    return mul(mul(x, half, where), add(one, erf(scaled, where), where), where);
  }
  // PyTorch's kernel: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
  double beta = M_SQRT2 * M_2_SQRTPI * 0.5;
  Tensor cube = mul(mul(x, x, where), x, where);
  Tensor inner = mul(
      scalarLike(beta, x, where),
      add(x, mul(scalarLike(0.044715, x, where), cube, where), where), where);
  return mul(mul(half, x, where), add(one, tanh(inner, where), where), where);
}

Tensor hardtanh(const Tensor &x, double minValue, double maxValue,
                SourceLocation where) {
  requireDefined("hardtanh", x, where);
  refuseBool("hardtanh", x, "inputs", where);
  if (minValue > maxValue)
    throw Error("hardtanh: min_val (" + std::to_string(minValue) +
                    ") must not be greater than max_val (" +
                    std::to_string(maxValue) + ")",
                where);
  // Integers: clamp with the bounds truncated (no gradient to follow).
  if (!isFloat(x.dtype()))
    return clamp(x, std::trunc(minValue), std::trunc(maxValue), where);
  return hardClamp(x, minValue, maxValue, where);
}

Tensor relu6(const Tensor &x, SourceLocation where) {
  return hardtanh(x, 0.0, 6.0, where);
}

Tensor hardsigmoid(const Tensor &x, SourceLocation where) {
  requireFloat("hardsigmoid", x, where);
  // min(max(x + 3, 0), 6) / 6; its gradient 1/6 strictly inside (-3, 3),
  // 0 elsewhere and at NaN (PyTorch's backward tests -3 < x < 3).
  Tensor s = add(x, scalarLike(3.0, x, where), where);
  return div(hardClamp(s, 0.0, 6.0, where), scalarLike(6.0, x, where), where);
}

Tensor hardswish(const Tensor &x, SourceLocation where) {
  requireFloat("hardswish", x, where);
  // PyTorch's x * min(max(x + 3, 0), 6) / 6, piece by piece so that its
  // gradient is PyTorch's everywhere, infinities included: x * 6 / 6
  // above 3 (gradient 1), x * 0 / 6 below -3 (0), and x (x + 3) / 6 on
  // [-3, 3] (x/3 + 1/2, the bounds included), that piece evaluated on x
  // clamped into [-3, 3] so that no infinity meets its zero gradient.
  Tensor six = scalarLike(6.0, x, where);
  Tensor three = scalarLike(3.0, x, where);
  Tensor inside = clamp(x, -3.0, 3.0, where);
  Tensor middle =
      div(mul(inside, add(inside, three, where), where), six, where);
  Tensor high = div(mul(x, six, where), six, where);
  Tensor low = div(mul(x, scalarLike(0.0, x, where), where), six, where);
  Tensor pieces = kiln::where(
      le(x, three, where),
      kiln::where(lt(x, neg(three, where), where), low, middle, where), high,
      where);
  // NaN: PyTorch's vectorized backward, which most elements take, gives
  // the gradient times x / 3 + 1/2, NaN whatever the gradient (its scalar
  // tail passes the gradient; the vector path's answer is the one kept, as
  // for hardtanh). xn * xn, xn = x at NaN and 0 elsewhere, has NaN's value
  // and that gradient, and no infinity meets its zero gradient elsewhere.
  Tensor isNaN = ne(x, x, where);
  Tensor xn = kiln::where(isNaN, x, scalarLike(0.0, x, where), where);
  return kiln::where(isNaN, mul(xn, xn, where), pieces, where);
}

Tensor mish(const Tensor &x, SourceLocation where) {
  requireFloat("mish", x, where);
  return mul(x, tanh(log1pExp(x, where), where), where);
}

Tensor logsigmoid(const Tensor &x, SourceLocation where) {
  requireFloat("logsigmoid", x, where);
  // PyTorch's kernel: min(x, 0) - log1p(exp(-|x|)).
  return sub(minimum(x, scalarLike(0.0, x, where), where),
             log1pOf(exp(neg(abs(x, where), where), where), where), where);
}

Tensor softsign(const Tensor &x, SourceLocation where) {
  requireDefined("softsign", x, where);
  // PyTorch's x / (|x| + 1): abs refuses bools.
  refuseBool("softsign", x, "inputs", where);
  Tensor xf = asFloat("softsign", x, where);
  return div(xf, add(abs(xf, where), scalarLike(1.0, xf, where), where), where);
}

//===----------------------------------------------------------------------===//
// Losses and similarities
//===----------------------------------------------------------------------===//

Tensor smooth_l1_loss(const Tensor &input, const Tensor &target,
                      const std::string &reduction, double beta,
                      SourceLocation where) {
  const char *fn = "smooth_l1_loss";
  checkReduction(fn, reduction, where);
  auto [x, y] = floatOperands(fn, input, target, where);
  if (beta < 0)
    throw Error("smooth_l1_loss: beta must not be negative, got " +
                    std::to_string(beta),
                where);
  Tensor difference = sub(x, y, where);
  Tensor z = abs(difference, where);
  if (beta == 0.0)
    return reduceLoss(z, reduction, where);
  // |d| < beta: 0.5 d^2 / beta, else |d| - 0.5 beta (PyTorch's kernel).
  Tensor linearPart =
      sub(z, scalarLike(coefficient(0.5 * beta, z), z, where), where);
  return reduceLoss(
      quadraticOrLinear(difference, z, beta, true, linearPart, where),
      reduction, where);
}

Tensor huber_loss(const Tensor &input, const Tensor &target,
                  const std::string &reduction, double delta,
                  SourceLocation where) {
  const char *fn = "huber_loss";
  checkReduction(fn, reduction, where);
  auto [x, y] = floatOperands(fn, input, target, where);
  if (!(delta > 0))
    throw Error("huber_loss: delta must be positive, got " +
                    std::to_string(delta),
                where);
  // |d| < delta: 0.5 d^2, else delta (|d| - 0.5 delta).
  Tensor difference = sub(x, y, where);
  Tensor z = abs(difference, where);
  Tensor linearPart = mul(
      scalarLike(delta, z, where),
      sub(z, scalarLike(coefficient(0.5 * delta, z), z, where), where), where);
  // PyTorch writes the elementwise losses into a tensor like the input's
  // (computed in the promoted dtype): a float32 input gives float32.
  Tensor loss =
      quadraticOrLinear(difference, z, delta, false, linearPart, where);
  return reduceLoss(loss.to(input.dtype(), where), reduction, where);
}

Tensor kl_div(const Tensor &input, const Tensor &target,
              const std::string &reduction, bool logTarget,
              SourceLocation where) {
  const char *fn = "kl_div";
  if (reduction != "batchmean")
    checkReduction(fn, reduction, where);
  (void)floatOperands(fn, input, target, where); // a float result type
  // PyTorch's terms, each in its own operands' dtype (exp(t) and t log t
  // in the target's, as there: a float32 target's exp is rounded to
  // float32 before a float64 input meets it).
  const Tensor &x = input, &t = target;
  Tensor pointwise;
  if (logTarget) {
    // exp(t) * (t - x).
    pointwise = mul(exp(t, where), sub(t, x, where), where);
  } else {
    // xlogy(t, t) - t * x: t log t, 0 where t is 0.
    Tensor tLogT = mul(t, log(t, where), where);
    Tensor zero = scalarLike(0.0, tLogT, where);
    tLogT =
        kiln::where(eq(t, scalarLike(0, t, where), where), zero, tLogT, where);
    pointwise = sub(tLogT, mul(t, x, where), where);
  }
  if (reduction != "batchmean")
    return reduceLoss(pointwise, reduction, where);
  // The sum over the batch's size (dim 0; a rank-0 input counts 1).
  double batch = input.dim() == 0 ? 1.0 : static_cast<double>(input.shape()[0]);
  Tensor total = sum(pointwise, {}, false, where);
  return div(total, scalarLike(batch, total, where), where);
}

Tensor cosine_similarity(const Tensor &x1, const Tensor &x2, int64_t dim,
                         double eps, SourceLocation where) {
  const char *fn = "cosine_similarity";
  requireDefined(fn, x1, where);
  requireDefined(fn, x2, where);
  // Integers in float32, as PyTorch's.
  DType common = resultTypeOf({x1, x2});
  if (!isFloat(common))
    common = DType::Float32;
  Tensor a = x1.to(common, where);
  Tensor b = x2.to(common, where);
  // Broadcast first (PyTorch expands both), then each divided by its norm
  // (at least eps) and the products summed along dim.
  std::vector<int64_t> shape = broadcastShapeOf(fn, a, b, where);
  if (a.shape() != shape)
    a = expand(a, shape, where);
  if (b.shape() != shape)
    b = expand(b, shape, where);
  int64_t d = wrapDim(fn, dim, a.dim(), where);
  std::vector<int64_t> dims;
  if (a.dim() > 0)
    dims.push_back(d);
  return sum(mul(dividedByNorm(a, 2.0, dims, eps, where),
                 dividedByNorm(b, 2.0, dims, eps, where), where),
             dims, false, where);
}

Tensor normalize(const Tensor &x, double p, int64_t dim, double eps,
                 SourceLocation where) {
  requireFloat("normalize", x, where);
  int64_t d = wrapDim("normalize", dim, x.dim(), where);
  std::vector<int64_t> dims;
  if (x.dim() > 0)
    dims.push_back(d);
  return dividedByNorm(x, p, dims, eps, where);
}

//===----------------------------------------------------------------------===//
// Shape and matrix functions
//===----------------------------------------------------------------------===//

Tensor flip(const Tensor &x, std::vector<int64_t> dims, SourceLocation where) {
  requireDefined("flip", x, where);
  (void)reducedCount("flip", x, dims, where); // in range, none twice
  Tensor result = x;
  for (int64_t dim : dims) {
    if (x.dim() == 0)
      break;
    int64_t d = wrapDim("flip", dim, x.dim(), where);
    int64_t n = x.shape()[d];
    if (n < 2)
      continue;
    Tensor reversed =
        arange(n, static_cast<double>(n - 1), -1.0, DType::Int64, where);
    result = index_select(result, d, reversed, where);
  }
  return result;
}

Tensor roll(const Tensor &x, std::vector<int64_t> shifts,
            std::vector<int64_t> dims, SourceLocation where) {
  requireDefined("roll", x, where);
  if (shifts.empty())
    throw Error("roll: expects at least one shift", where);
  if (dims.empty()) {
    // The flattened tensor rolled, its shape restored.
    if (shifts.size() != 1)
      throw Error("roll: shifts and dims must align: got " +
                      std::to_string(shifts.size()) + " shifts and no dims",
                  where);
    return reshape(roll(reshape(x, {-1}, where), shifts, {0}, where), x.shape(),
                   where);
  }
  if (shifts.size() != dims.size())
    throw Error("roll: shifts and dims must align: got " +
                    std::to_string(shifts.size()) + " shifts and " +
                    std::to_string(dims.size()) + " dims",
                where);
  Tensor result = x;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrapDim("roll", dims[i], x.dim(), where);
    int64_t n = x.dim() == 0 ? 1 : x.shape()[d];
    if (n < 2 || x.dim() == 0)
      continue;
    int64_t shift = ((shifts[i] % n) + n) % n;
    if (shift == 0)
      continue;
    // Position j reads j - shift, wrapped into [0, n).
    Tensor from =
        arange(n, static_cast<double>(-shift), 1.0, DType::Int64, where);
    Tensor zero = scalarLike(0, from, where);
    from =
        kiln::where(lt(from, zero, where),
                    add(from, scalarLike(n, from, where), where), from, where);
    result = index_select(result, d, from, where);
  }
  return result;
}

Tensor repeat(const Tensor &x, std::vector<int64_t> repeats,
              SourceLocation where) {
  requireDefined("repeat", x, where);
  int64_t rank = x.dim();
  int64_t count = static_cast<int64_t>(repeats.size());
  if (count < rank)
    throw Error("repeat: the number of repeats (" + std::to_string(count) +
                    ") can not be smaller than the number of dims of the "
                    "tensor (" +
                    std::to_string(rank) + ")",
                where);
  for (int64_t r : repeats)
    if (r < 0)
      throw Error("repeat: repeats must not be negative, got " +
                      std::to_string(r),
                  where);
  // x seen as [1, s0, 1, s1, ...] (leading dims of size 1 added), expanded
  // to [r0, s0, r1, s1, ...] and merged pairwise: each dim tiled.
  std::vector<int64_t> sizes(count - rank, 1);
  sizes.insert(sizes.end(), x.shape().begin(), x.shape().end());
  std::vector<int64_t> interleaved, expanded, result;
  for (int64_t i = 0; i < count; ++i) {
    interleaved.insert(interleaved.end(), {1, sizes[i]});
    expanded.insert(expanded.end(), {repeats[i], sizes[i]});
    result.push_back(repeats[i] * sizes[i]);
  }
  (void)elementCount(result, "repeat", where);
  return reshape(expand(reshape(x, interleaved, where), expanded, where),
                 result, where);
}

Tensor tile(const Tensor &x, std::vector<int64_t> reps, SourceLocation where) {
  requireDefined("tile", x, where);
  if (static_cast<int64_t>(reps.size()) < x.dim())
    reps.insert(reps.begin(), x.dim() - reps.size(), 1);
  return repeat(x, reps, where);
}

Tensor tril(const Tensor &x, int64_t diagonal, SourceLocation where) {
  return triangle("tril", x, diagonal, true, where);
}

Tensor triu(const Tensor &x, int64_t diagonal, SourceLocation where) {
  return triangle("triu", x, diagonal, false, where);
}

Tensor eye(int64_t n, int64_t m, DType dtype, SourceLocation where) {
  if (m < 0)
    m = n;
  if (n < 0)
    throw Error("eye: n must be non-negative, got " + std::to_string(n), where);
  (void)elementCount({n, m}, "eye", where);
  return cast(
      eq(positionsAlong(n, 0, 2, where), positionsAlong(m, 1, 2, where), where),
      dtype, where);
}

Tensor outer(const Tensor &a, const Tensor &b, SourceLocation where) {
  requireDefined("outer", a, where);
  requireDefined("outer", b, where);
  if (a.dim() != 1 || b.dim() != 1)
    throw Error("outer: expects two 1-D tensors, got " +
                    std::to_string(a.dim()) + "-D and " +
                    std::to_string(b.dim()) + "-D",
                where);
  return mul(reshape(a, {a.shape()[0], 1}, where), b, where);
}

Tensor dot(const Tensor &a, const Tensor &b, SourceLocation where) {
  checkProduct("dot", a, 1, b, 1, where);
  if (a.shape() != b.shape())
    throw Error("dot: expects tensors of the same size, got " +
                    shapeText(a.shape()) + " and " + shapeText(b.shape()),
                where);
  return matmul(a, b, where);
}

Tensor mv(const Tensor &a, const Tensor &v, SourceLocation where) {
  checkProduct("mv", a, 2, v, 1, where);
  return matmul(a, v, where);
}

Tensor mm(const Tensor &a, const Tensor &b, SourceLocation where) {
  checkProduct("mm", a, 2, b, 2, where);
  return matmul(a, b, where);
}

Tensor bmm(const Tensor &a, const Tensor &b, SourceLocation where) {
  checkProduct("bmm", a, 3, b, 3, where);
  if (a.shape()[0] != b.shape()[0])
    throw Error("bmm: expects the same batch size, got " +
                    shapeText(a.shape()) + " and " + shapeText(b.shape()),
                where);
  return matmul(a, b, where);
}

Tensor addmm(const Tensor &input, const Tensor &a, const Tensor &b, double beta,
             double alpha, SourceLocation where) {
  requireDefined("addmm", input, where);
  checkProduct("addmm", a, 2, b, 2, where);
  if (input.dtype() != a.dtype())
    throw Error(std::string("addmm: expects input of the matrices' dtype, "
                            "got ") +
                    dtypeName(input.dtype()) + " and " + dtypeName(a.dtype()),
                where);
  // PyTorch's beta * input + alpha * (a @ b); beta 0 ignores input (its
  // NaNs too), though it must still broadcast to the product.
  Tensor product = matmul(a, b, where);
  if (broadcastShapeOf("addmm", input, product, where) != product.shape())
    throw Error("addmm: input of shape " + shapeText(input.shape()) +
                    " does not broadcast to the product's shape " +
                    shapeText(product.shape()),
                where);
  // Integer matrices take beta and alpha truncated (PyTorch's; truncated
  // here too, for the tests of 0 and 1 below).
  if (!isFloat(a.dtype())) {
    beta = std::trunc(beta);
    alpha = std::trunc(alpha);
  }
  if (alpha != 1.0)
    product =
        mul(scalarLike(numberIn(alpha, a), product, where), product, where);
  Tensor result;
  if (beta == 0.0)
    result = kiln::where(boolScalar(true, where), product, input, where);
  else if (beta == 1.0)
    result = add(input, product, where);
  else
    result = add(mul(scalarLike(numberIn(beta, a), input, where), input, where),
                 product, where);
  return result;
}

//===----------------------------------------------------------------------===//
// Shrinkage, gating and margin functions
//===----------------------------------------------------------------------===//

Tensor softmin(const Tensor &x, int64_t dim, SourceLocation where) {
  requireFloat("softmin", x, where);
  // F.softmin: (-x).softmax(dim).
  return softmax(neg(x, where), dim, where);
}

Tensor hardshrink(const Tensor &x, double lambd, SourceLocation where) {
  requireFloat("hardshrink", x, where);
  // PyTorch's kernel: x outside [-lambd, lambd], else +0; NaN stays NaN.
  // Its vectorized backward, which most elements take, passes the gradient
  // outside the bounds only: 0 at NaN (its scalar tail would pass it; the
  // vector path's answer is the one kept, as for hardtanh). floor(x) -
  // floor(x) is +0 inside and NaN at NaN, with floor's zero gradient.
  double l = coefficient(lambd, x);
  Tensor outside = logical_or(lt(x, scalarLike(-l, x, where), where),
                              gt(x, scalarLike(l, x, where), where), where);
  Tensor f = floor(x, where);
  return kiln::where(outside, x, sub(f, f, where), where);
}

Tensor softshrink(const Tensor &x, double lambd, SourceLocation where) {
  requireFloat("softshrink", x, where);
  if (!(lambd >= 0))
    throw Error("softshrink: lambda must be greater or equal to 0, got " +
                    std::to_string(lambd),
                where);
  // PyTorch's kernel: x > l ? x - l : (x < -l ? x + l : 0) -- NaN gives 0
  // (and the vectorized backward a zero gradient there, as hardshrink's).
  double l = coefficient(lambd, x);
  Tensor low = scalarLike(-l, x, where), high = scalarLike(l, x, where);
  return kiln::where(gt(x, high, where), sub(x, high, where),
                     kiln::where(lt(x, low, where), add(x, high, where),
                                 scalarLike(0.0, x, where), where),
                     where);
}

Tensor tanhshrink(const Tensor &x, SourceLocation where) {
  requireDefined("tanhshrink", x, where);
  refuseBool("tanhshrink", x, "inputs", where);
  // F.tanhshrink: x - x.tanh() (an integer x promotes to float32).
  Tensor xf = asFloat("tanhshrink", x, where);
  return sub(xf, tanh(xf, where), where);
}

Tensor threshold(const Tensor &x, double threshold, double value,
                 SourceLocation where) {
  requireDefined("threshold", x, where);
  refuseBool("threshold", x, "inputs", where);
  // x <= threshold ? value : x, both numbers in x's dtype (truncated for
  // integers, as PyTorch converts them); NaN keeps x and its gradient.
  return kiln::where(le(x, scalarLike(numberIn(threshold, x), x, where), where),
                     scalarLike(numberIn(value, x), x, where), x, where);
}

Tensor glu(const Tensor &x, int64_t dim, SourceLocation where) {
  requireFloat("glu", x, where);
  if (x.dim() == 0)
    throw Error("glu: does not support scalars because halving size must "
                "be even",
                where);
  int64_t d = wrapDim("glu", dim, x.dim(), where);
  int64_t size = x.shape()[d];
  if (size % 2 != 0)
    throw Error("glu: halving dimension must be even, but dimension " +
                    std::to_string(d) + " is size " + std::to_string(size),
                where);
  // The first half gated by the sigmoid of the second.
  Tensor a = narrow(x, d, 0, size / 2, where);
  Tensor b = narrow(x, d, size / 2, size / 2, where);
  return mul(a, sigmoid(b, where), where);
}

namespace {
/// PyTorch's check that a loss's inputs have one rank.
void requireSameRank(const char *fn, const std::vector<Tensor> &xs,
                     SourceLocation where) {
  for (const Tensor &x : xs)
    requireDefined(fn, x, where);
  for (const Tensor &x : xs)
    if (x.dim() != xs.front().dim()) {
      std::string ranks;
      for (const Tensor &y : xs)
        ranks += (ranks.empty() ? "" : ", ") + std::to_string(y.dim()) + "-D";
      throw Error(std::string(fn) +
                      ": expects inputs of the same number of dims, got " +
                      ranks,
                  where);
    }
}

/// The p-norm of a - b + eps over the last dim (pairwise_distance).
Tensor distanceOf(const Tensor &a, const Tensor &b, double p, double eps,
                  bool keepdim, SourceLocation where) {
  Tensor difference = sub(a, b, where);
  Tensor d = add(difference, scalarLike(eps, difference, where), where);
  if (d.dim() == 0) // the norm of its one element
    return abs(d, where);
  return norm(d, p, {d.dim() - 1}, keepdim, where);
}
} // namespace

// The losses below follow PyTorch's formulas op by op, numbers as wrapped
// scalars, so that their dtypes are PyTorch's: integer operands give
// float32 where a float number or a float function meets them.

Tensor margin_ranking_loss(const Tensor &input1, const Tensor &input2,
                           const Tensor &target, double margin,
                           const std::string &reduction, SourceLocation where) {
  const char *fn = "margin_ranking_loss";
  checkReduction(fn, reduction, where);
  requireSameRank(fn, {input1, input2, target}, where);
  // PyTorch's (-target * (input1 - input2) + margin).clamp_min(0).
  Tensor product = mul(neg(target, where), sub(input1, input2, where), where);
  Tensor unclamped = add(product, scalarLike(margin, product, where), where);
  return reduceLoss(clamp(unclamped, 0.0, std::nullopt, where), reduction,
                    where);
}

Tensor hinge_embedding_loss(const Tensor &input, const Tensor &target,
                            double margin, const std::string &reduction,
                            SourceLocation where) {
  const char *fn = "hinge_embedding_loss";
  checkReduction(fn, reduction, where);
  requireDefined(fn, input, where);
  requireDefined(fn, target, where);
  refuseBool(fn, input, "inputs", where);
  (void)broadcastShapeOf(fn, input, target, where);
  // PyTorch's where(target != 1, (margin - x).clamp_min(0), 0) +
  // where(target != -1, x, 0), in the input's dtype: its margin - x fills
  // a tensor like x with the margin, so an integer input takes it
  // truncated (and its mean is an error, as PyTorch's).
  Tensor zero = scalarLike(0, input, where);
  Tensor clamped = clamp(
      sub(scalarLike(numberIn(margin, input), input, where), input, where), 0.0,
      std::nullopt, where);
  Tensor marginPart = kiln::where(
      ne(target, scalarLike(1, target, where), where), clamped, zero, where);
  Tensor selfPart = kiln::where(
      ne(target, scalarLike(-1, target, where), where), input, zero, where);
  return reduceLoss(add(marginPart, selfPart, where), reduction, where);
}

Tensor soft_margin_loss(const Tensor &input, const Tensor &target,
                        const std::string &reduction, SourceLocation where) {
  const char *fn = "soft_margin_loss";
  checkReduction(fn, reduction, where);
  requireFloat(fn, input, where);
  requireDefined(fn, target, where);
  // PyTorch's log1p(exp(-input * target)) (overflowing to inf as PyTorch's
  // does), computed in place in a tensor of the input's dtype.
  Tensor product =
      mul(neg(input, where), target, where).to(input.dtype(), where);
  return reduceLoss(log1pOf(exp(product, where), where), reduction, where);
}

Tensor poisson_nll_loss(const Tensor &input, const Tensor &target,
                        bool logInput, bool full, double eps,
                        const std::string &reduction, SourceLocation where) {
  const char *fn = "poisson_nll_loss";
  checkReduction(fn, reduction, where);
  requireDefined(fn, input, where);
  requireDefined(fn, target, where);
  const Tensor &x = input, &t = target;
  // PyTorch's: exp(x) - t x (log_input), else x - t log(x + eps); full adds
  // Stirling's t log t - t + 0.5 log(2 pi t) where t > 1.
  Tensor loss =
      logInput
          ? sub(exp(x, where), mul(t, x, where), where)
          : sub(x,
                mul(t, log(add(x, scalarLike(eps, x, where), where), where),
                    where),
                where);
  if (full) {
    Tensor logTerm = log(mul(scalarLike(2 * M_PI, t, where), t, where), where);
    Tensor stirling =
        add(sub(mul(t, log(t, where), where), t, where),
            mul(scalarLike(0.5, logTerm, where), logTerm, where), where);
    loss = add(loss,
               kiln::where(le(t, scalarLike(1, t, where), where),
                           scalarLike(0.0, stirling, where), stirling, where),
               where);
  }
  return reduceLoss(loss, reduction, where);
}

Tensor multilabel_soft_margin_loss(const Tensor &input, const Tensor &target,
                                   const std::string &reduction,
                                   SourceLocation where) {
  const char *fn = "multilabel_soft_margin_loss";
  checkReduction(fn, reduction, where);
  requireFloat(fn, input, where);
  requireDefined(fn, target, where);
  refuseBool(fn, target, "targets", where);
  if (input.dim() == 0)
    throw Error(std::string(fn) +
                    ": expects an input with a class dim, got a rank-0 tensor",
                where);
  (void)broadcastShapeOf(fn, input, target, where);
  // PyTorch's -(t logsigmoid(x) + (1 - t) logsigmoid(-x)), summed over the
  // last dim and divided by the input's number of classes.
  Tensor loss = neg(add(mul(target, logsigmoid(input, where), where),
                        mul(sub(scalarLike(1, target, where), target, where),
                            logsigmoid(neg(input, where), where), where),
                        where),
                    where);
  Tensor summed = sum(loss, {loss.dim() - 1}, false, where);
  Tensor perSample = div(
      summed, scalarLike(Scalar(input.shape().back()), summed, where), where);
  return reduceLoss(perSample, reduction, where);
}

Tensor pairwise_distance(const Tensor &x1, const Tensor &x2, double p,
                         double eps, bool keepdim, SourceLocation where) {
  const char *fn = "pairwise_distance";
  requireDefined(fn, x1, where);
  requireDefined(fn, x2, where);
  (void)broadcastShapeOf(fn, x1, x2, where);
  // PyTorch's norm(x1 - x2 + eps, p, last dim, keepdim).
  return distanceOf(x1, x2, p, eps, keepdim, where);
}

Tensor triplet_margin_loss(const Tensor &anchor, const Tensor &positive,
                           const Tensor &negative, double margin, double p,
                           double eps, bool swap, const std::string &reduction,
                           SourceLocation where) {
  const char *fn = "triplet_margin_loss";
  checkReduction(fn, reduction, where);
  requireSameRank(fn, {anchor, positive, negative}, where);
  (void)broadcastShapeOf(fn, anchor, positive, where);
  (void)broadcastShapeOf(fn, anchor, negative, where);
  // PyTorch's clamp_min(margin + d(a, p) - d(a, n), 0), d(a, n) the
  // smaller of it and d(p, n) with swap.
  Tensor toPositive = distanceOf(anchor, positive, p, eps, false, where);
  Tensor toNegative = distanceOf(anchor, negative, p, eps, false, where);
  if (swap)
    toNegative =
        minimum(toNegative,
                distanceOf(positive, negative, p, eps, false, where), where);
  Tensor unclamped =
      sub(add(scalarLike(margin, toPositive, where), toPositive, where),
          toNegative, where);
  return reduceLoss(clamp(unclamped, 0.0, std::nullopt, where), reduction,
                    where);
}

Tensor trace(const Tensor &x, SourceLocation where) {
  requireDefined("trace", x, where);
  if (x.dim() != 2)
    throw Error("trace: expects a matrix, got a tensor of " +
                    std::to_string(x.dim()) + " dims",
                where);
  refuseBool("trace", x, "inputs", where);
  // The sum of the diagonal's elements, read by their flat positions
  // i (m + 1) (integers sum to int64, as PyTorch's trace does).
  int64_t n = std::min(x.shape()[0], x.shape()[1]);
  int64_t step = x.shape()[1] + 1;
  Tensor diagonal = take(
      x, arange(n, 0.0, static_cast<double>(step), DType::Int64, where), where);
  return sum(diagonal, {}, false, where);
}

//===----------------------------------------------------------------------===//
// Methods
//===----------------------------------------------------------------------===//

#define KILN_METHOD0(name)                                                     \
  Tensor Tensor::name(SourceLocation where) const {                            \
    return kiln::name(*this, where);                                           \
  }
KILN_METHOD0(isnan)
KILN_METHOD0(isinf)
KILN_METHOD0(isfinite)
KILN_METHOD0(logical_not)
KILN_METHOD0(any)
KILN_METHOD0(all)
KILN_METHOD0(sign)
KILN_METHOD0(reciprocal)
KILN_METHOD0(square)
KILN_METHOD0(log1p)
KILN_METHOD0(expm1)
KILN_METHOD0(erf)
#undef KILN_METHOD0

#define KILN_METHOD1(name, Arg)                                                \
  Tensor Tensor::name(Arg arg, SourceLocation where) const {                   \
    return kiln::name(*this, arg, where);                                      \
  }
KILN_METHOD1(flip, std::vector<int64_t>)
KILN_METHOD1(repeat, std::vector<int64_t>)
KILN_METHOD1(tile, std::vector<int64_t>)
KILN_METHOD1(tril, int64_t)
KILN_METHOD1(triu, int64_t)
KILN_METHOD1(dot, const Tensor &)
KILN_METHOD1(mv, const Tensor &)
KILN_METHOD1(mm, const Tensor &)
KILN_METHOD1(bmm, const Tensor &)
KILN_METHOD1(outer, const Tensor &)
#undef KILN_METHOD1

Tensor Tensor::any(int64_t dim, bool keepdim, SourceLocation where) const {
  return kiln::any(*this, dim, keepdim, where);
}
Tensor Tensor::all(int64_t dim, bool keepdim, SourceLocation where) const {
  return kiln::all(*this, dim, keepdim, where);
}
Tensor Tensor::roll(std::vector<int64_t> shifts, std::vector<int64_t> dims,
                    SourceLocation where) const {
  return kiln::roll(*this, std::move(shifts), std::move(dims), where);
}

} // namespace kiln
