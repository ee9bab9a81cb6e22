#!/usr/bin/python3
"""Kiln vs PyTorch eager, side by side in one run, same thread counts.

Usage: bench/run.py [--build build] [--threads 1,2] [--repeat 5] [--only NAME]

For each workload of the CPU issue it writes the inputs as .npy, runs
`kiln-run --repeat=R --stats --threads=T` (timing excludes compilation and
file I/O) and times the same computation with PyTorch (torch.set_num_threads
(T), best of R after a warm-up). It prints the speedup (torch / kiln) next to
the target, and for memory-bound reductions the fraction of the machine's
STREAM bandwidth (measured by kiln-stream at the same thread count).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tensor_type(shape, dtype="f32"):
    return "tensor<" + "".join(f"{d}x" for d in shape) + dtype + ">"


X = (4096, 32768)
XT = tensor_type(X)


def workloads():
    """(name, ir, input names, torch fn, target speedup, bytes read or None)"""
    g = tensor_type((4096, 4096))
    gi = tensor_type((4096, 256), "i64")
    go = tensor_type((4096, 256))
    big = tensor_type((1, 16 << 20))
    return [
        ("topk k=16 (4096x32768)",
         f"""func.func @f(%x: {XT}) -> ({tensor_type((4096, 16))}, {tensor_type((4096, 16), 'i64')}) {{
  %v, %i = kiln.topk %x {{k = 16 : i64, dim = 1 : i64}} : {XT}
  return %v, %i : {tensor_type((4096, 16))}, {tensor_type((4096, 16), 'i64')}
}}""", ["x"], lambda t: torch.topk(t["x"], 16, 1), 4.0, None),
        ("topk k=1024 (4096x32768)",
         f"""func.func @f(%x: {XT}) -> ({tensor_type((4096, 1024))}, {tensor_type((4096, 1024), 'i64')}) {{
  %v, %i = kiln.topk %x {{k = 1024 : i64, dim = 1 : i64}} : {XT}
  return %v, %i : {tensor_type((4096, 1024))}, {tensor_type((4096, 1024), 'i64')}
}}""", ["x"], lambda t: torch.topk(t["x"], 1024, 1), 4.0, None),
        ("topk k=100 (1x16M)",
         f"""func.func @f(%x: {big}) -> ({tensor_type((1, 100))}, {tensor_type((1, 100), 'i64')}) {{
  %v, %i = kiln.topk %x {{k = 100 : i64, dim = 1 : i64}} : {big}
  return %v, %i : {tensor_type((1, 100))}, {tensor_type((1, 100), 'i64')}
}}""", ["big"], lambda t: torch.topk(t["big"], 100, 1), 4.0, None),
        ("argmax dim 1 (4096x32768)",
         f"""func.func @f(%x: {XT}) -> {tensor_type((4096,), 'i64')} {{
  %i = kiln.argmax %x {{dim = 1 : i64}} : {XT}
  return %i : {tensor_type((4096,), 'i64')}
}}""", ["x"], lambda t: torch.argmax(t["x"], 1), 3.0, None),
        ("max with indices dim 1 (4096x32768)",
         f"""func.func @f(%x: {XT}) -> ({tensor_type((4096,))}, {tensor_type((4096,), 'i64')}) {{
  %v, %i = kiln.max %x {{dim = 1 : i64}} : {XT}
  return %v, %i : {tensor_type((4096,))}, {tensor_type((4096,), 'i64')}
}}""", ["x"], lambda t: torch.max(t["x"], 1), 3.0, None),
        ("sum dim 1 (4096x32768)",
         f"""func.func @f(%x: {XT}) -> {tensor_type((4096,))} {{
  %s = kiln.sum %x {{dims = array<i64: 1>}} : {XT}
  return %s : {tensor_type((4096,))}
}}""", ["x"], lambda t: torch.sum(t["x"], 1), 1.0, 4096 * 32768 * 4),
        ("gather dim 1 (4096x4096, idx 4096x256)",
         f"""func.func @f(%x: {g}, %i: {gi}) -> {go} {{
  %y = kiln.gather %x, %i {{dim = 1 : i64}} : {g}, {gi}
  return %y : {go}
}}""", ["g", "gi"], lambda t: torch.gather(t["g"], 1, t["gi"]), 2.0, None),
        ("softmax dim 1 (4096x4096)",
         f"""func.func @f(%x: {g}) -> {g} {{
  %y = kiln.softmax %x {{dim = 1 : i64}} : {g}
  return %y : {g}
}}""", ["g"], lambda t: torch.softmax(t["g"], 1), 3.0, None),
    ]


def make_inputs(directory, names):
    rng = np.random.default_rng(0)
    arrays = {}
    for name in names:
        if name == "x":
            arrays[name] = rng.standard_normal(X, dtype=np.float32)
        elif name == "big":
            arrays[name] = rng.standard_normal((1, 16 << 20), dtype=np.float32)
        elif name == "g":
            arrays[name] = rng.standard_normal((4096, 4096), dtype=np.float32)
        elif name == "gi":
            arrays[name] = rng.integers(0, 4096, (4096, 256), dtype=np.int64)
    paths = {}
    for name, array in arrays.items():
        paths[name] = os.path.join(directory, f"{name}.npy")
        np.save(paths[name], array)
    return arrays, paths


def run_kiln(kiln_run, ir_path, inputs, threads, repeat):
    args = [kiln_run, ir_path, f"--threads={threads}", f"--repeat={repeat}",
            "--stats"] + [f"--input={p}" for p in inputs]
    proc = subprocess.run(args, capture_output=True, text=True)
    m = re.search(r"kiln-stats: (\{.*\})", proc.stderr)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"kiln-run failed: {proc.stderr}")
    return json.loads(m.group(1))


def time_torch(fn, tensors, threads, repeat):
    torch.set_num_threads(threads)
    fn(tensors)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(tensors)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="")
    opts = parser.parse_args()
    kiln_run = os.path.join(opts.build, "bin", "kiln-run")
    stream = os.path.join(opts.build, "bin", "kiln-stream")
    thread_counts = sorted({int(t) for t in opts.threads.split(",")})
    selected = [w for w in workloads() if opts.only in w[0]]
    names = sorted({n for w in selected for n in w[2]})
    env_cache = tempfile.mkdtemp(prefix="kiln-bench-cache-")
    os.environ["KILN_CACHE_DIR"] = env_cache

    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        arrays, paths = make_inputs(tmp, names)
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        bandwidth = {}
        for t in thread_counts:
            out = subprocess.run([stream, f"--threads={t}"], capture_output=True,
                                 text=True, check=True).stdout
            bandwidth[t] = json.loads(out)
        print(f"machine: {os.cpu_count()} cores; STREAM copy/read GB/s: " +
              ", ".join(f"{t} thr {b['copy_gbs']:.1f}/{b['read_gbs']:.1f}"
                        for t, b in bandwidth.items()))
        print(f"torch {torch.__version__}; kiln {kiln_run}\n")
        header = (f"{'workload':42} {'thr':>3} {'kiln ms':>9} {'torch ms':>9} "
                  f"{'speedup':>8} {'target':>7}  note")
        print(header)
        print("-" * len(header))
        for name, ir, inputs, fn, target, bytes_read in selected:
            ir_path = os.path.join(tmp, "w.mlir")
            with open(ir_path, "w") as f:
                f.write(ir + "\n")
            for t in thread_counts:
                stats = run_kiln(kiln_run, ir_path, [paths[n] for n in inputs], t,
                                 opts.repeat)
                kiln_ms = stats["run_ms_min"]
                torch_ms = time_torch(fn, tensors, t, opts.repeat)
                speedup = torch_ms / kiln_ms
                note = ""
                if bytes_read:
                    gbs = bytes_read / (kiln_ms / 1000) / 1e9
                    frac = gbs / bandwidth[t]["read_gbs"]
                    note = (f"{gbs:.1f} GB/s = {100 * frac:.0f}% of STREAM "
                            f"read ({bandwidth[t]['read_gbs']:.1f})")
                status = "ok" if speedup >= target else "MISS"
                print(f"{name:42} {t:>3} {kiln_ms:9.2f} {torch_ms:9.2f} "
                      f"{speedup:7.2f}x {target:6.1f}x  {status} {note}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
