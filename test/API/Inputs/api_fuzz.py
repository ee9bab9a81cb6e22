"""Replays kiln-api-fuzz's random programs (unittests/API/ApiFuzz.cpp) with
PyTorch and compares.

usage: api_fuzz.py KILN_API_FUZZ SEED COUNT

Each op is recomputed by PyTorch from the values Kiln printed for its
operands (so an op is judged on its own, without errors carried from the
ops before it) and compared with the value Kiln printed for it: dtype and
shape exactly, integers and booleans exactly, floats to a tolerance (NaN
where PyTorch has NaN). An op Kiln refused (kiln::Error) must be one
PyTorch refuses too, or one of the documented differences (docs/api.md).
topk's values are compared, its indices checked to point at them (PyTorch
does not promise which of equal values it returns). Gradients: the whole
program is replayed from the leaves with autograd, and the gradients of
the sum Kiln differentiated are compared with Kiln's.
"""
import math
import subprocess
import sys
import warnings

import torch

DTYPES = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64,
          "i32": torch.int32, "i1": torch.bool}


def parse_tensor(fields):
    """DTYPE SHAPE VALUES... -> tensor."""
    dtype = DTYPES[fields[0]]
    shape = [] if fields[1] == "-" else [int(s) for s in fields[1].split("x")]
    values = fields[2:]
    if dtype.is_floating_point:
        data = [float(v) if v.lstrip("-") in ("nan", "inf") else
                float.fromhex(v) for v in values]
    else:
        data = [int(v) for v in values]
    return torch.tensor(data, dtype=dtype).reshape(shape)


def number(text):
    kind, value = text.split(":")
    return float.fromhex(value) if kind == "f" else int(value)


def dims_of(text):
    return None if text == "all" else [int(d) for d in text.split(",")]


def cond_of(t):
    return t if t.dtype == torch.bool else t > 0


def reduce(op, x, dims, keepdim):
    fn = {"sum": torch.sum, "mean": torch.mean, "prod": None,
          "amax": torch.amax, "amin": torch.amin}[op]
    if op == "prod":
        # torch.prod takes one dim: reduce them one at a time, highest
        # first (a product in another order rounds differently: compared
        # with a tolerance).
        if dims is None:
            r = torch.prod(x)
            return r.reshape([1] * x.dim()) if keepdim else r
        r = x
        for d in sorted({d % max(x.dim(), 1) for d in dims}, reverse=True):
            r = torch.prod(r, d, keepdim=True)
        if not keepdim:
            for d in sorted({d % max(x.dim(), 1) for d in dims}, reverse=True):
                r = r.squeeze(d)
        return r
    if dims is None:
        if op in ("amax", "amin"):
            dims = list(range(x.dim()))
            return fn(x, dims, keepdim=keepdim) if dims else fn(x)
        r = fn(x)
        return r.reshape([1] * x.dim()) if keepdim else r
    return fn(x, dims, keepdim=keepdim)


# Ops whose gradient is zero; Kiln derives none through them.
ZERO_GRADIENT = ("floor", "ceil", "trunc", "round")


def float_pow(a, b):
    """kiln::pow: integers (and bools) are raised in float32, where
    PyTorch keeps integers (docs/api.md)."""
    a_float = a.dtype.is_floating_point
    b_float = b.dtype.is_floating_point if torch.is_tensor(b) else \
        isinstance(b, float)
    if not a_float and not b_float:
        a = a.to(torch.float32)
    return torch.pow(a, b)


def apply(kind, args, env):
    """PyTorch's result(s) of one logged op: a tensor or (values, indices)."""
    v = env.get
    if kind == "unary":
        op, x = args[0], v(args[1])
        return getattr(torch, op)(x)
    if kind == "binary":
        op, a, b = args[0], v(args[1]), v(args[2])
        if op == "pow":
            return float_pow(a, b)
        if op == "equal":
            return torch.tensor(torch.equal(a, b))
        return getattr(torch, op)(a, b)
    if kind in ("number_left", "number_right"):
        op, x, s = args[0], v(args[1]), number(args[2])
        if op == "pow":
            return float_pow(x, s)
        fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
              "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
              "gt": lambda a, b: a > b, "eq": lambda a, b: a == b}[op]
        return fn(s, x) if kind == "number_left" else fn(x, s)
    if kind == "where":
        return torch.where(cond_of(v(args[0])), v(args[1]), v(args[2]))
    if kind in ("where_number_left", "where_number_right"):
        c, x, s = cond_of(v(args[0])), v(args[1]), number(args[2])
        return torch.where(c, s, x) if kind == "where_number_left" else \
            torch.where(c, x, s)
    if kind == "clamp":
        # The API's bounds are doubles: an integral one is an integer
        # number (it keeps an integer tensor's dtype; docs/api.md).
        def bound(text):
            if text == "none":
                return None
            b = float(text)
            return int(b) if b == int(b) else b
        return torch.clamp(v(args[0]), bound(args[1]), bound(args[2]))
    if kind == "cast":
        return v(args[0]).to(DTYPES[args[1]])
    if kind == "reduce":
        return reduce(args[0], v(args[1]), dims_of(args[2]), args[3] == "1")
    if kind in ("max_dim", "min_dim"):
        fn = torch.max if kind == "max_dim" else torch.min
        r = fn(v(args[0]), int(args[1]), keepdim=args[2] == "1")
        return (r.values, r.indices)
    if kind in ("argmax", "argmin"):
        fn = torch.argmax if kind == "argmax" else torch.argmin
        return fn(v(args[0]), int(args[1]), keepdim=args[2] == "1")
    if kind == "norm":
        x, p, dims = v(args[0]), float(args[1]), dims_of(args[2])
        return torch.linalg.vector_norm(x, p, dim=dims, keepdim=args[3] == "1")
    if kind == "topk":
        r = torch.topk(v(args[0]), int(args[1]), int(args[2]),
                       largest=args[3] == "1")
        return (r.values, r.indices)
    if kind in ("softmax", "log_softmax"):
        return getattr(torch, kind)(v(args[0]), int(args[1]))
    if kind == "matmul":
        if v(args[0]).dtype != v(args[1]).dtype:
            # Kiln promotes; PyTorch refuses (but for empty operands).
            raise TypeError("matmul of mixed dtypes")
        return torch.matmul(v(args[0]), v(args[1]))
    if kind == "matmul_t":
        return torch.matmul(v(args[0]), v(args[0]).t())
    if kind == "gather":
        return torch.gather(v(args[0]), int(args[1]), v(args[2]))
    if kind == "index_select":
        return torch.index_select(v(args[0]), int(args[1]), v(args[2]))
    if kind == "take":
        return torch.take(v(args[0]), v(args[1]))
    if kind == "kthvalue":
        r = torch.kthvalue(v(args[0]), int(args[1]), int(args[2]),
                           keepdim=args[3] == "1")
        return (r.values, r.indices)
    if kind == "mse_loss":
        return torch.nn.functional.mse_loss(v(args[0]), v(args[1]))
    if kind == "permute":
        x = v(args[0])
        return x.permute(list(range(x.dim() - 1, -1, -1)))
    if kind == "flatten":
        return v(args[0]).reshape(-1)
    # The PyTorch functions Kiln writes with its ops (Composite.cpp).
    if kind == "transpose":
        return torch.transpose(v(args[0]), int(args[1]), int(args[2]))
    if kind == "squeeze":
        x = v(args[0])
        return x.squeeze() if args[1] == "all" else x.squeeze(int(args[1]))
    if kind == "unsqueeze":
        return v(args[0]).unsqueeze(int(args[1]))
    if kind == "flatten_dims":
        return torch.flatten(v(args[0]), int(args[1]), int(args[2]))
    if kind in ("var", "std"):
        x, dims = v(args[0]), dims_of(args[1])
        fn = torch.var if kind == "var" else torch.std
        # dims=None reduces all; an empty list would too.
        return fn(x, dims, unbiased=args[2] == "1", keepdim=args[3] == "1")
    if kind == "logsumexp":
        x, dims = v(args[0]), dims_of(args[1])
        if dims is None:
            dims = list(range(x.dim()))
        return torch.logsumexp(x, dims, keepdim=args[3] == "1")
    if kind == "linear":
        bias = None if args[2] == "none" else v(args[2])
        return torch.nn.functional.linear(v(args[0]), v(args[1]), bias)
    if kind == "layer_norm":
        # In float64, cast back: PyTorch's float32 kernel computes rows of
        # one element as x * rstd - mean * rstd, whose rounding (1e-4 after
        # the division by sqrt(eps)) is no answer to compare with; Kiln's
        # x - mean is exactly 0 there.
        x, k = v(args[0]), int(args[1])
        weight = None if args[2] == "none" else v(args[2]).double()
        bias = None if args[3] == "none" else v(args[3]).double()
        return torch.nn.functional.layer_norm(
            x.double(), x.shape[x.dim() - k:], weight, bias).to(x.dtype)
    if kind == "narrow":
        return torch.narrow(v(args[0]), int(args[1]), int(args[2]),
                            int(args[3]))
    if kind in ("split_piece", "chunk_piece"):
        fn = torch.split if kind == "split_piece" else torch.chunk
        parts = fn(v(args[0]), int(args[1]), int(args[2]))
        return parts[int(args[3]) % len(parts)]
    if kind == "cat":
        # Operands without elements along the dim (1-D empty tensors among
        # them, which PyTorch skips) take no part in Kiln's graph: no
        # gradient path goes through them (PyTorch's gives them an empty
        # gradient).
        tensors, dim = [v(a) for a in args[1:]], int(args[0])

        def empty_along(t):
            if t.shape == (0,):
                return True
            return t.dim() > 0 and -t.dim() <= dim < t.dim() and \
                t.shape[dim] == 0
        if not all(empty_along(t) for t in tensors):
            tensors = [t.detach() if empty_along(t) else t for t in tensors]
        return torch.cat(tensors, dim)
    if kind == "stack":
        return torch.stack([v(a) for a in args[1:]], int(args[0]))
    if kind in ("sort", "argsort"):
        # Kiln's sort is stable (ties by index, as topk's order).
        r = torch.sort(v(args[0]), dim=int(args[1]),
                       descending=args[2] == "1", stable=True)
        return (r.values, r.indices) if kind == "sort" else r.indices
    if kind == "masked_fill":
        return v(args[0]).masked_fill(cond_of(v(args[1])), number(args[2]))
    if kind == "one_hot":
        return torch.nn.functional.one_hot(v(args[0]), int(args[1]))
    if kind == "nll_loss":
        return torch.nn.functional.nll_loss(v(args[0]), v(args[1]),
                                            reduction=args[2], ignore_index=-1)
    if kind in ("l1_loss", "bce_logits"):
        a, b = v(args[0]), v(args[1])
        if kind == "l1_loss":
            return torch.nn.functional.l1_loss(a, b, reduction=args[2])
        return torch.nn.functional.binary_cross_entropy_with_logits(
            a, b, reduction=args[2])
    if kind == "silu":
        return torch.nn.functional.silu(v(args[0]))
    if kind == "leaky_relu":
        return torch.nn.functional.leaky_relu(v(args[0]), float.fromhex(args[1]))
    if kind == "fn":
        return functional(args[0], args[1:], v)
    raise ValueError(f"unknown op kind {kind}")


def ints(text):
    return [] if text == "none" else [int(d) for d in text.split(",")]


def functional(fn, args, v):
    """The functions of lib/API/Functional.cpp ("fn NAME ARGS...")."""
    F = torch.nn.functional
    h = float.fromhex
    if fn in ("isnan", "isinf", "isfinite", "logical_not", "sign",
              "reciprocal", "square", "log1p", "expm1", "erf"):
        return getattr(torch, fn)(v(args[0]))
    if fn == "nan_to_num":
        return torch.nan_to_num(v(args[0]), h(args[1]))
    if fn == "hardswish":
        # PyTorch's values; at NaN its vectorized kernel's gradient (the
        # upstream one times x / 3 + 1/2: NaN), where its scalar tail
        # would pass the upstream one: the same answer for every element.
        x = v(args[0])
        xn = torch.where(torch.isnan(x), x, torch.zeros_like(x))
        return torch.where(torch.isnan(x), xn * xn, F.hardswish(x))
    if fn in ("softsign", "selu", "hardsigmoid", "mish", "logsigmoid"):
        return getattr(F, fn)(v(args[0]))
    if fn == "softplus":
        return F.softplus(v(args[0]), h(args[1]), h(args[2]))
    if fn in ("elu", "celu"):
        return getattr(F, fn)(v(args[0]), h(args[1]))
    if fn == "gelu":
        return F.gelu(v(args[0]), approximate=args[1])
    if fn in ("hardtanh", "relu6"):
        # PyTorch's values; its vectorized kernel's gradient (the upstream
        # one where lo < x < hi, else 0 -- NaN included), where its scalar
        # tail would pass NaN's: the same answer for every element.
        x = v(args[0])
        lo, hi = (h(args[1]), h(args[2])) if fn == "hardtanh" else (0.0, 6.0)
        inside = (x > lo) & (x < hi)
        return torch.where(inside, x, F.hardtanh(x, lo, hi).detach())
    if fn in ("logical_and", "logical_or", "logical_xor"):
        return getattr(torch, fn)(v(args[0]), v(args[1]))
    if fn in ("any", "all"):
        f = getattr(torch, fn)
        if args[1] == "all":
            return f(v(args[0]))
        return f(v(args[0]), int(args[1]), keepdim=args[2] == "1")
    if fn == "lerp_number":
        return torch.lerp(v(args[0]), v(args[1]), h(args[2]))
    if fn == "lerp":
        return torch.lerp(v(args[0]), v(args[1]), v(args[2]))
    if fn in ("addcmul", "addcdiv"):
        return getattr(torch, fn)(v(args[0]), v(args[1]), v(args[2]),
                                  value=number(args[3]))
    if fn in ("smooth_l1_loss", "huber_loss"):
        p = h(args[3])
        if fn == "smooth_l1_loss":
            return F.smooth_l1_loss(v(args[0]), v(args[1]), reduction=args[2],
                                    beta=p)
        return F.huber_loss(v(args[0]), v(args[1]), reduction=args[2],
                            delta=p)
    if fn == "kl_div":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reduction="mean"'s warning
            return F.kl_div(v(args[0]), v(args[1]), reduction=args[2],
                            log_target=args[3] == "1")
    if fn == "softmin":
        return F.softmin(v(args[0]), int(args[1]))
    if fn in ("hardshrink", "softshrink"):
        # PyTorch's values; at NaN its vectorized backward's gradient (0),
        # where its scalar tail would pass the upstream one.
        x, lambd = v(args[0]), h(args[1])
        y = getattr(F, fn)(x, lambd)
        return torch.where(torch.isnan(x), y.detach(), y)
    if fn == "tanhshrink":
        return F.tanhshrink(v(args[0]))
    if fn == "threshold":
        return F.threshold(v(args[0]), h(args[1]), h(args[2]))
    if fn == "glu":
        return F.glu(v(args[0]), int(args[1]))
    if fn == "margin_ranking_loss":
        return F.margin_ranking_loss(v(args[0]), v(args[1]), v(args[2]),
                                     h(args[3]), reduction=args[4])
    if fn == "hinge_embedding_loss":
        return F.hinge_embedding_loss(v(args[0]), v(args[1]), h(args[2]),
                                      reduction=args[3])
    if fn in ("soft_margin_loss", "multilabel_soft_margin_loss"):
        return getattr(F, fn)(v(args[0]), v(args[1]), reduction=args[2])
    if fn == "poisson_nll_loss":
        return F.poisson_nll_loss(v(args[0]), v(args[1]), args[2] == "1",
                                  args[3] == "1", reduction=args[4])
    if fn == "pairwise_distance":
        return F.pairwise_distance(v(args[0]), v(args[1]), h(args[2]),
                                   keepdim=args[3] == "1")
    if fn == "triplet_margin_loss":
        return F.triplet_margin_loss(v(args[0]), v(args[1]), v(args[2]),
                                     p=h(args[3]), swap=args[4] == "1",
                                     reduction=args[5])
    if fn == "trace":
        # PyTorch 1.13's trace passes a tall matrix's gradient to positions
        # i (m + 1) beyond the diagonal too ([5, 1]: rows 0, 2 and 4) --
        # a bug; the sum of torch.diagonal has the right one (and the same
        # value), which Kiln's is compared with.
        x = v(args[0])
        if x.dim() != 2 or x.dtype == torch.bool:
            return torch.trace(x)  # PyTorch's refusal
        return torch.diagonal(x).sum()
    if fn == "cosine_similarity":
        return F.cosine_similarity(v(args[0]), v(args[1]), int(args[2]))
    if fn == "normalize":
        return F.normalize(v(args[0]), h(args[1]), int(args[2]))
    if fn == "flip":
        return torch.flip(v(args[0]), ints(args[1]))
    if fn == "roll":
        dims = ints(args[2])
        return torch.roll(v(args[0]), ints(args[1]), dims if dims else None)
    if fn == "repeat":
        return v(args[0]).repeat(ints(args[1]))
    if fn == "tile":
        return torch.tile(v(args[0]), ints(args[1]))
    if fn in ("tril", "triu"):
        return getattr(torch, fn)(v(args[0]), int(args[1]))
    if fn == "eye":
        n, m = int(args[0]), int(args[1])
        return torch.eye(n, m if m >= 0 else n)
    if fn in ("outer", "dot", "mv", "mm", "bmm"):
        return getattr(torch, fn)(v(args[0]), v(args[1]))
    if fn == "addmm":
        return torch.addmm(v(args[0]), v(args[1]), v(args[2]),
                           beta=h(args[3]), alpha=h(args[4]))
    raise ValueError(f"unknown function {fn}")


# Ops Kiln refuses where PyTorch answers: softmax (and softmin) of an empty
# integer or bool tensor (PyTorch refuses a non-empty one: Kiln's softmax is
# floating-point only). matmul of mixed dtypes is the reverse (Kiln
# promotes, PyTorch refuses).
def documented_refusal(kind, args, env):
    if kind in ("softmax", "log_softmax"):
        x = env[args[0]]
        return not x.dtype.is_floating_point and x.numel() == 0
    if kind == "fn" and args[0] == "softmin":  # softmax(-x): the same
        x = env[args[1]]
        return not x.dtype.is_floating_point and x.numel() == 0
    return False


def within_model(kind, args, env, got, want):
    """`want`, with the elements Kiln's `got` matches within an error the
    op's documented algorithm allows taken as matching. layer_norm: Kiln's
    two-pass mean rounds in the input's precision, an error of a few ulps
    of the mean that the division by sqrt(var + eps) magnifies -- a row of
    equal values, whose answer is 0, comes out near 8u |x| / sqrt(eps) |w|
    (PyTorch's Welford mean is exact there); the bound 8u mean|x| rstd |w|
    is below the tolerance wherever the row's variance is not tiny."""
    if (kind != "layer_norm" or got is None or got.shape != want.shape
            or got.dtype != want.dtype):
        return want
    x, k = env[args[0]], int(args[1])
    dims = list(range(x.dim() - k, x.dim()))
    xd = x.double()
    u = 2.0 ** -24 if x.dtype == torch.float32 else 2.0 ** -53
    rstd = torch.rsqrt(xd.var(dims, unbiased=False, keepdim=True) + 1e-5)
    bound = 8 * u * xd.abs().mean(dims, keepdim=True) * rstd
    if args[2] != "none":
        bound = bound * env[args[2]].double().abs()
    ok = (got.double() - want.double()).abs() <= bound
    return torch.where(ok, got, want)


def close(got, want):
    """None if `got` matches `want`, else why not."""
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, PyTorch {want.dtype}"
    if list(got.shape) != list(want.shape):
        return f"shape {list(got.shape)}, PyTorch {list(want.shape)}"
    if not want.dtype.is_floating_point:
        return None if torch.equal(got, want) else "values differ"
    if not torch.equal(torch.isnan(got), torch.isnan(want)):
        return "NaN positions differ"
    tol = 1e-4 if want.dtype == torch.float32 else 1e-10
    if torch.allclose(got, want, rtol=tol, atol=tol, equal_nan=True):
        return None
    return "values differ"


def check_program(lines, report):
    env = {}        # Kiln's printed values
    ops = []        # (name, kind, args) in order
    leaves = {}     # name -> (tensor, requires grad)
    errors = {}
    values = {}
    grads = {}
    backward = loss_of = None
    for line in lines:
        fields = line.split()
        tag = fields[0]
        if tag == "leaf":
            grad = fields[-1] == "grad"
            t = parse_tensor(fields[2:len(fields) - grad])
            leaves[fields[1]] = (t, grad)
            values[fields[1]] = t
        elif tag == "op":
            ops.append((fields[1], fields[2], fields[3:]))
        elif tag == "error":
            errors[fields[1]] = " ".join(fields[2:])
        elif tag == "value":
            values[fields[1]] = parse_tensor(fields[2:])
        elif tag == "loss":
            loss_of = fields[2]
        elif tag == "backward":
            backward = fields[1]
        elif tag == "grad":
            grads[fields[1]] = parse_tensor(fields[2:])
        elif tag == "nograd":
            grads[fields[1]] = None
        elif tag == "nobackward":
            backward = ("none", fields[1], " ".join(fields[2:]))
    env.update(values)
    checked = 0
    for name, kind, args in ops:
        operands_known = all(a in env for a in args if a.startswith("v"))
        if not operands_known:
            continue  # an operand was refused before
        try:
            want = apply(kind, args, env)
            torch_error = None
        except (RuntimeError, TypeError, IndexError, ValueError) as e:
            want, torch_error = None, str(e).splitlines()[0]
        if name in errors:
            if torch_error is None and not documented_refusal(kind, args, env):
                report(f"{name} = {kind} {' '.join(args)}: Kiln refused "
                       f"({errors[name]}) what PyTorch computes")
            continue
        if torch_error is not None:
            continue  # Kiln answers where PyTorch refuses (e.g. matmul of mixed dtypes)
        if isinstance(want, torch.Tensor):
            want = within_model(kind, args, env, values.get(name), want)
        checked += 1
        if isinstance(want, tuple):
            got_values, got_indices = values.get(name), values.get(name + "_i")
            why = close(got_values, want[0])
            if why is None and kind in ("topk", "kthvalue"):
                x, dim = env[args[0]], int(args[2])
                idx = got_indices
                if kind == "kthvalue" and args[3] == "0":
                    idx = idx.unsqueeze(dim)
                picked = torch.gather(x, dim, idx)
                if kind == "kthvalue" and args[3] == "0":
                    picked = picked.squeeze(dim)
                if got_indices.dtype != torch.int64 or \
                        close(picked, got_values) is not None:
                    why = f"{kind} indices do not point at the values"
            elif why is None:
                why = close(got_indices, want[1])
            if why:
                report(f"{name} = {kind} {' '.join(args)}: {why}\n"
                       f"  kiln {got_values} {got_indices}\n  torch {want}")
        else:
            got = values.get(name)
            why = close(got, want) if got is not None else "no value printed"
            if why:
                report(f"{name} = {kind} {' '.join(args)}: {why}\n"
                       f"  operands {[env.get(a) for a in args]}\n"
                       f"  kiln {got}\n  torch {want}")
    if loss_of is None:
        return checked
    # prod's gradient with NaN or infinity in the product: PyTorch's takes
    # one of two formulas by whether the whole tensor has a zero (others'
    # product where it has, result / x where not), which differ there;
    # Kiln's decides per reduced group. Not compared.
    for name, kind, args in ops:
        if kind == "reduce" and args[0] == "prod" and args[1] in env and \
                env[args[1]].dtype.is_floating_point and \
                not bool(torch.isfinite(env[args[1]]).all()):
            return checked
    # var/std dividing by max(0, N - correction) = 0: the value is NaN or
    # infinite, and so are the gradients, by formulas that differ there
    # (Kiln's chain rule gives 0 * inf = NaN where PyTorch's var_backward
    # gave inf). Not compared. Nor var/std of NaN or infinite values:
    # PyTorch's var_backward is 2 / N' (x - mean), Kiln's chain rule
    # through the mean 2 / N' (c - mean(c)), c = x - mean, whose mean(c)
    # (0 for finite values) is NaN there: NaN where PyTorch has +-inf.
    for name, kind, args in ops:
        if kind in ("var", "std") and args[0] in env:
            x, dims = env[args[0]], dims_of(args[1])
            count = x.numel() if dims is None else math.prod(
                x.shape[d] for d in dims) if x.dim() else 1
            if count - int(args[2]) <= 0:
                return checked
            if x.dtype.is_floating_point and \
                    not bool(torch.isfinite(x).all()):
                return checked
    # smooth_l1_loss with beta 0 at a zero difference: PyTorch's backward
    # gives -1 to both operands there (its x <= -beta test, a kink where
    # l1_loss's own gradient is 0); Kiln's is l1_loss's. Not compared.
    for name, kind, args in ops:
        if kind == "fn" and args[0] == "smooth_l1_loss" and \
                float.fromhex(args[4]) == 0.0 and args[1] in env and \
                args[2] in env:
            try:
                d = env[args[1]] - env[args[2]]
            except RuntimeError:
                continue
            if bool((d == 0).any()):
                return checked
    # kl_div of negative targets (no probabilities: t log t is NaN): Kiln's
    # gradient there is NaN whatever the upstream one, PyTorch's xlogy
    # backward gives 0 where the upstream gradient is 0. Not compared.
    for name, kind, args in ops:
        if kind == "fn" and args[0] == "kl_div" and args[4] == "0" and \
                args[2] in env and bool((env[args[2]] < 0).any()):
            return checked
    # Gradients: replay from the leaves with autograd (float64 copies of
    # float leaves would change dtypes: replay in the leaves' own dtypes).
    replay = {}
    for leaf, (t, grad) in leaves.items():
        replay[leaf] = t.clone().requires_grad_(grad)
    for name, kind, args in ops:
        if name in errors or not all(a in replay for a in args
                                     if a.startswith("v")):
            continue
        try:
            if kind == "unary" and args[0] in ZERO_GRADIENT:
                # No gradient at all, as in Kiln (PyTorch's is a zero that
                # the rules before it multiply: 0 * NaN is NaN there).
                r = getattr(torch, args[0])(replay[args[1]].detach())
            elif kind in ("topk", "kthvalue") and name + "_i" in values:
                # Kiln's choice among equal values (lowest index first;
                # PyTorch's is unspecified) routes the gradient.
                idx = values[name + "_i"]
                dim = int(args[2])
                squeeze = kind == "kthvalue" and args[3] == "0"
                g = torch.gather(replay[args[0]], dim,
                                 idx.unsqueeze(dim) if squeeze else idx)
                r = (g.squeeze(dim) if squeeze else g, idx)
            else:
                r = apply(kind, args, replay)
        except (RuntimeError, TypeError, IndexError, ValueError):
            continue
        if isinstance(r, tuple):
            replay[name], replay[name + "_i"] = r
        else:
            replay[name] = r
    if loss_of not in replay:
        return checked  # on a path PyTorch refuses (e.g. mixed matmul)
    loss = replay[loss_of].sum()
    wanted = [(leaf, t) for leaf, (t, g) in leaves.items() if g]
    inputs = [replay[leaf] for leaf, _ in wanted]
    if isinstance(backward, tuple):
        if loss.requires_grad:
            report(f"backward of the sum of {loss_of}: Kiln refused "
                   f"({backward[2]}), PyTorch differentiates it")
        return checked
    if not loss.requires_grad:
        # Only through ops without a gradient (floor, round, ...): Kiln's
        # gradients must be zeros.
        torch_grads = [None] * len(inputs)
    else:
        try:
            torch_grads = torch.autograd.grad(loss, inputs, allow_unused=True)
        except RuntimeError:
            return checked  # PyTorch's own backward fails (e.g. bool math)
    mixed = any(t.dtype == torch.float32 for t in values.values())
    for (leaf, t), want in zip(wanted, torch_grads):
        got = grads.get(leaf)
        if want is None:
            want = torch.zeros_like(t)
        if got is None:
            got = torch.zeros_like(t)
        if not torch.equal(torch.isnan(got), torch.isnan(want)):
            report(f"grad of {leaf}: NaN positions differ\n  kiln {got}\n"
                   f"  torch {want}")
            continue
        scale = max([1.0] + [float(want.nan_to_num(0, 0, 0).abs().max())
                             for _ in range(want.numel() > 0)])
        # An f64 gradient carries f32 values where the program mixes them
        # in (an f64 tensor times an f32 rank-0 mean, which stays f32: the
        # mean's last bit differs between the two sums).
        tol = (1e-3 if t.dtype == torch.float32 else
               1e-5 if mixed else 1e-8) * scale
        if not torch.allclose(got, want, rtol=tol, atol=tol, equal_nan=True):
            report(f"grad of {leaf}: values differ\n  kiln {got}\n"
                   f"  torch {want}")
    return checked


def main():
    # PyTorch's warnings (mse_loss of broadcast shapes, ...) are not ours.
    warnings.filterwarnings("ignore")
    if len(sys.argv) != 4:
        sys.exit("usage: api_fuzz.py KILN_API_FUZZ SEED COUNT")
    out = subprocess.run([sys.argv[1], sys.argv[2], sys.argv[3]],
                         capture_output=True, text=True, timeout=3000)
    if out.returncode != 0:
        print(f"FAIL kiln-api-fuzz exited {out.returncode}:\n{out.stderr}")
        sys.exit(1)
    programs, current = [], None
    for line in out.stdout.splitlines():
        if line.startswith("program "):
            current = []
            programs.append((line, current))
        elif current is not None and line:
            current.append(line)
    failures, checked = [], 0
    for header, lines in programs:
        problems = [line for line in lines if line.startswith("replay ")]
        lines = [line for line in lines if not line.startswith("replay ")]
        checked += check_program(lines, problems.append)
        for p in problems:
            failures.append(f"{header}: {p}")
    for f in failures:
        print("FAIL", f)
    print(f"api_fuzz: {len(programs)} programs, {checked} ops checked, "
          f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
