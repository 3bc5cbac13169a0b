#!/usr/bin/env python3
"""Concurrent streaming clients against `outboard serve` and llama.cpp's `llama-server` on the
same model file with the same threads, in alternating rounds.

Each of N clients (N in --clients, default 1 4 8 16) sends a distinct prompt of --prompt
tokens (random ids, so no prefix is shared and no cache helps) to POST /v1/completions with
stream=true and max_tokens=--gen, greedy. Per server and N it reports the aggregate generated
tokens per second (all tokens / wall time of the round), time to first token p50/p99,
inter-token latency p50/p99 and failed requests; and, per N, the median over rounds of the
per-round ratio outboard / llama-server of aggregate tok/s (a slow minute on this shared machine
moves a ratio far less than either figure).

    bash bench/build-llama-server.sh          # bench/llama.cpp/build/bin/llama-server
    build/outboard synth --shape 1b --type q4_k_m -o /tmp/1b-q4_k_m.gguf
    .venv/bin/python bench/serve_bench.py /tmp/1b-q4_k_m.gguf --threads 2 --rounds 3

Only 127.0.0.1 is used; both servers are started and stopped by this script.
"""
import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTBOARD = os.environ.get("OUTBOARD", os.path.join(ROOT, "build", "outboard"))
LLAMA_SERVER = os.environ.get("LLAMA_SERVER", os.path.join(ROOT, "bench", "llama.cpp", "build",
                                                           "bin", "llama-server"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=600):
    """Until GET /health answers 200 (both servers answer 503 while loading)."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with status {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


def start(kind, model, threads, clients, ctx):
    port = free_port()
    if kind == "outboard":
        cmd = [OUTBOARD, "serve", "-m", model, "--port", str(port), "--threads", str(threads),
               "--parallel", str(clients), "--ctx", str(ctx),
               "--kv-size", str(ctx * clients)]
    else:
        cmd = [LLAMA_SERVER, "-m", model, "--port", str(port), "--host", "127.0.0.1",
               "-t", str(threads), "-tb", str(threads), "-np", str(clients), "-kvu",
               "-c", str(ctx * clients), "--no-webui"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
    except Exception:
        proc.kill()
        raise
    return proc, port


def one_stream(port, prompt, n_gen, result):
    """Streams one completion; result gets send time, token arrival times and an error."""
    body = json.dumps({"prompt": prompt, "max_tokens": n_gen, "temperature": 0,
                       "stream": True, "ignore_eos": True})
    result["times"] = []
    t0 = time.perf_counter()
    result["t0"] = t0
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            result["error"] = f"HTTP {r.status}: {r.read()[:200]!r}"
            return
        for raw in r:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("choices") and chunk["choices"][0].get("text") is not None:
                result["times"].append(time.perf_counter())
        if not result["times"]:
            result["error"] = "no tokens"
    except Exception as e:  # noqa: BLE001 - any failure is a failed request
        result["error"] = repr(e)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run_round(port, clients, n_prompt, n_gen, seed, n_vocab):
    rng = random.Random(seed)
    prompts = [[rng.randrange(min(100, n_vocab // 2), n_vocab) for _ in range(n_prompt)]
               for _ in range(clients)]
    results = [dict() for _ in range(clients)]
    threads = [threading.Thread(target=one_stream, args=(port, p, n_gen, r))
               for p, r in zip(prompts, results)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    tokens = sum(len(r["times"]) for r in results)
    ttft = [r["times"][0] - r["t0"] for r in results if r["times"]]
    itl = [b - a for r in results for a, b in zip(r["times"], r["times"][1:])]
    failed = [r["error"] for r in results if "error" in r]
    return {"tok_s": tokens / wall, "ttft": ttft, "itl": itl, "failed": failed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=32000, help="prompt ids are drawn below this")
    ap.add_argument("--only", choices=["outboard", "llama"], help="one server alone")
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["outboard", "llama"]
    ctx = args.prompt + args.gen + 64
    print(f"# {os.path.basename(args.model)}, {args.threads} threads, prompt {args.prompt}, "
          f"gen {args.gen}, {args.rounds} rounds")
    print("| clients | server | tok/s (median) | TTFT p50 / p99 s | ITL p50 / p99 ms | failed |"
          " ratio (median of rounds) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in args.clients:
        servers = {k: start(k, args.model, args.threads, n, ctx) for k in kinds}
        try:
            rows = {k: [] for k in kinds}
            for rnd in range(args.rounds):
                order = kinds if rnd % 2 == 0 else kinds[::-1]
                for k in order:
                    rows[k].append(run_round(servers[k][1], n, args.prompt, args.gen,
                                             1000 * n + rnd, args.vocab))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        ratios = []
        if len(kinds) == 2:
            ratios = [a["tok_s"] / b["tok_s"] for a, b in zip(rows["outboard"], rows["llama"])
                      if b["tok_s"] > 0]
        for k in kinds:
            rs = rows[k]
            ttft = [x for r in rs for x in r["ttft"]]
            itl = [x for r in rs for x in r["itl"]]
            failed = sum(len(r["failed"]) for r in rs)
            ratio = f"{statistics.median(ratios):.2f}x" if ratios and k == "outboard" else ""
            print(f"| {n} | {k} | {statistics.median(r['tok_s'] for r in rs):.1f} | "
                  f"{pct(ttft, 50):.2f} / {pct(ttft, 99):.2f} | "
                  f"{1000 * pct(itl, 50):.0f} / {1000 * pct(itl, 99):.0f} | {failed} | {ratio} |",
                  flush=True)
            for r in rs:
                for e in r["failed"][:2]:
                    print(f"    failed ({k}, {n} clients): {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
