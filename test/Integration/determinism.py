# The same inputs give the same bits on every run and every thread count
# (docs/lowering.md: threads split only parallel dims; reductions run in one
# order fixed by the compiled code).
# The compiler's output is deterministic too: the same IR file compiles to
# the same text on every run (kiln-compile --emit=llvm-ir, CPU and GPU host
# code; kiln-opt --kiln-gpu-pipeline with its PTX), so that a build is reproducible and an on-disk cache entry is the
# same whichever process wrote it.
# RUN: %python %s
import os
import subprocess

import numpy as np

from scratch import exit_test, scratch_dir

KILN_RUN = os.environ["KILN_RUN"]
tmp = scratch_dir("kiln-determinism-")
ir = os.path.join(tmp, "f.mlir")
with open(ir, "w") as f:
    f.write("""func.func @f(%x: tensor<37x1000xf32>, %w: tensor<1000x24xf32>, %i: tensor<37x5xi64>, %y: tensor<36x1000xf32>, %z: tensor<300x1000xf32>, %h: tensor<4x64x250xf32>) -> (tensor<37xf32>, tensor<37x1000xf32>, tensor<37xi64>, tensor<37x24xf32>, tensor<37x8xf32>, tensor<37x5xf32>, tensor<f32>, tensor<1000xf32>, tensor<36x24xf32>, tensor<37x1000xf32>, tensor<1000xf32>, tensor<4x64x250xf32>) {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<37x1000xf32>
  %p = kiln.softmax %x {dim = 1 : i64} : tensor<37x1000xf32>
  %a = kiln.argmax %x {dim = 1 : i64} : tensor<37x1000xf32>
  %m = kiln.matmul %x, %w : tensor<37x1000xf32>, tensor<1000x24xf32>
  %v, %vi = kiln.topk %x {k = 8 : i64} : tensor<37x1000xf32>
  %g = kiln.gather %x, %i {dim = 1 : i64} : tensor<37x1000xf32>, tensor<37x5xi64>
  %n = kiln.norm %x : tensor<37x1000xf32>
  %c = kiln.mean %x {dims = array<i64: 0>} : tensor<37x1000xf32>
  %t = kiln.matmul %y, %w : tensor<36x1000xf32>, tensor<1000x24xf32>
  %sa = kiln.scatter_add %x, %i, %g {dim = 1 : i64} : tensor<37x1000xf32>, tensor<37x5xi64>, tensor<37x5xf32>
  %cz = kiln.sum %z {dims = array<i64: 0>} : tensor<300x1000xf32>
  %hm = kiln.mean %h {dims = array<i64: 1>, keepdim = true} : tensor<4x64x250xf32>
  %hd = kiln.sub %h, %hm : tensor<4x64x250xf32>, tensor<4x1x250xf32>
  %hq = kiln.mul %hd, %hd : tensor<4x64x250xf32>, tensor<4x64x250xf32>
  %hv = kiln.mean %hq {dims = array<i64: 1>, keepdim = true} : tensor<4x64x250xf32>
  %hr = kiln.rsqrt %hv : tensor<4x1x250xf32>
  %hn = kiln.mul %hd, %hr : tensor<4x64x250xf32>, tensor<4x1x250xf32>
  return %s, %p, %a, %m, %v, %g, %n, %c, %t, %sa, %cz, %hn : tensor<37xf32>, tensor<37x1000xf32>, tensor<37xi64>, tensor<37x24xf32>, tensor<37x8xf32>, tensor<37x5xf32>, tensor<f32>, tensor<1000xf32>, tensor<36x24xf32>, tensor<37x1000xf32>, tensor<1000xf32>, tensor<4x64x250xf32>
}
""")
rng = np.random.default_rng(11)
inputs = []
for name, array in (("x", rng.standard_normal((37, 1000)).astype(np.float32) * 100),
                    ("w", rng.standard_normal((1000, 24)).astype(np.float32)),
                    ("i", rng.integers(0, 1000, (37, 5)).astype(np.int64)),
                    ("y", rng.standard_normal((36, 1000)).astype(np.float32)),
                    # Column reductions: 300 rows in memory accumulators, a
                    # layer norm over the 64 channels (a column group): each
                    # block's buffers are its thread's (kiln-iteration-scratch).
                    ("z", rng.standard_normal((300, 1000)).astype(np.float32)),
                    ("h", rng.standard_normal((4, 64, 250)).astype(np.float32))):
    path = os.path.join(tmp, f"{name}.npy")
    np.save(path, array)
    inputs.append(f"--input={path}")

results = {}
for threads in (1, 2, 3, 8, 1):
    out = os.path.join(tmp, f"out{threads}-{len(results)}")
    proc = subprocess.run([KILN_RUN, ir, *inputs, f"--threads={threads}",
                           f"--output-dir={out}", "--repeat=2"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print("FAIL", proc.stderr)
        raise SystemExit(1)
    results[(threads, len(results))] = [
        open(os.path.join(out, f"out{k}.npy"), "rb").read() for k in range(12)]

reference = next(iter(results.values()))
failures = [key for key, files in results.items() if files != reference]
for key in failures:
    print(f"FAIL threads={key[0]}: results differ in bits from --threads=1")
print(f"determinism: {len(results) - len(failures)}/{len(results)} runs identical")

# Few rows (kiln-outer-parallel-loops): a loop whose first dim runs few
# iterations shares its next dims with the threads -- the segments of a
# split reduction over one row, an elementwise row in blocks (the last
# clamped), several dims merged. Same bits at every thread count, and the
# values (numpy in f64).
few = os.path.join(tmp, "few.mlir")
with open(few, "w") as f:
    f.write("""func.func @f(%x: tensor<1x1048576xf32>, %z: tensor<3x100003xf32>, %w: tensor<2x3x70001xf32>) -> (tensor<1xf32>, tensor<1x1048576xf32>, tensor<3x100003xf32>, tensor<2x3x70001xf32>) {
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<1x1048576xf32>
  %p = kiln.softmax %x {dim = 1 : i64} : tensor<1x1048576xf32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %pos = kiln.gt %z, %zero : tensor<3x100003xf32>, tensor<f32>
  %sq = kiln.mul %z, %z : tensor<3x100003xf32>, tensor<3x100003xf32>
  %ez = kiln.exp %z : tensor<3x100003xf32>
  %e = kiln.where %pos, %sq, %ez : tensor<3x100003xi1>, tensor<3x100003xf32>, tensor<3x100003xf32>
  %half = kiln.constant dense<0.5> : tensor<f32>
  %v = kiln.mul %w, %half : tensor<2x3x70001xf32>, tensor<f32>
  return %s, %p, %e, %v : tensor<1xf32>, tensor<1x1048576xf32>, tensor<3x100003xf32>, tensor<2x3x70001xf32>
}
""")
x = rng.standard_normal((1, 1048576)).astype(np.float32)
z = rng.standard_normal((3, 100003)).astype(np.float32)
w = rng.standard_normal((2, 3, 70001)).astype(np.float32)
few_inputs = []
for name, array in (("fx", x), ("fz", z), ("fw", w)):
    path = os.path.join(tmp, f"{name}.npy")
    np.save(path, array)
    few_inputs.append(f"--input={path}")
few_results = []
for threads in (1, 2, 3, 8):
    out = os.path.join(tmp, f"few{threads}")
    proc = subprocess.run([KILN_RUN, few, *few_inputs, f"--threads={threads}",
                           f"--output-dir={out}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print("FAIL few rows", proc.stderr)
        raise SystemExit(1)
    few_results.append([open(os.path.join(out, f"out{k}.npy"), "rb").read()
                        for k in range(4)])
    if threads == 1:
        got = [np.load(os.path.join(out, f"out{k}.npy")) for k in range(4)]
for threads, files in zip((2, 3, 8), few_results[1:]):
    if files != few_results[0]:
        failures.append((threads, "few rows"))
        print(f"FAIL few rows, threads={threads}: results differ in bits "
              "from --threads=1")
x64 = x.astype(np.float64)
soft = np.exp(x64 - x64.max()) / np.exp(x64 - x64.max()).sum()
z64 = z.astype(np.float64)
expected = [x64.sum(1), soft, np.where(z64 > 0, z64 * z64, np.exp(z64)),
            w.astype(np.float64) * 0.5]
for k, (g, e, rtol) in enumerate(zip(got, expected, (1e-5, 1e-5, 2e-6, 0))):
    if g.shape != e.shape or not np.allclose(g, e, rtol=rtol, atol=1e-30):
        failures.append((1, f"few rows out{k}"))
        print(f"FAIL few rows out{k}: max abs error "
              f"{np.max(np.abs(g - e)) if g.shape == e.shape else g.shape}")
print(f"few rows: {len(few_results)} thread counts, "
      f"{'identical' if all(r == few_results[0] for r in few_results) else 'DIFFERENT'} bits")

# Compiled output: every op of the dialect in many independent functions
# (the case where One-Shot Bufferize's function order is pointer-dependent).
every_op = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "GPU", "Inputs", "every-op.mlir")
compile_failures = 0
commands = {
    "kiln-compile --target=cpu": [os.environ["KILN_COMPILE"], every_op,
                                  "--target=cpu", "--emit=llvm-ir"],
    "kiln-compile --target=cuda": [os.environ["KILN_COMPILE"], every_op,
                                   "--target=cuda", "--emit=llvm-ir"],
    # The printed GPU pipeline, gpu.binary objects included (their
    # compile-time properties are stripped).
    "kiln-opt --kiln-gpu-pipeline": [os.environ["KILN_OPT"], every_op,
                                     "--kiln-gpu-pipeline"],
}
for label, command in commands.items():
    texts = []
    for _ in range(4):
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            print("FAIL", label, proc.stderr[:2000])
            raise SystemExit(1)
        texts.append(proc.stdout)
    same = sum(text == texts[0] for text in texts)
    if same != len(texts):
        compile_failures += 1
        print(f"FAIL {label}: output differs between runs")
    print(f"compile determinism {label}: {same}/{len(texts)} "
          f"identical ({len(texts[0])} chars)")
exit_test(bool(failures) or compile_failures > 0)
