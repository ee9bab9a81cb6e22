# Indexing ops against PyTorch: gather, index_select, take (negative
# indices), scatter_add, index_add, put (with and without accumulate,
# repeated indices), on every dim.
# RUN: %python %s
import torch

from kiln_testing import Checker, ttype

torch.manual_seed(3)
c = Checker("indexing")


def ir2(op, a, b, want, attrs=""):
    return (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> {ttype(want)} {{\n"
            f"  %y = kiln.{op} %a, %b {attrs} : {ttype(a)}, {ttype(b)}\n"
            f"  return %y : {ttype(want)}\n}}\n")


def ir3(op, a, b, s, want, attrs=""):
    return (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}, %s: {ttype(s)}) -> {ttype(want)} {{\n"
            f"  %y = kiln.{op} %a, %b, %s {attrs} : {ttype(a)}, {ttype(b)}, {ttype(s)}\n"
            f"  return %y : {ttype(want)}\n}}\n")


x = torch.randn(4, 10)
for dim, idx in ((1, torch.randint(0, 10, (4, 3))), (0, torch.randint(0, 4, (2, 10))),
                 (-1, torch.randint(0, 10, (3, 25))), (0, torch.randint(0, 4, (6, 5)))):
    want = torch.gather(x, dim, idx)
    c.check(f"gather dim={dim} {tuple(idx.shape)}",
            ir2("gather", x, idx, want, f"{{dim = {dim} : i64}}"), [x, idx], want)
b3 = torch.randn(2, 5, 3)
idx = torch.randint(0, 5, (2, 7, 3))
want = torch.gather(b3, 1, idx)
c.check("gather 3-D", ir2("gather", b3, idx, want, "{dim = 1 : i64}"), [b3, idx], want)
n = torch.randint(-9, 9, (3, 6))
idx = torch.randint(0, 6, (3, 2))
want = torch.gather(n, 1, idx)
c.check("gather i64", ir2("gather", n, idx, want, "{dim = 1 : i64}"), [n, idx], want)

for dim, idx in ((0, torch.tensor([3, 0, 0, 2])), (1, torch.tensor([9, 1])),
                 (-1, torch.tensor(4)), (1, torch.tensor([], dtype=torch.int64))):
    want = torch.index_select(x, dim, idx)
    c.check(f"index_select dim={dim} {tuple(idx.shape)}",
            ir2("index_select", x, idx, want, f"{{dim = {dim} : i64}}"), [x, idx], want)

# index_select along dim 1 of a stored matrix prefetches the next row:
# whole lines when it reads most of a row (rows in parallel, the columns
# that prefetch in a loop of their own: 19 of 200, 7 of 40, all 3 of 3),
# else the elements it will read; at 1 and 3 threads.
for label, xs, idx in (("sparse", torch.randn(6, 4096), torch.randint(0, 4096, (10,))),
                       ("dense", torch.randn(6, 300), torch.randint(0, 300, (200,))),
                       ("dense, 7 prefetching", torch.randn(301, 100),
                        torch.randint(0, 100, (40,))),
                       ("dense, all prefetching", torch.randn(5, 40),
                        torch.tensor([39, 0, 17]))):
    want = torch.index_select(xs, 1, idx)
    for threads in (1, 3):
        c.check(f"index_select dim=1 {label} rows threads={threads}",
                ir2("index_select", xs, idx, want, "{dim = 1 : i64}"), [xs, idx],
                want, extra_args=[f"--threads={threads}"])

# index_select along a dim before the innermost copies whole slices (64
# elements or more; a memcpy each): repeated and empty indices, a rank-0
# index, 3-D and 4-D inputs, integers, and an exp fused into its read
# (element by element).
for label, xs, dim, idx in (
        ("rows", torch.randn(9, 100), 0, torch.tensor([8, 0, 8, 3, 3])),
        ("rank-0 index", torch.randn(5, 70), 0, torch.tensor(4)),
        ("empty index", torch.randn(5, 70), 0, torch.tensor([], dtype=torch.int64)),
        ("3-D dim 1", torch.randn(3, 5, 80), 1, torch.tensor([4, 0, 4, 2])),
        ("4-D dim 1", torch.randn(2, 3, 4, 20), 1, torch.tensor([2, 2, 0])),
        ("4-D dim 0", torch.randn(2, 3, 4, 20), 0, torch.tensor([1, 0])),
        ("i64 rows", torch.randint(-99, 99, (6, 128)), 0, torch.tensor([5, 1]))):
    want = torch.index_select(xs, dim, idx)
    c.check(f"index_select copies slices: {label}",
            ir2("index_select", xs, idx, want, f"{{dim = {dim} : i64}}"),
            [xs, idx], want)
xs = torch.randn(6, 96)
idx = torch.tensor([5, 0, 5])
want = torch.index_select(torch.exp(xs), 0, idx)
ir = f"""func.func @f(%x: {ttype(xs)}, %i: {ttype(idx)}) -> {ttype(want)} {{
  %e = kiln.exp %x : {ttype(xs)}
  %y = kiln.index_select %e, %i {{dim = 0 : i64}} : {ttype(xs)}, {ttype(idx)}
  return %y : {ttype(want)}
}}"""
c.check("index_select of a fused exp", ir, [xs, idx], want)

for idx in (torch.tensor([0, 39, -1, -40, 5]), torch.tensor([[1, -2], [3, 4]]),
            torch.tensor(7)):
    want = torch.take(x, idx)
    c.check(f"take {idx.tolist()}", ir2("take", x, idx, want), [x, idx], want)

base = torch.randn(4, 10)
for dim, idx_shape in ((1, (4, 6)), (0, (3, 10)), (-1, (2, 3))):
    size = base.shape[dim]
    idx = torch.randint(0, size, idx_shape)
    src = torch.randn(idx_shape)
    want = torch.scatter_add(base, dim, idx, src)
    c.check(f"scatter_add dim={dim}",
            ir3("scatter_add", base, idx, src, want, f"{{dim = {dim} : i64}}"),
            [base, idx, src], want)
# Repeated indices accumulate; src larger than index is allowed.
idx = torch.tensor([[0, 0, 0, 1]])
src = torch.ones(2, 5)
want = torch.scatter_add(torch.zeros(1, 3), 1, idx, src)
c.check("scatter_add repeated", ir3("scatter_add", torch.zeros(1, 3), idx, src, want,
                                    "{dim = 1 : i64}"), [torch.zeros(1, 3), idx, src], want)

base = torch.randn(5, 3)
for dim, idx in ((0, torch.tensor([0, 4, 0])), (1, torch.tensor([2, 2, 0, 1]))):
    src_shape = list(base.shape)
    src_shape[dim] = idx.numel()
    src = torch.randn(src_shape)
    want = torch.index_add(base, dim, idx, src)
    c.check(f"index_add dim={dim}",
            ir3("index_add", base, idx, src, want, f"{{dim = {dim} : i64}}"),
            [base, idx, src], want)

base = torch.randn(2, 3)
for accumulate in (False, True):
    idx = torch.tensor([[0, -1], [5, 2]])
    src = torch.tensor([1.0, 2.0, 3.0, 4.0])
    want = base.clone().put_(idx, src, accumulate=accumulate)
    attrs = "{accumulate = true}" if accumulate else ""
    c.check(f"put accumulate={accumulate}", ir3("put", base, idx, src, want, attrs),
            [base, idx, src], want)
idx = torch.tensor([1, 1, 1, 4])
src = torch.tensor([1.0, 2.0, 3.0, 4.0])
want = base.clone().put_(idx, src, accumulate=True)
c.check("put repeated accumulate", ir3("put", base, idx, src, want, "{accumulate = true}"),
        [base, idx, src], want)
# Without accumulate the last write in index order wins.
want = base.clone()
for i, v in zip(idx.tolist(), src.tolist()):
    want.view(-1)[i] = v
c.check("put repeated last wins", ir3("put", base, idx, src, want), [base, idx, src], want)

# Summation order: every element of scatter_add / index_add receives its
# contributions in row-major order of the positions (independent lines along
# `dim` run in parallel, chunked on the CPU): the bits of a sequential
# float32 loop, at every thread count. Heavily repeated indices and mixed
# magnitudes make any other order visible.
def sequential(base, positions):
    """base with `ref[at] += value` applied for each (at, value) group in
    order (the positions within one group are distinct)."""
    ref = base.clone()
    for at, value in positions:
        ref[at] += value
    return ref


def mixed(shape):
    return torch.randn(shape) * torch.pow(10.0, torch.randint(-3, 4, shape).float())


cols = torch.arange(50)
base, idx, src = mixed((7, 50)), torch.randint(0, 7, (300, 50)), mixed((300, 50))
want = sequential(base, (((idx[t], cols), src[t]) for t in range(300)))
order_cases = [("scatter_add dim=0 (chunked lines, partial chunk)", "scatter_add", 0,
                base, idx, src, want)]
a, c3 = torch.arange(5)[:, None], torch.arange(33)[None, :]
base, idx, src = mixed((5, 6, 33)), torch.randint(0, 6, (5, 400, 33)), mixed((5, 400, 33))
want = sequential(base, (((a, idx[:, t], c3), src[:, t]) for t in range(400)))
order_cases.append(("scatter_add 3-D dim=1", "scatter_add", 1, base, idx, src, want))
base, idx, src = mixed((6, 5)), torch.randint(0, 5, (6, 400)), mixed((6, 400))
rows = torch.arange(6)
want = sequential(base, (((rows, idx[:, t]), src[:, t]) for t in range(400)))
order_cases.append(("scatter_add dim=-1 (a line per row)", "scatter_add", -1, base, idx,
                    src, want))
base, idx, src = mixed((10, 37)), torch.randint(0, 10, (500,)), mixed((500, 37))
want = sequential(base, ((idx[t], src[t]) for t in range(500)))
order_cases.append(("index_add dim=0", "index_add", 0, base, idx, src, want))
base, idx, src = mixed((3, 4, 8)), torch.randint(0, 8, (300,)), mixed((3, 4, 300))
want = sequential(base, (((slice(None), slice(None), idx[t]), src[:, :, t])
                         for t in range(300)))
order_cases.append(("index_add 3-D dim=2", "index_add", 2, base, idx, src, want))
# Along dim 0 with a 1-D index the CPU splits the targets into one range
# per thread (fewer ranges than threads when dim 0 is short).
base, idx, src = mixed((3, 9)), torch.randint(0, 3, (400,)), mixed((400, 9))
want = sequential(base, ((idx[t], src[t]) for t in range(400)))
order_cases.append(("index_add dim=0, 3 target rows", "index_add", 0, base,
                    idx, src, want))
# Along dim 0 with an index per element the CPU splits the columns (dim 1)
# into one block per thread: fewer columns than threads, rank 3, an index
# smaller than base and src in the other dims.
base, idx, src = mixed((5, 3, 4)), torch.randint(0, 5, (200, 3, 4)), mixed((200, 3, 4))
a3, b3 = torch.arange(3)[:, None], torch.arange(4)[None, :]
want = sequential(base, (((idx[t], a3, b3), src[t]) for t in range(200)))
order_cases.append(("scatter_add 3-D dim=0, 3 column blocks", "scatter_add", 0,
                    base, idx, src, want))
base, idx, src = mixed((6, 5, 9)), torch.randint(0, 6, (100, 4, 7)), mixed((120, 5, 9))
a4, b7 = torch.arange(4)[:, None], torch.arange(7)[None, :]
want = sequential(base, (((idx[t], a4, b7), src[t, :4, :7]) for t in range(100)))
order_cases.append(("scatter_add 3-D dim=0, index smaller than base and src",
                    "scatter_add", 0, base, idx, src, want))
# Tall results take a thread's block in packed tiles of columns (2 MB of
# the result each, at least 16 columns): 20000 rows of f32 make tiles of 26
# columns, so 50 columns are two tiles at one thread (the second partial);
# 9000 x 40 x 3 takes tiles of 19 columns (of 3 elements) and one of 2; an
# index narrower than the base (its groups do not cover the result) packs
# each tile from the result instead of the base.
cols50 = torch.arange(50)
base, idx, src = mixed((20000, 50)), torch.randint(0, 20000, (60, 50)), mixed((60, 50))
want = sequential(base, (((idx[t], cols50), src[t]) for t in range(60)))
order_cases.append(("scatter_add dim=0, packed tiles of columns", "scatter_add",
                    0, base, idx, src, want))
base, idx, src = mixed((9000, 40, 3)), torch.randint(0, 9000, (30, 40, 3)), mixed((30, 40, 3))
a40, b3t = torch.arange(40)[:, None], torch.arange(3)[None, :]
want = sequential(base, (((idx[t], a40, b3t), src[t]) for t in range(30)))
order_cases.append(("scatter_add 3-D dim=0, packed tiles, the last of 2 columns", "scatter_add",
                    0, base, idx, src, want))
base, idx, src = mixed((20000, 50)), torch.randint(0, 20000, (60, 40)), mixed((60, 45))
cols40 = torch.arange(40)
want = sequential(base, (((idx[t], cols40), src[t, :40]) for t in range(60)))
order_cases.append(("scatter_add dim=0, tiles packed from the result",
                    "scatter_add", 0, base, idx, src, want))
base, idx, src = mixed((50,)), torch.randint(0, 50, (3000,)), mixed((3000,))
want = sequential(base, ((idx[t], src[t]) for t in range(3000)))
order_cases.append(("scatter_add 1-D", "scatter_add", 0, base, idx, src, want))
for label, op, dim, base, idx, src, want in order_cases:
    for threads in (1, 2, 7):
        c.check(f"{label}: sequential order's bits at {threads} thread(s)",
                ir3(op, base, idx, src, want, f"{{dim = {dim} : i64}}"),
                [base, idx, src], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])

# A splat base (a gradient scatters into zeros; 2.5 as well, so an element
# left unset shows): where the groups cover the result, each fills its own
# slice before its updates; the same bits. One case per CPU form (lines
# under the dims before `dim`, target ranges of dim 0, column blocks) and
# one whose groups do not cover the result (what the index misses keeps
# the splat).
def splat_ir(op, value, shape, i, s, dim):
    b = ttype(torch.zeros(shape))
    return (f"func.func @f(%i: {ttype(i)}, %s: {ttype(s)}) -> {b} {{\n"
            f"  %b = kiln.full {value!r} : {b}\n"
            f"  %r = kiln.{op} %b, %i, %s {{dim = {dim} : i64}} : {b}, "
            f"{ttype(i)}, {ttype(s)}\n  return %r : {b}\n}}\n")


idx_lines, src_lines = torch.randint(0, 5, (6, 400)), mixed((6, 400))
idx_ranges, src_ranges = torch.randint(0, 10, (500,)), mixed((500, 37))
idx_blocks, src_blocks = torch.randint(0, 5, (200, 3, 4)), mixed((200, 3, 4))
idx_part, src_part = torch.randint(0, 6, (100, 4, 7)), mixed((120, 5, 9))
idx_tiles, src_tiles = torch.randint(0, 20000, (60, 50)), mixed((60, 50))
splat_cases = [
    ("scatter_add dim=0 (packed tiles of columns)", "scatter_add", 0,
     (20000, 50), idx_tiles, src_tiles,
     lambda t: ((idx_tiles[t], cols50), src_tiles[t]), 60),
    ("scatter_add dim=-1 (a line per row)", "scatter_add", -1, (6, 5),
     idx_lines, src_lines,
     lambda t: ((rows, idx_lines[:, t]), src_lines[:, t]), 400),
    ("index_add dim=0 (target ranges)", "index_add", 0, (10, 37), idx_ranges,
     src_ranges, lambda t: (idx_ranges[t], src_ranges[t]), 500),
    ("scatter_add 3-D dim=0 (column blocks)", "scatter_add", 0, (5, 3, 4),
     idx_blocks, src_blocks,
     lambda t: ((idx_blocks[t], a3, b3), src_blocks[t]), 200),
    ("scatter_add 3-D dim=0, index smaller than base", "scatter_add", 0,
     (6, 5, 9), idx_part, src_part,
     lambda t: ((idx_part[t], a4, b7), src_part[t, :4, :7]), 100),
]
for label, op, dim, shape, idx, src, position, count in splat_cases:
    for value in (0.0, 2.5):
        want = sequential(torch.full(shape, value),
                          (position(t) for t in range(count)))
        for threads in (1, 2, 7):
            c.check(f"{label}, base full {value}: the sequential order's bits "
                    f"at {threads} thread(s)",
                    splat_ir(op, value, shape, idx, src, dim), [idx, src], want,
                    rtol=0, atol=0, extra_args=[f"--threads={threads}"])

# index_add along dim 0 with a one-element index (index_select's gradient
# of a single row): neither target ranges (one position) nor column blocks
# (those need an index per element).
base, idx, src = mixed((7, 3)), torch.tensor([4]), mixed((1, 3))
want = base.index_add(0, idx, src)
for sorted_flag in ([], ["--sorted-scatters"]):
    c.check(f"index_add dim=0, one position{', sorted' if sorted_flag else ''}",
            ir3("index_add", base, idx, src, want, "{dim = 0 : i64}"),
            [base, idx, src], want, rtol=0, atol=0, extra_args=sorted_flag)

# Rank-0 base, index and source (dim 0 and -1 of a number, as PyTorch
# takes them): index_add read a dim size the number does not have, and
# crashed, until the sixty-fifth session.
base, idx, src = torch.tensor(-1.5), torch.tensor(0), torch.tensor(2.25)
for op, dim, want in (("index_add", 0, base.index_add(0, idx, src)),
                      ("index_add", -1, base.index_add(-1, idx, src)),
                      ("scatter_add", 0, base.scatter_add(0, idx, src))):
    for sorted_flag in ([], ["--sorted-scatters"]):
        c.check(f"{op} of rank 0, dim={dim}{', sorted' if sorted_flag else ''}",
                ir3(op, base, idx, src, want, f"{{dim = {dim} : i64}}"),
                [base, idx, src], want, rtol=0, atol=0,
                extra_args=sorted_flag)

# The sorted scatter (the GPU's lowering; on the CPU with
# --sorted-scatters): the runtime sorts the positions by target, then every
# element adds its run in position order -- the sequential loop's bits.
for label, op, dim, base, idx, src, want in order_cases:
    if dim != 0 or idx.dim() != 1:
        continue
    for threads in (1, 2):
        c.check(f"{label}, sorted: sequential order's bits at {threads} "
                "thread(s)",
                ir3(op, base, idx, src, want, f"{{dim = {dim} : i64}}"),
                [base, idx, src], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}", "--sorted-scatters"])
# put (flat targets, negative indices from the end, a 2-D index; without
# accumulate the last write wins), and a target no index names.
base, src = mixed((6, 7)), mixed((40, 25))
idx = torch.randint(-42, 41, (40, 25))
flat = torch.where(idx < 0, idx + 42, idx).flatten()
want = sequential(base.flatten(),
                  ((flat[t], src.flatten()[t]) for t in range(1000))).view(6, 7)
last = base.clone().flatten()
for t in range(1000):
    last[flat[t]] = src.flatten()[t]
for accumulate, expected in (("true", want), ("false", last.view(6, 7))):
    for sorted_flag in ([], ["--sorted-scatters"]):
        c.check(f"put accumulate={accumulate}"
                f"{', sorted' if sorted_flag else ''}: the sequential loop's "
                "bits", ir3("put", base, idx, src, expected,
                            f"{{accumulate = {accumulate}}}"),
                [base, idx, src], expected, rtol=0, atol=0,
                extra_args=["--threads=2"] + sorted_flag)
base, idx = torch.arange(10, dtype=torch.float64), torch.tensor([[9, -1], [2, 9]])
src = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
want = base.put(idx, src, accumulate=True)
c.check("put accumulate, sorted, f64: untouched targets keep their base",
        ir3("put", base, idx, src, want, "{accumulate = true}"),
        [base, idx, src], want, rtol=0, atol=0,
        extra_args=["--sorted-scatters"])
base, idx, src = (torch.randint(-9, 9, (4, 5)), torch.randint(0, 4, (300,)),
                  torch.randint(-9, 9, (300, 5)))
want = base.index_add(0, idx, src)
c.check("index_add dim=0, sorted, i64", ir3("index_add", base, idx, src, want,
                                            "{dim = 0 : i64}"),
        [base, idx, src], want, rtol=0, atol=0,
        extra_args=["--sorted-scatters"])

# src is the base itself: every lowering reads the original values while
# it updates (bufferization copies where the update would overwrite them).
def aliased_ir(op, b, i, attrs):
    return (f"func.func @f(%b: {ttype(b)}, %i: {ttype(i)}) -> {ttype(b)} {{\n"
            f"  %r = kiln.{op} %b, %i, %b {attrs} : {ttype(b)}, {ttype(i)}, "
            f"{ttype(b)}\n  return %r : {ttype(b)}\n}}\n")


b2, i2 = torch.randn(6, 50), torch.randint(0, 6, (6, 50))
b1, i1 = torch.randn(100), torch.randint(-100, 100, (100,))
b3, i3 = torch.randn(10, 4), torch.randint(0, 10, (10,))
for op, b, i, attrs, want in (
        ("scatter_add", b2, i2, "{dim = 0 : i64}", b2.scatter_add(0, i2, b2)),
        ("put", b1, i1, "{accumulate = true}", b1.put(i1, b1, accumulate=True)),
        ("index_add", b3, i3, "{dim = 0 : i64}", b3.index_add(0, i3, b3))):
    for flags in ([], ["--sorted-scatters"]):
        c.check(f"{op} with src = base{', sorted' if flags else ''}",
                aliased_ir(op, b, i, attrs), [b, i], want, extra_args=flags)

# The ops that update a tensor in place never write into the caller's input:
# running three times gives the answer of one run.
idx = torch.tensor([1, 1, 3])
src = torch.ones(3)
base = torch.zeros(5)
for op, attrs, want in (
        ("scatter_add", "{dim = 0 : i64}", base.scatter_add(0, idx, src)),
        ("index_add", "{dim = 0 : i64}", base.index_add(0, idx, src)),
        ("put", "{accumulate = true}", base.put(idx, src, accumulate=True))):
    c.check(f"{op} leaves its base argument unchanged",
            ir3(op, base, idx, src, want, attrs), [base, idx, src], want,
            extra_args=["--repeat=2"])

c.finish()
