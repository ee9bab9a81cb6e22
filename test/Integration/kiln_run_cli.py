# kiln-run's command line and exit codes (tools.md): bad options, bad .npy
# files and mismatched inputs exit 1 with a message naming the problem;
# out-of-range indices exit 2 naming the op, its location and the index;
# --print matches PyTorch's printing; --stats prints one JSON line.
# RUN: %python %s
import json
import os
import re
import subprocess

import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cuda_probe import has_cuda_device  # noqa: E402
from scratch import exit_test, scratch_dir  # noqa: E402

KILN_RUN = os.environ["KILN_RUN"]
tmp = scratch_dir("kiln-cli-")
failures = 0
cases = 0


def path(name):
    return os.path.join(tmp, name)


def write(name, text):
    with open(path(name), "w") as f:
        f.write(text)
    return path(name)


def run(*args):
    proc = subprocess.run([KILN_RUN, *args], capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def expect(label, args, code, pattern):
    global failures, cases
    cases += 1
    got, out, err = run(*args)
    if got != code or not re.search(pattern, err + out):
        failures += 1
        print(f"FAIL {label}: expected exit {code} matching {pattern!r}, got "
              f"exit {got}:\n{err}{out}")


gather = write("gather.mlir", """func.func @f(%x: tensor<2x10xf32>, %i: tensor<2x3xi64>) -> tensor<2x3xf32> {
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<2x10xf32>, tensor<2x3xi64>
  return %g : tensor<2x3xf32>
}
""")
x = path("x.npy")
np.save(x, np.zeros((2, 10), np.float32))
good = path("good_idx.npy")
np.save(good, np.array([[0, 9, 3], [1, 1, 2]], np.int64))
bad = path("bad_idx.npy")
np.save(bad, np.array([[0, 10, 3], [1, 1, 2]], np.int64))
neg = path("neg_idx.npy")
np.save(neg, np.array([[0, 1, 3], [1, -1, 2]], np.int64))

expect("gather ok", [gather, f"--input={x}", f"--input={good}"], 0, "")
expect("gather index too large", [gather, f"--input={x}", f"--input={bad}"], 2,
       r"kiln\.gather at .*gather\.mlir:2:8: index 10 is out of bounds for size 10")
expect("gather negative index", [gather, f"--input={x}", f"--input={neg}"], 2,
       r"kiln\.gather at .*gather\.mlir:2:8: index -1 is out of bounds")

# With several bad indices the first in row-major order is reported, for
# every thread count.
two_bad = path("two_bad.npy")
np.save(two_bad, np.array([[0, 1, 3], [11, 12, 2]], np.int64))
for threads in (1, 2, 5):
    expect(f"first bad index threads={threads}",
           [gather, f"--input={x}", f"--input={two_bad}", f"--threads={threads}"],
           2, r"index 11 is out of bounds for size 10")
two_bad_first_row = path("two_bad_row0.npy")
np.save(two_bad_first_row, np.array([[0, 1, 13], [11, 12, 2]], np.int64))
expect("first bad index row 0", [gather, f"--input={x}",
                                 f"--input={two_bad_first_row}", "--threads=2"],
       2, r"index 13 is out of bounds for size 10")

take = write("take.mlir", """func.func @f(%x: tensor<2x10xf32>, %i: tensor<2x3xi64>) -> tensor<2x3xf32> {
  %t = kiln.take %x, %i : tensor<2x10xf32>, tensor<2x3xi64>
  return %t : tensor<2x3xf32>
}
""")
far = path("far_idx.npy")
np.save(far, np.array([[0, -21, 3], [1, 1, 2]], np.int64))
expect("take negative ok", [take, f"--input={x}", f"--input={neg}"], 0, "")
expect("take out of range", [take, f"--input={x}", f"--input={far}"], 2,
       r"kiln\.take at .*take\.mlir:2:8: index -21 is out of bounds for size 20")

ce = write("ce.mlir", """func.func @f(%x: tensor<2x10xf32>, %t: tensor<2xi64>) -> tensor<f32> {
  %l = kiln.cross_entropy %x, %t : tensor<2x10xf32>, tensor<2xi64>
  return %l : tensor<f32>
}
""")
labels = path("labels.npy")
np.save(labels, np.array([3, 12], np.int64))
expect("cross_entropy bad class", [ce, f"--input={x}", f"--input={labels}"], 2,
       r"kiln\.cross_entropy at .*ce\.mlir:2:8: index 12 is out of bounds for size 10")

scatter = write("scatter.mlir", """func.func @f(%b: tensor<5xf32>, %i: tensor<3xi64>, %s: tensor<3xf32>) -> tensor<5xf32> {
  %r = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<5xf32>, tensor<3xi64>, tensor<3xf32>
  return %r : tensor<5xf32>
}
""")
b5 = path("b5.npy")
np.save(b5, np.zeros(5, np.float32))
i3 = path("i3.npy")
np.save(i3, np.array([0, 7, 1], np.int64))
s3 = path("s3.npy")
np.save(s3, np.ones(3, np.float32))
expect("scatter_add out of range", [scatter, f"--input={b5}", f"--input={i3}",
                                    f"--input={s3}"], 2,
       r"kiln\.scatter_add at .*scatter\.mlir:2:8: index 7 is out of bounds for size 5")

# Inputs that do not match the signature.
x32 = path("x64.npy")
np.save(x32, np.zeros((2, 10), np.float64))
expect("wrong dtype", [gather, f"--input={x32}", f"--input={good}"], 1,
       r"argument #0 of @f expects tensor<2x10xf32> but .*x64\.npy holds tensor<2x10xf64>")
wrong_shape = path("wrong_shape.npy")
np.save(wrong_shape, np.zeros((10, 2), np.float32))
expect("wrong shape", [gather, f"--input={wrong_shape}", f"--input={good}"], 1,
       r"argument #0 of @f expects tensor<2x10xf32> but .* holds tensor<10x2xf32>")
i32 = path("i32.npy")
np.save(i32, np.zeros((2, 3), np.int32))
expect("i32 for i64", [gather, f"--input={x}", f"--input={i32}"], 1,
       r"argument #1 of @f expects tensor<2x3xi64> but .* holds tensor<2x3xi32>")
expect("too few inputs", [gather, f"--input={x}"], 1,
       r"@f takes 2 argument\(s\) but 1 --input file\(s\) were given")
expect("missing input", [gather, f"--input={x}", "--input=/nonexistent.npy"], 1,
       r"/nonexistent\.npy: cannot read")

# Malformed .npy files.
raw = np.zeros((2, 10), np.float32)
header_ok = open(x, "rb").read()
with open(path("trunc.npy"), "wb") as f:
    f.write(header_ok[:-8])
expect("truncated", [gather, f"--input={path('trunc.npy')}", f"--input={good}"], 1,
       r"truncated \.npy data: expected 80 bytes, found 72")
with open(path("trunc_header.npy"), "wb") as f:
    f.write(header_ok[:20])
expect("truncated header", [gather, f"--input={path('trunc_header.npy')}",
                            f"--input={good}"], 1, r"truncated \.npy header")
np.save(path("fortran.npy"), np.asfortranarray(np.zeros((2, 10), np.float32)))
expect("fortran order", [gather, f"--input={path('fortran.npy')}", f"--input={good}"], 1,
       r"Fortran-order arrays are not supported")
np.save(path("big.npy"), np.zeros((2, 10), ">f4"))
expect("big endian", [gather, f"--input={path('big.npy')}", f"--input={good}"], 1,
       r"big-endian data \('>f4'\) is not supported")
np.save(path("obj.npy"), np.array([None, 1], dtype=object), allow_pickle=True)
expect("object array", [gather, f"--input={path('obj.npy')}", f"--input={good}"], 1,
       r"object arrays are not supported")
np.save(path("u8.npy"), np.zeros((2, 10), np.uint8))
expect("unsupported dtype", [gather, f"--input={path('u8.npy')}", f"--input={good}"], 1,
       r"unsupported dtype '\|u1'")
write("notnpy.npy", "hello")
expect("not npy", [gather, f"--input={path('notnpy.npy')}", f"--input={good}"], 1,
       r"not a \.npy file")
with open(path("extra.npy"), "wb") as f:
    f.write(header_ok + b"\0\0\0\0")
expect("trailing bytes", [gather, f"--input={path('extra.npy')}", f"--input={good}"], 1,
       r"trailing bytes after the \.npy data")

# Shapes no kiln tensor can have (kiln::isAddressableShape): checked before
# anything is allocated, with a zero size too, whatever the order.


def npy_header(descr, shape, misalign=0):
    """A version 1.0 .npy header whose data starts `misalign` bytes past a
    multiple of 64 (numpy's alignment)."""
    header = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }"
              % (descr, tuple(shape)))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64 + misalign) + "\n"
    return (b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
            + header.encode())


def npy_with_shape(name, shape):
    with open(path(name), "wb") as f:
        f.write(npy_header("<f4", shape))
    return path(name)


expect("npy shape over 2^59 elements",
       [gather, f"--input={npy_with_shape('huge.npy', (2**40, 2**40))}",
        f"--input={good}"], 1,
       r"huge\.npy: the \.npy shape has more than 2\^59 elements")
for order in [(2**40, 2**40, 0), (0, 2**40, 2**40)]:
    expect(f"npy empty shape {order} with huge sizes",
           [gather, f"--input={npy_with_shape('huge0.npy', order)}",
            f"--input={good}"], 1,
           r"the \.npy shape has nonzero sizes whose product exceeds 2\^59")
expect("npy empty shape is read", [gather, f"--input={npy_with_shape('e.npy', (0, 10))}",
                                   f"--input={good}"], 1,
       r"argument #0 of @f expects tensor<2x10xf32> but .*e\.npy holds tensor<0x10xf32>")

# Bad IR, entry selection and options.
expect("malformed IR", [write("bad.mlir", "func.func @f( {"), "--print"], 1, r"error:")
expect("verifier failure", [write("badk.mlir", """func.func @f(%x: tensor<4xf32>) -> tensor<4x5xf32> {
  %v, %i = "kiln.topk"(%x) {k = 5 : i64} : (tensor<4xf32>) -> (tensor<5xf32>, tensor<5xi64>)
  return %v : tensor<5xf32>
}
""")], 1, r"'kiln.topk' op k \(5\) exceeds the size of dim -1 \(4\)")
# Calls inline leaves: recursion would overflow the stack at run time, and
# a declaration has no code.
v4 = path("v4.npy")
np.save(v4, np.array([0.0, 1.0, 2.0, 3.0], np.float32))
expect("recursive call", [write("rec.mlir", """func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = call @f(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}
"""), f"--input={v4}"], 1, r"rec\.mlir.*calls @f recursively: a kiln graph cannot recurse")
expect("call of a declaration", [write("decl.mlir", """func.func private @g(tensor<4xf32>) -> tensor<4xf32>
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = call @g(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}
"""), f"--input={v4}"], 1, r"calls @g, which has no body")
np.save(path("s64.npy"), np.array(1.0))
# 2^59 elements is the limit: their bytes fit in int64 (2^62 f64 elements
# made 2^65 bytes, which wrapped to a one-byte buffer and a segfault).
expect("2^59 f64 elements: out of memory", [write("limit.mlir", """func.func @f(%x: tensor<f64>) -> tensor<576460752303423488xf64> {
  %c = kiln.expand %x : tensor<f64> -> tensor<576460752303423488xf64>
  %d = kiln.exp %c : tensor<576460752303423488xf64>
  return %d : tensor<576460752303423488xf64>
}
"""), f"--input={path('s64.npy')}"], 2,
       r"out of memory: result #0 of @f \(tensor<576460752303423488xf64>\) "
       r"needs 4611686018427387904 bytes")
expect("2^60 elements: rejected", [write("over.mlir", """func.func @f(%x: tensor<f64>) -> tensor<1152921504606846976xf64> {
  %c = kiln.expand %x : tensor<f64> -> tensor<1152921504606846976xf64>
  return %c : tensor<1152921504606846976xf64>
}
"""), f"--input={path('s64.npy')}"], 1,
       r"'kiln.expand' op result #0 type 'tensor<1152921504606846976xf64>' "
       r"has more than 2\^59 elements")
# Upstream ops are held to the kiln ops' shape limit (kiln-check-shapes):
# this splat constant threw std::length_error in the LLVM translation.
expect("upstream op beyond 2^59 elements", [write("huge_const.mlir", """func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = arith.constant dense<1.0> : tensor<4611686018427387904x4xf32>
  %y = arith.addf %c, %c : tensor<4611686018427387904x4xf32>
  return %x : tensor<4xf32>
}
"""), f"--input={v4}"], 1,
       r"huge_const\.mlir\":2:8\): 'arith\.constant' op result #0 type "
       r"'tensor<4611686018427387904x4xf32>' has more than 2\^59 elements")
# Upstream arith/math ops on whole tensors run like kiln's elementwise ops.
expect("arith and math on tensors", [write("upstream.mlir", """func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = arith.constant dense<1.0> : tensor<4xf32>
  %y = arith.addf %x, %c : tensor<4xf32>
  %z = math.sqrt %y : tensor<4xf32>
  return %z : tensor<4xf32>
}
"""), f"--input={v4}", "--print"], 0, r"tensor\(\[1\.0000, 1\.4142, 1\.7321, 2\.0000\]\)")
# Tensors larger than the address space (400 TB: no overcommit setting
# grants them): a clear runtime error, exit 2 — a result, and a temporary.
expect("result out of memory", [write("bigresult.mlir", """func.func @f() -> tensor<100000000000000xf32> {
  %y = kiln.full 1.0 : tensor<100000000000000xf32>
  return %y : tensor<100000000000000xf32>
}
""")], 2, r"out of memory: result #0 of @f \(tensor<100000000000000xf32>\) needs 400000000000000 bytes")
expect("temporary out of memory", [write("bigtemp.mlir", """func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.reshape %x : tensor<4xf32> -> tensor<4x1xf32>
  %e = kiln.expand %y : tensor<4x1xf32> -> tensor<4x25000000000000xf32>
  %m = kiln.exp %e : tensor<4x25000000000000xf32>
  %v, %i = kiln.topk %m {k = 1 : i64} : tensor<4x25000000000000xf32>
  %r = kiln.reshape %v : tensor<4x1xf32> -> tensor<4xf32>
  return %r : tensor<4xf32>
}
"""), f"--input={v4}"], 2, r"out of memory: @f could not allocate \d+ bytes for a temporary tensor")
# The runtime's kernels allocate scratch of their own (topk of f64 with a
# large k: sampled selection's band, about k words of 16 bytes, and a
# buffer of as many to select and sort them); when that fails the run ends
# the same way, exit 2 naming what it was for. Under an address-space limit
# of 1 GiB, a row of 2^25 doubles (256 MiB, made in the graph) and the
# results of its topk with k = 2^24 (256 MiB) fit and the band (256 MiB and
# more) and its buffer do not. Not under AddressSanitizer, whose shadow
# memory needs far more address space. The median of the same row needs
# little scratch: its band holds the keys near the median.
kth = write("kth.mlir", """func.func @f() -> (tensor<f64>, tensor<i64>) {
  %a = kiln.arange {start = 0.0 : f64} : tensor<33554432xf64>
  %v, %i = kiln.kthvalue %a {k = 16777216 : i64} : tensor<33554432xf64>
  return %v, %i : tensor<f64>, tensor<i64>
}
""")
expect("kthvalue of 2^25 doubles", [kth, "--threads=1", "--print"], 0,
       r"tensor\(16777215\., dtype=torch\.float64\)\ntensor\(16777215\)")
big_topk = write("topk.mlir", """func.func @f() -> (tensor<16777216xf64>, tensor<16777216xi64>) {
  %a = kiln.arange {start = 0.0 : f64} : tensor<33554432xf64>
  %v, %i = kiln.topk %a {k = 16777216 : i64} : tensor<33554432xf64>
  return %v, %i : tensor<16777216xf64>, tensor<16777216xi64>
}
""")
if "ASAN_OPTIONS" not in os.environ:
    import resource

    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    for label, graph in (("kthvalue", kth), ("topk", big_topk)):
        cases += 1
        proc = subprocess.run([KILN_RUN, graph, "--threads=1", "--print"],
                              capture_output=True, text=True, timeout=120,
                              preexec_fn=limit_address_space)
        if label == "kthvalue":
            ok = proc.returncode == 0 and "tensor(16777215)" in proc.stdout
        else:
            ok = proc.returncode == 2 and re.search(
                r"^kiln-run: error: out of memory: @f could not allocate \d+ "
                r"bytes for kiln\.topk's scratch\n$", proc.stderr)
        if not ok:
            failures += 1
            print(f"FAIL {label} of 2^25 doubles under 1 GiB: exit "
                  f"{proc.returncode}:\n{proc.stderr}{proc.stdout[:2000]}")
else:
    print("skipped under AddressSanitizer: topk's scratch out of memory "
          "(an address-space limit)")
two = write("two.mlir", """func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}
func.func @g(%x: tensor<2xf32>) -> tensor<2xf32> {
  %y = kiln.neg %x : tensor<2xf32>
  return %y : tensor<2xf32>
}
""")
v2 = path("v2.npy")
np.save(v2, np.array([1.0, -2.0], np.float32))
expect("ambiguous entry", [two, f"--input={v2}"], 1,
       r"the module has 2 public functions; choose one with --entry")
expect("no public function", [write("empty.mlir", "")], 1,
       r"the module has no public function with a body to run")
expect("unknown entry", [two, "--entry=h", f"--input={v2}"], 1, r"no function @h")
expect("chosen entry", [two, "--entry=g", f"--input={v2}", "--print"], 0,
       r"tensor\(\[-1\.,  2\.\]\)")
if has_cuda_device():
    expect("cuda target", [two, "--entry=g", f"--input={v2}", "--target=cuda",
                           "--print"], 0, r"tensor\(\[-1\.,  2\.\]\)")
else:
    # No GPU: a runtime failure (exit 2) saying why.
    expect("cuda target without a GPU",
           [two, "--entry=g", f"--input={v2}", "--target=cuda"], 2,
           r"--target=cuda: (no CUDA driver|no CUDA device)")
expect("unknown target", [two, "--target=tpu"], 1, r"unknown --target 'tpu'")
expect("zero threads", [two, "--threads=0"], 1,
       r"--threads expects an integer from 1 to 1024, got '0'")
# OpenMP aborts the process when it cannot create the threads (here at
# 100000): more than 1024 is a usage error.
expect("too many threads", [two, "--threads=100000"], 1,
       r"--threads expects an integer from 1 to 1024, got '100000'")
expect("bad repeat", [two, "--repeat=x"], 1, r"--repeat expects an integer >= 0")
expect("unknown option", [two, "--frobnicate"], 1, r"unknown option '--frobnicate'")
# --vector-bits: the register width the CPU code is tiled for (default the
# host's); any of the three runs anywhere LLVM can legalize it.
expect("vector bits not a width", [two, "--vector-bits=300"], 1,
       r"--vector-bits expects 128, 256 or 512, got 300")
expect("vector bits out of range", [two, "--vector-bits=1024"], 1,
       r"--vector-bits expects an integer from 128 to 512, got '1024'")
expect("vector bits on the GPU", [two, "--vector-bits=256", "--target=cuda"],
       1, r"--vector-bits sizes CPU register tiles; it does not apply to "
       r"--target=cuda")
# Lowering choices: the same answer (--gpu-vectorize only changes GPU code).
for flag in ("--no-fuse", "--sorted-scatters", "--gpu-vectorize",
             "--vector-bits=128", "--vector-bits=256", "--vector-bits=512"):
    expect(f"{flag} accepted", [two, "--entry=g", f"--input={v2}", "--print",
                                flag], 0, r"tensor\(\[")
expect("flag with a value", [two, "--sorted-scatters=1"], 1, r"sorted-scatters")
expect("no input file", [], 1, r"no input file")
expect("missing IR file", ["/nonexistent.mlir"], 1, r"/nonexistent\.mlir")

# --stats: one JSON line on stderr; --repeat runs N more times.
cases += 1
code, out, err = run(two, "--entry=g", f"--input={v2}", "--stats", "--repeat=3")
m = re.search(r"^kiln-stats: (\{.*\})$", err, re.M)
if code != 0 or not m:
    failures += 1
    print(f"FAIL stats: exit {code}, stderr {err!r}")
else:
    stats = json.loads(m.group(1))
    if set(stats) != {"kernels", "compile_ms", "run_ms_median", "run_ms_min",
                      "cache"} or stats["kernels"] != 1 or \
            stats["run_ms_min"] > stats["run_ms_median"]:
        failures += 1
        print(f"FAIL stats content: {stats}")

# --remarks: what the compiler did and why, one line per remark on stderr,
# at the op's location; the cache is bypassed, so the second run of the
# same program explains itself too (and still computes the same result).
# AVX-512's register width (--vector-bits=512), whatever the host's: its
# 8 rows are too few for the sum's row-per-lane kernel (16 rows at a time;
# AVX2's 8 would take them).
explained = write("explained.mlir", """func.func @f(%x: tensor<8x16xf32>, %w: tensor<16x16xf32>) -> tensor<8xf32> {
  %m = kiln.matmul %x, %w : tensor<8x16xf32>, tensor<16x16xf32>
  %c = kiln.constant dense<0.5> : tensor<f32>
  %h = kiln.mul %m, %c : tensor<8x16xf32>, tensor<f32>
  %e = kiln.exp %h : tensor<8x16xf32>
  %s = kiln.sum %e {dims = array<i64: 1>} : tensor<8x16xf32>
  return %s : tensor<8xf32>
}
""")
ex_x, ex_w = path("ex_x.npy"), path("ex_w.npy")
np.save(ex_x, np.random.RandomState(3).randn(8, 16).astype(np.float32))
np.save(ex_w, np.random.RandomState(4).randn(16, 16).astype(np.float32))
want_remarks = [
    re.escape(explained) + r":6:8: remark: \[kiln-fuse\] 3 ops in one kernel "
    r"\(the elementwise chain is evaluated where 'kiln\.sum' reads its "
    r"input\): kiln\.mul, kiln\.exp, kiln\.sum \[ops=3, recomputed=0\]",
    re.escape(explained) + r":2:8: remark: \[kiln-fuse, missed\] "
    r"'kiln\.matmul' is not fused into the kernel of 'kiln\.sum' \(" +
    re.escape(explained) + r":6:8\): it is neither elementwise",
    re.escape(explained) + r":6:8: remark: \[kiln-lower\] kiln\.sum of "
    r"tensor<8x16xf32> over dims \[1\]: row reduction",
    re.escape(explained) + r":2:8: remark: \[kiln-lower\] matmul "
    r"tensor<8x16xf32> x tensor<16x16xf32>: register-tiled",
]
outputs = []
for attempt in range(2):
    cases += 1
    code, out, err = run(explained, f"--input={ex_x}", f"--input={ex_w}",
                         "--remarks", "--stats", "--print",
                         "--vector-bits=512")
    m = re.search(r"^kiln-stats: (\{.*\})$", err, re.M)
    missing = [p for p in want_remarks if not re.search(p, err)]
    if code != 0 or missing or not m or \
            json.loads(m.group(1))["cache"] != "miss":
        failures += 1
        print(f"FAIL --remarks run {attempt}: exit {code}, missing "
              f"{missing}:\n{err}")
    outputs.append(out)
cases += 1
code, out, err = run(explained, f"--input={ex_x}", f"--input={ex_w}",
                     "--print")
if code != 0 or "remark" in err or out != outputs[0] or \
        outputs[0] != outputs[1]:
    failures += 1
    print(f"FAIL without --remarks: exit {code}, stderr {err!r}, outputs "
          f"{outputs + [out]}")
expect("--remarks with a value", [explained, "--remarks=all"], 1,
       r"remarks")

# --profile: each timed kernel's mean time per run, the slowest first, with
# its location and source line; the same results; the sites come back from
# the disk cache on a second process (a hit); a separate cache entry from
# the unprofiled code; CPU only.
profiled = write("profiled.mlir", """func.func @f(%x: tensor<256x512xf32>, %w: tensor<512x64xf32>) -> (tensor<256xf32>, tensor<256x4xf32>, tensor<256x4xi64>) {
  %m = kiln.matmul %x, %w : tensor<256x512xf32>, tensor<512x64xf32>
  %v, %i = kiln.topk %m {k = 4 : i64, dim = 1 : i64} : tensor<256x64xf32>
  %e = kiln.exp %x : tensor<256x512xf32>
  %s = kiln.sum %e {dims = array<i64: 1>} : tensor<256x512xf32>
  return %s, %v, %i : tensor<256xf32>, tensor<256x4xf32>, tensor<256x4xi64>
}
""")
pr_x, pr_w = path("pr_x.npy"), path("pr_w.npy")
np.save(pr_x, np.random.RandomState(5).randn(256, 512).astype(np.float32))
np.save(pr_w, np.random.RandomState(6).randn(512, 64).astype(np.float32))
row = re.compile(r"^ +(\d+\.\d{3}) +(\d+\.\d)%  (\S+)  (\S+)(?:  \| (.*))?$")
prof_cache = scratch_dir("kiln-cli-profile-cache-")
plain_out = None
for attempt in range(3):
    cases += 1
    profile_args = ["--profile"] if attempt < 2 else []
    proc = subprocess.run(
        [KILN_RUN, profiled, f"--input={pr_x}", f"--input={pr_w}", "--print",
         "--stats", "--repeat=3", *profile_args], capture_output=True,
        text=True, timeout=120, env={**os.environ, "KILN_CACHE_DIR": prof_cache})
    code, out, err = proc.returncode, proc.stdout, proc.stderr
    stats = re.search(r"^kiln-stats: (\{.*\})$", err, re.M)
    cache = json.loads(stats.group(1))["cache"] if stats else None
    problems = []
    if code != 0 or cache != ("hit" if attempt == 1 else "miss"):
        problems.append(f"exit {code}, cache {cache}")
    rows = [m for m in map(row.match, err.splitlines()) if m]
    if attempt < 2:
        header = re.search(r"^kiln-profile: (\d+) timed kernel\(s\), mean of 3 "
                           r"run\(s\): ([\d.]+) ms in kernels of ([\d.]+) ms "
                           r"per run$", err, re.M)
        lines = {m.group(3).rsplit(":", 1)[0].rsplit(":", 1)[1]: m for m in rows}
        times = [float(m.group(1)) for m in rows]
        if not header or int(header.group(1)) != len(rows) or \
                len(rows) < 3 or times != sorted(times, reverse=True):
            problems.append("header or rows")
        elif float(header.group(2)) > float(header.group(3)) * 1.05:
            problems.append("kernels take longer than the run")
        for line, text in (("2", "%m = kiln.matmul %x, %w"),
                           ("3", "%v, %i = kiln.topk %m"),
                           ("5", "%s = kiln.sum %e")):
            m = lines.get(line)
            if not m or not m.group(3).startswith(profiled + ":") or \
                    not (m.group(5) or "").startswith(text):
                problems.append(f"no row for line {line}")
        if "kiln_rt_topk_f32" not in [m.group(4) for m in rows]:
            problems.append("the runtime topk is not timed")
    elif rows or "kiln-profile" in err:
        problems.append("a profile without --profile")
    if plain_out is None:
        plain_out = out
    elif out != plain_out:
        problems.append("different results")
    if problems:
        failures += 1
        print(f"FAIL --profile run {attempt}: {problems}:\n{err}")
expect("--profile with --target=cuda", [profiled, "--profile",
                                        "--target=cuda"], 1,
       r"--profile times CPU kernels")
expect("--profile with a value", [profiled, "--profile=yes"], 1, r"profile")

# --print matches str(torch tensor).
torch.manual_seed(5)
printable = {
    "f32": torch.tensor([[1.5, -2.25, 3.0], [0.0, 1e-3, 100.0]]),
    "f32 integral": torch.tensor([1.0, -2.0, 300.0]),
    "f32 sci": torch.tensor([1e-8, 1.0, 12345.0]),
    "f64": torch.tensor([0.5, 0.25], dtype=torch.float64),
    "i64": torch.tensor([[1, -20], [300, 4]]),
    "bool": torch.tensor([True, False, True]),
    "rank0": torch.tensor(2.5),
    "nan inf": torch.tensor([float("nan"), float("inf"), -1.5]),
    "3-D": torch.arange(24.0).reshape(2, 3, 4),
    "summarized": torch.arange(2000.0),
    "summarized 2-D": torch.randn(40, 50),
    "wrapped": torch.randn(30),
    "empty": torch.zeros(0, 3),
    "empty 1-D i64": torch.zeros(0, dtype=torch.int64),
}
for label, t in printable.items():
    cases += 1
    dtype = {torch.float32: "f32", torch.float64: "f64", torch.int64: "i64",
             torch.bool: "i1"}[t.dtype]
    ty = "tensor<" + "".join(f"{d}x" for d in t.shape) + dtype + ">"
    ir = write(f"print_{cases}.mlir", f"func.func @f(%x: {ty}) -> {ty} {{\n"
               f"  return %x : {ty}\n}}\n")
    arg = path(f"print_{cases}.npy")
    np.save(arg, t.numpy())
    code, out, err = run(ir, f"--input={arg}", "--print")
    if code != 0 or out.rstrip("\n") != str(t):
        failures += 1
        print(f"FAIL print {label}: exit {code}\n got:\n{out}\n expected:\n{t}\n{err}")

# Inputs of 16 KiB up to 4 MiB are read where the file is mapped when their
# data is aligned for its element type (HostTensor.cpp, readNpy); otherwise
# copied. Both give the same results; a mapped input is never written (an
# in-place scatter_add into the argument works on a copy: writing the
# read-only mapping would crash), and the file is unchanged afterwards.


def npy_raw(name, array, misalign=0):
    """A .npy of `array` (f64 or bool) with its data `misalign` bytes past
    a multiple of 64 in the file."""
    descr = {np.dtype(np.float64): "<f8", np.dtype(np.bool_): "|b1"}[array.dtype]
    with open(path(name), "wb") as f:
        f.write(npy_header(descr, array.shape, misalign) + array.tobytes())
    return path(name)


rng = np.random.default_rng(7)
base = rng.standard_normal((64, 512))  # 256 KiB of f64
scatter_ir = write("scatter_in_place.mlir", """func.func @f(%x: tensor<64x512xf64>, %i: tensor<64x3xi64>, %s: tensor<64x3xf64>) -> tensor<64x512xf64> {
  %y = kiln.scatter_add %x, %i, %s {dim = 1 : i64} : tensor<64x512xf64>, tensor<64x3xi64>, tensor<64x3xf64>
  return %y : tensor<64x512xf64>
}
""")
index = rng.integers(0, 512, (64, 3))
src = rng.standard_normal((64, 3))
np.save(path("scatter_i.npy"), index)
np.save(path("scatter_s.npy"), src)
expected = base.copy()
for r in range(64):
    for c in range(3):
        expected[r, index[r, c]] += src[r, c]
for label, misalign in (("aligned (read in place)", 0),
                        ("misaligned for f64 (copied)", 4)):
    cases += 1
    arg = npy_raw(f"mapped_{misalign}.npy", base, misalign)
    before = open(arg, "rb").read()
    out_dir = path(f"mapped_out_{misalign}")
    code, out, err = run(scatter_ir, f"--input={arg}",
                         f"--input={path('scatter_i.npy')}",
                         f"--input={path('scatter_s.npy')}",
                         f"--output-dir={out_dir}", "--repeat=2")
    if code != 0:
        failures += 1
        print(f"FAIL large input {label}: exit {code}\n{err}")
        continue
    got = np.load(os.path.join(out_dir, "out0.npy"))
    if not np.array_equal(got, expected) or open(arg, "rb").read() != before:
        failures += 1
        print(f"FAIL large input {label}: wrong result or the input changed")
big_bool = rng.integers(0, 2, 20000).astype(np.bool_)
bool_ir = write("bool_cast.mlir", """func.func @f(%x: tensor<20000xi1>) -> tensor<20000xf32> {
  %y = kiln.cast %x : tensor<20000xi1> to tensor<20000xf32>
  return %y : tensor<20000xf32>
}
""")
cases += 1
arg = npy_raw("big_bool.npy", big_bool)
code, out, err = run(bool_ir, f"--input={arg}", f"--output-dir={path('bool_out')}")
if code != 0 or not np.array_equal(
        np.load(os.path.join(path("bool_out"), "out0.npy")),
        big_bool.astype(np.float32)):
    failures += 1
    print(f"FAIL large bool input: exit {code}\n{err}")
bad_bool = big_bool.view(np.uint8).copy()
bad_bool[12345] = 7
arg = npy_raw("big_bool_bad.npy", bad_bool.view(np.bool_))
expect("large bool input holding 7", [bool_ir, f"--input={arg}"], 1,
       r"big_bool_bad\.npy: bool data holds a value other than 0 or 1")

# The lowering verifies its result once, or after every pass with
# KILN_VERIFY_PASSES=1 (0 or unset: once): the same program either way,
# compiled afresh each time.
verified = {}
for setting in ("1", "0", None):
    cases += 1
    env = {k: v for k, v in os.environ.items() if k != "KILN_VERIFY_PASSES"}
    if setting is not None:
        env["KILN_VERIFY_PASSES"] = setting
    env["KILN_CACHE_DIR"] = scratch_dir("kiln-cli-verify-cache-")
    proc = subprocess.run(
        [KILN_RUN, profiled, f"--input={pr_x}", f"--input={pr_w}", "--print",
         "--stats"], capture_output=True, text=True, timeout=120, env=env)
    stats = re.search(r"^kiln-stats: (\{.*\})$", proc.stderr, re.M)
    if proc.returncode != 0 or not stats or \
            json.loads(stats.group(1))["cache"] != "miss":
        failures += 1
        print(f"FAIL KILN_VERIFY_PASSES={setting}: exit {proc.returncode}\n"
              f"{proc.stderr}")
    verified[setting] = proc.stdout
if len(set(verified.values())) != 1:
    failures += 1
    print("FAIL KILN_VERIFY_PASSES changes the results")

print(f"kiln_run_cli: {cases - failures}/{cases} cases passed")
exit_test(failures > 0)
