"""Test models for chat formats, and checks of the tool calls they answer with.

qwen3_model writes a synthetic `qwen3` model (random weights, the tiny shape) whose vocabulary
is Qwen2's, from the DeepSeek-R1-Distill-Qwen GGUF chunk of tests/requirements.txt, and whose
chat template is the test's: a real template from ../shared/templates or one of its own. Extra
tokens (a format's markers) may be appended with a token type, e.g. as control tokens.
"""
import json
import os
import subprocess
import sys

import pytest

from test_serve_http import OUTBOARD

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tokenizer"))
from test_tokenizer_reference import QWEN_PKG, read_kv  # noqa: E402

SHARED = os.environ.get("OB_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
CONTROL = 3  # tokenizer.ggml.token_type of a control token


def qwen_vocab_kv():
    """The Qwen2 vocabulary's GGUF keys (read_kv's form), or a skip when the package is absent."""
    try:
        pkg = __import__(QWEN_PKG)
    except ImportError:
        pytest.skip(f"{QWEN_PKG} (tests/requirements.txt) not installed: no Qwen vocabulary")
    with open(os.path.join(os.path.dirname(pkg.__file__), "model_part_0000"), "rb") as f:
        return read_kv(f.read(16 << 20))


def shared_template(name):
    """The text of ../shared/templates/NAME, or a skip when it is missing."""
    path = os.path.join(SHARED, "templates", name)
    if not os.path.exists(path):
        pytest.skip(f"{path} missing")
    with open(path) as f:
        return f.read()


def qwen3_model(directory, name, kv, template, extra=(), extra_type=CONTROL):
    """Writes DIRECTORY/NAME.gguf: the tiny qwen3 shape in Q8_0 with kv's tokenizer, `extra`
    tokens appended as `extra_type`, and `template` as its chat template. Returns the path."""
    gguf = pytest.importorskip("gguf")
    vpath = os.path.join(str(directory), f"vocab-{name}.gguf")
    w = gguf.GGUFWriter(vpath, "qwen2")
    vt = gguf.GGUFValueType
    for key, (t, val) in kv.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        if t == 9:
            elem, items = val[0], list(val[1])
            if key == "tokenizer.ggml.tokens":
                items += list(extra)
            elif key == "tokenizer.ggml.token_type":
                items += [extra_type] * len(extra)
            w.add_key_value(key, items, vt.ARRAY, vt(elem))
        else:
            w.add_key_value(key, val, vt(t))
    w.add_key_value("tokenizer.chat_template", template, vt.STRING)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    out = os.path.join(str(directory), f"{name}.gguf")
    subprocess.run([OUTBOARD, "synth", "--arch", "qwen3", "--shape", "tiny", "--type", "q8_0",
                    "--vocab", vpath, "-o", out], check=True, capture_output=True)
    return out


def check_calls(calls, tools, named=None, most=1):
    """1..most calls, each of a tool in `tools` (the named one) whose arguments validate."""
    jsonschema = pytest.importorskip("jsonschema")
    params = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    assert 1 <= len(calls) <= most, calls
    for c in calls:
        fn = c["function"]
        assert fn["name"] in params
        if named:
            assert fn["name"] == named
        jsonschema.validate(json.loads(fn["arguments"]), params[fn["name"]])


def streamed_calls(raw, markers=()):
    """The calls of a streamed OpenAI chat answer (SSE bytes), joined from their deltas, and
    its finish reason; no delta's content may show any of `markers`."""
    calls, finish = {}, None
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for c in json.loads(line[6:]).get("choices", []):
            assert not any(m in (c.get("delta", {}).get("content") or "") for m in markers)
            for tc in c.get("delta", {}).get("tool_calls") or []:
                e = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
                e["name"] += tc.get("function", {}).get("name") or ""
                e["arguments"] += tc.get("function", {}).get("arguments") or ""
            finish = c.get("finish_reason") or finish
    return [{"function": calls[i]} for i in sorted(calls)], finish
