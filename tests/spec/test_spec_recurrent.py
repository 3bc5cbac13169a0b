"""Speculative decoding on models with recurrent layers (Gated DeltaNet: qwen35, qwen35moe),
in real `outboard run` and `outboard serve` processes on 127.0.0.1, on synthetic files with
stories260K's vocabulary.

A rejected draft takes the sequence's state back to the checkpoint of the verification pass and
evaluates the kept positions again; a wrong or stale state changes the next tokens at once. The
draft model is the target quantized to Q4_0 (`outboard synth --seed` the same, another type):
it agrees with the target on part of the tokens only, so passes accept whole drafts, part of a
draft, and nothing (a rejected first token), and every one of those paths must give exactly
the plain tokens:
- `run` with --spec off, draft, ngram and auto gives the same ids, greedy and seeded at
  temperature 0.9, on qwen35 and qwen35moe, over a context that ends inside a draft;
- a server decoding 3 streams at once, each drafting in its own slot, streams exactly what each
  gives alone without speculation; /metrics counts rejected drafts;
- a client that leaves while its sequence verifies drafts frees it, and the slot's next answer
  is plain decoding's.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serve"))
from test_serve_http import MODEL, OUTBOARD, Server  # noqa: E402

STORY = "Once upon a time, there was a girl. Once upon a time, there was a"
PROMPTS = [STORY, "Lily and Max played. Lily and Max", "The sun was hot. The sun"]


@pytest.fixture(scope="module", params=["qwen35", "qwen35moe"])
def models(request, tmp_path_factory):
    """(target F32, the same weights in Q4_0) for the architecture."""
    d = tmp_path_factory.mktemp(request.param)
    paths = []
    for qtype in ("f32", "q4_0"):
        path = str(d / f"{request.param}-{qtype}.gguf")
        out = subprocess.run([OUTBOARD, "synth", "--arch", request.param, "--shape", "tiny",
                              "--type", qtype, "--seed", "7", "--vocab", MODEL, "-o", path],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        paths.append(path)
    return paths


def run_ids(model, spec, n, temp=0.0, extra=()):
    args = [OUTBOARD, "run", "-m", model, "-p", STORY, "--ids", "--verbose", "--threads", "1",
            "--temp", str(temp), "--seed", "5", "-n", str(n), "--ignore-eos", "--spec", spec,
            *extra]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    m = re.search(r"speculative: \w+, (\d+) draft tokens, (\d+) accepted", out.stderr)
    drafted, accepted = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return [int(x) for x in out.stdout.split()], drafted, accepted


def test_run_with_drafts_equals_plain(models):
    target, draft = models
    for temp in (0.0, 0.9):
        plain, d, _ = run_ids(target, "off", 60, temp)
        assert d == 0 and len(plain) == 60
        got, d, a = run_ids(target, "draft", 60, temp, ("--model-draft", draft))
        assert got == plain, temp
        assert d > 0, temp
        if temp == 0:  # accepted and rejected drafts both happened
            assert 0 < a < d, (d, a)
        for spec in ("ngram", "auto"):
            assert run_ids(target, spec, 60, temp)[0] == plain, (temp, spec)


def test_run_context_limit_inside_a_draft(models):
    """A context of 32 positions: the last passes have room for part of a draft only, and
    generation ends at the limit with the same tokens and the same message as plain decoding."""
    target, draft = models
    outs = []
    for extra in (("--spec", "off"), ("--spec", "draft", "--model-draft", draft)):
        out = subprocess.run([OUTBOARD, "run", "-m", target, "-p", STORY, "--ids", "--verbose",
                              "--threads", "1", "--temp", "0", "-n", "100", "--ignore-eos",
                              "--ctx", "32", *extra], capture_output=True, text=True, timeout=60)
        assert "does not fit in the context of 32 positions" in out.stderr, out.stderr
        outs.append((out.returncode, out.stdout))
    assert outs[0] == outs[1] and len(outs[0][1].split()) > 10


def metric(s, name):
    text = s.request("GET", "/metrics")[1].decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return int(m.group(1))


def complete(s, prompt, spec):
    st, raw, _ = s.request("POST", "/v1/completions",
                           {"prompt": prompt, "max_tokens": 40, "temperature": 0,
                            "speculative": spec}, timeout=120)
    assert st == 200, raw
    return json.loads(raw)["choices"][0]["text"]


def test_server_batched_drafts_equal_plain(models):
    target, draft = models
    s = Server("--parallel", "3", "--model-draft", draft, model=target)
    try:
        alone = [complete(s, p, "off") for p in PROMPTS]
        start = threading.Barrier(len(PROMPTS))

        def go(p):
            start.wait(timeout=30)
            return complete(s, p, "draft")

        with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as ex:
            together = list(ex.map(go, PROMPTS))
        assert together == alone
        drafted = metric(s, "outboard_spec_draft_tokens_total")
        accepted = metric(s, "outboard_spec_accepted_tokens_total")
        assert drafted > 0 and 0 < accepted < drafted, (drafted, accepted)
        assert s.request("GET", "/health")[0] == 200
    finally:
        s.stop()


def test_client_leaving_mid_verification(models):
    """A client that leaves while its sequence verifies drafts frees its sequence (state and
    slot of the draft model) and the next answer in that slot is intact."""
    import http.client
    target, draft = models
    s = Server("--parallel", "1", "--model-draft", draft, model=target)
    try:
        want = complete(s, STORY, "off")
        body = json.dumps({"prompt": STORY, "max_tokens": 400, "temperature": 0,
                           "stream": True, "speculative": "draft", "ignore_eos": True})
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        conn.request("POST", "/v1/completions", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        seen = 0
        for line in resp:
            if line.startswith(b"data: "):
                seen += 1
                if seen == 3:
                    break
        conn.close()
        for _ in range(200):
            if metric(s, "outboard_sequences_running") == 0:
                break
            threading.Event().wait(0.05)
        assert metric(s, "outboard_sequences_running") == 0
        assert complete(s, STORY, "draft") == want
    finally:
        s.stop()
