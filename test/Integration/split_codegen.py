# Machine code on several threads (lib/Runtime/SplitCodegen.cpp): a graph
# large enough is compiled as the glue's object, one object per compile
# thread (KILN_COMPILE_THREADS) and, apart, the kernels with large blocks
# (compiled without the post-RA scheduler), a small one as one object;
# whatever the split, the results are the same bits (and PyTorch's
# values), an entry written by one thread count is a hit for another, and
# a bad KILN_COMPILE_THREADS is an error naming it.
# RUN: %python %s
import os
import re
import subprocess

import numpy as np
import torch

from scratch import exit_test, scratch_dir

KILN_RUN = os.environ["KILN_RUN"]
KILN_OPT = os.environ["KILN_OPT"]
tmp = scratch_dir("kiln-split-codegen-")
failures = []

# A two-layer network's loss and its gradient: kernels of every kind
# (matmuls, a short-row softmax, column sums, elementwise chains), among
# them the deep chain of TANHS tanh after the relu, whose kernels (forward
# and backward) are each one large block of vector code -- interleaved 4
# times with AVX-512's registers, twice with AVX2's (CpuCompiler.cpp,
# interleaveLongLoops): the chains are long enough for either.
N, D, H, C = 64, 96, 80, 10
TANHS = 32


def tanh_chain(count, type):
    """IR lines %t1 = tanh(%t0), ..., %t{count} of `type`."""
    return "\n".join(f"  %t{i + 1} = kiln.tanh %t{i} : {type}"
                      for i in range(count))


tanhs = tanh_chain(TANHS, f"tensor<{N}x{H}xf32>")
forward = f"""func.func @f(%x: tensor<{N}x{D}xf32>, %w1: tensor<{D}x{H}xf32>, %b1: tensor<{H}xf32>, %w2: tensor<{H}x{C}xf32>, %b2: tensor<{C}xf32>, %t: tensor<{N}xi64>) -> tensor<f32> {{
  %h = kiln.matmul %x, %w1 : tensor<{N}x{D}xf32>, tensor<{D}x{H}xf32>
  %hb = kiln.add %h, %b1 : tensor<{N}x{H}xf32>, tensor<{H}xf32>
  %z = kiln.zeros_like %hb : tensor<{N}x{H}xf32>
  %t0 = kiln.maximum %hb, %z : tensor<{N}x{H}xf32>, tensor<{N}x{H}xf32>
{tanhs}
  %o = kiln.matmul %t{TANHS}, %w2 : tensor<{N}x{H}xf32>, tensor<{H}x{C}xf32>
  %ob = kiln.add %o, %b2 : tensor<{N}x{C}xf32>, tensor<{C}xf32>
  %l = kiln.cross_entropy %ob, %t : tensor<{N}x{C}xf32>, tensor<{N}xi64>
  return %l : tensor<f32>
}}
"""
with open(os.path.join(tmp, "f.mlir"), "w") as f:
    f.write(forward)
grad_ir = os.path.join(tmp, "grad.mlir")
subprocess.run([KILN_OPT, os.path.join(tmp, "f.mlir"), "--kiln-autodiff",
                "-o", grad_ir], check=True, timeout=120)

rng = np.random.default_rng(5)
arrays = [(rng.standard_normal(s) * 0.1).astype(np.float32)
          for s in ((N, D), (D, H), (H,), (H, C), (C,))]
arrays.append(rng.integers(0, C, N))
arrays.append(np.array(1.0, dtype=np.float32))  # the loss's cotangent
inputs = []
for i, a in enumerate(arrays):
    inputs.append(os.path.join(tmp, f"in{i}.npy"))
    np.save(inputs[-1], a)

small_ir = os.path.join(tmp, "small.mlir")
with open(small_ir, "w") as f:
    f.write("""func.func @f(%x: tensor<64x96xf32>) -> tensor<64x96xf32> {
  %s = kiln.softmax %x {dim = 1 : i64} : tensor<64x96xf32>
  return %s : tensor<64x96xf32>
}
""")


def run(ir, args, out, cache, threads):
    env = dict(os.environ, KILN_CACHE_DIR=cache)
    if threads is None:
        env.pop("KILN_COMPILE_THREADS", None)
    else:
        env["KILN_COMPILE_THREADS"] = threads
    return subprocess.run([KILN_RUN, ir, *args, "--stats",
                           f"--output-dir={out}"],
                          capture_output=True, text=True, env=env, timeout=300)


def objects(cache):
    """The number of objects in the cache directory's one entry (its format:
    CpuCompiler.cpp's serialize)."""
    names = [n for n in os.listdir(cache) if n.startswith("llvmcache-")]
    if len(names) != 1:
        return f"{len(names)} entries"
    with open(os.path.join(cache, names[0]), "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines[0] != b"KILN-CACHE-3":
        return f"magic {lines[0]!r}"
    at = 2  # after the kernel count
    for _ in range(2):  # error sites, profile sites
        at += 1 + int(lines[at])
    return int(lines[at])


grad_args = ["--entry=f_vjp"] + [f"--input={p}" for p in inputs]
results = {}
counts = {}
for threads in ("1", "2", "3", "16"):
    cache = os.path.join(tmp, f"cache{threads}")
    out = os.path.join(tmp, f"out{threads}")
    proc = run(grad_ir, grad_args, out, cache, threads)
    if proc.returncode != 0:
        failures.append(f"KILN_COMPILE_THREADS={threads}: {proc.stderr}")
        continue
    counts[threads] = objects(cache)
    results[threads] = [np.load(os.path.join(out, f"out{i}.npy"))
                        for i in range(5)]
# The glue's object, the kernels' (one per thread, but no more than one per
# 2000 instructions of them) and the large blocks' (the chain's kernels,
# compiled without the post-RA scheduler; two on two threads): 3 objects on
# one thread, 5 on two, as many or more on more threads, at most one per
# kernel (a kernel and its parallel body are one) besides the glue's.
if counts.get("1") != 3 or counts.get("2") != 5 or not all(
        isinstance(counts.get(t), int) and 5 <= counts[t] <= 30
        for t in ("3", "16")) or counts.get("16", 0) < counts.get("3", 0):
    failures.append(f"objects per KILN_COMPILE_THREADS: {counts}")

reference = results.get("1")
for threads, grads in results.items():
    if reference is not None and not all(
            a.tobytes() == b.tobytes() for a, b in zip(reference, grads)):
        failures.append(f"KILN_COMPILE_THREADS={threads}: gradients differ "
                        f"from one thread's")

# PyTorch's gradients of the same loss.
params = [torch.tensor(a, requires_grad=True) for a in arrays[:5]]
x, w1, b1, w2, b2 = params
hidden = torch.relu(x @ w1 + b1)
for _ in range(TANHS):
    hidden = torch.tanh(hidden)
loss = torch.nn.functional.cross_entropy(hidden @ w2 + b2,
                                         torch.tensor(arrays[5]))
expected_grads = torch.autograd.grad(loss, params)
if reference is not None:
    for i, (got, want) in enumerate(zip(reference, expected_grads)):
        if not np.allclose(got, want.numpy(), rtol=1e-4, atol=1e-6):
            failures.append(f"gradient {i} differs from PyTorch's by "
                            f"{np.abs(got - want.numpy()).max()}")

# An entry compiled on 3 threads is a hit for a process with 1, with the
# same results.
proc = run(grad_ir, grad_args, os.path.join(tmp, "again"),
           os.path.join(tmp, "cache3"), "1")
if '"cache": "hit"' not in proc.stderr:
    failures.append(f"the entry of 3 threads should be a hit for 1: "
                    f"{proc.stderr}")
elif reference is not None and not all(
        np.load(os.path.join(tmp, "again", f"out{i}.npy")).tobytes() ==
        reference[i].tobytes() for i in range(5)):
    failures.append("the hit gave other results")

# A small graph stays one object; unset or empty means the hardware threads.
for threads in ("4", "", None):
    cache = os.path.join(tmp, f"small{threads}")
    proc = run(small_ir, [f"--input={inputs[0]}"], os.path.join(tmp, "os"),
               cache, threads)
    if proc.returncode != 0 or objects(cache) != 1:
        failures.append(f"small graph, KILN_COMPILE_THREADS={threads!r}: "
                        f"{proc.returncode} {objects(cache) if os.path.isdir(cache) else ''} "
                        f"{proc.stderr}")

# A small graph whose one kernel has a large block (a chain of SHORT_TANHS
# tanh, enough to reach the cost of a split): its objects are the glue's,
# the kernel's and that of the entry's packed form and the constructors,
# compiled at -O3.
SHORT_TANHS = 48
short_ir = os.path.join(tmp, "short.mlir")
chain = tanh_chain(SHORT_TANHS, f"tensor<{N}x{D}xf32>")
with open(short_ir, "w") as f:
    f.write(f"""func.func @f(%t0: tensor<{N}x{D}xf32>) -> tensor<{N}x{D}xf32> {{
{chain}
  return %t{SHORT_TANHS} : tensor<{N}x{D}xf32>
}}
""")
cache = os.path.join(tmp, "short-cache")
proc = run(short_ir, [f"--input={inputs[0]}"],
           os.path.join(tmp, "oshort"), cache, "2")
if proc.returncode != 0 or objects(cache) != 3:
    failures.append(f"a chain of {SHORT_TANHS} tanh: {proc.returncode} "
                    f"{objects(cache) if os.path.isdir(cache) else ''} "
                    f"{proc.stderr}")
else:
    got = np.load(os.path.join(tmp, "oshort", "out0.npy"))
    want = torch.tensor(arrays[0])
    for _ in range(SHORT_TANHS):
        want = torch.tanh(want)
    if not np.allclose(got, want.numpy(), rtol=1e-5, atol=1e-6):
        failures.append(f"a chain of {SHORT_TANHS} tanh differs from "
                        f"PyTorch's")

# Not a thread count: an error of the compile (exit 1) naming the variable.
for bad in ("0", "-2", "two", "3x", "1025"):
    proc = run(small_ir, [f"--input={inputs[0]}"], os.path.join(tmp, "ob"),
               "off", bad)
    message = f"KILN_COMPILE_THREADS: '{bad}' is not a thread count"
    if proc.returncode != 1 or message not in proc.stderr:
        failures.append(f"KILN_COMPILE_THREADS={bad!r}: exit "
                        f"{proc.returncode}, {proc.stderr!r}")

for failure in failures:
    print("FAIL", failure)
print(f"split_codegen: {'ok' if not failures else 'failed'}")
exit_test(bool(failures))
