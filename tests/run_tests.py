#!/usr/bin/env python3
"""Runs every test program and the Python reference tests, then prints one summary line.

C tests: each executable under $OB_BUILD/tests ends with "N passed, N failed, N skipped".
Python tests: tests/**/test_*.py under pytest; they find the binaries through $OB_BUILD and the
shared models through $OB_SHARED. A program that crashes or exits non-zero without counting a
failure counts as one failure. The last line printed is "N passed, N failed, N skipped".
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import time

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def c_programs(build, only):
    base = os.path.join(build, "tests")
    found = []
    for dirpath, _, files in os.walk(base):
        for name in files:
            path = os.path.join(dirpath, name)
            if name.endswith("_test") and os.access(path, os.X_OK):
                rel = os.path.relpath(path, base)
                if only and rel.split(os.sep)[0] not in only:
                    continue
                found.append(path)
    return sorted(found)


SKIP_LINE = re.compile(r"^skip [^:]+: (.*)$")


def count_skip_reasons(out, reasons):
    """Adds up "skip TEST: REASON (details)" lines by REASON, so a run says what it did not
    test and why (for example "skipped: no GPU")."""
    for line in out.splitlines():
        m = SKIP_LINE.match(line.strip())
        if m:
            reason = m.group(1).split(" (")[0]
            reasons[reason] = reasons.get(reason, 0) + 1


def run_c(build, only, totals, reasons):
    runner = shlex.split(os.environ.get("OB_RUNNER", ""))
    for prog in c_programs(build, only):
        name = os.path.relpath(prog, build)
        start = time.time()
        try:
            proc = subprocess.run(runner + [prog], cwd=ROOT, capture_output=True, text=True,
                                  errors="replace", timeout=1200)
            out, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = f"{e.stdout or ''}{e.stderr or ''}\ntimed out", -1
        counts = None
        for line in (proc.stdout if rc != -1 else "").splitlines():
            m = SUMMARY.match(line.strip())
            if m:
                counts = [int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)]
        if counts is None:
            counts = [0, 1, 0]
        elif rc != 0 and counts[1] == 0:
            counts[1] = 1
        for i in range(3):
            totals[i] += counts[i]
        count_skip_reasons(out, reasons)
        status = "ok" if counts[1] == 0 else "FAILED"
        print(f"{status:6} {name}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped"
              f" ({time.time() - start:.1f}s)")
        if counts[1]:
            print("\n".join("    " + l for l in out.splitlines()[-60:]))


def run_pytest(totals):
    py_tests = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "tests")):
        py_tests += [os.path.join(dirpath, f) for f in files
                     if f.startswith("test_") and f.endswith(".py")]
    if not py_tests:
        return
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           *sorted(py_tests)], cwd=ROOT, capture_output=True, text=True,
                          errors="replace")
    out = proc.stdout + proc.stderr
    counts = [0, 0, 0]
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail):
        idx = {"passed": 0, "failed": 1, "skipped": 2, "error": 1, "errors": 1}[word]
        counts[idx] += int(n)
    if proc.returncode not in (0, 5) and counts[1] == 0:
        counts[1] = 1
    for i in range(3):
        totals[i] += counts[i]
    status = "ok" if counts[1] == 0 else "FAILED"
    print(f"{status:6} pytest: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
    if counts[1] or counts[2]:
        print("\n".join("    " + l for l in out.splitlines()[-80:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-only", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated test folders (quant,cpu)")
    args = ap.parse_args()
    build = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
    only = [s for s in args.only.split(",") if s]
    totals, reasons = [0, 0, 0], {}
    run_c(build, only, totals, reasons)
    if not args.c_only:
        run_pytest(totals)
    for reason, n in sorted(reasons.items()):
        print(f"{n:6} C tests {reason}")
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
