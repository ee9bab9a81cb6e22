"""Scratch directories for the numerical tests' files (IR, .npy inputs and
outputs), in the system's temporary directory.

`scratch_dir(prefix)` makes one; `exit_test(failed)` ends the script: when
it passed, every scratch directory it made is removed; when it failed, or
KILN_KEEP_TEMP is set, they are kept and named, to look at the failing
cases' files. (A fuzzing run of random_programs.py writes gigabytes.)
"""
import os
import shutil
import sys
import tempfile

_dirs = []


def scratch_dir(prefix):
    """A new temporary directory, removed by exit_test when the test passes."""
    path = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(path)
    return path


def exit_test(failed):
    """Exits with status 1 if `failed`, else 0, removing or keeping the
    scratch directories as the module's description says."""
    keep = failed or os.environ.get("KILN_KEEP_TEMP")
    for path in _dirs:
        if keep:
            print(f"files kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
