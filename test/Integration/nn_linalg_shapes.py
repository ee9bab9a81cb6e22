# softmax, log_softmax, mse_loss, cross_entropy, matmul (dot, mm, mv, vm,
# batched with broadcast batch dims, i64), creation ops (constant, full,
# zeros_like, ones_like, arange) and shape ops (reshape, permute) against
# PyTorch.
# RUN: %python %s
import torch
import torch.nn.functional as F

from kiln_testing import Checker, func_ir, ttype, unary_ir

torch.manual_seed(4)
c = Checker("nn_linalg_shapes")


def check_unfused_bits(label, ir, inputs):
    """Checks that `ir`, fused, gives the bits of its --no-fuse run."""
    c.cases += 1
    code, unfused, err = c.run(ir, inputs, ["--no-fuse"])
    if code != 0:
        c.fail(f"{label}, unfused", err)
        return
    c.check(f"{label}: the unfused bits", ir, inputs, unfused, rtol=0, atol=0)


x = torch.randn(8, 5) * 4
for dim in (1, 0, -1):
    c.check(f"softmax dim={dim}", unary_ir("softmax", x, f"{{dim = {dim} : i64}}"),
            [x], F.softmax(x, dim))
    c.check(f"log_softmax dim={dim}",
            unary_ir("log_softmax", x, f"{{dim = {dim} : i64}}"), [x],
            F.log_softmax(x, dim), atol=1e-5)
big = torch.tensor([[1000.0, 0.0, -1000.0], [float("-inf"), 1.0, 2.0]])
c.check("softmax large logits", unary_ir("softmax", big, "{dim = 1 : i64}"),
        [big], F.softmax(big, 1))
# Infinities and NaN: -inf entries give 0, +inf or NaN make the row NaN, an
# all -inf row is NaN (PyTorch's answers).
special = torch.tensor([[float("-inf"), 1.0, 2.0, float("-inf")],
                        [float("inf"), 1.0, 2.0, 3.0],
                        [float("nan"), 1.0, 2.0, 3.0],
                        [float("-inf")] * 4,
                        [float("-inf"), float("-inf"), 5.0, float("-inf")]])
for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
    c.check(f"{op} special values", unary_ir(op, special, "{dim = 1 : i64}"),
            [special], fn(special, 1))
# Empty inputs with unit dims (run as over the input without its unit
# dims: an empty dim's reshape had no dims to take, a lowering failure found
# by the API fuzzer, seed 160).
for shape, dim in (((1, 0, 5), 1), ((1, 0, 5), 2), ((0, 1, 5), 2),
                   ((3, 1, 0), 0)):
    empty = torch.zeros(shape)
    for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        c.check(f"{op} of {list(shape)} over dim {dim}",
                unary_ir(op, empty, f"{{dim = {dim} : i64}}"), [empty],
                fn(empty, dim))
# Along a non-last dim and a long row (the online max/sum rescaling).
long = torch.randn(3, 2000, 2) * 10
for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
    c.check(f"{op} dim 1 long", unary_ir(op, long, "{dim = 1 : i64}"),
            [long], fn(long, 1), atol=1e-5)
# Unit dims hold one position each: softmax over a dim followed by unit
# dims ([N, C, 1, 1] over C, class scores after a global pooling) runs as
# over the input without them -- the row kernels, not three kernels over
# columns of one element (lowering.md) -- with those bits, at 1 and 2
# threads, through a fused producer chain and epilogue too; and PyTorch's
# answer. Rows in cache, an f64 row, few long rows split in segments.
unit_shapes = [((64, 1000, 1, 1), 1, torch.float32),
               ((8, 1, 3000, 1), 2, torch.float32),
               ((16, 1, 1, 300), 3, torch.float64),
               ((2, 1, 40000, 1), -2, torch.float32)]
for shape, dim, dtype in unit_shapes:
    ux = torch.randn(*shape, dtype=dtype) * 5
    sx = ux.reshape([n for n in shape if n != 1])
    sdim = [d for d in range(ux.dim()) if shape[d] != 1].index(dim % ux.dim())
    for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        label = f"{op} over dim {dim} of {list(shape)} {dtype}"
        c.cases += 1
        code, ref, err = c.run(unary_ir(op, sx, f"{{dim = {sdim} : i64}}"),
                               [sx])
        if code != 0:
            c.fail(f"{label}: squeezed", err)
            continue
        ir = unary_ir(op, ux, f"{{dim = {dim} : i64}}")
        for threads in (1, 2):
            c.check(f"{label}: the squeezed input's bits at {threads} "
                    f"thread(s)", ir, [ux], [ref[0].reshape(shape)], rtol=0,
                    atol=0, extra_args=[f"--threads={threads}"])
        # (PyTorch in float64: its float32 log_softmax of long rows is
        # further off than Kiln's)
        c.check(f"{label}: against PyTorch (float64)", ir, [ux],
                fn(ux.double(), dim).to(dtype), rtol=1e-5, atol=1e-5)
        # Fused: a producer chain and an epilogue around it.
        chain = (f"func.func @f(%x: {ttype(ux)}) -> {ttype(ux)} {{\n"
                 f"  %a = kiln.abs %x : {ttype(ux)}\n"
                 f"  %s = kiln.{op} %a {{dim = {dim} : i64}} : {ttype(ux)}\n"
                 f"  %t = kiln.tanh %s : {ttype(ux)}\n"
                 f"  return %t : {ttype(ux)}\n}}\n")
        check_unfused_bits(f"{label}: abs, then tanh", chain, [ux])
        c.check(f"{label}: abs, then tanh: against PyTorch (float64)", chain,
                [ux], torch.tanh(fn(torch.abs(ux.double()), dim)).to(dtype),
                rtol=1e-5, atol=1e-5)
# Short rows (4 to 31 elements along the last dim), a row per lane of a
# vector (16 f32 or 8 f64 rows at a time, lowering.md): against PyTorch
# (float64), at 1 and 2 threads; the bits of the column kernel on the
# transposed input (softmax over dim 0 of [n, rows]: each sum also in
# order); a fused producer chain (evaluated first, in order) and a
# two-result epilogue against their unfused bits. Rows past the last whole
# group (1000, 17, 21 = 3 x 7, 999 rows; 2 rows, fewer than a group, keep
# the rows-in-cache kernel), blocks of the lanes' width (17 and 31
# elements: 2 f32 blocks, 3 and 4 f64), NaN, +inf and -inf rows among them.
lane_shapes = [((4096, 10), torch.float32), ((1000, 4), torch.float32),
               ((17, 31), torch.float32), ((3, 7, 12), torch.float32),
               ((2, 5), torch.float32), ((999, 9), torch.float64),
               ((64, 17), torch.float64), ((40, 31), torch.float64),
               # whole vectors of rows of 4 or 8 (the last group short)
               ((3, 11, 8), torch.float32), ((17, 8), torch.float32),
               ((21, 4), torch.float64)]
for shape, dtype in lane_shapes:
    lx = torch.randn(*shape, dtype=dtype) * 4
    flat = lx.reshape(-1, shape[-1])
    flat[-1, 1] = float("nan")
    flat[0, 2] = float("-inf")
    if flat.shape[0] > 3:
        flat[-2, 0] = float("inf")
        flat[-3, :] = float("-inf")
    last = lx.dim() - 1
    for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        label = f"{op} of short rows {list(shape)} {dtype}"
        ir = unary_ir(op, lx, f"{{dim = {last} : i64}}")
        c.check(f"{label}: against PyTorch (float64)", ir, [lx],
                fn(lx.double(), last).to(dtype), rtol=1e-5, atol=1e-6)
        columns = flat.t().contiguous()
        c.cases += 1
        code, transposed, err = c.run(
            unary_ir(op, columns, "{dim = 0 : i64}"), [columns])
        if code != 0:
            c.fail(f"{label}: the column kernel", err)
            continue
        # The rows a vector register holds at each width (16 f32 rows
        # with AVX-512, 8 with AVX2, 4 with SSE): the same bits.
        for threads, bits in ((1, None), (2, 128), (2, 256), (2, 512)):
            extra = [f"--threads={threads}"]
            if bits:
                extra.append(f"--vector-bits={bits}")
            c.check(f"{label}: the column kernel's bits at {threads} "
                    f"thread(s), vector bits {bits or 'of the host'}", ir,
                    [lx], [transposed[0].t().reshape(shape)], rtol=0, atol=0,
                    extra_args=extra)
        fused = func_ir([lx], ["%a = kiln.mul %a0, %a0 : {T0}, {T0}",
                               f"%r1 = kiln.{op} %a {{dim = {last} : i64}} "
                               ": {T0}",
                               "%r0 = kiln.exp %r1 : {T0}"], [lx, lx])
        check_unfused_bits(f"{label}: x * x, then exp", fused, [lx])
        want = fn(lx.double() * lx.double(), last)
        c.check(f"{label}: x * x, then exp: against PyTorch (float64)", fused,
                [lx], [torch.exp(want).to(dtype), want.to(dtype)], rtol=1e-5,
                atol=1e-6)
x64 = torch.randn(3, 4, dtype=torch.float64)
c.check("log_softmax f64", unary_ir("log_softmax", x64, "{dim = 1 : i64}"),
        [x64], F.log_softmax(x64, 1))


def ir2(op, a, b, want, attrs=""):
    return (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> {ttype(want)} {{\n"
            f"  %y = kiln.{op} %a, %b {attrs} : {ttype(a)}, {ttype(b)}\n"
            f"  return %y : {ttype(want)}\n}}\n")


t = torch.randn(8, 5)
for reduction in ("mean", "sum", "none"):
    want = F.mse_loss(x, t, reduction=reduction)
    c.check(f"mse_loss {reduction}",
            ir2("mse_loss", x, t, want, f'{{reduction = "{reduction}"}}'), [x, t],
            want, rtol=1e-5, atol=1e-5)
labels = torch.randint(0, 5, (8,))
for reduction in ("mean", "sum", "none"):
    want = F.cross_entropy(x, labels, reduction=reduction)
    c.check(f"cross_entropy {reduction}",
            ir2("cross_entropy", x, labels, want, f'{{reduction = "{reduction}"}}'),
            [x, labels], want, rtol=1e-5, atol=1e-5)
logits = torch.randn(5, dtype=torch.float64)
label = torch.tensor(3)
want = F.cross_entropy(logits, label)
c.check("cross_entropy [C]", ir2("cross_entropy", logits, label, want), [logits, label], want)
# Rows of a few classes on the CPU: the log_softmax (a row per lane) and
# the gather from it, whose bits are those of the log-probability computed
# at the target only, (x[t] - m) - log(sum(exp(x - m))), written out here
# (and PyTorch's in f64); -inf and NaN logits among them.
for (rows, classes), dtype in (((4096, 10), torch.float32),
                               ((100, 5), torch.float64),
                               ((33, 31), torch.float32)):
    ce_x = torch.randn(rows, classes, dtype=dtype) * 3
    ce_x[0, 1] = float("-inf")
    ce_x[1, 2] = float("nan")
    ce_t = torch.randint(0, classes, (rows,))
    for reduction in ("none", "mean"):
        label = f"cross_entropy {reduction} over {rows}x{classes} {dtype}"
        loss = F.cross_entropy(ce_x.double(), ce_t, reduction=reduction)
        ir = ir2("cross_entropy", ce_x, ce_t, loss.to(dtype),
                 f'{{reduction = "{reduction}"}}')
        written = func_ir([ce_x, ce_t], [
            "%m = kiln.amax %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
            "%d = kiln.sub %a0, %m : {T0}, " + ttype(ce_x[:, :1]),
            "%e = kiln.exp %d : {T0}",
            "%s = kiln.sum %e {dims = array<i64: 1>, keepdim = true} : {T0}",
            "%l = kiln.log %s : " + ttype(ce_x[:, :1]),
            "%i = kiln.reshape %a1 : {T1} -> " + ttype(ce_t[:, None]),
            "%g = kiln.gather %a0, %i {dim = 1 : i64} : {T0}, " +
            ttype(ce_t[:, None]),
            "%gm = kiln.sub %g, %m : " + ttype(ce_x[:, :1]) + ", " +
            ttype(ce_x[:, :1]),
            "%p = kiln.sub %gm, %l : " + ttype(ce_x[:, :1]) + ", " +
            ttype(ce_x[:, :1]),
            "%f = kiln.reshape %p : " + ttype(ce_x[:, :1]) + " -> " +
            ttype(ce_x[:, 0]),
            "%n = kiln.neg %f : " + ttype(ce_x[:, 0])] +
            (["%r0 = kiln.mean %n : " + ttype(ce_x[:, 0])]
             if reduction == "mean" else
             ["%r0 = kiln.reshape %n : " + ttype(ce_x[:, 0]) + " -> " +
              ttype(ce_x[:, 0])]), [loss.to(dtype)])
        c.cases += 1
        code, formula, err = c.run(written, [ce_x, ce_t])
        if code != 0:
            c.fail(f"{label}: the formula", err)
            continue
        c.check(f"{label}: the formula's bits", ir, [ce_x, ce_t], formula,
                rtol=0, atol=0)
        c.check(f"{label}: against PyTorch (float64)", ir, [ce_x, ce_t],
                loss.to(dtype), rtol=1e-5, atol=1e-6)

for sa, sb in (((7,), (7,)), ((3, 8), (8, 5)), ((3, 8), (8,)), ((8,), (8, 5)),
               ((4, 3, 28, 64), (4, 1, 64, 32)), ((2, 3, 4), (4, 5)),
               ((5,), (2, 5, 3)), ((2, 1, 3, 4), (5, 4, 2))):
    a = torch.randn(sa)
    b = torch.randn(sb)
    want = torch.matmul(a, b)
    c.check(f"matmul {sa} @ {sb}", ir2("matmul", a, b, want), [a, b], want,
            rtol=1e-4, atol=1e-4)
a = torch.randint(-5, 5, (3, 4))
b = torch.randint(-5, 5, (4, 2))
c.check("matmul i64", ir2("matmul", a, b, a @ b), [a, b], a @ b)
# Every result element sums its products in k order, a multiply then an
# add (docs/lowering.md): the exact bits of that float32 loop, with row
# blocks (n a multiple of 4) and without, at 1 and 2 threads.
# Register tiles (f32, f64, a broadcast batch dim; packed rhs panels, in
# chunks of 4 row blocks; columns left over in groups of 8 (40, 24) or
# masked (13, 33, 21 f64); rows left over (37, 9; 5, fewer than a block
# of 8)), row blocks (m < 8;
# i64 is exact anyway) and the plain loop (n < 4). Panels over 128 KB are
# packed and read in blocks of k, the accumulators stored and read back
# between them (1501 rows of k: blocks of 751 and 750; f64 1100: two of
# 550; 2100 in blocks of 700, the 12 columns left over masked in blocks of
# 1050); with many row blocks, an iteration takes 4 column groups (288
# columns: 9 groups, the last on its own) or 2 (168: 5 groups of 32 and 8
# columns left over), their panels in blocks of 220 or 367 rows of k. With
# few row blocks, 4 groups are packed together whatever the chunk (8 rows,
# 200 columns: 4 groups and 2 more together; 20 rows of f64, 100 columns:
# 6 groups of 16, the 4 rows left over alike, the 4 columns left over
# masked). A small batch takes blocks of the most rows that divide it
# (16: 4 blocks of 4 with AVX2; 12 f64: 2 of 6, or 3 of 4 with AVX-512;
# 23, prime: rows left over).
for sa, sb, dtype in (((64, 48), (48, 40), torch.float32),
                      ((8, 3000), (3000, 200), torch.float32),
                      ((20, 2000), (2000, 100), torch.float64),
                      ((512, 1501), (1501, 256), torch.float32),
                      ((512, 1100), (1100, 128), torch.float64),
                      ((2048, 2100), (2100, 44), torch.float32),
                      ((4096, 1100), (1100, 288), torch.float32),
                      ((4096, 1100), (1100, 168), torch.float32),
                      ((2048, 300), (300, 32), torch.float32),
                      ((2, 256, 300), (1, 300, 64), torch.float32),
                      ((16, 30), (30, 16), torch.float64),
                      ((9, 20), (20, 21), torch.float64),
                      ((16, 20), (20, 13), torch.float32),
                      ((5, 40), (40, 24), torch.float32),
                      ((2, 37, 19), (19, 33), torch.float32),
                      ((16, 20), (20, 5), torch.float32),
                      ((3, 19), (19, 33), torch.float32),
                      ((16, 1100), (1100, 80), torch.float32),
                      ((23, 300), (300, 40), torch.float32),
                      ((12, 1100), (1100, 72), torch.float64)):
    a = torch.randn(sa, dtype=dtype) * torch.pow(
        10.0, torch.randint(-2, 3, sa).to(dtype))
    b = torch.randn(sb, dtype=dtype)
    want = torch.zeros(torch.matmul(a, b).shape, dtype=dtype)
    for k in range(a.shape[-1]):
        want = want + a[..., :, k:k + 1] * b[..., k:k + 1, :]
    # The host's register tiles at 1 thread; each width's tiles (8 rows
    # with AVX-512, 6 with AVX2 and SSE, fewer that divide a small batch)
    # at 2, whatever the host (LLVM legalizes the wider vectors; one of them
    # is the host's).
    for threads, bits in ((1, None), (2, 128), (2, 256), (2, 512)):
        extra = [f"--threads={threads}"]
        if bits:
            extra.append(f"--vector-bits={bits}")
        c.check(f"matmul {sa} @ {sb} {dtype} sums in k order, "
                f"threads={threads}, vector bits {bits or 'of the host'}",
                ir2("matmul", a, b, want), [a, b], want, rtol=0, atol=0,
                extra_args=extra)
# Matrix times vector on the CPU: 16 (f32) or 8 (f64) rows per vector of
# sums, their elements in transposed tiles; the same k-order bits. Whole
# tiles and k left over (100 = 6 x 16 + 4), rows left over (37 = 2 x 16 +
# 5; one: 17), batch dims, k shorter than a tile (3),
# NaN and infinity in a lane; a one-column matrix as the vector.
for sa, sb, dtype in (((37, 100), (100,), torch.float32),
                      ((2, 3, 20, 16), (16,), torch.float32),
                      ((64, 3), (3,), torch.float32),
                      ((17, 20), (20,), torch.float32),
                      ((19, 70), (70,), torch.float64),
                      ((2, 8, 8), (8,), torch.float64),
                      ((37, 40), (40, 1), torch.float32),
                      ((2, 9, 20), (20, 1), torch.float64)):
    a = torch.randn(sa, dtype=dtype) * torch.pow(
        10.0, torch.randint(-2, 3, sa).to(dtype))
    b = torch.randn(sb, dtype=dtype)
    a.view(-1, sa[-1])[3, 1] = float("nan")
    a.view(-1, sa[-1])[1, 2] = float("inf")
    want = torch.zeros(torch.matmul(a, b).shape, dtype=dtype)
    for k in range(a.shape[-1]):
        if b.dim() == 1:
            want = want + a[..., k] * b[k]
        else:
            want = want + a[..., k:k + 1] * b[k, 0]
    # R x R tiles of a register's lanes: 16 f32 with AVX-512, 8 with AVX2,
    # 4 with SSE.
    for threads, bits in ((1, None), (2, 128), (2, 256), (2, 512)):
        extra = [f"--threads={threads}"]
        if bits:
            extra.append(f"--vector-bits={bits}")
        c.check(f"matmul {sa} @ {sb} {dtype} matrix-vector in k order, "
                f"threads={threads}, vector bits {bits or 'of the host'}",
                ir2("matmul", a, b, want), [a, b], want, rtol=0, atol=0,
                extra_args=extra)

# Vector times matrix with fewer lhs rows than register tiling takes (a
# batch of one through a linear layer) on the CPU: k split into S segments
# (a power of two up to 16, segments of at least 64 rows), each summed in
# k order into a partial row, the partials then added in segment order --
# those exact bits at 1 and 2 threads. 1x1024 @ 1024x1030: 16 segments of
# 64 (rows of 1030: the partial rows padded to 64 bytes); 2048 @ 2048x600:
# 16 of 128; 3x512 @ 512x1000: 8 of 64; f64 1x768 @ 768x1400: 8 of 96;
# i64 (exact in any order).
for sa, sb, dtype, segments in (((1, 1024), (1024, 1030), torch.float32, 16),
                                ((2048,), (2048, 600), torch.float32, 16),
                                ((3, 512), (512, 1000), torch.float32, 8),
                                ((1, 768), (768, 1400), torch.float64, 8)):
    a = torch.randn(sa, dtype=dtype) * torch.pow(
        10.0, torch.randint(-2, 3, sa).to(dtype))
    b = torch.randn(sb, dtype=dtype)
    a.view(-1)[5] = float("nan")
    rows = a if a.dim() == 2 else a.unsqueeze(0)
    length = sb[0] // segments
    want = torch.zeros(rows.shape[0], sb[1], dtype=dtype)
    for s in range(segments):
        part = torch.zeros(rows.shape[0], sb[1], dtype=dtype)
        for k in range(s * length, (s + 1) * length):
            part = part + rows[:, k:k + 1] * b[k:k + 1, :]
        want = want + part
    want = want if a.dim() == 2 else want[0]
    for threads in (1, 2):
        c.check(f"matmul {sa} @ {sb} {dtype} vector-matrix in {segments} "
                f"segments, threads={threads}",
                ir2("matmul", a, b, want), [a, b], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])
a = torch.randint(-5, 5, (1, 1024))
b = torch.randint(-5, 5, (1024, 1024))
c.check("matmul i64 vector-matrix", ir2("matmul", a, b, a @ b), [a, b], a @ b)

# Register tiles too few for the threads (under 16, batches included) with
# a long k split k (CPU): S segments (a power of two, at most 16 tiles x
# segments, segments of at least 4096), each tile summing its segment in k
# order from zero into a partial, the partials then added in segment order
# from zero -- those exact bits at 1, 2 and 7 threads. 8x65536 @ 65536x8:
# one tile, 16 segments; 5x8192 @ 8192x13 (a short block, masked
# columns): 2; f64 12x16384 @ 16384x20 (four tiles: a block and the rows
# left over, 16 columns and 4 masked): 4; a batch of 3 of 8x16384 @
# 16384x8: 4. Enough tiles but rhs panels over 1 MB with a result of at
# most 256 KB split too, into panels of 1 MB: 64x16384 @ 16384x64 (16
# tiles, panels of 2 MB): 2.
for sa, sb, dtype, segments in (((8, 65536), (65536, 8), torch.float32, 16),
                                ((64, 16384), (16384, 64), torch.float32, 2),
                                ((5, 8192), (8192, 13), torch.float32, 2),
                                ((12, 16384), (16384, 20), torch.float64, 4),
                                ((3, 8, 16384), (16384, 8), torch.float32, 4)):
    a = torch.randn(sa, dtype=dtype) * torch.pow(
        10.0, torch.randint(-2, 3, sa).to(dtype))
    b = torch.randn(sb, dtype=dtype)
    a.view(-1)[5] = float("nan")
    length = sb[0] // segments
    want = torch.zeros(torch.matmul(a, b).shape, dtype=dtype)
    for s in range(segments):
        part = torch.zeros_like(want)
        for k in range(s * length, (s + 1) * length):
            part = part + a[..., :, k:k + 1] * b[k:k + 1, :]
        want = want + part
    # The segments are counted in AVX-512's tiles on every target: the
    # same bits with AVX2's and SSE's.
    for threads, bits in ((1, None), (7, None), (2, 128), (2, 256),
                          (2, 512)):
        extra = [f"--threads={threads}"]
        if bits:
            extra.append(f"--vector-bits={bits}")
        c.check(f"matmul {sa} @ {sb} {dtype}: k split in {segments} "
                f"segments, threads={threads}, vector bits "
                f"{bits or 'of the host'}",
                ir2("matmul", a, b, want), [a, b], want, rtol=0, atol=0,
                extra_args=extra)

# Thin matmuls -- a dot product, fewer matrix rows than a vector of sums
# holds (16 f32, 8 f64) times a vector, a vector (or one row) times a matrix
# of fewer columns, batched or not -- are sum(a * b) (kiln-decompose): the
# bits of that sum written out, fused or not, at 1, 2 and 7 threads (the
# lane order, split into segments for long lines), and PyTorch's answer in
# float64. Each case: operand shapes, dtype, the written-out body.
def thin(a, b, want, body):
    return (f"func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> {ttype(want)} {{\n"
            + body + f"  return %s : {ttype(want)}\n}}\n")


thin_cases = [
    ((100003,), (100003,), torch.float32,
     "  %p = kiln.mul %a, %b : {A}, {B}\n"
     "  %s = kiln.sum %p {{dims = array<i64: 0>}} : {A}\n"),
    ((5, 33), (33,), torch.float32,
     "  %p = kiln.mul %a, %b : {A}, {B}\n"
     "  %s = kiln.sum %p {{dims = array<i64: 1>}} : {A}\n"),
    ((3, 70001), (70001,), torch.float32,
     "  %p = kiln.mul %a, %b : {A}, {B}\n"
     "  %s = kiln.sum %p {{dims = array<i64: 1>}} : {A}\n"),
    ((2, 5, 20), (2, 20, 1), torch.float64,
     "  %r = kiln.reshape %b : {B} -> tensor<2x1x20xf64>\n"
     "  %p = kiln.mul %a, %r : {A}, tensor<2x1x20xf64>\n"
     "  %s = kiln.sum %p {{dims = array<i64: 2>, keepdim = true}} : {A}\n"),
    ((4099,), (4099, 4), torch.float32,
     "  %r = kiln.reshape %a : {A} -> tensor<4099x1xf32>\n"
     "  %p = kiln.mul %r, %b : tensor<4099x1xf32>, {B}\n"
     "  %s = kiln.sum %p {{dims = array<i64: 0>}} : {B}\n"),
    ((2, 1, 300), (2, 300, 3), torch.float32,
     "  %r = kiln.reshape %a : {A} -> tensor<2x300x1xf32>\n"
     "  %p = kiln.mul %r, %b : tensor<2x300x1xf32>, {B}\n"
     "  %s = kiln.sum %p {{dims = array<i64: 1>, keepdim = true}} : {B}\n"),
    ((50,), (3, 50, 1), torch.float32,
     "  %ra = kiln.reshape %a : {A} -> tensor<1x50xf32>\n"
     "  %rb = kiln.reshape %b : {B} -> tensor<3x1x50xf32>\n"
     "  %p = kiln.mul %ra, %rb : tensor<1x50xf32>, tensor<3x1x50xf32>\n"
     "  %s = kiln.sum %p {{dims = array<i64: 2>}} : tensor<3x1x50xf32>\n"),
    ((64, 1, 4096), (64, 4096, 1), torch.float32,
     "  %r = kiln.reshape %b : {B} -> tensor<64x1x4096xf32>\n"
     "  %p = kiln.mul %a, %r : {A}, tensor<64x1x4096xf32>\n"
     "  %s = kiln.sum %p {{dims = array<i64: 2>, keepdim = true}} : {A}\n"),
    ((1000,), (1000,), torch.int64,
     "  %p = kiln.mul %a, %b : {A}, {B}\n"
     "  %s = kiln.sum %p {{dims = array<i64: 0>}} : {A}\n"),
]
for sa, sb, dtype, body in thin_cases:
    if dtype == torch.int64:
        a = torch.randint(-1000, 1000, sa)
        b = torch.randint(-1000, 1000, sb)
    else:
        a = torch.randn(sa, dtype=dtype) * torch.pow(
            10.0, torch.randint(-2, 3, sa).to(dtype))
        b = torch.randn(sb, dtype=dtype)
    if len(sa) == 2 and dtype != torch.int64:
        a[1, 2] = float("nan")
        a[0, 3] = float("inf")
    want = torch.matmul(a, b)
    label = f"thin matmul {sa} @ {sb} {dtype}"
    written = thin(a, b, want, body.format(A=ttype(a), B=ttype(b),
                                           R=ttype(want)))
    c.cases += 1
    code, ref, err = c.run(written, [a, b], ["--no-fuse"])
    if code != 0:
        c.fail(f"{label}: sum(a * b) written out", err)
        continue
    for threads in (1, 2, 7):
        c.check(f"{label}: the bits of sum(a * b), threads={threads}",
                ir2("matmul", a, b, want), [a, b], ref, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])
    exact = torch.matmul(a.double(), b.double())
    # Within a few roundings of the sum of the products' magnitudes
    # (cancellation leaves small results with their terms' error).
    scale = torch.matmul(a.double().abs(), b.double().abs())
    scale = float(scale[torch.isfinite(scale)].max())
    c.check(f"{label}: against PyTorch (float64)", ir2("matmul", a, b, want),
            [a, b], exact.to(dtype), rtol=0,
            atol=0 if dtype == torch.int64 else 1e-6 * scale)

# Creation ops (the argument is unused except for *_like).
x = torch.randn(2, 3)
ir = f"""func.func @f(%x: {ttype(x)}) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<4xi64>, tensor<3xf32>, tensor<5xf64>, tensor<4xi64>, tensor<2xi1>) {{
  %z = kiln.zeros_like %x : tensor<2x3xf32>
  %o = kiln.ones_like %x : tensor<2x3xf32>
  %f = kiln.full 7.0 : tensor<4xi64>
  %c = kiln.constant dense<[1.5, -2.0, 3.25]> : tensor<3xf32>
  %r = kiln.arange {{start = 0.5 : f64, step = 0.25 : f64}} : tensor<5xf64>
  %ri = kiln.arange {{start = 10.0 : f64, step = -3.0 : f64}} : tensor<4xi64>
  %b = kiln.full 1.0 : tensor<2xi1>
  return %z, %o, %f, %c, %r, %ri, %b : tensor<2x3xf32>, tensor<2x3xf32>, tensor<4xi64>, tensor<3xf32>, tensor<5xf64>, tensor<4xi64>, tensor<2xi1>
}}
"""
c.check("creation", ir, [x], [torch.zeros(2, 3), torch.ones(2, 3), torch.full((4,), 7),
                               torch.tensor([1.5, -2.0, 3.25]),
                               torch.arange(0.5, 1.75, 0.25, dtype=torch.float64),
                               torch.arange(10, -2, -3), torch.ones(2, dtype=torch.bool)])
ir = """func.func @f(%x: tensor<3xf32>) -> tensor<7xf32> {
  %r = kiln.arange {start = -1.0 : f64, step = 0.1 : f64} : tensor<7xf32>
  return %r : tensor<7xf32>
}
"""
c.check("arange f32 fractional step", ir, [torch.zeros(3)], torch.arange(-1.0, -0.35, 0.1))

# Shape ops.
y = torch.randn(2, 3, 4)
ir = f"""func.func @f(%y: {ttype(y)}) -> (tensor<6x4xf32>, tensor<4x2x3xf32>, tensor<24xf32>, tensor<3x2x4xf32>) {{
  %a = kiln.reshape %y : {ttype(y)} -> tensor<6x4xf32>
  %p = kiln.permute %y [2, 0, 1] : {ttype(y)}
  %f = kiln.reshape %p : tensor<4x2x3xf32> -> tensor<24xf32>
  %t = kiln.permute %y [-2, 0, -1] : {ttype(y)}
  return %a, %p, %f, %t : tensor<6x4xf32>, tensor<4x2x3xf32>, tensor<24xf32>, tensor<3x2x4xf32>
}}
"""
c.check("reshape/permute", ir, [y], [y.reshape(6, 4), y.permute(2, 0, 1).contiguous(),
                                      y.permute(2, 0, 1).reshape(24),
                                      y.permute(1, 0, 2).contiguous()])
# Transposes whose inner loop steps a page or more through the input are
# tiled into 16x16 squares (kiln-tile-transposes): partial squares at the
# edges (300, 1030), f64 and i64, a 3-D permute, a transposed operand of an
# elementwise op, at 1, 2 and 7 threads. Swapped dims that are multiples of
# a 512-bit vector's lanes (16 f32, 8 f64/i64) take register tiles: 2-D,
# batched, reversed 3-D, a 4-D permute whose swapped dims are not adjacent;
# a permute keeping its last 32 floats is tiled in chunks.
def permute_ir(x, dims, want):
    return (f"func.func @f(%x: {ttype(x)}) -> {ttype(want)} {{\n"
            f"  %p = kiln.permute %x [{', '.join(map(str, dims))}] : {ttype(x)}\n"
            f"  return %p : {ttype(want)}\n}}\n")


for label, x, dims in (("f32 300x1030", torch.randn(300, 1030), (1, 0)),
                       ("f64 1030x300", torch.randn(1030, 600, dtype=torch.float64), (1, 0)),
                       ("i64 40x2000", torch.randint(-9, 9, (40, 2000)), (1, 0)),
                       ("f32 3-D 3x40x1100 -> [2, 0, 1]", torch.randn(3, 40, 1100), (2, 0, 1)),
                       ("f32 registers 1024x512", torch.randn(1024, 512), (1, 0)),
                       ("f64 registers 256x1024", torch.randn(256, 1024, dtype=torch.float64), (1, 0)),
                       ("i64 registers 3x64x1024 -> [0, 2, 1]",
                        torch.randint(-2**62, 2**62, (3, 64, 1024)), (0, 2, 1)),
                       ("f32 registers 16x3x48 -> [2, 1, 0]", torch.randn(16, 3, 48), (2, 1, 0)),
                       ("f32 registers 2x64x3x32 -> [0, 3, 2, 1]", torch.randn(2, 64, 3, 32), (0, 3, 2, 1)),
                       ("f32 chunks 4x64x64x32 -> [0, 2, 1, 3]", torch.randn(4, 64, 64, 32), (0, 2, 1, 3))):
    want = x.permute(*dims).contiguous()
    for threads in (1, 2, 7):
        c.check(f"tiled transpose {label} at {threads} thread(s)",
                permute_ir(x, dims, want), [x], want, rtol=0, atol=0,
                extra_args=[f"--threads={threads}"])
a, b = torch.randn(1030, 300), torch.randn(300, 1030)
ir = f"""func.func @f(%a: {ttype(a)}, %b: {ttype(b)}) -> {ttype(b)} {{
  %t = kiln.permute %a [1, 0] : {ttype(a)}
  %y = kiln.mul %t, %b : {ttype(b)}, {ttype(b)}
  return %y : {ttype(b)}
}}
"""
c.check("transposed operand of mul (tiled)", ir, [a, b], a.t() * b, rtol=0,
        atol=0)

s = torch.tensor(4.0)
ir = """func.func @f(%s: tensor<f32>) -> (tensor<1x1xf32>, tensor<f32>) {
  %a = kiln.reshape %s : tensor<f32> -> tensor<1x1xf32>
  %b = kiln.reshape %a : tensor<1x1xf32> -> tensor<f32>
  return %a, %b : tensor<1x1xf32>, tensor<f32>
}
"""
c.check("reshape rank-0", ir, [s], [s.reshape(1, 1), s])
# Returning an argument unchanged and the same value twice.
ir = """func.func @f(%s: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
  return %s, %s : tensor<3xf32>, tensor<3xf32>
}
"""
v = torch.randn(3)
c.check("identity results", ir, [v], [v, v])

c.finish()
