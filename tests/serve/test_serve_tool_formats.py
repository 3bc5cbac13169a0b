"""Constrained answers in the tool-call formats of thinking models, against a real
`outboard serve`: a synthetic `qwen3` model with the Qwen2 vocabulary (the DeepSeek-R1-Distill-
Qwen GGUF chunk of tests/requirements.txt) carrying a real chat template from ../shared/templates:

- Qwen3.5-4B's, whose tool calls are Qwen3-Coder XML (<function=...><parameter=...>) and whose
  generation prompt opens `<think>` unless enable_thinking is false;
- Qwen3-0.6B's, whose tool calls are Hermes JSON in <tool_call> tags.

Random weights never call a tool or close their reasoning on their own, so every call here is
the constraint's doing, and the server's reasoning budget closes the thinking. Checked, sampled
at temperature 1 over several seeds so that the constraint and not one lucky path is tested:
- tool_choice "required" / a named function: the answer is tool calls of declared tools (the
  named one) whose arguments validate with `jsonschema`; exactly one call when
  parallel_tool_calls is false, one to four otherwise; streamed and not;
- with thinking on, the reasoning comes first and unconstrained, then the call or the
  json_schema answer, which validates; reasoning_content holds the thinking;
- a string parameter with a pattern in the XML format is a 400 naming the keyword.
"""
import json

import pytest

from qwen_chat_model import check_calls as check_calls_of, qwen3_model, qwen_vocab_kv, \
    shared_template, streamed_calls
from test_serve_http import Server

jsonschema = pytest.importorskip("jsonschema")

TEMPLATES = {"qwen3-coder": "Qwen3.5-4B.jinja", "hermes": "Qwen-Qwen3-0.6B.jinja"}

NAME = {"type": "string", "minLength": 1, "maxLength": 12}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "properties": {"city": NAME, "unit": {"type": "string", "enum": ["c", "f"]},
                                         "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "book", "description": "Book a room", "parameters": {
        "type": "object", "properties": {
            "guest": {"type": "object", "properties": {"name": NAME, "age": {
                "type": "integer", "minimum": 18, "maximum": 99}}, "required": ["name", "age"]},
            "nights": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9},
                       "minItems": 1, "maxItems": 3},
            "note": {"type": "string", "maxLength": 16}},
        "required": ["guest", "nights"]}}},
]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 20},
                                           "score": {"type": "integer", "minimum": 0,
                                                     "maximum": 10}},
          "required": ["answer", "score"], "additionalProperties": False}
MSGS = [{"role": "user", "content": "What is the weather in Paris? Then book a room."}]
SEEDS = (1, 2)
BUDGET = 5


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return qwen_vocab_kv(), tmp_path_factory.mktemp("toolfmt")


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def srv(request, vocab):
    s = Server("--reasoning-budget", str(BUDGET), "--ctx", "4096", "--parallel", "2",
               model=qwen3_model(vocab[1], request.param, vocab[0],
                                 shared_template(TEMPLATES[request.param])))
    s.family = request.param
    try:
        yield s
    finally:
        s.stop()


def chat(s, **body):
    body = {"messages": MSGS, "max_tokens": 400, "temperature": 1, **body}
    status, raw, _ = s.request("POST", "/v1/chat/completions", body, timeout=120)
    return status, json.loads(raw)


def check_calls(calls, named=None, most=1):
    check_calls_of(calls, TOOLS, named, most)


CASES = [  # tool_choice, parallel_tool_calls, enable_thinking
    ("required", True, False),
    ("book", False, False),
    ("required", False, True),
    ("get_weather", True, True),
]


@pytest.mark.parametrize("choice,parallel,think", CASES,
                         ids=["required-parallel", "named-single", "required-single-think",
                              "named-parallel-think"])
def test_forced_calls(srv, choice, parallel, think):
    if think and srv.family == "hermes":
        pytest.skip("Qwen3's generation prompt does not open the reasoning")
    named = None if choice == "required" else choice
    tc = choice if not named else {"type": "function", "function": {"name": named}}
    for seed in SEEDS:
        status, r = chat(srv, tools=TOOLS, tool_choice=tc, seed=seed, parallel_tool_calls=parallel,
                         chat_template_kwargs={"enable_thinking": think})
        assert status == 200, r
        c = r["choices"][0]
        assert c["finish_reason"] == "tool_calls", c
        check_calls(c["message"]["tool_calls"], named, 4 if parallel else 1)
        if think:
            assert c["message"].get("reasoning_content"), c


def test_forced_call_streamed(srv):
    status, raw, _ = srv.request("POST", "/v1/chat/completions", {
        "messages": MSGS, "tools": TOOLS, "tool_choice": "required", "max_tokens": 400,
        "temperature": 1, "seed": 4, "stream": True}, timeout=120)
    assert status == 200, raw
    calls, finish = streamed_calls(raw)
    assert finish == "tool_calls"
    check_calls(calls, None, 4)


def test_json_schema_after_reasoning(srv):
    if srv.family == "hermes":
        pytest.skip("Qwen3's generation prompt does not open the reasoning")
    for seed in SEEDS:
        status, r = chat(srv, seed=seed, max_tokens=300, response_format={
            "type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}})
        assert status == 200, r
        msg = r["choices"][0]["message"]
        assert msg.get("reasoning_content"), msg
        jsonschema.validate(json.loads(msg["content"]), SCHEMA)


def test_xml_pattern_refused(srv):
    if srv.family != "qwen3-coder":
        pytest.skip("only the XML format writes strings raw")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}}}]
    status, r = chat(srv, tools=tools, tool_choice="required")
    assert status == 400, r
    assert "pattern" in r["error"]["message"]
