"""Generation through a real `outboard serve` process (the scheduler on the multi-sequence
engine), with the official `openai` and `ollama` clients and raw HTTP:

- greedy answers equal `outboard run`'s for the same prompt (completions), and streamed
  answers equal whole-body ones, in both dialects;
- concurrent greedy requests give what each gives alone, also when the queue holds them back
  (--parallel 2) and when the KV pool is too small for all of them at once (preemption);
- stop strings (never streamed), max_tokens, logit_bias, seeds, n > 1, usage, finish reasons;
- a prompt over the context is a 400 naming both counts, a full queue a 503 with Retry-After,
  a client that disconnects mid-stream frees its sequence.
The model is stories260K (no chat template: the generic ChatML one renders chats).
"""
import concurrent.futures
import http.client
import json
import os
import re
import socket
import subprocess
import time

import pytest

from test_serve_http import MODEL, MODEL_ID, OUTBOARD, Server

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went", "One day, a bird",
           "The sun was", "Sam had a red ball"]


@pytest.fixture(scope="module")
def srv():
    s = Server("--parallel", "4")
    try:
        yield s
    finally:
        s.stop()


def openai_client(s):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)


def complete(s, prompt, max_tokens=24, **kw):
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, **kw}
    status, raw, _ = s.request("POST", "/v1/completions", body, timeout=60)
    assert status == 200, raw
    return json.loads(raw)


def run_reference(prompt, n):
    out = subprocess.run([OUTBOARD, "run", "-m", MODEL, "-p", prompt, "--temp", "0", "-n",
                          str(n), "--threads", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(prompt)
    return out.stdout[len(prompt):].rstrip("\n")


def test_greedy_completion_equals_outboard_run(srv):
    for prompt in PROMPTS[:3]:
        got = complete(srv, prompt, 30)
        assert got["choices"][0]["text"] == run_reference(prompt, 30)
        assert got["choices"][0]["finish_reason"] == "length"
        assert got["usage"]["completion_tokens"] == 30


def test_chat_stream_equals_whole(srv):
    client = openai_client(srv)
    msgs = [{"role": "system", "content": "Tell a story."},
            {"role": "user", "content": "A cat"}]
    whole = client.chat.completions.create(model=MODEL_ID, messages=msgs, max_tokens=20,
                                           temperature=0)
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.role == "assistant"
    assert whole.usage.completion_tokens == 20 and whole.usage.prompt_tokens > 5
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=msgs, max_tokens=20,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 20 and not chunks[-1].choices


def test_completion_stream_with_client(srv):
    client = openai_client(srv)
    whole = client.completions.create(model=MODEL_ID, prompt=PROMPTS[1], max_tokens=16,
                                      temperature=0)
    parts = client.completions.create(model=MODEL_ID, prompt=PROMPTS[1], max_tokens=16,
                                      temperature=0, stream=True)
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text


def test_echo(srv):
    client = openai_client(srv)
    whole = client.completions.create(model=MODEL_ID, prompt=PROMPTS[4], max_tokens=6,
                                      temperature=0, echo=True)
    assert whole.choices[0].text.startswith(PROMPTS[4])
    parts = client.completions.create(model=MODEL_ID, prompt=PROMPTS[4], max_tokens=6,
                                      temperature=0, echo=True, stream=True)
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text


def test_stop_string_is_never_streamed(srv):
    full = complete(srv, PROMPTS[0], 30)["choices"][0]["text"]
    assert " little" in full
    cut = complete(srv, PROMPTS[0], 30, stop=[" little", "zzz"])
    assert cut["choices"][0]["text"] == full[:full.index(" little")]
    assert cut["choices"][0]["finish_reason"] == "stop"
    client = openai_client(srv)
    parts = [p.choices[0].text for p in client.completions.create(
        model=MODEL_ID, prompt=PROMPTS[0], max_tokens=30, temperature=0, stop=" little",
        stream=True)]
    streamed = "".join(parts)
    assert streamed == cut["choices"][0]["text"] and " little" not in streamed


def test_concurrent_greedy_equals_one_at_a_time(srv):
    alone = [complete(srv, p, 24)["choices"][0]["text"] for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as ex:
        together = list(ex.map(lambda p: complete(srv, p, 24)["choices"][0]["text"], PROMPTS))
    assert together == alone


def test_queue_and_preemption_keep_answers():
    # Two slots for six requests (four wait), and a pool of 128 positions (4 blocks of 32)
    # that cannot hold two 100-token answers with their prompts: sequences are preempted and
    # recomputed, and the greedy answers must not change.
    ref = Server("--parallel", "1")
    try:
        alone = [complete(ref, p, 100)["choices"][0]["text"] for p in PROMPTS]
    finally:
        ref.stop()
    s = Server("--parallel", "2", "--ctx", "128", "--kv-size", "128")
    try:
        with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as ex:
            together = list(ex.map(lambda p: complete(s, p, 100)["choices"][0]["text"],
                                   PROMPTS))
        assert together == alone
        assert metric(s, "outboard_preemptions_total") > 0
        assert s.request("GET", "/health")[0] == 200
    finally:
        s.stop()


def test_ollama_chat_and_generate(srv):
    ollama = pytest.importorskip("ollama")
    client = ollama.Client(host=srv.url)
    # repeat_penalty 1: Ollama's default (1.1) would make the answer differ from OpenAI's
    opts = {"temperature": 0, "num_predict": 16, "repeat_penalty": 1.0}
    g = client.generate(model=MODEL_ID, prompt=PROMPTS[2], options=opts, stream=False)
    assert g.done and g.done_reason == "length" and g.eval_count == 16
    assert g.response == complete(srv, PROMPTS[2], 16)["choices"][0]["text"]
    parts = list(client.generate(model=MODEL_ID, prompt=PROMPTS[2], options=opts, stream=True))
    assert "".join(p.response for p in parts) == g.response
    assert parts[-1].done and parts[-1].prompt_eval_count > 0
    msgs = [{"role": "user", "content": "A frog"}]
    c = client.chat(model=MODEL_ID, messages=msgs, options=opts, stream=False)
    assert c.message.role == "assistant" and c.done_reason == "length"
    cs = list(client.chat(model=MODEL_ID, messages=msgs, options=opts, stream=True))
    assert "".join(p.message.content for p in cs).strip() == c.message.content
    load = client.generate(model=MODEL_ID)  # no prompt: Ollama's "load the model"
    assert load.done and load.done_reason == "load"


def test_sampling_controls(srv):
    first = complete(srv, PROMPTS[0], 1)
    assert first["choices"][0]["finish_reason"] == "length"
    assert first["usage"]["completion_tokens"] == 1
    # ban whatever greedy picks first: the answer must change
    ids = re.findall(r"\d+", subprocess.run(
        [OUTBOARD, "tokenize", "-m", MODEL, "--ids", "x" + first["choices"][0]["text"]],
        capture_output=True, text=True).stdout)
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 12, "temperature": 0}
    base = json.loads(srv.request("POST", "/v1/chat/completions", body)[1])
    a = json.loads(srv.request("POST", "/v1/chat/completions",
                               {**body, "temperature": 1.0, "seed": 7})[1])
    b = json.loads(srv.request("POST", "/v1/chat/completions",
                               {**body, "temperature": 1.0, "seed": 7})[1])
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    two = json.loads(srv.request("POST", "/v1/chat/completions",
                                 {**body, "temperature": 1.0, "seed": 3, "n": 2})[1])
    assert [c["index"] for c in two["choices"]] == [0, 1]
    assert two["usage"]["completion_tokens"] <= 24
    assert base["choices"][0]["message"]["content"]
    assert ids  # the tokenizer ran


def test_n_choices_share_the_prompt(srv):
    # Greedy: every choice is the one answer; choices after the first start from the first
    # one's cache (fork), so a wrong fork would show as a different answer.
    one = complete(srv, PROMPTS[5], 20)["choices"][0]["text"]
    many = complete(srv, PROMPTS[5], 20, n=3)
    assert [c["text"] for c in many["choices"]] == [one] * 3
    assert [c["index"] for c in many["choices"]] == [0, 1, 2]
    assert many["usage"]["completion_tokens"] == 60
    two = complete(srv, [PROMPTS[0], PROMPTS[1]], 10, n=2)
    texts = [c["text"] for c in two["choices"]]
    assert texts[0] == texts[1] == complete(srv, PROMPTS[0], 10)["choices"][0]["text"]
    assert texts[2] == texts[3] == complete(srv, PROMPTS[1], 10)["choices"][0]["text"]


def test_logit_bias_bans_a_token(srv):
    first = complete(srv, PROMPTS[0], 1)
    text = first["choices"][0]["text"]
    for tok in range(512):
        banned = complete(srv, PROMPTS[0], 1, logit_bias={str(tok): -100})
        if banned["choices"][0]["text"] != text:
            break
    else:
        pytest.fail("no logit_bias entry changed the greedy token")


def test_context_length_exceeded():
    s = Server("--ctx", "32")
    try:
        status, raw, _ = s.request("POST", "/v1/completions",
                                   {"prompt": "Once upon a time " * 20, "max_tokens": 4})
        assert status == 400
        err = json.loads(raw)["error"]
        assert err["code"] == "context_length_exceeded" and err["param"] == "prompt"
        assert re.search(r"prompt: \d+ tokens, the context holds 32", err["message"])
        status, raw, _ = s.request("POST", "/api/chat", {
            "model": MODEL_ID, "messages": [{"role": "user", "content": "word " * 50}]})
        assert status == 400 and "the context holds 32" in json.loads(raw)["error"]
        # an answer that reaches the end of the context stops with "length"
        got = complete(s, "Once", 100)
        assert got["choices"][0]["finish_reason"] == "length"
        assert got["usage"]["prompt_tokens"] + got["usage"]["completion_tokens"] <= 32
    finally:
        s.stop()


def metric(s, name):
    text = s.request("GET", "/metrics")[1].decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1))


def test_disconnect_frees_the_sequence_and_queue_full():
    s = Server("--parallel", "1", "--queue", "0")
    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        body = json.dumps({"prompt": "Once", "max_tokens": 100000, "stream": True,
                           "temperature": 1.0})
        sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        deadline = time.time() + 10
        while metric(s, "outboard_sequences_running") != 1 and time.time() < deadline:
            time.sleep(0.05)
        # the only slot is busy and the queue holds nothing: 503 with Retry-After
        status, raw, headers = s.request("POST", "/v1/completions",
                                         {"prompt": "x", "max_tokens": 2})
        assert status == 503 and headers.get("Retry-After") == "1"
        assert json.loads(raw)["error"]["code"] == "queue_full"
        # more choices than the server can ever hold at once: 400, not a retry
        status, raw, _ = s.request("POST", "/v1/completions",
                                   {"prompt": "x", "max_tokens": 2, "n": 3})
        assert status == 400 and json.loads(raw)["error"]["param"] == "n"
        sock.close()
        deadline = time.time() + 10
        while metric(s, "outboard_sequences_running") != 0 and time.time() < deadline:
            time.sleep(0.05)
        assert metric(s, "outboard_sequences_running") == 0
        assert complete(s, "Once", 4)["usage"]["completion_tokens"] == 4
    finally:
        s.stop()


def test_disconnect_cancels_a_whole_body_request():
    s = Server("--parallel", "1")
    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        body = json.dumps({"prompt": "Once", "max_tokens": 100000, "temperature": 1.0})
        sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     f"{len(body)}\r\n\r\n{body}".encode())
        deadline = time.time() + 10
        while metric(s, "outboard_sequences_running") != 1 and time.time() < deadline:
            time.sleep(0.05)
        sock.close()
        deadline = time.time() + 10
        while metric(s, "outboard_sequences_running") != 0 and time.time() < deadline:
            time.sleep(0.05)
        assert metric(s, "outboard_sequences_running") == 0
        assert complete(s, "Once", 4)["usage"]["completion_tokens"] == 4
    finally:
        s.stop()


def test_metrics_count_tokens(srv):
    before = metric(srv, "outboard_generated_tokens_total")
    complete(srv, PROMPTS[3], 5)
    assert metric(srv, "outboard_generated_tokens_total") == before + 5
    text = srv.request("GET", "/metrics")[1].decode()
    assert re.search(r"outboard_time_to_first_token_seconds_count [1-9]", text)
    assert re.search(r"outboard_kv_blocks_total [1-9]", text)


def test_logprobs(srv):
    client = openai_client(srv)
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=4, temperature=0, logprobs=True,
                                       top_logprobs=3)
    entries = r.choices[0].logprobs.content
    assert len(entries) == 4
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        # greedy: the token taken is the most likely one
        assert e.top_logprobs[0].token == e.token
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob
        assert bytes(e.bytes).decode() == e.token
    legacy = complete(srv, "Once upon", 3, logprobs=2)["choices"][0]
    lp = legacy["logprobs"]
    assert "".join(lp["tokens"]) == legacy["text"]
    assert all(len(t) <= 2 for t in lp["top_logprobs"]) and len(lp["token_logprobs"]) == 3
    assert lp["text_offset"][0] == 0


SMOLLM2 = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_chat_equals_outboard_chat():
    # A model with its own chat template: the server's greedy answer is the one `outboard chat`
    # gives for the same message (same template, same BOS rule, same sampler).
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} absent: run scripts/fetch-smollm2.sh")
    ref = subprocess.run([OUTBOARD, "chat", "-m", SMOLLM2, "--temp", "0", "-n", "24",
                          "--threads", "1"], input="What is the capital of France?\n",
                         capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    s = Server("--parallel", "2", model=SMOLLM2)
    try:
        status, raw, _ = s.request("POST", "/v1/chat/completions", {
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 24, "temperature": 0}, timeout=120)
        assert status == 200, raw
        got = json.loads(raw)["choices"][0]["message"]["content"]
        assert got.strip() == ref.stdout.strip()
    finally:
        s.stop()


def test_shutdown_ends_requests_in_flight():
    # SIGTERM while one answer streams and one waits for its whole body (and one more waits
    # in the queue): each gets the dialect's 503 "shutting down", the process exits 0.
    s = Server("--parallel", "2")
    results = {}

    def whole(name, path, body):
        try:
            results[name] = s.request("POST", path, body, timeout=30)[:2]
        except OSError as e:
            results[name] = ("error", str(e))

    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        body = json.dumps({"prompt": "Once", "max_tokens": 1000000, "stream": True})
        sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     f"{len(body)}\r\n\r\n{body}".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        threads = [
            concurrent.futures.ThreadPoolExecutor(1).submit(
                whole, "openai", "/v1/completions", {"prompt": "Once", "max_tokens": 1000000}),
            concurrent.futures.ThreadPoolExecutor(1).submit(
                whole, "ollama", "/api/generate",
                {"model": MODEL_ID, "prompt": "Once", "stream": False,
                 "options": {"num_predict": -1}}),
        ]
        # both whole-body requests have reached the scheduler (one runs, one queues) before
        # the signal, however slowly a busy machine lets them in
        deadline = time.time() + 30
        while (metric(s, "outboard_sequences_running") < 2 or
               metric(s, "outboard_queue_depth") < 1) and time.time() < deadline:
            time.sleep(0.05)
        t0 = time.time()
        rc, out, err = s.stop()
        assert rc == 0 and time.time() - t0 < 10, err
        for f in threads:
            f.result(timeout=30)
        rest = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        sock.close()
        assert b'"code":"shutting_down"' in rest and b"data: [DONE]" in rest
        for name, (status, raw) in results.items():
            assert status == 503, (name, raw)
            err = json.loads(raw)["error"]
            assert "shutting down" in (err if name == "ollama" else err["message"])
    finally:
        s.stop()
