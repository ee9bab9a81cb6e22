# -*- Python -*-
# lit configuration of Kiln's regression tests.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "Kiln"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs",
                   "cuda_probe.py", "expect_exit.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%kiln_src", config.kiln_src_root))
config.substitutions.append(("%kiln_obj", config.kiln_obj_root))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
# `make check-asan` turns libomp's hot teams off (they leak when a team
# grows; Makefile): lit passes the sanitizers' options on, not libomp's.
# It also sets KILN_SANITIZER_RUN, which makes fusion.py run each graph
# once instead of three times.
llvm_config.with_system_environment(["KMP_HOT_TEAMS_MAX_LEVEL",
                                     "KILN_SANITIZER_RUN"])

tool_dirs = [config.kiln_tools_dir, config.llvm_tools_dir]
tools = ["kiln-opt", "kiln-compile"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# %expect_exit N cmd...: succeeds only if cmd exits with exactly N (no signal).
config.substitutions.append(
    ("%expect_exit",
     f"{config.python_executable} {os.path.join(config.kiln_src_root, 'test', 'expect_exit.py')}"))

# A C compiler (the LLVM toolchain's clang) and LLVM's library directory
# (libomp, which generated parallel loops call): kiln-compile's objects
# linked into C programs.
config.substitutions.append(
    ("%kiln_cc", os.path.join(config.llvm_tools_dir, "clang")))
config.substitutions.append(
    ("%llvm_libdir", os.path.join(os.path.dirname(config.llvm_tools_dir),
                                  "lib")))

# Numerical tests run Python (Debian's, with python3-torch) and kiln-run.
config.substitutions.append(("%python", config.python_executable))
config.environment["KILN_RUN"] = os.path.join(config.kiln_tools_dir, "kiln-run")
config.environment["KILN_OPT"] = os.path.join(config.kiln_tools_dir, "kiln-opt")
config.environment["KILN_COMPILE"] = os.path.join(config.kiln_tools_dir,
                                                  "kiln-compile")
config.environment["KILN_GRADCHECK"] = os.path.join(config.kiln_tools_dir,
                                                    "kiln-gradcheck")
# The numerical tests run their kiln-run/kiln-gradcheck cases in one
# kiln-batch process each (kiln_testing.run_tool); tests of the tools as
# processes (kiln_run_cli.py, compile_cache.py, mutants.py, ...) start
# their own.
config.environment["KILN_BATCH"] = os.path.join(config.kiln_tools_dir,
                                                "kiln-batch")
config.environment["PYTHONPATH"] = os.path.join(
    config.kiln_src_root, "test", "Integration")
tools.append("kiln-run")
llvm_config.add_tool_substitutions(["kiln-run", "kiln-gradcheck", "kiln-batch"],
                                 tool_dirs)
# Compiled code is cached per build tree, never in the user's cache.
config.environment["KILN_CACHE_DIR"] = os.path.join(
    config.kiln_obj_root, "test", "kiln-cache")

# GPU tests. `ptxas` (the CUDA toolkit's assembler, default
# /usr/local/cuda/bin) validates generated PTX; `cuda-device` (libcuda.so.1
# loads and reports a device) runs the numerical suites on the GPU. Without
# them those tests are reported UNSUPPORTED, not silently passed.
def _find_ptxas():
    cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    for path in [os.path.join(cuda, "bin", "ptxas")] + [
            os.path.join(d, "ptxas")
            for d in os.environ.get("PATH", "").split(os.pathsep)]:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


_ptxas = _find_ptxas()
if _ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", _ptxas))
import sys
sys.path.insert(0, os.path.dirname(__file__))
from cuda_probe import has_cuda_device  # noqa: E402
if has_cuda_device():
    config.available_features.add("cuda-device")
config.substitutions.append(
    ("%kiln_device_ptx", os.path.join(config.kiln_obj_root, "lib",
                                      "kiln-device.ptx")))

# The host CPU as LLVM names it (what kiln-run's JIT compiles for): on CPUs
# that execute 512-bit vectors as two halves (AMD Zen 4, znver4) memory-bound
# kernels are compiled with 256-bit vectors, elsewhere at full width
# (lib/Runtime/CpuCompiler.cpp). %vector_width_prefix names the FileCheck
# prefix of the expected case.
def _host_cpu():
    import subprocess
    try:
        out = subprocess.run([os.path.join(config.llvm_tools_dir, "llc"),
                              "--version"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        if "Host CPU:" in line:
            return line.split(":", 1)[1].strip()
    return None


_cpu = _host_cpu()
if _cpu:
    config.available_features.add(f"host-cpu-{_cpu}")
config.substitutions.append(
    ("%vector_width_prefix", "SPLIT" if _cpu == "znver4" else "FULL"))


# Whether the host has AVX-512's 32 vector registers (avx512f, as the JIT's
# target machine sees it): elementwise loops of 40 or more floating-point
# operations are interleaved 4 times there, twice with AVX2's 16
# (lib/Runtime/CpuCompiler.cpp, interleaveLongLoops).
# %register_file_prefix names the FileCheck prefix of the expected case.
def _host_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


config.substitutions.append(
    ("%register_file_prefix",
     "REGS32" if _host_has_avx512() else "REGS16"))
