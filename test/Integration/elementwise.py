# Elementwise ops against PyTorch: every unary, binary and comparison op,
# clamp, where, cast and expand; f32/f64/i64 (and i1/i32 where allowed);
# broadcasting including rank 0; NaN, inf, signed zeros and halves.
# RUN: %python %s
import math

import numpy as np
import torch

from kiln_testing import Checker, ttype, unary_ir

torch.manual_seed(0)
c = Checker("elementwise")

SPECIAL = torch.tensor([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-30, 3.7,
                        -3.7, float("inf"), -float("inf"), float("nan"), 100.0])

# Unary float ops, f32 and f64, random and special values.
unary = {
    "neg": torch.neg, "abs": torch.abs, "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt, "exp": torch.exp, "log": torch.log,
    "floor": torch.floor, "ceil": torch.ceil, "trunc": torch.trunc,
    "frac": torch.frac, "round": torch.round, "sigmoid": torch.sigmoid,
    "tanh": torch.tanh, "relu": torch.relu, "erf": torch.erf,
}
for dtype in (torch.float32, torch.float64):
    for op, fn in unary.items():
        for label, x in (("random", torch.randn(3, 7, dtype=dtype) * 3),
                         ("special", SPECIAL.to(dtype))):
            if op in ("sqrt", "rsqrt", "log") and label == "random":
                x = x.abs()
            c.check(f"{op} {dtype} {label}", unary_ir(op, x), [x], fn(x),
                    rtol=2e-6 if dtype == torch.float32 else 1e-13)

# f32 exp, tanh and erf are polynomial approximations on the CPU
# (kiln-approximate-math): within a few ulp of the float64 answer over a
# dense sweep of their range and at subnormal inputs, signs of zeros kept.
def max_ulp(got, x, fn):
    ref = fn(x.double())
    spacing = torch.from_numpy(
        __import__("numpy").spacing(ref.float().abs().numpy())).double()
    err = (got.double() - ref).abs() / spacing
    return err[torch.isfinite(ref)].max().item()


for op, fn, lo, hi, bound in (("exp", torch.exp, -87.0, 88.0, 4),
                              ("tanh", torch.tanh, -12.0, 12.0, 8),
                              ("erf", torch.erf, -6.0, 6.0, 6)):
    x = torch.cat([torch.linspace(lo, hi, 1 << 20), torch.randn(1 << 16),
                   torch.tensor([1e-40, -3e-39, 0.0, -0.0, 1e-30, -1e-30,
                                 1e-8])])
    code, outputs, err = c.run(unary_ir(op, x), [x])
    c.cases += 1
    if code != 0:
        c.fail(f"{op} accuracy sweep", err)
        continue
    ulp = max_ulp(outputs[0], x, fn)
    signs_kept = bool((torch.signbit(outputs[0][-7:]) ==
                       torch.signbit(fn(x[-7:]))).all())
    if ulp > bound or not signs_kept:
        c.fail(f"{op} accuracy sweep", f"max error {ulp:.2f} ulp (bound "
               f"{bound}), signs of zeros kept: {signs_kept}")

# f32 log is computed in f64 on the CPU (kiln-approximate-math) and rounded
# once: within 1 ulp of the float64 answer from subnormal inputs up (MLIR's
# own approximation flushes subnormals), next to 1 (where log is tiny and
# only its relative error counts), and exact at the special values.
x = torch.cat([torch.logspace(-45, 38.5, 1 << 18, dtype=torch.float64).float(),
               1 + torch.arange(-4096, 4096) * 2.0 ** -24,
               torch.rand(1 << 16) * 4,
               torch.tensor([1e-45, 1e-40, 1.0, 0.0, -0.0, -1.0, -1e-40,
                             float("inf"), -float("inf"), float("nan")])])
code, outputs, err = c.run(unary_ir("log", x), [x])
c.cases += 1
if code != 0:
    c.fail("log accuracy sweep", err)
else:
    got, want = outputs[0], torch.log(x)
    ref = torch.log(x.double())
    finite = torch.isfinite(ref) & (ref != 0)
    spacing = torch.from_numpy(__import__("numpy").spacing(
        ref.float().abs().numpy())).double()
    ulp = ((got.double() - ref).abs() / spacing)[finite].max().item()
    specials = bool(((got == want) | (got.isnan() & want.isnan()))[~finite]
                    .all())
    if ulp > 1.0 or not specials:
        c.fail("log accuracy sweep", f"max error {ulp:.3f} ulp (bound 1), "
               f"special values as torch.log: {specials}")

# f64 exp is a vectorized polynomial on the CPU (kiln-approximate-math):
# within 1 ulp of glibc's exp (math.exp, itself within about half an ulp)
# over the whole range, subnormal results within one unit of the least
# subnormal, and the limits exact: overflow to inf past 709.78, underflow
# to 0 past -745.13, exp(-inf) = 0, NaN propagates, exp(+-0) = 1.
x = torch.cat([torch.linspace(-745.5, 709.9, 1 << 19, dtype=torch.float64),
               torch.randn(1 << 15, dtype=torch.float64) * 5,
               torch.randn(1 << 15, dtype=torch.float64) * 300,
               torch.tensor([0.0, -0.0, 1e-300, -1e-300, 5e-324, 1.0, -1.0,
                             709.782712893384, 709.7827128933841, 710.0,
                             1e4, -708.4, -744.4, -745.1332191019412,
                             -745.14, -746.0, -1e4, float("inf"),
                             -float("inf"), float("nan")],
                            dtype=torch.float64)])
code, outputs, err = c.run(unary_ir("exp", x), [x])
c.cases += 1
if code != 0:
    c.fail("exp f64 accuracy sweep", err)
else:
    got = outputs[0].numpy()


    def glibc_exp(v):
        try:
            return math.exp(v)
        except OverflowError:
            return math.inf
    ref = np.array([glibc_exp(v) for v in x.numpy()])
    normal = np.isfinite(ref) & (np.abs(ref) >= np.finfo(np.float64).tiny)
    ulp = (np.abs(got[normal] - ref[normal]) /
           np.spacing(np.abs(ref[normal]))).max()
    sub = (ref > 0) & (ref < np.finfo(np.float64).tiny)
    sub_err = (np.abs(got[sub] - ref[sub]) / 5e-324).max()
    rest = ~(normal | sub)
    specials = bool(((got[rest] == ref[rest]) |
                     (np.isnan(got[rest]) & np.isnan(ref[rest]))).all())
    if ulp > 1.0 or sub_err > 1.0 or not specials or sub.sum() < 100:
        c.fail("exp f64 accuracy sweep",
               f"max error {ulp} ulp (bound 1), subnormal results "
               f"{sub.sum()} off by up to {sub_err} (bound 1), special "
               f"values as glibc: {specials}")

# f64 log and tanh are vectorized on the CPU too (kiln-approximate-math:
# fdlibm's log; tanh's Taylor series below 0.75, 1 - 2/(e^2|x| + 1)
# above): within 1 ulp (log) and 1.1 ulp (tanh) of the exact answer,
# measured against long double (glibc's own tanh is 2.1 ulp off at worst),
# subnormal inputs included, special values as torch.
rng = np.random.default_rng(5)
log_x = np.concatenate([
    np.exp(rng.uniform(-745, 709, 1 << 18)),
    1 + rng.uniform(-0.3, 0.45, 1 << 16),
    1 + np.arange(-4096, 4096) * 2.0 ** -52,
    rng.integers(1, 1 << 52, 4096).view(np.float64),  # subnormals
    np.array([5e-324, 1.0, 0.0, -0.0, -1.0, -5e-324, np.finfo(np.float64).max,
              np.inf, -np.inf, np.nan])])
tanh_x = np.concatenate([
    rng.uniform(-1, 1, 1 << 17) * 0.8,
    np.linspace(0.7, 0.8, 1 << 14), -np.linspace(0.7, 0.8, 1 << 14),
    rng.uniform(-25, 25, 1 << 17),
    np.array([0.0, -0.0, 1e-310, -5e-324, 1e-9, 0.75, -0.75, 19.06, 400.0,
              -800.0, np.inf, -np.inf, np.nan])])
for op, x, bound in (("log", log_x, 1.0), ("tanh", tanh_x, 1.1)):
    t = torch.from_numpy(x)
    code, outputs, err = c.run(unary_ir(op, t), [t])
    c.cases += 1
    if code != 0:
        c.fail(f"{op} f64 accuracy sweep", err)
        continue
    got = outputs[0].numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = getattr(np, op)(x.astype(np.longdouble))
    ref = exact.astype(np.float64)
    finite = np.isfinite(ref) & (ref != 0)
    ulp = (np.abs(got[finite].astype(np.longdouble) - exact[finite]) /
           np.spacing(np.abs(ref[finite])).astype(np.longdouble)).max()
    want = getattr(torch, op)(t).numpy()
    specials = bool(((got == want) & (np.signbit(got) == np.signbit(want)) |
                     (np.isnan(got) & np.isnan(want)))[~finite].all())
    if ulp > bound or not specials:
        c.fail(f"{op} f64 accuracy sweep",
               f"max error {float(ulp):.3f} ulp (bound {bound}), special "
               f"values as torch.{op}: {specials}")

# Unary integer ops.
n = torch.randint(-50, 50, (4, 5), dtype=torch.int64)
c.check("neg i64", unary_ir("neg", n), [n], torch.neg(n))
c.check("abs i64", unary_ir("abs", n), [n], torch.abs(n))

# Rank-0 operand.
s = torch.tensor(-2.5)
c.check("round rank-0", unary_ir("round", s), [s], torch.round(s))


def binary_ir(op, a, b, result):
    return (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> {ttype(result)} {{\n"
            f"  %y = kiln.{op} %a, %b : {ttype(a)}, {ttype(b)}\n"
            f"  return %y : {ttype(result)}\n}}\n")


binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul,
          "div": torch.div, "maximum": torch.maximum,
          "minimum": torch.minimum, "pow": torch.pow}
shapes = [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3)), ((2, 1, 4), (3, 1)),
          ((5,), ())]
for dtype in (torch.float32, torch.float64):
    for op, fn in binary.items():
        for sa, sb in shapes:
            a = torch.randn(sa, dtype=dtype) * 2
            b = torch.randn(sb, dtype=dtype) * 2
            if op == "pow":
                a = a.abs() + 0.1
            c.check(f"{op} {dtype} {sa} {sb}", binary_ir(op, a, b, fn(a, b)),
                    [a, b], fn(a, b),
                    rtol=2e-6 if dtype == torch.float32 else 1e-13)
# NaN handling of maximum/minimum/pow and signed zeros.
a = torch.tensor([float("nan"), 1.0, -0.0, 0.0, 2.0, 0.0, float("nan")])
b = torch.tensor([1.0, float("nan"), 0.0, -0.0, float("nan"), 0.0, 0.0])
for op in ("maximum", "minimum", "pow", "add", "mul", "div"):
    c.check(f"{op} special", binary_ir(op, a, b, a), [a, b],
            binary[op](a, b))
for op in ("add", "sub", "mul", "maximum", "minimum"):
    x = torch.randint(-100, 100, (3, 4))
    y = torch.randint(-100, 100, (4,))
    c.check(f"{op} i64", binary_ir(op, x, y, x), [x, y], binary[op](x, y))

def run_pow(xs, ys, label):
    """kiln.pow's and torch.pow's results on xs and ys, or None after
    reporting Kiln's failure to run."""
    want = torch.pow(xs, ys)
    code, outputs, err = c.run(binary_ir("pow", xs, ys, want), [xs, ys])
    c.cases += 1
    if code != 0:
        c.fail(label, err)
        return None
    return outputs[0], want


# f32 pow is computed in f64 on the CPU (kiln-approximate-math) and rounded
# once: within 1 ulp of the float64 answer (rounded to f32) across
# magnitudes from subnormal to huge, negative bases with integer powers,
# overflow and underflow, and C's special cases exactly: signs of zeros
# and infinities, NaN for a negative base to a non-integer power, 1 for
# pow(x, 0), pow(1, y) and pow(-1, +-inf).
xs = torch.cat([torch.logspace(-45, 38, 4000, dtype=torch.float64).float(),
                -torch.logspace(-20, 20, 500, dtype=torch.float64).float(),
                torch.rand(2000) * 4, torch.tensor(
                    [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1e-40,
                     -1e-40, float("inf"), -float("inf"), float("nan"),
                     1.0000001, 0.99999994])]).reshape(-1, 1)
ys = torch.tensor([2.5, -1.7, 0.3, 1 / 3, 7.0, -3.0, 4.0, 100.5, -0.5001,
                   1e-5, 30.0, -30.0, 0.0, -0.0, 1.0, 2.0 ** 24 + 2,
                   float("inf"), -float("inf"), float("nan"), 151.0])
ys = ys.reshape(1, -1)
result = run_pow(xs, ys, "pow f32 sweep")
if result is not None:
    got, want = result
    ref64 = torch.pow(xs.double(), ys.double())
    ref = ref64.float()
    finite = torch.isfinite(ref) & (ref != 0)
    spacing = torch.from_numpy(__import__("numpy").spacing(
        ref.abs().numpy())).double()
    ulp = ((got.double() - ref64).abs() / spacing)[finite].max().item()
    same_special = bool(((got == ref) | (got.isnan() & ref.isnan()))[~finite]
                        .all()) and bool((torch.signbit(got) ==
                                          torch.signbit(ref))[~finite &
                                                              ~ref.isnan()]
                                         .all())
    agrees_with_torch = bool(((got == want) | (got.isnan() & want.isnan()))
                             [~finite].all())
    if ulp > 1.0 or not same_special or not agrees_with_torch:
        c.fail("pow f32 sweep", f"max error {ulp:.3f} ulp (bound 1), special "
               f"cases as f64 pow: {same_special}, as torch.pow: "
               f"{agrees_with_torch}")

# f64 pow is vectorized on the CPU too (kiln-approximate-math: e^(y
# log|x|) carried in double-double): within POW64_BOUND ulp of the exact
# power for normal results (measured 0.520; glibc's pow: 0.505 over the
# same points), wherever y log|x| lies: bases across the whole range, subnormal ones included, bases next to 1
# with exponents up to 1e15 (y log|x| near its +-745 limits, where an f64
# product would be thousands of ulps off), negative bases with integer
# powers, results next to overflow and in the subnormals (within one unit
# of the least subnormal there); special cases bit for bit as torch.pow.
POW64_BOUND = 0.55
rng = np.random.default_rng(11)
count = 1 << 17
pow_x = np.concatenate([
    np.exp(rng.uniform(-745, 709, count)),
    rng.uniform(0, 4, count),
    1 + rng.uniform(-1e-3, 1e-3, count),
    1 + rng.integers(-1 << 20, 1 << 20, count) * 2.0 ** -52,
    -np.exp(rng.uniform(-20, 20, count)),
    rng.integers(1, 1 << 52, 4096).view(np.float64)])
pow_y = np.concatenate([
    rng.uniform(-1, 1, count) * 700 / np.maximum(np.abs(np.log(pow_x[:count])),
                                                 1e-3),
    rng.uniform(-30, 30, count),
    rng.uniform(-7e5, 7e5, count),
    rng.uniform(-1, 1, count) * 3e15 * np.exp(rng.uniform(-30, 0, count)),
    rng.integers(-200, 200, count).astype(np.float64),
    rng.uniform(-1.05, 0.98, 4096)])
specials = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, np.inf,
                     -np.inf, np.nan, 5e-324, -5e-324, 1.7976931348623157e308])
sx, sy = np.meshgrid(specials, np.concatenate(
    [specials, [3.0, -3.0, 0.5, 2.5, -2.5, 1e300, -1e300]]))
pow_x = np.concatenate([pow_x, sx.ravel(), [2.0, 2.0, 0.5, 10.0, 10.0]])
pow_y = np.concatenate([pow_y, sy.ravel(), [1023.99, 1024.0, 1074.5, 308.25,
                                            -323.6]])
result = run_pow(torch.from_numpy(pow_x), torch.from_numpy(pow_y),
                 "pow f64 sweep")
if result is not None:
    got, want = result[0].numpy(), result[1]
    # The exact powers from long double's powl (within about 1e-4 ulp of
    # f64 here: checked against mpmath at the worst points).
    with np.errstate(all="ignore"):
        exact = np.power(pow_x.astype(np.longdouble),
                         pow_y.astype(np.longdouble))
        ref = exact.astype(np.float64)
    tiny = np.finfo(np.float64).tiny
    normal = np.isfinite(ref) & (np.abs(ref) >= tiny)
    # f64's ulp at each result (np.spacing overflows at DBL_MAX).
    spacing = np.ldexp(np.longdouble(1), np.frexp(ref[normal])[1] - 53)
    ulp = float((np.abs(got[normal].astype(np.longdouble) - exact[normal]) /
                 spacing).max())
    sub = np.isfinite(ref) & (ref != 0) & (np.abs(ref) < tiny)
    sub_err = float((np.abs(got[sub] - ref[sub]) / 5e-324).max())
    rest = ~(normal | sub)
    same = (got == want.numpy()) & (np.signbit(got) == np.signbit(want.numpy()))
    same |= np.isnan(got) & np.isnan(want.numpy())
    if ulp > POW64_BOUND or sub_err > 1.0 or not same[rest].all() or \
            sub.sum() < 1000 or normal.sum() < 4 * count:
        c.fail("pow f64 sweep",
               f"max error {ulp:.3f} ulp (bound {POW64_BOUND}) over "
               f"{normal.sum()} normal results, subnormal results "
               f"{sub.sum()} off by up to {sub_err} (bound 1), special "
               f"cases as torch.pow: {int((~same[rest]).sum())} differ")

compare_ops = {"gt": torch.gt, "ge": torch.ge, "lt": torch.lt, "le": torch.le,
               "eq": torch.eq, "ne": torch.ne}
for op, fn in compare_ops.items():
    a = torch.tensor([[1.0, float("nan"), 2.0, -0.0], [3.0, 3.0, float("inf"), 0.0]])
    b = torch.tensor([1.0, 1.0, float("nan"), 0.0])
    c.check(f"{op} f32", binary_ir(op, a, b, fn(a, b)), [a, b], fn(a, b))
    x = torch.randint(-3, 3, (4, 5))
    y = torch.randint(-3, 3, (5,))
    c.check(f"{op} i64", binary_ir(op, x, y, fn(x, y)), [x, y], fn(x, y))
    p = torch.tensor([True, False, True, False])
    q = torch.tensor([True, True, False, False])
    c.check(f"{op} i1", binary_ir(op, p, q, fn(p, q)), [p, q], fn(p, q))

# clamp: both bounds inclusive, one bound, min > max, NaN input, integers.
x = torch.tensor([1.0, 2, 3, 4, 5, 6, 7, float("nan")])
for attrs, fn in (("{min = 1.5 : f64, max = 5.5 : f64}", lambda t: torch.clamp(t, 1.5, 5.5)),
                  ("{min = 3.0 : f64}", lambda t: torch.clamp(t, min=3.0)),
                  ("{max = 3.0 : f64}", lambda t: torch.clamp(t, max=3.0)),
                  ("{min = 5.0 : f64, max = 2.0 : f64}", lambda t: torch.clamp(t, 5.0, 2.0))):
    c.check(f"clamp {attrs}", unary_ir("clamp", x, attrs), [x], fn(x))
# A value equal to a bound is kept (torch.clamp's x < lo ? lo : x): -0.0
# clamped at min 0 stays -0.0 and +0.0 at max -0 stays +0.0 (seen through
# 1 / clamp(x), -inf or +inf; maximumf once made both +0.0).
z = torch.tensor([-0.0, 0.0, -1.0, 2.0])
for attrs, fn in (("{min = 0.0 : f64}", lambda t: torch.clamp(t, min=0.0)),
                  ("{max = -0.0 : f64}", lambda t: torch.clamp(t, max=-0.0))):
    T = ttype(z)
    c.check(f"1 / clamp {attrs} of signed zeros", f"""func.func @f(%x: {T}) -> {T} {{
  %y = kiln.clamp %x {attrs} : {T}
  %one = kiln.constant dense<1.0> : tensor<f32>
  %r = kiln.div %one, %y : tensor<f32>, {T}
  return %r : {T}
}}""", [z], 1 / fn(z))
n = torch.arange(-5, 5)
c.check("clamp i64", unary_ir("clamp", n, "{min = -2.0 : f64, max = 3.0 : f64}"),
        [n], torch.clamp(n, -2, 3))

# where with three-way broadcasting.
m = torch.rand(2, 1, 4) > 0.5
a = torch.randn(3, 1)
b = torch.tensor(7.0)
want = torch.where(m, a, b)
c.check("where broadcast",
        f"func.func @f(%m: {ttype(m)}, %a: {ttype(a)}, %b: {ttype(b)}) -> {ttype(want)} {{\n"
        f"  %y = kiln.where %m, %a, %b : {ttype(m)}, {ttype(a)}, {ttype(b)}\n"
        f"  return %y : {ttype(want)}\n}}\n", [m, a, b], want)

# cast between every pair of element types.
sources = {
    torch.float32: torch.tensor([0.0, -1.7, 2.9, -0.0, 1e10, -1e10, float("nan"), 3.0]),
    torch.float64: torch.tensor([0.0, -1.7, 2.9, 1e300, -2.5, 7.0, 0.25, -3.0], dtype=torch.float64),
    torch.int64: torch.tensor([0, -3, 5, 2**40, -(2**40), 1, 7, -1]),
    torch.int32: torch.tensor([0, -3, 5, 2**30, -(2**30), 1, 7, -1], dtype=torch.int32),
    torch.bool: torch.tensor([True, False, True, True, False, False, True, False]),
}
for src_dtype, src in sources.items():
    for dst_dtype in sources:
        if src_dtype == dst_dtype:
            continue
        # PyTorch leaves NaN/out-of-range float->int undefined; compare on
        # values that are defined.
        if src_dtype.is_floating_point and not dst_dtype.is_floating_point \
                and dst_dtype != torch.bool:
            src_ok = src[(src.abs() < 2**31) & ~src.isnan()]
        else:
            src_ok = src
        want = src_ok.to(dst_dtype)
        ir = (f"func.func @f(%x: {ttype(src_ok)}) -> {ttype(want)} {{\n"
              f"  %y = kiln.cast %x : {ttype(src_ok)} to {ttype(want)}\n"
              f"  return %y : {ttype(want)}\n}}\n")
        c.check(f"cast {src_dtype} -> {dst_dtype}", ir, [src_ok], want)

# expand.
x = torch.randn(3, 1)
want = x.expand(2, 3, 4)
c.check("expand", f"func.func @f(%x: {ttype(x)}) -> {ttype(want)} {{\n"
        f"  %y = kiln.expand %x : {ttype(x)} -> {ttype(want)}\n"
        f"  return %y : {ttype(want)}\n}}\n", [x], want.contiguous())

# A chain with a value used twice.
x = torch.randn(64, 33)
want = torch.where(x > 0, torch.clamp(x, -1, 1) ** 2, x * 0.5) + 1
ir = f"""func.func @f(%x: {ttype(x)}) -> {ttype(x)} {{
  %zero = kiln.full 0.0 : tensor<f32>
  %half = kiln.full 0.5 : tensor<f32>
  %one = kiln.full 1.0 : tensor<f32>
  %two = kiln.full 2.0 : tensor<f32>
  %m = kiln.gt %x, %zero : {ttype(x)}, tensor<f32>
  %c = kiln.clamp %x {{min = -1.0 : f64, max = 1.0 : f64}} : {ttype(x)}
  %p = kiln.pow %c, %two : {ttype(x)}, tensor<f32>
  %h = kiln.mul %x, %half : {ttype(x)}, tensor<f32>
  %w = kiln.where %m, %p, %h : {ttype(m := (x > 0))}, {ttype(x)}, {ttype(x)}
  %y = kiln.add %w, %one : {ttype(x)}, tensor<f32>
  return %y : {ttype(x)}
}}
"""
c.check("where/clamp/pow chain", ir, [x], want)

c.finish()
