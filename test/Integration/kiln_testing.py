"""Helpers for Kiln's numerical tests: run IR through kiln-run and compare
the results with PyTorch.

A test script builds cases with `Checker.check(ir, inputs, expected)`:
`inputs` are torch tensors (written as .npy), `expected` a list of torch
tensors (or one). Floats compare with a tolerance (NaN positions must
match exactly), integers and booleans exactly. Every failing case is
reported; the script exits non-zero if any failed.
"""
import hashlib
import itertools
import os
import select
import subprocess

import numpy as np
import torch

from scratch import exit_test, scratch_dir

KILN_RUN = os.environ.get("KILN_RUN", "kiln-run")
KILN_OPT = os.environ.get("KILN_OPT", "kiln-opt")
KILN_GRADCHECK = os.environ.get("KILN_GRADCHECK", "kiln-gradcheck")
# Extra kiln-run options for every case, e.g. "--target=cuda" to run the
# whole numerical suite on a GPU (test/GPU does).
KILN_RUN_ARGS = os.environ.get("KILN_RUN_ARGS", "").split()
# tools/kiln-batch: when set (lit sets it), kiln-run and kiln-gradcheck
# command lines of the same build run in one kiln-batch process instead of a
# process each (run_tool).
KILN_BATCH = os.environ.get("KILN_BATCH")

DTYPES = {
    torch.float32: "f32",
    torch.float64: "f64",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.bool: "i1",
}


def ttype(t):
    """MLIR tensor type of a torch tensor."""
    dims = "".join(f"{d}x" for d in t.shape)
    return f"tensor<{dims}{DTYPES[t.dtype]}>"


class Batch:
    """A kiln-batch process (tools/kiln-batch/kiln-batch.cpp): it runs tool
    command lines through the tools' own main functions, one after another,
    so that a test pays the process start-up once instead of per case. A
    run that crashes ends the process: that run gets the process's exit
    status, the crash is kept in `problems`, and the next run starts a new
    process."""

    TOOLS = ("kiln-run", "kiln-gradcheck")

    def __init__(self, path):
        self.path = path
        self.proc = None
        self.problems = []
        self.tmp = scratch_dir("kiln-batch-")
        self.out = os.path.join(self.tmp, "stdout")
        self.err = os.path.join(self.tmp, "stderr")

    def serves(self, args):
        """Whether `args` runs one of the tools of kiln-batch's build."""
        return (os.path.basename(args[0]) in self.TOOLS and
                os.path.dirname(os.path.abspath(args[0])) ==
                os.path.dirname(os.path.abspath(self.path)))

    def run(self, args, timeout):
        """Like subprocess.run(args, capture_output=True, text=True)."""
        fields = [os.path.basename(args[0]), self.out, self.err] + [
            str(a) for a in args[1:]]
        if any("\t" in f or "\n" in f for f in fields):
            raise ValueError(f"kiln-batch: a tab or newline in {args}")
        if self.proc is None:
            self.proc = subprocess.Popen([self.path], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write("\t".join(fields) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise subprocess.TimeoutExpired(args, timeout)
        reply = self.proc.stdout.readline()
        with open(self.out, errors="replace") as f:
            stdout = f.read()
        with open(self.err, errors="replace") as f:
            stderr = f.read()
        if reply:
            code = int(reply)
        else:  # the run crashed the process
            code = self.proc.wait()
            self.proc = None
            self.problems.append(f"kiln-batch ended with exit status {code} "
                                 f"running {' '.join(args)}:\n{stderr}")
        return subprocess.CompletedProcess(args, code, stdout, stderr)

    def close(self):
        """Ends the process (input closed); a non-zero exit status -- e.g.
        LeakSanitizer's, when the runs leaked -- is a problem."""
        if self.proc is not None:
            self.proc.stdin.close()
            code = self.proc.wait()
            self.proc = None
            if code != 0:
                self.problems.append(f"kiln-batch exited with status {code} "
                                     "(its report is above)")
        return self.problems


_batch = Batch(KILN_BATCH) if KILN_BATCH else None


def run_tool(args, timeout=300):
    """Runs a tool's command line like subprocess.run(capture_output=True,
    text=True): in the kiln-batch process when KILN_BATCH is set and the
    tool is one it runs, else in a process of its own."""
    try:
        if _batch is not None and _batch.serves(args):
            return _batch.run(args, timeout)
        return subprocess.run(args, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return timed_out(args, timeout)


def timed_out(args, timeout):
    """The result of a run killed after `timeout` seconds: exit status 124
    (as timeout(1) gives) and a message, so that the case fails and the
    script goes on to the next one instead of ending on the exception."""
    return subprocess.CompletedProcess(
        args, 124, "", f"{os.path.basename(str(args[0]))}: killed after "
        f"{timeout} s (timed out): {' '.join(str(a) for a in args)}\n")


class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = 0
        self.cases = 0
        self.tmp = scratch_dir(f"kiln-{name}-")

    def case_dir(self):
        path = os.path.join(self.tmp, f"case{self.cases}")
        os.makedirs(path, exist_ok=True)
        return path

    def save_inputs(self, inputs):
        """Writes `inputs` as .npy files; returns their --input options."""
        options = []
        for i, t in enumerate(inputs):
            path = os.path.join(self.case_dir(), f"arg{i}.npy")
            np.save(path, t.detach().numpy())
            options.append(f"--input={path}")
        return options

    def ir_file(self, ir):
        """The path of a file holding `ir`, named `in.mlir` (the name error
        messages show): one file per distinct text, linked from the case's
        directory. Cases that run the same IR on other inputs, thread counts
        or options then share its compiled code: the compile cache's key
        holds the IR's locations, so the file's path. (About half of the
        reductions' cases repeat an earlier case's IR.)"""
        digest = hashlib.sha1(ir.encode()).hexdigest()[:20]
        path = os.path.join(self.tmp, "ir", digest, "in.mlir")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(ir)
        # in.mlir, in-2.mlir, ... for each distinct IR the case runs.
        case_dir = self.case_dir()
        for n in itertools.count(1):
            link = os.path.join(case_dir,
                                "in.mlir" if n == 1 else f"in-{n}.mlir")
            if not os.path.lexists(link):
                os.symlink(path, link)
            if os.readlink(link) == path:
                return path

    def run(self, ir, inputs, extra_args=()):
        """Runs `ir` on `inputs`; returns (returncode, outputs, stderr)."""
        case_dir = self.case_dir()
        ir_path = self.ir_file(ir)
        args = [KILN_RUN, ir_path, f"--output-dir={case_dir}/out"]
        args.extend(self.save_inputs(inputs))
        args.extend(KILN_RUN_ARGS)
        args.extend(extra_args)
        proc = run_tool(args)
        outputs = []
        if proc.returncode == 0:
            i = 0
            while os.path.exists(os.path.join(case_dir, "out", f"out{i}.npy")):
                outputs.append(torch.from_numpy(
                    np.load(os.path.join(case_dir, "out", f"out{i}.npy"))))
                i += 1
        return proc.returncode, outputs, proc.stderr

    def check(self, label, ir, inputs, expected, rtol=None, atol=None,
              extra_args=()):
        self.cases += 1
        if isinstance(expected, torch.Tensor):
            expected = [expected]
        return self.check_run(label, ir, inputs, expected, rtol, atol,
                              extra_args)

    def check_vjp(self, label, ir, inputs, torch_fn, rtol=None, atol=None,
                  entry="f", cts=None, expected=None):
        """Derives @f_vjp from `ir` with kiln-opt --kiln-autodiff, runs it on
        `inputs` and cotangents (`cts`, default random), and compares with
        torch.autograd.grad of `torch_fn` (zeros for unused arguments) and,
        when given, with the literal `expected` gradients."""
        self.cases += 1
        args = [t.detach().clone().requires_grad_(t.dtype.is_floating_point)
                for t in inputs]
        outs = torch_fn(*args)
        if not isinstance(outs, (tuple, list)):
            outs = (outs,)
        float_outs = [o for o in outs if o.dtype.is_floating_point]
        if cts is None:
            cts = [torch.randn(o.shape, dtype=o.dtype) for o in float_outs]
        float_args = [a for a in args if a.dtype.is_floating_point]
        # Outputs that depend on no argument contribute nothing.
        live = [(o, ct) for o, ct in zip(float_outs, cts) if o.requires_grad]
        grads = torch.autograd.grad([o for o, _ in live],
                                    float_args, [ct for _, ct in live],
                                    allow_unused=True)
        from_torch = [torch.zeros_like(a) if g is None else g
                      for a, g in zip(float_args, grads)]
        if expected is not None:
            for i, (want, got) in enumerate(zip(expected, from_torch)):
                problem = compare(got, want)
                if problem:
                    return self.fail(label, f"PyTorch's gradient #{i} is not "
                                     f"the expected one: {problem}")
        expected = from_torch
        vjp_ir, error = self.autodiff(ir, entry)
        if vjp_ir is None:
            return self.fail(label, f"kiln-opt --kiln-autodiff failed:\n{error}")
        return self.check_run(label, vjp_ir, list(inputs) + cts, expected,
                              rtol, atol, [f"--entry={entry}_vjp"])

    def autodiff(self, ir, entry="f"):
        """Returns (IR with @<entry>_vjp, None) or (None, stderr)."""
        args = [KILN_OPT, f"--kiln-autodiff=functions={entry}", "-"]
        try:
            proc = subprocess.run(args, input=ir, capture_output=True,
                                  text=True, timeout=300)
        except subprocess.TimeoutExpired:
            proc = timed_out(args, 300)
        if proc.returncode != 0:
            return None, proc.stderr
        return proc.stdout, None

    def check_run(self, label, ir, inputs, expected, rtol, atol, extra_args):
        code, outputs, stderr = self.run(ir, inputs, extra_args)
        if code != 0:
            return self.fail(label, f"kiln-run exited with {code}:\n{stderr}")
        if len(outputs) != len(expected):
            return self.fail(label, f"{len(outputs)} results, expected "
                             f"{len(expected)}")
        for i, (got, want) in enumerate(zip(outputs, expected)):
            problem = compare(got, want, rtol, atol)
            if problem:
                return self.fail(label, f"result #{i}: {problem}\n"
                                 f"  got:      {got}\n  expected: {want}")
        return True

    def run_gradcheck(self, ir, inputs, extra_args=()):
        """Runs kiln-gradcheck (f64 finite differences) on `ir`; returns
        (exit code, its output)."""
        ir_path = self.ir_file(ir)
        proc = run_tool([KILN_GRADCHECK, ir_path] + self.save_inputs(inputs) +
                        list(extra_args))
        return proc.returncode, proc.stdout + proc.stderr

    def gradcheck(self, label, ir, inputs, extra_args=()):
        """Checks `ir`'s derived gradient with kiln-gradcheck."""
        self.cases += 1
        code, report = self.run_gradcheck(ir, inputs, extra_args)
        if code != 0:
            return self.fail(label, f"kiln-gradcheck exited with {code}:\n"
                             f"{report}")
        return True

    def expect_error(self, label, ir, inputs, code, message, extra_args=()):
        """Checks that kiln-run exits with `code` and prints `message`."""
        self.cases += 1
        got, _, stderr = self.run(ir, inputs, extra_args)
        if got != code or message not in stderr:
            return self.fail(label, f"expected exit {code} with '{message}', "
                             f"got exit {got}:\n{stderr}")
        return True

    def fail(self, label, message):
        self.failures += 1
        print(f"FAIL {self.name}: {label}: {message}")
        return False

    def finish(self):
        if _batch is not None:
            for problem in _batch.close():
                self.fail("kiln-batch", problem)
        print(f"{self.name}: {self.cases - self.failures}/{self.cases} cases "
              f"passed")
        exit_test(self.failures > 0)


def compare(got, want, rtol=None, atol=None):
    """Returns a description of the difference, or None."""
    if tuple(got.shape) != tuple(want.shape):
        return f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.is_floating_point:
        if rtol is None:
            rtol = 1e-5 if want.dtype == torch.float32 else 1e-12
        if atol is None:
            atol = 1e-6 if want.dtype == torch.float32 else 1e-12
        if not torch.equal(torch.isnan(got), torch.isnan(want)):
            return "NaN positions differ"
        if not torch.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            diff = (got - want).abs().nan_to_num(0).max().item()
            return f"values differ (max abs diff {diff})"
        return None
    if not torch.equal(got, want):
        return "values differ"
    return None


def same_bits(got, want):
    """Equal shapes, dtypes and bits, except that any NaN equals any NaN
    (torch tensors or NumPy arrays). A NaN's sign and payload are not part
    of Kiln's bitwise guarantees: LLVM treats the sign of a NaN that
    arithmetic produces as unspecified (it rewrites `0 + -x` as `0 - x`, so
    the sum of a negated -NaN is -NaN where the two ops share a kernel and
    +NaN where they do not), as IEEE 754 does for every op but neg, abs
    and copysign; PyTorch promises nothing about them either."""
    got, want = torch.as_tensor(got), torch.as_tensor(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    if not got.dtype.is_floating_point:
        return torch.equal(got, want)
    nan = torch.isnan(want)
    if not torch.equal(torch.isnan(got), nan):
        return False
    zero = torch.zeros_like(want)
    return (torch.where(nan, zero, got).numpy().tobytes() ==
            torch.where(nan, zero, want).numpy().tobytes())


def func_ir(inputs, body, outs, name="f"):
    """IR of `@name(%a0, %a1, ...)` over torch tensors `inputs`, returning
    %r0, %r1, ... of `outs` (torch tensors or MLIR type strings). `body` is
    one string or a list of lines; `{Ti}` in it stands for input i's type."""
    if isinstance(body, str):
        body = [line.strip() for line in body.splitlines() if line.strip()]
    args = ", ".join(f"%a{i}: {ttype(t)}" for i, t in enumerate(inputs))
    rtypes = ", ".join(o if isinstance(o, str) else ttype(o) for o in outs)
    lines = []
    for line in body:
        for i, t in enumerate(inputs):
            line = line.replace(f"{{T{i}}}", ttype(t))
        lines.append("  " + line)
    names = ", ".join(f"%r{i}" for i in range(len(outs)))
    return (f"func.func @{name}({args}) -> ({rtypes}) {{\n" +
            "\n".join(lines) + f"\n  return {names} : {rtypes}\n}}\n")


def unary_ir(op, t, attrs=""):
    return (f"func.func @f(%x: {ttype(t)}) -> {ttype(t)} {{\n"
            f"  %y = kiln.{op} %x {attrs} : {ttype(t)}\n"
            f"  return %y : {ttype(t)}\n}}\n")
