"""Hybrid recurrent models (Gated DeltaNet layers beside full attention) in a real
`outboard serve` on 127.0.0.1, on synthetic qwen35 and qwen3next files written by
`outboard synth` (a byte vocabulary).

- Prefix reuse through recurrent-state snapshots: a prompt that parts from an earlier one after
  a shared prefix reuses nothing the first time (no state was kept there) but marks the point;
  the next prompt sharing that prefix takes every whole block of it from the cache (reported
  as usage.prompt_tokens_details.cached_tokens and in the prefix-cache metrics), as does a
  prompt that extends an earlier one. Each answer equals what a fresh server answers.
- Batched decode: four greedy streams of prompts of different lengths, run together with
  --parallel 4, give what each gives alone.
"""
import json
import os
import subprocess

import pytest

from test_serve_batching import concurrently, metric, stream_completion, token_ids
from test_serve_http import OUTBOARD, Server

SHARED = "Once upon a time, there was a little girl named Lily. " * 4  # 216 characters
BLOCK = 32


@pytest.fixture(scope="module", params=["qwen35", "qwen3next"])
def hybrid(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("hybrid") / f"{request.param}.gguf"
    subprocess.run([OUTBOARD, "synth", "--arch", request.param, "--shape", "tiny", "--type",
                    "q8_0", "-o", str(path)], check=True, capture_output=True)
    return str(path)


def complete(s, prompt, n=8):
    """(text, usage, the first token's top log-probabilities {token: logprob})."""
    body = {"prompt": prompt, "max_tokens": n, "temperature": 0, "logprobs": 5}
    status, raw, _ = s.request("POST", "/v1/completions", body, timeout=60)
    assert status == 200, raw
    r = json.loads(raw)
    c = r["choices"][0]
    return c["text"], r["usage"], c["logprobs"]["top_logprobs"][0]


def common(a, b):
    """Length of the common prefix of two token lists."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def cached(usage):
    return usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)


def test_shared_prefix_restores_a_state_snapshot_and_equals_a_cold_run(hybrid):
    prompts = [SHARED + "The dog ran after the big red ball in the park all day long.",
               SHARED + "Lily ran home", SHARED + "A cat", SHARED + "A cat sat on the mat"]
    s = Server("--parallel", "2", model=hybrid)
    try:
        hits = metric(s, "outboard_prefix_cache_hits_total")
        out = [complete(s, p) for p in prompts]
        n_prompt = [u["prompt_tokens"] for _, u, _ in out]
        ids = [token_ids(p, hybrid) for p in prompts]
        assert n_prompt == [len(t) for t in ids]
        assert len(ids[0]) // BLOCK > common(ids[0], ids[1]) // BLOCK + 1
        # the first prompt keeps its state at its last whole block; the second parts from it
        # after the shared prefix, where no state was kept: all of it is evaluated
        assert cached(out[0][1]) == 0 and cached(out[1][1]) == 0
        # the third shares that prefix with the second, which kept its state there
        shared = common(ids[0], ids[1]) // BLOCK * BLOCK
        assert shared >= 6 * BLOCK and common(ids[1], ids[2]) >= shared
        assert cached(out[2][1]) == shared, out[2][1]
        # the fourth extends the third, which kept its state at its last whole block
        assert cached(out[3][1]) == n_prompt[2] // BLOCK * BLOCK, out[3][1]
        assert n_prompt[3] - cached(out[3][1]) < BLOCK + n_prompt[3] - n_prompt[2]
        assert metric(s, "outboard_prefix_cache_hits_total") == hits + 2
        assert metric(s, "outboard_prefix_cache_tokens_total") == sum(cached(u) for _, u, _ in out)
    finally:
        s.stop()
    # A restored state continues where the cold run's state is, but not to the bit: the chunked
    # DeltaNet prefill sums in other chunks from a snapshot, and Q8 activations turn last-bit
    # differences into steps of a quant now and then (measured: first-token log-probabilities
    # 1e-7 apart on F32 weights, up to 0.04 on Q8_0). A random model's greedy text follows such
    # a step to another token, so the log-probabilities are compared: a wrong or stale state
    # moves them by whole units.
    for prompt, (_, _, top) in zip(prompts[2:], out[2:]):
        fresh = Server("--parallel", "2", model=hybrid)
        try:
            _, usage, cold = complete(fresh, prompt)
            assert cached(usage) == 0
            shared = set(top) & set(cold)
            assert len(shared) >= 3, (top, cold)
            assert all(abs(top[t] - cold[t]) < 0.1 for t in shared), (prompt, top, cold)
        finally:
            fresh.stop()


def test_batched_decode_equals_one_at_a_time(hybrid):
    """Prompts of 20..140 characters from different offsets (no shared prefix), 24 tokens
    each: rows of several sequences in every pass, block boundaries crossed mid-prefill and
    mid-decode."""
    text = SHARED * 2
    prompts = [text[7 * i: 7 * i + n] for i, n in enumerate((20, 61, 99, 140))]
    s = Server("--parallel", "4", model=hybrid)
    try:
        # a random model draws its end-of-text now and then (the 20-character prompt's answer
        # on the Q8_0 qwen35 after 18 tokens): ignore_eos keeps every answer to its 24 tokens
        plain = stream_completion(s, prompts[0], max_tokens=24)
        alone = [stream_completion(s, p, max_tokens=24, ignore_eos=True) for p in prompts]
        assert all(f == "length" and t for t, f in alone), alone
        assert plain[1] == "length" or alone[0][0].startswith(plain[0]), (plain, alone[0])
        status, raw, _ = s.request("POST", "/v1/completions", {"prompt": "x", "ignore_eos": 1})
        assert status == 400 and b"ignore_eos" in raw, raw
        together = concurrently(
            lambda p: stream_completion(s, p, max_tokens=24, ignore_eos=True), prompts)
        assert together == alone
    finally:
        s.stop()
