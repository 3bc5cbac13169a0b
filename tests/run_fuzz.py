#!/usr/bin/env python3
"""Runs every libFuzzer target in build-fuzz/fuzz for a fixed time budget each.

Seeds come from tests/fuzz_corpus/<target>/ when that folder exists (checked in), so the run
starts from real inputs. Per target, tests/fuzz_corpus/<target>.dict is passed as the fuzzer's
dictionary and tests/fuzz_corpus/<target>.options holds extra libFuzzer flags, one per line
(for example -max_len=262144 for a target whose inputs are large). A crash fails the run and
leaves the reproducer in build-fuzz/. Each target's line reports its executions and coverage.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz_corpus")
DEFAULT_MAX_LEN = 65536


def crash_report(lines):
    """The sanitizer or libFuzzer report when there is one, else the end of the log: the
    progress lines before a crash say nothing about it."""
    markers = ("==ERROR", "ERROR: libFuzzer", "runtime error", "deadly signal", "SUMMARY:")
    for i, line in enumerate(lines):
        if any(m in line for m in markers):
            return lines[max(0, i - 2):i + 60]
    return lines[-40:]


def target_flags(name):
    """-dict and the lines of <name>.options; -max_len defaults to 64 KiB."""
    flags = []
    dict_path = os.path.join(CORPUS, f"{name}.dict")
    if os.path.isfile(dict_path):
        flags.append(f"-dict={dict_path}")
    opt_path = os.path.join(CORPUS, f"{name}.options")
    if os.path.isfile(opt_path):
        with open(opt_path) as f:
            flags += [l.strip() for l in f if l.strip() and not l.startswith("#")]
    if not any(f.startswith("-max_len=") for f in flags):
        flags.append(f"-max_len={DEFAULT_MAX_LEN}")
    return flags


def stats(lines):
    """'N execs, cov C, ft F' from libFuzzer's last status line and its closing line."""
    runs = cov = ft = "?"
    for line in lines:
        m = re.search(r"Done (\d+) runs", line)
        if m:
            runs = m.group(1)
        m = re.search(r"cov: (\d+) ft: (\d+)", line)
        if m:
            cov, ft = m.group(1), m.group(2)
    return f"{runs} execs, cov {cov}, ft {ft}"


def run_target(target, seconds):
    name = os.path.basename(target)
    work = os.path.join(ROOT, "build-fuzz", "corpus", name)
    os.makedirs(work, exist_ok=True)
    seeds = os.path.join(CORPUS, name)
    cmd = [target, f"-max_total_time={seconds}", "-rss_limit_mb=4096",
           f"-artifact_prefix={ROOT}/build-fuzz/", *target_flags(name), work]
    if os.path.isdir(seeds):
        cmd.append(seeds)
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    return name, proc.returncode, proc.stderr.splitlines()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1, help="targets run at the same time")
    args = ap.parse_args()
    base = os.path.join(ROOT, "build-fuzz", "fuzz")
    targets = []
    for dirpath, _, files in os.walk(base):
        targets += [os.path.join(dirpath, f) for f in files if f.endswith("_fuzz")]
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = [pool.submit(run_target, t, args.seconds) for t in sorted(targets)]
        for fut in runs:
            name, rc, lines = fut.result()
            ok = rc == 0
            failed += not ok
            print(f"{'ok' if ok else 'FAILED':6} fuzz {name} ({args.seconds}s: {stats(lines)})",
                  flush=True)
            if not ok:
                print(f"    exit status {rc}")
                print("\n".join("    " + l for l in crash_report(lines)))
    print(f"{len(targets) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
