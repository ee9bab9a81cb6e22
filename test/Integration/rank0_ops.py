# Every op that takes a dim or dims, on a rank-0 tensor (dim 0 and -1, as
# PyTorch takes them; dims absent, [0] and [-1], keepdim either way),
# after a fused producer (exp) and before a fused consumer (x * x), fused
# and unfused (--no-fuse), against PyTorch. Two crashes of this kind were
# found in the sixty-fifth session -- the column groups' softmax rewrite
# and index_add's lowering read the size of a dim a number does not have
# -- so the whole class is swept here, and the GPU pipeline's PTX of each
# is built too (compiled, not run, where no GPU is present).
# RUN: %python %s
import os

import torch

from kiln_testing import Checker, run_tool, ttype

c = Checker("rank0_ops")
x = torch.tensor(-0.75)
i = torch.tensor(0)
F, I = ttype(x), ttype(i)
p = torch.exp(x)


def ir(body, result_type, consumer=True):
    """@f(%x, %i): %p = exp(x), then `body` (defining %r), then r * r."""
    post = (f"  %y = kiln.mul %r, %r : {result_type}, {result_type}\n"
            if consumer else "")
    ret = "%y" if consumer else "%r"
    return (f"func.func @f(%x: {F}, %i: {I}) -> {result_type} {{\n"
            f"  %p = kiln.exp %x : {F}\n  {body}\n{post}"
            f"  return {ret} : {result_type}\n}}\n")


cases = []
reductions = {"sum": torch.sum, "mean": torch.mean, "prod": torch.prod,
              "amax": torch.amax, "amin": torch.amin, "norm": None}
for name, fn in reductions.items():
    for dims in (None, 0, -1):
        for keep in (True, False):
            attr = "" if dims is None else f"dims = array<i64: {dims}>, "
            body = (f'%r = "kiln.{name}"(%p) {{{attr}keepdim = {str(keep).lower()}}}'
                    f" : ({F}) -> {F}")
            if name == "norm":
                want = torch.linalg.vector_norm(p)
            elif name in ("amax", "amin") or dims is not None:
                want = fn(p, 0 if dims is None else dims, keepdim=keep) \
                    if name != "prod" else torch.prod(p, dims, keepdim=keep)
            else:
                want = fn(p)
            cases.append((f"{name} dims={dims} keepdim={keep}", ir(body, F),
                          want * want))
for name, fn in (("max", torch.max), ("min", torch.min)):
    body = f'%r, %ri = "kiln.{name}"(%p) {{dim = 0 : i64}} : ({F}) -> ({F}, {I})'
    v = fn(p, 0).values
    cases.append((f"{name} dim=0", ir(body, F), v * v))
for name, fn in (("argmax", torch.argmax), ("argmin", torch.argmin)):
    for attr in ("{dim = -1 : i64}", ""):
        body = f'%r = "kiln.{name}"(%p) {attr} : ({F}) -> {I}'
        cases.append((f"{name} {attr or 'all'}", ir(body, I, False),
                      fn(p, -1) if attr else fn(p)))
body = f'%r, %ri = "kiln.topk"(%p) {{k = 1 : i64, dim = 0 : i64}} : ({F}) -> ({F}, {I})'
v = torch.topk(p, 1, 0).values
cases.append(("topk k=1 dim=0", ir(body, F), v * v))
body = f'%r, %ri = "kiln.kthvalue"(%p) {{k = 1 : i64, dim = -1 : i64}} : ({F}) -> ({F}, {I})'
v = torch.kthvalue(p, 1, -1).values
cases.append(("kthvalue k=1 dim=-1", ir(body, F), v * v))
for name, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    for dim in (0, -1):
        body = f'%r = "kiln.{name}"(%p) {{dim = {dim} : i64}} : ({F}) -> {F}'
        v = fn(p, dim)
        cases.append((f"{name} dim={dim}", ir(body, F), v * v))
for name in ("gather", "index_select"):
    body = f'%r = "kiln.{name}"(%p, %i) {{dim = 0 : i64}} : ({F}, {I}) -> {F}'
    cases.append((f"{name} dim=0", ir(body, F), p * p))
body = f'%r = "kiln.take"(%p, %i) : ({F}, {I}) -> {F}'
cases.append(("take", ir(body, F), p * p))
for name, fn in (("scatter_add", torch.scatter_add),
                 ("index_add", torch.index_add)):
    for dim in (0, -1):
        body = (f'%r = "kiln.{name}"(%p, %i, %p) {{dim = {dim} : i64}}'
                f" : ({F}, {I}, {F}) -> {F}")
        v = fn(p, dim, i, p)
        cases.append((f"{name} dim={dim}", ir(body, F), v * v))
for accumulate in (False, True):
    body = (f'%r = "kiln.put"(%p, %i, %p) {{accumulate = {str(accumulate).lower()}}}'
            f" : ({F}, {I}, {F}) -> {F}")
    v = p.put(i, p, accumulate=accumulate)
    cases.append((f"put accumulate={accumulate}", ir(body, F), v * v))

for label, text, want in cases:
    for extra in ([], ["--no-fuse"]):
        c.check(f"{label}{' unfused' if extra else ''}", text, [x, i], want,
                extra_args=extra)

# The GPU pipeline on all of them: one module, one kiln-compile.
module = "".join(text.replace("@f(", f"@f{n}(")
                 for n, (_, text, _) in enumerate(cases))
c.cases += 1
proc = run_tool([os.environ.get("KILN_COMPILE", "kiln-compile"),
                 c.ir_file(module), "--target=cuda", "--emit=ptx"])
if proc.returncode != 0 or ".entry" not in proc.stdout:
    c.fail("the GPU pipeline's PTX", f"exit {proc.returncode}: {proc.stderr}")

# Gradients through the same ops (kiln-autodiff, then kiln-run).
c.check_vjp("softmax dim=0 gradient", ir(
    f'%r = "kiln.softmax"(%p) {{dim = 0 : i64}} : ({F}) -> {F}', F),
    [x, i], lambda a, b: torch.softmax(torch.exp(a), 0) ** 2)
c.check_vjp("amax gradient", ir(
    f'%r = "kiln.amax"(%p) {{dims = array<i64: 0>, keepdim = false}} : ({F}) -> {F}', F),
    [x, i], lambda a, b: torch.amax(torch.exp(a), 0) ** 2)
c.check_vjp("index_add gradient", ir(
    f'%r = "kiln.index_add"(%p, %i, %p) {{dim = 0 : i64}} : ({F}, {I}, {F}) -> {F}', F),
    [x, i], lambda a, b: torch.index_add(torch.exp(a), 0, b, torch.exp(a)) ** 2)
c.finish()
