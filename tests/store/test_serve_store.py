"""The official ollama client's pull / list / delete against a real `outboard serve` whose store
is a temporary folder and whose hub is the local one of hub_server.py."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import ollama
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_pull import OUTBOARD, STORIES, TINY, hub, listed, ob  # noqa: E402,F401 (hub: fixture)

SERVED = "test/stories-GGUF:Q8_0"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(hub, tmp_path_factory):
    store = tmp_path_factory.mktemp("served") / "store"
    hub.faults = {}
    assert ob(store, hub, "pull", SERVED).returncode == 0
    env = dict(os.environ, OUTBOARD_HUB=hub.url, NO_PROXY="*")
    env.pop("HF_TOKEN", None)
    proc, client = start_server(store, env, "-m", SERVED)
    yield client, store
    stop_server(proc)


def start_server(store, env, *args):
    """A real `outboard serve` on 127.0.0.1 whose store is `store`: (process, ollama client)."""
    port = free_port()
    proc = subprocess.Popen([OUTBOARD, "serve", *args, "--host", "127.0.0.1", "--port",
                             str(port), "--threads", "1"],
                            env=dict(env, OUTBOARD_MODELS=str(store)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if urllib.request.urlopen(url + "/health", timeout=2).status == 200:
                return proc, ollama.Client(host=url)
        except OSError:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in err, err[-4000:]


def names(client):
    return {m.model for m in client.list().models}


def test_pull_streams_ollama_progress_then_list_and_delete(served, hub):
    client, store = served
    hub.faults = {}
    events = list(client.pull("test/stories-GGUF:Q4_K_M", stream=True))
    statuses = [e.status for e in events]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    want = hashlib.sha256(open(TINY, "rb").read()).hexdigest()
    progress = [e for e in events if e.digest]
    assert progress and all(e.digest == "sha256:" + want for e in progress)
    assert progress[-1].completed == progress[-1].total == os.path.getsize(TINY)
    assert "verifying sha256 digest" in statuses
    assert {SERVED, "test/stories-GGUF:Q4_K_M"} <= names(client)
    assert client.delete("test/stories-GGUF:Q4_K_M").status == "success"
    assert "test/stories-GGUF:Q4_K_M" not in names(client)
    assert "test/stories-GGUF:Q4_K_M" not in listed(store, hub)


def test_pull_without_streaming(served, hub):
    client, store = served
    hub.faults = {}
    assert client.pull("test/split-GGUF:Q8_0").status == "success"
    assert "test/split-GGUF:Q8_0" in names(client)
    assert len(listed(store, hub)["test/split-GGUF:Q8_0"]["files"]) == 2


def test_the_served_model_cannot_be_deleted(served, hub):
    client, store = served
    with pytest.raises(ollama.ResponseError) as e:
        client.delete(SERVED)
    assert e.value.status_code == 409 and "serving" in e.value.error
    assert SERVED in listed(store, hub)
    # And it still answers.
    r = client.generate(model=SERVED, prompt="Once upon a time", options={"num_predict": 4})
    assert r.done


def test_errors_come_back_clearly(served, hub):
    client, store = served
    with pytest.raises(ollama.ResponseError) as e:
        client.delete("test/never-pulled:Q4_0")
    assert e.value.status_code == 404 and "not in the store" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        list(client.pull("test/broken-GGUF:Q4_0", stream=True))
    assert "not a usable GGUF" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("test/broken-GGUF:Q4_0")
    assert e.value.status_code == 500 and "not a usable GGUF" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("../etc:passwd")
    assert e.value.status_code == 400
    hub.faults = {"wrong_hash": True}
    with pytest.raises(ollama.ResponseError) as e:
        list(client.pull("test/stories-GGUF:Q4_K_M", stream=True))
    assert "does not match" in e.value.error
    hub.faults = {}
    assert "test/broken-GGUF:Q4_0" not in names(client)
    assert "test/stories-GGUF:Q4_K_M" not in names(client)


def test_a_server_without_models_serves_the_store(hub, tmp_path):
    """No -m and no --models-dir: the store's models are served by their names, the first one
    by default, and listed."""
    store = tmp_path / "store"
    hub.faults = {}
    for name in (SERVED, "test/stories-GGUF:Q4_K_M"):
        assert ob(store, hub, "pull", name).returncode == 0
    proc, client = start_server(store, dict(os.environ))
    try:
        assert {SERVED, "test/stories-GGUF:Q4_K_M"} <= names(client)
        for name in (SERVED, "test/stories-GGUF:Q4_K_M"):
            r = client.generate(model=name, prompt="Once upon a time", options={
                "num_predict": 4, "temperature": 0})
            assert r.done and r.eval_count == 4
        assert {m.model for m in client.ps().models} >= {SERVED, "test/stories-GGUF:Q4_K_M"}
        with pytest.raises(ollama.ResponseError) as err:
            client.generate(model="test/nothing-GGUF:Q4_0", prompt="hi")
        assert err.value.status_code == 404
    finally:
        stop_server(proc)
