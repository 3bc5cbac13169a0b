"""outboard pull / list / rm / show against a local hub (hub_server.py) serving real GGUF files.

Every bad case checks the message a person sees and that `list` never shows what failed.
"""
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from hub_server import Hub, Repo  # noqa: E402

BUILD = os.environ.get("OB_BUILD", "build")
SHARED = os.environ.get("OB_SHARED", "../shared")
OUTBOARD = os.path.join(BUILD, "outboard")
STORIES = os.path.join(SHARED, "models", "stories260K.gguf")
TINY = os.path.join(SHARED, "models", "llama-2-tiny-random.gguf")


def _read(p):
    with open(p, "rb") as f:
        return f.read()


SPLIT_TOOL = os.path.join(BUILD, "tests", "store", "split_tool")


def split_set(src, prefix, n):
    """src as an n-part set in llama.cpp's gguf-split layout (tests/store/split_tool.c; the
    layout is checked against llama.cpp itself in test_split.py): the parts' paths."""
    if not os.path.exists(SPLIT_TOOL):
        pytest.skip(f"{SPLIT_TOOL} not built (make test builds it)")
    subprocess.run([SPLIT_TOOL, src, prefix, str(n)], check=True)
    return [f"{prefix}-{i:05d}-of-{n:05d}.gguf" for i in range(1, n + 1)]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if not os.path.exists(STORIES) or not os.path.exists(TINY):
        pytest.skip("shared models missing")
    parts = split_set(STORIES, str(tmp_path_factory.mktemp("gguf") / "tiny-Q8_0"), 2)
    repos = {
        "test/stories-GGUF": Repo({
            # Listed first: a projector is never the model, whatever its name says.
            "mmproj-stories-Q4_K_M.gguf": b"not a model",
            "README.md": b"# stories\n",
            "stories260K-Q8_0.gguf": _read(STORIES),
            "stories260K-Q4_K_M.gguf": _read(TINY),
        }),
        "test/split-GGUF": Repo({
            # Listed last part first: the set comes back in part order all the same.
            "Q8_0/tiny-Q8_0-00002-of-00002.gguf": _read(parts[1]),
            "Q8_0/tiny-Q8_0-00001-of-00002.gguf": _read(parts[0]),
        }),
        "test/broken-GGUF": Repo({"broken-Q4_0.gguf": b"GGUF\x03\x00\x00\x00" + b"\xff" * 4000}),
    }
    h = Hub(repos)
    yield h
    h.close()


@pytest.fixture
def store(tmp_path, hub):
    hub.faults = {}
    hub.requests.clear()
    return tmp_path / "store"


def ob(store, hub, *args, env=None, limit_fsize=None, timeout=60):
    e = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "http_proxy", "https_proxy",
                                                         "HTTP_PROXY", "HTTPS_PROXY")}
    e.update({"OUTBOARD_MODELS": str(store), "OUTBOARD_HUB": hub.url, "NO_PROXY": "*"})
    e.update(env or {})

    def pre():
        if limit_fsize:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_fsize, limit_fsize))
    return subprocess.run([OUTBOARD, *args], env=e, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=pre)


def info_text(store, hub, model):
    """`outboard info` without its first line (the file's path)."""
    r = ob(store, hub, "info", model)
    assert r.returncode == 0, r.stderr
    return r.stdout.split("\n", 1)[1]


def listed(store, hub):
    r = ob(store, hub, "list", "--json")
    assert r.returncode == 0, r.stderr
    return {m["name"]: m for m in json.loads(r.stdout)}


def no_leftovers(store):
    """Nothing half-done stays in the store's work area after a failure, apart from the
    partial download kept for resuming."""
    tmp = store / ".tmp"
    return [p.name for p in tmp.iterdir() if not p.name.endswith((".partial", ".partial.etag"))] if tmp.exists() else []


# ---- the happy paths ---------------------------------------------------------------------------

def test_default_quant_is_q4_k_m_and_everything_takes_the_name(store, hub):
    r = ob(store, hub, "pull", "test/stories-GGUF")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "test/stories-GGUF:Q4_K_M"
    assert "verifying sha256 digest" in r.stderr and "success" in r.stderr
    assert "stories260K-Q4_K_M.gguf: 100% " in r.stderr  # the plain progress line, no TTY
    models = listed(store, hub)
    m = models["test/stories-GGUF:Q4_K_M"]
    want = hashlib.sha256(_read(TINY)).hexdigest()
    assert [f["sha256"] for f in m["files"]] == [want]
    assert m["size"] == os.path.getsize(TINY) and m["source"] == "hub"
    assert m["architecture"] == "llama" and m["quantization"] == "Q4_K_M"
    path = os.path.join(m["path"], m["files"][0]["name"])
    assert hashlib.sha256(_read(path)).hexdigest() == want
    # A name works wherever a file does.
    assert info_text(store, hub, "test/stories-GGUF:Q4_K_M") == info_text(store, hub, TINY)
    # last_used is set by using it.
    assert listed(store, hub)["test/stories-GGUF:Q4_K_M"]["last_used"] > 0
    text = ob(store, hub, "list")
    assert "test/stories-GGUF:Q4_K_M" in text.stdout and "llama" in text.stdout


def test_quant_match_ignores_case_and_run_uses_the_name(store, hub):
    r = ob(store, hub, "pull", "test/stories-GGUF:q8_0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "test/stories-GGUF:Q8_0"
    out = ob(store, hub, "run", "-m", "test/stories-GGUF:Q8_0", "-p", "Once upon a time", "-n",
             "4", "--temp", "0")
    ref = ob(store, hub, "run", "-m", STORIES, "-p", "Once upon a time", "-n", "4", "--temp", "0")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ref.stdout
    # org/repo alone means the only tag pulled; the tag in any case.
    assert ob(store, hub, "info", "test/stories-GGUF").returncode == 0
    assert ob(store, hub, "info", "test/stories-GGUF:q8_0").returncode == 0
    show = ob(store, hub, "show", "test/stories-GGUF:Q8_0")
    assert show.returncode == 0, show.stderr
    assert "chat template:" in show.stdout and '"sha256"' in show.stdout


def test_a_listing_in_pages(store, hub):
    hub.faults = {"page": 1}
    r = ob(store, hub, "pull", "test/stories-GGUF")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "test/stories-GGUF:Q4_K_M"  # the last page's file
    assert len([q for q in hub.requests if q[1].startswith("/api/models/")]) == 5


def test_second_pull_is_up_to_date_without_downloading(store, hub):
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 0
    hub.requests.clear()
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 0 and "up to date" in r.stderr
    assert not [q for q in hub.requests if "/cdn/" in q[1]]


def test_split_model_is_fetched_as_a_set(store, hub):
    r = ob(store, hub, "pull", "test/split-GGUF:Q8_0")
    assert r.returncode == 0, r.stderr
    m = listed(store, hub)["test/split-GGUF:Q8_0"]
    assert [f["name"] for f in m["files"]] == ["tiny-Q8_0-00001-of-00002.gguf",
                                              "tiny-Q8_0-00002-of-00002.gguf"]
    # The set loads as the file it was split from.
    run = ["-p", "Once upon a time", "-n", "12", "--temp", "0"]
    out = ob(store, hub, "run", "-m", "test/split-GGUF:Q8_0", *run)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ob(store, hub, "run", "-m", STORIES, *run).stdout


def test_a_split_set_that_fails_half_way_keeps_the_parts_that_arrived(store, hub):
    hub.faults = {"drop_after": 100, "only": "00002-of"}
    r = ob(store, hub, "pull", "test/split-GGUF:Q8_0")
    assert r.returncode == 1 and "tiny-Q8_0-00002-of-00002.gguf" in r.stderr
    assert listed(store, hub) == {} and no_leftovers(store) == []
    hub.faults = {}
    hub.requests.clear()
    assert ob(store, hub, "pull", "test/split-GGUF:Q8_0").returncode == 0
    fetched = [q[1] for q in hub.requests if q[1].startswith("/cdn/")]
    assert fetched == ["/cdn/test/split-GGUF/Q8_0/tiny-Q8_0-00002-of-00002.gguf"]
    assert "test/split-GGUF:Q8_0" in listed(store, hub)


def test_a_url_whose_file_changed_between_tries_is_fetched_whole(store, hub):
    """The partial file's ETag goes back as If-Range: a changed file comes whole, never as
    the old file's first half glued to the new one's second."""
    repo = hub.repos["test/stories-GGUF"]
    old = repo.files["stories260K-Q8_0.gguf"]
    url = hub.url + "/cdn/test/stories-GGUF/stories260K-Q8_0.gguf"
    hub.faults = {"drop_after": 5000}
    try:
        assert ob(store, hub, "pull", url).returncode == 1
        repo.files["stories260K-Q8_0.gguf"] = _read(TINY)
        hub.faults = {}
        hub.requests.clear()
        r = ob(store, hub, "pull", url)
        assert r.returncode == 0, r.stderr
    finally:
        repo.files["stories260K-Q8_0.gguf"] = old
    assert hub.requests[-1][2] == "bytes=5000-"
    m = listed(store, hub)["url/stories260K-Q8_0:Q8_0"]
    assert m["files"][0]["sha256"] == hashlib.sha256(_read(TINY)).hexdigest()
    assert m["etag"] == '"' + hashlib.sha256(_read(TINY)).hexdigest() + '"'


def test_plain_url(store, hub):
    url = hub.url + "/cdn/test/stories-GGUF/stories260K-Q8_0.gguf"
    r = ob(store, hub, "pull", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "url/stories260K-Q8_0:Q8_0"
    m = listed(store, hub)["url/stories260K-Q8_0:Q8_0"]
    assert m["source"] == "url" and m["files"][0]["url"] == url
    assert m["files"][0]["sha256"] == hashlib.sha256(_read(STORIES)).hexdigest()


def test_rm(store, hub):
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 0
    r = ob(store, hub, "rm", "test/stories-GGUF:Q8_0")
    assert r.returncode == 0, r.stderr
    assert listed(store, hub) == {}
    assert not (store / "test").exists()
    again = ob(store, hub, "rm", "test/stories-GGUF:Q8_0")
    assert again.returncode == 1 and "not in the store" in again.stderr


def test_offline_never_touches_the_network(store, hub):
    r = ob(store, hub, "pull", "--offline", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1 and "--offline" in r.stderr and "not in the store" in r.stderr
    assert hub.requests == []
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 0
    hub.requests.clear()
    r = ob(store, hub, "pull", "--offline", "test/stories-GGUF:q8_0")
    assert r.returncode == 0 and r.stdout.strip() == "test/stories-GGUF:Q8_0"
    assert hub.requests == []


# ---- bad networks and bad servers --------------------------------------------------------------

def test_a_dropped_download_resumes(store, hub):
    half = os.path.getsize(STORIES) // 2
    hub.faults = {"drop_after": half}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1
    assert "closed before the end" in r.stderr and "resume" in r.stderr
    assert listed(store, hub) == {}
    partials = list((store / ".tmp").glob("*.partial"))
    assert len(partials) == 1 and partials[0].stat().st_size == half
    hub.faults = {}
    hub.requests.clear()
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 0, r.stderr
    assert ("GET", "/cdn/test/stories-GGUF/stories260K-Q8_0.gguf", f"bytes={half}-", None) \
        in hub.requests
    m = listed(store, hub)["test/stories-GGUF:Q8_0"]
    assert m["files"][0]["sha256"] == hashlib.sha256(_read(STORIES)).hexdigest()
    assert no_leftovers(store) == [] and not list((store / ".tmp").glob("*.partial"))


def test_a_206_from_the_wrong_byte_is_refused(store, hub):
    hub.faults = {"drop_after": 1000}
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 1
    hub.faults = {"bad_range": True}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1 and "asked for the bytes from 1000, the server sent them from 0" \
        in r.stderr, r.stderr
    hub.faults = {}
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 0
    m = listed(store, hub)["test/stories-GGUF:Q8_0"]
    assert m["files"][0]["sha256"] == hashlib.sha256(_read(STORIES)).hexdigest()


def test_a_server_that_ignores_range_starts_over(store, hub):
    hub.faults = {"drop_after": 1000}
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 1
    hub.faults = {"no_range": True}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 0, r.stderr
    m = listed(store, hub)["test/stories-GGUF:Q8_0"]
    assert m["files"][0]["sha256"] == hashlib.sha256(_read(STORIES)).hexdigest()


def test_a_stalled_server_is_given_up_on(store, hub):
    hub.faults = {"stall_after": 1000}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0", env={"OUTBOARD_HUB_TIMEOUT": "2"})
    assert r.returncode == 1 and "stalled" in r.stderr
    assert listed(store, hub) == {}


def test_two_pulls_of_one_file_at_once(store, hub):
    """The second finds the partial file locked and says so instead of writing into it."""
    hub.faults = {"stall_after": 1000}
    env = dict(os.environ, OUTBOARD_MODELS=str(store), OUTBOARD_HUB=hub.url,
               OUTBOARD_HUB_TIMEOUT="10", NO_PROXY="*")
    first = subprocess.Popen([OUTBOARD, "pull", "test/stories-GGUF:Q8_0"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 10
        while not list((store / ".tmp").glob("*.partial")) if (store / ".tmp").exists() else True:
            assert time.time() < deadline
            time.sleep(0.05)
        r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
        assert r.returncode == 1 and "another pull is downloading" in r.stderr, r.stderr
    finally:
        first.kill()
        first.communicate()
    assert listed(store, hub) == {}


def test_what_a_killed_pull_left_is_swept(store, hub):
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = store / ".tmp" / f"stage-{dead.pid}-1-0"
    left.mkdir(parents=True)
    (left / "half.gguf").write_bytes(b"GGUF")
    alive = store / ".tmp" / f"stage-{os.getpid()}-1-0"  # a live process's: untouched
    alive.mkdir()
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 0
    assert not left.exists() and alive.exists()


def test_a_wrong_hash_deletes_the_download(store, hub):
    hub.faults = {"wrong_hash": True}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1
    assert "does not match the hub's" in r.stderr and "deleted" in r.stderr
    assert listed(store, hub) == {}
    assert not list((store / ".tmp").glob("*.partial")) and no_leftovers(store) == []


@pytest.mark.parametrize("fault,words", [("length_short", "the hub lists"),
                                         ("length_long", "closed before the end")])
def test_a_lying_content_length(store, hub, fault, words):
    hub.faults = {fault: 100}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1 and words in r.stderr, r.stderr
    assert listed(store, hub) == {}


def test_401_without_a_token_and_success_with_it(store, hub):
    hub.faults = {"token": "s3cret"}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1 and "HTTP 401" in r.stderr and "HF_TOKEN" in r.stderr
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0", env={"HF_TOKEN": "wrong"})
    assert r.returncode == 1 and "not allowed" in r.stderr
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0", env={"HF_TOKEN": "s3cret"})
    assert r.returncode == 0, r.stderr
    assert all(q[3] == "Bearer s3cret" for q in hub.requests[-3:])


def test_the_token_stays_with_the_hub(store, hub):
    """A redirect to another host (the hub's storage) does not carry the token."""
    hub.faults = {"cdn_host": "localhost"}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0", env={"HF_TOKEN": "s3cret"})
    assert r.returncode == 0, r.stderr
    tree, resolve, cdn = [q for q in hub.requests if q[1].startswith(("/api/", "/test/", "/cdn/"))]
    assert tree[3] == resolve[3] == "Bearer s3cret"
    assert cdn[1].startswith("/cdn/") and cdn[3] is None


def test_the_proxy_variables_are_honoured(store, hub):
    """With http_proxy set, every request goes through the proxy (here the hub itself, which
    answers absolute-form requests), even for a hub host name that does not resolve."""
    hub.proxied.clear()
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0",
           env={"OUTBOARD_HUB": "http://hub.invalid", "http_proxy": hub.url, "NO_PROXY": ""})
    assert r.returncode == 0, r.stderr
    assert hub.proxied[0].startswith("http://hub.invalid/api/models/test/stories-GGUF/tree/")
    assert any(u.startswith("http://hub.invalid/cdn/") for u in hub.proxied)


def test_a_redirect_loop(store, hub):
    hub.faults = {"redirect_loop": True}
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1 and "redirect loop" in r.stderr
    assert listed(store, hub) == {}


def test_404_and_a_missing_quantization(store, hub):
    r = ob(store, hub, "pull", "test/nothing-here:Q4_0")
    assert r.returncode == 1 and "HTTP 404" in r.stderr and "not found" in r.stderr
    r = ob(store, hub, "pull", "test/stories-GGUF:Q6_K")
    assert r.returncode == 1
    assert "Q6_K" in r.stderr and "Q8_0" in r.stderr and "Q4_K_M" in r.stderr
    assert hub.requests and not [q for q in hub.requests if "/cdn/" in q[1]]


def test_a_file_that_is_not_gguf_is_not_installed(store, hub):
    r = ob(store, hub, "pull", "test/broken-GGUF:Q4_0")
    assert r.returncode == 1 and "not a usable GGUF" in r.stderr
    assert listed(store, hub) == {}
    assert no_leftovers(store) == []


def test_a_full_disk(store, hub):
    r = ob(store, hub, "pull", "test/stories-GGUF:Q8_0", limit_fsize=100_000)
    assert r.returncode == 1 and "File too large" in r.stderr
    assert listed(store, hub) == {}


@pytest.mark.parametrize("name", ["../evil:Q4_0", "a/../../b", "a/b:c/d", "/etc/x:Q4_0",
                                  "a/b/c", "a/.hidden", "a/b:\x01", "a/b:..", "./a:b"])
def test_names_cannot_leave_the_store(store, hub, tmp_path, name):
    for cmd in ("pull", "rm", "show"):
        r = ob(store, hub, cmd, name)
        assert r.returncode in (1, 2) and r.stderr.startswith(f"outboard {cmd}:"), r.stderr
    assert not (tmp_path / "evil").exists()
    assert hub.requests == []
    assert sorted(p.name for p in store.iterdir()) in ([], [".tmp"]) if store.exists() else True


def test_a_hand_broken_manifest_hides_the_model(store, hub):
    assert ob(store, hub, "pull", "test/stories-GGUF:Q8_0").returncode == 0
    man = store / "test" / "stories-GGUF" / "Q8_0" / "manifest.json"
    man.write_text('{"name": "test/stories-GGUF:Q8_0", "files": [{"name": "../x"}]}')
    assert listed(store, hub) == {}
    r = ob(store, hub, "info", "test/stories-GGUF:Q8_0")
    assert r.returncode == 1 and "no model of that name in the store" in r.stderr
