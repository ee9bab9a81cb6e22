# Gradients from kiln-autodiff against torch.autograd.grad: every rule of
# ops.md on random inputs with random cotangents (broadcasting, ties, zeros,
# repeated indices), the examples people know (topk, max with ties, clip),
# functions with several uses of a value, several results, integer arguments
# and results, unused arguments and constant results; plus the functions
# that cannot be differentiated (one clear diagnostic each). Every case is
# also checked against f64 central finite differences with kiln-gradcheck,
# except at points where the function is not differentiable (ties broken by
# index, clamp bounds, NaN, 0 ** b), where PyTorch's convention and the
# numerical derivative legitimately differ.
# RUN: %python %s
import torch
import torch.nn.functional as F

from kiln_testing import Checker, ttype

torch.manual_seed(4)
c = Checker("autodiff")


def case(label, inputs, body, results, torch_fn, gradcheck=True, **kwargs):
    """@f(%a0, %a1, ...) with `body` (input types as {T0}, {T1}, ...)
    returning `results`; result types come from torch_fn's outputs."""
    outs = torch_fn(*inputs)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    def expand_types(line):
        for i, t in enumerate(inputs):
            line = line.replace(f"{{T{i}}}", ttype(t))
        return line

    args = ", ".join(f"%a{i}: {ttype(t)}" for i, t in enumerate(inputs))
    rtypes = ", ".join(ttype(o) for o in outs)
    ir = (f"func.func @f({args}) -> ({rtypes}) {{\n"
          + "\n".join("  " + expand_types(line) for line in body) +
          f"\n  return {', '.join(results)} : {rtypes}\n}}\n")
    c.check_vjp(label, ir, inputs, torch_fn, **kwargs)
    if gradcheck:
        c.gradcheck(label + " (gradcheck)", ir, inputs)


def unary(op, x, fn, **kwargs):
    case(op, [x], [f"%y = kiln.{op} %a0 : {{T0}}"], ["%y"], fn, **kwargs)


def rand(*shape):
    return torch.randn(*shape)


def positive(*shape):
    return torch.rand(*shape) + 0.5


# --- Elementwise unary -------------------------------------------------------
x = rand(3, 5)
xz = x.clone()
xz[0, 0] = 0.0  # abs: sgn(0) = 0, and the numerical derivative is 0 too
unary("neg", x, torch.neg)
unary("abs", xz, torch.abs)
unary("sqrt", positive(3, 5), torch.sqrt)
unary("rsqrt", positive(3, 5), torch.rsqrt)
unary("exp", x, torch.exp)
unary("log", positive(3, 5), torch.log)
for op in ["floor", "ceil", "trunc", "round"]:
    unary(op, x * 3, getattr(torch, op))
unary("frac", x * 3, torch.frac)
unary("sigmoid", x, torch.sigmoid)
unary("tanh", x, torch.tanh)
unary("erf", x, torch.erf)
unary("relu", x, torch.relu)

# --- Elementwise binary, broadcasting ---------------------------------------
a, b, col = rand(3, 4), rand(4), rand(3, 1)
for op, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul),
               ("div", torch.div)]:
    case(f"{op} [3,4] [4]", [a, b], [f"%y = kiln.{op} %a0, %a1 : {{T0}}, {{T1}}"],
         ["%y"], fn)
    case(f"{op} [3,1] [4] rank-0", [col, b, torch.tensor(1.5)],
         [f"%t = kiln.{op} %a0, %a1 : {{T0}}, {{T1}}",
          f"%y = kiln.{op} %t, %a2 : tensor<3x4xf32>, {{T2}}"], ["%y"],
         lambda p, q, r, fn=fn: fn(fn(p, q), r))
# Ties get half the gradient each (integers so that ties occur).
ta = torch.randint(0, 3, (4, 5)).float()
tb = torch.randint(0, 3, (5,)).float()
for op in ["maximum", "minimum"]:
    case(f"{op} with ties", [ta, tb],
         [f"%y = kiln.{op} %a0, %a1 : {{T0}}, {{T1}}"], ["%y"],
         getattr(torch, op), gradcheck=False)
for op in ["maximum", "minimum"]:
    case(f"{op} random", [rand(4, 5), rand(5)],
         [f"%y = kiln.{op} %a0, %a1 : {{T0}}, {{T1}}"], ["%y"],
         getattr(torch, op))
case("maximum NaN", [torch.tensor([1.0, float("nan"), 2.0]),
                     torch.tensor([float("nan"), 0.0, 2.0])],
     ["%y = kiln.maximum %a0, %a1 : {T0}, {T1}"], ["%y"], torch.maximum,
     gradcheck=False)
# relu's gradient passes at NaN (PyTorch's threshold_backward: 0 where the
# result <= 0), and is 0 at 0.
case("relu NaN and zero", [torch.tensor([float("nan"), 0.0, -1.0, 2.0])],
     ["%y = kiln.relu %a0 : {T0}"], ["%y"], torch.relu,
     cts=[torch.ones(4)], expected=[torch.tensor([1.0, 0.0, 0.0, 1.0])],
     gradcheck=False)
case("pow both operands", [positive(3, 4), rand(4)],
     ["%y = kiln.pow %a0, %a1 : {T0}, {T1}"], ["%y"], torch.pow)
# 0 ** b: d/db is 0 where b >= 0; d/da is 0 where b == 0.
case("pow at zero", [torch.tensor([0.0, 0.0, 0.0, 2.0, -1.5]),
                     torch.tensor([0.0, 2.0, 0.5, 0.0, 2.0])],
     ["%y = kiln.pow %a0, %a1 : {T0}, {T1}"], ["%y"], torch.pow,
     gradcheck=False)
case("pow scalar exponent", [rand(6), torch.tensor(3.0)],
     ["%y = kiln.pow %a0, %a1 : {T0}, {T1}"], ["%y"], torch.pow)
# A constant exponent: PyTorch's gradient is e * x.pow(e - 1) with e - 1 a
# Scalar, whose pow takes its constant-exponent path: x ** -0.5 is rsqrt(x),
# -inf at -0.0 where a libm pow gives +inf (the API fuzzer, seed 402).
case("pow constant exponent at signed zeros",
     [torch.tensor([-0.0, 0.0, 4.0, 2.0])],
     ["%e = kiln.constant dense<5.000000e-01> : tensor<f32>",
      "%y = kiln.pow %a0, %e : {T0}, tensor<f32>"], ["%y"],
     lambda t: torch.pow(t, 0.5), cts=[torch.ones(4)],
     expected=[torch.tensor([float("-inf"), float("inf"), 0.25,
                             0.5 / 2.0 ** 0.5])],
     gradcheck=False)
case("pow full exponent at signed zeros",
     [torch.tensor([-0.0, 0.0, 4.0, 2.0])],
     ["%e = kiln.full 5.000000e-01 : tensor<f32>",
      "%y = kiln.pow %a0, %e : {T0}, tensor<f32>"], ["%y"],
     lambda t: torch.pow(t, 0.5), cts=[torch.ones(4)],
     expected=[torch.tensor([float("-inf"), float("inf"), 0.25,
                             0.5 / 2.0 ** 0.5])],
     gradcheck=False)

# --- clamp / where / cast ----------------------------------------------------
seven = torch.arange(1.0, 8.0)
case("clip example", [seven],
     ["%y = kiln.clamp %a0 {min = 1.5 : f64, max = 5.5 : f64} : {T0}"], ["%y"],
     lambda t: torch.clamp(t, 1.5, 5.5), cts=[torch.ones(7)],
     expected=[torch.tensor([0.0, 1, 1, 1, 1, 0, 0])])
# Bounds are inclusive: x == min and x == max pass the gradient.
case("clamp at bounds", [torch.tensor([1.0, 2.0, 3.0, 4.0, float("nan")])],
     ["%y = kiln.clamp %a0 {min = 2.0 : f64, max = 3.0 : f64} : {T0}"], ["%y"],
     lambda t: torch.clamp(t, 2.0, 3.0),
     gradcheck=False)
case("clamp min only", [x], ["%y = kiln.clamp %a0 {min = 0.0 : f64} : {T0}"],
     ["%y"], lambda t: torch.clamp(t, min=0.0))
case("clamp max only", [x], ["%y = kiln.clamp %a0 {max = 0.5 : f64} : {T0}"],
     ["%y"], lambda t: torch.clamp(t, max=0.5))
mask = torch.rand(3, 4) > 0.5
case("where broadcast", [mask, rand(4), rand(3, 1)],
     ["%y = kiln.where %a0, %a1, %a2 : {T0}, {T1}, {T2}"], ["%y"], torch.where)
case("cast f32 -> f64", [x],
     ["%y = kiln.cast %a0 : {T0} to tensor<3x5xf64>"], ["%y"],
     lambda t: t.double())

# --- Shape --------------------------------------------------------------------
case("reshape", [rand(2, 6)], ["%y = kiln.reshape %a0 : {T0} -> tensor<3x4xf32>"],
     ["%y"], lambda t: t.reshape(3, 4))
case("expand", [rand(3, 1)],
     ["%y = kiln.expand %a0 : {T0} -> tensor<2x3x4xf32>"], ["%y"],
     lambda t: t.expand(2, 3, 4))
case("permute", [rand(2, 3, 4)],
     ["%y = kiln.permute %a0 [2, 0, 1] : {T0}"], ["%y"],
     lambda t: t.permute(2, 0, 1))

# --- matmul ---------------------------------------------------------------------
for sa, sb in [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
               ((4, 3, 5, 6), (4, 1, 6, 2)), ((2, 5, 6), (6, 3)),
               ((5,), (2, 5, 3)), ((2, 3, 5), (5,))]:
    case(f"matmul {sa} {sb}", [rand(*sa), rand(*sb)],
         ["%y = kiln.matmul %a0, %a1 : {T0}, {T1}"], ["%y"], torch.matmul,
         rtol=1e-4, atol=1e-5)

# --- Reductions ------------------------------------------------------------------
r = rand(3, 4, 5)
case("sum dims keepdim", [r],
     ["%y = kiln.sum %a0 {dims = array<i64: 0, -1>, keepdim = true} : {T0}"],
     ["%y"], lambda t: t.sum((0, -1), keepdim=True))
case("sum all", [r], ["%y = kiln.sum %a0 : {T0}"], ["%y"], torch.sum)
case("mean dim", [r], ["%y = kiln.mean %a0 {dims = array<i64: 1>} : {T0}"],
     ["%y"], lambda t: t.mean(1))
zeros = rand(4, 5)
zeros[1, 2] = 0.0                    # one zero in row 1
zeros[2, 0] = zeros[2, 3] = 0.0      # two zeros in row 2
case("prod with zeros", [zeros],
     ["%y = kiln.prod %a0 {dims = array<i64: 1>} : {T0}"], ["%y"],
     lambda t: t.prod(1))
case("prod all", [positive(2, 3)], ["%y = kiln.prod %a0 : {T0}"], ["%y"],
     torch.prod)
case("max example (ties split)", [torch.tensor([1.0, 2, 3, 4, 4, 0])],
     ["%y = kiln.amax %a0 : {T0}"], ["%y"], torch.max,
     cts=[torch.tensor(1.0)],
     expected=[torch.tensor([0.0, 0, 0, 0.5, 0.5, 0])])
case("amin random", [r],
     ["%y = kiln.amin %a0 {dims = array<i64: 0, 2>} : {T0}"], ["%y"],
     lambda t: t.amin((0, 2)))
case("amax dims ties", [ta], ["%y = kiln.amax %a0 {dims = array<i64: 1>} : {T0}"],
     ["%y"], lambda t: t.amax(1),
     gradcheck=False)
case("amin keepdim ties", [ta],
     ["%y = kiln.amin %a0 {dims = array<i64: 0>, keepdim = true} : {T0}"],
     ["%y"], lambda t: t.amin(0, keepdim=True),
     gradcheck=False)
normin = rand(3, 4)
normin[1] = 0.0
normin[2, 1] = 0.0
for p in [2.0, 1.0, 3.0, 1.5, 0.5, float("inf")]:
    pa = "0x7FF0000000000000" if p == float("inf") else repr(p)
    case(f"norm p={p}", [normin],
         [f"%y = kiln.norm %a0 {{p = {pa} : f64, dims = array<i64: 1>}} : {{T0}}"],
         ["%y"], lambda t, p=p: torch.norm(t, p=p, dim=1))
case("norm all", [normin], ["%y = kiln.norm %a0 : {T0}"], ["%y"], torch.norm)
for op in ["max", "min"]:
    case(f"{op} with dim", [ta],
         [f"%v, %i = kiln.{op} %a0 {{dim = 1 : i64}} : {{T0}}"], ["%v", "%i"],
         lambda t, op=op: tuple(getattr(torch, op)(t, 1)), gradcheck=False)
    case(f"{op} keepdim dim 0", [r],
         [f"%v, %i = kiln.{op} %a0 {{dim = 0 : i64, keepdim = true}} : {{T0}}"],
         ["%v"], lambda t, op=op: getattr(torch, op)(t, 0, keepdim=True)[0])
case("kthvalue", [r], ["%v, %i = kiln.kthvalue %a0 {k = 2 : i64} : {T0}"],
     ["%v"], lambda t: torch.kthvalue(t, 2)[0])
case("kthvalue dim 1 keepdim", [r],
     ["%v, %i = kiln.kthvalue %a0 {k = 4 : i64, dim = 1 : i64, keepdim = true} : {T0}"],
     ["%v"], lambda t: torch.kthvalue(t, 4, 1, keepdim=True)[0])
case("topk example", [torch.tensor([3.0, 1, 4, 2])],
     ["%v, %i = kiln.topk %a0 {k = 2 : i64} : {T0}"], ["%v"],
     lambda t: torch.topk(t, 2)[0], cts=[torch.tensor([0.1, 0.2])],
     expected=[torch.tensor([0.2, 0, 0.1, 0])])
case("topk smallest dim 0", [r],
     ["%v, %i = kiln.topk %a0 {k = 2 : i64, dim = 0 : i64, largest = false} : {T0}"],
     ["%v", "%i"], lambda t: tuple(torch.topk(t, 2, 0, largest=False)))

# --- Indexing (repeated indices accumulate) --------------------------------------
src = rand(3, 5)
gidx = torch.tensor([[0, 0, 4], [1, 1, 1], [3, 2, 3]])
case("gather", [src, gidx],
     ["%y = kiln.gather %a0, %a1 {dim = 1 : i64} : {T0}, {T1}"], ["%y"],
     lambda t, i: torch.gather(t, 1, i))
case("index_select", [src, torch.tensor([4, 0, 4, 4])],
     ["%y = kiln.index_select %a0, %a1 {dim = 1 : i64} : {T0}, {T1}"], ["%y"],
     lambda t, i: torch.index_select(t, 1, i))
case("take", [src, torch.tensor([[0, -1], [14, 3]])],
     ["%y = kiln.take %a0, %a1 : {T0}, {T1}"], ["%y"], torch.take)
sidx = torch.tensor([[0, 1, 0], [2, 2, 1]])
case("scatter_add", [rand(3, 4), sidx, rand(2, 3)],
     ["%y = kiln.scatter_add %a0, %a1, %a2 {dim = 0 : i64} : {T0}, {T1}, {T2}"],
     ["%y"], lambda base, i, s: base.scatter_add(0, i, s))
case("index_add", [rand(3, 4), torch.tensor([2, 0, 2]), rand(3, 3)],
     ["%y = kiln.index_add %a0, %a1, %a2 {dim = 1 : i64} : {T0}, {T1}, {T2}"],
     ["%y"], lambda base, i, s: base.index_add(1, i, s))
case("put accumulate", [rand(2, 3), torch.tensor([5, 0, -1, 2]), rand(4)],
     ["%y = kiln.put %a0, %a1, %a2 {accumulate = true} : {T0}, {T1}, {T2}"],
     ["%y"], lambda base, i, s: base.put(i, s, accumulate=True))
case("put", [rand(2, 3), torch.tensor([5, 0, 2]), rand(3)],
     ["%y = kiln.put %a0, %a1, %a2 : {T0}, {T1}, {T2}"],
     ["%y"], lambda base, i, s: base.put(i, s))

# --- Neural-network ops ----------------------------------------------------------
logits = rand(4, 6)
case("softmax", [logits], ["%y = kiln.softmax %a0 {dim = 1 : i64} : {T0}"],
     ["%y"], lambda t: F.softmax(t, 1))
case("softmax dim 0", [logits], ["%y = kiln.softmax %a0 {dim = 0 : i64} : {T0}"],
     ["%y"], lambda t: F.softmax(t, 0))
case("log_softmax", [logits],
     ["%y = kiln.log_softmax %a0 {dim = -1 : i64} : {T0}"], ["%y"],
     lambda t: F.log_softmax(t, -1))
for red in ["mean", "sum", "none"]:
    case(f"mse_loss {red} broadcast", [rand(4, 6), rand(6)],
         [f'%y = kiln.mse_loss %a0, %a1 {{reduction = "{red}"}} : {{T0}}, {{T1}}'],
         ["%y"], lambda p, t, red=red: F.mse_loss(p, t.expand(4, 6),
                                                  reduction=red))
    case(f"cross_entropy {red}", [logits, torch.tensor([5, 0, 2, 2])],
         [f'%y = kiln.cross_entropy %a0, %a1 {{reduction = "{red}"}} : {{T0}}, {{T1}}'],
         ["%y"], lambda p, t, red=red: F.cross_entropy(p, t, reduction=red))
case("cross_entropy [C]", [rand(6), torch.tensor(3)],
     ["%y = kiln.cross_entropy %a0, %a1 : {T0}, {T1}"], ["%y"],
     lambda p, t: F.cross_entropy(p, t))

# --- Function shapes ---------------------------------------------------------------
case("value used many times", [x],
     ["%s = kiln.mul %a0, %a0 : {T0}, {T0}", "%e = kiln.exp %a0 : {T0}",
      "%y = kiln.add %s, %e : {T0}, {T0}", "%z = kiln.mul %y, %a0 : {T0}, {T0}"],
     ["%z"], lambda t: (t * t + t.exp()) * t)
case("several results, integer result", [rand(4, 6), rand(6)],
     ["%s = kiln.add %a0, %a1 : {T0}, {T1}", "%e = kiln.tanh %s : {T0}",
      "%i = kiln.argmax %e {dim = 1 : i64} : {T0}",
      "%m = kiln.sum %e {dims = array<i64: 0>} : {T0}"],
     ["%e", "%i", "%m"],
     lambda p, q: ((p + q).tanh(), (p + q).tanh().argmax(1),
                   (p + q).tanh().sum(0)))
case("integer argument, unused argument", [rand(5), torch.tensor([4, 1]),
                                           rand(3)],
     ["%y = kiln.take %a0, %a1 : {T0}, {T1}"], ["%y"],
     lambda p, i, unused: torch.take(p, i))
case("result independent of the arguments", [rand(3)],
     ["%c = kiln.full 2.0 : tensor<2xf32>",
      "%y = kiln.exp %a0 : {T0}"], ["%c", "%y"],
     lambda p: (torch.full((2,), 2.0), p.exp()))
case("zero gradient through floor and comparisons", [x],
     ["%f = kiln.floor %a0 : {T0}",
      "%z = kiln.full 0.0 : tensor<f32>",
      "%m = kiln.gt %a0, %z : {T0}, tensor<f32>",
      "%c = kiln.cast %m : tensor<3x5xi1> to {T0}",
      "%p = kiln.mul %c, %a0 : {T0}, {T0}",
      "%y = kiln.add %f, %p : {T0}, {T0}"], ["%y"],
     lambda t: t.floor() + (t > 0).float() * t)
case("clamp/where/pow chain", [rand(64)],
     ["%z = kiln.full 0.0 : tensor<f32>",
      "%two = kiln.full 2.0 : tensor<f32>",
      "%half = kiln.full 0.5 : tensor<f32>",
      "%one = kiln.full 1.0 : tensor<f32>",
      "%m = kiln.gt %a0, %z : {T0}, tensor<f32>",
      "%c = kiln.clamp %a0 {min = -1.0 : f64, max = 1.0 : f64} : {T0}",
      "%p = kiln.pow %c, %two : {T0}, tensor<f32>",
      "%h = kiln.mul %a0, %half : {T0}, tensor<f32>",
      "%w = kiln.where %m, %p, %h : tensor<64xi1>, {T0}, {T0}",
      "%y = kiln.add %w, %one : {T0}, tensor<f32>"], ["%y"],
     lambda t: torch.where(t > 0, torch.clamp(t, -1, 1) ** 2, t * 0.5) + 1)
case("f64 function", [rand(3, 4).double()],
     ["%y = kiln.softmax %a0 {dim = 1 : i64} : {T0}",
      "%s = kiln.log %y : {T0}"], ["%s"],
     lambda t: F.softmax(t, 1).log())


# --- Functions that cannot be differentiated ---------------------------------------
def expect_autodiff_error(label, ir, message):
    c.cases += 1
    out, error = c.autodiff(ir)
    if out is not None or message not in error:
        c.fail(label, f"expected an error with '{message}', got:\n{error}")


expect_autodiff_error(
    "integer-only path through cast",
    "func.func @f(%x: tensor<4xf32>) -> tensor<f32> {\n"
    "  %i = kiln.argmax %x : tensor<4xf32>\n"
    "  %y = kiln.cast %i : tensor<i64> to tensor<f32>\n"
    "  return %y : tensor<f32>\n}\n",
    "'kiln.cast' op has no gradient, but result #0 of @f depends on the "
    "floating-point arguments only through it")
expect_autodiff_error(
    "zeros_like result",
    "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
    "  %y = kiln.ones_like %x : tensor<4xf32>\n"
    "  return %y : tensor<4xf32>\n}\n",
    "'kiln.ones_like' op has no gradient")

c.finish()
