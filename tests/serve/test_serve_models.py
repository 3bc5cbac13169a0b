"""Several models on one `outboard serve` (src/serve/serve_registry.c), as real processes on
127.0.0.1: stories260K and llama-2-tiny-random from the shared models folder, served at once.

- both listed by /v1/models (the openai client) and /api/tags, requests alternating between
  them answered by the model named, both then in /api/ps;
- --max-models 1: each switch unloads the least recently used model, seen in /api/ps and in
  /metrics (outboard_model_unloads_total{reason="evicted"});
- --idle-unload and Ollama keep_alive 0 unload an idle model (reason="idle");
- ten concurrent requests for a model not loaded yet (--models-dir, nothing loaded at start)
  cause one load (outboard_model_loads_total 1) and all succeed;
- a model larger than --max-memory gets 503 at once naming the budget; with every loaded model
  busy (--max-models 1 and a long answer from the default model) a request for another waits
  for it to end, or with --load-wait 0 gets 503 with Retry-After; names that try to leave
  --models-dir and unknown names get 404 listing what is served;
- the new flags are checked: a model source is required, --alias names one model.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from test_serve_http import MODEL as STORIES, OUTBOARD, SHARED, Server, free_port

TINY = os.path.join(SHARED, "models", "llama-2-tiny-random.gguf")
DEFAULT_MODEL = os.environ.get("OB_DEFAULT_MODEL", "")


def need(*paths):
    for p in paths:
        if not p or not os.path.exists(p):
            pytest.skip(f"{p or 'OB_DEFAULT_MODEL'} absent")


def complete(server, model, max_tokens=4, timeout=60):
    status, body, headers = server.request(
        "POST", "/v1/completions",
        {"model": model, "prompt": "Once upon a time", "max_tokens": max_tokens,
         "temperature": 0}, timeout=timeout)
    return status, json.loads(body), headers


def metrics(server):
    status, body, _ = server.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    out = {}
    for name, value in re.findall(r"^(outboard_model[a-z_]*(?:\{[^}]*\})?) (\d+)$", text, re.M):
        out[name] = int(value)
    return out


def loaded(server):
    status, body, _ = server.request("GET", "/api/ps")
    assert status == 200
    return sorted(m["name"] for m in json.loads(body)["models"])


def wait_for(cond, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def stopper():
    servers = []
    yield servers.append
    for s in servers:
        s.stop()


def test_two_models_alternate(stopper):
    need(STORIES, TINY)
    s = Server("-m", TINY, model=STORIES)
    stopper(s)
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["stories260K", "llama-2-tiny-random"]
    ollama = pytest.importorskip("ollama")
    tags = ollama.Client(host=s.url).list()
    assert [m.model for m in tags.models] == ["stories260K:latest", "llama-2-tiny-random:latest"]
    assert loaded(s) == ["stories260K:latest"]  # the first -m is loaded at start
    for model in ["llama-2-tiny-random", "stories260K", "llama-2-tiny-random:latest",
                  "stories260K"]:
        status, body, _ = complete(s, model)
        assert status == 200, body
        assert body["model"] == model  # answered as asked
        assert body["usage"]["completion_tokens"] == 4
    assert loaded(s) == ["llama-2-tiny-random:latest", "stories260K:latest"]
    m = metrics(s)
    assert m["outboard_models_loaded"] == 2 and m["outboard_model_loads_total"] == 2
    # The default (no model named) is the first -m file.
    status, body, _ = s.request("POST", "/v1/completions", {"prompt": "A", "max_tokens": 1})
    assert status == 200 and json.loads(body)["model"] == "stories260K"


def test_lru_eviction_with_max_models(stopper):
    need(STORIES, TINY)
    s = Server("-m", TINY, "--max-models", 1, model=STORIES)
    stopper(s)
    assert complete(s, "llama-2-tiny-random")[0] == 200
    assert loaded(s) == ["llama-2-tiny-random:latest"]
    m = metrics(s)
    assert m['outboard_model_unloads_total{reason="evicted"}'] == 1
    assert complete(s, "stories260K")[0] == 200
    assert loaded(s) == ["stories260K:latest"]
    m = metrics(s)
    assert m['outboard_model_unloads_total{reason="evicted"}'] == 2
    assert m["outboard_model_loads_total"] == 3 and m["outboard_models_loaded"] == 1


def test_idle_unload_and_keep_alive(stopper):
    need(STORIES, TINY)
    s = Server("-m", TINY, "--idle-unload", 1, model=STORIES)
    stopper(s)
    # Ollama keep_alive 0: unloaded as soon as the answer is done.
    status, body, _ = s.request("POST", "/api/generate", {
        "model": "llama-2-tiny-random", "prompt": "Hi", "stream": False, "keep_alive": 0,
        "options": {"num_predict": 2}})
    assert status == 200, body
    wait_for(lambda: "llama-2-tiny-random:latest" not in loaded(s), "keep_alive 0 to unload", 5)
    # --idle-unload 1: the start-up model goes after a second of nothing.
    wait_for(lambda: loaded(s) == [], "the idle model to unload", 10)
    m = metrics(s)
    assert m['outboard_model_unloads_total{reason="idle"}'] == 2
    assert m["outboard_models_loaded"] == 0
    # Named again, it comes back.
    assert complete(s, "stories260K")[0] == 200
    assert loaded(s) == ["stories260K:latest"]


def test_ten_racing_requests_load_once(stopper, tmp_path):
    need(STORIES, TINY)
    shutil.copy(STORIES, tmp_path / "story.gguf")
    shutil.copy(TINY, tmp_path / "tiny.gguf")
    s = Server("--models-dir", tmp_path, model=None)
    stopper(s)
    assert loaded(s) == []
    status, body, _ = s.request("GET", "/v1/models")
    assert [m["id"] for m in json.loads(body)["data"]] == ["story", "tiny"]
    start = threading.Barrier(10)

    def one(_):
        start.wait()
        return complete(s, "tiny")[0]

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        assert list(pool.map(one, range(10))) == [200] * 10
    m = metrics(s)
    assert m["outboard_model_loads_total"] == 1 and m["outboard_models_loaded"] == 1
    assert loaded(s) == ["tiny:latest"]
    # Names are file names inside the directory, nothing else.
    for bad in ["../tiny", "tiny.gguf", ".tiny", "nope"]:
        status, body, _ = complete(s, bad)
        assert status == 404, (bad, body)
        assert "not found" in body["error"]["message"]


def test_a_file_given_twice_is_listed_once(stopper, tmp_path):
    need(STORIES, TINY)
    shutil.copy(STORIES, tmp_path / "story.gguf")
    shutil.copy(TINY, tmp_path / "tiny.gguf")
    s = Server("--models-dir", tmp_path, model=str(tmp_path / "story.gguf"))
    stopper(s)
    status, body, _ = s.request("GET", "/v1/models")
    assert [m["id"] for m in json.loads(body)["data"]] == ["story", "tiny"]
    status, body, _ = s.request("GET", "/api/tags")
    assert [m["name"] for m in json.loads(body)["models"]] == ["story:latest", "tiny:latest"]


def test_model_over_the_budget_is_refused(stopper):
    need(STORIES, TINY)
    s = Server("-m", TINY, "--max-memory", "1500K", model=STORIES)
    stopper(s)
    status, body, headers = complete(s, "llama-2-tiny-random")
    assert status == 503
    msg = body["error"]["message"]
    assert "llama-2-tiny-random" in msg and "--max-memory 1536000" in msg
    assert complete(s, "stories260K")[0] == 200  # the server goes on


def busy_default_model(s, name, tokens=24):
    """Starts a long answer from the default model and returns (thread, its end time holder)
    once the server runs it."""
    ended = []

    def run():
        assert complete(s, name, tokens, 300)[0] == 200
        ended.append(time.time())

    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: re.search(r"^outboard_sequences_running 1$",
                               s.request("GET", "/metrics")[1].decode(), re.M),
             "the long answer to start", 60)
    return t, ended


def test_busy_models_make_a_request_wait(stopper):
    need(STORIES, DEFAULT_MODEL)
    s = Server("-m", STORIES, "--max-models", 1, "--load-wait", 300, model=DEFAULT_MODEL)
    stopper(s)
    name = os.path.basename(DEFAULT_MODEL)[:-len(".gguf")]
    thread, ended = busy_default_model(s, name)
    status, body, _ = complete(s, "stories260K", timeout=300)
    done = time.time()
    thread.join()
    assert status == 200, body
    assert ended and ended[0] <= done  # it waited for the busy model to finish
    assert loaded(s) == ["stories260K:latest"]
    assert metrics(s)['outboard_model_unloads_total{reason="evicted"}'] == 1


def test_busy_models_without_waiting_give_503(stopper):
    need(STORIES, DEFAULT_MODEL)
    s = Server("-m", STORIES, "--max-models", 1, "--load-wait", 0, model=DEFAULT_MODEL)
    stopper(s)
    name = os.path.basename(DEFAULT_MODEL)[:-len(".gguf")]
    thread, _ = busy_default_model(s, name)
    status, body, headers = complete(s, "stories260K")
    thread.join()
    assert status == 503, body
    assert headers.get("Retry-After") == "2"
    assert "'stories260K' cannot be loaded now: the models loaded are all busy" in \
        body["error"]["message"]
    # Once the long answer is done, the same request loads its model in place of the idle one.
    assert complete(s, "stories260K")[0] == 200
    assert loaded(s) == ["stories260K:latest"]


@pytest.mark.parametrize("args,code,words", [
    ([], 2, "no -m, no --models-dir, and no model in the store at"),
    (["-m", "a.gguf", "-m", "b.gguf", "--alias", "x"], 2, "--alias names a single -m model"),
    (["--models-dir", "/nonexistent"], 1, "--models-dir /nonexistent: not a directory"),
    (["-m", "a.gguf", "--max-models", "0"], 2, "--max-models: 0 is outside [1, 1024]"),
    (["-m", "a.gguf", "--max-memory", "5"], 2, "--max-memory: 5 is outside"),
])
def test_model_flags_are_checked(args, code, words):
    with tempfile.TemporaryDirectory() as store:  # an empty store
        proc = subprocess.run([OUTBOARD, "serve", "--port", str(free_port()), *args],
                              capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, OUTBOARD_MODELS=store))
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
