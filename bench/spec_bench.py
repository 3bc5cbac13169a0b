#!/usr/bin/env python3
"""Speculative decoding by prompt lookup: `outboard run --spec` against plain decoding and
against llama.cpp's n-gram speculative decoding (`llama-server --spec-type ngram-simple`, or
`llama-lookup` when LLAMA_LOOKUP names one, both from the pinned sdist), greedy, on the same
model file with the same threads, in alternating rounds.

Workloads:
- edit: the prompt holds a C source file (bench/spec/edit_source.c, about 1,350 tokens) and
  asks for it back with one function renamed; --gen tokens of the answer (400) are timed, which
  is the model copying the file with the change;
- free: a story from a short prompt (--free-gen tokens, 200), sampled at temperature 0.8 with
  seed 1 (greedy, a model this small soon loops, which prompt lookup would turn into a win);
  the answer repeats little and speculation has to stay out of the way. Both runs give the same
  text (speculation keeps the seeded output), so they do the same work.

Per round and engine it records decode tokens per second as each program reports it (prompt
excluded), and for speculation the acceptance rate and tokens per forward pass; the summary is
the median over rounds of the per-round ratios (a slow minute on a shared machine moves a ratio
far less than either figure) next to the median figures themselves.

    bash bench/build-llama-server.sh          # bench/llama.cpp/build/bin/llama-server
    .venv/bin/python bench/spec_bench.py --threads 2 --rounds 5
(bench/build-llama-lookup.sh builds llama-lookup; LLAMA_LOOKUP=its path uses it instead.)
llama-server keeps its own defaults for ngram-simple (a 12-token lookup, drafts up to 48); it
runs on 127.0.0.1 only, started and stopped by this script, with the prompt cache off.
"""
import argparse
import http.client
import json
import os
import socket
import time
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTBOARD = os.environ.get("OUTBOARD", os.path.join(ROOT, "build", "outboard"))
LOOKUP = os.environ.get("LLAMA_LOOKUP")
LLAMA_SERVER = os.environ.get("LLAMA_SERVER", os.path.join(ROOT, "bench", "llama.cpp", "build",
                                                           "bin", "llama-server"))
MODEL = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")

FREE_PROMPT = ("Write a long story about a lighthouse keeper who finds a message in a bottle. "
               "Describe the sea, the weather and the people of the village.\n\n")


def edit_prompt():
    src = open(os.path.join(ROOT, "bench", "spec", "edit_source.c")).read()
    return ("Below is a C source file.\n\n```c\n" + src + "```\n\nHere is the same file with "
            "the function `ring_park_drop` renamed to `ring_park_forget` and nothing else "
            "changed:\n\n```c\n")


def run_outboard(a, prompt_file, n, spec, temp="0"):
    out = subprocess.run([OUTBOARD, "run", "-m", a.model, "-f", prompt_file, "-n", str(n),
                          "--temp", temp, "--seed", "1", "--threads", str(a.threads), "--ctx", str(a.ctx),
                          "--spec", spec, "--spec-max", str(a.spec_max), "--verbose"],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode:
        sys.exit(f"outboard failed: {out.stderr}")
    m = re.search(r"generated: (\d+) tokens, ([\d.]+) tok/s", out.stderr)
    r = {"tok_s": float(m.group(2)), "n": int(m.group(1))}
    m = re.search(r"(\d+) draft tokens, (\d+) accepted \(([\d.]+)%\), ([\d.]+) tokens per pass",
                  out.stderr)
    if m:
        r.update(accept=float(m.group(3)), per_pass=float(m.group(4)))
    return r


def run_lookup(a, prompt_file, n):
    out = subprocess.run([LOOKUP, "-m", a.model, "-f", prompt_file, "-n", str(n), "--temp", "0",
                          "-t", str(a.threads), "-c", str(a.ctx), "--draft-max",
                          str(a.spec_max)], capture_output=True, text=True, timeout=1800)
    if out.returncode:
        sys.exit(f"llama-lookup failed: {out.stderr[-2000:]}")
    log = out.stderr + out.stdout
    m = re.search(r"decoded\s+(\d+) tokens in\s+([\d.]+) seconds, speed:\s+([\d.]+) t/s", log)
    drafted = int(re.search(r"n_drafted\s*=\s*(\d+)", log).group(1))
    accepted = int(re.search(r"n_accept\s*=\s*(\d+)", log).group(1))
    n_pred = int(m.group(1))
    return {"tok_s": float(m.group(3)), "n": n_pred,
            "accept": 100.0 * accepted / drafted if drafted else 0.0}


class LlamaServer:
    """llama-server with n-gram speculation on a free port of 127.0.0.1."""

    def __init__(self, a):
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            self.port = sk.getsockname()[1]
        self.proc = subprocess.Popen(
            [LLAMA_SERVER, "-m", a.model, "-t", str(a.threads), "-c", str(a.ctx), "-np", "1",
             "--host", "127.0.0.1", "--port", str(self.port), "--spec-type", "ngram-simple"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if self.post("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit("llama-server did not start")

    def post(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1800)
        try:
            conn.request(method, path, body=json.dumps(body) if body else None,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def run(self, prompt, n):
        st, raw = self.post("POST", "/completion", {"prompt": prompt, "n_predict": n,
                                                    "temperature": 0, "cache_prompt": False})
        if st != 200:
            sys.exit(f"llama-server: {st} {raw[:500]}")
        t = json.loads(raw)["timings"]
        drafted, accepted = t.get("draft_n", 0), t.get("draft_n_accepted", 0)
        return {"tok_s": t["predicted_per_second"], "n": t["predicted_n"],
                "accept": 100.0 * accepted / drafted if drafted else 0.0}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gen", type=int, default=400)
    ap.add_argument("--free-gen", type=int, default=200)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--spec-max", type=int, default=16)
    ap.add_argument("--no-llama", action="store_true", help="skip llama.cpp")
    a = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} logical cores; load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        edit_file, free_file = os.path.join(tmp, "edit.txt"), os.path.join(tmp, "free.txt")
        open(edit_file, "w").write(edit_prompt())
        open(free_file, "w").write(FREE_PROMPT)
        server = None if a.no_llama or LOOKUP else LlamaServer(a)
        try:
            measure(a, server, edit_file, free_file)
        finally:
            if server:
                server.stop()


def measure(a, server, edit_file, free_file):
    """The rounds, then the table and the ratios on stdout."""
    edit_text = open(edit_file).read()
    rows = {k: [] for k in ("edit_off", "edit_auto", "edit_llama", "free_off", "free_auto")}
    ratios = {"edit_vs_plain": [], "edit_vs_llama": [], "free_vs_plain": []}
    for rnd in range(a.rounds):
        # alternate the order each round so a drifting load hits every engine alike
        order = ["off", "auto", "llama"] if rnd % 2 == 0 else ["llama", "auto", "off"]
        got = {}
        for e in order:
            if e == "llama":
                if server:
                    got[e] = server.run(edit_text, a.gen)
                elif LOOKUP and not a.no_llama:
                    got[e] = run_lookup(a, edit_file, a.gen)
            else:
                got[e] = run_outboard(a, edit_file, a.gen, e)
        for e, r in got.items():
            rows["edit_" + e].append(r)
        ratios["edit_vs_plain"].append(got["auto"]["tok_s"] / got["off"]["tok_s"])
        if "llama" in got:
            ratios["edit_vs_llama"].append(got["auto"]["tok_s"] / got["llama"]["tok_s"])
        free = {}
        for e in (["off", "auto"] if rnd % 2 == 0 else ["auto", "off"]):
            free[e] = run_outboard(a, free_file, a.free_gen, e, temp="0.8")
            rows["free_" + e].append(free[e])
        ratios["free_vs_plain"].append(free["auto"]["tok_s"] / free["off"]["tok_s"])
        print(f"round {rnd + 1}: " + ", ".join(
            f"edit {e} {r['tok_s']:.1f}" for e, r in got.items()) + ", " + ", ".join(
            f"free {e} {r['tok_s']:.1f}" for e, r in free.items()), flush=True)
    print("\n| workload | engine | tok/s (median) | acceptance | tokens per pass |")
    print("| --- | --- | ---: | ---: | ---: |")
    names = {"off": "outboard, --spec off", "auto": "outboard, --spec auto",
             "llama": "llama-lookup" if LOOKUP else "llama-server, ngram-simple"}
    for k, v in rows.items():
        if not v:
            continue
        w, e = k.split("_")
        acc = f"{med(v, 'accept'):.1f}%" if any("accept" in r for r in v) else "-"
        pp = f"{med(v, 'per_pass'):.2f}" if any("per_pass" in r for r in v) else "-"
        print(f"| {w} | {names[e]} | {med(v, 'tok_s'):.1f} | {acc} | {pp} |")
    print()
    for k, v in ratios.items():
        if v:
            print(f"{k}: median ratio {statistics.median(v):.2f} "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
