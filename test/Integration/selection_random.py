# Randomized differential test of the selection and arg-extreme fast paths
# on long rows: topk, kthvalue, max/min with dim and argmax/argmin over
# random lengths clustered around the thresholds where the lowering changes
# algorithm (rows short enough to rank whole, the bound selection's limits
# 4096..32768, the 512-element blocks, vector widths, the rows of 2^16 and
# more whose passes split across threads when few), random k (1..n,
# clustered at the lane counts 8/16/32/64), f32/f64/i64, rows along dim 0
# or 1, 1-3 threads, and data built to break selection: ties, all-equal
# rows, sorted and reversed rows, NaNs (sparse and dense), +-0, +-inf, i64
# extremes. The oracle is exact:
# ops.md's tie rule (lowest index wins; sorted topk lists equal values by
# ascending index) computed with a stable sort, so indices and value bits
# must match exactly. A fused elementwise producer (neg) covers the fused
# read. KILN_RANDOM_SELECTION=N runs N cases, KILN_RANDOM_SEED=S others.
# RUN: %python %s
import os
import random

import torch

from kiln_testing import Checker, same_bits, ttype

COUNT = int(os.environ.get("KILN_RANDOM_SELECTION", "60"))
SEED = int(os.environ.get("KILN_RANDOM_SEED", "1"))
rng = random.Random(SEED)
torch.manual_seed(SEED)
c = Checker("selection_random")
THRESHOLDS = [8, 16, 32, 64, 512, 1024, 2048, 4096, 8192, 16384, 32768,
              65536, 131072]


def pick_length():
    r = rng.random()
    if r < 0.5:
        return max(1, rng.choice(THRESHOLDS) + rng.randint(-3, 3))
    return rng.randint(1, 3000) if r < 0.8 else rng.randint(1, 40000)


def pick_k(n):
    r = rng.random()
    if r < 0.6:
        k = rng.randint(1, 40)
    elif r < 0.8:
        k = rng.choice([1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65,
                        128, 129])
    else:
        k = rng.randint(1, n)
    return min(k, n)


def rows_for(n):
    return rng.choice([1, 2, 3, 5, 16]) if n > 4000 else \
        rng.choice([1, 3, 16, 64, 300])


def data(shape, dtype):
    """Random values of a kind chosen to stress selection."""
    kind = rng.choice(["normal", "normal", "ties", "nan", "special", "equal",
                       "ascending", "descending"])
    n = 1
    for d in shape:
        n *= d
    ramp = torch.arange(n).reshape(shape)
    if dtype == torch.int64:
        if kind == "ties":
            return torch.randint(-3, 3, shape), kind
        if kind == "equal":
            return torch.full(shape, 5), kind
        if kind == "ascending":
            return ramp, kind
        if kind == "descending":
            return -ramp, kind
        t = torch.randint(-1000000, 1000000, shape)
        if kind == "special":
            flat = t.view(-1)
            flat[torch.randint(0, n, (max(1, n // 50),))] = -2**63
            flat[torch.randint(0, n, (max(1, n // 50),))] = 2**63 - 1
        return t, kind
    t = torch.randn(shape, dtype=dtype)
    if kind == "ties":
        t = torch.randint(-3, 3, shape).to(dtype)
    elif kind == "nan":
        t[torch.rand(shape) < rng.choice([0.001, 0.01, 0.3])] = float("nan")
    elif kind == "special":
        special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"),
                                float("nan"), 1.0, -1.0], dtype=dtype)
        picked = special[torch.randint(0, len(special), shape)]
        t = torch.where(torch.rand(shape) < 0.5, picked, t)
    elif kind == "equal":
        t = torch.full(shape, rng.choice([0.0, -0.0, 1.5, float("nan"),
                                          -float("inf")]), dtype=dtype)
    elif kind == "ascending":
        t = ramp.to(dtype) * 0.25
    elif kind == "descending":
        t = ramp.to(dtype) * -0.25
    return t, kind


def first_true(mask):
    """Index of the first True along the last dim."""
    return torch.argmax(mask.to(torch.int8), dim=-1)


def program(x, op, attrs, results, fused):
    """IR of @f(%x) applying `op` (after a fused neg when `fused`)."""
    xt = ttype(x)
    rt = ", ".join(ttype(r) for r in results)
    names = ", ".join(f"%r#{i}" for i in range(len(results)))
    lines = [f"func.func @f(%x: {xt}) -> ({rt}) {{"]
    source = "%x"
    if fused:
        lines.append(f'  %n = "kiln.neg"(%x) : ({xt}) -> {xt}')
        source = "%n"
    lines.append(f'  %r:{len(results)} = "kiln.{op}"({source}) {{{attrs}}} : '
                 f"({xt}) -> ({rt})")
    lines.append(f"  return {names} : {rt}\n}}\n")
    return "\n".join(lines)


def run(label, ir, x, want, threads):
    c.cases += 1
    code, outs, stderr = c.run(ir, [x], [f"--threads={threads}"])
    if code != 0:
        return c.fail(label, f"kiln-run exited with {code}:\n{stderr}")
    for number, (got, expected) in enumerate(zip(outs, want)):
        if not same_bits(got, expected):
            where = (got != expected).nonzero()[:3].tolist() \
                if got.shape == expected.shape else tuple(got.shape)
            return c.fail(label, f"result #{number} differs at {where}:\n"
                          f"  got:      {got.flatten()[:8]}\n"
                          f"  expected: {expected.flatten()[:8]}")
    return True


def topk_case(dtype, fused, threads):
    n = pick_length()
    k = pick_k(n)
    dim = 0 if rng.random() < 0.15 else 1
    shape = (n, rows_for(n)) if dim == 0 else (rows_for(n), n)
    x, kind = data(shape, dtype)
    source = -x if fused else x
    largest = rng.random() < 0.7
    in_order = rng.random() < 0.8
    order = torch.sort(source, dim=dim, descending=largest,
                       stable=True).indices.narrow(dim, 0, k)
    values = source.gather(dim, order)
    attrs = (f"k = {k} : i64, dim = {dim} : i64, largest = "
             f"{str(largest).lower()}, sorted = {str(in_order).lower()}")
    label = (f"topk {dtype} {shape} {attrs} {kind}, fused {fused}, "
             f"{threads} threads")
    ir = program(x, "topk", attrs, [values, order], fused)
    if in_order:
        return run(label, ir, x, [values, order], threads)
    # Unsorted: the same elements in an order of the lowering's choosing;
    # compare both sorted by index.
    c.cases += 1
    code, outs, stderr = c.run(ir, [x], [f"--threads={threads}"])
    if code != 0:
        return c.fail(label, f"kiln-run exited with {code}:\n{stderr}")
    got_values, got_order = outs
    by_index = torch.sort(got_order, dim=dim).indices
    want_index = torch.sort(order, dim=dim).indices
    if not (torch.equal(got_order.gather(dim, by_index),
                        order.gather(dim, want_index)) and
            same_bits(got_values.gather(dim, by_index),
                      values.gather(dim, want_index))):
        return c.fail(label, "a different set of elements")
    return True


def kthvalue_case(dtype, fused, threads):
    n = pick_length()
    k = rng.choice([pick_k(n), rng.randint(1, n), (n + 1) // 2, n])
    shape = (rows_for(n), n)
    x, kind = data(shape, dtype)
    source = -x if fused else x
    kth = torch.sort(source, dim=1, stable=True).values[:, k - 1:k]
    equal = source == kth
    if dtype.is_floating_point:
        equal |= torch.isnan(source) & torch.isnan(kth)
    index = first_true(equal)
    value = source.gather(1, index[:, None])[:, 0]
    attrs = f"k = {k} : i64, dim = 1 : i64"
    label = (f"kthvalue {dtype} {shape} {attrs} {kind}, fused {fused}, "
             f"{threads} threads")
    return run(label, program(x, "kthvalue", attrs, [value, index], fused),
               x, [value, index], threads)


def extreme_case(dtype, fused, threads):
    n = pick_length()
    rows = rng.choice([1, 2, 3, 17, 64]) if n > 4000 else \
        rng.choice([1, 3, 17, 64, 300, 1000])
    shape, dim = (rows, n), rng.choice([0, 1, 1])
    if rng.random() < 0.2:
        shape, dim = (rng.randint(1, 9), rows, min(n, 3000)), rng.randint(0, 2)
    x, kind = data(shape, dtype)
    source = -x if fused else x
    op = rng.choice(["max", "min", "argmax", "argmin"])
    keep = rng.random() < 0.3
    along = source.movedim(dim, -1)
    greater = op.endswith("max")
    if dtype.is_floating_point:
        # The first NaN wins for max and min alike (PyTorch's answer).
        nan = torch.isnan(along)
        filled = along.masked_fill(nan, -float("inf") if greater
                                   else float("inf"))
        best = filled.amax(-1, keepdim=True) if greater else \
            filled.amin(-1, keepdim=True)
        hit = torch.where(nan.any(-1, keepdim=True), nan, along == best)
    else:
        best = along.amax(-1, keepdim=True) if greater else \
            along.amin(-1, keepdim=True)
        hit = along == best
    index = first_true(hit)
    value = along.gather(-1, index[..., None])[..., 0]
    if keep:
        index, value = index.unsqueeze(dim), value.unsqueeze(dim)
    want = [value, index] if op in ("max", "min") else [index]
    attrs = f"dim = {dim} : i64" + (", keepdim = true" if keep else "")
    label = (f"{op} {dtype} {tuple(shape)} {attrs} {kind}, fused {fused}, "
             f"{threads} threads")
    return run(label, program(x, op, attrs, want, fused), x, want, threads)


CASES = [topk_case, kthvalue_case, extreme_case]
for number in range(COUNT):
    dtype = rng.choice([torch.float32, torch.float32, torch.float64,
                        torch.int64])
    fused = dtype.is_floating_point and rng.random() < 0.25
    CASES[number % len(CASES)](dtype, fused, rng.choice([1, 2, 3]))
c.finish()
