"""Speculative decoding (prompt lookup) end to end, in real `outboard run` and `outboard serve`
processes on 127.0.0.1.

- `run --spec ngram` on stories260K gives llama.cpp's greedy tokens (the pinned reference in
  the shared models folder, made by llama-server), with drafts proposed and accepted;
- `run` with --spec off, ngram and auto gives the same ids, greedy and seeded at temperature
  0.9 on stories260K, greedy on SmolLM2-135M and the default model (Gemma 3 270M:
  sliding-window layers, whose rings must take rejected positions back exactly);
- a draft model (--model-draft): the target drafting for itself and a random-weight model with
  the same vocabulary (`outboard synth --vocab`) give the same ids as plain decoding, greedy
  and seeded; a model with another vocabulary is refused with both counts named;
- bad --spec values are refused with the flag named;
- a server decoding 4 streams at once through the `openai` client, each drafting on its own
  ("speculative": "ngram"), streams exactly the text each gives alone without speculation,
  stop strings included; /metrics counts drafts, accepted tokens and tokens per pass; a bad
  "speculative" value is a 400 naming the field; the server's --spec off is overridden per
  request (Ollama's clients through options.speculative); a client that leaves mid-stream
  frees its sequence and the next answer is intact;
- serve --model-draft: each sequence of a batch drafts in its own slot of the draft model and
  streams what plain decoding gives, with the target itself and a random model as drafts; a
  draft model with another vocabulary stops the server at start.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serve"))
from test_serve_http import MODEL, MODEL_ID, OUTBOARD, ROOT, SHARED, Server  # noqa: E402

SMOL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = os.environ.get("OB_DEFAULT_MODEL",
                       os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))

# Text that repeats itself, so prompt lookup has something to draft, and text that does not.
REPEAT = ("def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\n"
          "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n")
STORY = "Once upon a time, there was a girl. Once upon a time, there was a"
FREE = "The weather today"


def run_ids(model, prompt, spec, n, temp=0.0, tokens=None, extra=()):
    args = [OUTBOARD, "run", "-m", model, "--ids", "--verbose", "--threads", "1",
            "--temp", str(temp), "--seed", "11", "-n", str(n), "--spec", spec, *extra]
    args += ["--tokens", ",".join(map(str, tokens))] if tokens else ["-p", prompt]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    m = re.search(r"speculative: \w+, (\d+) draft tokens, (\d+) accepted", out.stderr)
    drafted, accepted = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return [int(x) for x in out.stdout.split()], drafted, accepted


def test_greedy_ids_equal_llama_cpp():
    ref_path = os.path.join(SHARED, "models", "generated", "stories260K.greedy.json")
    if not os.path.exists(ref_path):
        pytest.skip("llama.cpp reference absent")
    drafted = 0
    for run in json.load(open(ref_path))["runs"]:
        ids, d, a = run_ids(MODEL, None, "ngram", run["n_predict"], tokens=run["prompt_tokens"])
        want = [t for t in run["greedy_tokens"] if t != 2]  # run stops at EOS, unprinted
        assert ids == want
        drafted += d
    assert drafted > 0


@pytest.mark.parametrize("model", [MODEL, SMOL, GEMMA], ids=["stories260K", "SmolLM2", "gemma3"])
def test_run_modes_give_the_same_ids(model):
    if not os.path.exists(model):
        pytest.skip(f"{model} absent")
    big = model != MODEL  # fewer runs on the slower models: the suite stays fast
    n = 40 if big else 120
    prompts = [REPEAT] if big else [STORY, REPEAT, FREE]
    accepted = 0
    for prompt in prompts:
        for temp in (0.0,) if big else (0.0, 0.9):
            plain, d, _ = run_ids(model, prompt, "off", n, temp)
            assert d == 0 and len(plain) > 0
            modes = ["ngram"] if big else ["ngram", "auto"]
            for spec in modes:
                got, d, a = run_ids(model, prompt, spec, n, temp)
                assert got == plain, (prompt, temp, spec)
                accepted += a
    assert accepted > 0


@pytest.mark.parametrize("args,words", [
    (["--spec", "fast"], {"*": "'fast': expected auto, off, ngram, draft or mtp"}),
    (["--spec", "draft"], {"run": "--spec draft needs a draft model: --model-draft FILE",
                           "chat": "--spec draft needs a draft model: --model-draft FILE",
                           "serve": "--spec draft needs a draft model: --model-draft FILE"}),
    (["--spec-max", "0"], {"*": "--spec-max"}),
    (["--spec-max", "65"], {"*": "--spec-max"}),
])
def test_bad_spec_flags_are_refused(args, words):
    for cmd in (["run", "-m", MODEL, "-p", "x"], ["chat", "-m", MODEL], ["serve", "-m", MODEL]):
        out = subprocess.run([OUTBOARD, *cmd, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, (cmd, out.stderr)
        assert words.get(cmd[0], words.get("*")) in out.stderr, (cmd, out.stderr)


def test_draft_model_gives_the_same_ids(tmp_path):
    """A draft model: the target itself (every greedy draft token accepted but where the answer
    ends), a random-weight model with the same vocabulary (next to nothing accepted), and a
    model with another vocabulary, refused at load."""
    tiny = str(tmp_path / "tiny-stories.gguf")
    out = subprocess.run([OUTBOARD, "synth", "--shape", "tiny", "--type", "f32", "--vocab", MODEL,
                          "-o", tiny], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for prompt in (STORY, FREE):
        for temp in (0.0, 0.9):
            plain, _, _ = run_ids(MODEL, prompt, "off", 100, temp)
            itself, d, a = run_ids(MODEL, prompt, "draft", 100, temp,
                                   extra=("--model-draft", MODEL))
            assert itself == plain and d > 0
            if temp == 0:
                assert a >= 0.8 * d
            noise, d, a = run_ids(MODEL, prompt, "draft", 100, temp, extra=("--model-draft", tiny))
            assert noise == plain and d > 0 and a < 0.5 * d
    if os.path.exists(SMOL):
        out = subprocess.run([OUTBOARD, "run", "-m", MODEL, "-p", "x", "--spec", "draft",
                              "--model-draft", SMOL], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "its vocabulary has 49152 tokens, the target's" in out.stderr
        assert "a draft model needs the same vocabulary" in out.stderr


def metric(s, name):
    text = s.request("GET", "/metrics")[1].decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return int(m.group(1))


def stream(client, prompt, spec, max_tokens=40, stop=None):
    """A greedy streamed completion through the openai client: (text, finish_reason)."""
    parts, finish = [], None
    for chunk in client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=max_tokens,
                                           temperature=0, stream=True, stop=stop,
                                           extra_body={"speculative": spec}):
        for c in chunk.choices:
            parts.append(c.text or "")
            finish = c.finish_reason or finish
    return "".join(parts), finish


def concurrently(fn, items):
    start = threading.Barrier(len(items))

    def go(x):
        start.wait(timeout=30)
        return fn(x)

    with concurrent.futures.ThreadPoolExecutor(len(items)) as ex:
        return list(ex.map(go, items))


def test_server_streams_with_speculation_equal_plain():
    openai = pytest.importorskip("openai")
    s = Server("--parallel", "4", "--spec", "off")
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
        prompts = [STORY, "Lily and Max played. Lily and Max", "The sun was hot. The sun",
                   "One day"]
        alone = [stream(client, p, "off") for p in prompts]
        assert metric(s, "outboard_spec_draft_tokens_total") == 0  # --spec off held
        together = concurrently(lambda p: stream(client, p, "ngram"), prompts)
        assert together == alone
        drafted = metric(s, "outboard_spec_draft_tokens_total")
        accepted = metric(s, "outboard_spec_accepted_tokens_total")
        passes = metric(s, "outboard_decode_passes_total")
        produced = metric(s, "outboard_decode_pass_tokens_total")
        assert drafted > 0 and 0 < accepted <= drafted
        assert produced > passes  # more than one token per pass on average
        # a stop string inside what the drafts cover: cut at the same place
        cut = alone[0][0][5:12]
        assert stream(client, STORY, "ngram", stop=[cut]) == stream(client, STORY, "off",
                                                                     stop=[cut])
        assert stream(client, STORY, "ngram", stop=[cut])[1] == "stop"
        status, body, _ = s.request("POST", "/v1/completions",
                                    {"prompt": "x", "speculative": "fast"})
        assert status == 400
        err = json.loads(body)["error"]
        assert err["param"] == "speculative" and "'fast'" in err["message"]
        status, body, _ = s.request("POST", "/v1/completions", {"prompt": "x", "speculative": 3})
        assert status == 400 and json.loads(body)["error"]["param"] == "speculative"
        status, body, _ = s.request("POST", "/v1/completions",
                                    {"prompt": "x", "speculative": "draft"})
        assert status == 400 and "does not load" in json.loads(body)["error"]["message"]
        assert s.request("GET", "/health")[0] == 200
    finally:
        s.stop()


def test_ollama_options_speculative():
    """Ollama's clients carry what its API does not name in "options": options.speculative
    turns drafting on for that request (the server runs --spec off), the text is what plain
    decoding gives, and a bad value is a 400 naming options.speculative."""
    ollama = pytest.importorskip("ollama")
    s = Server("--spec", "off")
    try:
        client = ollama.Client(host=s.url)

        def generate(spec):
            r = client.generate(model=MODEL_ID, prompt=REPEAT, stream=False,
                                options={"temperature": 0, "num_predict": 40,
                                         "speculative": spec})
            return r["response"]

        plain = generate("off")
        assert metric(s, "outboard_spec_draft_tokens_total") == 0
        assert generate("ngram") == plain
        assert metric(s, "outboard_spec_draft_tokens_total") > 0
        status, body, _ = s.request("POST", "/api/generate",
                                    {"model": MODEL_ID, "prompt": "x", "stream": False,
                                     "options": {"speculative": "fast"}})
        assert status == 400 and "options.speculative" in body.decode(), body
        assert s.request("GET", "/health")[0] == 200
    finally:
        s.stop()


def test_server_draft_model_equals_plain(tmp_path):
    """serve --model-draft: the target drafting for itself (nearly every draft accepted) and a
    random-weight model with the same vocabulary (next to nothing accepted), each sequence of a
    batch drafting in its own slot of the draft model, stream what plain decoding gives; a
    draft model with another vocabulary stops the server at start, naming both counts."""
    openai = pytest.importorskip("openai")
    tiny = str(tmp_path / "tiny-stories.gguf")
    out = subprocess.run([OUTBOARD, "synth", "--shape", "tiny", "--type", "f32", "--vocab", MODEL,
                          "-o", tiny], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    prompts = [STORY, "Lily and Max played. Lily and Max", "The sun was hot. The sun"]
    plain = Server("--parallel", "3", "--spec", "off")
    try:
        client = openai.OpenAI(base_url=plain.url + "/v1", api_key="unused", max_retries=0)
        alone = [stream(client, p, "off") for p in prompts]
    finally:
        plain.stop()
    for draft, good in ((MODEL, True), (tiny, False)):
        s = Server("--parallel", "3", "--model-draft", draft)
        try:
            client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
            together = concurrently(lambda p: stream(client, p, "draft"), prompts)
            assert together == alone, draft
            assert [stream(client, p, "auto") for p in prompts[:1]] == alone[:1]
            drafted = metric(s, "outboard_spec_draft_tokens_total")
            accepted = metric(s, "outboard_spec_accepted_tokens_total")
            assert drafted > 0, draft
            assert accepted >= 0.8 * drafted if good else accepted < 0.5 * drafted
        finally:
            s.stop()
    if os.path.exists(SMOL):
        out = subprocess.run([OUTBOARD, "serve", "-m", MODEL, "--port", "0", "--model-draft",
                              SMOL], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        assert "--model-draft" in out.stderr and "49152" in out.stderr, out.stderr


def test_client_leaving_mid_stream_with_speculation():
    import http.client
    s = Server("--parallel", "2")
    try:
        body = json.dumps({"prompt": REPEAT, "max_tokens": 400, "temperature": 0,
                           "stream": True, "speculative": "ngram"})
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        conn.request("POST", "/v1/completions", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        seen = 0
        for line in resp:
            if line.startswith(b"data: "):
                seen += 1
                if seen == 2:
                    break
        conn.close()  # leaves while its sequence verifies drafts
        deadline = time.time() + 10
        while metric(s, "outboard_sequences_running") != 0 and time.time() < deadline:
            time.sleep(0.05)
        assert metric(s, "outboard_sequences_running") == 0
        a = json.loads(s.request("POST", "/v1/completions",
                                 {"prompt": STORY, "max_tokens": 30, "temperature": 0,
                                  "speculative": "ngram"}, timeout=60)[1])
        b = json.loads(s.request("POST", "/v1/completions",
                                 {"prompt": STORY, "max_tokens": 30, "temperature": 0,
                                  "speculative": "off"}, timeout=60)[1])
        assert a["choices"][0]["text"] == b["choices"][0]["text"]
    finally:
        s.stop()


def test_gemma_server_concurrent_edit_equals_plain():
    if not os.path.exists(GEMMA):
        pytest.skip("default model absent")
    s = Server("--parallel", "2", "--ctx", "1024", model=GEMMA)
    try:
        def ask(spec_prompt):
            spec, prompt = spec_prompt
            st, raw, _ = s.request("POST", "/v1/completions",
                                   {"prompt": prompt, "max_tokens": 40, "temperature": 0,
                                    "speculative": spec}, timeout=120)
            assert st == 200, raw
            return json.loads(raw)["choices"][0]["text"]
        prompts = [REPEAT, "Copy this line: the quick brown fox jumps over the lazy dog.\n"
                   "Copy: the quick brown fox jumps over the lazy dog.\nCopy:"]
        alone = [ask(("off", p)) for p in prompts]
        together = concurrently(ask, [("ngram", p) for p in prompts])
        assert together == alone
        assert metric(s, "outboard_spec_accepted_tokens_total") > 0
    finally:
        s.stop()
