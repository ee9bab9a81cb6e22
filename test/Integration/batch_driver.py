# kiln_testing's Batch (the client of tools/kiln-batch) must never hide a
# failure: a run that crashes the batch process gets its signal as exit
# status and is kept as a problem, a hang raises TimeoutExpired, a non-zero
# exit at the end (LeakSanitizer's) is a problem, and after any of these the
# next run starts a new process; and run_tool turns any tool's hang into a
# failed run (exit status 124), so that a test script reports it and goes
# on. Checked against a stand-in kiln-batch that
# crashes, hangs or "leaks" on request (tools/kiln-batch itself: see
# test/Tools/kiln-batch.test).
# RUN: %python %s
import os
import signal
import subprocess
import sys

from kiln_testing import Batch, run_tool
from scratch import exit_test, scratch_dir

STAND_IN = f"""#!{sys.executable}
import os, signal, sys, time
leaked = False
for line in sys.stdin:
    tool, out, err, *args = line.rstrip("\\n").split("\\t")
    with open(out, "w") as f:
        f.write(tool + ":" + " ".join(args))
    with open(err, "w") as f:
        f.write("pid " + str(os.getpid()))
    if args == ["crash"]:
        os.kill(os.getpid(), signal.SIGSEGV)
    if args == ["hang"]:
        time.sleep(600)
    leaked = leaked or args == ["leak"]
    sys.stdout.write(str(len(args)) + "\\n")
    sys.stdout.flush()
sys.exit(23 if leaked else 0)
"""

failures = 0


def expect(label, condition, detail=""):
    global failures
    if not condition:
        failures += 1
        print(f"FAIL batch_driver: {label} {detail}")


tmp = scratch_dir("kiln-batch-driver-")
server = os.path.join(tmp, "kiln-batch")
with open(server, "w") as f:
    f.write(STAND_IN)
os.chmod(server, 0o755)
run = os.path.join(tmp, "kiln-run")

batch = Batch(server)
expect("serves kiln-run of its directory", batch.serves([run]))
expect("serves kiln-gradcheck of its directory",
       batch.serves([os.path.join(tmp, "kiln-gradcheck")]))
expect("does not serve kiln-opt", not batch.serves([os.path.join(tmp, "kiln-opt")]))
expect("does not serve another build's kiln-run",
       not batch.serves(["/elsewhere/kiln-run"]))

# A run: its exit code, stdout and stderr.
first = batch.run([run, "a", "b"], timeout=60)
expect("exit code", first.returncode == 2, first)
expect("stdout", first.stdout == "kiln-run:a b", first)
pid = first.stderr
second = batch.run([run, "c"], timeout=60)
expect("one process for both runs", second.stderr == pid and
       second.returncode == 1, second)
expect("no problems yet", batch.problems == [], batch.problems)

# A crash: the signal is the run's status and a problem; the next run
# starts a new process.
crash = batch.run([run, "crash"], timeout=60)
expect("crash status", crash.returncode == -signal.SIGSEGV, crash)
expect("crash kept", len(batch.problems) == 1 and
       f"exit status {-signal.SIGSEGV}" in batch.problems[0], batch.problems)
after = batch.run([run, "x"], timeout=60)
expect("a new process after the crash", after.returncode == 1 and
       after.stderr != pid, after)

# A hang: TimeoutExpired, then a new process.
try:
    batch.run([run, "hang"], timeout=1)
    expect("hang raises TimeoutExpired", False)
except subprocess.TimeoutExpired:
    pass
again = batch.run([run, "y", "z"], timeout=60)
expect("a new process after the hang", again.returncode == 2, again)

# Arguments the protocol cannot carry.
try:
    batch.run([run, "a\tb"], timeout=60)
    expect("a tab in an argument raises ValueError", False)
except ValueError:
    pass

# A non-zero exit at the end is a problem.
batch.run([run, "leak"], timeout=60)
problems = batch.close()
expect("exit status at the end", len(problems) == 2 and
       "exited with status 23" in problems[1], problems)
clean = Batch(server)
clean.run([run, "a"], timeout=60)
expect("a clean end is no problem", clean.close() == [], clean.problems)

# run_tool: a hang is a failed run with exit status 124 and a message (the
# process killed), not an exception that ends the test script.
sleeper = os.path.join(tmp, "sleeper")
with open(sleeper, "w") as f:
    f.write(f"#!{sys.executable}\nimport time\ntime.sleep(600)\n")
os.chmod(sleeper, 0o755)
hung = run_tool([sleeper, "x"], timeout=1)
expect("run_tool: a hang is exit status 124", hung.returncode == 124, hung)
expect("run_tool: a hang says so", "killed after 1 s (timed out)" in
       hung.stderr and "sleeper x" in hung.stderr, hung)

print(f"batch_driver: {'FAIL' if failures else 'ok'} ({failures} failure(s))")
exit_test(failures > 0)
