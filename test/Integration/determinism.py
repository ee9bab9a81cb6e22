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
    f.write("""func.func @f(%x: tensor<37x1000xf32>, %w: tensor<1000x24xf32>, %i: tensor<37x5xi64>, %y: tensor<36x1000xf32>) -> (tensor<37xf32>, tensor<37x1000xf32>, tensor<37xi64>, tensor<37x24xf32>, tensor<37x8xf32>, tensor<37x5xf32>, tensor<f32>, tensor<1000xf32>, tensor<36x24xf32>, tensor<37x1000xf32>) {
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
  return %s, %p, %a, %m, %v, %g, %n, %c, %t, %sa : tensor<37xf32>, tensor<37x1000xf32>, tensor<37xi64>, tensor<37x24xf32>, tensor<37x8xf32>, tensor<37x5xf32>, tensor<f32>, tensor<1000xf32>, tensor<36x24xf32>, tensor<37x1000xf32>
}
""")
rng = np.random.default_rng(11)
inputs = []
for name, array in (("x", rng.standard_normal((37, 1000)).astype(np.float32) * 100),
                    ("w", rng.standard_normal((1000, 24)).astype(np.float32)),
                    ("i", rng.integers(0, 1000, (37, 5)).astype(np.int64)),
                    ("y", rng.standard_normal((36, 1000)).astype(np.float32))):
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
        open(os.path.join(out, f"out{k}.npy"), "rb").read() for k in range(10)]

reference = next(iter(results.values()))
failures = [key for key, files in results.items() if files != reference]
for key in failures:
    print(f"FAIL threads={key[0]}: results differ in bits from --threads=1")
print(f"determinism: {len(results) - len(failures)}/{len(results)} runs identical")

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
