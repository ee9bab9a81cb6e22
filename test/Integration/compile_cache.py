# The compile cache (tools.md): the second process run of the same IR is a
# cache hit with near-zero compile time and the same results; a different
# IR (even only a location), a damaged entry or KILN_CACHE_DIR=off compile
# afresh.
# RUN: %python %s
import json
import os
import re
import subprocess

import numpy as np

from scratch import exit_test, scratch_dir

KILN_RUN = os.environ["KILN_RUN"]
tmp = scratch_dir("kiln-cache-test-")
cache = os.path.join(tmp, "cache")
failures = []

ir = os.path.join(tmp, "f.mlir")
with open(ir, "w") as f:
    f.write("""func.func @f(%x: tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4xf32>) {
  %v, %i = kiln.topk %x {k = 2 : i64} : tensor<4x8xf32>
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<4x8xf32>
  return %v, %s : tensor<4x2xf32>, tensor<4xf32>
}
""")
x = os.path.join(tmp, "x.npy")
np.save(x, np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))


def run(path, cache_dir, out):
    env = dict(os.environ, KILN_CACHE_DIR=cache_dir)
    proc = subprocess.run([KILN_RUN, path, f"--input={x}", "--stats",
                           f"--output-dir={out}"], capture_output=True,
                          text=True, env=env, timeout=120)
    m = re.search(r"kiln-stats: (\{.*\})", proc.stderr)
    if proc.returncode != 0 or not m:
        failures.append(f"run failed: {proc.stderr}")
        return {}
    return json.loads(m.group(1))


def outputs(out):
    return [np.load(os.path.join(out, f"out{i}.npy")) for i in range(2)]


first = run(ir, cache, os.path.join(tmp, "o1"))
second = run(ir, cache, os.path.join(tmp, "o2"))
if first.get("cache") != "miss" or second.get("cache") != "hit":
    failures.append(f"expected miss then hit, got {first} then {second}")
if not all(np.array_equal(a, b) for a, b in zip(outputs(os.path.join(tmp, "o1")),
                                                outputs(os.path.join(tmp, "o2")))):
    failures.append("cached code gave different results")
if second.get("compile_ms", 1e9) >= first.get("compile_ms", 0):
    failures.append(f"a hit should compile faster: {first} vs {second}")

# The same function at another location is another entry (error messages
# embed locations).
moved = os.path.join(tmp, "g.mlir")
with open(moved, "w") as f:
    f.write("\n" + open(ir).read())
if run(moved, cache, os.path.join(tmp, "o3")).get("cache") != "miss":
    failures.append("a different IR must miss")

# A damaged entry is ignored and replaced.
for name in os.listdir(cache):
    with open(os.path.join(cache, name), "wb") as f:
        f.write(b"KILN-CACHE-1\ngarbage")
damaged = run(ir, cache, os.path.join(tmp, "o4"))
if damaged.get("cache") != "miss":
    failures.append(f"a damaged entry must miss, got {damaged}")
if run(ir, cache, os.path.join(tmp, "o5")).get("cache") != "hit":
    failures.append("the damaged entry was not replaced")

# KILN_CACHE_DIR=off disables the disk cache.
if run(ir, "off", os.path.join(tmp, "o6")).get("cache") != "miss" or \
        run(ir, "off", os.path.join(tmp, "o7")).get("cache") != "miss":
    failures.append("KILN_CACHE_DIR=off must always miss")

for failure in failures:
    print("FAIL", failure)
print(f"compile_cache: {'ok' if not failures else 'failed'}")
exit_test(bool(failures))
