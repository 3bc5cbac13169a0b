"""Fill-in-the-middle for editors' code completion: the prompt ids of POST /infill (with
input_extra and prompt), /v1/completions with suffix and Ollama /api/generate with suffix,
against llama.cpp on the same vocabulary (pinned llama-cpp-python: its FIM token ids, its
add-BOS flag and its tokenizer) laid out as llama.cpp's server lays out /infill
(tools/server/server-common.cpp, format_prompt_infill, with its default batch of 2048 and
n_predict of -1). Synthetic models carry the StarCoder and DeepSeek-Coder vocabularies from
../shared/models/vocab; a vocabulary without FIM tokens gets a 400. A real `outboard serve`
answers /infill in llama.cpp's shape, streamed and not, and /v1/completions with a suffix.
"""
import json
import os
import subprocess

import pytest

from test_serve_http import OUTBOARD, ROOT, SHARED, Server

llama_cpp = pytest.importorskip("llama_cpp")

BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
FIM_TOOL = os.path.join(BUILD, "tests", "serve", "fim_tool")
VOCABS = {"starcoder": "qwen2", "deepseek-coder": "llama"}
BATCH = 2048
N_CTX = 4096


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    d = tmp_path_factory.mktemp("fim")
    for vocab, arch in list(VOCABS.items()) + [("llama-spm", "llama")]:
        path = d / f"{vocab}.gguf"
        subprocess.run([OUTBOARD, "synth", "--arch", arch, "--shape", "tiny", "--type", "f32",
                        "--vocab", os.path.join(SHARED, "models", "vocab",
                                                f"ggml-vocab-{vocab}.gguf"), "-o", str(path)],
                       check=True, capture_output=True)
        out[vocab] = str(path)
    return out


def ours(model, dialect, body):
    if not os.path.exists(FIM_TOOL):
        pytest.skip(f"{FIM_TOOL} not built (make test builds it)")
    proc = subprocess.run([FIM_TOOL, model, str(N_CTX), dialect], input=json.dumps(body),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    return line if line.startswith("error") else [int(x) for x in line.split()]


def reference(model, prefix, suffix, extra=(), prompt=""):
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    try:
        v = llama_cpp.llama_model_get_vocab(llm._model.model)
        pre, suf, mid = (llama_cpp.llama_vocab_fim_pre(v), llama_cpp.llama_vocab_fim_suf(v),
                         llama_cpp.llama_vocab_fim_mid(v))
        rep, sep = llama_cpp.llama_vocab_fim_rep(v), llama_cpp.llama_vocab_fim_sep(v)
        add_bos = llama_cpp.llama_vocab_get_add_bos(v)
        bos = llm.token_bos()

        def tok(text, special=False):
            return llm.tokenize(text.encode(), add_bos=False, special=special) if text else []

        extra_ids = []
        if rep != -1:
            extra_ids += [rep] + tok("myproject\n")
        for chunk in extra:
            if sep != -1:
                extra_ids += [sep] + tok(chunk.get("filename", "tmp") + "\n")
            else:
                extra_ids += tok("\n\n--- snippet ---\n\n")
            extra_ids += tok(chunk["text"])
        if sep != -1:
            extra_ids += [sep] + tok("filename\n")
        p, s, q = tok(prefix), tok(suffix), tok(prompt, special=True)
        take_pre = min(len(p), 3 * (BATCH // 4))
        take_suf = min(len(s), max(0, BATCH // 4 - (2 + len(q))))
        take_extra = min(max(0, N_CTX - BATCH - 2 * -1), len(extra_ids))
        inp = [pre] + p[len(p) - take_pre:] + q
        if add_bos:
            inp = [bos] + inp
        inp = extra_ids[len(extra_ids) - take_extra:] + inp
        return inp + [suf] + s[:take_suf] + [mid]
    finally:
        llm.close()


CODE = "def area(w, h):\n    \"\"\"Area of a rectangle.\"\"\"\n    "
AFTER = "\n    return result\n\nprint(area(2, 3))\n"
EXTRA = [{"filename": "util/geometry.py", "text": "PI = 3.14159\n\ndef circle(r):\n    return PI * r * r\n"},
         {"text": "# no file name\nx = 1\n"}]


@pytest.mark.parametrize("vocab", list(VOCABS))
def test_infill_prompt_matches_llama_cpp(models, vocab):
    m = models[vocab]
    body = {"input_prefix": CODE, "input_suffix": AFTER}
    assert ours(m, "infill", body) == reference(m, CODE, AFTER)
    body.update(input_extra=EXTRA, prompt="result =")
    assert ours(m, "infill", body) == reference(m, CODE, AFTER, EXTRA, "result =")
    # budgets: the prefix keeps its last 1536 tokens, the suffix its first 510 - |prompt|
    long_pre, long_suf = "x = x + 1\n" * 400, "y = y * 2\n" * 300
    body = {"input_prefix": long_pre, "input_suffix": long_suf, "prompt": "z"}
    got = ours(m, "infill", body)
    assert got == reference(m, long_pre, long_suf, (), "z")
    assert len(got) < 1536 + 512 + 8


@pytest.mark.parametrize("vocab", list(VOCABS))
def test_suffix_in_completions_and_generate_is_infill(models, vocab):
    m = models[vocab]
    want = reference(m, CODE, AFTER)
    assert ours(m, "completions", {"prompt": CODE, "suffix": AFTER}) == want
    assert ours(m, "generate", {"model": "x", "prompt": CODE, "suffix": AFTER}) == want


def test_vocabulary_without_fim_tokens_is_refused(models):
    got = ours(models["llama-spm"], "infill", {"input_prefix": "a", "input_suffix": "b"})
    assert got.startswith("error 400") and "fill-in-the-middle" in got
    got = ours(models["llama-spm"], "infill", {"input_prefix": "a"})
    assert got.startswith("error 400") and "input_suffix" in got


def test_infill_route_answers_as_llama_cpp(models):
    m = models["starcoder"]
    s = Server("--ctx", N_CTX, model=m)
    try:
        body = {"input_prefix": CODE, "input_suffix": AFTER, "input_extra": EXTRA,
                "n_predict": 6, "temperature": 0}
        status, raw, _ = s.request("POST", "/infill", body, timeout=60)
        assert status == 200, raw
        whole = json.loads(raw)
        assert whole["stop"] is True and whole["tokens_predicted"] == 6
        assert whole["stop_type"] == "limit"
        assert whole["tokens_evaluated"] == len(reference(m, CODE, AFTER, EXTRA))
        status, raw, headers = s.request("POST", "/infill", {**body, "stream": True}, timeout=60)
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        chunks = [json.loads(line[6:]) for line in raw.decode().split("\n\n") if line]
        assert all(not c["stop"] for c in chunks[:-1]) and chunks[-1]["stop"] is True
        assert "".join(c["content"] for c in chunks) == whole["content"]
        status, raw, _ = s.request("POST", "/v1/completions",
                                   {"prompt": CODE, "suffix": AFTER, "max_tokens": 6,
                                    "temperature": 0}, timeout=60)
        assert status == 200
        assert json.loads(raw)["usage"]["prompt_tokens"] == len(reference(m, CODE, AFTER))
        status, raw, _ = s.request("POST", "/infill", {"input_suffix": "x"})
        assert status == 400 and "input_prefix" in json.loads(raw)["error"]["message"]
    finally:
        s.stop()
