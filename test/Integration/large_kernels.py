# Large tensors: the paths a backend takes only above a size threshold —
# on the GPU the vectorized elementwise kernels (four points per thread,
# 16-byte accesses; operands dense or constant along the innermost dim),
# the four-points-a-block-apart kernels, the one-pass softmax rows (held in
# registers, or streamed for long rows), the topk fast path (histogram of
# the top key bits, packed candidates) and its fallbacks (heavy ties, k
# beyond the shared candidates), rows too few to fill the GPU split into
# ranges whose k best are merged (Device/TopkPlan.h), kthvalue of few long
# rows by radix passes over ranges; on the CPU the
# multithreaded and tiled paths, the non-temporal stores of large outputs
# and the rows-in-cache softmax's next-row prefetch (a 3-D softmax). Runs on the CPU here and on the GPU in test/GPU/numerics.test.
# RUN: %python %s
import torch

from kiln_testing import Checker, func_ir, ttype

torch.manual_seed(7)
c = Checker("large_kernels")


def unary(name, x, want, attrs="", tol=None):
    c.check(f"{name} {attrs}{tuple(x.shape)} {x.dtype}",
            func_ir([x], f"  %r0 = kiln.{name} %a0 {attrs}: {ttype(x)}", [want]),
            [x], want, rtol=tol, atol=tol)


def binary(name, x, y, want):
    c.check(f"{name} {tuple(x.shape)} {tuple(y.shape)} {x.dtype}",
            func_ir([x, y], f"  %r0 = kiln.{name} %a0, %a1 : {ttype(x)}, "
                 f"{ttype(y)}", [want]), [x, y], want)


# Elementwise: vectorized (inner dim % 4 == 0), with broadcasting along and
# across the inner dim, f32, f64 and i64.
a = torch.randn(512, 1024)
row = torch.randn(1024)
binary("add", a, row, a + row)
col = torch.randn(512, 1)
binary("mul", a, col, a * col)
d = torch.randn(300, 1000, dtype=torch.float64)
binary("sub", d, d.flip(0), d - d.flip(0))
i = torch.randint(-1000, 1000, (256, 512))
j = torch.randint(-1000, 1000, (512,))
binary("add", i, j, i + j)
unary("exp", a, torch.exp(a))
# Not vectorizable: inner dim not a multiple of 4 (plain, and a count that
# takes four points a block apart), a transposed read, a bool operand.
odd = torch.randn(513, 1023)
unary("exp", odd, torch.exp(odd))
wide = torch.randn(1024, 1026)
unary("neg", wide, -wide)
c.check("permute (512, 1024)",
        func_ir([a], f"  %r0 = kiln.permute %a0 [1, 0] : {ttype(a)}",
             [a.t().contiguous()]), [a], a.t().contiguous())
mask = a > 0
c.check("where with a bool argument",
        func_ir([mask, a], f"  %r0 = kiln.where %a0, %a1, %a1 : {ttype(mask)}, "
             f"{ttype(a)}, {ttype(a)}", [a]), [mask, a], a)

# A fused chain over 16M / 32 elements with a comparison inside.
v = torch.randn(1 << 19)
chain = torch.where(v > 0, torch.clamp(v, -1, 1) ** 2, v * 0.5) + 1
vt = ttype(v)
c.check("where/clamp/pow chain", f"""func.func @f(%x: {vt}) -> {vt} {{
  %z = kiln.constant dense<0.0> : tensor<f32>
  %two = kiln.constant dense<2.0> : tensor<f32>
  %half = kiln.constant dense<0.5> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %m = kiln.gt %x, %z : {vt}, tensor<f32>
  %c = kiln.clamp %x {{min = -1.0 : f64, max = 1.0 : f64}} : {vt}
  %p = kiln.pow %c, %two : {vt}, tensor<f32>
  %h = kiln.mul %x, %half : {vt}, tensor<f32>
  %w = kiln.where %m, %p, %h : {ttype(mask.flatten()[:1 << 19])}, {vt}, {vt}
  %y = kiln.add %w, %one : {vt}, tensor<f32>
  return %y : {vt}
}}""", [v], chain)

# Outputs of 32 MiB or more that the kernel only writes: non-temporal
# stores (kiln-streaming-stores). A flat loop in blocks of 4096 elements
# with a partial last block, and rows whose starts are 64-byte aligned
# (test/Pipelines/streaming-stores.mlir shows which stores become
# non-temporal; misaligned rows keep ordinary ones).
flat = torch.randn(9_000_001)
unary("neg", flat, -flat)
rows = torch.randn(4100, 2048)
binary("add", rows, rows[0], rows + rows[0])

# Reductions and softmax over long rows.
s = torch.randn(256, 3000)
# Sums of thousands of terms: rounding differs with the order.
unary("sum", s, s.sum(1), "{dims = array<i64: 1>} ", tol=1e-4)
unary("sum", s, s.sum(0), "{dims = array<i64: 0>} ", tol=1e-4)
unary("amax", s, s.amax(1), "{dims = array<i64: 1>} ")
for shape in ((256, 3000), (64, 20000), (100, 4098), (8, 4)):
    x = torch.randn(*shape) * 4
    unary("softmax", x, torch.softmax(x, 1), "{dim = 1 : i64} ")
    unary("log_softmax", x, torch.log_softmax(x, 1), "{dim = 1 : i64} ",
          tol=1e-5)
# A 3-D softmax over the last dim: its rows in cache, the next row (of the
# collapsed 210 x 4100) prefetched in 64-element chunks, a remainder of 4.
x3 = torch.randn(3, 70, 4100) * 4
unary("softmax", x3, torch.softmax(x3, 2), "{dim = 2 : i64} ")
unary("log_softmax", x3, torch.log_softmax(x3, 2), "{dim = -1 : i64} ",
      tol=1e-5)
special = torch.randn(4, 4096)
special[0, 7] = float("inf")
special[1, :] = -float("inf")
special[2, 9] = float("nan")
special[3, ::2] = -float("inf")
unary("softmax", special, torch.softmax(special, 1), "{dim = 1 : i64} ")
# Few long rows: each row cut into segments (planReductionSplit), each
# segment's maximum and sum of exps, then the row's, the segments' sums
# scaled (in f64 for f32). 2x65536: 16 segments of 4096; 1x2^20: 256;
# 5x40960: 8 of 5120; f64 (scaled in f64 as it is). Against PyTorch in
# f64: its f32 log_softmax of the 1x2^20 row is 2e-4 off (Kiln's 3.5e-6).
for x in (torch.randn(2, 65536) * 4, torch.randn(1, 1 << 20) * 4,
          torch.randn(5, 40960) * 4,
          torch.randn(2, 65536, dtype=torch.float64) * 4):
    unary("softmax", x, torch.softmax(x.double(), 1).to(x.dtype),
          "{dim = 1 : i64} ")
    unary("log_softmax", x, torch.log_softmax(x.double(), 1).to(x.dtype),
          "{dim = 1 : i64} ", tol=1e-5)
# Special values in split rows (8 segments of 4096): +inf, a row of -inf,
# NaN, every other -inf, a whole segment of -inf (its sum 0, not NaN), a
# single finite value in the last segment.
split_special = torch.randn(6, 32768) * 4
split_special[0, 5000] = float("inf")
split_special[1, :] = -float("inf")
split_special[2, 20000] = float("nan")
split_special[3, ::2] = -float("inf")
split_special[4, :4096] = -float("inf")
split_special[5, :-1] = -float("inf")
unary("softmax", split_special, torch.softmax(split_special, 1),
      "{dim = 1 : i64} ")
unary("log_softmax", split_special, torch.log_softmax(split_special, 1),
      "{dim = 1 : i64} ", tol=1e-5)
# Rows no power of two divides: 16 segments of 4368 and 113 elements after
# them, which the rows' kernel takes as one more segment: +inf or NaN
# there, a rest of -inf (its sum 0), finite values only there, a row of
# -inf; and f64 (segments of 4368 too: 64 bytes hold 8).
uneven_special = torch.randn(6, 70001) * 4
uneven_special[0, 70000] = float("inf")
uneven_special[1, 69950] = float("nan")
uneven_special[2, -113:] = -float("inf")
uneven_special[3, :-113] = -float("inf")
uneven_special[4, :] = -float("inf")
uneven64 = torch.randn(2, 70001, dtype=torch.float64) * 4
for x in (uneven_special, uneven64):
    unary("softmax", x, torch.softmax(x, 1), "{dim = 1 : i64} ")
    unary("log_softmax", x, torch.log_softmax(x, 1), "{dim = 1 : i64} ",
          tol=1e-5)


def topk_case(label, x, k, largest=True):
    values, indices = torch.sort(x, dim=-1, descending=largest, stable=True)
    v, ix = values[..., :k].contiguous(), indices[..., :k].contiguous()
    attrs = (f"{{k = {k} : i64, dim = -1 : i64, largest = "
             f"{str(largest).lower()}}}")
    c.check(f"topk {label} k={k} largest={largest}",
            f"func.func @f(%x: {ttype(x)}) -> ({ttype(v)}, {ttype(ix)}) {{\n"
            f"  %v, %i = kiln.topk %x {attrs} : {ttype(x)}\n"
            f"  return %v, %i : {ttype(v)}, {ttype(ix)}\n}}\n", [x], [v, ix])


t = torch.randn(64, 8192)
for k in (16, 1024, 2048):
    topk_case("random", t, k)
topk_case("random smallest", t, 100, largest=False)
topk_case("k beyond the shared candidates", t[:8], 3000)
topk_case("heavy ties", torch.randint(0, 3, (16, 8192)).float(), 500)
topk_case("f64", torch.randn(16, 5000, dtype=torch.float64), 300)
topk_case("i64", torch.randint(-50, 50, (16, 5000)), 40)
topk_case("one long row", torch.randn(1, 1 << 18), 100)
topk_case("one long row, ties across ranges",
          torch.randint(0, 5, (1, 1 << 17)).float(), 300, largest=False)
topk_case("two long i64 rows", torch.randint(-1000, 1000, (2, 40000)), 64)


def kthvalue_case(x, k):
    kv, ki = torch.kthvalue(x, k, dim=1)
    c.check(f"kthvalue {tuple(x.shape)} {x.dtype} k={k}",
            f"func.func @f(%x: {ttype(x)}) -> ({ttype(kv)}, {ttype(ki)}) {{\n"
            f"  %v, %i = kiln.kthvalue %x {{k = {k} : i64, dim = 1 : i64}} : "
            f"{ttype(x)}\n  return %v, %i : {ttype(kv)}, {ttype(ki)}\n}}\n",
            [x], [kv, ki])


kthvalue_case(torch.randn(32, 5000), 777)
# Few long rows: on the GPU split into ranges, a radix pass over all of them
# per digit (distinct values: PyTorch's index for ties is unspecified).
kthvalue_case(torch.randn(1, 1 << 18), 100000)
kthvalue_case(torch.randn(2, 40000, dtype=torch.float64), 1)
kthvalue_case(torch.randperm(50000).reshape(1, 50000) - 25000, 50000)
am = torch.randn(4096, 600)
c.check("argmax (4096, 600)",
        f"func.func @f(%x: {ttype(am)}) -> {ttype(am.argmax(1))} {{\n"
        f"  %i = kiln.argmax %x {{dim = 1 : i64}} : {ttype(am)}\n"
        f"  return %i : {ttype(am.argmax(1))}\n}}\n", [am], am.argmax(1))
c.finish()
