#!/usr/bin/python3
"""Kiln vs PyTorch eager on an NVIDIA GPU, side by side in one run.

Usage: bench/gpu.py [--build build] [--repeat 20] [--only NAME]

The workloads of bench/run.py, run with `kiln-run --target=cuda --repeat=R
--stats`: Kiln's time is `device_ms_min`, the device time of the entry's
kernels measured with CUDA events (inputs already on the device; the copies
to and from the host are excluded). PyTorch runs the same computation on
CUDA tensors, timed with CUDA events, best of R after a warm-up (best of its
variants where a workload lists several). The GPU's copy bandwidth is
measured as PyTorch's device-to-device copy of 256 MB (bytes read +
written); elementwise chains print the fraction of it they reach.

GPU targets (issue #7): the fused chain >= 80% of the copy bandwidth; topk
(4096x32768, k=16 and k=1024) and softmax faster than PyTorch. The other
workloads print their ratio for information.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as cpu_bench  # noqa: E402

TARGETS = {
    "chain where/clamp/pow (16M)": dict(copy_target=0.8),
    "topk k=16 (4096x32768)": dict(speedup=1.0),
    "topk k=1024 (4096x32768)": dict(speedup=1.0),
    "softmax dim 1 (4096x4096)": dict(speedup=1.0),
}


def time_torch_cuda(fn, tensors, repeat):
    fn(tensors)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn(tensors)
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end))
    return best


def copy_bandwidth(repeat):
    src = torch.empty(64 << 20, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    ms = time_torch_cuda(lambda _: dst.copy_(src), None, repeat)
    return 2 * src.numel() * 4 / (ms / 1000) / 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(cpu_bench.ROOT, "build"))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", default="")
    parser.add_argument("--kiln-args", default="",
                        help="extra kiln-run options, e.g. --gpu-vectorize")
    opts = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device; nothing to measure")
        return 0
    kiln_run = os.path.join(opts.build, "bin", "kiln-run")
    selected = [w for w in cpu_bench.workloads() if opts.only in w["name"]]
    names = sorted({n for w in selected for n in w["inputs"]})
    copy_gbs = copy_bandwidth(opts.repeat)
    print(f"device: {torch.cuda.get_device_name()}; copy bandwidth "
          f"(torch D2D, 256 MB): {copy_gbs:.0f} GB/s")
    print(f"torch {torch.__version__}; kiln {kiln_run}\n")
    header = (f"{'workload':42} {'kiln ms':>9} {'torch ms':>9} {'speedup':>8} "
              f"{'target':>7}  note")
    print(header)
    print("-" * len(header))
    misses = 0
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        # The compile cache lives (and goes) with the inputs.
        os.environ["KILN_CACHE_DIR"] = os.path.join(tmp, "cache")
        arrays, paths = cpu_bench.make_inputs(tmp, names)
        tensors = {k: torch.from_numpy(v).cuda() for k, v in arrays.items()}
        for w in selected:
            ir_path = cpu_bench.write_workload_ir(w, opts.build, tmp)
            entries = w.get("entries", [(None, w["inputs"])])
            fns = w["torch"] if isinstance(w["torch"], list) else [w["torch"]]
            kiln_ms = 0.0
            kernels = []
            for entry, names_ in entries:
                args = [kiln_run, ir_path, "--target=cuda",
                        f"--repeat={opts.repeat}", "--stats"]
                args += opts.kiln_args.split()
                args += [f"--input={paths[n]}" for n in names_]
                if entry:
                    args.append(f"--entry={entry}")
                proc = subprocess.run(args, capture_output=True, text=True)
                m = cpu_bench.re.search(r"kiln-stats: (\{.*\})", proc.stderr)
                if proc.returncode != 0 or not m:
                    raise RuntimeError(f"kiln-run failed: {proc.stderr}")
                stats = cpu_bench.json.loads(m.group(1))
                kiln_ms += stats["device_ms_min"]
                kernels.append(str(stats["kernels"]))
            torch_ms = min(time_torch_cuda(fn, tensors, opts.repeat)
                           for fn in fns)
            speedup = torch_ms / kiln_ms
            target = TARGETS.get(w["name"], {})
            note = f"{'+'.join(kernels)} kernel(s)"
            ok = speedup >= target.get("speedup", 0.0)
            if w.get("copy_bytes"):
                gbs = w["copy_bytes"] / (kiln_ms / 1000) / 1e9
                frac = gbs / copy_gbs
                note += f"; {gbs:.0f} GB/s = {100 * frac:.0f}% of copy"
                if "copy_target" in target:
                    ok = ok and frac >= target["copy_target"]
                    note += f" (target {100 * target['copy_target']:.0f}%)"
            if w.get("read_bytes"):
                gbs = w["read_bytes"] / (kiln_ms / 1000) / 1e9
                note += f"; {gbs:.0f} GB/s read"
            status = ("ok" if ok else "MISS") if target else "-"
            misses += status == "MISS"
            tgt = f"{target['speedup']:.1f}x" if "speedup" in target else ""
            print(f"{w['name']:42} {kiln_ms:9.3f} {torch_ms:9.3f} "
                  f"{speedup:7.2f}x {tgt:>7}  {status} {note}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
