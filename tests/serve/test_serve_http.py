"""`outboard serve` as a real process on 127.0.0.1, driven by the official clients and by raw
HTTP.

- /health, /v1/models with the `openai` client, /api/tags, /api/show and /api/ps with the
  `ollama` client, /api/version and /metrics over plain HTTP;
- a suite of malformed and refused requests (bad JSON, wrong types, out-of-range values, unknown
  routes and models, wrong methods, bodies over --max-body, missing or wrong API keys, a request
  left half-sent): each must get its status and its dialect's error object naming the field,
  and the server must still answer /health after all of them;
- flags are parsed strictly and SIGTERM stops the server cleanly.
The model is stories260K (shared models folder); every server is stopped in the fixture's
teardown.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")
MODEL_ID = "stories260K"
KEY = "test-key-123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def named_events(port, path, body):
    """POSTs body with stream on and returns the named SSE events' data objects, checking that
    each frame is `event: NAME` then `data: {...}` whose "type" is NAME (the Anthropic and
    Responses stream grammars)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type").startswith("text/event-stream")
        events = []
        for frame in resp.read().decode().split("\n\n"):
            if not frame.strip():
                continue
            name, data = frame.split("\n", 1)
            assert name.startswith("event: ") and data.startswith("data: "), frame
            payload = json.loads(data[len("data: "):])
            assert payload["type"] == name[len("event: "):], frame
            events.append(payload)
        return events
    finally:
        conn.close()


class Server:
    def __init__(self, *args, model=MODEL, env=None):
        """model: the first -m file, or None for none (the arguments then name the models);
        env: variables added to the server's environment."""
        if model is not None and not os.path.exists(model):
            pytest.skip(f"{model} absent")
        self.port = free_port()
        # An empty model store of its own: /api/tags lists the store's models besides the
        # served one, and the person running the tests may have pulled some.
        self.store = tempfile.TemporaryDirectory(prefix="ob-serve-store-")
        first = ["-m", model] if model is not None else []
        self.proc = subprocess.Popen(
            [OUTBOARD, "serve", *first, "--host", "127.0.0.1", "--port", str(self.port),
             "--threads", "1", *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, OUTBOARD_MODELS=self.store.name, **(env or {})))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not become healthy in 30 s")

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out, err = self.proc.communicate()
        self.store.cleanup()
        # Under `make check` the server is built with ASan/UBSan (and by hand with TSan): any
        # report fails the test that owned this server.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            assert marker not in err, err[-4000:]
        return self.proc.returncode, out, err


@pytest.fixture(scope="module")
def server():
    s = Server("--max-body", "65536", "--timeout", "2")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def keyed():
    s = Server("--api-key", KEY)
    try:
        yield s
    finally:
        s.stop()


def test_health(server):
    status, body, _ = server.request("GET", "/health")
    assert status == 200
    h = json.loads(body)
    assert h["status"] == "ok"
    # the loaded model's plan in force (tests/serve/test_serve_plan.py checks the figures)
    [m] = h["models"]
    assert m["placement"].startswith("cpu: layers 0-") and m["predicted"]["decode_tps"] > 0, m


def test_openai_models_list(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert models.data[0].object == "model"
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID


def test_ollama_tags_show_ps(server):
    ollama = pytest.importorskip("ollama")
    client = ollama.Client(host=server.url)
    tags = client.list()
    assert [m.model for m in tags.models] == [MODEL_ID + ":latest"]
    assert tags.models[0].details.family == "llama"
    assert tags.models[0].details.format == "gguf"
    show = client.show(MODEL_ID)
    assert show.modelinfo["general.architecture"] == "llama"
    assert show.modelinfo["llama.context_length"] > 0
    assert "completion" in show.capabilities
    ps = client.ps()
    assert ps.models[0].model == MODEL_ID + ":latest"
    with pytest.raises(ollama.ResponseError) as e:
        client.show("no-such-model")
    assert e.value.status_code == 404


def test_version_and_metrics(server):
    status, body, _ = server.request("GET", "/api/version")
    assert status == 200 and re.match(r"\d+\.\d+\.\d+", json.loads(body)["version"])
    server.request("GET", "/health")
    status, body, headers = server.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert re.search(r'^outboard_requests_total\{route="/health",status="200"\} \d+$', text, re.M)
    assert "# TYPE outboard_time_to_first_token_seconds histogram" in text
    assert "outboard_queue_depth 0" in text


CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]

# (name, method, path, body, headers, status, field named (OpenAI "param"), words in the message)
CASES = [
    ("bad json", "POST", CHAT, '{"messages": [', {}, 400, None, "malformed JSON"),
    ("trailing garbage", "POST", CHAT, '{"messages": []} x', {}, 400, None, "malformed JSON"),
    ("empty body", "POST", CHAT, "", {}, 400, None, "empty body"),
    ("array body", "POST", CHAT, "[1]", {}, 400, None, "expected a JSON object, got array"),
    ("no messages", "POST", CHAT, {}, {}, 400, "messages", "required"),
    ("messages not array", "POST", CHAT, {"messages": "hi"}, {}, 400, "messages",
     "expected an array, got string"),
    ("content number", "POST", CHAT,
     {"messages": [MSG[0], MSG[0], {"role": "user", "content": 5}]}, {}, 400,
     "messages[2].content", "expected a string or an array of content parts, got number"),
    ("bad role", "POST", CHAT, {"messages": [{"role": "robot", "content": "x"}]}, {}, 400,
     "messages[0].role", "robot"),
    ("image part", "POST", CHAT, {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:,"}}]}]}, {}, 400,
     "messages[0].content[0].type", "text only"),
    ("temperature string", "POST", CHAT, {"messages": MSG, "temperature": "hot"}, {}, 400,
     "temperature", "expected a number, got string"),
    ("temperature range", "POST", CHAT, {"messages": MSG, "temperature": 9}, {}, 400,
     "temperature", "from 0 to 2, got 9"),
    ("top_p range", "POST", CHAT, {"messages": MSG, "top_p": 1.5}, {}, 400, "top_p", "got 1.5"),
    ("max_tokens float", "POST", CHAT, {"messages": MSG, "max_tokens": 2.5}, {}, 400,
     "max_tokens", "expected an integer"),
    ("n too big", "POST", CHAT, {"messages": MSG, "n": 100}, {}, 400, "n", "from 1 to 16"),
    ("top_logprobs 21", "POST", CHAT,
     {"messages": MSG, "logprobs": True, "top_logprobs": 21}, {}, 400, "top_logprobs", "got 21"),
    ("stop type", "POST", CHAT, {"messages": MSG, "stop": {"a": 1}}, {}, 400, "stop",
     "a string or an array of strings, got object"),
    ("too many stops", "POST", CHAT, {"messages": MSG, "stop": [str(i) for i in range(20)]},
     {}, 400, "stop", "the limit is 16"),
    ("logit_bias key", "POST", CHAT, {"messages": MSG, "logit_bias": {"x": 1}}, {}, 400,
     "logit_bias.x", "token id"),
    ("logit_bias vocab", "POST", CHAT, {"messages": MSG, "logit_bias": {"99999": 1}}, {}, 400,
     "logit_bias.99999", "outside the vocabulary"),
    ("tools not array", "POST", CHAT, {"messages": MSG, "tools": "f"}, {}, 400, "tools",
     "expected an array"),
    ("tool_choice unknown", "POST", CHAT, {"messages": MSG, "tool_choice": "always"}, {}, 400,
     "tool_choice", "always"),
    ("stream_options without stream", "POST", CHAT,
     {"messages": MSG, "stream_options": {"include_usage": True}}, {}, 400, "stream_options",
     "stream is true"),
    ("unknown model", "POST", CHAT, {"model": "gpt-4", "messages": MSG}, {}, 404, "model",
     "model 'gpt-4' not found"),
    ("completion prompt type", "POST", "/v1/completions", {"prompt": {"a": 1}}, {}, 400,
     "prompt", "got object"),
    ("completion token range", "POST", "/v1/completions", {"prompt": [1, 100000]}, {}, 400,
     "prompt[1]", "got 100000"),
    ("unknown route", "GET", "/v1/nothing", None, {}, 404, None, "no such route"),
    ("unknown route post", "POST", "/v2/chat", {}, {}, 404, None, "no such route"),
    ("wrong method models", "POST", "/v1/models", {}, {}, 405, None, "use GET"),
    ("wrong method chat", "GET", CHAT, None, {}, 405, None, "use POST"),
    ("wrong method delete", "DELETE", "/health", None, {}, 405, None, "use GET"),
    ("body too large", "POST", CHAT, "x" * 70000, {}, 413, None, "the limit (--max-body)"),
    ("unknown model route", "GET", "/v1/models/nope", None, {}, 404, "model", "'nope' not found"),
    # Ollama routes answer with {"error": "..."}.
    ("ollama bad json", "POST", "/api/chat", "{", {}, 400, None, "malformed JSON"),
    ("ollama no model", "POST", "/api/chat", {"messages": MSG}, {}, 400, None,
     "model: required"),
    ("ollama options type", "POST", "/api/generate",
     {"model": MODEL_ID, "prompt": "x", "options": {"num_predict": "ten"}}, {}, 400, None,
     "options.num_predict: expected an integer, got string"),
    ("ollama options range", "POST", "/api/generate",
     {"model": MODEL_ID, "prompt": "x", "options": {"top_k": -5}}, {}, 400, None,
     "options.top_k"),
    ("ollama keep_alive", "POST", "/api/generate",
     {"model": MODEL_ID, "keep_alive": "forever"}, {}, 400, None, "keep_alive"),
    ("ollama unknown model", "POST", "/api/generate", {"model": "llama3", "prompt": "x"}, {},
     404, None, "model 'llama3' not found"),
    ("ollama show unknown", "POST", "/api/show", {"model": "llama3"}, {}, 404, None,
     "not found"),
    ("ollama show bad json", "POST", "/api/show", "nope", {}, 400, None, "malformed JSON"),
    ("ollama wrong method", "GET", "/api/chat", None, {}, 405, None, "use POST"),
    ("ollama unknown route", "GET", "/api/no-such-route", None, {}, 404, None, "no such route"),
    ("ollama store route, wrong method", "GET", "/api/pull", None, {}, 405, None, "use POST"),
    ("ollama body too large", "POST", "/api/chat", "y" * 70000, {}, 413, None, "--max-body"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refused_requests(server, case):
    name, method, path, body, headers, status, param, words = case
    got, raw, hdrs = server.request(method, path, body, headers)
    assert got == status, raw
    err = json.loads(raw)["error"]
    if path.startswith("/api/"):
        assert isinstance(err, str) and words in err
    else:
        assert words in err["message"]
        assert err["type"] and "code" in err
        assert err["param"] == param
    if status == 405:
        assert hdrs.get("Allow") in ("GET", "POST")


def test_declared_body_too_large_refused_before_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 100000000\r\n\r\n")
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head


def test_half_sent_request_times_out(server):
    # --timeout 2: a client that stops mid-body is dropped, and others are still served.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 50\r\n\r\n{\"messages\":")
        t0 = time.time()
        assert server.request("GET", "/health")[0] == 200
        data = s.recv(4096)
        waited = time.time() - t0
    assert data == b"" and waited < 8, (data, waited)


def test_malformed_http_is_refused(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        head = s.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 400") or head == ""


def test_still_healthy_after_everything(server):
    assert server.request("GET", "/health")[0] == 200
    assert server.proc.poll() is None


AUTH_CASES = [
    ("no key", {}, 401, "missing API key"),
    ("wrong bearer", {"Authorization": "Bearer wrong"}, 401, "not valid"),
    ("not bearer", {"Authorization": "Basic " + KEY}, 401, "Bearer"),
    ("wrong x-api-key", {"x-api-key": KEY + "x"}, 401, "not valid"),
    ("bearer", {"Authorization": "Bearer " + KEY}, 200, None),
    ("x-api-key", {"x-api-key": KEY}, 200, None),
]


@pytest.mark.parametrize("case", AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
def test_api_key(keyed, case):
    name, headers, status, words = case
    for path in ("/v1/models", "/api/tags"):
        got, raw, hdrs = keyed.request("GET", path, headers=headers)
        assert got == status, raw
        if status == 401:
            err = json.loads(raw)["error"]
            msg = err if isinstance(err, str) else err["message"]
            assert words in msg
            assert hdrs.get("WWW-Authenticate") == "Bearer"


def test_api_key_clients(keyed):
    ollama = pytest.importorskip("ollama")
    openai = pytest.importorskip("openai")
    assert keyed.request("GET", "/health")[0] == 200  # /health needs no key
    good = openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEY)
    assert [m.id for m in good.models.list().data] == [MODEL_ID]
    bad = openai.OpenAI(base_url=keyed.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    client = ollama.Client(host=keyed.url, headers={"Authorization": "Bearer " + KEY})
    assert client.list().models[0].model == MODEL_ID + ":latest"


def test_startup_line_and_clean_stop():
    s = Server("--alias", "tiny", "--ctx", "128", "--parallel", "2")
    try:
        assert json.loads(s.request("GET", "/v1/models")[1])["data"][0]["id"] == "tiny"
    finally:
        rc, out, err = s.stop()
    assert rc == 0, err
    line = out.strip().splitlines()[0]
    assert line.startswith(f"outboard serve: http://127.0.0.1:{s.port}")
    assert "model tiny" in line and "context 128" in line and "KV pool 256 tokens" in line
    assert "SIGTERM" in err


@pytest.mark.parametrize("args,words", [
    (["--port", "70000"], "--port: 70000 is outside [0, 65535]"),
    (["--port", "80x"], "--port: '80x' is not an integer"),
    (["--parallel", "0"], "--parallel: 0 is outside [1, 256]"),
    (["--max-body", "1T"], "--max-body: '1T' is not an integer"),
    (["--max-body", "5G"], "--max-body: '5G' is not a size"),
    (["--frobnicate", "1"], "unknown option '--frobnicate'"),
    (["--port"], "--port: expected a value"),
])
def test_strict_flags(args, words):
    proc = subprocess.run([OUTBOARD, "serve", "-m", MODEL, *args], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert words in proc.stderr


def test_missing_model_is_named():
    proc = subprocess.run([OUTBOARD, "serve", "-m", "/nonexistent.gguf", "--port",
                           str(free_port())], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "/nonexistent.gguf" in proc.stderr
