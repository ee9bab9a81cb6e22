# Reductions against PyTorch: sum/mean/prod/amax/amin/norm over dims
# (negative, several, all, keepdim, rank 0, empty), max/min/argmax/argmin
# with NaN (first NaN wins) and ties (lowest index), equal.
# RUN: %python %s
import numpy as np
import torch

from kiln_testing import Checker, func_ir, same_bits, ttype

torch.manual_seed(1)
c = Checker("reductions")


def reduce_ir(op, x, want, attrs=""):
    return (f"func.func @f(%x: {ttype(x)}) -> {ttype(want)} {{\n"
            f"  %y = kiln.{op} %x {attrs} : {ttype(x)}\n"
            f"  return %y : {ttype(want)}\n}}\n")


def dims_attr(dims, keepdim):
    parts = []
    if dims is not None:
        parts.append("dims = array<i64: " + ", ".join(map(str, dims)) + ">")
    if keepdim:
        parts.append("keepdim = true")
    return "{" + ", ".join(parts) + "}" if parts else ""


ops = {
    "sum": lambda x, d, k: torch.sum(x, d, keepdim=k) if d is not None else torch.sum(x),
    "mean": lambda x, d, k: torch.mean(x, d, keepdim=k) if d is not None else torch.mean(x),
    "prod": lambda x, d, k: torch.prod(x, d[0], keepdim=k) if d is not None else torch.prod(x),
    "amax": lambda x, d, k: torch.amax(x, d if d is not None else [], keepdim=k) if d is not None else torch.amax(x),
    "amin": lambda x, d, k: torch.amin(x, d if d is not None else [], keepdim=k) if d is not None else torch.amin(x),
}
x = torch.randn(3, 4, 5)
for op, fn in ops.items():
    for dims in (None, [0], [-1], [1], [0, 2], [-1, -3]):
        if op == "prod" and dims is not None and len(dims) > 1:
            continue  # torch.prod takes one dim
        for keepdim in (False, True):
            if dims is None and keepdim:
                if op == "prod":
                    continue  # torch.prod reduces one dim at a time
                # Absent dims with keepdim: every dim kept as size 1.
                want = fn(x, [0, 1, 2], True)
            else:
                want = fn(x, dims, keepdim)
            c.check(f"{op} dims={dims} keepdim={keepdim}",
                    reduce_ir(op, x, want, dims_attr(dims, keepdim)), [x], want,
                    rtol=1e-5, atol=1e-5)
    if op in ("sum", "prod", "amax", "amin"):
        n = torch.randint(-4, 5, (4, 6))
        want = fn(n, [1], False)
        c.check(f"{op} i64", reduce_ir(op, n, want, dims_attr([1], False)),
                [n], want)
    # f64
    x64 = torch.randn(5, 7, dtype=torch.float64)
    want = fn(x64, [0], False)
    c.check(f"{op} f64", reduce_ir(op, x64, want, dims_attr([0], False)),
            [x64], want)

# Empty reductions: sum of nothing is 0, mean NaN, prod 1.
e = torch.zeros(3, 0)
for op, fn in (("sum", torch.sum), ("mean", torch.mean), ("prod", torch.prod)):
    want = fn(e, 1)
    c.check(f"{op} empty dim", reduce_ir(op, e, want, dims_attr([1], False)),
            [e], want)
# No kept position, a reduced dim long enough to split: the split planner
# divided by the kept positions (a compiler crash, SIGFPE).
e = torch.zeros(0, 33410)
for op, fn in (("sum", torch.sum), ("amax", torch.amax)):
    want = fn(e, 1)
    c.check(f"{op} over a long dim of no rows",
            reduce_ir(op, e, want, dims_attr([1], False)), [e], want)
# Rank 0.
s = torch.tensor(3.5)
c.check("sum rank-0", reduce_ir("sum", s, s), [s], s)
# NaN propagates through amax/amin/sum.
nanx = torch.tensor([[1.0, float("nan"), 3.0], [-1.0, 2.0, 0.5]])
for op in ("amax", "amin", "sum"):
    want = ops[op](nanx, [1], False)
    c.check(f"{op} NaN", reduce_ir(op, nanx, want, dims_attr([1], False)),
            [nanx], want)

# norm.
for p, dims in ((2.0, None), (1.0, [1]), (3.0, [0]), (float("inf"), [1]),
                (0.5, [-1])):
    want = torch.norm(x[0], p=p, dim=dims) if dims else torch.norm(x[0], p=p)
    pattr = "0x7FF0000000000000" if p == float("inf") else repr(p)
    attrs = f"{{p = {pattr} : f64" + (
        f", dims = array<i64: {dims[0]}>" if dims else "") + "}"
    c.check(f"norm p={p} dims={dims}", reduce_ir("norm", x[0], want, attrs),
            [x[0]], want, rtol=1e-5, atol=1e-5)


def argscan_ir(op, x, want_v, want_i, attrs):
    return (f"func.func @f(%x: {ttype(x)}) -> ({ttype(want_v)}, {ttype(want_i)}) {{\n"
            f"  %v, %i = kiln.{op} %x {attrs} : {ttype(x)}\n"
            f"  return %v, %i : {ttype(want_v)}, {ttype(want_i)}\n}}\n")


# max/min with dim: random (no ties), ties, NaN.
cases = {
    "random": torch.randn(4, 9),
    "ties": torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0],
                          [-1.0, -5.0, -5.0, 2.0, 2.0], [4.0, 4.0, 1.0, 1.0, 4.0]]),
    "nan": torch.tensor([[1.0, float("nan"), 3.0, float("nan")],
                         [float("nan"), 1.0, 2.0, 0.0], [1.0, 2.0, 3.0, 0.0],
                         [-float("inf"), -float("inf"), -float("inf"), -float("inf")]]),
}
for label, t in cases.items():
    for op, fn in (("max", torch.max), ("min", torch.min)):
        for dim, keep in ((1, False), (0, True), (-1, True)):
            v, i = fn(t, dim, keepdim=keep)
            attrs = f"{{dim = {dim} : i64{', keepdim = true' if keep else ''}}}"
            c.check(f"{op} {label} dim={dim} keepdim={keep}",
                    argscan_ir(op, t, v, i, attrs), [t], [v, i])
    for op, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
        for dim in (None, 1, 0):
            want = fn(t) if dim is None else fn(t, dim)
            attrs = "" if dim is None else f"{{dim = {dim} : i64}}"
            c.check(f"{op} {label} dim={dim}", reduce_ir(op, t, want, attrs),
                    [t], want)
# Rows longer than the 16-lane vector scan, and strided dims with at least
# 16 inner columns plus a remainder: ties and NaNs at many lane positions.
g = torch.Generator().manual_seed(7)
long = torch.randint(-3, 4, (7, 100), generator=g).float()
long[2, 37] = float("nan")
long[2, 90] = float("nan")
long[4, 5] = float("nan")
long[5, :] = 2.0
long[6, 99] = 9.0
for op, fn in (("max", torch.max), ("min", torch.min)):
    for dim in (1, 0):
        v, i = fn(long, dim)
        c.check(f"{op} long rows dim={dim}",
                argscan_ir(op, long, v, i, f"{{dim = {dim} : i64}}"), [long], [v, i])
for op, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
    for dim in (None, 1, 0):
        want = fn(long) if dim is None else fn(long, dim)
        attrs = "" if dim is None else f"{{dim = {dim} : i64}}"
        c.check(f"{op} long rows dim={dim}", reduce_ir(op, long, want, attrs),
                [long], want)
# Contiguous f32 rows of several 512-element blocks (the CPU scans blocks,
# remembering the first holding the extreme, then searches only that one):
# ties across blocks, the extreme first at a block boundary, NaNs in later
# blocks, signed zeros in different blocks, all -inf, a short last block.
# Each of the scan's 16 lanes keeps its own best and the first block that
# reached it: rows 8 and 9 put the extreme in different lanes of later
# blocks, and a lane's later improvements below the row's extreme.
blocks = torch.randint(-3, 4, (10, 2100), generator=g).float()
blocks[1, 1700] = float("nan")
blocks[1, 2050] = float("nan")
blocks[2, 512] = 9.0
blocks[2, 1536] = 9.0
blocks[3, :] = -1.0
blocks[3, 1100] = -0.0
blocks[3, 300] = 0.0
blocks[3, 2099] = 0.0
blocks[4, :] = -float("inf")
blocks[5, 2099] = float("nan")
blocks[6, 1023] = -9.0
blocks[6, 1024] = -9.0
blocks[8, 100] = 8.5
blocks[8, 1064] = 9.0
blocks[8, 1536 + 17] = 9.0
blocks[8, 2099] = 9.0
blocks[9, 700] = -9.0
blocks[9, 1500] = -8.0
blocks[9, 2000] = -8.5
blocks[9, 701] = 9.0
blocks[9, 1500 + 16] = 8.0
blocks[9, 2000 + 3] = 8.5
blocks[9, 2090] = 9.0
# f64 rows take the same two passes (blocks of 512 doubles); i64 and f64
# over a strided dim scan 16 adjacent columns in 8-lane vectors (40 and 37
# columns: two blocks of 16 and a scalar tail).
blocks64 = blocks.double()
blocks64[7, 777] = float("inf")
strided64 = blocks64.reshape(-1)[:37 * 40].reshape(37, 40).clone()
strided64[30, 3] = float("nan")
strided64[31, 3] = float("nan")
strided64[7, 20] = float("nan")
strided64[2, 39] = float("nan")
stridedi64 = torch.randint(-2**40, 2**40, (300, 37), generator=g)
stridedi64[5:9, :] = 2**63 - 1
for op, fn in (("max", torch.max), ("min", torch.min)):
    v, i = fn(blocks, 1)
    c.check(f"{op} rows of many blocks",
            argscan_ir(op, blocks, v, i, "{dim = 1 : i64}"), [blocks], [v, i])
    v, i = fn(blocks64, 1)
    c.check(f"{op} f64 rows of many blocks",
            argscan_ir(op, blocks64, v, i, "{dim = 1 : i64}"), [blocks64], [v, i])
    for label, x in (("f64", strided64), ("i64", stridedi64)):
        v, i = fn(x, 0)
        c.check(f"{op} {label} over a strided dim",
                argscan_ir(op, x, v, i, "{dim = 0 : i64}"), [x], [v, i])
for op, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
    for dim in (None, 1):
        want = fn(blocks) if dim is None else fn(blocks, dim)
        attrs = "" if dim is None else f"{{dim = {dim} : i64}}"
        c.check(f"{op} rows of many blocks dim={dim}",
                reduce_ir(op, blocks, want, attrs), [blocks], want)
wide = torch.randint(0, 3, (3, 40, 37), generator=g).to(torch.int64)
v, i = torch.max(wide, 1)
c.check("max i64 strided", argscan_ir("max", wide, v, i, "{dim = 1 : i64}"),
        [wide], [v, i])
d64 = torch.randn(5, 70, dtype=torch.float64, generator=g)
d64[1, 3] = float("nan")
want = torch.argmin(d64, 1)
c.check("argmin f64 long", reduce_ir("argmin", d64, want, "{dim = 1 : i64}"),
        [d64], want)

# Fewer rows than threads: long rows are split into segments scanned in
# parallel, then combined in order (at 2 and 7 threads: 2 to 4 segments of
# these rows). Ties between segments (the lowest index wins), NaNs in
# later segments (the first wins), signed zeros in different segments, a
# flattened argmax; f32, f64 and i64; the same answer at every count.
few = torch.randint(-50, 50, (3, 300000), generator=g).float()
few[0, 100000] = 99.0
few[0, 250000] = 99.0
few[0, 299999] = 99.0
few[1, 160000] = float("nan")
few[1, 290000] = float("nan")
few[2, :] = -1.0
few[2, 200000] = -0.0
few[2, 80000] = 0.0
few[2, 299990] = 0.0
flat = torch.randint(-9, 9, (512, 600), generator=g).float()
flat[500, 3] = 20.0
flat[100, 7] = 20.0
cases = [("f32", few), ("f64", few.double()), ("i64", few.nan_to_num(0).long()),
         ("f32 flattened", flat)]
for label, t in cases:
    for threads in (1, 2, 7):
        args = [f"--threads={threads}"]
        for op, fn in (("max", torch.max), ("min", torch.min)):
            if t is flat:
                continue
            v, i = fn(t, 1)
            c.check(f"{op} few long rows {label} at {threads} thread(s)",
                    argscan_ir(op, t, v, i, "{dim = 1 : i64}"), [t], [v, i],
                    extra_args=args)
        for op, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
            for dim in ((None,) if t is flat else (None, 1)):
                want = fn(t) if dim is None else fn(t, dim)
                attrs = "" if dim is None else f"{{dim = {dim} : i64}}"
                c.check(f"{op} few long rows {label} dim={dim} at {threads} "
                        f"thread(s)", reduce_ir(op, t, want, attrs), [t], want,
                        extra_args=args)

# Rows of up to 4 KB, many of them (argmax over 10 or 1000 classes): each
# row taken whole, its extreme in whole vectors and a masked last one, then
# the first index holding it (rows of 32 vectors or more: stopping at the
# first match). 37 rows of 3, 5 and 10 at 1 and 2 threads; at 1 thread of
# 1, 16, 17, 33 and 100, of 300 (f64/i64: stops at the first match) and of
# 600 (f32: the same), and of the last length taken whole (1024 f32, 512
# f64/i64) and the first one not (1025, 513: blocks of 512, the last
# masked): ties, a NaN first, later, twice, all NaN, signed zeros, +-inf,
# all equal, a unique extreme last, two late, a unique minimum next to
# last; max/min/argmax/argmin and topk k=1 (largest: argmax's answer),
# f32/f64/i64. The reference: the first NaN, else the first extreme (the
# values' bits too).
def short_rows(n, dtype):
    t = torch.randint(-4, 4, (37, n), generator=g).to(dtype)
    if dtype.is_floating_point:
        t[1, 0] = float("nan")
        t[2, n - 1] = float("nan")
        t[3, min(1, n - 1)] = t[3, max(n - 2, 0)] = float("nan")
        t[4, :] = float("nan")
        t[5, :] = -0.0
        t[5, n // 2] = 0.0
        t[6, :] = 0.0
        t[6, min(1, n - 1)] = -0.0
        t[7, :] = -float("inf")
        t[8, :] = float("inf")
        t[9, n - 1] = float("inf")
        t[10, 0] = -float("inf")
        t[20, 3 % n] = float("nan")
        t[36, n - 1] = float("nan")
    t[11, :] = 2
    t[12, n - 1] = 50
    t[13, n // 2] = t[13, n - 1] = 50
    t[14, max(n - 2, 0)] = -50
    return t


def first_extreme(t, greater):
    nan = torch.isnan(t) if t.dtype.is_floating_point else torch.zeros_like(t, dtype=torch.bool)
    filled = t.masked_fill(nan, -float("inf") if greater else float("inf")) \
        if t.dtype.is_floating_point else t
    best = filled.amax(1, keepdim=True) if greater else filled.amin(1, keepdim=True)
    hit = torch.where(nan.any(1, keepdim=True), nan, t == best)
    index = torch.argmax(hit.to(torch.int8), dim=1)
    return t.gather(1, index[:, None])[:, 0], index


# Strided dims with 512 bytes of columns or more (128 f32, 64 f64/i64): the
# CPU scans such blocks a row at a time (8 vectors of columns, the rows
# ahead prefetched), the columns left in blocks of 16, then one by one.
# f32 277 columns (two wide blocks, one of 16, 5 alone), f64 147, i64 81,
# and a 3-D f32 over its middle dim; ties everywhere (small integers),
# NaNs in the first and last rows and twice in a column, a column of -inf,
# of signed zeros, of equal values, +inf twice; max/min values and indices
# and argmax/argmin, exact, at 1, 2 and 7 threads.
def wide_columns(shape, dtype):
    t = torch.randint(-3, 4, shape, generator=g).to(dtype)
    cols = t.shape[-1]
    if dtype.is_floating_point:
        t[..., 5, 0] = t[..., 9, 0] = float("nan")
        t[..., -1, cols // 2] = float("nan")
        t[..., 0, cols - 60] = float("nan")
        t[..., 3, cols - 7] = float("nan")
        t[..., 7, cols - 2] = float("nan")
        t[..., :, 3] = -float("inf")
        t[..., :, cols // 2 + 9] = -1.0
        t[..., 10, cols // 2 + 9] = -0.0
        t[..., 12, cols // 2 + 9] = 0.0
        t[..., 30 % t.shape[-2], 100 % cols] = float("inf")
        t[..., 31 % t.shape[-2], 100 % cols] = float("inf")
    else:
        t[..., 4:6, 1] = 2**63 - 1
        t[..., 2, cols - 1] = -2**63
    t[..., :, cols - 20] = 2
    return t


for label, t in (("f32", wide_columns((45, 277), torch.float32)),
                 ("f64", wide_columns((33, 147), torch.float64)),
                 ("i64", wide_columns((40, 81), torch.int64)),
                 ("3-D f32", wide_columns((3, 20, 140), torch.float32))):
    dim = t.dim() - 2
    rows = t.movedim(dim, -1).reshape(-1, t.shape[dim])
    kept = t.movedim(dim, -1).shape[:-1]
    for threads in (1, 2, 7):
        args = [f"--threads={threads}"]
        for op in ("max", "min"):
            v, i = first_extreme(rows, op == "max")
            v, i = v.reshape(kept), i.reshape(kept)
            c.check(f"{op} wide columns {label} at {threads} thread(s)",
                    argscan_ir(op, t, v, i, f"{{dim = {dim} : i64}}"), [t],
                    [v, i], rtol=0, atol=0, extra_args=args)
            c.check(f"arg{op} wide columns {label} at {threads} thread(s)",
                    reduce_ir(f"arg{op}", t, i, f"{{dim = {dim} : i64}}"),
                    [t], i, extra_args=args)

for dtype, label in ((torch.float32, "f32"), (torch.float64, "f64"),
                     (torch.int64, "i64")):
    whole = 4096 // torch.empty(0, dtype=dtype).element_size()
    for n, counts in [(m, (1, 2)) for m in (10, 5, 3)] + \
            [(m, (1,)) for m in (1, 16, 17, 33, 100, 300, 600, whole, whole + 1)]:
        t = short_rows(n, dtype)
        for threads in counts:
            args = [f"--threads={threads}"]
            for op in ("max", "min"):
                v, i = first_extreme(t, op == "max")
                c.check(f"{op} 37 short rows of {n} {label} at {threads} "
                        "thread(s)", argscan_ir(op, t, v, i, "{dim = 1 : i64}"),
                        [t], [v, i], rtol=0, atol=0, extra_args=args)
                _, i = first_extreme(t, op == "max")
                c.check(f"arg{op} 37 short rows of {n} {label} at {threads} "
                        "thread(s)", reduce_ir(f"arg{op}", t, i, "{dim = 1 : i64}"),
                        [t], i, extra_args=args)
            v, i = first_extreme(t, True)
            v, i = v[:, None], i[:, None]
            topk_ir = (f"func.func @f(%x: {ttype(t)}) -> ({ttype(v)}, {ttype(i)}) {{\n"
                       f"  %v, %i = kiln.topk %x {{k = 1 : i64, dim = 1 : i64}} : {ttype(t)}\n"
                       f"  return %v, %i : {ttype(v)}, {ttype(i)}\n}}\n")
            c.check(f"topk k=1 of 37 short rows of {n} {label} at {threads} "
                    "thread(s)", topk_ir, [t], [v, i], rtol=0, atol=0,
                    extra_args=args)

n = torch.tensor([[3, 7, 7, 1], [-2, -2, -9, 0]])
for op, fn in (("max", torch.max), ("min", torch.min)):
    v, i = fn(n, 1)
    c.check(f"{op} i64 ties", argscan_ir(op, n, v, i, "{dim = 1 : i64}"),
            [n], [v, i])
want = torch.argmax(n, 1, keepdim=True)
c.check("argmax keepdim", reduce_ir("argmax", n, want,
                                    "{dim = 1 : i64, keepdim = true}"), [n], want)

# Float sums in the lane order (lowering.md): 32 partial sums, lane j
# taking elements j, j + 32, ... of the innermost reduced dim (element i to
# lane i % 32, the tail's too; a line shorter than 32 all to lane 0, in
# order; a line of more than 1024 steps of 32 in blocks of 1024 steps, each
# block's 32 sums from zero added to the lanes), then a fixed tree. Long
# reductions over few kept
# positions are split into segments reduced in parallel, then the
# segments' results in the lane order again. The exact float32 bits of
# that order, at every thread count.
def add_to_lanes(lanes, x):
    """Lines x [R, n] of at least 32 elements added into lanes [R, 32] in
    the lane order: element i to lane i % 32 (the tail's too), more than
    1024 steps of 32 in blocks of 1024 steps (each block's 32 sums from
    zero added to the lanes)."""
    rows, n = x.shape
    main = n // 32 * 32
    steps = x[:, :main].reshape(rows, -1, 32)
    count = steps.shape[1]
    if count <= 1024:
        for i in range(count):
            lanes = lanes + steps[:, i]
    else:
        for first in range(0, count, 1024):
            block = torch.zeros_like(lanes)
            for i in range(first, min(first + 1024, count)):
                block = block + steps[:, i]
            lanes = lanes + block
    tail = x[:, main:]
    lanes[:, :tail.shape[1]] = lanes[:, :tail.shape[1]] + tail
    return lanes


def fold_lanes(lanes):
    """The lanes [R, 32] added in the fixed tree: lane 0's sum of each row."""
    for half in (16, 8, 4, 2, 1):
        lanes = lanes[:, :half] + lanes[:, half:2 * half]
    return lanes[:, 0]


def lane_order(lines):
    """The lane order's sum of `lines` (1-D float tensors, in order)."""
    lanes = torch.zeros(1, 32, dtype=lines[0].dtype)
    for line in lines:
        if line.numel() < 32:  # a short line: in order, into lane 0
            for t in line:
                lanes[0, 0] = lanes[0, 0] + t
            continue
        lanes = add_to_lanes(lanes, line.reshape(1, -1))
    return fold_lanes(lanes)[0]


def plan_split(n, kept, element_bytes=4):
    """planReductionSplit (ReductionPlan.h) of `kept` lines of n elements
    (one reduced dim): (segments, length, rest), or None (not split). The
    segments: the largest power of two up to 1024 / kept (rounded up to a
    power of two) that leaves each at least 4096 elements; each of `length`
    elements, n / segments rounded down to 64 bytes' worth; the `rest`
    after them, at most 16384 (else fewer segments)."""
    if not (0 < kept < 1024 and n >= 2 * 4096):
        return None
    wanted = 1 << (-(-1024 // kept) - 1).bit_length()
    segments = min(wanted, 1 << ((n // 4096).bit_length() - 1))
    align = max(1, 64 // element_bytes)
    while segments >= 2:
        length = n // segments // align * align
        rest = n - segments * length
        if length > 0 and rest <= 16384:
            return segments, length, rest
        segments //= 2
    return None


def line_sum(line, kept, element_bytes=4):
    """The sum of one line of a reduction over `kept` lines: in the lane
    order, or split -- each segment's partial in the lane order, the
    partials in the lane order, then plus the rest's partial."""
    plan = plan_split(line.numel(), kept, element_bytes)
    if plan is None:
        return lane_order([line])
    segments, length, rest = plan
    partials = torch.stack([lane_order([line[s * length:(s + 1) * length]])
                            for s in range(segments)])
    total = lane_order([partials])
    if rest:
        total = total + lane_order([line[segments * length:]])
    return total


def lane_order_rows(x):
    """lane_order of each row of a matrix at once (rows of at least 32
    elements): for long rows of many kept positions."""
    return fold_lanes(add_to_lanes(torch.zeros(x.shape[0], 32, dtype=x.dtype),
                                   x))


mixed = torch.randn(256, 1000) * torch.pow(10.0, torch.randint(-3, 4, (256, 1000)).float())
long_rows = torch.randn(4, 100000) * torch.pow(10.0, torch.randint(-3, 4, (4, 100000)).float())
flat = torch.randn(1 << 17) * torch.pow(10.0, torch.randint(-3, 4, (1 << 17,)).float())
odd_rows = torch.randn(3, 70001) * torch.pow(10.0, torch.randint(-3, 4, (3, 70001)).float())
odd_flat = torch.randn(99311) * torch.pow(10.0, torch.randint(-3, 4, (99311,)).float())
# (label, input, attrs, kept positions, the plan the model must find)
split_cases = [
    # all of a 256x1000 tensor: one dim of 256000 elements (the lowering
    # merges consecutive reduced dims), 32 segments of 8000
    ("sum of all, 32 segments of the flattened elements", mixed, "", 1,
     (32, 8000, 0)),
    # dim 1 of 4 rows of 100000: 16 segments of 6240 (6250 rounded down to
    # 64 bytes' worth) per row and the 160 elements after them
    ("sum over dim 1 of 4 long rows, 16 segments each and a rest",
     long_rows, "{dims = array<i64: 1>}", 4, (16, 6240, 160)),
    # 1-D: 32 segments of 4096, whose 32 results take one lane each
    ("sum of a 1-D tensor, 32 segments", flat, "", 1, (32, 4096, 0)),
    # Lines no power of two divides: 3 rows of 70001 in 16 segments of
    # 4368 and 113 after them (three steps of the lanes and a tail), a 1-D
    # tensor of 99311 in 16 of 6192 and 239 after them.
    ("sum over dim 1 of 3 rows of 70001, an uneven split", odd_rows,
     "{dims = array<i64: 1>}", 3, (16, 4368, 113)),
    ("sum of a 1-D tensor of 99311, an uneven split", odd_flat, "", 1,
     (16, 6192, 239)),
]
# Rows with a tail (element i to lane i % 32: 70 = 2 x 32 + 6, 33, 63),
# and rows shorter than the lanes (10, 31: in order into lane 0).
for n in (70, 33, 63, 10, 31):
    rows = torch.randn(50, n) * torch.pow(10.0, torch.randint(-3, 4, (50, n)).float())
    split_cases.append((f"sum over dim 1 of 50x{n}", rows,
                        "{dims = array<i64: 1>}", 50, None))
for label, x, attrs, kept, plan in split_cases:
    lines = x.reshape(kept, -1)
    assert plan_split(lines.shape[1], kept) == plan, (label, plan)
    want = torch.stack([line_sum(line, kept) for line in lines])
    want = want.reshape(x.shape[0]) if attrs else want[0]
    for threads in (1, 2, 7):
        c.check(f"{label}: the split lane order's bits at {threads} thread(s)",
                reduce_ir("sum", x, want, attrs), [x], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])
    # and PyTorch's answer, to rounding
    exact = (torch.sum(x.double(), 1) if attrs else torch.sum(x.double())).float()
    c.check(f"{label}: against PyTorch (float64)", reduce_ir("sum", x, exact, attrs),
            [x], exact, rtol=1e-5, atol=1e-2)

# Every reduction kind over an uneven split, with what decides the answer
# in the rest (the positions after the segments, reduced by a kernel of
# their own and merged last): rows of 70001 (16 segments of 4368 and 113
# after them) and a column split of 70001x5 rows. Order-free reductions
# (max, min, integer sums and products) give PyTorch's exact answer; float
# sums, means and norms its answer to rounding; NaN and infinities in the
# rest, the extreme there, a zero there for prod.
gen_rest = torch.Generator().manual_seed(47)
rest_cases = []
for dtype in (torch.float32, torch.float64):
    rows = torch.randn(4, 70001, generator=gen_rest, dtype=dtype)
    rows[0, 69950] = float("nan")        # in row 0's rest
    rows[1, 70000] = float("inf")        # the last element
    rows[2, 69900] = 100.0               # the maximum, in the rest
    rows[3, 69890] = -100.0              # the minimum, in the rest
    cols = torch.randn(70001, 5, generator=gen_rest, dtype=dtype)
    cols[69950, 0] = float("nan")
    cols[70000, 1] = -float("inf")
    cols[69900, 2] = 100.0
    for x, dim in ((rows, 1), (cols, 0)):
        rest_cases += [
            ("sum", x, dim, torch.sum(x.double(), dim).to(dtype)),
            ("mean", x, dim, torch.mean(x.double(), dim).to(dtype)),
            ("amax", x, dim, torch.amax(x, dim)),
            ("amin", x, dim, torch.amin(x, dim)),
        ]
    near_one = 1 + 1e-4 * torch.randn(4, 70001, generator=gen_rest, dtype=dtype)
    near_one[1, 69960] = 0.0             # a zero in the rest
    rest_cases.append(("prod", near_one, 1,
                       torch.prod(near_one.double(), 1).to(dtype)))
    finite = torch.randn(4, 70001, generator=gen_rest, dtype=dtype)
    rest_cases.append(("norm", finite, 1,
                       torch.linalg.vector_norm(finite.double(), 2, 1).to(dtype)))
ints = torch.randint(-1000, 1000, (4, 70001), generator=gen_rest)
ints[2, 69999] = 10 ** 6                 # the maximum, in the rest
signs = torch.randint(0, 2, (4, 70001), generator=gen_rest) * 2 - 1
signs[0, 69950:] = 1
signs[0, 69960] = -1                     # the sign flips in the rest
signs[1, 69970] = 0                      # a zero, in the rest
rest_cases += [("sum", ints, 1, ints.sum(1)), ("amax", ints, 1, ints.amax(1)),
               ("amin", ints, 1, ints.amin(1)),
               ("sum", ints.t().contiguous(), 0, ints.sum(1)),
               ("prod", signs, 1, signs.prod(1))]
for op, x, dim, want in rest_cases:
    attrs = (f"{{dims = array<i64: {dim}>, p = 2.0 : f64}}" if op == "norm"
             else f"{{dims = array<i64: {dim}>}}")
    exact = op in ("amax", "amin") or not want.dtype.is_floating_point
    # (70001 f32 products of values near 1 each round: a relative error of
    # about 3e-4 in Kiln's order, with or without a rest; PyTorch's 1.5e-4)
    tol = (0 if exact else 1e-12 if want.dtype == torch.float64
           else 1e-3 if op == "prod" else 1e-5)
    for threads in (1, 2):
        c.check(f"{op} over dim {dim} of {tuple(x.shape)} {x.dtype}, an "
                f"uneven split with specials in the rest, {threads} "
                "thread(s)", reduce_ir(op, x, want, attrs), [x], want,
                rtol=tol, atol=tol, extra_args=[f"--threads={threads}"])

# Lines of more than 1024 steps of 32 elements take the lane order's
# blocks. With fewer than 1024 kept positions they split (segments of up
# to 32768 elements take one block, unless the line is over 32M); with
# 1024 or more they do not: the sum over dim 1 of a * b, [1024, 1] times
# [1, 33000] (1031 steps: blocks of 1024 and 7 steps, a tail of 8) read
# in place by the fused reduction, its rows in blocks.
def blocks_ir(a, b, dim, want):
    return func_ir([a, b], [
        "%p = kiln.mul %a0, %a1 : {T0}, {T1}",
        f"%r0 = kiln.sum %p {{dims = array<i64: {dim}>}} : "
        f"{ttype(a * b)}"], [want])


block_a = torch.randn(1024, 1) * torch.pow(10.0, torch.randint(-3, 4, (1024, 1)).float())
block_b = torch.randn(1, 33000) * torch.pow(10.0, torch.randint(-3, 4, (1, 33000)).float())
block_rows = lane_order_rows(block_a * block_b)
# and over dim 0 of [33000, 1] times [1, 1024]: a column reduction of 1024
# columns, each lane's rows in blocks.
block_cols = lane_order_rows((block_b.t() * block_a.t()).t())
for threads in (1, 2, 7):
    c.check(f"sum over dim 1 of a fused 1024x33000 product, rows in blocks, "
            f"{threads} thread(s)", blocks_ir(block_a, block_b, 1, block_rows),
            [block_a, block_b], block_rows, rtol=0, atol=0,
            extra_args=[f"--threads={threads}"])
    c.check(f"sum over dim 0 of a fused 33000x1024 product, columns in "
            f"blocks, {threads} thread(s)",
            blocks_ir(block_b.t(), block_a.t(), 0, block_cols),
            [block_b.t(), block_a.t()], block_cols, rtol=0, atol=0,
            extra_args=[f"--threads={threads}"])

# A lane adding n / 32 terms one after another loses precision as its sum
# grows: what the lane blocks and the splits keep short. |x|^3 of 2097153
# normal values, a line no power of two divides, summed in one chain per
# lane came out 2.3e-5 below the exact sum (in a NumPy model of the order),
# in blocks 1e-7; now it splits (512 segments of 4096 and the 1 element
# after them). Its sum and norms against float64.
def cube_sum_ir(x, attrs, result):
    """sum(|x|^3) with the sum's `attrs`, of type `result`."""
    return func_ir([x], ["%a = kiln.abs %a0 : {T0}",
                         "%s = kiln.mul %a, %a : {T0}, {T0}",
                         "%c = kiln.mul %s, %a : {T0}, {T0}",
                         f"%r0 = kiln.sum %c {attrs}: {{T0}}"], [result])


heavy = torch.randn(2097153)
cubes = heavy.abs() ** 3
exact = cubes.double().sum().float()
c.check("sum of |x|^3 over a line of 2097153, against float64",
        cube_sum_ir(heavy, "", "tensor<f32>"), [heavy], exact, rtol=1e-6,
        atol=0)
for p in (1.0, 2.0, 3.0):
    exact = torch.linalg.vector_norm(heavy.double(), p).float()
    c.check(f"norm (p = {p}) of a line of 2097153, against float64",
            reduce_ir("norm", heavy, exact, f"{{p = {p} : f64}}"), [heavy],
            exact, rtol=1e-6, atol=0)

# The same over the rows of two columns (a column reduction: in one chain
# per lane, before the forty-sixth session, 1048577 rows came out 9.9e-6
# below the exact sum, in blocks 1.2e-7, PyTorch 5e-8; now split into 256
# segments of 4096 rows and the 1 row after them).
heavy_columns = torch.randn(1048577, 2)
cubes = heavy_columns.abs() ** 3
exact = cubes.double().sum(0).float()
c.check("sum over dim 0 of |x|^3 of 1048577x2, against float64",
        cube_sum_ir(heavy_columns, "{dims = array<i64: 0>} ", "tensor<2xf32>"),
        [heavy_columns], exact, rtol=1e-6, atol=0)

# Reductions that keep the innermost dim (over dim 0 of a matrix) walk the
# rows outside and the columns inside on the CPU: for every column the lane
# order's bits, at every thread count and column-block boundary.
def over_dim0(x, kept=None):
    """The lane order's sum of each column of a matrix (split as a
    reduction over `kept` positions, the columns by default, splits)."""
    kept = kept or x.shape[1]
    elem = x.element_size()
    return torch.stack([line_sum(x[:, j], kept, elem)
                        for j in range(x.shape[1])])


def over_dims01(x):
    """Of each last-dim column of a rank-3 tensor: dims 0 and 1 are one
    dim of the column's elements in order (the lowering merges consecutive
    reduced dims), one line."""
    return over_dim0(x.reshape(-1, x.shape[2]))


def over_dim1(x):
    """Of each (dim 0, last dim) position of a rank-3 tensor."""
    return torch.stack([over_dim0(x[a], x.shape[0] * x.shape[2])
                        for a in range(x.shape[0])])


cols = torch.randn(300, 200) * torch.pow(10.0, torch.randint(-3, 4, (300, 200)).float())
cube = torch.randn(5, 300, 40) * torch.pow(10.0, torch.randint(-3, 4, (5, 300, 40)).float())
column_cases = [
    ("sum over dim 0 (rows outside, 2 column blocks)", cols,
     "{dims = array<i64: 0>}", over_dim0(cols)),
    ("sum over dims 0, 1 (one line of each column's 1500 elements)", cube,
     "{dims = array<i64: 0, 1>}", over_dims01(cube)),
    ("sum over dim 1, dim 0 and the innermost kept", cube,
     "{dims = array<i64: 1>}", over_dim1(cube)),
]
# Narrow rows (fewer columns than a vector holds) update groups of
# consecutive lanes' accumulators at once: the same bits, with rows left
# over after the last group, one column, f64, a split reduction
# (16 segments of 6250 rows per column) and rank 3.
def narrow(shape, dtype=torch.float32):
    return (torch.randn(*shape, dtype=torch.float64) *
            torch.pow(10.0, torch.randint(-3, 4, shape).double())).to(dtype)


narrow10, narrow1, narrow3 = narrow((300, 10)), narrow((77, 1)), narrow((301, 3))
narrow64 = narrow((300, 10), torch.float64)
narrow_long = narrow((100000, 10))
narrow_cube = narrow((3, 100, 7))
column_cases += [
    ("sum over dim 0 of 300x10 (narrow rows)", narrow10,
     "{dims = array<i64: 0>}", over_dim0(narrow10)),
    ("sum over dim 0 of 77x1 (narrow rows)", narrow1, "{dims = array<i64: 0>}",
     over_dim0(narrow1)),
    ("sum over dim 0 of 301x3 (narrow rows)", narrow3, "{dims = array<i64: 0>}",
     over_dim0(narrow3)),
    ("sum over dim 0 of f64 300x10 (narrow rows)", narrow64,
     "{dims = array<i64: 0>}", over_dim0(narrow64)),
    ("sum over dim 0 of 100000x10 (narrow rows, split)", narrow_long,
     "{dims = array<i64: 0>}", over_dim0(narrow_long)),
    ("sum over dims 0, 1 of 3x100x7 (narrow rows)", narrow_cube,
     "{dims = array<i64: 0, 1>}", over_dims01(narrow_cube)),
    ("sum over dim 1 of 3x100x7 (narrow rows)", narrow_cube,
     "{dims = array<i64: 1>}", over_dim1(narrow_cube)),
]
# Up to 256 reduced elements per column (8 per lane) walk the 32 lanes one
# after another, each lane's accumulators in registers, the lanes merged in
# their tree's order (a stack of partial rows); fewer than 32 per line go to
# lane 0 in order, in registers too. The same bits: blocks of a divisor of
# the columns (300: 100) or a narrower last block (277: 2 x 128 + 21), an
# outer reduced dim (dims 0 and 2 of a rank-4 tensor: one line per index of
# dim 0), f64 (blocks of 64 columns, 150: 50).
def over_dims02(x):
    """Of each (dim 1, dim 3) position of a rank-4 tensor: a line of dim 2
    per index of dim 0, in order."""
    return torch.stack([torch.stack([
        lane_order([x[i, a, :, j] for i in range(x.shape[0])])
        for j in range(x.shape[3])]) for a in range(x.shape[1])])


few200, few277, few_cube = narrow((200, 300)), narrow((64, 277)), narrow((3, 50, 160))
few4, few64, lane0 = narrow((3, 5, 40, 70)), narrow((100, 150), torch.float64), narrow((20, 300))
column_cases += [
    ("sum over dim 0 of 200x300 (lanes in tree order)", few200,
     "{dims = array<i64: 0>}", over_dim0(few200)),
    ("sum over dim 0 of 64x277 (tree order, a narrower last block)", few277,
     "{dims = array<i64: 0>}", over_dim0(few277)),
    ("sum over dim 1 of 3x50x160 (tree order)", few_cube,
     "{dims = array<i64: 1>}", over_dim1(few_cube)),
    ("sum over dims 0, 2 of 3x5x40x70 (tree order, an outer reduced dim)",
     few4, "{dims = array<i64: 0, 2>}", over_dims02(few4)),
    ("sum over dim 0 of f64 100x150 (tree order)", few64,
     "{dims = array<i64: 0>}", over_dim0(few64)),
    ("sum over dim 0 of 20x300 (lane 0, in registers)", lane0,
     "{dims = array<i64: 0>}", over_dim0(lane0)),
]
# Odd row counts split unevenly, as a row of as many elements does: 70001
# rows of 20 or 5 columns in 16 segments of 4368 rows and the 113 after
# them (a column reduction of their own), and dims 0 and 1 of 7x10001x20
# merged into one line of 70007 (16 of 4368 and 119 after them).
tall, tall_narrow, tall_cube = narrow((70001, 20)), narrow((70001, 5)), narrow((7, 10001, 20))
assert plan_split(70001, 20) == plan_split(70001, 5) == (16, 4368, 113)
assert plan_split(70007, 20) == (16, 4368, 119)
column_cases += [
    ("sum over dim 0 of 70001x20 (an uneven split)", tall,
     "{dims = array<i64: 0>}", over_dim0(tall)),
    ("sum over dim 0 of 70001x5 (narrow rows, an uneven split)", tall_narrow,
     "{dims = array<i64: 0>}", over_dim0(tall_narrow)),
    ("sum over dims 0, 1 of 7x10001x20 (a line of 70007, an uneven split)",
     tall_cube, "{dims = array<i64: 0, 1>}", over_dims01(tall_cube)),
]
for label, x, attrs, want in column_cases:
    for threads in (1, 2, 7):
        c.check(f"{label}: the lane order's bits at {threads} thread(s)",
                reduce_ir("sum", x, want, attrs), [x], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])
for op, fn in (("amax", torch.amax), ("amin", torch.amin)):
    nan_col = cols.clone()
    nan_col[250, 130] = float("nan")
    want = fn(nan_col, 0)
    c.check(f"{op} over dim 0, a NaN in one column", reduce_ir(
        op, nan_col, want, "{dims = array<i64: 0>}"), [nan_col], want,
        rtol=0, atol=0)
# A fused producer (x * 2 + 1, rounded per element as PyTorch does) read
# by narrow rows, and a mean (the sum's epilogue).
fused_want = over_dim0(narrow10 * 2 + 1)
fused_ir = (f"func.func @f(%x: {ttype(narrow10)}) -> {ttype(fused_want)} {{\n"
            f"  %two = kiln.full 2.0 : tensor<f32>\n"
            f"  %one = kiln.full 1.0 : tensor<f32>\n"
            f"  %m = kiln.mul %x, %two : {ttype(narrow10)}, tensor<f32>\n"
            f"  %a = kiln.add %m, %one : {ttype(narrow10)}, tensor<f32>\n"
            f"  %y = kiln.sum %a {{dims = array<i64: 0>}} : {ttype(narrow10)}\n"
            f"  return %y : {ttype(fused_want)}\n}}\n")
for threads in (1, 2):
    c.check(f"sum over dim 0 of a fused x * 2 + 1, narrow rows, {threads} "
            "thread(s)", fused_ir, [narrow10], fused_want, rtol=0, atol=0,
            extra_args=[f"--threads={threads}"])
tree_want = over_dim0(few277 * 2 + 1)
tree_ir = fused_ir.replace(ttype(narrow10), ttype(few277)).replace(
    ttype(fused_want), ttype(tree_want))
for threads in (1, 2):
    c.check(f"sum over dim 0 of a fused x * 2 + 1, tree order, {threads} "
            "thread(s)", tree_ir, [few277], tree_want, rtol=0, atol=0,
            extra_args=[f"--threads={threads}"])
c.check("mean over dim 0 of 64x277 (tree order)", reduce_ir(
    "mean", few277, few277.mean(0), "{dims = array<i64: 0>}"), [few277],
    over_dim0(few277) / 64, rtol=0, atol=0)
nan277 = few277.clone()
nan277[40, 270] = float("nan")
for op, fn in (("amax", torch.amax), ("amin", torch.amin)):
    want = fn(nan277, 0)
    c.check(f"{op} over dim 0 of 64x277, a NaN in the last block",
            reduce_ir(op, nan277, want, "{dims = array<i64: 0>}"), [nan277],
            want, rtol=0, atol=0)
c.check("mean over dim 0 of 301x3 (narrow rows)", reduce_ir(
    "mean", narrow3, narrow3.mean(0), "{dims = array<i64: 0>}"), [narrow3],
    over_dim0(narrow3) / 301,
    rtol=0, atol=0)
ints = torch.randint(-1000, 1000, (77, 300))
want = torch.sum(ints, 0)
c.check("i64 sum over dim 0", reduce_ir("sum", ints, want,
                                        "{dims = array<i64: 0>}"), [ints], want)

# Order-free reductions split too (max, min, integer sums and products):
# exact answers at every thread count, NaN found in any segment.
big = torch.randn(64, 2048)
nan_late = big.clone()
nan_late[60, 7] = float("nan")
ints = torch.randint(-1000, 1000, (3, 40000))
ones = torch.randint(-1, 2, (2, 70000))
ones[ones == 0] = 1
for label, op, x, attrs, want in (
        ("amax of all", "amax", big, "", torch.amax(big)),
        ("amin over dim 1 of few rows", "amin", big.view(8, 16384),
         "{dims = array<i64: 1>}", torch.amin(big.view(8, 16384), 1)),
        ("amax of all, NaN in a late segment", "amax", nan_late, "",
         torch.amax(nan_late)),
        ("i64 sum over dim 1", "sum", ints, "{dims = array<i64: 1>}",
         torch.sum(ints, 1)),
        ("i64 prod over dim 1 (+-1)", "prod", ones, "{dims = array<i64: 1>}",
         torch.prod(ones, 1))):
    for threads in (1, 2, 7):
        c.check(f"split {label} at {threads} thread(s)",
                reduce_ir(op, x, want, attrs), [x], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])

# equal
a = torch.tensor([1.0, 2.0, 3.0])
for label, b, want in (("same", a.clone(), True), ("differ", torch.tensor([1.0, 2.0, 4.0]), False),
                       ("nan", torch.tensor([1.0, 2.0, float("nan")]), False)):
    ir = (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> tensor<i1> {{\n"
          f"  %y = kiln.equal %a, %b : {ttype(a)}, {ttype(b)}\n"
          f"  return %y : tensor<i1>\n}}\n")
    c.check(f"equal {label}", ir, [a, b], torch.tensor(want))
b = torch.ones(4)
ir = (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> tensor<i1> {{\n"
      f"  %y = kiln.equal %a, %b : {ttype(a)}, {ttype(b)}\n"
      f"  return %y : tensor<i1>\n}}\n")
c.check("equal shapes differ", ir, [a, b], torch.tensor(torch.equal(a, b)))

# equal of two stored tensors (the CPU's runtime comparison: blocks split
# across the threads, stopping at the first difference) at sizes that split:
# one difference (or NaN) in the last element, -0 against +0, every dtype,
# an empty and a rank-0 pair; then operands computed by fused producers
# (kiln-decompose's sum, the comparison read in place).
def plain_equal_ir(a, b):
    return (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> tensor<i1> {{\n"
            f"  %y = kiln.equal %a, %b : {ttype(a)}, {ttype(b)}\n"
            f"  return %y : tensor<i1>\n}}\n")


gen = torch.Generator().manual_seed(4901)
big = torch.randn(3, 1000003, generator=gen)
last = big.clone()
last[2, -1] += 1
nan_last = big.clone()
nan_last[2, -1] = float("nan")
zeros = torch.zeros(70001)
negative_zeros = -zeros
i64 = torch.randint(-10**12, 10**12, (2, 65537), generator=gen)
i64_last = i64.clone()
i64_last[1, -1] += 1
i32 = torch.randint(-10**9, 10**9, (3, 70001), generator=gen, dtype=torch.int32)
i32_first = i32.clone()
i32_first[0, 0] += 1
mask = torch.rand(70003, generator=gen) > 0.5
mask_last = mask.clone()
mask_last[-1] = ~mask_last[-1]
for label, a, b in (("same 3x1000003", big, big.clone()),
                    ("last element differs", big, last),
                    ("NaN in the last element", big, nan_last),
                    ("NaN against itself", nan_last, nan_last.clone()),
                    ("-0 against +0", zeros, negative_zeros),
                    ("f64 same", big.double(), big.double()),
                    ("f64 last differs", big.double(), last.double()),
                    ("i64 same", i64, i64.clone()),
                    ("i64 last differs", i64, i64_last),
                    ("i32 same", i32, i32.clone()),
                    ("i32 first differs", i32, i32_first),
                    ("every element differs", big, big + 1),
                    ("i1 same", mask, mask.clone()),
                    ("i1 last differs", mask, mask_last),
                    ("empty", torch.zeros(0, 5), torch.zeros(0, 5)),
                    ("rank 0 differ", torch.tensor(1.5), torch.tensor(2.5)),
                    ("rank 0 same", torch.tensor(1.5), torch.tensor(1.5))):
    want = torch.tensor(torch.equal(a, b))
    for threads in (1, 2, 7):
        c.check(f"equal, {label}, at {threads} thread(s)", plain_equal_ir(a, b),
                [a, b], want, extra_args=[f"--threads={threads}"])
# A permuted operand (not elementwise: kept, the permute stored first).
tall = big.t().contiguous()
t = ttype(big)
permuted = (f"func.func @f(%a: {ttype(tall)}, %b: {t}) -> tensor<i1> {{\n"
            f"  %p = kiln.permute %a [1, 0] : {ttype(tall)}\n"
            f"  %e = kiln.equal %p, %b : {t}, {t}\n"
            f"  return %e : tensor<i1>\n}}\n")
c.check("equal of a permuted operand (same)", permuted, [tall, big],
        torch.tensor(True))
c.check("equal of a permuted operand (last differs)", permuted, [tall, last],
        torch.tensor(False))

# One difference where a block or a span of the comparison starts or ends
# (3000009 f32: blocks of 4096, spans of 524288 taken by the threads in
# turn; the last span short), found by whichever thread holds it.
flat = big.reshape(-1)
for position in (0, 4095, 4096, 524287, 524288, 1048575, 1048576, 2097152,
                 flat.numel() // 2 + 12345, 2621440, flat.numel() - 2):
    moved = flat.clone()
    moved[position] = -moved[position] - 1
    for threads in (1, 2, 7):
        c.check(f"equal, element {position} differs, at {threads} thread(s)",
                plain_equal_ir(flat, moved), [flat, moved],
                torch.tensor(False), extra_args=[f"--threads={threads}"])
t = ttype(big)
doubled = (f"func.func @f(%a: {t}, %b: {t}) -> tensor<i1> {{\n"
           f"  %two = kiln.full 2.0 : tensor<f32>\n"
           f"  %x = kiln.add %a, %a : {t}, {t}\n"
           f"  %y = kiln.mul %b, %two : {t}, tensor<f32>\n"
           f"  %e = kiln.equal %x, %y : {t}, {t}\n"
           f"  return %e : tensor<i1>\n}}\n")
c.check("equal of fused producers, a + a against b * 2 (same)", doubled,
        [big, big], torch.tensor(True))
c.check("equal of fused producers, a + a against b * 2 (last differs)",
        doubled, [big, last], torch.tensor(False))

# amax/amin are IEEE maximum/minimum exactly, on every CPU reduction path
# (rows, short rows spread over the lanes or not -- f32 9 to 16 and 32
# elements, f64 10 to 32 -- columns, split segments, all elements, a fused
# producer), f32 and f64, at every thread count: +0 beats -0 (a maximum of only -0 is -0),
# NaN of either sign propagates (x86's default NaN has the sign bit set),
# infinities and subnormals in order. The answers come from a reference
# written out here, bit for bit: torch's own sign of a zero maximum depends
# on the order it visits the zeros.
def ieee_extreme(x, dims, is_max):
    x = x.double()
    flat = x.movedim(dims, list(range(x.dim() - len(dims), x.dim())))
    flat = flat.reshape(*flat.shape[:x.dim() - len(dims)], -1)
    m = flat.amax(-1) if is_max else flat.amin(-1)
    zero = (flat == 0)
    positive_zero = (zero & ~torch.signbit(flat)).any(-1)
    negative_zero = (zero & torch.signbit(flat)).any(-1)
    signed = torch.where(positive_zero if is_max else ~negative_zero,
                         torch.tensor(0.0, dtype=x.dtype),
                         torch.tensor(-0.0, dtype=x.dtype))
    m = torch.where(m == 0, signed, m)
    return torch.where(torch.isnan(flat).any(-1),
                       torch.tensor(float("nan"), dtype=x.dtype), m)


def special_rows(rows, n, dtype, generator):
    x = torch.randn(rows, n, generator=generator, dtype=torch.float64)
    # x86's default NaN (sign bit set) as a float64; it keeps its sign when
    # converted to float32 below.
    neg_nan = torch.tensor([-0x0008000000000000],  # 0xfff8000000000000
                           dtype=torch.int64).view(torch.float64).item()
    tiny = {torch.float32: 1e-40, torch.float64: 1e-310}[dtype]
    patterns = [
        lambda r: r.fill_(-0.0),
        lambda r: r.fill_(0.0),
        lambda r: r.copy_(torch.where(torch.rand(n, generator=generator) < .5,
                                      torch.tensor(-0.0), torch.tensor(0.0))),
        lambda r: r.copy_(-r.abs()).index_fill_(
            0, torch.randint(n, (3,), generator=generator), -0.0),
        lambda r: r.copy_(r.abs()).index_fill_(
            0, torch.randint(n, (3,), generator=generator), 0.0),
        lambda r: r.index_fill_(0, torch.randint(n, (1,), generator=generator),
                                neg_nan),
        lambda r: r.index_fill_(0, torch.randint(n, (1,), generator=generator),
                                float("nan")),
        lambda r: r.fill_(-float("inf")),
        lambda r: r.fill_(float("inf")),
        lambda r: r.mul_(tiny),
        lambda r: r.index_fill_(0, torch.randint(n, (2,), generator=generator),
                                float("inf")).index_fill_(
            0, torch.randint(n, (2,), generator=generator), -float("inf")),
        lambda r: r,
    ]
    for i in range(rows):
        patterns[i % len(patterns)](x[i])
    x = x.to(dtype)
    assert bool((torch.isnan(x) & torch.signbit(x)).any())
    return x


gen = torch.Generator().manual_seed(11)
for dtype in (torch.float32, torch.float64):
    rows = special_rows(48, 300, dtype, gen)
    long_rows = special_rows(24, 12288, dtype, gen)
    short = {n: special_rows(48, n, dtype, gen) for n in (8, 9, 12, 16, 24, 32)}
    for op in ("amax", "amin"):
        is_max = op == "amax"
        cases = [
            ("rows", rows, [1], ""),
        ] + [(f"rows of {n}", x, [1], "") for n, x in short.items()] + [
            ("rows of 16 as 4x4, keepdim", short[16].view(48, 4, 4), [1, 2],
             "keepdim"),
            ("columns", rows.t().contiguous(), [0], ""),
            ("rows, keepdim", rows, [1], "keepdim"),
            ("few long rows (split)", long_rows[:2], [1], ""),
            ("one long row pattern each (split)", long_rows, [1], ""),
            ("all elements", long_rows[2:3], None, ""),
        ]
        for label, x, dims, extra in cases:
            keepdim = extra == "keepdim"
            want = ieee_extreme(x, dims if dims else list(range(x.dim())),
                                is_max).to(dtype)
            if keepdim:
                for d in dims:
                    want = want.unsqueeze(d)
            ir = reduce_ir(op, x, want, dims_attr(dims, keepdim))
            for threads in (1, 2, 7):
                name = f"IEEE {op} {dtype} {label} at {threads} thread(s)"
                c.cases += 1
                code, outputs, err = c.run(ir, [x], [f"--threads={threads}"])
                if code != 0:
                    c.fail(name, err)
                    continue
                got = outputs[0]
                same = (torch.isnan(got) == torch.isnan(want)) & (
                    torch.isnan(want) | ((got == want) &
                                         (torch.signbit(got) ==
                                          torch.signbit(want))))
                if not bool(same.all()):
                    bad = (~same).nonzero()[0].tolist()
                    c.fail(name, f"at {bad}: {got[tuple(bad)].item()!r}, "
                           f"expected {want[tuple(bad)].item()!r}")
        # A fused producer: amax(neg(x)) reads -x in the reduction's loop.
        want = ieee_extreme(-rows, [1], is_max).to(dtype)
        ir = (f"func.func @f(%x: {ttype(rows)}) -> {ttype(want)} {{\n"
              f"  %n = kiln.neg %x : {ttype(rows)}\n"
              f"  %y = kiln.{op} %n {{dims = array<i64: 1>}} : "
              f"{ttype(rows)}\n"
              f"  return %y : {ttype(want)}\n}}\n")
        c.cases += 1
        code, outputs, err = c.run(ir, [rows])
        got = outputs[0] if code == 0 else None
        if got is None or not bool(((torch.isnan(got) & torch.isnan(want)) |
                                    ((got == want) & (torch.signbit(got) ==
                                                      torch.signbit(want))))
                                   .all()):
            c.fail(f"IEEE {op} {dtype} of a fused neg", err if got is None
                   else f"got {got.tolist()}, expected {want.tolist()}")

# Reductions of permutes: canonicalization reduces the permute's input over
# the permuted dims (no transposed copy) and permutes the result. The bits
# must be those of the same reduction of the permuted tensor stored
# contiguously (which no rewrite touches): the same elements in the same
# order -- a row reduction becoming a column or split one.
def permuted_ir(op, x, perm, want, attrs):
    p = x.permute(perm)
    outs = [want] if not isinstance(want, tuple) else list(want)
    results = ", ".join(f"%r{i}" for i in range(len(outs)))
    return func_ir([x], [f"%p = kiln.permute %a0 [{', '.join(map(str, perm))}] : {{T0}}",
                         f"{results} = kiln.{op} %p {attrs} : {ttype(p)}"], outs)


def contiguous_ir(op, p, want, attrs):
    outs = [want] if not isinstance(want, tuple) else list(want)
    results = ", ".join(f"%r{i}" for i in range(len(outs)))
    return func_ir([p], [f"{results} = kiln.{op} %a0 {attrs} : {{T0}}"], outs)


gen = torch.Generator().manual_seed(5)
ties = torch.randint(-2, 3, (6, 40, 50), generator=gen).float()
ties[1, 3, 7] = float("nan")
nchw = torch.randn(8, 16, 12, 20, generator=gen)
permuted_cases = [
    # (label, op, x, perm, torch fn of the permuted tensor, attrs)
    ("sum over the rows of a transpose (a column sum of x)", "sum",
     torch.randn(300, 1001, generator=gen), [1, 0],
     lambda p: p.sum(1), "{dims = array<i64: 1>}"),
    ("f64 sum over the rows of a transpose", "sum",
     torch.randn(130, 257, generator=gen, dtype=torch.float64), [1, 0],
     lambda p: p.sum(1), "{dims = array<i64: 1>}"),
    ("sum of few long rows of a transpose (a split column sum)", "sum",
     torch.randn(100000, 10, generator=gen), [1, 0],
     lambda p: p.sum(1), "{dims = array<i64: 1>}"),
    ("mean over (0, 2, 3) of NHWC seen as NCHW", "mean",
     nchw.permute(0, 2, 3, 1).contiguous(), [0, 3, 1, 2],
     lambda p: p.mean((0, 2, 3), keepdim=True),
     "{dims = array<i64: 0, 2, 3>, keepdim = true}"),
    ("norm over dims 1 and 3 of a rank-4 permute", "norm",
     nchw, [3, 0, 1, 2], lambda p: torch.norm(p, 3.0, (1, 3)),
     "{dims = array<i64: 1, 3>, p = 3.0 : f64}"),
    ("prod along dim 0 of a transpose", "prod",
     1 + 0.01 * torch.randn(64, 300, generator=gen), [1, 0],
     lambda p: p.prod(0), "{dims = array<i64: 0>}"),
    ("amax over reordered dims, with a NaN", "amax", ties, [2, 0, 1],
     lambda p: p.amax((0, 1)), "{dims = array<i64: 0, 1>}"),
    ("integer sum over reordered dims", "sum",
     torch.randint(-9, 10, (30, 40, 5), generator=gen), [1, 2, 0],
     lambda p: p.sum((0, 1)), "{dims = array<i64: 0, 1>}"),
    ("argmax with ties and a NaN along a permuted dim", "argmax", ties,
     [2, 0, 1], lambda p: p.argmax(2), "{dim = 2 : i64}"),
    ("max with indices, keepdim, along a permuted dim", "max", ties,
     [1, 2, 0], lambda p: tuple(p.max(0, keepdim=True)),
     "{dim = 0 : i64, keepdim = true}"),
]
for label, op, x, perm, fn, attrs in permuted_cases:
    p = x.permute(perm)
    want = fn(p)
    wants = list(want) if isinstance(want, tuple) else [want]
    rtol = 1e-4 if op in ("norm", "mean", "sum", "prod") else None
    c.check(f"{op} of a permute: {label}",
            permuted_ir(op, x, perm, want, attrs), [x],
            want if not isinstance(want, tuple) else wants, rtol=rtol,
            atol=1e-4 if rtol else None)
    for threads in (1, 2):
        name = f"{op} of a permute, bits of the contiguous reduction: {label} at {threads} thread(s)"
        c.cases += 1
        code_a, got, err_a = c.run(permuted_ir(op, x, perm, want, attrs), [x],
                                   [f"--threads={threads}"])
        code_b, ref, err_b = c.run(contiguous_ir(op, p.contiguous(), want, attrs),
                                   [p.contiguous()], [f"--threads={threads}"])
        if code_a != 0 or code_b != 0:
            c.fail(name, err_a + err_b)
        elif not all(same_bits(g, r) for g, r in zip(got, ref)):
            c.fail(name, "the bits differ")

# Column reductions over fewer reduced rows than lanes (innermost reduced
# dim under 32; consecutive reduced dims are one, 3x7 = 21 rows): every row
# goes to lane 0, in order, and the result is that lane -- the bits of a
# sequential f32 (f64) accumulation from the identity, at 1 and 2 threads.
few = [("sum over dim 1 of 64x16x40", "sum", torch.randn(64, 16, 40), [1]),
       ("sum over dims 0, 1 of 3x7x33", "sum", torch.randn(3, 7, 33), [0, 1]),
       ("prod over dim 0 of 10x50 f64", "prod",
        torch.rand(10, 50, dtype=torch.float64) + 0.5, [0]),
       ("mean over dim 1 of 8x31x17", "mean", torch.randn(8, 31, 17), [1])]
for label, op, x, dims in few:
    moved = x.movedim(dims, list(range(len(dims)))).reshape(
        -1, *[x.shape[d] for d in range(x.dim()) if d not in dims]).numpy()
    acc = np.full(moved.shape[1:], 1 if op == "prod" else 0, moved.dtype)
    for row in moved:  # in order, from the identity
        acc = acc * row if op == "prod" else acc + row
    if op == "mean":
        acc = acc / np.asarray(moved.shape[0], moved.dtype)
    want = torch.from_numpy(acc)
    ir = reduce_ir(op, x, want, dims_attr(dims, False))
    for threads in (1, 2):
        name = f"{label} at {threads} thread(s)"
        c.cases += 1
        code, got, err = c.run(ir, [x], [f"--threads={threads}"])
        if code != 0:
            c.fail(name, err)
        elif not same_bits(got[0], acc):
            c.fail(name, "not the bits of lane 0 accumulated in order")
    c.check(f"{label} against PyTorch", ir, [x],
            getattr(torch, op)(x, dims[0]) if op == "prod"
            else getattr(torch, op)(x, dims), rtol=1e-5, atol=1e-5)

# Unit dims hold one position each: a reduction runs as that of its input
# without them (lowering.md), whose plans see the reduced dim innermost --
# a reduced dim followed by unit dims ([N, C, 1, 1] over C, class scores
# after a global pooling), a reduced unit dim innermost, a kept unit
# column. The bits are those of the same reduction of the input reshaped
# without its unit dims (the lane order over the squeezed rows), at 1 and
# 2 threads, fused with a producer or not, and PyTorch's answer to
# rounding. The results come back in the op's shape, keepdim's unit dims
# included (returned through a view, allocated in the caller's buffer).
def squeezed(x, dims):
    """x without its unit dims, and the dims reduced among the others."""
    keep = [d for d in range(x.dim()) if x.shape[d] != 1]
    return (x.reshape([x.shape[d] for d in keep]),
            [keep.index(d) for d in dims if x.shape[d] != 1])


def reduce_attrs(op, dims, keepdim, p=None):
    parts = [f"p = {p!r} : f64"] if p is not None else []
    parts.append("dims = array<i64: " + ", ".join(map(str, dims)) + ">")
    if keepdim:
        parts.append("keepdim = true")
    return "{" + ", ".join(parts) + "}"


def torch_reduce(op, x, dims, keepdim, p=None):
    if op == "norm":
        return torch.linalg.vector_norm(x, p, dims, keepdim)
    if op == "prod":
        out = x
        for d in sorted(dims, reverse=True):
            out = torch.prod(out, d, keepdim=keepdim)
        return out
    return getattr(torch, op)(x, dims, keepdim=keepdim)


scaled = lambda *shape: (torch.randn(*shape) * torch.pow(
    10.0, torch.randint(-3, 4, shape).float()))
unit_cases = [
    ("sum", scaled(300, 70, 1, 1), [1], False, None),
    ("sum", scaled(300, 70, 1, 1), [1], True, None),
    ("sum", scaled(50, 70, 1), [1, 2], False, None),  # a unit dim innermost
    ("sum", scaled(4096, 1), [0], False, None),  # a kept unit column
    ("sum", scaled(1, 5, 1, 40000, 1), [3], False, None),  # split segments
    ("mean", torch.randn(64, 1000, 1, 1), [1], True, None),
    ("prod", torch.rand(64, 33, 1, 1, dtype=torch.float64) + 0.5, [1], False,
     None),
    ("amax", torch.randn(100, 1, 77, 1), [2], False, None),
    ("amin", torch.randn(100, 77, 1), [0, 2], True, None),
    ("norm", torch.randn(128, 300, 1, 1), [1], False, 2.0),
    ("norm", torch.randn(128, 300, 1, 1, dtype=torch.float64), [1], True, 3.0),
]
for op, x, dims, keepdim, p in unit_cases:
    label = (f"{op} over dims {dims} of {list(x.shape)} "
             f"{x.dtype}{' keepdim' if keepdim else ''}")
    want = torch_reduce(op, x, dims, keepdim, p)
    ir = reduce_ir(op, x, want, reduce_attrs(op, dims, keepdim, p))
    sx, sdims = squeezed(x, dims)
    swant = torch_reduce(op, sx, sdims, False, p)
    sir = reduce_ir(op, sx, swant, reduce_attrs(op, sdims, False, p))
    c.cases += 1
    code, ref, err = c.run(sir, [sx])
    if code != 0:
        c.fail(f"{label}: squeezed", err)
        continue
    for threads in (1, 2):
        c.check(f"{label}: the squeezed input's bits at {threads} thread(s)",
                ir, [x], [ref[0].reshape(want.shape)], rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])
    # (in float64: the scaled sums cancel to a few units)
    exact = torch_reduce(op, x.double(), dims, keepdim, p).to(x.dtype)
    c.check(f"{label}: against PyTorch (float64)", ir, [x], exact, rtol=1e-5,
            atol=1e-2)
# The lane order over [N, C, 1, 1], spelled out: each row's 70 elements
# in lanes i % 32 (not every element to lane 0, as when the innermost
# reduced dim was a unit dim).
x = scaled(30, 70, 1, 1)
want = torch.stack([lane_order([r]) for r in x.reshape(30, 70)])
c.check("sum over dims 1, 2, 3 of 30x70x1x1: the lane order of each row",
        reduce_ir("sum", x, want, dims_attr([1, 2, 3], False)), [x], want,
        rtol=0, atol=0)
# Consecutive reduced dims are one line: a global average pooling's sum
# over the 7x7 positions of [N, C, 7, 7] adds each channel's 49 elements in
# the lane order of one line of 49 (not 7 lines of 7, in order into lane 0).
x = scaled(20, 16, 7, 7)
want = torch.stack([lane_order([r]) for r in x.reshape(320, 49)]).reshape(20, 16)
c.check("sum over dims 2, 3 of 20x16x7x7: the lane order of lines of 49",
        reduce_ir("sum", x, want, dims_attr([2, 3], False)), [x], want,
        rtol=0, atol=0)
# Fused: exp(x) summed over C of [N, C, 1, 1], and its mean's epilogue.
x = torch.randn(256, 1000, 1, 1)
ir = func_ir([x], ["%e = kiln.exp %a0 : {T0}",
                   "%s = kiln.mean %e {dims = array<i64: 1>} : {T0}",
                   "%r0 = kiln.log %s : tensor<256x1x1xf32>"],
             ["tensor<256x1x1xf32>"])
want = torch.log(torch.mean(torch.exp(x), 1))
c.cases += 1
code, unfused, err = c.run(ir, [x], ["--no-fuse"])
if code != 0:
    c.fail("fused mean over C of [N, C, 1, 1]: unfused run", err)
else:
    c.check("fused mean over C of [N, C, 1, 1]: the unfused bits", ir, [x],
            [unfused[0]], rtol=0, atol=0)
    c.check("fused mean over C of [N, C, 1, 1]: against PyTorch", ir, [x],
            want, rtol=1e-5, atol=1e-5)

# Short rows (4 to 31 elements) of at least 16 f32 / 8 f64 rows: a row per
# lane of a vector, the rows transposed in registers (in place, packed
# two or four rows of 8 or 4 to a vector, or from the buffer a fused chain
# fills first). Each row still adds its elements in order into lane 0, so
# the reference is that order, written out: in order, then + 0 (the other
# lanes' identities), exactly; prod and the fused sum of exp likewise. The
# row counts leave a last group of fewer rows, and the buffered kernel's
# iterations of 8 groups a last one of fewer groups; NaN, +-inf and -0
# among the elements; 1 thread at the host's width, and 2 at each width's
# rows a vector register holds (--vector-bits: 16 f32 rows with AVX-512, 8
# with AVX2, 4 with SSE), the same bits.
WIDTHS = ((1, None), (2, 128), (2, 256), (2, 512))


def width_args(threads, bits):
    return [f"--threads={threads}"] + ([f"--vector-bits={bits}"] if bits
                                       else [])


def in_order(x, combine, start):
    acc = torch.full(x.shape[:-1], start, dtype=x.dtype)
    for j in range(x.shape[-1]):
        acc = combine(acc, x[..., j])
    return acc


short_reductions = [((1000, 10), torch.float32), ((33, 4), torch.float32),
                    ((16, 8), torch.float32), ((129, 5), torch.float32),
                    ((2, 9, 31), torch.float32), ((21, 16), torch.float32),
                    ((999, 17), torch.float64), ((8, 4), torch.float64),
                    ((45, 8), torch.float64), ((3, 5, 20), torch.float64)]
for shape, dtype in short_reductions:
    x = torch.randn(*shape, dtype=dtype) * 3
    rows = x.reshape(-1, shape[-1])
    rows[0, 1] = float("nan")
    rows[-1, 2] = float("inf")
    rows[rows.shape[0] // 2, :] = -0.0
    rows[1, 0] = float("-inf")
    last = len(shape) - 1
    factors = 1 + 0.05 * torch.randn(*shape, dtype=dtype)
    cases = [
        ("sum", x, in_order(x, torch.add, 0.0)),
        ("prod", factors, in_order(factors, torch.mul, 1.0)),
    ]
    for op, operand, want in cases:
        label = f"{op} over rows of {list(shape)} {dtype}"
        ir = reduce_ir(op, operand, want, dims_attr([last], False))
        for threads, bits in WIDTHS:
            c.check(f"{label}: in order, at {threads} thread(s), vector "
                    f"bits {bits or 'of the host'}", ir, [operand], want,
                    rtol=0, atol=0, extra_args=width_args(threads, bits))
    # exp(x) fused into the sum: the buffered kernel.
    e = torch.exp(x)
    want = in_order(e, torch.add, 0.0)
    c.cases += 1
    code, exps, err = c.run(func_ir([x], ["%r0 = kiln.exp %a0 : {T0}"], [x]),
                            [x])
    if code != 0:
        c.fail(f"exp over {list(shape)}", err)
        continue
    want = in_order(exps[0], torch.add, 0.0)
    ir = func_ir([x], ["%e = kiln.exp %a0 : {T0}",
                       f"%r0 = kiln.sum %e {{dims = array<i64: {last}>}} : "
                       "{T0}"], [want])
    for threads, bits in WIDTHS:
        c.check(f"sum of exp over rows of {list(shape)} {dtype}: in order, "
                f"at {threads} thread(s), vector bits "
                f"{bits or 'of the host'}", ir, [x], want, rtol=0, atol=0,
                extra_args=width_args(threads, bits))
    # mean and norm (their epilogues) against PyTorch.
    finite = torch.randn(*shape, dtype=dtype)
    for op, want in (("mean", finite.mean(last)),
                     ("norm", torch.linalg.vector_norm(finite, dim=last))):
        c.check(f"{op} over rows of {list(shape)} {dtype}: against PyTorch",
                reduce_ir(op, finite, want, dims_attr([last], False)),
                [finite], want, rtol=1e-5, atol=1e-6)

c.finish()
