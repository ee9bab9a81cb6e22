"""Assembles every kernel module of `kiln-compile --emit=ptx` output (or a
plain .ptx file) with ptxas for an architecture; fails on the first error.

Usage: assemble_ptx.py PTXAS ARCH FILE [MIN_MODULES]
"""
import os
import subprocess
import sys
import tempfile

ptxas, arch, path = sys.argv[1:4]
minimum = int(sys.argv[4]) if len(sys.argv) > 4 else 1
text = open(path).read()
# kiln-compile separates modules with "// kernel module @name" lines.
modules, current, name = [], [], "file"
for line in text.splitlines(keepends=True):
    if line.startswith("// kernel module @"):
        if "".join(current).strip():
            modules.append((name, "".join(current)))
        current, name = [], line.split("@", 1)[1].strip()
    else:
        current.append(line)
if "".join(current).strip():
    modules.append((name, "".join(current)))
if len(modules) < minimum:
    sys.exit(f"expected at least {minimum} PTX modules, found {len(modules)}")
entries = 0
with tempfile.TemporaryDirectory() as tmp:
    for index, (name, ptx) in enumerate(modules):
        source = os.path.join(tmp, f"m{index}.ptx")
        with open(source, "w") as f:
            f.write(ptx)
        proc = subprocess.run([ptxas, f"-arch={arch}", source, "-o",
                               os.devnull], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"ptxas rejected module @{name}:\n{proc.stderr}")
        entries += ptx.count(".entry")
print(f"assembled {len(modules)} module(s), {entries} kernel(s) for {arch}")
