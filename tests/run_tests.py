#!/usr/bin/env python3
"""Runs every test program and the Python reference tests, then prints one summary line.

C tests: each executable under $OB_BUILD/tests ends with "N passed, N failed, N skipped".
Python tests: each tests/**/test_*.py runs as its own pytest process; they find the binaries
through $OB_BUILD and the shared models through $OB_SHARED. A program that crashes or exits
non-zero without counting a failure counts as one failure. The last line printed is
"N passed, N failed, N skipped".

Tests run --jobs at a time (default: the CPU count). Most of them spend much of their time on
one core (a Python reference, a server starting, a sanitizer build's single-threaded code), so
two at a time on two cores takes far less wall time than one after another. Each run's times
go to $OB_BUILD/test-times.json; the next run starts the longest first, so the slowest test
does not start last and leave the other cores idle. Without that file (a fresh build folder) the
times of ./build are used when it has some, and otherwise C programs start first (the few long
ones are in there), then the Python files, largest first.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMES_FILE = "test-times.json"
C_TIMEOUT_S = 1200


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


def pytest_files():
    found = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "tests")):
        found += [os.path.join(dirpath, f) for f in files
                  if f.startswith("test_") and f.endswith(".py")]
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


def run_c(prog):
    """(counts, output for count_skip_reasons, tail to show) for one C test program."""
    runner = shlex.split(os.environ.get("OB_RUNNER", ""))
    try:
        proc = subprocess.run(runner + [prog], cwd=ROOT, capture_output=True, text=True,
                              errors="replace", timeout=C_TIMEOUT_S)
        out, rc, stdout = proc.stdout + proc.stderr, proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as e:
        out, rc, stdout = f"{e.stdout or ''}{e.stderr or ''}\ntimed out", -1, ""
    counts = None
    for line in stdout.splitlines():
        m = SUMMARY.match(line.strip())
        if m:
            counts = [int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)]
    if counts is None:
        counts = [0, 1, 0]
    elif rc != 0 and counts[1] == 0:
        counts[1] = 1
    return counts, out, out.splitlines()[-60:] if counts[1] else []


PYTEST_TALLY = re.compile(r"(\d+) (passed|failed|skipped|error|errors)\b")


def run_pytest_file(path):
    """(counts, output for count_skip_reasons (none: pytest lists its skips itself), lines to
    show) for one pytest file: its failures in full, or the reasons of its skips."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           path], cwd=ROOT, capture_output=True, text=True, errors="replace")
    out = proc.stdout + proc.stderr
    lines = out.strip().splitlines()
    counts = [0, 0, 0]
    for n, word in PYTEST_TALLY.findall(lines[-1] if lines else ""):
        counts[{"passed": 0, "failed": 1, "skipped": 2, "error": 1, "errors": 1}[word]] += int(n)
    # 5: nothing collected (every test of the file skipped at import, or none there)
    if proc.returncode not in (0, 5) and counts[1] == 0:
        counts[1] = 1
    if counts[1]:
        show = lines[-80:]
    else:
        show = [l for l in lines if l.startswith("SKIPPED")]
    return counts, "", show


def load_times(build):
    for folder in (build, os.path.join(ROOT, "build")):
        try:
            with open(os.path.join(folder, TIMES_FILE)) as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return {}


def ordered(items, times):
    """Items with a recorded time first, longest first; then the C programs without one;
    then the Python files without one, largest file first."""
    def key(item):
        name, kind, path = item
        if name in times:
            return (0, -times[name])
        if kind == "c":
            return (1, 0)
        return (2, -os.path.getsize(path))
    return sorted(items, key=key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-only", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated test folders (quant,cpu)")
    ap.add_argument("--jobs", type=int,
                    default=int(os.environ.get("OB_TEST_JOBS", 0)) or os.cpu_count() or 1,
                    help="tests run at a time (default: $OB_TEST_JOBS, else the CPU count)")
    args = ap.parse_args()
    build = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
    only = [s for s in args.only.split(",") if s]

    items = [(os.path.relpath(p, build), "c", p) for p in c_programs(build, only)]
    if not args.c_only:
        items += [("pytest " + os.path.relpath(p, ROOT), "py", p) for p in pytest_files()]
    times = load_times(build)
    totals, reasons, took = [0, 0, 0], {}, {}
    lock = threading.Lock()
    start_all = time.time()

    def run(item):
        name, kind, path = item
        start = time.time()
        counts, out, show = run_c(path) if kind == "c" else run_pytest_file(path)
        seconds = time.time() - start
        with lock:
            took[name] = round(seconds, 1)
            for i in range(3):
                totals[i] += counts[i]
            count_skip_reasons(out, reasons)
            status = "ok" if counts[1] == 0 else "FAILED"
            print(f"{status:6} {name}: {counts[0]} passed, {counts[1]} failed, {counts[2]} "
                  f"skipped ({seconds:.1f}s)", flush=True)
            if show:
                print("\n".join("    " + l for l in show), flush=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for f in [pool.submit(run, item) for item in ordered(items, times)]:
            f.result()
    try:
        with open(os.path.join(build, TIMES_FILE), "w") as f:
            json.dump({**times, **took}, f, indent=0, sort_keys=True)
    except OSError:
        pass
    for reason, n in sorted(reasons.items()):
        print(f"{n:6} C tests {reason}")
    print(f"{args.jobs} at a time, {time.time() - start_all:.0f} s in all")
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
