"""Forced tool calls in a format whose markers are control tokens, against a real
`outboard serve`: a synthetic `qwen3` model whose vocabulary is Qwen2's (the DeepSeek-R1-Distill-
Qwen GGUF chunk of tests/requirements.txt) with Mistral's [TOOL_CALLS], [ARGS] and [CALL_ID]
appended as control tokens, carrying Mistral-Small-3.2's chat template from ../shared/templates.

The tokenizer never makes a control token from text, so the model can write [TOOL_CALLS] only
as that one token: the grammar must name it as a token, or no call could ever start. Random
weights never call a tool on their own, so every call here is the constraint's doing; sampled at
temperature 1 over several seeds. Checked: tool_choice "required" / a named function gives
tool calls of declared tools (the named one) whose arguments validate with `jsonschema`, one
call when parallel_tool_calls is false and one to four otherwise, streamed and not; the
control tokens themselves never reach the visible content.
"""
import json
import os
import subprocess

import pytest

from test_serve_http import OUTBOARD, Server
from test_serve_tool_formats import SHARED, vocab  # noqa: F401 (a fixture)

jsonschema = pytest.importorskip("jsonschema")

TEMPLATE = "Mistral-Small-3.2-24B-Instruct-2506.jinja"
MARKERS = ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"]
CONTROL = 3  # tokenizer.ggml.token_type of a control token

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 12},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string", "enum": ["utc", "cet"]}},
        "required": ["zone"]}}},
]
MSGS = [{"role": "user", "content": "What is the weather in Paris, and the time?"}]
SEEDS = (1, 2)


def params_of(name):
    return next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)


@pytest.fixture(scope="module")
def srv(vocab):  # noqa: F811
    kv, gguf, d = vocab
    path = os.path.join(SHARED, "templates", TEMPLATE)
    if not os.path.exists(path):
        pytest.skip(f"{path} missing")
    with open(path) as f:
        template = f.read()
    vpath = str(d / "vocab-mistral-markers.gguf")
    w = gguf.GGUFWriter(vpath, "qwen2")
    vt = gguf.GGUFValueType
    for key, (t, val) in kv.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        if t == 9:
            elem, items = val[0], list(val[1])
            if key == "tokenizer.ggml.tokens":
                items += MARKERS
            elif key == "tokenizer.ggml.token_type":
                items += [CONTROL] * len(MARKERS)
            w.add_key_value(key, items, vt.ARRAY, vt(elem))
        else:
            w.add_key_value(key, val, vt(t))
    w.add_key_value("tokenizer.chat_template", template, vt.STRING)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    out = str(d / "mistral-markers.gguf")
    subprocess.run([OUTBOARD, "synth", "--arch", "qwen3", "--shape", "tiny", "--type", "q8_0",
                    "--vocab", vpath, "-o", out], check=True, capture_output=True)
    s = Server("--ctx", "4096", "--parallel", "2", model=out)
    s.tokens = list(kv["tokenizer.ggml.tokens"][1][1]) + MARKERS
    try:
        yield s
    finally:
        s.stop()


def check_calls(calls, named=None, most=1):
    assert 1 <= len(calls) <= most, calls
    for c in calls:
        fn = c["function"]
        assert fn["name"] in {t["function"]["name"] for t in TOOLS}
        if named:
            assert fn["name"] == named
        jsonschema.validate(json.loads(fn["arguments"]), params_of(fn["name"]))


@pytest.mark.parametrize("choice,parallel", [("required", True), ("get_time", False)],
                         ids=["required-parallel", "named-single"])
def test_forced_calls(srv, choice, parallel):
    named = None if choice == "required" else choice
    tc = choice if not named else {"type": "function", "function": {"name": named}}
    for seed in SEEDS:
        status, raw, _ = srv.request("POST", "/v1/chat/completions", {
            "messages": MSGS, "tools": TOOLS, "tool_choice": tc, "max_tokens": 300,
            "temperature": 1, "seed": seed, "parallel_tool_calls": parallel}, timeout=120)
        assert status == 200, raw
        c = json.loads(raw)["choices"][0]
        assert c["finish_reason"] == "tool_calls", c
        assert not any(m in (c["message"].get("content") or "") for m in MARKERS), c
        check_calls(c["message"]["tool_calls"], named, 4 if parallel else 1)


def test_forced_call_streamed(srv):
    status, raw, _ = srv.request("POST", "/v1/chat/completions", {
        "messages": MSGS, "tools": TOOLS, "tool_choice": "required", "max_tokens": 300,
        "temperature": 1, "seed": 5, "stream": True}, timeout=120)
    assert status == 200, raw
    calls, finish = {}, None
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for c in json.loads(line[6:]).get("choices", []):
            assert not any(m in (c.get("delta", {}).get("content") or "") for m in MARKERS)
            for tc in c.get("delta", {}).get("tool_calls") or []:
                e = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
                e["name"] += tc.get("function", {}).get("name") or ""
                e["arguments"] += tc.get("function", {}).get("arguments") or ""
            finish = c.get("finish_reason") or finish
    assert finish == "tool_calls"
    check_calls([{"function": calls[i]} for i in sorted(calls)], None, 4)


def test_grammar_token_elements(srv):
    """The `grammar` field with token elements: a text token by id, a control token by its text
    (only a token element can make one); a text that is no single token is a 400 naming it."""
    ok = srv.tokens.index("ok")
    status, raw, _ = srv.request("POST", "/v1/chat/completions", {
        "messages": MSGS, "max_tokens": 40, "temperature": 1, "seed": 1,
        "grammar": f'root ::= <[{ok}]> " " [a-z]{{1,3}} <|fim_prefix|>\n'}, timeout=60)
    assert status == 200, raw
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert content.startswith("ok ") and content.endswith("<|fim_prefix|>"), content
    assert 4 <= len(content) - len("<|fim_prefix|>") <= 6, content
    status, raw, _ = srv.request("POST", "/v1/chat/completions", {
        "messages": MSGS, "max_tokens": 40, "temperature": 1, "seed": 1,
        "grammar": 'root ::= "x" <|no_such_token|>\n'}, timeout=60)
    assert status == 400, raw
    assert "<|no_such_token|>" in json.loads(raw)["error"]["message"]
