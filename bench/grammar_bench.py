#!/usr/bin/env python3
"""Constrained vs unconstrained generation speed with `outboard run` on one model file.

Each round runs, in alternating order, the same prompt greedily under a nested JSON schema
(--json-schema) and without one for the same number of generated tokens (--ignore-eos -n N, N
the constrained run's count), and reads the generation tok/s `outboard run` prints (prompt
excluded; the constrained figure includes every mask and check the sampler did). It reports
each round's ratio constrained / unconstrained and the median of the ratios: on a shared,
noisy machine a slow minute moves both runs of a round alike, so the ratio is steadier than
either figure. The CPU comes from /proc/cpuinfo.

Speculative decoding is off in both runs unless --spec says otherwise: prompt lookup drafts
from text already seen, and the unconstrained run (which goes on past its answer) repeats the
prompt and drafts far more than the JSON does (2.3 against 1.2 tokens per pass measured), so
with it on the ratio measures how repetitive the two texts are rather than what the grammar
costs. With --spec auto the tokens per pass of each run are printed too.

    .venv/bin/python bench/grammar_bench.py models/gemma-3-270m-q4_k_m.gguf --rounds 5
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTBOARD = os.environ.get("OUTBOARD", os.path.join(ROOT, "build", "outboard"))

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "maxLength": 60},
        "address": {"type": "object", "properties": {
            "street": {"type": "string", "maxLength": 60},
            "city": {"type": "string", "maxLength": 40},
            "country": {"enum": ["US", "UK", "FR", "DE", "JP", "other"]}},
            "required": ["street", "city", "country"]},
        "pets": {"type": "array", "maxItems": 3, "items": {
            "type": "object", "properties": {
                "kind": {"enum": ["cat", "dog", "fish", "bird"]},
                "name": {"type": "string", "maxLength": 30},
                "age": {"type": "integer", "minimum": 0, "maximum": 40}},
            "required": ["kind", "name", "age"]}},
        "active": {"type": "boolean"},
    },
    "required": ["name", "age", "email", "address", "pets", "active"],
}
PROMPT = ("Here is a customer record in JSON with name, age, email, address (street, city, "
          "country), pets (kind, name, age) and whether the account is active:\n")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def run(model, threads, spec, extra):
    out = subprocess.run([OUTBOARD, "run", "-m", model, "-p", PROMPT, "--temp", "0",
                          "--threads", str(threads), "--spec", spec, "--verbose", *extra],
                         capture_output=True, text=True, timeout=900)
    if out.returncode:
        sys.exit(f"outboard run failed: {out.stderr}")
    m = re.search(r"generated: (\d+) tokens, ([0-9.]+) tok/s", out.stderr)
    per_pass = re.search(r"([0-9.]+) tokens per pass", out.stderr)
    return (int(m.group(1)), float(m.group(2)), out.stdout[len(PROMPT):],
            float(per_pass.group(1)) if per_pass else 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-n", type=int, default=300, help="token limit of the constrained run")
    ap.add_argument("--spec", default="off", choices=["off", "auto", "ngram"],
                    help="speculative decoding in both runs (default off: see above)")
    a = ap.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(SCHEMA, f)
        schema_path = f.name
    ratios = []
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; threads {a.threads}; "
          f"speculative decoding {a.spec}")
    try:
        for r in range(a.rounds):
            first_constrained = r % 2 == 0
            res = {}
            order = ("c", "u") if first_constrained else ("u", "c")
            n = None
            if not first_constrained:  # the unconstrained run needs the count: take it first
                n = run(a.model, a.threads, a.spec,
                        ["--json-schema", schema_path, "-n", str(a.n)])[0]
            for kind in order:
                if kind == "c":
                    res["c"] = run(a.model, a.threads, a.spec,
                                   ["--json-schema", schema_path, "-n", str(a.n)])
                    n = res["c"][0]
                else:
                    res["u"] = run(a.model, a.threads, a.spec, ["--ignore-eos", "-n", str(n)])
            doc = res["c"][2].strip()
            json.loads(doc)  # the constrained output must be JSON
            ratio = res["c"][1] / res["u"][1]
            ratios.append(ratio)
            passes = (f" (tokens per pass {res['c'][3]:.2f} / {res['u'][3]:.2f})"
                      if a.spec != "off" else "")
            print(f"round {r + 1}: {res['c'][0]} tokens, constrained {res['c'][1]:.2f} tok/s, "
                  f"unconstrained {res['u'][1]:.2f} tok/s, ratio {ratio:.3f}{passes}")
    finally:
        os.unlink(schema_path)
    print(f"median ratio constrained / unconstrained over {len(ratios)} rounds: "
          f"{statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
