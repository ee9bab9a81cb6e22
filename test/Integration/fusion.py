# Fused and unfused code give the same bits: every graph runs through
# kiln-run with kiln-fuse-elementwise (the default) and with --no-fuse, at
# 1 and 2 threads, and the results must be bitwise identical -- NaNs at the
# same positions, a NaN's sign and payload not compared (kiln_testing's
# same_bits says why); between thread counts, all bits. They are also
# compared with PyTorch. Covers elementwise chains
# (broadcasting, mixed types, NaN/inf), producers fused into reductions,
# softmax/log_softmax, gather/index_select, epilogues, losses (decomposed
# and fused), a value recomputed in two kernels, kernels merged, and a
# forward+backward graph
# from kiln-autodiff, plus 24 random graphs and 16 random permute round
# trips (fixed seed). Kernel counts
# from --stats show the fusion happened.
# RUN: %python %s
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from kiln_testing import (KILN_RUN, Checker, compare, func_ir, run_tool,
                          same_bits, ttype)

torch.manual_seed(7)
c = Checker("fusion")
# Under the sanitizers (make check-asan) `same` runs each graph once, fused
# at 2 threads, against PyTorch and its kernel count: the main suite
# compares fused with unfused bits and thread counts; there the point is
# the fused compile and run under ASan and UBSan, and the other two runs
# took two thirds of this file's 210 s.
SANITIZER_RUN = bool(os.environ.get("KILN_SANITIZER_RUN"))


def run(ir, inputs, *extra):
    """Runs `ir`; returns (outputs as numpy arrays, kernel count)."""
    case = c.case_dir()
    path = c.ir_file(ir)
    out = os.path.join(case, "out" + "".join(extra).replace("-", "_"))
    proc = run_tool([KILN_RUN, path, f"--output-dir={out}", "--stats"] +
                    c.save_inputs(inputs) + list(extra))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    stats = json.loads(proc.stderr.split("kiln-stats: ")[1])
    results, i = [], 0
    while os.path.exists(os.path.join(out, f"out{i}.npy")):
        results.append(np.load(os.path.join(out, f"out{i}.npy")))
        i += 1
    return results, stats["kernels"]


def same(label, ir, inputs, expected, fused_kernels, rtol=None, atol=None,
         entry=None, vector_bits=None):
    """Fused == unfused bitwise at 1 and 2 threads; == PyTorch within
    tolerance; the fused code has `fused_kernels` kernels (with
    `vector_bits`, the CPU register width, where a count depends on it)."""
    c.cases += 1
    extra = [f"--entry={entry}"] if entry else []
    if vector_bits:
        extra.append(f"--vector-bits={vector_bits}")
    try:
        if SANITIZER_RUN:
            fused, kernels = run(ir, inputs, "--threads=2", *extra)
        else:
            fused, kernels = run(ir, inputs, "--threads=1", *extra)
            fused2, _ = run(ir, inputs, "--threads=2", *extra)
            plain, plain_kernels = run(ir, inputs, "--threads=1",
                                       "--no-fuse", *extra)
    except RuntimeError as error:
        return c.fail(label, str(error))
    if not SANITIZER_RUN:
        for i, (a, b, d) in enumerate(zip(fused, plain, fused2)):
            if a.tobytes() != d.tobytes():
                return c.fail(label, f"result #{i}: bits differ between 1 "
                              f"and 2 threads:\n  1: {a}\n  2: {d}")
            if not same_bits(a, b):
                return c.fail(label, f"result #{i}: fused and unfused bits "
                              f"differ:\n  fused:   {a}\n  unfused: {b}")
    if kernels != fused_kernels:
        unfused = "" if SANITIZER_RUN else f" ({plain_kernels} unfused)"
        return c.fail(label, f"{kernels} kernels fused{unfused}, expected "
                      f"{fused_kernels}")
    if isinstance(expected, torch.Tensor):
        expected = [expected]
    for i, (got, want) in enumerate(zip(fused, expected)):
        problem = compare(torch.from_numpy(got), want, rtol, atol)
        if problem:
            return c.fail(label, f"result #{i} vs PyTorch: {problem}")
    return True


def special(*shape):
    """Random values with NaN, +-inf, +-0 and halves mixed in."""
    x = torch.randn(*shape) * 3
    flat = x.view(-1)
    n = flat.numel()
    for i, v in enumerate([float("nan"), float("inf"), -float("inf"), 0.0,
                           -0.0, 0.5, -1.5, 1.0, -1.0]):
        if i * 7 < n:
            flat[i * 7] = v
    return x


x = special(64, 1000)
chain1 = func_ir([x], [
    "%z = kiln.constant dense<0.0> : tensor<f32>",
    "%two = kiln.constant dense<2.0> : tensor<f32>",
    "%half = kiln.constant dense<0.5> : tensor<f32>",
    "%one = kiln.constant dense<1.0> : tensor<f32>",
    "%m = kiln.gt %a0, %z : {T0}, tensor<f32>",
    "%c = kiln.clamp %a0 {min = -1.0 : f64, max = 1.0 : f64} : {T0}",
    "%p = kiln.pow %c, %two : {T0}, tensor<f32>",
    "%h = kiln.mul %a0, %half : {T0}, tensor<f32>",
    "%w = kiln.where %m, %p, %h : tensor<64x1000xi1>, {T0}, {T0}",
    "%r0 = kiln.add %w, %one : {T0}, tensor<f32>"], [x])
same("where/clamp/pow chain", chain1, [x],
     torch.where(x > 0, torch.clamp(x, -1, 1) ** 2, x * 0.5) + 1, 1)

chain2 = func_ir([x], [
    "%three = kiln.constant dense<3.0> : tensor<f32>",
    "%k = kiln.constant dense<0.1> : tensor<f32>",
    "%p = kiln.pow %a0, %three : {T0}, tensor<f32>",
    "%m = kiln.mul %p, %k : {T0}, tensor<f32>",
    "%a = kiln.abs %a0 : {T0}",
    "%s = kiln.sqrt %a : {T0}",
    "%t = kiln.add %m, %s : {T0}, {T0}",
    "%r0 = kiln.clamp %t {min = 0.0 : f64, max = 2.0 : f64} : {T0}"], [x])
same("pow/sqrt/clamp chain", chain2, [x],
     torch.clamp(x.pow(3) * 0.1 + torch.sqrt(x.abs()), 0, 2), 1)

b, col = torch.randn(1000), torch.randn(64, 1)
same("broadcast chain", func_ir([x, b, col], [
    "%s = kiln.add %a0, %a1 : {T0}, {T1}",
    "%m = kiln.mul %s, %a2 : {T0}, {T2}",
    "%r0 = kiln.tanh %m : {T0}"], [x]), [x, b, col], torch.tanh((x + b) * col),
    1)

y = torch.randn(64, 1000)
same("mixed types", func_ir([x, y], [
    "%m = kiln.lt %a0, %a1 : {T0}, {T1}",
    "%w = kiln.where %m, %a0, %a1 : tensor<64x1000xi1>, {T0}, {T1}",
    "%d = kiln.cast %w : {T0} to tensor<64x1000xf64>",
    "%r0 = kiln.exp %d : tensor<64x1000xf64>",
    "%r1 = kiln.cast %m : tensor<64x1000xi1> to tensor<64x1000xi64>"],
    [x.double(), torch.zeros(64, 1000, dtype=torch.int64)]), [x, y],
    [torch.exp(torch.where(x < y, x, y).double()), (x < y).long()],
    # the where/exp chain computes the i1 mask and yields it (recomputing it
    # for the cast would read x and y: 8 bytes instead of 1), then the cast's
    # loop, of the same shape, joins it: one kernel, the mask never stored
    1)

# A value of a chain that later kernels read too is that chain's second
# result: exp(y) is computed once, stored by the add's loop and read by the
# matmul; the negation and the subtraction each recompute it from y, and
# their loops become one (both read y). The matmul reads exp(y) between the
# add's loop and theirs, so those stay apart: 3 kernels with AVX-512's
# register tiles (64 rows: 8 blocks of 8; AVX2's 6-row tiles leave 4 rows,
# a loop of their own).
w8 = torch.randn(1000, 8)
same("a chain's value stored as its second result", func_ir([y, w8], [
    "%one = kiln.constant dense<1.0> : tensor<f32>",
    "%e = kiln.exp %a0 : {T0}",
    "%r0 = kiln.add %e, %one : {T0}, tensor<f32>",
    "%r1 = kiln.matmul %e, %a1 : {T0}, {T1}",
    "%r2 = kiln.neg %e : {T0}",
    "%r3 = kiln.sub %e, %a0 : {T0}, {T0}"],
    [y, torch.zeros(64, 8), y, y]), [y, w8],
    [y.exp() + 1, y.exp() @ w8, -y.exp(), y.exp() - y], 3, rtol=1e-5,
    atol=1e-3, vector_bits=512)

# kiln.fused written by hand, in its three forms (test/Dialect/Kiln/ops.mlir):
# the lowering runs what the verifier accepts (3 kernels: the cast of the
# mask joins the first loop).
a48, b8 = torch.randn(4, 8), torch.randn(8)
same("kiln.fused written by hand", func_ir([a48, b8], """
%e:2 = kiln.fused(%a0, %a1) : ({T0}, {T1}) -> ({T0}, tensor<4x8xi1>) {
^bb0(%a: {T0}, %b: {T1}):
  %m = kiln.gt %a, %b : {T0}, {T1}
  %w = kiln.where %m, %a, %b : tensor<4x8xi1>, {T0}, {T1}
  kiln.yield %w, %m : {T0}, tensor<4x8xi1>
}
%r0 = kiln.cast %e#1 : tensor<4x8xi1> to tensor<4x8xi64>
%r1 = kiln.fused(%e#0) : ({T0}) -> tensor<4xf32> {
^bb0(%a: {T0}):
  %two = kiln.constant dense<2.0> : tensor<f32>
  %p = kiln.pow %a, %two : {T0}, tensor<f32>
  %s = kiln.sum %p {dims = array<i64: 1>} : {T0}
  %q = kiln.sqrt %s : tensor<4xf32>
  kiln.yield %q : tensor<4xf32>
}
%r2 = kiln.fused(%a0) : ({T0}) -> {T0} {
^bb0(%a: {T0}):
  %m = kiln.amax %a {dims = array<i64: 1>, keepdim = true} : {T0}
  %d = kiln.sub %a, %m : {T0}, tensor<4x1xf32>
  %x = kiln.softmax %d {dim = 1 : i64} : {T0}
  %y = kiln.mul %x, %d : {T0}, {T0}
  kiln.yield %y : {T0}
}""", ["tensor<4x8xi64>", torch.zeros(4), a48]), [a48, b8],
    [(a48 > b8).long(), torch.where(a48 > b8, a48, b8).pow(2).sum(1).sqrt(),
     torch.softmax(a48 - a48.amax(1, keepdim=True), 1) *
     (a48 - a48.amax(1, keepdim=True))], 3, rtol=1e-5, atol=1e-6)

same("sum prologue and epilogue", func_ir([y], [
    "%sq = kiln.mul %a0, %a0 : {T0}, {T0}",
    "%s = kiln.sum %sq {dims = array<i64: 1>} : {T0}",
    "%r0 = kiln.sqrt %s : tensor<64xf32>"], [torch.zeros(64)]), [y],
    torch.sqrt((y * y).sum(1)), 1, rtol=1e-5)
same("amax of abs, keepdim, over dim 0", func_ir([x], [
    "%a = kiln.abs %a0 : {T0}",
    "%r0 = kiln.amax %a {dims = array<i64: 0>, keepdim = true} : {T0}"],
    [torch.zeros(1, 1000)]), [x], x.abs().amax(0, keepdim=True), 1)
small = torch.rand(64, 12) + 0.5
same("prod of a chain", func_ir([small], [
    "%e = kiln.exp %a0 : {T0}",
    "%r0 = kiln.prod %e {dims = array<i64: 1>} : {T0}"], [torch.zeros(64)]),
    [small], small.exp().prod(1), 1, rtol=1e-5)
same("mean and norm (decomposed, then fused)", func_ir([y], [
    "%r0 = kiln.mean %a0 {dims = array<i64: 1>} : {T0}",
    "%r1 = kiln.norm %a0 {dims = array<i64: 1>} : {T0}"],
    [torch.zeros(64), torch.zeros(64)]), [y],
    [y.mean(1), torch.norm(y, dim=1)], 2, rtol=1e-5)

# The sum of a negated -NaN: fused, LLVM folds `0 + -x` into `0 - x` and
# the NaN keeps its sign; unfused, it is negated first. Same positions.
negative_nan = torch.tensor([[1.0, -float("nan"), 2.0], [3.0, 4.0, 5.0]])
same("sum of a negated NaN", func_ir([negative_nan], [
    "%n = kiln.neg %a0 : {T0}",
    "%r0 = kiln.sum %n {dims = array<i64: 1>} : {T0}"], [torch.zeros(2)]),
    [negative_nan], (-negative_nan).sum(1), 1)
# The mean of no elements is NaN, the bits PyTorch's have, fused or not
# (a constant, not 0/0: folded that was +NaN, run -NaN).
empty = torch.zeros(3, 0)
empty_mean = func_ir([empty], [
    "%r0 = kiln.mean %a0 {dims = array<i64: 1>} : {T0}"], [torch.zeros(3)])
if same("mean of no elements", empty_mean, [empty], empty.mean(1), 0):
    c.cases += 1
    got, _ = run(empty_mean, [empty], "--no-fuse")
    if got[0].tobytes() != empty.mean(1).numpy().tobytes():
        c.fail("mean of no elements", f"bits {got[0].tobytes().hex()}, "
               f"PyTorch's {empty.mean(1).numpy().tobytes().hex()}")

# Math on that NaN constant: exp's exponent went through arith.fptosi, poison
# for NaN -- LLVM stored nothing unfused (old bytes) and fused, after the
# clamp, the clamp's lower bound.
e17 = torch.zeros(0, 17)
same("sigmoid and clamp of a mean of no elements", func_ir([e17], [
    "%m = kiln.mean %a0 {dims = array<i64: 0>, keepdim = true} : {T0}",
    "%s = kiln.sigmoid %m : tensor<1x17xf32>",
    "%r0 = kiln.clamp %s {min = -1.28 : f64, max = 0.89 : f64} : "
    "tensor<1x17xf32>",
    "%r1 = kiln.exp %m : tensor<1x17xf32>"],
    [torch.zeros(1, 17), torch.zeros(1, 17)]), [e17],
    [e17.mean(0, keepdim=True).sigmoid().clamp(-1.28, 0.89),
     e17.mean(0, keepdim=True).exp()], 2)

# where(x > 0, clamp(x, -1, 1), 0) as %w.
where_clamp = [
    "%z = kiln.constant dense<0.0> : tensor<f32>",
    "%m = kiln.gt %a0, %z : {T0}, tensor<f32>",
    "%c = kiln.clamp %a0 {min = -1.0 : f64, max = 1.0 : f64} : {T0}",
    "%w = kiln.where %m, %c, %z : tensor<64x1000xi1>, {T0}, tensor<f32>"]
for op, fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
    same(f"{op} of a where/clamp chain", func_ir([x], where_clamp + [
        f"%r0 = kiln.{op} %w {{dim = 1 : i64}} : {{T0}}"], [x]), [x],
        fn(torch.where(x > 0, torch.clamp(x, -1, 1), torch.zeros(())), 1),
        # one kernel: each row's three passes (max, sum, normalize) read
        # the chain while the row is in cache
        1, rtol=1e-5, atol=1e-6)
    # Over dim 0 (columns of 64 elements): written as its column
    # reductions and chain, one column group (blocks of 125 of the 1000
    # columns) evaluating the chain in each pass; unfused, the three
    # kernels of the softmax (a block of whole lines does not divide 1000,
    # so no packed tiles). The same bits.
    same(f"{op} over dim 0 of a where/clamp chain", func_ir([x], where_clamp + [
        f"%r0 = kiln.{op} %w {{dim = 0 : i64}} : {{T0}}"], [x]), [x],
        fn(torch.where(x > 0, torch.clamp(x, -1, 1), torch.zeros(())), 0),
        1, rtol=1e-5, atol=1e-6)
    # Few long rows, split into segments: the chain evaluated in both
    # passes over each segment and in the normalizing pass, the epilogue in
    # the last of the 3 kernels. Rows of 100003 split into 16 segments of
    # 6240 and 163 elements after them, which the rows' kernel reduces (the
    # chain evaluated there too).
    # (Its own generator: the later cases keep their inputs.)
    for n in (65536, 100003):
        long_rows = torch.randn(
            2, n, generator=torch.Generator().manual_seed(33)) * 3
        same(f"{op} of a where/clamp chain over few long rows of {n}, an "
             "epilogue",
             func_ir([long_rows],
                     [line.replace("64x1000", f"2x{n}")
                      for line in where_clamp] +
                     [f"%s = kiln.{op} %w {{dim = 1 : i64}} : {{T0}}",
                      "%three = kiln.constant dense<3.0> : tensor<f32>",
                      "%r0 = kiln.mul %s, %three : {T0}, tensor<f32>"],
                     [long_rows]), [long_rows],
             fn(torch.where(long_rows > 0, torch.clamp(long_rows, -1, 1),
                            torch.zeros(())), 1) * 3,
             3, rtol=1e-5, atol=1e-6)
    # With an epilogue of another element type (the exps cannot be kept in
    # the result's row): one kernel, the exp computed again in the last
    # pass.
    same(f"{op} with an i1 epilogue", func_ir([x], [
        f"%s = kiln.{op} %a0 {{dim = 1 : i64}} : {{T0}}",
        "%h = kiln.constant dense<-3.0> : tensor<f32>",
        "%r0 = kiln.gt %s, %h : {T0}, tensor<f32>"],
        [torch.zeros(64, 1000, dtype=torch.bool)]), [x],
        fn(x, 1) > -3.0, 1)

# Rows of 40000 (1250 steps of the 32 lanes: a block of 1024 steps, then one
# of 226) and of 40017 (the same, then a tail of 17) in cache: a softmax
# alone keeps its exps in its result's row as it sums them
# (keepExpsInRow); with an epilogue of another element type (a cast to
# f64) it sums them in a loop of its own (buildLaneLoops). The two must
# take the same blocks for the same bits.
for n in (40000, 40017):
    wide = torch.randn(8, n, generator=torch.Generator().manual_seed(34)) * 3
    same(f"softmax of rows of {n} cast to f64 (the lane order's blocks)",
         func_ir([wide], ["%s = kiln.softmax %a0 {dim = 1 : i64} : {T0}",
                          "%r0 = kiln.cast %s : {T0} to tensor<8x" + str(n) + "xf64>"],
                 [wide.double()]), [wide],
         F.softmax(wide, 1).double(), 1, rtol=1e-5, atol=1e-6)

# A rank-0 softmax and log_softmax (dim 0 and -1) of a fused chain (F.softmin
# of a number): the column groups' rewrite read the size of a dim the
# tensor does not have, and crashed, until the sixty-fifth session.
scalar = torch.tensor(1.5)
same("softmax and log_softmax of a rank-0 chain", func_ir(
    [scalar], ["%n = kiln.neg %a0 : {T0}",
               "%r0 = kiln.softmax %n {dim = 0 : i64} : {T0}",
               "%r1 = kiln.log_softmax %n {dim = -1 : i64} : {T0}"],
    [scalar, scalar]), [scalar],
    [F.softmin(scalar, 0), F.log_softmax(-scalar, -1)], 6)

# Row groups (CPU): reductions over the last dim broadcast back over the
# same rows run with the chain in one kernel, a row at a time; the same bits
# as the separate kernels, at 1 and 2 threads.
rows = special(256, 300)
same("row group: exp(x - amax(x))", func_ir([rows], [
    "%m = kiln.amax %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
    "%d = kiln.sub %a0, %m : {T0}, tensor<256x1xf32>",
    "%r0 = kiln.exp %d : {T0}"], [rows]), [rows],
    torch.exp(rows - rows.amax(1, keepdim=True)), 1, rtol=1e-5, atol=1e-6)
ln_in = torch.randn(256, 300) * 3 + 1
same("row group: a layer norm (two means)", func_ir([ln_in], [
    "%m = kiln.mean %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
    "%d = kiln.sub %a0, %m : {T0}, tensor<256x1xf32>",
    "%q = kiln.mul %d, %d : {T0}, {T0}",
    "%v = kiln.mean %q {dims = array<i64: 1>, keepdim = true} : {T0}",
    "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
    "%ve = kiln.add %v, %e : tensor<256x1xf32>, tensor<f32>",
    "%r = kiln.rsqrt %ve : tensor<256x1xf32>",
    "%r0 = kiln.mul %d, %r : {T0}, tensor<256x1xf32>"], [ln_in]), [ln_in],
    F.layer_norm(ln_in, (300,), eps=1e-5), 1, rtol=1e-4, atol=1e-5)
# A layer norm over few long rows, which its sums split (16 rows of 65536
# into 16 segments of 4096; 5 of 40000 into 8 of 5000, each with a tail of
# 8 past the last 32 lanes; 3 of 24576 into 4 of 6144; one of 8200 into 2
# of 4100, tails of 4): one kernel, its sums in the split's order.
for shape in [(16, 65536), (5, 40000), (3, 24576), (1, 8200)]:
    ln_long = torch.randn(*shape) * 3 + 1
    R = f"tensor<{shape[0]}x1xf32>"
    same(f"row group over rows the lowering splits: a layer norm of "
         f"{shape[0]}x{shape[1]}", func_ir([ln_long], [
             "%m = kiln.mean %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
             f"%d = kiln.sub %a0, %m : {{T0}}, {R}",
             "%q = kiln.mul %d, %d : {T0}, {T0}",
             "%v = kiln.mean %q {dims = array<i64: 1>, keepdim = true} : {T0}",
             "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
             f"%ve = kiln.add %v, %e : {R}, tensor<f32>",
             f"%r = kiln.rsqrt %ve : {R}",
             f"%r0 = kiln.mul %d, %r : {{T0}}, {R}"], [ln_long]), [ln_long],
         F.layer_norm(ln_long, (shape[1],), eps=1e-5), 1, rtol=1e-4,
         atol=1e-4)
sm_y = torch.softmax(torch.randn(256, 300), 1)
sm_g = torch.randn(256, 300)
same("row group: softmax's gradient y * (g - sum(g * y))", func_ir(
    [sm_y, sm_g], [
        "%p = kiln.mul %a1, %a0 : {T1}, {T0}",
        "%s = kiln.sum %p {dims = array<i64: 1>, keepdim = true} : {T0}",
        "%d = kiln.sub %a1, %s : {T1}, tensor<256x1xf32>",
        "%r0 = kiln.mul %a0, %d : {T0}, {T0}"], [sm_y]), [sm_y, sm_g],
    sm_y * (sm_g - (sm_g * sm_y).sum(1, keepdim=True)), 1, rtol=1e-5,
    atol=1e-6)
sm_x = torch.randn(256, 300) * 4
for op, fn, grad_ir, vjp in [
        ("softmax", F.softmax,
         ["%p = kiln.mul %a1, %y : {T1}, {T0}",
          "%s = kiln.sum %p {dims = array<i64: 1>, keepdim = true} : {T0}",
          "%d = kiln.sub %a1, %s : {T1}, tensor<256x1xf32>",
          "%r0 = kiln.mul %y, %d : {T0}, {T0}"],
         lambda y, g: y * (g - (g * y).sum(1, keepdim=True))),
        ("log_softmax", F.log_softmax,
         ["%s = kiln.sum %a1 {dims = array<i64: 1>, keepdim = true} : {T1}",
          "%e = kiln.exp %y : {T0}",
          "%m = kiln.mul %e, %s : {T0}, tensor<256x1xf32>",
          "%r0 = kiln.sub %a1, %m : {T1}, {T0}"],
         lambda y, g: g - torch.exp(y) * g.sum(1, keepdim=True))]:
    # The gradient with the softmax itself in the row group: its row
    # maximum and sum with the row's reductions, its elements where read.
    same(f"row group: {op}'s gradient from x, {op} inside", func_ir(
        [sm_x, sm_g],
        [f"%y = kiln.{op} %a0 {{dim = 1 : i64}} : {{T0}}"] + grad_ir, [sm_x]),
        [sm_x, sm_g], vjp(fn(sm_x, 1), sm_g), 1, rtol=1e-5, atol=1e-6)
counts = torch.randint(-5, 6, (3, 4, 700))
same("row group: i64 rows of a 3-D tensor, x * sum(x) - amin(x)", func_ir(
    [counts], [
        "%s = kiln.sum %a0 {dims = array<i64: 2>, keepdim = true} : {T0}",
        "%n = kiln.amin %a0 {dims = array<i64: -1>, keepdim = true} : {T0}",
        "%p = kiln.mul %a0, %s : {T0}, tensor<3x4x1xi64>",
        "%r0 = kiln.sub %p, %n : {T0}, tensor<3x4x1xi64>"], [counts]),
    [counts], counts * counts.sum(2, keepdim=True) -
    counts.amin(2, keepdim=True), 1)
f64_rows = torch.randn(100, 33, dtype=torch.float64)
same("row group: f64 x / prod(x)", func_ir([f64_rows], [
    "%p = kiln.prod %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
    "%r0 = kiln.div %a0, %p : {T0}, tensor<100x1xf64>"], [f64_rows]),
    [f64_rows], f64_rows / f64_rows.prod(1, keepdim=True), 1, rtol=1e-9)

# A chain whose terms hold two expansions of one math function (the two
# logs of a binary cross-entropy) reduced in the lane order: its steps are
# built from two 16-lane vectors (buildLaneBatch), the same scalar code.
bce_x, bce_y = special(96, 1000), (torch.rand(96, 1000) > 0.5).float()
bce_lines = [
    "%s = kiln.sigmoid %a0 : {T0}",
    "%l = kiln.log %s : {T0}",
    "%a = kiln.mul %a1, %l : {T0}, {T0}",
    "%o = kiln.constant dense<1.0> : tensor<f32>",
    "%ns = kiln.sub %o, %s : tensor<f32>, {T0}",
    "%nl = kiln.log %ns : {T0}",
    "%ny = kiln.sub %o, %a1 : tensor<f32>, {T0}",
    "%b = kiln.mul %ny, %nl : {T0}, {T0}",
    "%c = kiln.add %a, %b : {T0}, {T0}"]
bce_terms = (bce_y * torch.log(torch.sigmoid(bce_x)) +
             (1 - bce_y) * torch.log(1 - torch.sigmoid(bce_x)))
same("two logs per term, summed along rows", func_ir(
    [bce_x, bce_y], bce_lines + [
        "%r0 = kiln.sum %c {dims = array<i64: 1>} : {T0}"],
    ["tensor<96xf32>"]), [bce_x, bce_y], bce_terms.sum(1), 1, rtol=1e-4,
    atol=1e-4)
same("two logs per term, mean of all", func_ir(
    [bce_x, bce_y], bce_lines + ["%r0 = kiln.mean %c : {T0}"],
    ["tensor<f32>"]), [bce_x, bce_y], bce_terms.mean(), 2, rtol=1e-4,
    atol=1e-4)

# Row groups with per-row results: values of the rows' shape and per-row
# values (reductions, with keepdim or without, and values computed from
# them) stored by the kernel that reduces the rows -- the same bits as the
# separate kernels, NaNs, infinities and signed zeros included.


def exp_and_row_sum(label, t, kernels, **tolerance):
    """exp(t) and its sum over dim 1 (no keepdim), both returned, in
    `kernels` kernels."""
    same(f"per-row results: {label}", func_ir([t], [
        "%r0 = kiln.exp %a0 : {T0}",
        "%r1 = kiln.sum %r0 {dims = array<i64: 1>} : {T0}"],
        [t, t.sum(1)]), [t], [t.exp(), t.exp().sum(1)], kernels,
        **tolerance)


rows2 = special(256, 300)
exp_and_row_sum("exp(x) and its row sum", rows2, 1, rtol=1e-5, atol=1e-6)
same("per-row results: mean and variance", func_ir([ln_in], [
    "%r0 = kiln.mean %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
    "%d = kiln.sub %a0, %r0 : {T0}, tensor<256x1xf32>",
    "%q = kiln.mul %d, %d : {T0}, {T0}",
    "%r1 = kiln.mean %q {dims = array<i64: 1>, keepdim = true} : {T0}"],
    ["tensor<256x1xf32>", "tensor<256x1xf32>"]), [ln_in],
    [ln_in.mean(1, keepdim=True), ln_in.var(1, unbiased=False,
                                            keepdim=True)],
    1, rtol=1e-4, atol=1e-5)
same("per-row results: a layer norm with its mean and 1/deviation", func_ir(
    [ln_in], [
        "%r1 = kiln.mean %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
        "%d = kiln.sub %a0, %r1 : {T0}, tensor<256x1xf32>",
        "%q = kiln.mul %d, %d : {T0}, {T0}",
        "%v = kiln.mean %q {dims = array<i64: 1>, keepdim = true} : {T0}",
        "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
        "%ve = kiln.add %v, %e : tensor<256x1xf32>, tensor<f32>",
        "%r2 = kiln.rsqrt %ve : tensor<256x1xf32>",
        "%r0 = kiln.mul %d, %r2 : {T0}, tensor<256x1xf32>"],
    [ln_in, "tensor<256x1xf32>", "tensor<256x1xf32>"]), [ln_in],
    [F.layer_norm(ln_in, (300,), eps=1e-5), ln_in.mean(1, keepdim=True),
     torch.rsqrt(ln_in.var(1, unbiased=False, keepdim=True) + 1e-5)],
    1, rtol=1e-4, atol=1e-5)
same("per-row results: the shifted chain, its row maximum and sum", func_ir(
    [rows2], [
        "%r1 = kiln.amax %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
        "%d = kiln.sub %a0, %r1 : {T0}, tensor<256x1xf32>",
        "%r0 = kiln.exp %d : {T0}",
        "%r2 = kiln.sum %r0 {dims = array<i64: 1>, keepdim = true} : {T0}"],
    [rows2, "tensor<256x1xf32>", "tensor<256x1xf32>"]), [rows2],
    [torch.exp(rows2 - rows2.amax(1, keepdim=True)), rows2.amax(1, True),
     torch.exp(rows2 - rows2.amax(1, keepdim=True)).sum(1, keepdim=True)],
    1, rtol=1e-5, atol=1e-6)
same("per-row results: sum(softmax(x) * g) and the product", func_ir(
    [sm_x, sm_g], [
        "%y = kiln.softmax %a0 {dim = 1 : i64} : {T0}",
        "%r0 = kiln.mul %y, %a1 : {T0}, {T1}",
        "%r1 = kiln.sum %r0 {dims = array<i64: -1>} : {T0}"],
    [sm_x, "tensor<256xf32>"]), [sm_x, sm_g],
    [F.softmax(sm_x, 1) * sm_g, (F.softmax(sm_x, 1) * sm_g).sum(1)], 1,
    rtol=1e-5, atol=1e-6)
# Reductions of the same rows without keepdim combined per row: one row
# group (a cosine similarity; each row's range over its mean, a row's
# maximum, minimum and sum).
cos_x, cos_y = special(256, 300), torch.randn(256, 300)
same("per-row reductions: cosine similarity", func_ir([cos_x, cos_y], [
    "%xy = kiln.mul %a0, %a1 : {T0}, {T1}",
    "%d = kiln.sum %xy {dims = array<i64: 1>} : {T0}",
    "%nx = kiln.norm %a0 {p = 2.0 : f64, dims = array<i64: 1>} : {T0}",
    "%ny = kiln.norm %a1 {p = 2.0 : f64, dims = array<i64: 1>} : {T1}",
    "%n = kiln.mul %nx, %ny : tensor<256xf32>, tensor<256xf32>",
    "%r0 = kiln.div %d, %n : tensor<256xf32>, tensor<256xf32>"],
    ["tensor<256xf32>"]), [cos_x, cos_y],
    (cos_x * cos_y).sum(1) / (cos_x.norm(dim=1) * cos_y.norm(dim=1)), 1,
    rtol=1e-4, atol=1e-5)
same("per-row reductions: range over mean", func_ir([rows2], [
    "%hi = kiln.amax %a0 {dims = array<i64: 1>} : {T0}",
    "%lo = kiln.amin %a0 {dims = array<i64: 1>} : {T0}",
    "%m = kiln.mean %a0 {dims = array<i64: -1>} : {T0}",
    "%w = kiln.sub %hi, %lo : tensor<256xf32>, tensor<256xf32>",
    "%r0 = kiln.div %w, %m : tensor<256xf32>, tensor<256xf32>"],
    ["tensor<256xf32>"]), [rows2],
    (rows2.amax(1) - rows2.amin(1)) / rows2.mean(1), 1, rtol=1e-4, atol=1e-5)
vec = special(1000)
same("per-row results: one row, a rank-0 sum", func_ir([vec], [
    "%r0 = kiln.abs %a0 : {T0}",
    "%r1 = kiln.sum %r0 {dims = array<i64: 0>} : {T0}"],
    [vec, "tensor<f32>"]), [vec], [vec.abs(), vec.abs().sum()], 1,
    rtol=1e-5, atol=1e-6)
same("per-row results: i64 rows of a 3-D tensor and their minimum",
     func_ir([counts], [
         "%r0 = kiln.mul %a0, %a0 : {T0}, {T0}",
         "%r1 = kiln.amin %r0 {dims = array<i64: 2>} : {T0}"],
         [counts, "tensor<3x4xi64>"]), [counts],
     [counts * counts, (counts * counts).amin(2)], 1)
f64_near1 = 1 + 0.01 * torch.randn(100, 200, dtype=torch.float64)
same("per-row results: f64 x * 3 and prod over rows", func_ir([f64_near1], [
    "%c = kiln.constant dense<3.0> : tensor<f64>",
    "%r0 = kiln.mul %a0, %c : {T0}, tensor<f64>",
    "%r1 = kiln.prod %r0 {dims = array<i64: 1>, keepdim = true} : {T0}"],
    [f64_near1, "tensor<100x1xf64>"]), [f64_near1],
    [f64_near1 * 3, (f64_near1 * 3).prod(1, keepdim=True)], 1, rtol=1e-9)
# Rows under 1 KB: the sum's own kernel vectorizes them better than a row
# group would, so the exps are stored and the sum computes them again.
exp_and_row_sum("short rows, two kernels", f64_rows, 2, rtol=1e-9)
# Merged row groups: a layer norm's forward (keeping its statistics) and
# its gradient computed again from them, as an inlined VJP next to its
# forward, in one row group; and a sum without keepdim broadcast along the
# columns of the next kernel's rows, which stays a kernel of its own.
R1 = "tensor<256x1xf32>"
ln_grad = ln_in.detach().requires_grad_()
ln_out = F.layer_norm(ln_grad, (300,), eps=1e-5)
ln_out.backward(sm_g)
same("merged row groups: a layer norm and its gradient", func_ir(
    [ln_in, sm_g], [
        "%n = kiln.constant dense<300.0> : tensor<f32>",
        "%eps = kiln.constant dense<1.0e-5> : tensor<f32>",
        "%s = kiln.sum %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
        f"%m = kiln.div %s, %n : {R1}, tensor<f32>",
        f"%d = kiln.sub %a0, %m : {{T0}}, {R1}",
        "%q = kiln.mul %d, %d : {T0}, {T0}",
        "%qs = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : {T0}",
        f"%v = kiln.div %qs, %n : {R1}, tensor<f32>",
        f"%ve = kiln.add %v, %eps : {R1}, tensor<f32>",
        f"%r = kiln.rsqrt %ve : {R1}",
        f"%r0 = kiln.mul %d, %r : {{T0}}, {R1}",
        "%gs = kiln.sum %a1 {dims = array<i64: 1>, keepdim = true} : {T1}",
        f"%gm = kiln.div %gs, %n : {R1}, tensor<f32>",
        f"%y2 = kiln.mul %d, %r : {{T0}}, {R1}",
        "%gy = kiln.mul %a1, %y2 : {T1}, {T0}",
        "%gys = kiln.sum %gy {dims = array<i64: 1>, keepdim = true} : {T0}",
        f"%gym = kiln.div %gys, %n : {R1}, tensor<f32>",
        f"%a = kiln.sub %a1, %gm : {{T1}}, {R1}",
        f"%b = kiln.mul %y2, %gym : {{T0}}, {R1}",
        "%c = kiln.sub %a, %b : {T0}, {T0}",
        f"%r1 = kiln.mul %c, %r : {{T0}}, {R1}"], [ln_in, ln_in]),
    [ln_in, sm_g], [ln_out.detach(), ln_grad.grad], 1, rtol=1e-4, atol=1e-4)
# Row groups over several trailing dims, collapsed by kiln-fuse-elementwise
# into rows of as few dims as the values along them allow: an instance norm
# over H and W of [N, C, H, W] with a per-channel weight and a bias
# broadcast along W only (rows of [H, W], nothing collapsed); its forward
# and gradient merged into one row group; a group norm over the last three
# dims of [N, G, C/G, H, W], alone (rows of one dim), with a per-channel
# weight and bias (rows of [C/G, H*W]), and its gradient, whose sums read
# the weight at each element of the row (as one run of elements, the
# reduction kernels' order); per-row statistics returned with keepdim.
R4 = "tensor<4x8x1x1xf32>"
in_x = torch.randn(4, 8, 12, 20) * 2 + 0.5
in_w = torch.randn(8, 1, 1)
in_b = torch.randn(20)
in_g = torch.randn(4, 8, 12, 20)
in_norm = [
    "%n = kiln.constant dense<240.0> : tensor<f32>",
    "%eps = kiln.constant dense<1.0e-5> : tensor<f32>",
    "%s = kiln.sum %a0 {dims = array<i64: 2, 3>, keepdim = true} : {T0}",
    f"%m = kiln.div %s, %n : {R4}, tensor<f32>",
    f"%d = kiln.sub %a0, %m : {{T0}}, {R4}",
    "%q = kiln.mul %d, %d : {T0}, {T0}",
    "%qs = kiln.sum %q {dims = array<i64: -1, -2>, keepdim = true} : {T0}",
    f"%v = kiln.div %qs, %n : {R4}, tensor<f32>",
    f"%ve = kiln.add %v, %eps : {R4}, tensor<f32>",
    f"%r = kiln.rsqrt %ve : {R4}",
    f"%y = kiln.mul %d, %r : {{T0}}, {R4}"]
same("row group over H, W: an instance norm, weight [C,1,1], bias [W]",
     func_ir([in_x, in_w, in_b], in_norm + [
         "%yw = kiln.mul %y, %a1 : {T0}, {T1}",
         "%r0 = kiln.add %yw, %a2 : {T0}, {T2}"], [in_x]),
     [in_x, in_w, in_b],
     F.instance_norm(in_x, eps=1e-5) * in_w + in_b, 1, rtol=1e-4, atol=1e-5)
in_grad = in_x.detach().requires_grad_()
in_out = F.instance_norm(in_grad, eps=1e-5)
in_out.backward(in_g)
same("merged row groups over H, W: an instance norm and its gradient",
     func_ir([in_x, in_g], in_norm + [
         "%r0 = kiln.mul %d, %r : {T0}, " + R4,
         "%gs = kiln.sum %a1 {dims = array<i64: 2, 3>, keepdim = true} : {T1}",
         f"%gm = kiln.div %gs, %n : {R4}, tensor<f32>",
         "%gy = kiln.mul %a1, %y : {T1}, {T0}",
         "%gys = kiln.sum %gy {dims = array<i64: 2, 3>, keepdim = true} : {T0}",
         f"%gym = kiln.div %gys, %n : {R4}, tensor<f32>",
         f"%a = kiln.sub %a1, %gm : {{T1}}, {R4}",
         f"%b = kiln.mul %y, %gym : {{T0}}, {R4}",
         "%c = kiln.sub %a, %b : {T0}, {T0}",
         f"%r1 = kiln.mul %c, %r : {{T0}}, {R4}"], [in_x, in_x]),
     [in_x, in_g], [in_out.detach(), in_grad.grad], 1, rtol=1e-4, atol=1e-4)
gn_x = torch.randn(2, 4, 6, 10, 12) * 3 - 1
G3 = "tensor<2x4x1x1x1xf32>"
same("row group over three dims: a group norm", func_ir([gn_x], [
    "%m = kiln.mean %a0 {dims = array<i64: 2, 3, 4>, keepdim = true} : {T0}",
    f"%d = kiln.sub %a0, %m : {{T0}}, {G3}",
    "%q = kiln.mul %d, %d : {T0}, {T0}",
    "%v = kiln.mean %q {dims = array<i64: 4, 3, 2>, keepdim = true} : {T0}",
    "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
    f"%ve = kiln.add %v, %e : {G3}, tensor<f32>",
    f"%r = kiln.rsqrt %ve : {G3}",
    f"%r0 = kiln.mul %d, %r : {{T0}}, {G3}"], [gn_x]), [gn_x],
    F.group_norm(gn_x.reshape(2, 24, 10, 12), 4,
                 eps=1e-5).reshape(2, 4, 6, 10, 12), 1, rtol=1e-4, atol=1e-5)
gn_w = torch.randn(4, 6, 1, 1)
gn_b = torch.randn(4, 6, 1, 1)
gn_norm = [
    "%m = kiln.mean %a0 {dims = array<i64: 2, 3, 4>, keepdim = true} : {T0}",
    f"%d = kiln.sub %a0, %m : {{T0}}, {G3}",
    "%q = kiln.mul %d, %d : {T0}, {T0}",
    "%v = kiln.mean %q {dims = array<i64: 2, 3, 4>, keepdim = true} : {T0}",
    "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
    f"%ve = kiln.add %v, %e : {G3}, tensor<f32>",
    f"%r = kiln.rsqrt %ve : {G3}",
    f"%y = kiln.mul %d, %r : {{T0}}, {G3}"]
gn_ref = F.group_norm(gn_x.reshape(2, 24, 10, 12), 4, gn_w.reshape(24),
                      gn_b.reshape(24), eps=1e-5).reshape(2, 4, 6, 10, 12)
same("row group over [C/G, H*W]: a group norm, per-channel weight and bias",
     func_ir([gn_x, gn_w, gn_b], gn_norm + [
         "%yw = kiln.mul %y, %a1 : {T0}, {T1}",
         "%r0 = kiln.add %yw, %a2 : {T0}, {T2}"], [gn_x]),
     [gn_x, gn_w, gn_b], gn_ref, 1, rtol=1e-4, atol=1e-5)
gn_g = torch.randn(2, 4, 6, 10, 12)
gn_grad = gn_x.detach().reshape(2, 24, 10, 12).requires_grad_()
F.group_norm(gn_grad, 4, gn_w.reshape(24), eps=1e-5).backward(
    gn_g.reshape(2, 24, 10, 12))
same("row group over [C/G, H*W]: a group norm's gradient, weight in its sums",
     func_ir([gn_x, gn_w, gn_g], gn_norm + [
         "%gw = kiln.mul %a2, %a1 : {T2}, {T1}",
         "%gm = kiln.mean %gw {dims = array<i64: 2, 3, 4>, keepdim = true} "
         ": {T0}",
         "%gy = kiln.mul %gw, %y : {T0}, {T0}",
         "%gym = kiln.mean %gy {dims = array<i64: 2, 3, 4>, keepdim = true} "
         ": {T0}",
         f"%a = kiln.sub %gw, %gm : {{T0}}, {G3}",
         f"%b = kiln.mul %y, %gym : {{T0}}, {G3}",
         "%c = kiln.sub %a, %b : {T0}, {T0}",
         f"%r0 = kiln.mul %c, %r : {{T0}}, {G3}"], [gn_x]),
     [gn_x, gn_w, gn_g], gn_grad.grad.reshape(2, 4, 6, 10, 12), 1,
     rtol=1e-4, atol=1e-4)
# A group norm as PyTorch users write it -- x.reshape(N, G, -1)
# normalized, reshaped back, scaled and shifted per channel -- computed on
# the reshapes' common refinement [N, G, C/G, H, W] (refineRowGroupReshapes):
# one row group, the same bits as the separate kernels; at batch 1 too
# (unit dims), and a layer norm over a flattened [N, C*H*W] unflattened
# and scaled per channel.
def reshaped_norm_ir(x, w, b, groups):
    n, c, h, wd = x.shape
    k = c // groups * h * wd
    T = f"tensor<{n}x{groups}x{k}xf32>"
    S = f"tensor<{n}x{groups}x1xf32>"
    lines = [
        f"%xr = kiln.reshape %a0 : {{T0}} -> {T}",
        f"%m = kiln.mean %xr {{dims = array<i64: 2>, keepdim = true}} : {T}",
        f"%d = kiln.sub %xr, %m : {T}, {S}",
        f"%q = kiln.mul %d, %d : {T}, {T}",
        f"%v = kiln.mean %q {{dims = array<i64: 2>, keepdim = true}} : {T}",
        "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
        f"%ve = kiln.add %v, %e : {S}, tensor<f32>",
        f"%r = kiln.rsqrt %ve : {S}",
        f"%y = kiln.mul %d, %r : {T}, {S}",
        f"%yr = kiln.reshape %y : {T} -> {{T0}}",
        "%yw = kiln.mul %yr, %a1 : {T0}, {T1}"]
    args = [x, w]
    if b is not None:
        lines.append("%r0 = kiln.add %yw, %a2 : {T0}, {T2}")
        args.append(b)
    else:
        lines[-1] = lines[-1].replace("%yw =", "%r0 =")
    return func_ir(args, lines, [x]), args


for shape, groups, bias in [((2, 24, 10, 12), 4, True),
                            ((1, 32, 8, 8), 8, True),
                            ((4, 6, 8, 8), 1, False)]:
    gx = torch.randn(*shape) * 2 + 1
    gw = torch.randn(shape[1], 1, 1)
    gb = torch.randn(shape[1], 1, 1) if bias else None
    ir, args = reshaped_norm_ir(gx, gw, gb, groups)
    want = F.group_norm(gx, groups, gw.reshape(-1),
                        gb.reshape(-1) if bias else None, eps=1e-5)
    same(f"group norm through reshapes, {list(shape)}, {groups} group(s)",
         ir, args, want, 1, rtol=1e-4, atol=1e-5)
# A layer norm over the channels of [N, C, H, W] written channels last:
# permuted to [N, H, W, C], normalized over the last dim, scaled per
# channel and permuted back. The permutes cancel (cancelPermuteRoundTrips):
# the chain runs on [N, C, H, W], its reductions over C -- the same bits as
# the permuted ops unfused -- in one column group (formColumnGroups). Then with the permuted input also returned
# (the permute stays for it, a kernel, and the product of it another) and
# with an amax over (H, W) of a permute that
# swaps them (order-free: it cancels too).
def channels_last_norm_ir(x, w, b, also_permuted=False):
    n, c, h, wd = x.shape
    P = f"tensor<{n}x{h}x{wd}x{c}xf32>"
    S = f"tensor<{n}x{h}x{wd}x1xf32>"
    lines = [
        "%p = kiln.permute %a0 [0, 2, 3, 1] : {T0}",
        f"%m = kiln.mean %p {{dims = array<i64: 3>, keepdim = true}} : {P}",
        f"%d = kiln.sub %p, %m : {P}, {S}",
        f"%q = kiln.mul %d, %d : {P}, {P}",
        f"%v = kiln.mean %q {{dims = array<i64: 3>, keepdim = true}} : {P}",
        "%e = kiln.constant dense<1.0e-6> : tensor<f32>",
        f"%ve = kiln.add %v, %e : {S}, tensor<f32>",
        f"%s = kiln.rsqrt %ve : {S}",
        f"%y = kiln.mul %d, %s : {P}, {S}",
        f"%yw = kiln.mul %y, %a1 : {P}, {{T1}}",
        f"%yb = kiln.add %yw, %a2 : {P}, {{T2}}",
        f"%r0 = kiln.permute %yb [0, 3, 1, 2] : {P}"]
    outs = [x]
    if also_permuted:
        lines.append(f"%r1 = kiln.mul %p, %p : {P}, {P}")
        outs.append(P)
    return func_ir([x, w, b], lines, outs)


for shape in [(2, 24, 5, 7), (1, 64, 8, 8)]:
    px = torch.randn(*shape) * 2 + 1
    pw, pb = torch.randn(shape[1]), torch.randn(shape[1])
    want = F.layer_norm(px.permute(0, 2, 3, 1), (shape[1],), pw, pb,
                        eps=1e-6).permute(0, 3, 1, 2)
    same(f"channels-last layer norm of {list(shape)}, permutes cancelled",
         channels_last_norm_ir(px, pw, pb), [px, pw, pb], want, 1,
         rtol=1e-4, atol=1e-5)
    pp = px.permute(0, 2, 3, 1)
    same(f"channels-last layer norm of {list(shape)}, the permuted input "
         "returned too", channels_last_norm_ir(px, pw, pb, True),
         [px, pw, pb], [want, pp * pp], 3, rtol=1e-4, atol=1e-5)
# Column groups (formColumnGroups): keepdim reductions over a run of dims
# with kept dims after it, and the chain that broadcasts them back, are one
# kernel on [O, C, T] computed a block of columns at a time; each column is
# reduced in the column reduction kernel's order, so fused and unfused give
# the same bits. A layer norm over the channels written channels first, of
# shapes whose T is one block (35, 64: O of 1), four blocks of 80 (320), a
# block that holds no whole line (98 of 196); f64; more than 256 channels
# (300: the lanes' accumulators in memory, not in registers); reductions over two dims
# (C = A x B); sum, amax, amin and prod of special values (NaN, inf, -0);
# integer sums. Then what stays several kernels: a column count without a
# divisor of half a line or more (131, prime), and an operand that varies
# along part of the columns (no [O, C, T] view).
def channel_norm_ir(x, w, b, dims=(1,)):
    shape = list(x.shape)
    for d in dims:
        shape[d] = 1
    ty = "f64" if x.dtype == torch.float64 else "f32"
    S = f"tensor<{'x'.join(map(str, shape))}x{ty}>"
    dl = ", ".join(map(str, dims))
    return func_ir([x, w, b], [
        f"%m = kiln.mean %a0 {{dims = array<i64: {dl}>, keepdim = true}} : {{T0}}",
        f"%d = kiln.sub %a0, %m : {{T0}}, {S}",
        "%q = kiln.mul %d, %d : {T0}, {T0}",
        f"%v = kiln.mean %q {{dims = array<i64: {dl}>, keepdim = true}} : {{T0}}",
        f"%e = kiln.constant dense<1.0e-6> : tensor<{ty}>",
        f"%ve = kiln.add %v, %e : {S}, tensor<{ty}>",
        f"%s = kiln.rsqrt %ve : {S}",
        f"%y = kiln.mul %d, %s : {{T0}}, {S}",
        "%yw = kiln.mul %y, %a1 : {T0}, {T1}",
        "%r0 = kiln.add %yw, %a2 : {T0}, {T2}"], [x])


def channel_norm_want(x, w, b, dims=(1,)):
    m = x.mean(dim=dims, keepdim=True)
    d = x - m
    v = (d * d).mean(dim=dims, keepdim=True)
    return d * torch.rsqrt(v + 1e-6) * w + b


for shape, dtype, kernels in [((2, 24, 5, 7), torch.float32, 1),
                              ((1, 64, 8, 8), torch.float32, 1),
                              ((3, 40, 16, 20), torch.float32, 1),
                              ((2, 16, 14, 14), torch.float32, 1),
                              ((2, 48, 4, 9), torch.float64, 1),
                              ((2, 300, 8, 8), torch.float32, 1),
                              ((2, 33, 131), torch.float32, 3)]:
    cx = (torch.randn(*shape) * 2 + 1).to(dtype)
    cw = torch.randn(shape[1], *[1] * (len(shape) - 2)).to(dtype)
    cb = torch.randn(shape[1], *[1] * (len(shape) - 2)).to(dtype)
    same(f"layer norm over the channels of {list(shape)} {dtype}: "
         f"{kernels} kernel(s)", channel_norm_ir(cx, cw, cb),
         [cx, cw, cb], channel_norm_want(cx, cw, cb), kernels,
         rtol=1e-4, atol=1e-5)
cx = torch.randn(2, 3, 4, 6, 10)
cw, cb = torch.randn(3, 4, 1, 1), torch.randn(6, 10)
same("layer norm over (1, 2) of [2, 3, 4, 6, 10]: a column group with C = 12",
     channel_norm_ir(cx, cw, cb, (1, 2)), [cx, cw, cb],
     channel_norm_want(cx, cw, cb, (1, 2)), 1, rtol=1e-4, atol=1e-5)
cb = torch.randn(1, 1, 6, 1)
same("a bias along H only (no [O, C, T] view): the ops before the bias "
     "are a column group, the bias another kernel",
     channel_norm_ir(cx, cw, cb, (1, 2)), [cx, cw, cb],
     channel_norm_want(cx, cw, cb, (1, 2)), 2, rtol=1e-4, atol=1e-5)
# A column group also stores values used after it, of the rows' shape or
# the columns' (a layer norm's mean and reciprocal deviation kept for its
# gradient; the centred input): one kernel, four results.
sx = torch.randn(2, 24, 8, 10) * 2 + 1
sw = torch.randn(24, 1, 1)
S1 = "tensor<2x1x8x10xf32>"
sm = sx.mean(1, keepdim=True)
sd = sx - sm
sr = torch.rsqrt((sd * sd).mean(1, keepdim=True) + 1e-6)
same("layer norm over the channels with its statistics and the centred "
     "input: a column group of four results",
     func_ir([sx, sw], [
         "%s = kiln.sum %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
         "%n = kiln.constant dense<24.0> : tensor<f32>",
         f"%r1 = kiln.div %s, %n : {S1}, tensor<f32>",
         f"%r3 = kiln.sub %a0, %r1 : {{T0}}, {S1}",
         "%q = kiln.mul %r3, %r3 : {T0}, {T0}",
         "%qs = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : {T0}",
         f"%v = kiln.div %qs, %n : {S1}, tensor<f32>",
         "%e = kiln.constant dense<1.0e-6> : tensor<f32>",
         f"%ve = kiln.add %v, %e : {S1}, tensor<f32>",
         f"%r2 = kiln.rsqrt %ve : {S1}",
         f"%y = kiln.mul %r3, %r2 : {{T0}}, {S1}",
         "%r0 = kiln.mul %y, %a1 : {T0}, {T1}"], [sx, S1, S1, sx]),
     [sx, sw], [sd * sr * sw, sm, sr, sd], 1, rtol=1e-4, atol=1e-5)


# The layer norm's gradients (kiln-autodiff's @f_vjp): the forward values
# (storing those the gradients read) and the input's gradient (its sums
# over C and their chain) are two column groups; the weight's and bias's
# gradients, sums over (N, H, W), kernels of their own: 4 in all (6 before
# column groups stored values used after them).
gx = torch.randn(2, 24, 8, 10) * 2 + 1
gw, gb = torch.randn(24, 1, 1), torch.randn(24, 1, 1)
gct = torch.randn(2, 24, 8, 10)
g_ir, error = c.autodiff(channel_norm_ir(gx, gw, gb))
g_in = [t.clone().requires_grad_() for t in (gx, gw, gb)]
g_want = torch.autograd.grad(channel_norm_want(*g_in), g_in, gct)
if g_ir is None:
    c.fail("layer norm over the channels, gradients", error)
else:
    same("layer norm over the channels, gradients (kiln-autodiff)", g_ir,
         [gx, gw, gb, gct], list(g_want), 4, rtol=1e-4, atol=1e-4,
         entry="f_vjp")

# The centred input read by two column groups: the later recomputes it
# from x and the mean (formColumnGroups' copies), the earlier yields its
# root and the mean; the sum over (N, H, W) between them a kernel of its
# own: 3 kernels, and the same bits as unfused.
rx = torch.randn(2, 24, 8, 10) * 2 + 1
R1 = "tensor<2x1x8x10xf32>"
rm = rx.sum(1, keepdim=True)
rd = rx - rm
same("a column group recomputing the centred input an earlier one reads",
     func_ir([rx], [
         "%m = kiln.sum %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
         f"%d = kiln.sub %a0, %m : {{T0}}, {R1}",
         "%q = kiln.mul %d, %d : {T0}, {T0}",
         "%v = kiln.sum %q {dims = array<i64: 1>, keepdim = true} : {T0}",
         f"%p = kiln.mul %d, %v : {{T0}}, {R1}",
         "%r1 = kiln.sum %p {dims = array<i64: 0, 2, 3>, keepdim = true}"
         " : {T0}",
         "%a = kiln.abs %d : {T0}",
         "%s = kiln.sum %a {dims = array<i64: 1>, keepdim = true} : {T0}",
         f"%r0 = kiln.div %d, %s : {{T0}}, {R1}"],
         [rx, torch.zeros(1, 24, 1, 1)]),
     [rx], [rd / rd.abs().sum(1, keepdim=True),
            (rd * (rd * rd).sum(1, keepdim=True)).sum((0, 2, 3),
                                                       keepdim=True)],
     3, rtol=1e-4, atol=1e-3)


def column_special_want(x):
    d = x - x.amax(1, keepdim=True)
    p = (x * 0.01 + 1).prod(1, keepdim=True)
    return (d + d.amin(1, keepdim=True)) * (x.sum(1, keepdim=True) * p)


cs = special(3, 37, 40)
CS = "tensor<3x1x40xf32>"
same("column group of sum, amax, amin and prod over C, special values",
     func_ir([cs], [
         "%s = kiln.sum %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
         "%hi = kiln.amax %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
         f"%d = kiln.sub %a0, %hi : {{T0}}, {CS}",
         "%lo = kiln.amin %d {dims = array<i64: 1>, keepdim = true} : {T0}",
         "%c = kiln.constant dense<0.01> : tensor<f32>",
         "%t = kiln.mul %a0, %c : {T0}, tensor<f32>",
         "%one = kiln.constant dense<1.0> : tensor<f32>",
         "%u = kiln.add %t, %one : {T0}, tensor<f32>",
         "%p = kiln.prod %u {dims = array<i64: 1>, keepdim = true} : {T0}",
         f"%sp = kiln.mul %s, %p : {CS}, {CS}",
         f"%e = kiln.add %d, %lo : {{T0}}, {CS}",
         f"%r0 = kiln.mul %e, %sp : {{T0}}, {CS}"], [cs]),
     [cs], column_special_want(cs), 1, rtol=1e-4, atol=1e-4)
ci = torch.randint(-1000, 1000, (2, 50, 24), dtype=torch.int64)
same("column group of an integer sum",
     func_ir([ci], [
         "%s = kiln.sum %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
         "%r0 = kiln.sub %a0, %s : {T0}, tensor<2x1x24xi64>"], [ci]),
     [ci], ci - ci.sum(1, keepdim=True), 1)

ax = special(3, 4, 6, 5)
same("amax over (H, W) of a permute swapping them, permuted back",
     func_ir([ax], [
         "%p = kiln.permute %a0 [0, 1, 3, 2] : {T0}",
         "%m = kiln.amax %p {dims = array<i64: 2, 3>, keepdim = true}"
         " : tensor<3x4x5x6xf32>",
         "%d = kiln.sub %p, %m : tensor<3x4x5x6xf32>, tensor<3x4x1x1xf32>",
         "%r0 = kiln.permute %d [0, 1, 3, 2] : tensor<3x4x5x6xf32>"], [ax]),
     [ax], ax - ax.amax((2, 3), keepdim=True), 1)
# Rows of three dims [A, B, C] (a unit dim among them too) with a weight
# varying along B only (nothing collapses: three loops per row, the sums
# over the row as one run), along A and B (rows of [A*B, C]), and along A
# and C (no two neighbours alike).
rx = torch.randn(2, 3, 1, 8, 40) * 2 + 1
R5 = "tensor<2x1x1x1x1xf32>"
for w_shape in [(8, 1), (3, 1, 8, 1), (3, 1, 1, 40)]:
    rw = torch.randn(*w_shape)
    same(f"row group over [A, 1, B, C], weight {list(w_shape)}", func_ir(
        [rx, rw], [
            "%m = kiln.mean %a0 {dims = array<i64: 1, 2, 3, 4>, keepdim = true}"
            " : {T0}",
            f"%d = kiln.sub %a0, %m : {{T0}}, {R5}",
            "%dw = kiln.mul %d, %a1 : {T0}, {T1}",
            "%s = kiln.sum %dw {dims = array<i64: 1, 2, 3, 4>, keepdim = true}"
            " : {T0}",
            f"%r0 = kiln.mul %dw, %s : {{T0}}, {R5}"], [rx]), [rx, rw],
        (rx - rx.mean((1, 2, 3, 4), keepdim=True)) * rw *
        ((rx - rx.mean((1, 2, 3, 4), keepdim=True)) * rw).sum(
            (1, 2, 3, 4), keepdim=True), 1, rtol=1e-4, atol=1e-3)
# A layer norm over C of [N, C, 1, 1] (after a global pooling): with
# keepdim the reductions also reduce the unit dims (canonicalization), a
# trailing run, so one row group over rows of C.
lc_x = torch.randn(64, 300, 1, 1) * 3 + 1
L4 = "tensor<64x1x1x1xf32>"
same("row group over C followed by unit dims: a layer norm", func_ir(
    [lc_x], [
        "%m = kiln.mean %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
        f"%d = kiln.sub %a0, %m : {{T0}}, {L4}",
        "%q = kiln.mul %d, %d : {T0}, {T0}",
        "%v = kiln.mean %q {dims = array<i64: 1>, keepdim = true} : {T0}",
        "%e = kiln.constant dense<1.0e-5> : tensor<f32>",
        f"%ve = kiln.add %v, %e : {L4}, tensor<f32>",
        f"%r = kiln.rsqrt %ve : {L4}",
        f"%r0 = kiln.mul %d, %r : {{T0}}, {L4}"], [lc_x]), [lc_x],
    F.layer_norm(lc_x.reshape(64, 300), (300,),
                 eps=1e-5).reshape(64, 300, 1, 1), 1, rtol=1e-4, atol=1e-5)
in_big = torch.randn(4, 8, 16, 32) * 2 + 0.5
same("per-row results over H, W: the normalized value, mean, max", func_ir(
    [in_big], [
        "%r1 = kiln.mean %a0 {dims = array<i64: 2, 3>, keepdim = true} : {T0}",
        f"%r0 = kiln.sub %a0, %r1 : {{T0}}, {R4}",
        "%r2 = kiln.amax %r0 {dims = array<i64: 2, 3>} : {T0}"],
    [in_big, R4, "tensor<4x8xf32>"]), [in_big],
    [in_big - in_big.mean((2, 3), keepdim=True), in_big.mean((2, 3),
                                                            keepdim=True),
     (in_big - in_big.mean((2, 3), keepdim=True)).amax((2, 3))],
    1, rtol=1e-5, atol=1e-5)
# A softmax returned with its gradient: one row group with two results of
# the rows' shape, the exps kept in the first one's row; and a softmax
# whose row group yields only a per-row value (nowhere to keep its exps).
sm_in = sm_x.detach().requires_grad_()
sm_out = F.softmax(sm_in, 1)
sm_out.backward(sm_g)
same("row group: a softmax and its gradient, two results", func_ir(
    [sm_x, sm_g], [
        "%r0 = kiln.softmax %a0 {dim = 1 : i64} : {T0}",
        "%p = kiln.mul %a1, %r0 : {T1}, {T0}",
        "%s = kiln.sum %p {dims = array<i64: 1>, keepdim = true} : {T0}",
        "%d = kiln.sub %a1, %s : {T1}, tensor<256x1xf32>",
        "%r1 = kiln.mul %r0, %d : {T0}, {T0}"], [sm_x, sm_x]),
    [sm_x, sm_g], [sm_out.detach(), sm_in.grad], 1, rtol=1e-5, atol=1e-6)
same("row group: sum(softmax(x) * g) alone", func_ir([sm_x, sm_g], [
    "%y = kiln.softmax %a0 {dim = 1 : i64} : {T0}",
    "%p = kiln.mul %y, %a1 : {T0}, {T1}",
    "%r0 = kiln.sum %p {dims = array<i64: 1>} : {T0}"],
    ["tensor<256xf32>"]), [sm_x, sm_g],
    (F.softmax(sm_x, 1) * sm_g).sum(1), 1, rtol=1e-5, atol=1e-6)
square = special(300, 300)
same("merged row groups: not when a row sum runs along the columns",
     func_ir([square], [
         "%r0 = kiln.exp %a0 : {T0}",
         "%s = kiln.sum %r0 {dims = array<i64: 1>} : {T0}",
         "%m = kiln.amax %a0 {dims = array<i64: 1>, keepdim = true} : {T0}",
         "%d = kiln.sub %a0, %m : {T0}, tensor<300x1xf32>",
         "%r1 = kiln.mul %d, %s : {T0}, tensor<300xf32>"], [square, square]),
     [square], [square.exp(), (square - square.amax(1, keepdim=True)) *
                square.exp().sum(1)], 2, rtol=1e-5, atol=1e-6)
# Few long rows, which the sum splits into segments reduced in parallel
# (2x40000: 8 segments of 4992 elements, whole 64-byte lines, and the 64
# after them; planReductionSplit of ReductionPlan.h): the row group
# reduces each row in the split's order -- each segment in the lane
# order, then the partials, then the rest's partial -- the same bits. Rows
# over 256 KB form no row group: the exps are stored, and the split sum
# (three kernels: the segments', the rest's, then their merge) computes
# them again.
exp_and_row_sum("few long rows, split by the sum, one kernel",
                special(2, 40000), 1, rtol=1e-4, atol=1e-5)
exp_and_row_sum("rows too long, four kernels", special(2, 70000), 4,
                rtol=1e-4, atol=1e-5)
# Long rows of odd length split too: 3x8193 into 2 segments of 4096 and
# the 1 element after them, 3x40003 into 8 of 4992 and the 67 after them
# (two steps of the lanes and a tail); the row group follows the same
# order, one kernel.
for n in (8193, 40003):
    exp_and_row_sum(f"odd rows of {n}, one kernel", special(3, n), 1,
                    rtol=1e-4, atol=1e-5)

idx = torch.randint(0, 1000, (64, 50))
same("gather of exp, negated", func_ir([y, idx], [
    "%e = kiln.exp %a0 : {T0}",
    "%g = kiln.gather %e, %a1 {dim = 1 : i64} : {T0}, {T1}",
    "%r0 = kiln.neg %g : tensor<64x50xf32>"], [torch.zeros(64, 50)]),
    [y, idx], -torch.gather(y.exp(), 1, idx),
    # the gather, checking its indices row by row as it goes, and the
    # minimum of the rows' first bad positions
    2)
sel = torch.tensor([3, 999, 3, 0])
same("index_select of a chain", func_ir([y, sel], [
    "%e = kiln.abs %a0 : {T0}",
    "%r0 = kiln.index_select %e, %a1 {dim = 1 : i64} : {T0}, {T1}"],
    [torch.zeros(64, 4)]), [y, sel], torch.index_select(y.abs(), 1, sel), 2)

# Indexed reads of stored tensors read in place by the kernel of the op
# reading them (an embedding bag: the selected rows are never stored), when
# they read runs of at least 32 contiguous elements; the kernel count
# includes the up-front index check (one kernel for a 1-D index).
table = special(1000, 64)
bag = torch.randint(0, 1000, (300,))
weights = torch.randn(300, 1)
same("embedding bag: sum of index_select", func_ir([table, bag], [
    "%s = kiln.index_select %a0, %a1 {dim = 0 : i64} : {T0}, {T1}",
    "%r0 = kiln.sum %s {dims = array<i64: 0>} : tensor<300x64xf32>"],
    [torch.zeros(64)]), [table, bag],
    torch.index_select(table, 0, bag).sum(0), 2, rtol=1e-5, atol=1e-5)
same("embedding bag with per-sample weights, mean", func_ir(
    [table, bag, weights], [
        "%s = kiln.index_select %a0, %a1 {dim = 0 : i64} : {T0}, {T1}",
        "%w = kiln.mul %s, %a2 : tensor<300x64xf32>, {T2}",
        "%r0 = kiln.mean %w {dims = array<i64: 0>} : tensor<300x64xf32>"],
    [torch.zeros(64)]), [table, bag, weights],
    (torch.index_select(table, 0, bag) * weights).mean(0), 2, rtol=1e-5,
    atol=1e-5)
same("softmax and amax of the rows of index_selects", func_ir(
    [table, bag, bag.flip(0)], [
        "%s = kiln.index_select %a0, %a1 {dim = 0 : i64} : {T0}, {T1}",
        "%r0 = kiln.softmax %s {dim = 1 : i64} : tensor<300x64xf32>",
        "%q = kiln.index_select %a0, %a2 {dim = 0 : i64} : {T0}, {T2}",
        "%r1 = kiln.amax %q {dims = array<i64: 1>} : tensor<300x64xf32>"],
    [torch.zeros(300, 64), torch.zeros(300)]), [table, bag, bag.flip(0)],
    [torch.softmax(torch.index_select(table, 0, bag), 1),
     torch.index_select(table, 0, bag.flip(0)).amax(1)],
    # each check, the softmax, the amax
    4)
# A reduction that keeps the last dim reads the rows of an index_select in
# place however short: each row's columns are contiguous (runs of 16, 3 and
# 4 elements; the last over dims 0 and 1 of a rank-3 selection).
narrow = special(1000, 16)
tiny = special(1000, 3)
slab = special(6, 50, 4)
pick3 = torch.tensor([49, 0, 7, 7, 30])
same("column sums of short index_select rows, in place", func_ir(
    [narrow, bag, tiny, slab, pick3], [
        "%s = kiln.index_select %a0, %a1 {dim = 0 : i64} : {T0}, {T1}",
        "%r0 = kiln.sum %s {dims = array<i64: 0>} : tensor<300x16xf32>",
        "%q = kiln.index_select %a2, %a1 {dim = 0 : i64} : {T2}, {T1}",
        "%r1 = kiln.amax %q {dims = array<i64: 0>} : tensor<300x3xf32>",
        "%t = kiln.index_select %a3, %a4 {dim = 1 : i64} : {T3}, {T4}",
        "%r2 = kiln.mean %t {dims = array<i64: 0, 1>} : tensor<6x5x4xf32>"],
    [torch.zeros(16), torch.zeros(3), torch.zeros(4)]),
    [narrow, bag, tiny, slab, pick3],
    [torch.index_select(narrow, 0, bag).sum(0),
     torch.index_select(tiny, 0, bag).amax(0),
     torch.index_select(slab, 1, pick3).mean((0, 1))],
    # the up-front check of each index_select's indices, the three
    # reductions (each stored selection would add a kernel)
    6, rtol=1e-5, atol=1e-5)
three = special(6, 50, 40)
pick = torch.tensor([49, 0, 7, 7, 30])
pick2 = torch.tensor([1, 2, 3, 48, 1])
same("prod and topk of index_selects (rank 3)", func_ir([three, pick, pick2], [
    "%s = kiln.index_select %a0, %a1 {dim = 1 : i64} : {T0}, {T1}",
    "%r0 = kiln.prod %s {dims = array<i64: 1>} : tensor<6x5x40xf32>",
    "%q = kiln.index_select %a0, %a2 {dim = 1 : i64} : {T0}, {T2}",
    "%r1, %j = kiln.topk %q {k = 3 : i64, dim = 2 : i64} : tensor<6x5x40xf32>"],
    [torch.zeros(6, 40), torch.zeros(6, 5, 3)]), [three, pick, pick2],
    [torch.index_select(three, 1, pick).prod(1),
     torch.topk(torch.index_select(three, 1, pick2), 3, 2).values],
    # each check, the prod, the topk's tile and kernel
    5)

# Views: a reshape keeping the last dim joins the chain of the reduction,
# softmax or selection reading it, which reads through it (bags of selected
# rows summed without storing the selection; the split of the rows into
# bags a multiply-add, a collapse of two dims a division).
bags = torch.randint(0, 1000, (300,))
same("bags of selected rows: sum, amax, mean through a reshape", func_ir(
    [table, bags, narrow, bags.flip(0)], [
        "%s = kiln.index_select %a0, %a1 {dim = 0 : i64} : {T0}, {T1}",
        "%v = kiln.reshape %s : tensor<300x64xf32> -> tensor<20x15x64xf32>",
        "%r0 = kiln.sum %v {dims = array<i64: 1>} : tensor<20x15x64xf32>",
        "%q = kiln.index_select %a2, %a1 {dim = 0 : i64} : {T2}, {T1}",
        "%w = kiln.reshape %q : tensor<300x16xf32> -> tensor<75x4x16xf32>",
        "%r1 = kiln.amax %w {dims = array<i64: 1>} : tensor<75x4x16xf32>",
        "%p = kiln.index_select %a0, %a3 {dim = 0 : i64} : {T0}, {T3}",
        "%u = kiln.reshape %p : tensor<300x64xf32> -> tensor<20x1x15x64xf32>",
        "%r2 = kiln.mean %u {dims = array<i64: 2>, keepdim = true} : "
        "tensor<20x1x15x64xf32>"],
    [torch.zeros(20, 64), torch.zeros(75, 16), torch.zeros(20, 1, 1, 64)]),
    [table, bags, narrow, bags.flip(0)],
    [torch.index_select(table, 0, bags).reshape(20, 15, 64).sum(1),
     torch.index_select(narrow, 0, bags).reshape(75, 4, 16).amax(1),
     torch.index_select(table, 0, bags.flip(0)).reshape(20, 1, 15, 64).mean(
         2, keepdim=True)],
    # the index checks (one per index_select), the three reductions (each
    # stored selection would add a kernel)
    6, rtol=1e-5, atol=1e-5)
# The selection read by two kernels is stored once; the view of it that a
# reduction reads stays a view of the stored tensor.
same("bags of a selection used twice: stored, then viewed", func_ir(
    [table, bags], [
        "%s = kiln.index_select %a0, %a1 {dim = 0 : i64} : {T0}, {T1}",
        "%v = kiln.reshape %s : tensor<300x64xf32> -> tensor<20x15x64xf32>",
        "%r0 = kiln.sum %v {dims = array<i64: 1>} : tensor<20x15x64xf32>",
        "%r1 = kiln.amax %s {dims = array<i64: 1>} : tensor<300x64xf32>"],
    [torch.zeros(20, 64), torch.zeros(300)]), [table, bags],
    [torch.index_select(table, 0, bags).reshape(20, 15, 64).sum(1),
     torch.index_select(table, 0, bags).amax(1)],
    # the selection (its index check and its copy), the sum, the amax
    4, rtol=1e-5, atol=1e-5)
same("a rank-3 selection collapsed into rows, summed over them", func_ir(
    [slab, pick3], [
        "%t = kiln.index_select %a0, %a1 {dim = 1 : i64} : {T0}, {T1}",
        "%v = kiln.reshape %t : tensor<6x5x4xf32> -> tensor<30x4xf32>",
        "%e = kiln.exp %v : tensor<30x4xf32>",
        "%r0 = kiln.sum %e {dims = array<i64: 0>} : tensor<30x4xf32>"],
    [torch.zeros(4)]), [slab, pick3],
    torch.index_select(slab, 1, pick3).reshape(30, 4).exp().sum(0), 2,
    rtol=1e-5, atol=1e-5)
grid = special(64, 50)
same("softmax and topk of chains through reshapes", func_ir([grid], [
    "%e = kiln.exp %a0 : {T0}",
    "%v = kiln.reshape %e : {T0} -> tensor<4x16x50xf32>",
    "%r0 = kiln.softmax %v {dim = 2 : i64} : tensor<4x16x50xf32>",
    "%n = kiln.neg %a0 : {T0}",
    "%m = kiln.abs %n : {T0}",
    "%w = kiln.reshape %m : {T0} -> tensor<8x8x50xf32>",
    "%r1, %j = kiln.topk %w {k = 3 : i64, dim = 1 : i64} : "
    "tensor<8x8x50xf32>"],
    [torch.zeros(4, 16, 50), torch.zeros(8, 3, 50)]), [grid],
    [torch.softmax(grid.exp().reshape(4, 16, 50), 2),
     torch.topk(grid.neg().abs().reshape(8, 8, 50), 3, 1).values],
    # the softmax, the topk's tile and kernel
    3, rtol=1e-5, atol=1e-6)
# A permute keeping the last dim is read through as well, of a stored
# tensor too (it would copy on its own): softmax over heads of [B, L, H, D]
# as [B, H, L, D], a log_softmax of a chain, a topk and a gather of them.
heads = special(2, 16, 3, 40)
hpick = torch.randint(0, 16, (2, 3, 4, 40))
same("softmax, log_softmax, topk and gather through permutes", func_ir(
    [heads, hpick], [
        "%p = kiln.permute %a0 [0, 2, 1, 3] : {T0}",
        "%r0 = kiln.softmax %p {dim = 3 : i64} : tensor<2x3x16x40xf32>",
        "%e = kiln.tanh %a0 : {T0}",
        "%q = kiln.permute %e [2, 0, 1, 3] : {T0}",
        "%r1 = kiln.log_softmax %q {dim = 3 : i64} : tensor<3x2x16x40xf32>",
        "%n = kiln.neg %a0 : {T0}",
        "%w = kiln.permute %n [1, 2, 0, 3] : {T0}",
        "%r2, %j = kiln.topk %w {k = 2 : i64, dim = 0 : i64} : "
        "tensor<16x3x2x40xf32>",
        "%b = kiln.abs %a0 : {T0}",
        "%m = kiln.permute %b [0, 2, 1, 3] : {T0}",
        "%r3 = kiln.gather %m, %a1 {dim = 2 : i64} : tensor<2x3x16x40xf32>, "
        "{T1}"],
    [torch.zeros(2, 3, 16, 40), torch.zeros(3, 2, 16, 40),
     torch.zeros(2, 3, 2, 40), torch.zeros(2, 3, 4, 40)]), [heads, hpick],
    [torch.softmax(heads.permute(0, 2, 1, 3), 3),
     torch.log_softmax(heads.tanh().permute(2, 0, 1, 3), 3),
     torch.topk(heads.neg().permute(1, 2, 0, 3), 2, 0).values,
     torch.gather(heads.abs().permute(0, 2, 1, 3), 2, hpick)],
    # the softmax and log_softmax (rows in cache: one kernel each), the
    # topk's tile and kernel, the gather's three (each permute would add a
    # transposing kernel)
    7, rtol=1e-5, atol=1e-6)# Elementwise loops read through views too: a chain with a bias along the
# last dim (which keeps canonicalization from moving the reshape onto the
# input) reshaped into rows and scaled, the tanh of heads permuted and
# added to a bias (the tanh also negated on its own).
chain_rows = special(12, 40)
row_bias = special(40)
bias = special(3, 16, 40)
same("elementwise loops through a reshape and a permute", func_ir(
    [chain_rows, heads, bias, row_bias], [
        "%e = kiln.exp %a0 : {T0}",
        "%f = kiln.add %e, %a3 : {T0}, {T3}",
        "%v = kiln.reshape %f : {T0} -> tensor<3x4x40xf32>",
        "%c = kiln.constant dense<0.5> : tensor<f32>",
        "%r0 = kiln.mul %v, %c : tensor<3x4x40xf32>, tensor<f32>",
        "%t = kiln.tanh %a1 : {T1}",
        "%p = kiln.permute %t [0, 2, 1, 3] : {T1}",
        "%r1 = kiln.add %p, %a2 : tensor<2x3x16x40xf32>, {T2}",
        "%r2 = kiln.neg %t : {T1}"],
    [torch.zeros(3, 4, 40), torch.zeros(2, 3, 16, 40),
     torch.zeros(2, 16, 3, 40)]), [chain_rows, heads, bias, row_bias],
    [(chain_rows.exp() + row_bias).reshape(3, 4, 40) * 0.5,
     heads.tanh().permute(0, 2, 1, 3) + bias,
     heads.tanh().neg()],
    # the scaled rows; the sum, whose loop computes the tanh again through
    # the permute (cheaper than storing it), and the negation with its tanh
    3, rtol=1e-5, atol=1e-6)
# A reshape that moves the last dim (a flattening) is no view, but moves
# above the elementwise ops it reshapes, down to the stored input (a free
# view): the chain then fuses with the reduction reading it, and with the
# elementwise ops after it.
same("chains flattened: reduced, continued", func_ir([chain_rows, grid], [
    "%e = kiln.exp %a0 : {T0}",
    "%c = kiln.constant dense<0.5> : tensor<f32>",
    "%m = kiln.mul %e, %c : {T0}, tensor<f32>",
    "%v = kiln.reshape %m : {T0} -> tensor<480xf32>",
    "%r0 = kiln.amax %v : tensor<480xf32>",
    "%t = kiln.tanh %a1 : {T1}",
    "%w = kiln.reshape %t : {T1} -> tensor<3200xf32>",
    "%r1 = kiln.neg %w : tensor<3200xf32>"],
    [torch.zeros(()), torch.zeros(3200)]), [chain_rows, grid],
    [(chain_rows.exp() * 0.5).reshape(480).amax(),
     grid.tanh().reshape(3200).neg()],
    # the amax of the chain, the elementwise loop (4 before: each chain was
    # stored for the reshape)
    2, rtol=1e-5, atol=1e-6)


def same_as_written(label, plain, written, inputs, expected, **tolerance):
    """A hand-written kiln.fused region (`written`) gives the bits of the
    graph (`plain`) run as kiln-fuse-elementwise leaves it; == PyTorch."""
    c.cases += 1
    try:
        got, _ = run(written, inputs, "--threads=2")
        want, _ = run(plain, inputs, "--threads=1")
    except RuntimeError as error:
        return c.fail(label, str(error))
    for i, (a, b) in enumerate(zip(got, want)):
        if not same_bits(a, b):
            return c.fail(label, f"result #{i}: bits differ from the graph's:"
                          f"\n  written: {a}\n  graph:   {b}")
        problem = compare(torch.from_numpy(a), expected[i],
                          tolerance.get("rtol"), tolerance.get("atol"))
        if problem:
            return c.fail(label, f"result #{i} vs PyTorch: {problem}")
    return True


# Reads of runs shorter than 32 (gather, take, index_select of short slices
# or along the innermost dim) stay in their own kernels, which prefetch
# their scattered reads; written in a kiln.fused region, the kernel reads
# them in place all the same.
cols = torch.randint(0, 1000, (64, 40))
flat = torch.randint(-64000, 64000, (20, 30))
short = torch.tensor([3, 999, 3, 0])
reads = [  # (indexed read, its consumer, the consumer's result)
    ("%s = kiln.gather %b0, %b1 {dim = 1 : i64} : {T0}, {T1}",
     "%r = kiln.sum %s {dims = array<i64: 1>} : tensor<64x40xf32>",
     torch.zeros(64)),
    ("%s = kiln.take %b0, %b2 : {T0}, {T2}",
     "%r = kiln.amax %s {dims = array<i64: 0>} : tensor<20x30xf32>",
     torch.zeros(30)),
    ("%s = kiln.index_select %b0, %b3 {dim = 1 : i64} : {T0}, {T3}",
     "%r = kiln.softmax %s {dim = 1 : i64} : tensor<64x4xf32>",
     torch.zeros(64, 4))]
inputs = [y, cols, flat, short]
plain = func_ir(inputs, [
    line.replace("%b", "%a").replace("%s", f"%s{k}").replace("%r", f"%r{k}")
    for k, (read, use, _) in enumerate(reads) for line in (read, use)],
    [out for _, _, out in reads])
operands = ", ".join(f"%a{i}" for i in range(len(inputs)))
types = ", ".join(ttype(t) for t in inputs)
block = ", ".join(f"%b{i}: {ttype(t)}" for i, t in enumerate(inputs))
written = func_ir(inputs, [
    line for k, (read, use, out) in enumerate(reads) for line in (
        f"%r{k} = kiln.fused({operands}) : ({types}) -> {ttype(out)} {{",
        f"^bb0({block}):", read, use, f"kiln.yield %r : {ttype(out)}",
        "}")], [out for _, _, out in reads])
same_as_written("gather, take and index_select written in place", plain,
                written, inputs,
                [torch.gather(y, 1, cols).sum(1), torch.take(y, flat).amax(0),
                 torch.softmax(torch.index_select(y, 1, short), 1)],
                rtol=1e-5, atol=1e-5)

# A row group over the last two dims written by hand: the lowering
# collapses it (FusedOp::collapseRowDims) like the ones fusion forms,
# expanding the [W] operand along H first; a per-row result without
# keepdim as well.
hw_x = torch.randn(2, 4, 6, 8) * 2
hw_b = torch.randn(8)
hw_lines = [
    "%s = kiln.sum %b0 {dims = array<i64: 3, 2>, keepdim = true} : {T0}",
    "%d = kiln.sub %b0, %s : {T0}, tensor<2x4x1x1xf32>",
    "%q = kiln.mul %d, %b1 : {T0}, {T1}",
    "%v = kiln.amax %q {dims = array<i64: -2, -1>} : {T0}",
    "%t = kiln.exp %v : tensor<2x4xf32>"]
hw_outs = [hw_x, torch.zeros(2, 4)]
hw_q = (hw_x - hw_x.sum((2, 3), keepdim=True)) * hw_b
same_as_written(
    "a row group over H and W written by hand",
    func_ir([hw_x, hw_b], [line.replace("%b", "%a") for line in hw_lines] +
            ["%r0 = kiln.add %q, %q : {T0}, {T0}",
             "%r1 = kiln.add %t, %t : tensor<2x4xf32>, tensor<2x4xf32>"],
            hw_outs),
    func_ir([hw_x, hw_b], [
        "%r0, %r1 = kiln.fused(%a0, %a1) : ({T0}, {T1}) -> "
        "({T0}, tensor<2x4xf32>) {",
        "^bb0(%b0: {T0}, %b1: {T1}):"] + hw_lines + [
        "%q2 = kiln.add %q, %q : {T0}, {T0}",
        "%t2 = kiln.add %t, %t : tensor<2x4xf32>, tensor<2x4xf32>",
        "kiln.yield %q2, %t2 : {T0}, tensor<2x4xf32>", "}"], hw_outs),
    [hw_x, hw_b], [hw_q * 2, torch.exp(hw_q.amax((2, 3))) * 2],
    rtol=1e-5, atol=1e-5)

# Runtime kernels read the fused chain one cache-sized tile of rows at a
# time: 512x4096 f32 is 8 MB, two tiles of 256 rows (tiled along dim 0, or
# dim 1 for a kernel over dim 0).
big = special(512, 4096)
neg_abs = ["%a = kiln.abs %a0 : {T0}", "%n = kiln.neg %a : {T0}"]
same("topk of a chain (tiled)", func_ir([big], neg_abs + [
    "%r0, %r1 = kiln.topk %n {k = 7 : i64} : {T0}"],
    [torch.zeros(512, 7), torch.zeros(512, 7, dtype=torch.int64)]), [big],
    # values only: PyTorch breaks the ties of -|x| (0 and -0, 1 and -1)
    # differently from ops.md (lowest index first); the indices are
    # compared fused vs unfused above
    [torch.topk(-big.abs(), 7)[0]],
    # one fused kernel: the tile loop (tile, then topk on it)
    1)
same("kthvalue over dim 0 of a chain (tiled along dim 1)", func_ir([big], neg_abs + [
    "%r0, %r1 = kiln.kthvalue %n {k = 3 : i64, dim = 0 : i64} : {T0}"],
    [torch.zeros(4096), torch.zeros(4096, dtype=torch.int64)]), [big],
    [torch.kthvalue(-big.abs(), 3, 0)[0]], 1)
# Along dim 0 a tile's results are columns of the full results: strided
# slices, copied by loops (kiln-strided-copies), not by the MLIR runner's
# memrefCopy, which the JIT does not link. Just over 4 MB, so two tiles:
# 260x4096 f32 in two of 2048 columns, 33x256x128 in two of 128 along dim 1.
tall = special(260, 4096)
same("topk over dim 0 of a chain (tiled along dim 1)", func_ir([tall], neg_abs + [
    "%r0, %r1 = kiln.topk %n {k = 5 : i64, dim = 0 : i64} : {T0}"],
    [torch.zeros(5, 4096), torch.zeros(5, 4096, dtype=torch.int64)]), [tall],
    [torch.topk(-tall.abs(), 5, 0)[0]], 1)
same("kthvalue over dim 0 of a chain, keepdim (tiled along dim 1)",
     func_ir([tall], neg_abs + [
         "%r0, %r1 = kiln.kthvalue %n {k = 2 : i64, dim = 0 : i64, "
         "keepdim = true} : {T0}"],
         [torch.zeros(1, 4096), torch.zeros(1, 4096, dtype=torch.int64)]),
     [tall], [torch.kthvalue(-tall.abs(), 2, 0, keepdim=True)[0]], 1)
cube = special(33, 256, 128)
same("topk over dim 0 of a 3-D chain (tiled along dim 1)", func_ir([cube], neg_abs + [
    "%r0, %r1 = kiln.topk %n {k = 3 : i64, dim = 0 : i64} : {T0}"],
    [torch.zeros(3, 256, 128), torch.zeros(3, 256, 128, dtype=torch.int64)]),
    [cube], [torch.topk(-cube.abs(), 3, 0)[0]], 1)
for op in ["max", "min"]:
    same(f"{op} with dim of a chain, keepdim", func_ir([big], neg_abs + [
        f"%r0, %r1 = kiln.{op} %n {{dim = 1 : i64, keepdim = true}} : {{T0}}"],
        [torch.zeros(512, 1), torch.zeros(512, 1, dtype=torch.int64)]), [big],
        list(getattr(torch, op)(-big.abs(), 1, keepdim=True)), 1)
same("argmax of a chain, flattened (one tile)", func_ir([big], neg_abs + [
    "%r0 = kiln.argmax %n : {T0}"], [torch.zeros((), dtype=torch.int64)]),
    [big], torch.argmax(-big.abs()),
    # a flattened argmax cannot be split into tiles of rows: the chain is
    # computed into a whole tensor first (2 kernels)
    2)
same("argmin of a chain", func_ir([x], [
    "%e = kiln.exp %a0 : {T0}",
    "%r0 = kiln.argmin %e {dim = 0 : i64} : {T0}"],
    [torch.zeros(1000, dtype=torch.int64)]), [x], torch.argmin(x.exp(), 0),
    # 256 KB fit in one tile: the chain, then the kernel on it, in cache
    2)

t = torch.randn(64, 1000)
labels = torch.randint(0, 1000, (64,))
same("mse_loss and cross_entropy", func_ir([y, t, labels], [
    "%r0 = kiln.mse_loss %a0, %a1 : {T0}, {T1}",
    "%r1 = kiln.cross_entropy %a0, %a2 : {T0}, {T2}"],
    [torch.zeros(()), torch.zeros(())]), [y, t, labels],
    [F.mse_loss(y, t), F.cross_entropy(y, labels)],
    # mse: a split sum (64000 elements over one kept position: 8 segments
    # in parallel with (y - t)^2 fused in, then their merge with / n fused
    # out); cross_entropy: the row maxima and the row sums of exp(x - m) in
    # one row group (the maxima its per-row results), the gather of the
    # labels' logits with its row-wise check and (x - m) - log(s) fused out
    # (2: the gather, the first bad position), and one sum with the
    # negation fused in and / N fused out
    6, rtol=1e-5)

same("value recomputed in two kernels", func_ir([x], [
    "%c = kiln.clamp %a0 {min = -1.0 : f64, max = 1.0 : f64} : {T0}",
    "%r0 = kiln.mul %c, %a0 : {T0}, {T0}",
    "%r1 = kiln.add %c, %a0 : {T0}, {T0}"], [x, x]), [x],
    [torch.clamp(x, -1, 1) * x, torch.clamp(x, -1, 1) + x],
    # each chain recomputes the clamp, then the two loops (one shape, one
    # input) become one kernel computing it once
    1)
# Different shapes: two loops, each recomputing the clamp.
x16 = torch.randn(16, 64, 1000)
same("value recomputed in two kernels of different shapes", func_ir(
    [x, x16], [
        "%c = kiln.clamp %a0 {min = -1.0 : f64, max = 1.0 : f64} : {T0}",
        "%r0 = kiln.mul %c, %a0 : {T0}, {T0}",
        "%r1 = kiln.add %c, %a1 : {T0}, {T1}"], [x, x16]), [x, x16],
    [torch.clamp(x, -1, 1) * x, torch.clamp(x, -1, 1) + x16], 2)

# A chain longer than a group's 128 ops continues in the next kernel (LLVM's
# compile time is quadratic in a kernel's size): 300 ops in 3 kernels, the
# same bits as unfused.
long_x = torch.randn(8, 100)
long_ops, long_ref, prev = [], long_x, "%a0"
for i in range(300):
    op = ["kiln.tanh", "kiln.neg", "kiln.sigmoid"][i % 3]
    name = "%r0" if i == 299 else f"%l{i}"
    long_ops.append(f"{name} = {op} {prev} : {{T0}}")
    long_ref = {"kiln.tanh": torch.tanh, "kiln.neg": torch.neg,
                "kiln.sigmoid": torch.sigmoid}[op](long_ref)
    prev = name
same("300-op chain in 3 kernels", func_ir([long_x], long_ops, [long_x]),
     [long_x], long_ref, 3, rtol=1e-4, atol=1e-5)

# Forward and backward of the chain: kiln-autodiff's VJP fuses like the rest.
fx = torch.randn(64, 1000)
vjp_ir, error = c.autodiff(chain1.replace("64x1000", "64x1000"))
ct = torch.randn(64, 1000)
xr = fx.clone().requires_grad_()
(grad,) = torch.autograd.grad(
    torch.where(xr > 0, torch.clamp(xr, -1, 1) ** 2, xr * 0.5) + 1, xr, ct)
if vjp_ir is None:
    c.fail("chain backward", error)
else:
    same("chain backward (kiln-autodiff)", vjp_ir, [fx, ct], grad, 1,
         entry="f_vjp")

# A bad index in a fused gather is still reported with the gather's
# location (exit 2), not the fused kernel's.
gx = torch.ones(2, 4)
gi = torch.tensor([[0, 1], [7, 2]])
c.expect_error("fused gather, index out of range", func_ir([gx, gi], [
    "%e = kiln.exp %a0 : {T0}",
    "%g = kiln.gather %e, %a1 {dim = 1 : i64} : {T0}, {T1}",
    "%r0 = kiln.neg %g : tensor<2x2xf32>"], [torch.zeros(2, 2)]), [gx, gi], 2,
    "kiln.gather at ")

# Random graphs (fixed seed): chains of unary and binary ops over operands
# of broadcast-compatible shapes, comparisons feeding where, casts,
# reductions with and without keepdim (and ops after them), softmax. Each is
# run fused and unfused (bits must match) and against PyTorch.
import random

rng = random.Random(11)
UNARY = [("exp", torch.exp), ("tanh", torch.tanh), ("neg", torch.neg),
         ("abs", torch.abs), ("sigmoid", torch.sigmoid), ("relu", torch.relu),
         ("floor", torch.floor)]
BINARY = [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul),
          ("maximum", torch.maximum), ("minimum", torch.minimum)]


def random_graph(index):
    shapes = [(6, 40), (1, 40), (6, 1), (40,), ()]
    args = [torch.randn(6, 40)] + [torch.randn(rng.choice(shapes[1:]))
                                   for _ in range(rng.randint(0, 2))]
    body, values = [], [("%a{}".format(i), t) for i, t in enumerate(args)]
    for i in range(len(args)):
        values[i] = (values[i][0], args[i])
    count = 0

    def fresh():
        nonlocal count
        count += 1
        return f"%t{count}"

    for _ in range(rng.randint(3, 7)):
        kind = rng.random()
        name = fresh()
        if kind < 0.4:
            (src, t) = rng.choice(values)
            op, fn = rng.choice(UNARY)
            body.append(f"{name} = kiln.{op} {src} : {ttype(t)}")
            values.append((name, fn(t)))
        elif kind < 0.8:
            (a, ta), (b, tb) = rng.choice(values), rng.choice(values)
            op, fn = rng.choice(BINARY)
            body.append(f"{name} = kiln.{op} {a}, {b} : {ttype(ta)}, {ttype(tb)}")
            values.append((name, fn(ta, tb)))
        else:
            (a, ta), (b, tb) = rng.choice(values), rng.choice(values)
            cond = fresh()
            body.append(f"{cond} = kiln.gt {a}, {b} : {ttype(ta)}, {ttype(tb)}")
            mask = ta > tb
            body.append(f"{name} = kiln.where {cond}, {a}, {b} : "
                        f"{ttype(mask)}, {ttype(ta)}, {ttype(tb)}")
            values.append((name, torch.where(mask, ta, tb)))
    last, t = values[-1]
    if t.dim() == 2 and rng.random() < 0.7:
        # A consumer that is not elementwise: a reduction (then maybe more
        # elementwise ops on its result) or softmax.
        name = fresh()
        choice = rng.choice(["sum", "amax", "softmax", "sum_keep", "row",
                             "row_softmax"])
        if choice == "row":
            # A row group: the rows' maximum broadcast back.
            body.append(f"{name} = kiln.amax {last} {{dims = array<i64: 1>, keepdim = true}} : {ttype(t)}")
            row = fresh()
            body.append(f"{row} = kiln.sub {last}, {name} : {ttype(t)}, "
                        f"{ttype(t.amax(1, keepdim=True))}")
            t, name = t - t.amax(1, keepdim=True), row
        elif choice == "row_softmax":
            # A row group with a softmax in it: y * (t - sum(y * t)).
            body.append(f"{name} = kiln.softmax {last} {{dim = 1 : i64}} : {ttype(t)}")
            p, s, d, r = fresh(), fresh(), fresh(), fresh()
            body += [f"{p} = kiln.mul {name}, {last} : {ttype(t)}, {ttype(t)}",
                     f"{s} = kiln.sum {p} {{dims = array<i64: 1>, keepdim = true}} : {ttype(t)}",
                     f"{d} = kiln.sub {last}, {s} : {ttype(t)}, "
                     f"{ttype(t.sum(1, keepdim=True))}",
                     f"{r} = kiln.mul {name}, {d} : {ttype(t)}, {ttype(t)}"]
            y = torch.softmax(t, 1)
            t, name = y * (t - (y * t).sum(1, keepdim=True)), r
        elif choice == "softmax":
            body.append(f"{name} = kiln.softmax {last} {{dim = 1 : i64}} : {ttype(t)}")
            t = torch.softmax(t, 1)
        elif choice == "sum_keep":
            body.append(f"{name} = kiln.sum {last} {{dims = array<i64: 1>, keepdim = true}} : {ttype(t)}")
            t = t.sum(1, keepdim=True)
        else:
            body.append(f"{name} = kiln.{choice} {last} {{dims = array<i64: 1>}} : {ttype(t)}")
            t = t.sum(1) if choice == "sum" else t.amax(1)
        last = name
        if rng.random() < 0.5:
            name = fresh()
            body.append(f"{name} = kiln.exp {last} : {ttype(t)}")
            t, last = torch.exp(t), name
    if rng.random() < 0.3:
        name = fresh()
        body.append(f"{name} = kiln.cast {last} : {ttype(t)} to {ttype(t.double())}")
        t, last = t.double(), name
    body.append(f"%r0 = kiln.neg {last} : {ttype(t)}")
    return func_ir(args, body, [-t]), args, -t


def fused_as_unfused(label, ir, args, want, atol):
    """The fused result at 2 threads has the unfused one's bits at 1, and
    is PyTorch's `want` within rtol 1e-4 and `atol` (one result; no kernel
    count: random graphs)."""
    c.cases += 1
    try:
        fused, _ = run(ir, args, "--threads=2")
        plain, _ = run(ir, args, "--threads=1", "--no-fuse")
    except RuntimeError as error:
        return c.fail(label, f"{error}\n{ir}")
    if not same_bits(fused[0], plain[0]):
        return c.fail(label, f"fused and unfused bits differ\n{ir}")
    problem = compare(torch.from_numpy(fused[0]), want, 1e-4, atol)
    if problem:
        return c.fail(label, f"vs PyTorch: {problem}\n{ir}")
    return True


for index in range(24):
    ir, args, want = random_graph(index)
    fused_as_unfused(f"random graph {index}", ir, args, want, 1e-5)


# Random permute round trips (cancelPermuteRoundTrips): a permute of rank
# 3 or 4, elementwise ops (tanh, a broadcast factor, gt/where) and keepdim
# reductions (sum, mean, amax) over random dims, the inverse permute.
# Fused (the permutes cancelled where the rule allows) and unfused give the
# same bits; both against PyTorch.
def permute_round_trip(index):
    rank = rng.choice([3, 4])
    shape = [rng.choice([1, 2, 3, 5, 8]) for _ in range(rank)]
    perm = list(range(rank))
    rng.shuffle(perm)
    inverse = [perm.index(i) for i in range(rank)]
    pshape = [shape[d] for d in perm]
    x = torch.randn(*shape)
    wshape = [d if rng.random() < 0.5 else 1
              for d in pshape][rng.randint(0, rank - 1):]
    w = torch.randn(*wshape)
    P = ttype(x.permute(*perm))
    body = [f"%p = kiln.permute %a0 [{', '.join(map(str, perm))}] : {{T0}}"]
    last, t = "%p", x.permute(*perm)
    for k in range(rng.randint(1, 4)):
        kind = rng.choice(["sum", "mean", "amax", "tanh", "mul", "where"])
        name = f"%v{k}"
        if kind in ("sum", "mean", "amax"):
            dims = sorted(rng.sample(range(rank), rng.randint(1, rank)))
            r = getattr(t, kind)(dims, keepdim=True)
            body += [f"%s{k} = kiln.{kind} {last} {{dims = array<i64: "
                     f"{', '.join(map(str, dims))}>, keepdim = true}} : {P}",
                     f"{name} = kiln.sub {last}, %s{k} : {P}, {ttype(r)}"]
            t = t - r
        elif kind == "tanh":
            body.append(f"{name} = kiln.tanh {last} : {P}")
            t = torch.tanh(t)
        elif kind == "mul":
            body.append(f"{name} = kiln.mul {last}, %a1 : {P}, {{T1}}")
            t = t * w
        else:
            mask = t > w
            body += [f"%c{k} = kiln.gt {last}, %a1 : {P}, {{T1}}",
                     f"%n{k} = kiln.neg {last} : {P}",
                     f"{name} = kiln.where %c{k}, {last}, %n{k} : "
                     f"{ttype(mask)}, {P}, {P}"]
            t = torch.where(mask, t, -t)
        last = name
    body.append(f"%r0 = kiln.permute {last} "
                f"[{', '.join(map(str, inverse))}] : {P}")
    want = t.permute(*inverse)
    return func_ir([x, w], body, [want]), [x, w], want


# A chain deeper than the rewrite follows (1100 ops; kMaxDepth is 1024):
# left as written, the permutes kept -- still the same bits and values.
deep_x = torch.randn(2, 3, 4)
deep = ["%p = kiln.permute %a0 [2, 0, 1] : {T0}"]
deep += [f"%v{k} = kiln.tanh {'%p' if k == 0 else f'%v{k - 1}'} : "
         "tensor<4x2x3xf32>" for k in range(1100)]
deep.append("%r0 = kiln.permute %v1099 [1, 2, 0] : tensor<4x2x3xf32>")
deep_want = deep_x.permute(2, 0, 1)
for _ in range(1100):
    deep_want = torch.tanh(deep_want)
fused_as_unfused("permute round trip of 1100 ops",
                 func_ir([deep_x], deep, [deep_x]), [deep_x],
                 deep_want.permute(1, 2, 0), 1e-5)

for index in range(16):
    ir, args, want = permute_round_trip(index)
    fused_as_unfused(f"permute round trip {index}", ir, args, want, 1e-4)

# softmax / log_softmax over a middle dim (kept dims after it): the
# softmax's packed tiles where a block of the last dim holds 256 bytes or
# more of each row (each tile copied to a buffer for its passes), else
# written as its column reductions and chain where a column group forms
# (blocks of the collapsed dims after it in cache), else three kernels. Every form gives the bits of the row softmax of the input with
# that dim moved last (the lane order of the column reductions is the
# rows'), checked here against the permuted graph, besides fused ==
# unfused and PyTorch.
def middle_softmax_ir(t, op, dim, chain=False, permuted=False):
    """The softmax of `t` (or of a where/clamp chain of it) over `dim`;
    `permuted`: also that of the chain with `dim` moved last, moved back."""
    rank = t.dim()
    perm = list(range(rank))
    perm[dim], perm[-1] = perm[-1], perm[dim]
    moved = ttype(t.permute(perm))
    dims = ", ".join(map(str, perm))
    head = []
    x = "%a0"
    if chain:
        head = ["%z = kiln.constant dense<0.0> : tensor<f32>",
                f"%m = kiln.gt %a0, %z : {{T0}}, tensor<f32>",
                "%c = kiln.clamp %a0 {min = -1.0 : f64, max = 2.0 : f64} : {T0}",
                f"%x = kiln.where %m, %c, %a0 : "
                f"{ttype(t).replace('f32>', 'i1>')}, {{T0}}, {{T0}}"]
        x = "%x"
    body = head + [f"%r0 = kiln.{op} {x} {{dim = {dim} : i64}} : {{T0}}"]
    if not permuted:
        return func_ir([t], body, [t])
    return func_ir([t], body + [
        f"%p = kiln.permute {x} [{dims}] : {{T0}}",
        f"%q = kiln.{op} %p {{dim = {rank - 1} : i64}} : {moved}",
        f"%r1 = kiln.permute %q [{dims}] : {moved}"], [t, t])


def middle_softmax_want(t, fn, dim, chain=False):
    if chain:
        t = torch.where(t > 0, torch.clamp(t, -1, 2), t)
    return fn(t, dim)


def rows_bits(label, ir, inputs):
    """The middle-dim softmax (result 0) has the bits of the permuted row
    softmax (result 1)."""
    c.cases += 1
    try:
        got, _ = run(ir, inputs, "--threads=2")
    except RuntimeError as error:
        return c.fail(label, str(error))
    if not same_bits(got[0], got[1]):
        return c.fail(label, f"bits differ from the permuted row softmax's:"
                      f"\n  dim: {got[0]}\n  rows: {got[1]}")
    return True


mid_special = torch.randn(3, 40, 64) * 4
mid_special[0, :, 5] = float("-inf")   # an all -inf column: NaN
mid_special[1, 7, 9] = float("nan")    # NaN: the column NaN
mid_special[2, 3, 11] = float("inf")   # +inf: the column NaN
mid_special[2, ::3, 12] = float("-inf")  # -inf entries: 0
group_special = mid_special.reshape(3, 40, 8, 8)  # a column group's
middle_cases = [
    # (input, dim, chain, kernels fused)
    (torch.randn(4, 37, 24, 20) * 3, 1, True, 1),  # column group
    (torch.randn(2, 21, 16, 64) * 3, 1, True, 1),  # packed tiles
    (torch.randn(128, 4, 256) * 3, 0, False, 1),   # packed, over dim 0
    (torch.randn(1000, 96) * 3, 0, False, 3),      # three kernels
    (mid_special, 1, False, 1),                    # packed
    (group_special, 1, False, 1),                  # column group
    (torch.randn(3, 33, 256, dtype=torch.float64) * 3, 1, False, 1),
]
for t, dim, chain, kernels in middle_cases:
    for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        label = (f"{op} over dim {dim} of {list(t.shape)} {t.dtype}"
                 f"{' of a chain' if chain else ''}")
        same(label, middle_softmax_ir(t, op, dim, chain), [t],
             middle_softmax_want(t, fn, dim, chain), kernels, rtol=1e-5,
             atol=1e-5)
        rows_bits(label + ": the permuted row softmax's bits",
                  middle_softmax_ir(t, op, dim, chain, permuted=True), [t])

c.finish()
