"""Speculative decoding with Qwen3.5's multi-token-prediction block as the drafter
(`--spec mtp`, and auto when the model has the block), in real `outboard run` and
`outboard serve` processes on 127.0.0.1, on synthetic qwen35 and qwen35moe files with the
block (`outboard synth --nextn 1`, stories260K's vocabulary; qwen35moe's block has the
mixture-of-experts FFN).

With random weights the block's guesses are random, so drafts are proposed and rejected from
their first token; a copy of the file whose output norms are zero makes every logit 0, the
main model's and the block's alike, so both always pick token 0 and whole drafts are accepted.
Between them every path of the verification runs, and each must give exactly the plain tokens:
- `run` with --spec off, mtp and auto gives the same ids, greedy and seeded at temperature 0.9,
  and reports drafts; a context that ends inside a draft ends as plain decoding does;
- a server decoding 3 streams at once, each drafting from its own slot of the block's cache,
  streams what each gives alone without speculation ("speculative": "mtp" per request), and
  refuses "mtp" for a model without the block with a 400 naming the field.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "serve"))
from test_serve_http import MODEL, OUTBOARD, Server  # noqa: E402

STORY = "Once upon a time, there was a girl. Once upon a time, there was a"
PROMPTS = [STORY, "Lily and Max played. Lily and Max", "The sun was hot. The sun"]


def synth(path, *extra, arch="qwen35"):
    out = subprocess.run([OUTBOARD, "synth", "--arch", arch, "--shape", "tiny", "--type",
                          "f32", "--seed", "6", "--vocab", MODEL, "-o", str(path), *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return str(path)


def zero_norms(src, dst):
    """src rewritten with output_norm and the block's shared_head_norm all zero."""
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(str(dst), arch)
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(name, field.contents(), vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(name, field.contents(), vtype)
    for t in r.tensors:
        data = np.array(t.data, dtype=np.float32)
        if t.name == "output_norm.weight" or t.name.endswith(".nextn.shared_head_norm.weight"):
            data = np.zeros_like(data)
        w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(dst)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("mtp")
    nextn = synth(d / "nextn.gguf", "--nextn", "1")
    moe = synth(d / "moe.gguf", "--nextn", "1", arch="qwen35moe")
    return {"random": nextn, "zero": zero_norms(nextn, d / "zero.gguf"),
            "plain": synth(d / "plain.gguf"), "moe-random": moe,
            "moe-zero": zero_norms(moe, d / "moe-zero.gguf")}


def run_ids(model, spec, n, temp=0.0, extra=()):
    out = subprocess.run([OUTBOARD, "run", "-m", model, "-p", STORY, "--ids", "--verbose",
                          "--threads", "1", "--temp", str(temp), "--seed", "5", "-n", str(n),
                          "--ignore-eos", "--spec", spec, *extra],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    m = re.search(r"speculative: \w+, (\d+) draft tokens, (\d+) accepted", out.stderr)
    drafted, accepted = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return [int(x) for x in out.stdout.split()], drafted, accepted


@pytest.mark.parametrize("which", ["random", "zero", "moe-random", "moe-zero"])
def test_run_with_mtp_equals_plain(files, which):
    model = files[which]
    for temp in (0.0, 0.9):
        plain, d, _ = run_ids(model, "off", 50, temp)
        assert d == 0 and len(plain) == 50
        got, d, a = run_ids(model, "mtp", 50, temp)
        assert got == plain, temp
        assert d > 0, temp
        if which.endswith("zero") and temp == 0:
            assert a >= 0.8 * d  # nearly all accepted (not those past -n)
        if which.endswith("random") and temp == 0:
            assert a < d  # drafts rejected
        auto, _, _ = run_ids(model, "auto", 50, temp)
        assert auto == plain, temp


def test_run_mtp_context_limit(files):
    outs = []
    for spec in ("off", "mtp"):
        out = subprocess.run([OUTBOARD, "run", "-m", files["zero"], "-p", STORY, "--ids",
                              "--threads", "1", "--temp", "0", "-n", "100", "--ignore-eos",
                              "--ctx", "40", "--spec", spec], capture_output=True, text=True,
                             timeout=60)
        assert "does not fit in the context of 40 positions" in out.stderr, out.stderr
        outs.append((out.returncode, out.stdout))
    assert outs[0] == outs[1] and len(outs[0][1].split()) > 10


def complete(s, prompt, spec):
    st, raw, _ = s.request("POST", "/v1/completions",
                           {"prompt": prompt, "max_tokens": 30, "temperature": 0,
                            "speculative": spec}, timeout=120)
    assert st == 200, raw
    return json.loads(raw)["choices"][0]["text"]


def metric(s, name):
    text = s.request("GET", "/metrics")[1].decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return int(m.group(1))


@pytest.mark.parametrize("which", ["random", "zero", "moe-random", "moe-zero"])
def test_server_batched_mtp_equals_plain(files, which):
    s = Server("--parallel", "3", model=files[which])
    try:
        alone = [complete(s, p, "off") for p in PROMPTS]
        start = threading.Barrier(len(PROMPTS))

        def go(p):
            start.wait(timeout=30)
            return complete(s, p, "mtp")

        with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as ex:
            together = list(ex.map(go, PROMPTS))
        assert together == alone
        drafted = metric(s, "outboard_spec_draft_tokens_total")
        accepted = metric(s, "outboard_spec_accepted_tokens_total")
        assert drafted > 0
        if which.endswith("zero"):
            assert accepted > 0.5 * drafted
    finally:
        s.stop()


def test_server_refuses_mtp_without_the_block(files):
    s = Server("--parallel", "1", model=files["plain"])
    try:
        st, raw, _ = s.request("POST", "/v1/completions",
                               {"prompt": "x", "max_tokens": 2, "speculative": "mtp"})
        assert st == 400
        err = json.loads(raw)["error"]
        assert err["param"] == "speculative" and "multi-token-prediction" in err["message"]
        assert s.request("GET", "/health")[0] == 200
    finally:
        s.stop()


def test_qwen3next_block_is_refused_by_name(tmp_path):
    """qwen3next's block is not run: `info` says so, `run --spec mtp` names the
    architecture, and a qwen35moe file's block is reported as a drafter."""
    q3n = synth(tmp_path / "q3n.gguf", "--nextn", "1", arch="qwen3next")
    info = subprocess.run([OUTBOARD, "info", q3n], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "--spec mtp refuses this architecture" in info.stdout
    out = subprocess.run([OUTBOARD, "run", "-m", q3n, "-p", STORY, "-n", "2", "--spec", "mtp"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "qwen3next" in out.stderr, out.stderr
    moe = synth(tmp_path / "moe.gguf", "--nextn", "1", arch="qwen35moe")
    info = subprocess.run([OUTBOARD, "info", moe], capture_output=True, text=True, timeout=60)
    assert "drafts with --spec mtp" in info.stdout
