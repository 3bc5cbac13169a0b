#!/usr/bin/env python3
"""Runs every libFuzzer target in build-fuzz/fuzz for a fixed time budget each.

Seeds come from tests/fuzz_corpus/<target>/ when that folder exists (checked in), so the run
starts from real inputs. A crash fails the run and leaves the reproducer in build-fuzz/.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def crash_report(lines):
    """The sanitizer or libFuzzer report when there is one, else the end of the log: the
    progress lines before a crash say nothing about it."""
    markers = ("==ERROR", "ERROR: libFuzzer", "runtime error", "deadly signal", "SUMMARY:")
    for i, line in enumerate(lines):
        if any(m in line for m in markers):
            return lines[max(0, i - 2):i + 60]
    return lines[-40:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    args = ap.parse_args()
    base = os.path.join(ROOT, "build-fuzz", "fuzz")
    targets = []
    for dirpath, _, files in os.walk(base):
        targets += [os.path.join(dirpath, f) for f in files if f.endswith("_fuzz")]
    failed = 0
    for target in sorted(targets):
        name = os.path.basename(target)
        work = os.path.join(ROOT, "build-fuzz", "corpus", name)
        os.makedirs(work, exist_ok=True)
        seeds = os.path.join(ROOT, "tests", "fuzz_corpus", name)
        cmd = [target, f"-max_total_time={args.seconds}", "-rss_limit_mb=4096",
               "-max_len=65536", f"-artifact_prefix={ROOT}/build-fuzz/", work]
        if os.path.isdir(seeds):
            cmd.append(seeds)
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        ok = proc.returncode == 0
        failed += not ok
        print(f"{'ok' if ok else 'FAILED':6} fuzz {name} ({args.seconds}s)")
        if not ok:
            print(f"    exit status {proc.returncode}")
            print("\n".join("    " + l for l in crash_report(proc.stderr.splitlines())))
    print(f"{len(targets) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
