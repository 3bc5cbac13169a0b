"""Reads bench/out/{llama,outboard}-TYPE-ROUND.json (written by bench/run.sh) and prints
BENCHMARKS.md: median tokens/s over the rounds for each program, file and test, and the ratio
outboard / llama.cpp against the targets (generation >= 1.0x, prompt processing >= 0.8x)."""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess

TARGET = {"pp": 0.8, "tg": 1.0}


def samples(prog, qtype):
    out = {"pp": [], "tg": []}
    for path in sorted(glob.glob(f"bench/out/{prog}-{qtype}-*.json")):
        for row in json.load(open(path)):
            if prog == "llama":
                test = "pp" if row["n_gen"] == 0 else "tg"
            else:
                test = row["test"][:2]
            out[test] += row["samples_ts"]
    return out


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--types", required=True)
    ap.add_argument("--llama-cmd", required=True)
    ap.add_argument("--outboard-cmd", required=True)
    a = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    print("## Engine: outboard vs llama.cpp (llama-bench)\n")
    print("outboard against llama.cpp on the same GGUF files and the same machine. Produced by "
          "`bench/run.sh` (do not edit by hand); numbers are tokens per second, the **median** "
          f"of {a.rounds} rounds in which the two programs took turns (the machine is shared "
          "and noisy, so means are not quoted).\n")
    print(f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {a.threads} threads used")
    print(f"- outboard: commit {rev}; llama.cpp: llama-bench from the llama-cpp-python 0.3.36 "
          "sdist (vendor/llama.cpp), built by `bench/build-llama-bench.sh` (ISA flags set by "
          "hand: AVX2/FMA/F16C and AVX-512 with VNNI/BF16 where present, no AMX)")
    print("- files: `outboard synth --shape 1b --type TYPE --vocab "
          "../shared/models/vocab/ggml-vocab-llama-spm.gguf` (Llama 3.2 1B dimensions: "
          "n_embd 2048, 16 layers, 32 heads, 8 KV heads, ff 8192; random weights; 32000-token "
          "vocabulary, so the output layer is smaller than Llama 3.2's 128256)")
    print(f"- commands (per round and file): `{a.llama_cmd} FILE` and `{a.outboard_cmd} FILE`\n")
    print("| file | test | llama.cpp t/s | outboard t/s | outboard / llama.cpp | target |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for qtype in a.types.split():
        ll, ob = samples("llama", qtype), samples("outboard", qtype)
        for test in ("pp", "tg"):
            if not ll[test] or not ob[test]:
                continue
            m_ll, m_ob = statistics.median(ll[test]), statistics.median(ob[test])
            ratio = m_ob / m_ll
            mark = "met" if ratio >= TARGET[test] else "not met"
            n = "512" if test == "pp" else "128"
            print(f"| synth-1b-{qtype}.gguf | {test}{n} | {m_ll:.2f} | {m_ob:.2f} | "
                  f"**{ratio:.2f}x** | >= {TARGET[test]}x ({mark}) |")
    print("\nSamples (t/s, in round order):\n")
    for qtype in a.types.split():
        ll, ob = samples("llama", qtype), samples("outboard", qtype)
        for test in ("pp", "tg"):
            print(f"- {qtype} {test}: llama.cpp {[round(x, 2) for x in ll[test]]}, "
                  f"outboard {[round(x, 2) for x in ob[test]]}")


if __name__ == "__main__":
    main()
