#!/usr/bin/env python3
"""Instructions retired per function, from insn_plugin.c's blocks=PATH file.

    qemu-aarch64 -plugin build-aarch64-full/insn_plugin.so,blocks=/tmp/b.txt -d plugin \\
        build-aarch64-full/outboard bench -m FILE -p 128 -n 0 -t 1 -r 1
    bench/qemu/insn_profile.py build-aarch64-full/outboard /tmp/b.txt [--top 25]

A block is charged to the function whose symbol starts at or before its first address (blocks
do not cross function boundaries except through inlined code, which belongs to its caller
anyway). The executable is position-independent: qemu-user maps an aarch64 one at
0x5500000000 (--base to change); blocks outside it (the C library, the loader) are summed as
"(outside the executable)".
"""
import argparse
import bisect
import collections
import subprocess


def symbols(binary):
    out = subprocess.run(["aarch64-linux-gnu-nm", "-n", "--defined-only", binary],
                         capture_output=True, text=True, check=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            addrs.append(int(parts[0], 16))
            names.append(parts[2])
    return addrs, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("blocks")
    ap.add_argument("--base", type=lambda s: int(s, 0), default=0x5500000000)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    addrs, names = symbols(args.binary)
    end = max(addrs) + (1 << 20) if addrs else 0
    per = collections.Counter()
    total = 0
    with open(args.blocks) as f:
        for line in f:
            vaddr, insns = line.split()
            n = int(insns)
            total += n
            a = int(vaddr, 16) - args.base
            i = bisect.bisect_right(addrs, a) - 1
            per[names[i] if 0 <= a < end and i >= 0 else "(outside the executable)"] += n
    print(f"{total / 1e6:.1f} M instructions")
    for name, n in per.most_common(args.top):
        print(f"{100 * n / total:6.2f}%  {n / 1e6:10.1f} M  {name}")


if __name__ == "__main__":
    main()
