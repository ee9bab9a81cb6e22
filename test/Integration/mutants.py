# Mutation testing of the tools' error handling (tools.md: no input, however
# malformed, may crash a tool or hang it). Each mutant is a function from the
# dialect's own tests (test/Dialect/Kiln, test/Conversion/KilnToLinalg and
# Upstream) with
# one to three random edits: an integer or float literal replaced (0, -1,
# huge, NaN, ...), a dimension of a tensor type changed (0, 1, dynamic, an
# extra dim), an element type swapped (f16, bf16, i8, ...), a line deleted,
# an SSA name or an attribute name swapped. Every mutant goes through
# kiln-opt with one of the passes or pipelines (verify only, canonicalize,
# decompose, autodiff, fuse with and without row groups, the CPU and GPU
# pipelines); one that still verifies and takes static tensors is also run
# by kiln-run on small random inputs (integers 0..3, so some indices are out
# of range). What must hold:
#   - kiln-opt exits 0, or 1 with an "error:" diagnostic;
#   - kiln-run exits 0, 1 or 2, with an "error" message when it is not 0;
#   - never a signal, a timeout, an LLVM fatal error, an assertion or a stack
#     dump (and, under `make check-asan`, no sanitizer report: the sanitizers
#     halt with exit 1 and their report has none of the error texts above,
#     so it fails here too).
# KILN_MUTANTS=N KILN_MUTANT_SEED=S run more, or others; the test's own are
# fixed (seed 1), so every run is the same.
# RUN: %python %s
import glob
import math
import os
import random
import re
import subprocess

import numpy as np

from kiln_testing import KILN_OPT, KILN_RUN
from scratch import exit_test, scratch_dir

COUNT = int(os.environ.get("KILN_MUTANTS", "300"))
SEED = int(os.environ.get("KILN_MUTANT_SEED", "1"))
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(
    glob.glob(os.path.join(HERE, "..", "Dialect", "Kiln", "**", "*.mlir"),
              recursive=True) +
    glob.glob(os.path.join(HERE, "..", "Conversion", "KilnToLinalg", "*.mlir")) +
    # Upstream ops in IR files: their index, size and division checks.
    glob.glob(os.path.join(HERE, "..", "Conversion", "Upstream", "*.mlir")))
PASSES = [[], ["--canonicalize"], ["--kiln-decompose"], ["--kiln-autodiff"],
          ["--kiln-fuse-elementwise"],
          ["--kiln-fuse-elementwise=row-groups=true"],
          ["--kiln-autodiff", "--kiln-cpu-pipeline"],
          ["--kiln-cpu-pipeline"], ["--kiln-gpu-pipeline"]]
CRASH_TEXTS = ["Stack dump", "PLEASE submit", "LLVM ERROR", "Assertion",
               "Sanitizer", "runtime error:"]
TYPES = ["f32", "f64", "i64", "i32", "i1", "f16", "bf16", "i8"]
NP_TYPES = {"f32": np.float32, "f64": np.float64, "i64": np.int64,
            "i32": np.int32, "i1": np.bool_}


def functions():
    """Every function of the source files, without comments or RUN lines."""
    found = []
    for path in SOURCES:
        with open(path) as f:
            text = f.read()
        for chunk in text.split("// -----"):
            lines = [l for l in chunk.splitlines()
                     if not l.strip().startswith("//")]
            chunk = "\n".join(lines)
            if "kiln." in chunk and "func.func" in chunk:
                found.append(chunk)
    return found


def replace(text, match, new):
    return text[:match.start()] + new + text[match.end():]


def mutate(rng, text):
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(7)
        if kind == 0:
            spots = list(re.finditer(r"(?<![%\w.])-?\d+(?![\w.])", text))
            new = str(rng.choice([0, 1, -1, 2, -2, 3, 7, 64, -100, 1 << 31,
                                  1 << 40, (1 << 63) - 1]))
        elif kind == 1:
            spots = list(re.finditer(r"(?<=tensor<)[0-9x?]*", text))
            new = rng.choice(["", "0x", "1x", "3x", "?x", "2x3x", "0x0x"])
        elif kind == 2:
            spots = list(re.finditer(r"\b(f32|f64|i64|i32|i1)\b", text))
            new = rng.choice(TYPES)
        elif kind == 3:
            lines = text.splitlines()
            if len(lines) > 3:
                del lines[rng.randrange(len(lines))]
                text = "\n".join(lines)
            continue
        elif kind == 4:
            spots = list(re.finditer(r"%\w+", text))
            new = rng.choice(spots).group() if spots else ""
        elif kind == 5:
            spots = list(re.finditer(
                r"\b(dim|dims|k|keepdim|largest|sorted|p|min|max|start|step|"
                r"ignore_index|reduction)\b(?= =)", text))
            new = rng.choice(["dim", "k", "keepdim", "dims", "p", "largest"])
        else:
            spots = list(re.finditer(r"-?\d+\.\d+e[+-]\d+", text))
            new = rng.choice(["0x7FC00000", "-0.000000e+00", "1.0e+300",
                              "-1.5", "0x7F800000"])
        if spots:
            text = replace(text, rng.choice(spots), new)
    return text


def signature(text):
    """(name, [(shape, element type)]) of the first public function whose
    arguments are all static tensors of types .npy can hold, or None."""
    for m in re.finditer(r"func\.func @(\w+)\(([^)]*)\)", text):
        args = []
        for arg in filter(None, (a.strip() for a in m.group(2).split(","))):
            t = re.fullmatch(r"%\w+: tensor<((?:\d+x)*)(\w+)>", arg)
            if not t or t.group(2) not in NP_TYPES:
                break
            shape = [int(d) for d in t.group(1).split("x") if d]
            if math.prod(shape) > 1 << 16:
                break
            args.append((shape, t.group(2)))
        else:
            return m.group(1), args
    return None


def bad_output(code, stderr, allowed, needs):
    if code not in allowed:
        return f"exit {code}"
    if code != 0 and needs not in stderr:
        return f"exit {code} without '{needs}'"
    for text in CRASH_TEXTS:
        if text in stderr:
            return f"'{text}' in the output"
    return None


def run(args, timeout=120):
    try:
        proc = subprocess.run(args, capture_output=True, text=True,
                              timeout=timeout)
        return proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        return "timeout", ""


def main():
    rng = random.Random(SEED)
    data = np.random.default_rng(SEED)
    sources = functions()
    tmp = scratch_dir("kiln-mutants-")
    failures = runs = verified = 0
    for i in range(COUNT):
        text = mutate(rng, rng.choice(sources))
        passes = rng.choice(PASSES)
        path = os.path.join(tmp, f"mutant{i}.mlir")
        with open(path, "w") as f:
            f.write(text)
        code, stderr = run([KILN_OPT, path] + passes)
        problem = bad_output(code, stderr, (0, 1), "error:")
        verified += code == 0
        sig = signature(text) if code == 0 else None
        # Inputs too large to make here (a mutated size verifies up to 2^59
        # elements) are not run.
        if sig and sum(math.prod(d for d in shape if d)
                       for shape, _ in sig[1]) > 1 << 24:
            sig = None
        if not problem and sig:
            name, args = sig
            inputs = []
            for j, (shape, elem) in enumerate(args):
                if elem in ("f32", "f64"):
                    value = data.standard_normal(shape).astype(NP_TYPES[elem])
                else:
                    value = data.integers(0, 4, shape).astype(NP_TYPES[elem])
                inputs.append(os.path.join(tmp, f"mutant{i}-arg{j}.npy"))
                np.save(inputs[-1], value)
            code, stderr = run([KILN_RUN, path, f"--entry={name}",
                                "--threads=2"] +
                               [f"--input={p}" for p in inputs])
            runs += 1
            problem = bad_output(code, stderr, (0, 1, 2), "error")
            passes = ["kiln-run"]
        if problem:
            failures += 1
            print(f"FAIL mutants: mutant {i} ({' '.join(passes) or 'verify'})"
                  f": {problem}\n{text}\n{stderr[-3000:]}")
    print(f"mutants: {COUNT - failures}/{COUNT} handled ({verified} verified, "
          f"{runs} run by kiln-run)")
    # The mutants must reach the passes and the runtime, or the test
    # proves little.
    if verified < COUNT // 10 or runs < COUNT // 20:
        print("FAIL mutants: too few mutants verified or ran")
        failures += 1
    exit_test(failures > 0)


main()
