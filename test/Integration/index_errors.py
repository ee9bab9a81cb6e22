# Runtime index checks of every indexing op: an out-of-range index makes
# kiln-run exit 2 naming the op, its location and the first bad index in
# row-major order, with no out-of-bounds access. Runs on the CPU here and on
# the GPU in test/GPU/numerics.test (KILN_RUN_ARGS=--target=cuda), where the
# kernels report through the device's error record.
# RUN: %python %s
import torch

from kiln_testing import KILN_RUN_ARGS, Checker, func_ir, ttype

torch.manual_seed(2026)

c = Checker("index_errors")
x = torch.zeros(2, 10)
f5 = torch.zeros(5)


def func(args, body, result):
    return func_ir(args, body, [result])


idx = torch.tensor([[0, 1, 3], [11, 12, 2]])
c.expect_error("gather: first bad index in row-major order",
               func([x, idx], "  %r0 = kiln.gather %a0, %a1 {dim = 1 : i64} : "
                    f"{ttype(x)}, {ttype(idx)}", "tensor<2x3xf32>"),
               [x, idx], 2, "index 11 is out of bounds for size 10")
# The CPU checks a gather's indices row by row in the gather's own loop
# (rows in parallel): the first bad index is still the row-major first,
# here row 5's -3 ahead of row 37's 99 and of a later column of row 5.
many = torch.zeros(64, 10)
bad = torch.randint(0, 10, (64, 4))
bad[37, 0], bad[5, 2], bad[5, 3] = 99, -3, 50
c.expect_error("gather: first bad index across rows",
               func([many, bad], "  %r0 = kiln.gather %a0, %a1 {dim = 1 : i64} : "
                    f"{ttype(many)}, {ttype(bad)}", "tensor<64x4xf32>"),
               [many, bad], 2, "index -3 is out of bounds for size 10")
# The row's columns run in two loops (the first ones prefetch the next
# row, the rest do not): a bad index in the first loop ahead of one in the
# second is still the one reported.
bad2 = torch.randint(0, 10, (64, 4))
bad2[9, 0], bad2[9, 3], bad2[20, 1] = 10, 77, -1
c.expect_error("gather: first bad index in the prefetching columns",
               func([many, bad2], "  %r0 = kiln.gather %a0, %a1 {dim = 1 : i64} : "
                    f"{ttype(many)}, {ttype(bad2)}", "tensor<64x4xf32>"),
               [many, bad2], 2, "index 10 is out of bounds for size 10")
# Fewer than 8 rows (a batch of one): one parallel loop over the result,
# the indices checked up front; the row-major first bad index is reported.
long_row = torch.zeros(1, 100000)
bad3 = torch.randint(0, 100000, (1, 70000))
bad3[0, 60000], bad3[0, 41234] = -5, 100000
c.expect_error("gather of one long row: the first bad index",
               func([long_row, bad3], "  %r0 = kiln.gather %a0, %a1 {dim = 1 : i64} : "
                    f"{ttype(long_row)}, {ttype(bad3)}", "tensor<1x70000xf32>"),
               [long_row, bad3], 2, "index 100000 is out of bounds for size 100000")
sel = torch.tensor([1, -1])
c.expect_error("index_select: negative index",
               func([x, sel], "  %r0 = kiln.index_select %a0, %a1 {dim = 1 : i64} "
                    f": {ttype(x)}, {ttype(sel)}", "tensor<2x2xf32>"),
               [x, sel], 2, "kiln.index_select at ")
far = torch.tensor([[0, -21, 3]])
c.expect_error("take: beyond -numel",
               func([x, far], f"  %r0 = kiln.take %a0, %a1 : {ttype(x)}, "
                    f"{ttype(far)}", "tensor<1x3xf32>"),
               [x, far], 2, "index -21 is out of bounds for size 20")
i3 = torch.tensor([0, 7, 1])
s3 = torch.ones(3)
c.expect_error("scatter_add",
               func([f5, i3, s3], "  %r0 = kiln.scatter_add %a0, %a1, %a2 "
                    f"{{dim = 0 : i64}} : {ttype(f5)}, {ttype(i3)}, {ttype(s3)}",
                    "tensor<5xf32>"),
               [f5, i3, s3], 2, "kiln.scatter_add at ")
c.expect_error("index_add",
               func([f5, i3, s3], "  %r0 = kiln.index_add %a0, %a1, %a2 "
                    f"{{dim = 0 : i64}} : {ttype(f5)}, {ttype(i3)}, {ttype(s3)}",
                    "tensor<5xf32>"),
               [f5, i3, s3], 2, "index 7 is out of bounds for size 5")
c.expect_error("put",
               func([f5, i3, s3], f"  %r0 = kiln.put %a0, %a1, %a2 : {ttype(f5)}, "
                    f"{ttype(i3)}, {ttype(s3)}", "tensor<5xf32>"),
               [f5, i3, s3], 2, "kiln.put at ")
# Scatters check every index up front and report the first bad one in
# row-major order: the default lowering and the sorted scatters (the GPU's;
# --sorted-scatters on the CPU) alike.
bad = torch.tensor([[0, -7], [6, 9]])
s4 = torch.ones(4)
for op, attrs, index, message in (
        ("put", "", bad, "index -7 is out of bounds for size 5"),
        ("index_add", "{dim = 0 : i64}", i3, "index 7 is out of bounds for size 5"),
        ("scatter_add", "{dim = 0 : i64}", i3,
         "index 7 is out of bounds for size 5")):
    src = s4 if op == "put" else s3
    for flags in ([], ["--sorted-scatters"]):
        c.expect_error(f"{op}{', sorted' if flags else ''}: first bad index",
                       func([f5, index, src], f"  %r0 = kiln.{op} %a0, %a1, "
                            f"%a2 {attrs} : {ttype(f5)}, {ttype(index)}, "
                            f"{ttype(src)}", "tensor<5xf32>"),
                       [f5, index, src], 2, message, extra_args=flags)
# Indexed reads read in place by a reduction's, softmax's or runtime
# kernel's chain are checked before that kernel, with the same report as
# their own kernels': kiln-fuse-elementwise puts an index_select of rows of
# 32 into a sum's kernel; gathers and takes (runs of 1) are written in
# kiln.fused regions here.
table = torch.zeros(50, 32)
rows = torch.tensor([4, 9, 50, 3, -2])
c.expect_error("index_select read in place by a sum",
               func([table, rows], f"  %s = kiln.index_select %a0, %a1 "
                    f"{{dim = 0 : i64}} : {ttype(table)}, {ttype(rows)}\n"
                    "  %r0 = kiln.sum %s {dims = array<i64: 0>} : "
                    "tensor<5x32xf32>", "tensor<32xf32>"),
               [table, rows], 2, "index 50 is out of bounds for size 50")


def in_place(read, use, args, result):
    """One kiln.fused region: `read` (of %b0, %b1) read in place by `use`
    (defining %r)."""
    types = ", ".join(ttype(a) for a in args)
    return func(args, f"  %r0 = kiln.fused(%a0, %a1) : ({types}) -> {result} "
                f"{{\n  ^bb0(%b0: {ttype(args[0])}, %b1: {ttype(args[1])}):"
                f"\n    {read}\n    {use}\n    kiln.yield %r : {result}\n"
                "  }", result)


cols = torch.tensor([[0, 1, 3], [2, 10, 2]])
c.expect_error("gather read in place by a softmax",
               in_place(f"%g = kiln.gather %b0, %b1 {{dim = 1 : i64}} : "
                        f"{ttype(x)}, {ttype(cols)}",
                        "%r = kiln.softmax %g {dim = 1 : i64} : "
                        "tensor<2x3xf32>", [x, cols], "tensor<2x3xf32>"),
               [x, cols], 2, "index 10 is out of bounds for size 10")
flat = torch.tensor([[-20, 19, 20]])
c.expect_error("take read in place by amax",
               in_place(f"%t = kiln.take %b0, %b1 : {ttype(x)}, {ttype(flat)}",
                        "%r = kiln.amax %t : tensor<1x3xf32>", [x, flat],
                        "tensor<f32>"),
               [x, flat], 2, "index 20 is out of bounds for size 20")
empty = torch.zeros(0, 32)
two = torch.tensor([0, 1])
c.expect_error("index_select of an empty input read in place",
               func([empty, two], f"  %s = kiln.index_select %a0, %a1 "
                    f"{{dim = 0 : i64}} : {ttype(empty)}, {ttype(two)}\n"
                    "  %r0 = kiln.amax %s {dims = array<i64: 0>} : "
                    "tensor<2x32xf32>", "tensor<32xf32>"),
               [empty, two], 2, "index 0 is out of bounds for size 0")
c.expect_error("index_select read in place by topk",
               func([table, rows], f"  %s = kiln.index_select %a0, %a1 "
                    f"{{dim = 0 : i64}} : {ttype(table)}, {ttype(rows)}\n"
                    "  %r0, %j = kiln.topk %s {k = 2 : i64, dim = 1 : i64} : "
                    "tensor<5x32xf32>", "tensor<5x2xf32>"),
               [table, rows], 2, "kiln.index_select at ")
bag_rows = torch.tensor([4, 9, 3, 50, 1, -2])
c.expect_error("index_select read in place through a reshape (bags)",
               func([table, bag_rows], f"  %s = kiln.index_select %a0, %a1 "
                    f"{{dim = 0 : i64}} : {ttype(table)}, {ttype(bag_rows)}\n"
                    "  %v = kiln.reshape %s : tensor<6x32xf32> -> "
                    "tensor<3x2x32xf32>\n"
                    "  %r0 = kiln.sum %v {dims = array<i64: 1>} : "
                    "tensor<3x2x32xf32>", "tensor<3x32xf32>"),
               [table, bag_rows], 2, "index 50 is out of bounds for size 50")
labels = torch.tensor([3, 12])
c.expect_error("cross_entropy: class out of range",
               func([x, labels], f"  %r0 = kiln.cross_entropy %a0, %a1 : "
                    f"{ttype(x)}, {ttype(labels)}", "tensor<f32>"),
               [x, labels], 2, "kiln.cross_entropy at ")
# Upstream element accesses in IR files (kiln-check-upstream-indices): a
# loop reading x[idx[k]] and writing it to position k with tensor.extract
# and tensor.insert. Out-of-range positions segfaulted.
upstream = """func.func @f(%x: tensor<5xf32>, %idx: tensor<3xi64>) -> tensor<3xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %init = arith.constant dense<0.0> : tensor<3xf32>
  %r = scf.for %k = %c0 to %c3 step %c1 iter_args(%acc = %init) -> (tensor<3xf32>) {
    %i = tensor.extract %idx[%k] : tensor<3xi64>
    %j = arith.index_cast %i : i64 to index
    %v = tensor.extract %x[%j] : tensor<5xf32>
    %at = arith.subi %c3, %k : index
    %p = arith.subi %at, %c1 : index
    %n = tensor.insert %v into %acc[%p] : tensor<3xf32>
    scf.yield %n : tensor<3xf32>
  }
  return %r : tensor<3xf32>
}
"""
xs = torch.arange(5, dtype=torch.float32) * 10
c.check("tensor.extract/insert in range", upstream,
        [xs, torch.tensor([4, 0, 2])], torch.tensor([20.0, 0.0, 40.0]))
# A check reached many times reports its least bad index (the runtime, and
# on the GPU the device's error record, keep the least (site, index,
# size)), here 5 although 7 comes first.
on_gpu = "--target=cuda" in KILN_RUN_ARGS
c.expect_error("tensor.extract: least bad index", upstream,
               [xs, torch.tensor([1, 7, 5])], 2,
               "in.mlir:9:10: index 5 is out of bounds for size 5")
c.expect_error("tensor.extract: negative index", upstream,
               [xs, torch.tensor([1, -2, 3])], 2,
               "in.mlir:9:10: index -2 is out of bounds for size 5")
# The same check in a parallel loop (a gather written as a linalg.generic):
# the threads report concurrently, and the message is the same at every
# thread count (it was whichever thread reported first).
gen = """#id = affine_map<(d0) -> (d0)>
func.func @f(%x: tensor<1000xf32>, %i: tensor<200000xi64>) -> tensor<200000xf32> {
  %init = tensor.empty() : tensor<200000xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%i : tensor<200000xi64>) outs(%init : tensor<200000xf32>) {
  ^bb0(%a: i64, %b: f32):
    %j = arith.index_cast %a : i64 to index
    %v = tensor.extract %x[%j] : tensor<1000xf32>
    linalg.yield %v : f32
  } -> tensor<200000xf32>
  return %r : tensor<200000xf32>
}
"""
positions = torch.randint(0, 1000, (200000,))
positions[99990], positions[100010], positions[199999] = 7000, 5000, 1000
table = torch.arange(1000, dtype=torch.float32)
# On the GPU, a thread per element: the three reports race for the record.
for threads in (None,) if on_gpu else (1, 2, 3):
    c.expect_error("tensor.extract in a parallel loop" +
                   (f", {threads} threads" if threads else ""),
                   gen, [table, positions], 2,
                   "in.mlir:7:10: index 1000 is out of bounds for size 1000",
                   extra_args=[f"--threads={threads}"] if threads else [])
# Every element bad: 200000 reports of one check (on the GPU most are
# beaten at the record's filter, the rest contend for its lock).
all_bad = torch.randperm(400000)[:200000] + 1000
c.expect_error("tensor.extract in a parallel loop, every index bad", gen,
               [table, all_bad], 2,
               f"in.mlir:7:10: index {int(all_bad.min())} is out of bounds "
               "for size 1000")
good_positions = positions.clone()
good_positions[[99990, 100010, 199999]] = 3
c.check("tensor.extract in a parallel loop, in range", gen,
        [table, good_positions], table[good_positions])

# Dynamic sizes from data (kiln-check-upstream-indices): negative, or a
# shape whose byte size would wrap (2^32 x 2^32 elements: a segfault).
sized = """func.func @f(%n: tensor<1xi64>) -> tensor<f32> {
  %c0 = arith.constant 0 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %v : i64 to index
  %z = arith.constant 1.0 : f32
  %e = tensor.splat %z[%s, %s] : tensor<?x?xf32>
  %init = arith.constant dense<0.0> : tensor<f32>
  %r = linalg.reduce ins(%e : tensor<?x?xf32>) outs(%init : tensor<f32>) dimensions = [0, 1]
    (%a: f32, %b: f32) {
      %x = arith.addf %a, %b : f32
      linalg.yield %x : f32
    }
  return %r : tensor<f32>
}
"""
c.check("dynamic sizes in range", sized, [torch.tensor([3])],
        torch.tensor(9.0))
c.expect_error("negative dynamic size", sized, [torch.tensor([-5])], 2,
               "in.mlir:6:8: negative size -5")
for n in (2**32, 2**31 + 1):
    c.expect_error(f"dynamic shape {n}x{n}", sized, [torch.tensor([n])], 2,
                   "in.mlir:6:8: the shape's nonzero sizes multiply to more "
                   "than 2^59")

# memref.alloca sized from data: within its share of the 1 MiB of stack
# allocations it runs; beyond it is an error (64 MiB overflowed the stack:
# SIGSEGV), and the stores after it, 2^24 of them, are checked against the
# size the buffer really has (0), not the size from data (the guards used to
# take the latter and wrote past the buffer). memref.alloc sized from data
# runs, and a negative size is reported.
def buffer_ir(op):
    return f"""func.func @f(%n: tensor<1xi64>) -> tensor<f32> {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %k = arith.index_cast %v : i64 to index
  %m = {op}(%k) : memref<?xf32>
  %one = arith.constant 1.0 : f32
  scf.for %i = %c0 to %k step %c1 {{
    memref.store %one, %m[%i] : memref<?xf32>
  }}
  %zero = arith.constant 0.0 : f32
  %s = scf.for %i = %c0 to %k step %c1 iter_args(%acc = %zero) -> f32 {{
    %l = memref.load %m[%i] : memref<?xf32>
    %a = arith.addf %acc, %l : f32
    scf.yield %a : f32
  }}
  %r = tensor.from_elements %s : tensor<f32>
  return %r : tensor<f32>
}}
"""


stack = buffer_ir("memref.alloca")
c.check("memref.alloca within the stack limit", stack,
        [torch.tensor([65536])], torch.tensor(65536.0))
c.expect_error("memref.alloca beyond the stack limit", stack,
               [torch.tensor([1 << 24])], 2,
               "in.mlir:6:8: 16777216 elements of 4 bytes on the stack: "
               "more than this memref.alloca's share (1048576 bytes)")
heap = buffer_ir("memref.alloc")
c.check("memref.alloc sized from data", heap, [torch.tensor([1 << 20])],
        torch.tensor(float(1 << 20)))
c.expect_error("memref.alloc of a negative size, then stores", heap,
               [torch.tensor([-3])], 2, "in.mlir:6:8: negative size -3")

# Upstream integer division (kiln-check-integer-division): by zero it is an
# error (it was a SIGFPE), INT_MIN / -1 wraps as in NumPy, and the rest
# round as the op says: trunc (divsi, remsi), floor, ceil, unsigned.


def wrap(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


rules = {
    "divsi": lambda a, b, m: trunc_div(a, b),
    "remsi": lambda a, b, m: a - b * trunc_div(a, b),
    "floordivsi": lambda a, b, m: a // b,
    "ceildivsi": lambda a, b, m: -((-a) // b),
    "divui": lambda a, b, m: (a % m) // (b % m),
    "remui": lambda a, b, m: (a % m) % (b % m),
}


def division_ir(ty):
    """Every op of `rules` on the same operands, one result each."""
    t = f"tensor<6x{ty}>"
    body = "".join(f"  %y{i} = arith.{op} %a, %b : {t}\n"
                   for i, op in enumerate(rules))
    names = ", ".join(f"%y{i}" for i in range(len(rules)))
    types = ", ".join([t] * len(rules))
    return (f"func.func @f(%a: {t}, %b: {t}) -> ({types}) {{\n{body}"
            f"  return {names} : {types}\n}}\n")


for bits, dtype in ((64, torch.int64), (32, torch.int32)):
    lo = -2**(bits - 1)
    a = [7, -7, 7, lo, lo, -1]
    b = [2, 2, -2, -1, 3, 5]
    want = [torch.tensor([wrap(rule(x, y, 2**bits), bits)
                          for x, y in zip(a, b)], dtype=dtype)
            for rule in rules.values()]
    c.check(f"integer division and remainder, i{bits}", division_ir(f"i{bits}"),
            [torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype)], want)
    # By zero: every op fails; the first in program order is reported.
    zero = list(b)
    zero[4] = 0
    c.expect_error(f"integer division by zero, i{bits}", division_ir(f"i{bits}"),
                   [torch.tensor(a, dtype=dtype),
                    torch.tensor(zero, dtype=dtype)], 2,
                   "in.mlir:2:9: integer division by zero")
# After an error the device (or CPU) state is fine: a good run succeeds.
good = torch.tensor([[0, 9, 3], [1, 1, 2]])
c.check("gather after errors",
        func([x, good], "  %r0 = kiln.gather %a0, %a1 {dim = 1 : i64} : "
             f"{ttype(x)}, {ttype(good)}", "tensor<2x3xf32>"),
        [x, good], torch.gather(x, 1, good))


def sum_of(value):
    """The end of a function returning the sum of `value`, a tensor<?xf32>."""
    return f"""  %z = arith.constant dense<0.0> : tensor<f32>
  %r = linalg.reduce ins({value} : tensor<?xf32>) outs(%z : tensor<f32>) dimensions = [0]
    (%p: f32, %q: f32) {{
      %u = arith.addf %p, %q : f32
      linalg.yield %u : f32
    }}
  return %r : tensor<f32>
}}
"""

def claim(label, ir, bad, message, good, expected):
    """A size claim of kiln-check-upstream-shapes (or an index check): the
    inputs `bad` break it (exit 2, `message`), `good` keep it (`expected`)."""
    c.expect_error(f"{label}: mismatch", ir, bad, 2, message)
    c.check(label, ir, good, expected)

# Sizes upstream ops take to agree (kiln-check-upstream-shapes): a dynamic
# size from data that does not is reported, and the op does not run (a
# tensor.cast to 4 of 3 elements read a fourth; a linalg.add of 3 and 5
# elements, or a static slice of a shorter tensor, read past a buffer).
casted = """func.func @f(%x: tensor<5xf32>, %n: tensor<1xi64>) -> tensor<4xf32> {
  %c0 = arith.constant 0 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %v : i64 to index
  %e = tensor.extract_slice %x[0] [%s] [1] : tensor<5xf32> to tensor<?xf32>
  %r = tensor.cast %e : tensor<?xf32> to tensor<4xf32>
  return %r : tensor<4xf32>
}
"""
claim("tensor.cast to a static size", casted, [xs, torch.tensor([3])],
      "in.mlir:6:8: dim 0 of the source is 3, not 4 (the result type's)",
      [xs, torch.tensor([4])], xs[:4])
# Two sizes from data, %s and %t.
two_sizes = """  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %v = tensor.extract %n[%c0] : tensor<2xi64>
  %w = tensor.extract %n[%c1] : tensor<2xi64>
  %s = arith.index_cast %v : i64 to index
  %t = arith.index_cast %w : i64 to index
"""
added = """func.func @f(%n: tensor<2xi64>) -> tensor<f32> {
""" + two_sizes + """  %one = arith.constant 1.0 : f32
  %a = tensor.splat %one[%s] : tensor<?xf32>
  %b = tensor.splat %one[%t] : tensor<?xf32>
  %init = tensor.empty(%t) : tensor<?xf32>
  %sum = linalg.add ins(%a, %b : tensor<?xf32>, tensor<?xf32>) outs(%init : tensor<?xf32>) -> tensor<?xf32>
""" + sum_of("%sum")
claim("linalg.add of dynamic sizes", added, [torch.tensor([3, 5])],
      "in.mlir:12:10: dim 0 of operand #1 is 5, not the size of dim 0 of "
      "operand #0 (the loop's)", [torch.tensor([5, 5])], torch.tensor(10.0))
sliced = """func.func @f(%v: tensor<2xf32>, %n: tensor<1xi64>) -> (tensor<4xf32>, tensor<f32>) {
  %c0 = arith.constant 0 : index
  %e = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %e : i64 to index
  %one = arith.constant 1.0 : f32
  %a = tensor.splat %one[%s] : tensor<?xf32>
  %head = tensor.extract_slice %a[0] [4] [1] : tensor<?xf32> to tensor<4xf32>
  %b = tensor.insert_slice %v into %a[3] [2] [1] : tensor<2xf32> into tensor<?xf32>
  %z = arith.constant dense<0.0> : tensor<f32>
  %r = linalg.reduce ins(%b : tensor<?xf32>) outs(%z : tensor<f32>) dimensions = [0]
    (%p: f32, %q: f32) {
      %u = arith.addf %p, %q : f32
      linalg.yield %u : f32
    }
  return %head, %r : tensor<4xf32>, tensor<f32>
}
"""
pair = torch.tensor([10.0, 20.0])
c.expect_error("tensor.extract_slice past a dynamic size", sliced,
               [pair, torch.tensor([3])], 2,
               "in.mlir:7:11: dim 0 of the source is "
               "3, the slice reaches 4")
c.expect_error("tensor.insert_slice past a dynamic size", sliced,
               [pair, torch.tensor([4])], 2,
               "in.mlir:8:8: dim 0 of the destination "
               "is 4, the slice reaches 5")
c.check("tensor.extract_slice/insert_slice in a dynamic size", sliced,
        [pair, torch.tensor([6])], [torch.ones(4), torch.tensor(34.0)])

copied = """func.func @f(%n: tensor<2xi64>) -> tensor<f32> {
""" + two_sizes + """  %a = memref.alloc(%s) : memref<?xf32>
  %b = memref.alloc(%t) : memref<?xf32>
  %one = arith.constant 1.0 : f32
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%one : f32) outs(%a : memref<?xf32>)
  linalg.fill ins(%zero : f32) outs(%b : memref<?xf32>)
  memref.copy %a, %b : memref<?xf32> to memref<?xf32>
  %sum = memref.alloc() : memref<f32>
  memref.store %zero, %sum[] : memref<f32>
  linalg.reduce ins(%b : memref<?xf32>) outs(%sum : memref<f32>) dimensions = [0]
    (%p: f32, %q: f32) {
      %u = arith.addf %p, %q : f32
      linalg.yield %u : f32
    }
  %r = bufferization.to_tensor %sum restrict : memref<f32> to tensor<f32>
  return %r : tensor<f32>
}
"""
claim("memref.copy between dynamic sizes", copied, [torch.tensor([3, 5])],
      "in.mlir:14:3: dim 0 of the source is 3, not the target's",
      [torch.tensor([5, 5])], torch.tensor(5.0))

# %a: n[0] ones.
ones_of_n = """  %c0 = arith.constant 0 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %v : i64 to index
  %one = arith.constant 1.0 : f32
  %a = tensor.splat %one[%s] : tensor<?xf32>
"""
reshaped = """func.func @f(%x: tensor<5xf32>, %n: tensor<1xi64>) -> tensor<2x4xf32> {
""" + ones_of_n + """  %shape = arith.constant dense<[2, 4]> : tensor<2xi64>
  %r = tensor.reshape %a(%shape) : (tensor<?xf32>, tensor<2xi64>) -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}
"""
claim("tensor.reshape of a dynamic size", reshaped, [xs, torch.tensor([3])],
      "in.mlir:8:8: the source has 3 elements, not 8 (the result type's)",
      [xs, torch.tensor([8])], torch.ones(2, 4))
concatenated = """func.func @f(%x: tensor<5xf32>, %n: tensor<1xi64>) -> tensor<8xf32> {
""" + ones_of_n + """  %r = tensor.concat dim(0) %x, %a : (tensor<5xf32>, tensor<?xf32>) -> tensor<8xf32>
  return %r : tensor<8xf32>
}
"""
claim("tensor.concat of a dynamic size", concatenated, [xs, torch.tensor([2])],
      "in.mlir:7:8: the operands' sizes along dim 0 add up to 7, not 8 (the "
      "result type's)", [xs, torch.tensor([3])], torch.cat([xs, torch.ones(3)]))
# A concat whose result is dynamic along its dim: a checked concat is
# copied out at its own size, the operands' sum (it was copied at operand
# #0's: a wrong sum, and past the copy for 1000 rows).
concatenated_rows = """func.func @f(%x: tensor<2x3xf32>, %n: tensor<1xi64>) -> tensor<f32> {
  %c0 = arith.constant 0 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %v : i64 to index
  %one = arith.constant 1.0 : f32
  %a = tensor.splat %one[%s, %s] : tensor<?x?xf32>
  %r = tensor.concat dim(0) %x, %a : (tensor<2x3xf32>, tensor<?x?xf32>) -> tensor<?x3xf32>
  %z = arith.constant dense<0.0> : tensor<f32>
  %sum = linalg.reduce ins(%r : tensor<?x3xf32>) outs(%z : tensor<f32>) dimensions = [0, 1]
    (%p: f32, %q: f32) {
      %u = arith.addf %p, %q : f32
      linalg.yield %u : f32
    }
  return %sum : tensor<f32>
}
"""
claim("tensor.concat along a dynamic dim", concatenated_rows,
      [torch.zeros(2, 3), torch.tensor([4])],
      "in.mlir:7:8: dim 1 of operand #1 is 4, not 3 (the result type's)",
      [torch.zeros(2, 3), torch.tensor([3])], torch.tensor(9.0))
# An atomic update at an index from data (it wrote past the buffer).
atomic = """func.func @f(%x: tensor<5xf32>, %n: tensor<1xi64>) -> tensor<5xf32> {
  %c0 = arith.constant 0 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %v : i64 to index
  %m = bufferization.to_buffer %x : tensor<5xf32> to memref<5xf32>
  %copy = memref.alloc() : memref<5xf32>
  memref.copy %m, %copy : memref<5xf32> to memref<5xf32>
  %one = arith.constant 1.0 : f32
  %old = memref.atomic_rmw addf %one, %copy[%s] : (f32, memref<5xf32>) -> f32
  %r = bufferization.to_tensor %copy restrict : memref<5xf32> to tensor<5xf32>
  return %r : tensor<5xf32>
}
"""
claim("memref.atomic_rmw at an index from data", atomic,
      [xs, torch.tensor([100000000])],
      "in.mlir:9:10: index 100000000 is out of bounds for size 5",
      [xs, torch.tensor([2])], xs + torch.tensor([0, 0, 1.0, 0, 0]))

# bufferization.alloc_tensor sized from data, like tensor.empty (a
# negative size made an empty tensor silently).
allocated = """func.func @f(%x: tensor<5xf32>, %n: tensor<1xi64>) -> tensor<f32> {
  %c0 = arith.constant 0 : index
  %v = tensor.extract %n[%c0] : tensor<1xi64>
  %s = arith.index_cast %v : i64 to index
  %a = bufferization.alloc_tensor(%s) : tensor<?xf32>
  %one = arith.constant 1.0 : f32
  %f = linalg.fill ins(%one : f32) outs(%a : tensor<?xf32>) -> tensor<?xf32>
""" + sum_of("%f")
claim("bufferization.alloc_tensor sized from data", allocated,
      [xs, torch.tensor([-5])], "in.mlir:5:8: negative size -5",
      [xs, torch.tensor([3])], torch.tensor(3.0))

c.finish()
