#!/usr/bin/env python3
"""Runs a command and fails unless it exits with the expected status.

Usage: expect_exit.py STATUS COMMAND [ARGS...]

Unlike `not`, this checks the exact exit code (the tools' contract: 1 for bad
input, 2 for runtime failures) and reports a signal (crash) as a failure.
The command's stdout and stderr pass through for FileCheck.
"""
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: expect_exit.py STATUS COMMAND [ARGS...]", file=sys.stderr)
        return 2
    expected = int(sys.argv[1])
    try:
        result = subprocess.run(sys.argv[2:], timeout=120)
    except subprocess.TimeoutExpired:
        print(f"expect_exit: {sys.argv[2]} timed out (hang)", file=sys.stderr)
        return 1
    if result.returncode < 0:
        print(f"expect_exit: {sys.argv[2]} died with signal {-result.returncode}",
              file=sys.stderr)
        return 1
    if result.returncode != expected:
        print(f"expect_exit: {sys.argv[2]} exited with {result.returncode}, "
              f"expected {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
