# topk and kthvalue against PyTorch. Values always match torch.topk /
# torch.kthvalue; indices follow ops.md's tie rule (lowest index wins,
# equal values listed by ascending index), which the reference computes
# with a stable sort (torch.sort also orders NaN above every number).
# Small k (sorted insertion; a buffer compacted by a branch-free
# quickselect), short rows with small k (vertical selection), short rows
# with many winners (direct selection) and large k
# (radix selection), every dim, largest and
# smallest, NaN, ties, i64/f64, rank 0, k = 0 and k = n.
# RUN: %python %s
import torch

from kiln_testing import Checker, ttype

torch.manual_seed(2)
c = Checker("selection")


def topk_ref(x, k, dim, largest):
    if x.dim() == 0:
        return x.clone(), torch.tensor(0)
    values, indices = torch.sort(x, dim=dim, descending=largest, stable=True)
    return (values.narrow(dim, 0, k).contiguous(),
            indices.narrow(dim, 0, k).contiguous())


def topk_ir(x, k, dim, largest, v, i):
    attrs = f"{{k = {k} : i64, dim = {dim} : i64, largest = {str(largest).lower()}}}"
    return (f"func.func @f(%x: {ttype(x)}) -> ({ttype(v)}, {ttype(i)}) {{\n"
            f"  %v, %i = kiln.topk %x {attrs} : {ttype(x)}\n"
            f"  return %v, %i : {ttype(v)}, {ttype(i)}\n}}\n")


def check_topk(label, x, k, dim=-1, largest=True, extra_args=()):
    v, i = topk_ref(x, k, dim, largest)
    tv, _ = torch.topk(x, k, dim=dim, largest=largest)
    assert torch.equal(v.nan_to_num(7e7), tv.nan_to_num(7e7)), "reference mismatch"
    c.check(f"topk {label} k={k} dim={dim} largest={largest} {' '.join(extra_args)}",
            topk_ir(x, k, dim, largest, v, i), [x], [v, i],
            extra_args=list(extra_args))


x = torch.randn(6, 300)
for k in (1, 5, 64, 65, 200, 300, 0):
    for largest in (True, False):
        check_topk("random", x, k, -1, largest)
check_topk("dim 0", torch.randn(50, 7), 10, 0)
check_topk("middle dim", torch.randn(3, 40, 5), 7, 1, False)
check_topk("middle dim large k", torch.randn(3, 100, 5), 90, 1)
# Strided rows are copied 16 adjacent rows at a time: blocks cut by the end
# of the inner dim (37 = 2 x 16 + 5), by thread boundaries (7 threads) and
# by the outer dim; ties across the block's rows.
strided = torch.randint(-20, 20, (300, 37)).float()
strided3 = torch.randint(-20, 20, (3, 200, 21)).float()
# Blocks of up to 8 lines (128 f32 or 64 f64/i64 columns, 2 MB at most),
# whole lines transposed in registers 16 (8) rows at a time, the rows after
# the last 16 and the columns after the last whole line one by one: 150 =
# 128 + 16 + 6 columns over 300 = 18 x 16 + 12 rows; f64 and i64 77 = 64 +
# 8 + 5 over 203; a 3-D over its middle dim; 9000 rows of 40 (2 lines of a
# 2 MB block).
wide_strided = [("f32", torch.randint(-20, 20, (300, 150)).float(), 0),
                ("f64", torch.randint(-20, 20, (203, 77)).double(), 0),
                ("i64", torch.randint(-20, 20, (203, 77)), 0),
                ("3-D", torch.randint(-20, 20, (2, 50, 40)).float(), 1),
                ("long", torch.randint(-99, 99, (9000, 40)).float(), 0)]
wide_strided[0][1][17, 3] = wide_strided[0][1][290, 140] = float("nan")
for label, t, dim in wide_strided:
    for threads in ("--threads=1", "--threads=2"):
        check_topk(f"wide strided blocks {label}", t, 5, dim, True, [threads])
        check_topk(f"wide strided blocks {label}", t, 3, dim, False, [threads])
for threads in ("--threads=1", "--threads=2", "--threads=7"):
    check_topk("strided blocks", strided, 5, 0, True, [threads])
    check_topk("strided blocks, radix", strided, 100, 0, False, [threads])
    check_topk("strided blocks, outer dim", strided3, 9, 1, True, [threads])
ties = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, 3.0], [0.0, -0.0, 0.0, -0.0, -0.0, 0.0],
                     [5.0, -1.0, 5.0, -1.0, 5.0, -1.0]])
for k in (1, 2, 3, 6):
    for largest in (True, False):
        check_topk("ties", ties, k, -1, largest)
nan = torch.tensor([[1.0, float("nan"), 3.0, float("nan"), -float("inf"), 2.0]])
for k in (1, 2, 3, 6):
    for largest in (True, False):
        check_topk("nan", nan, k, -1, largest)
big_ties = torch.randint(0, 4, (4, 500)).float()
check_topk("many ties large k", big_ties, 300)
check_topk("many ties small k", big_ties, 20, -1, False)
# k > 64 takes the radix-selection path for f32: NaNs, infinities, signed
# zeros and heavy ties there too, on rows and on a strided dim.
radix = torch.randn(4, 700)
radix[0, ::7] = float("nan")
radix[1, :400] = 0.0
radix[1, 400:450] = -0.0
radix[2, ::3] = float("inf")
radix[3, ::5] = -float("inf")
for largest in (True, False):
    check_topk("radix", radix, 150, -1, largest)
    check_topk("radix strided", radix.t().contiguous(), 100, 0, largest)
check_topk("i64", torch.randint(-1000, 1000, (5, 80)), 10)
check_topk("f64", torch.randn(5, 80, dtype=torch.float64), 70, -1, False)
check_topk("rank-0", torch.tensor(2.5), 1, 0)
# Many rows exercise the parallel split (the same answer for any threads).
many = torch.randn(257, 64)
v, i = topk_ref(many, 8, -1, True)
for threads in (1, 2, 7):
    c.check(f"topk threads={threads}", topk_ir(many, 8, -1, True, v, i),
            [many], [v, i], extra_args=[f"--threads={threads}"])


def tied_rows(shape, nan_every, zero_every):
    """Rows of a few integer values with NaNs and -0.0 sprinkled in."""
    rows = torch.randint(-3, 4, shape).float()
    rows[:, ::nan_every] = float("nan")
    rows[:, 1::zero_every] = -0.0
    return rows


# f32 with k <= 32 keeps its best k sorted and inserts each candidate: long
# rows with heavy ties, NaNs and signed zeros, k at the boundary, and one
# long row split into segments whose collectors merge (--threads=2). k
# from 17 to 32 in rows shorter than 32 k takes the buffer compacted by
# nth_element instead (SelectionPlan.h useSortedCollector); k = 16 stays
# sorted: both sides of the boundary in short rows.
tied = tied_rows((6, 5000), 97, 13)
for label, rows, ks in (("long tied rows", tied, (1, 16, 32, 33)),
                        ("short tied rows", tied_rows((40, 512), 37, 11),
                         (16, 17, 24, 32))):
    for k in ks:
        for largest in (True, False):
            check_topk(label, rows, k, -1, largest)
# Short f32 rows with many winners take direct selection (SelectionPlan.h
# useDirectSelection: k > 16, n <= 16 k, n <= 1024): every element packed,
# a branch-free quickselect, then a sort by rank (k <= 64) or std::sort.
# Heavy ties, NaNs and signed zeros; the bounds of the plan (n = 16 k, n =
# 1024, k = n, k = n - 1); sorted and reversed rows (the pivots' worst
# orders); a strided dim; several threads.
direct = tied_rows((24, 1024), 29, 7)
ordered = torch.cat([torch.arange(1024.0).unsqueeze(0),
                     torch.arange(1024.0).flip(0).unsqueeze(0),
                     (torch.arange(1024) % 17).float().unsqueeze(0)])
for label, rows, ks in (("direct, tied rows of 1024", direct, (64, 100, 1000)),
                        ("direct, n = 16 k", direct[:, :272], (17,)),
                        ("direct, k = n and n - 1", direct[:5, :40], (40, 39)),
                        ("direct, ordered rows", ordered, (64, 65, 512))):
    for k in ks:
        for largest in (True, False):
            for threads in ("--threads=1", "--threads=3"):
                check_topk(label, rows, k, -1, largest, [threads])
check_topk("direct, strided dim 0", tied_rows((300, 9), 31, 5), 40, 0, False)
# f64 and i64 take direct selection too, on (key, ~index) pairs of 64-bit
# halves (WideWord): NaN, signed zeros, ties, extremes of i64.
wide_f64 = tied_rows((12, 700), 23, 9).double()
wide_f64[3, 5] = float("inf")
wide_f64[4, 6] = -float("inf")
wide_i64 = torch.randint(-4, 5, (12, 700))
wide_i64[0, :3] = torch.tensor([2**63 - 1, -2**63, -2**63])
for label, rows in (("direct f64", wide_f64), ("direct i64", wide_i64)):
    for k in (17, 64, 700):
        for largest in (True, False):
            check_topk(label, rows, k, -1, largest, ["--threads=2"])
    check_topk(label + ", strided dim 0", rows.t().contiguous(), 11, 0)
# k <= 16 in rows up to a length that grows with k takes bound selection
# (SelectionPlan.h useBoundSelection; f32 rows of at most 128 with k <= 8
# vertical selection since the fiftieth session, below): the k-th best of 32 lane maxima
# bounds the answer, the elements not worse than it are ranked (or, when
# more than 64 reach it, packed and selected). Distinct values (the ranked
# path), rows shorter than the 32 lanes and not a multiple of them, NaNs
# (always candidates; lanes of nothing but NaN, which the first pass reads
# as infinity when smallest), infinities, signed zeros at the bound, the i64
# extremes, ties past the rank limit, both sides of the length limit.
def bound_rows(dtype, rows, n):
    if dtype == torch.int64:
        return torch.randperm(rows * n).reshape(rows, n) - rows * n // 2
    return torch.randn(rows, n, dtype=dtype)


for dtype in (torch.float32, torch.float64, torch.int64):
    for n, ks in ((5, (1, 5)), (31, (3, 16)), (33, (16,)), (100, (1, 7, 17)),
                  (63, (32,)), (200, (24, 32)), (4097, (2, 16, 32))):
        x = bound_rows(dtype, 6, n)
        for k in ks:
            for largest in (True, False):
                check_topk(f"bound {dtype}", x, k, -1, largest, ["--threads=2"])
special = torch.randn(8, 96)
special[0, :] = float("nan")
special[1, [(l + 32 * j) for l in range(16) for j in range(3)]] = float("nan")
special[2, ::5] = float("inf")
special[3, 1::4] = -float("inf")
special[4, :] = 0.0
special[4, ::3] = -0.0
special[5, :40] = 3.0
special[6, 7] = float("nan")
special[7, ::2] = 0.0
special[7, 1::4] = -0.0
for dtype in (torch.float32, torch.float64):
    for k in (1, 4, 16, 17, 32):
        for largest in (True, False):
            check_topk(f"bound special {dtype}", special.to(dtype), k, -1, largest)
extremes = torch.randint(-50, 50, (4, 64))
extremes[0, :] = -2**63
extremes[1, ::3] = 2**63 - 1
extremes[2, 5] = -2**63
extremes[3, :] = 2**63 - 1
for k in (1, 16, 30):
    for largest in (True, False):
        check_topk("bound i64 extremes", extremes, k, -1, largest)
# The length limit: k = 16 over rows of 32768 is bound, k = 15 the collector;
# above k = 16 f32 rows of 8 k are bound, shorter ones direct selection.
edge = torch.randn(2, 32768)
edge[1, ::1000] = float("nan")
for k in (15, 16):
    check_topk("bound length limit", edge, k, -1, k == 15)
short_edge = tied_rows((5, 200), 19, 7)
for k in (24, 25):
    check_topk("bound or direct", short_edge, k, -1, False)
# Ties at the bound: more than 128 candidates, packed and selected.
for k in (5, 32):
    check_topk("bound, ties past the rank limit", torch.randint(0, 3, (3, 900)).float(), k)
long_row = torch.randint(0, 50, (1, 1 << 17)).float()
long_row[0, 5::1001] = float("nan")
for largest in (True, False):
    v, i = topk_ref(long_row, 24, -1, largest)
    for threads in (1, 2):
        c.check(f"topk one long tied row in segments k=24 largest={largest} "
                f"threads={threads}", topk_ir(long_row, 24, -1, largest, v, i),
                [long_row], [v, i], extra_args=[f"--threads={threads}"])


def kth_ref(x, k, dim, keepdim):
    values, _ = torch.sort(x, dim=dim, stable=True)
    v = values.select(dim, k - 1)
    # Lowest index holding the k-th value (ops.md); NaN equals NaN.
    xs = x.movedim(dim, -1)
    vv = v.unsqueeze(-1)
    same = (xs == vv) | (torch.isnan(xs) & torch.isnan(vv))
    idx = same.int().argmax(-1)
    if keepdim:
        v = v.unsqueeze(dim)
        idx = idx.unsqueeze(dim)
    return v.contiguous(), idx.contiguous()


def check_kth(label, x, k, dim=-1, keepdim=False, extra_args=()):
    v, i = kth_ref(x, k, dim, keepdim)
    tv, _ = torch.kthvalue(x, k, dim=dim, keepdim=keepdim)
    assert torch.equal(v.nan_to_num(7e7), tv.nan_to_num(7e7)), "reference mismatch"
    attrs = f"{{k = {k} : i64, dim = {dim} : i64{', keepdim = true' if keepdim else ''}}}"
    ir = (f"func.func @f(%x: {ttype(x)}) -> ({ttype(v)}, {ttype(i)}) {{\n"
          f"  %v, %i = kiln.kthvalue %x {attrs} : {ttype(x)}\n"
          f"  return %v, %i : {ttype(v)}, {ttype(i)}\n}}\n")
    c.check(f"kthvalue {label} k={k} dim={dim} keepdim={keepdim}", ir, [x],
            [v, i], extra_args=list(extra_args))


x = torch.randn(5, 33)
for k in (1, 2, 17, 33):
    check_kth("random", x, k)
check_kth("dim 0 keepdim", x, 3, 0, True)
check_kth("ties", torch.tensor([[1.0, 1.0, 1.0], [3.0, 1.0, 2.0]]), 2)
check_kth("ties 2", torch.tensor([3.0, 1.0, 2.0, 1.0, 1.0]), 3)
check_kth("signed zeros", torch.tensor([1.0, -0.0, 0.0, -1.0, -0.0]), 3)
check_kth("nan", torch.tensor([float("nan"), 1.0, float("nan"), 0.5]), 3)
check_kth("i64", torch.randint(-5, 5, (3, 12)), 4, -1, True)
for k in (1, 7, 32):
    check_kth("long tied rows", tied, k)
# Direct selection (k > 16, n <= 16 k, n <= 1024): the k smallest packed
# and selected, the k-th reported at the lowest index holding its value.
for k in (17, 64, 500, 1023, 1024):
    check_kth("direct, tied rows of 1024", direct, k,
              extra_args=["--threads=2"])
check_kth("direct, ordered rows", ordered, 300)
check_kth("direct, strided dim 0", tied_rows((200, 5), 17, 3), 100, 0, True)
for label, t, dim in wide_strided:
    check_kth(f"wide strided blocks {label}", t, t.shape[dim] // 3, dim, False,
              ["--threads=2"])
for label, rows in (("direct f64", wide_f64), ("direct i64", wide_i64)):
    for k in (20, 350, 700):
        check_kth(label, rows, k, extra_args=["--threads=2"])
# Bound selection (k <= 16): the k-th smallest's key reached by the
# candidates, reported at the first of them holding it.
for dtype in (torch.float32, torch.float64, torch.int64):
    for k in (1, 6, 16, 17, 32):
        check_kth(f"bound {dtype}", bound_rows(dtype, 9, 300), k,
                  extra_args=["--threads=2"])
        check_kth(f"bound special {dtype}", special.to(dtype), k)
for k in (1, 16):
    check_kth("bound i64 extremes", extremes, k)
# f32 rows of at most 128 (512 along a strided dim) with k <= 8 take
# vertical selection (SelectionPlan.h useVerticalSelection: 16 rows side
# by side, each element's (key, index) word inserted into k sorted
# vectors): many of the cases above already do; here rows along a strided
# dim read in place and a block cut by the end of the inner dim (37 = 2 x
# 16 + 5, copied with its lanes past the rows zero), by the outer dim and
# by thread boundaries (7 threads), contiguous rows (copied side by side,
# 300 = 18 x 16 + 12 rows), heavy ties with NaN and signed zeros, k = n,
# the length limits (128 contiguous and 129, which takes bound selection;
# 512 strided and 513), topk and kthvalue.
vertical_strided = tied_rows((3, 37, 21), 5, 3).transpose(1, 2).contiguous()
vertical_rows = tied_rows((300, 21), 7, 4)
vertical_ordered = torch.arange(512.0).repeat(16, 1).t().contiguous()
vertical_ordered[::3] = -vertical_ordered[::3]
for label, t, dim in (("vertical strided", vertical_strided, 1),
                      ("vertical strided dim 0", tied_rows((21, 300), 5, 3),
                       0),
                      ("vertical rows", vertical_rows, 1),
                      ("vertical random strided", torch.randn(2, 512, 40), 1),
                      ("vertical strided limit", torch.randn(513, 20), 0),
                      ("vertical ordered strided", vertical_ordered, 0),
                      ("vertical rows limit", torch.randn(40, 128), 1),
                      ("past the vertical rows limit", torch.randn(40, 129),
                       1)):
    for k in (1, 3, 8):
        for threads in ("--threads=1", "--threads=7"):
            for largest in (True, False):
                check_topk(label, t, k, dim, largest, [threads])
            check_kth(label, t, k, dim, False, [threads])
check_topk("vertical k = n", tied_rows((40, 8), 3, 2), 8, 1, False)
check_kth("vertical k = n", tied_rows((8, 40), 3, 2), 8, 0, True)


def tied_integers(shape):
    """Rows of a few integer values with both extremes of i64 sprinkled in
    (their keys are 0 and all ones, the least and the greatest)."""
    rows = torch.randint(-3, 4, shape)
    rows[:, ::5] = torch.iinfo(torch.int64).min
    rows[:, 1::7] = torch.iinfo(torch.int64).max
    return rows


# f64 and i64 take vertical selection too since the fifty-first session
# (64-bit keys and positions in vectors of their own, the first k sorted
# in before the rest), for rows with n (k + 2) at most 480 (1024 strided):
# the same blocks, NaN and signed zeros in f64, ties and the extremes in
# i64, both sides of both limits (k = 6: rows of 60 and 61, strided ones of
# 128 and 129), k = n.
for dtype in (torch.float64, torch.int64):
    def rows(shape, nan_every=5, zero_every=3):
        if dtype == torch.int64:
            return tied_integers(shape)
        return tied_rows(shape, nan_every, zero_every).double()
    for label, t, dim, ks in (
            ("strided", rows((3, 37, 21)).transpose(1, 2).contiguous(), 1,
             (1, 3, 8)),
            ("strided dim 0", rows((21, 300)), 0, (1, 3, 8)),
            ("rows", rows((300, 21), 7, 4), 1, (1, 3, 8)),
            ("strided limit", rows((20, 128)).t().contiguous(), 0, (6,)),
            ("past the strided limit", rows((20, 129)).t().contiguous(), 0,
             (6,)),
            ("rows limit", rows((40, 60)), 1, (6,)),
            ("past the rows limit", rows((40, 61)), 1, (6,))):
        for k in ks:
            for threads in ("--threads=1", "--threads=7"):
                for largest in (True, False):
                    check_topk(f"vertical {dtype} {label}", t, k, dim,
                               largest, [threads])
                check_kth(f"vertical {dtype} {label}", t, k, dim, False,
                          [threads])
    check_topk(f"vertical {dtype} k = n", rows((40, 8), 3, 2), 8, 1, False)
    check_kth(f"vertical {dtype} k = n", rows((8, 40), 3, 2), 8, 0,
              True)
    for shape in ((3, 5, 0), (0, 5)):
        check_topk(f"vertical {dtype}, no rows", torch.zeros(shape, dtype=dtype),
                   2, 1, False)
# No rows: an empty dim after the selected one (no inner positions: the
# rows were once taken for contiguous ones, read and written past the
# empty buffers) or before it.
for shape in ((3, 5, 0), (0, 5), (2, 0, 5, 4)):
    empty = torch.zeros(shape)
    dim = 1 if shape != (2, 0, 5, 4) else 2
    check_topk("vertical, no rows", empty, 2, dim, False)
    check_kth("vertical, no rows", empty, 2, dim)
# Large k (more than 64 and at least n / 64) over as many rows as threads:
# radix selection (a bucket histogram, then nth_element in the k-th's
# bucket, then the lowest index holding the key): ties, NaNs, signed zeros,
# a strided dim, k = n. Two threads: at most as many as rows.
few = torch.randint(-3, 4, (8, 1000)).float()
few[few == 0] = torch.tensor([0.0, -0.0]).repeat(4000)[:int((few == 0).sum())]
few[2, ::7] = float("nan")
for k in (65, 500, 990, 1000):
    check_kth("radix, few distinct values, NaNs, +-0", few, k,
              extra_args=["--threads=2"])
check_kth("radix, random", torch.randn(4, 5000), 2500, extra_args=["--threads=2"])
check_kth("radix, strided dim 0", torch.randn(3000, 3), 1500, 0,
          extra_args=["--threads=2"])
check_kth("radix, keepdim", torch.randn(2, 200), 100, 1, True,
          extra_args=["--threads=2"])
# A first-level bucket of more than 2^14 keys is not collected: two more
# histogram levels find the key exactly, then kthvalue takes its lowest
# position and topk the keys above it and its first ties. Rows of 2^17 of
# three values (each bucket ~43000), all equal, a third NaN, +-0 mixed;
# one row (fewer rows than threads: radix all the same, since the
# forty-fifth session) and longer rows whose keys are not stored (2^21).
three = torch.randint(0, 3, (2, 1 << 17)).float()
equal = torch.ones(1, 1 << 17)
nans = torch.randn(2, 1 << 17)
nans[:, ::3] = float("nan")
zeros = torch.where(torch.rand(2, 1 << 17) < 0.5, torch.tensor(0.0),
                    torch.tensor(-0.0))
zeros[0, 5] = 1.0
halves = torch.randint(0, 2, (1, 1 << 21)).float()
for threads in ("--threads=1", "--threads=2"):
    for largest in (True, False):
        check_topk("radix, large buckets: three values", three, 5000, -1,
                   largest, [threads])
        check_topk("radix, large buckets: NaNs", nans, 50000, -1, largest,
                   [threads])
        check_topk("radix, large buckets: +-0", zeros, 4000, -1, largest,
                   [threads])
    check_topk("radix, large buckets: equal", equal, 3000, -1, True, [threads])
    check_topk("radix, large buckets: 2^21 of two values", halves, 40000, -1,
               True, [threads])
    for k in (1, 3000, 60000, 1 << 17):
        check_kth("radix, large buckets: equal", equal, k, extra_args=[threads])
    check_kth("radix, large buckets: three values", three, 60000,
              extra_args=[threads])
    check_kth("radix, large buckets: NaNs", nans, 100000, extra_args=[threads])
    check_kth("radix, large buckets: +-0", zeros, 70000, extra_args=[threads])
    for k in (1 << 20, (1 << 20) + 1):
        check_kth("radix, large buckets: 2^21 of two values", halves, k,
                  extra_args=[threads])
# Fewer rows than threads, of 2^16 or more: topk's and kthvalue's passes
# split across the threads (the same counts and candidates in row order,
# so the same answer at any thread count): the bucket collected (normal
# values), the exact key (three values, NaNs; topk then the keys above it
# and its first ties), at 1, 2 and 7 threads; 70000 winners (2^16 or more)
# sorted by the threads' sample sort.
long_normal = torch.randn(1, (1 << 21) + 77)
long_three = torch.randint(0, 3, (2, (1 << 21) + 77)).float()
long_nans = torch.randn(3, (1 << 21) + 77)
long_nans[:, ::5] = float("nan")
for threads in ("--threads=1", "--threads=2", "--threads=7"):
    for k in (100, 1 << 20, (1 << 21) + 74):
        check_kth("radix across threads: normal", long_normal, k,
                  extra_args=[threads])
    check_kth("radix across threads: three values", long_three, 1 << 20,
              extra_args=[threads])
    check_kth("radix across threads: NaNs", long_nans, (1 << 21) - 9,
              extra_args=[threads])
    for largest in (True, False):
        for k in (5000, 70000):
            check_topk("radix across threads: normal", long_normal[:, :(1 << 17) + 77],
                       k, -1, largest, [threads])
        check_topk("radix across threads: three values",
                   long_three[:, :(1 << 17) + 77], 40000, -1, largest, [threads])
        check_topk("radix across threads: NaNs", long_nans[:, :(1 << 17) + 77],
                   30000, -1, largest, [threads])
    check_kth("radix across threads: 2^17 + 77", long_normal[:, :(1 << 17) + 77],
              70000, extra_args=[threads])

# f64 and i64 with k > 64 and at least n / 128 (not direct) take sampled
# selection (SelectionPlan.h useSampledSelection): sample keys bound the
# k-th best, one pass stores the keys between the bounds and counts the
# ties at them. Normal rows, few distinct values (the k-th among the ties
# at a bound), NaN, infinities, signed zeros, the i64 extremes, an equal
# row, both ends of k (kthvalue counts from the nearer end), a strided dim.
# Rows against the sample: the sampled positions (Selection.cpp
# samplePosition: one in each of n / 32 stretches, at a hashed offset) hold
# every large value, so the bound from them leaves fewer than k above it
# (for topk largest and for the kthvalue counted from the top), or only
# small values, so that more keys lie above it than the band takes -- both
# sent to the collector, the same answer.
def sampled_rows(dtype, rows, n):
    if dtype == torch.int64:
        return torch.randint(-10**12, 10**12, (rows, n))
    return torch.randn(rows, n, dtype=dtype)


def sample_positions(n):
    m = min(n, max(256, min(16384, n // 32)))
    return [j * n // m + (((j * 0x9E3779B97F4A7C15) % 2**64) >> 32) % (n // m)
            for j in range(m)]


def against_sample(dtype, n, large_sampled):
    x = -(torch.rand(2, n, dtype=torch.float64) + 1.0)
    x[:, sample_positions(n)] += 3.0
    if not large_sampled:
        x = -x
    return x.to(dtype) if dtype != torch.int64 else (x * 1e6).long()


for dtype in (torch.float64, torch.int64):
    few_values = torch.randint(-3, 4, (6, 3000)).to(dtype)
    mixed = sampled_rows(dtype, 4, 2000)
    if dtype == torch.float64:
        few_values[few_values == 0] = torch.tensor([0.0, -0.0], dtype=dtype)[
            torch.randint(0, 2, (int((few_values == 0).sum()),))]
        few_values[1, ::11] = float("nan")
        mixed[0, ::13] = float("nan")
        mixed[1, ::7] = float("inf")
        mixed[2, ::5] = -float("inf")
        mixed[3, :700] = 0.0
    else:
        mixed[0, ::13] = 2**63 - 1
        mixed[1, ::7] = -2**63
    for threads in ("--threads=1", "--threads=3"):
        for largest in (True, False):
            for k in (65, 1000, 2999):
                check_topk(f"sampled {dtype} few values", few_values, k, -1,
                           largest, [threads])
            check_topk(f"sampled {dtype} specials", mixed, 300, -1, largest,
                       [threads])
            check_topk(f"sampled {dtype} normal", sampled_rows(dtype, 5, 9000),
                       4000, -1, largest, [threads])
            for against in (True, False):
                check_topk(f"sampled {dtype} against the sample", against_sample(
                    dtype, 8192, against), 256, -1, largest, [threads])
        for k in (65, 400, 1000, 1001, 1500, 2000, 2936):
            check_kth(f"sampled {dtype} few values", few_values, k,
                      extra_args=[threads])
        for k in (70, 1100, 1999):
            check_kth(f"sampled {dtype} specials", mixed, k, extra_args=[threads])
        for k in (256, 8192 - 255):
            for against in (True, False):
                check_kth(f"sampled {dtype} against the sample",
                          against_sample(dtype, 8192, against), k,
                          extra_args=[threads])
    check_topk(f"sampled {dtype} equal row", torch.full((2, 5000), 7, dtype=dtype),
               2000)
    check_kth(f"sampled {dtype} equal row", torch.full((2, 5000), 7, dtype=dtype),
              2000)
    check_topk(f"sampled {dtype} strided dim 0", sampled_rows(dtype, 3000, 3), 100,
               0, False, ["--threads=2"])
    check_kth(f"sampled {dtype} strided dim 0", sampled_rows(dtype, 3000, 3),
              2000, 0, extra_args=["--threads=2"])
# Fewer rows than threads, 2^17 + 96 long: the pass split into parts run by
# the threads (their counts add up, their words gathered in row order; 7
# parts of 18739 and the rest at 7 threads), at 1, 2 and 7 threads: normal
# rows, few values (ties at the bound), rows against the sample both ways;
# 70000 winners (2^16 or more) sorted by the threads' sample sort.
long_n = (1 << 17) + 96
long_wide = [("normal", sampled_rows(torch.float64, 2, long_n)),
             ("few values", torch.randint(0, 5, (1, long_n))),
             ("against the sample", against_sample(torch.float64, long_n, True)),
             ("against the sample, small sampled",
              against_sample(torch.int64, long_n, False)[:1])]
for threads in ("--threads=1", "--threads=2", "--threads=7"):
    for label, rows in long_wide:
        for largest in (True, False):
            for k in (5000, 70000):
                check_topk(f"sampled in parts, {label}", rows, k, -1, largest,
                           [threads])
        for k in (3000, 1 << 16, long_n - 7):
            check_kth(f"sampled in parts, {label}", rows, k,
                      extra_args=[threads])

# f64 and i64 rows the collector takes (k up to 64, or below n / 128, in
# rows past the bound selection's lengths) pack (key, ~index) words of
# 64-bit halves (PackedCollector): kept sorted (k <= 16, and up to 32 in
# long rows) or a buffer compacted by selectGreatest; one row of 2^17 per
# thread or fewer, split into segments whose collectors merge (2 and 7
# threads). Ties, NaN, infinities, signed zeros, the i64 extremes.
wide_long = tied_rows((2, 1 << 17), 97, 13).double()
wide_long[0, 3::1000] = float("inf")
wide_long_i = torch.randint(-3, 4, (1, 1 << 17))
wide_long_i[0, ::777] = 2**63 - 1
wide_long_i[0, 5::555] = -2**63
for threads in ("--threads=1", "--threads=2", "--threads=7"):
    for label, rows in (("f64", wide_long), ("i64", wide_long_i)):
        for k in (5, 24, 64, 300):
            for largest in (True, False):
                check_topk(f"collector {label}", rows, k, -1, largest, [threads])
        check_kth(f"collector {label}", rows, 200, extra_args=[threads])

c.finish()
