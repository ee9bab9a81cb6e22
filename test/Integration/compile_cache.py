# The compile cache (tools.md): the second process run of the same IR is a
# cache hit with near-zero compile time and the same results; a different
# IR (even only a location), a damaged entry or KILN_CACHE_DIR=off compile
# afresh; KILN_CACHE_POLICY bounds the directory (entries unused for too
# long, or the least recently used past a size or count, are removed; a hit
# counts as a use), and a malformed policy is an error.
# RUN: %python %s
import json
import os
import re
import subprocess
import time

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


def run_process(path, cache_dir, out, policy=None):
    env = dict(os.environ, KILN_CACHE_DIR=cache_dir)
    env.pop("KILN_CACHE_POLICY", None)
    if policy is not None:
        env["KILN_CACHE_POLICY"] = policy
    return subprocess.run([KILN_RUN, path, f"--input={x}", "--stats",
                           f"--output-dir={out}"], capture_output=True,
                          text=True, env=env, timeout=120)


def run(path, cache_dir, out, policy=None):
    proc = run_process(path, cache_dir, out, policy)
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

# Pruning (LLVM's pruneCache): only files named llvmcache-* are entries.
pruned = os.path.join(tmp, "pruned")
os.makedirs(pruned)
for name in ("llvmcache-stale", "notes.txt"):
    with open(os.path.join(pruned, name), "w") as f:
        f.write("x")
    os.utime(os.path.join(pruned, name), (0, 0))  # last used in 1970
run(ir, pruned, os.path.join(tmp, "o8"), policy="prune_interval=0s:prune_after=1h")
left = sorted(os.listdir(pruned))
if "llvmcache-stale" in left or "notes.txt" not in left or \
        sum(n.startswith("llvmcache-") for n in left) != 1:
    failures.append(f"prune_after=1h should remove only the stale entry: {left}")


def variant(lines):
    """The test's IR moved down `lines` lines: another entry."""
    path = os.path.join(tmp, f"v{lines}.mlir")
    with open(path, "w") as f:
        f.write("\n" * lines + open(ir).read())
    return path


def entries(directory):
    return {n for n in os.listdir(directory) if n.startswith("llvmcache-")}


# Least recently used first, a hit being a use: A and B stored, A made the
# oldest, then hit (so B is the oldest); C stored with room for two.
lru = os.path.join(tmp, "lru")
files = {}
for name, lines in (("A", 2), ("B", 3)):
    before = entries(lru) if os.path.isdir(lru) else set()
    run(variant(lines), lru, os.path.join(tmp, "o" + name))
    files[name] = (entries(lru) - before).pop()
now = time.time()
os.utime(os.path.join(lru, files["A"]), (now - 200, now - 200))
os.utime(os.path.join(lru, files["B"]), (now - 100, now - 100))
if run(variant(2), lru, os.path.join(tmp, "oA2")).get("cache") != "hit":
    failures.append("A should hit")
# Kiln marks a hit's entry used (access and modification time), as a read
# does not on a noatime mount; the modification time shows the mark.
if os.stat(os.path.join(lru, files["A"])).st_mtime < now - 60:
    failures.append("a hit should mark its entry used")
run(variant(4), lru, os.path.join(tmp, "oC"),
    policy="prune_interval=0s:cache_size_files=2")
left = entries(lru)
if len(left) != 2 or files["A"] not in left or files["B"] in left:
    failures.append(f"cache_size_files=2 should drop B, the least recently "
                    f"used: A={files['A']} B={files['B']} left {sorted(left)}")

# A malformed policy is an error when the disk cache is on, and ignored
# when it is off.
bad = run_process(ir, cache, os.path.join(tmp, "o9"), policy="size=1")
if bad.returncode != 1 or "KILN_CACHE_POLICY: Unknown key: 'size'" not in bad.stderr:
    failures.append(f"a malformed policy should exit 1 naming it: "
                    f"{bad.returncode} {bad.stderr}")
if run_process(ir, "off", os.path.join(tmp, "o10"),
               policy="size=1").returncode != 0:
    failures.append("KILN_CACHE_POLICY is not read with KILN_CACHE_DIR=off")

for failure in failures:
    print("FAIL", failure)
print(f"compile_cache: {'ok' if not failures else 'failed'}")
exit_test(bool(failures))
