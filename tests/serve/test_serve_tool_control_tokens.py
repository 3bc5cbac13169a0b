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

import pytest

from qwen_chat_model import check_calls as check_calls_of, qwen3_model, qwen_vocab_kv, \
    shared_template, streamed_calls
from test_serve_http import Server

TEMPLATE = "Mistral-Small-3.2-24B-Instruct-2506.jinja"
MARKERS = ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"]

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


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    kv = qwen_vocab_kv()
    out = qwen3_model(tmp_path_factory.mktemp("markers"), "mistral-markers", kv,
                      shared_template(TEMPLATE), extra=MARKERS)
    s = Server("--ctx", "4096", "--parallel", "2", model=out)
    s.tokens = list(kv["tokenizer.ggml.tokens"][1][1]) + MARKERS
    try:
        yield s
    finally:
        s.stop()


def check_calls(calls, named=None, most=1):
    check_calls_of(calls, TOOLS, named, most)


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
    calls, finish = streamed_calls(raw, MARKERS)
    assert finish == "tool_calls"
    check_calls(calls, None, 4)


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
