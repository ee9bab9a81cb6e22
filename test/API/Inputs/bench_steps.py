"""Runs each step of kiln-bench-steps (bench/steps.cpp) once in warm-up and
once per timing round (6 steps), and the same 6 steps of bench/run.py's
PyTorch side: the sums of their results must agree. For the MLP that is 6
SGD steps through the C++ API's autograd against torch.autograd."""
import importlib.util
import json
import os
import subprocess
import sys

binary, root = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location(
    "bench_run", os.path.join(root, "bench", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

failures = 0
for name, label, make, _ in bench.STEPS:
    out = subprocess.run([binary, name, "1"], capture_output=True, text=True,
                         check=True).stdout
    kiln = json.loads(out)["check"]
    step = make()
    torch_sum = sum(step() for _ in range(6))
    ok = abs(kiln - torch_sum) <= 1e-4 * max(1.0, abs(torch_sum))
    failures += not ok
    print(f"{name}: kiln {kiln:.6g} torch {torch_sum:.6g} "
          f"{'ok' if ok else 'MISMATCH'}")
sys.exit(1 if failures else 0)
