#!/usr/bin/env python3
"""What a coding agent feels from `outboard serve`, on one model file, in alternating rounds:

schema   Generation speed of a chat answer under a nested JSON schema (response_format
         json_schema, greedy, streamed): outboard constrained, outboard unconstrained for the
         same number of tokens (ignore_eos), and llama.cpp's llama-server with the same
         json_schema, the same file and the same threads. tok/s is decode speed: tokens after
         the first over the time from the first to the last streamed token. Reported per round
         and as the median of the per-round ratios (constrained / unconstrained, outboard /
         llama-server): a slow minute on a shared machine moves both runs of a round alike.
         outboard's requests carry "speculative": --spec (default off): prompt lookup drafts
         from text already seen, and the unconstrained answer, which goes on past its end,
         repeats itself and drafts far more than the JSON does, so with it on the first ratio
         measures how repetitive the two texts are rather than what the grammar costs.
agent    Time to first token of the second turn of an agent conversation (a ~4,000-token system
         prompt, tools, a first exchange, then the next user message) against a fresh prompt
         of ~100 tokens; the first turn's (cold) TTFT too. The second turn should evaluate only
         its new tokens, the rest coming from the prefix cache. Each round uses new texts, so
         no round is served from an earlier round's cache.

    bash bench/build-llama-server.sh     # or LLAMA_SERVER=path/to/llama-server
    .venv/bin/python bench/agent_bench.py models/gemma-3-270m-q4_k_m.gguf --threads 2 --rounds 5

Only 127.0.0.1 is used; the servers are started and stopped by this script.
"""
import argparse
import http.client
import json
import os
import random
import statistics
import sys
import time

from serve_bench import LLAMA_SERVER, OUTBOARD, free_port, wait_ready  # noqa: F401

import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = json.load(open(os.path.join(HERE, "grammar", "person_schema.json")))
# a deeper variant: the person, an address object and a list of pets
NESTED = {"type": "object", "properties": {
    "person": SCHEMA,
    "address": {"type": "object", "properties": {
        "street": {"type": "string", "maxLength": 40}, "city": {"type": "string", "maxLength": 24},
        "country": {"enum": ["US", "UK", "FR", "DE", "JP", "other"]}},
        "required": ["street", "city", "country"]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4}},
    "required": ["person", "address", "tags"]}

TOOLS = [{"type": "function", "function": {
    "name": name, "description": desc, "parameters": {
        "type": "object", "properties": {p: {"type": "string", "description": f"the {p}"}
                                         for p in params}, "required": params[:1]}}}
    for name, desc, params in [
        ("read_file", "Read a file of the repository", ["path", "encoding"]),
        ("write_file", "Write a file of the repository", ["path", "content"]),
        ("run_shell", "Run a shell command in the repository", ["command", "cwd"]),
        ("search_code", "Search the repository for a pattern", ["pattern", "glob"]),
        ("list_dir", "List a directory", ["path"]),
        ("apply_patch", "Apply a unified diff", ["patch"]),
    ]]

WORDS = ("the engine module buffer request token cache layer stream parser schema server client "
         "build test commit branch merge file line column error value result thread queue batch "
         "prompt answer model vector memory block index offset length limit option flag").split()


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def start(kind, model, threads, ctx):
    port = free_port()
    if kind == "outboard":
        cmd = [OUTBOARD, "serve", "-m", model, "--port", str(port), "--threads", str(threads),
               "--parallel", "1", "--ctx", str(ctx)]
    else:
        cmd = [LLAMA_SERVER, "-m", model, "--port", str(port), "--host", "127.0.0.1",
               "-t", str(threads), "-tb", str(threads), "-np", "1", "-c", str(ctx),
               "--no-webui", "--jinja"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
    except Exception:
        proc.kill()
        raise
    return proc, port


def stream_chat(port, body):
    """POSTs a streamed chat completion; returns (ttft s, token times, content, usage tokens)."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    c.request("POST", "/v1/chat/completions", json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    times, text, usage = [], [], None
    for raw in r:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = chunk["usage"].get("completion_tokens")
        for ch in chunk.get("choices") or []:
            piece = (ch.get("delta") or {}).get("content")
            if piece:
                times.append(time.perf_counter())
                text.append(piece)
    c.close()
    if not times:
        raise RuntimeError("no tokens streamed")
    return times[0] - t0, times, "".join(text), usage or len(times)


def decode_tok_s(times, n_tokens):
    return (n_tokens - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def schema_round(ports, order, n_max, spec):
    msgs = [{"role": "user", "content": "Describe a made-up person, their address and tags "
                                        "as JSON."}]
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True,
                                                  "schema": NESTED}}
    out = {}
    n_constrained = None
    for kind in order:
        if kind == "unconstrained":
            continue
        body = {"messages": msgs, "temperature": 0, "max_tokens": n_max, "response_format": fmt}
        if kind == "outboard":
            body["speculative"] = spec
        _, times, text, n = stream_chat(ports[kind], body)
        try:  # a document of the schema's shape, unless the token limit cut it
            json.loads(text)
            whole = True
        except ValueError:
            whole = False
        out[kind] = (decode_tok_s(times, n), n, whole)
        if kind == "outboard":
            n_constrained = n
    _, times, _, n = stream_chat(ports["outboard"], {"messages": msgs, "temperature": 0,
                                                     "max_tokens": n_constrained,
                                                     "ignore_eos": True, "speculative": spec})
    out["unconstrained"] = (decode_tok_s(times, n), n, None)
    return out


def filler(rng, n_words):
    return " ".join(rng.choice(WORDS) + (str(rng.randrange(100)) if rng.random() < 0.2 else "")
                    for _ in range(n_words))


def short_prompt(port, rng):
    return stream_chat(port, {"messages": [{"role": "user", "content": filler(rng, 70)}],
                              "temperature": 0, "max_tokens": 4})[0]


def agent_round(port, rng, sys_words, short_first):
    short = short_prompt(port, rng) if short_first else None
    system = "You are a coding agent working in a repository.\n\n" + filler(rng, sys_words)
    conv = [{"role": "system", "content": system},
            {"role": "user", "content": "Look at the build and tell me what fails. " +
             filler(rng, 20)}]
    cold, _, answer, _ = stream_chat(port, {"messages": conv, "tools": TOOLS, "temperature": 0,
                                            "max_tokens": 16})
    conv += [{"role": "assistant", "content": answer},
             {"role": "user", "content": "Now fix it. " + filler(rng, 20)}]
    warm, _, _, _ = stream_chat(port, {"messages": conv, "tools": TOOLS, "temperature": 0,
                                       "max_tokens": 4})
    if not short_first:
        short = short_prompt(port, rng)
    return cold, warm, short


def prompt_tokens(port, messages, tools=None):
    body = {"messages": messages, "max_tokens": 1, "temperature": 0}
    if tools:
        body["tools"] = tools
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    c.request("POST", "/v1/chat/completions", json.dumps(body),
              {"Content-Type": "application/json"})
    u = json.loads(c.getresponse().read())["usage"]
    c.close()
    return u["prompt_tokens"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=300, help="token limit of the schema answers")
    ap.add_argument("--sys-words", type=int, default=3000,
                    help="words of filler in the agent's system prompt (~4,000 tokens)")
    ap.add_argument("--skip", choices=["schema", "agent"], action="append", default=[])
    ap.add_argument("--spec", default="off", choices=["off", "auto", "ngram"],
                    help="outboard's speculative decoding in the schema rounds (default off)")
    a = ap.parse_args()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; threads {a.threads}; "
          f"model {os.path.basename(a.model)}; outboard speculative decoding {a.spec}")
    procs = []
    try:
        if "schema" not in a.skip:
            ob, ob_port = start("outboard", a.model, a.threads, 4096)
            procs.append(ob)
            ll, ll_port = start("llama", a.model, a.threads, 4096)
            procs.append(ll)
            ports = {"outboard": ob_port, "llama-server": ll_port}
            vs_unc, vs_llama = [], []
            print("| round | outboard json_schema tok/s | outboard unconstrained tok/s | "
                  "llama-server json_schema tok/s | tokens (ob / llama; * = cut at -n) |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for i in range(a.rounds):
                order = ["outboard", "llama-server"] if i % 2 == 0 else ["llama-server",
                                                                          "outboard"]
                r = schema_round(ports, order, a.n, a.spec)
                vs_unc.append(r["outboard"][0] / r["unconstrained"][0])
                vs_llama.append(r["outboard"][0] / r["llama-server"][0])
                print(f"| {i + 1} | {r['outboard'][0]:.1f} | {r['unconstrained'][0]:.1f} | "
                      f"{r['llama-server'][0]:.1f} | {r['outboard'][1]}"
                      f"{'' if r['outboard'][2] else '*'} / {r['llama-server'][1]}"
                      f"{'' if r['llama-server'][2] else '*'} |", flush=True)
            print(f"\nconstrained / unconstrained: ratios "
                  f"{', '.join(f'{x:.2f}' for x in vs_unc)}; median {statistics.median(vs_unc):.2f}")
            print(f"outboard / llama-server (json_schema): ratios "
                  f"{', '.join(f'{x:.2f}' for x in vs_llama)}; median "
                  f"{statistics.median(vs_llama):.2f}\n", flush=True)
            for p in procs:
                p.terminate()
                p.wait()
            procs.clear()
        if "agent" not in a.skip:
            ob, port = start("outboard", a.model, a.threads, 8192)
            procs.append(ob)
            rng = random.Random(7)
            probe = [{"role": "system", "content": filler(random.Random(1), a.sys_words)},
                     {"role": "user", "content": "Look at the build."}]
            print(f"system prompt + tools: {prompt_tokens(port, probe, TOOLS)} tokens; "
                  f"short prompt: {prompt_tokens(port, [{'role': 'user', 'content': filler(random.Random(2), 70)}])} tokens")
            print("| round | turn 1 TTFT s (cold) | turn 2 TTFT s | 100-token prompt TTFT s | "
                  "turn 2 / short |")
            print("| --- | ---: | ---: | ---: | ---: |")
            ratios = []
            for i in range(a.rounds):
                cold, warm, short = agent_round(port, rng, a.sys_words, i % 2 == 1)
                ratios.append(warm / short)
                print(f"| {i + 1} | {cold:.2f} | {warm:.3f} | {short:.3f} | {warm / short:.2f} |",
                      flush=True)
            print(f"\nturn 2 / 100-token prompt: median {statistics.median(ratios):.2f}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
