"""Forced tool calls in Gemma 4's format, against a real `outboard serve` with the official
`openai` client: a synthetic `qwen3` model whose vocabulary is Qwen2's (the DeepSeek-R1-Distill-
Qwen GGUF chunk of tests/requirements.txt) with Gemma 4's markers appended as control tokens,
carrying Gemma-4-31B-it's chat template from ../shared/templates.

Gemma 4 writes a call as <|tool_call>call:NAME{key:<|"|>text<|"|>,n:5,...}<tool_call|>: its own
literals, strings between <|"|> tokens, bare keys. The tokenizer never makes a control token
from text, so the grammar must name the markers and the delimiter as tokens or no call or
string could ever be written. Random weights never call a tool on their own, so every call here
is the constraint's doing; sampled at temperature 1 over several seeds and greedy. Checked:
tool_choice "required" / a named function gives tool calls of declared tools (the named one)
whose arguments, as outboard's Gemma 4 parser reads them, validate with `jsonschema` against the
tool's schema (nested objects, arrays, numbers, booleans, null, enum, anyOf, const, $ref); one
call when parallel_tool_calls is false and one to four otherwise; streamed and not; no marker
reaches the visible content. A "pattern" the literals cannot enforce is a 400 naming it.
"""
import json

import pytest

from qwen_chat_model import check_calls as check_calls_of, qwen3_model, qwen_vocab_kv, \
    shared_template
from test_serve_http import Server

TEMPLATE = "google-gemma-4-31B-it.jinja"
MARKERS = ["<|tool_call>", "<tool_call|>", '<|"|>', "<|turn>", "<turn|>", "<|tool>", "<tool|>",
           "<|tool_response>", "<tool_response|>", "<|channel>", "<channel|>", "<|think|>"]

NAME = {"type": "string", "minLength": 1, "maxLength": 12}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                      "parameters": {
        "type": "object", "properties": {
            "city": NAME, "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": ["integer", "null"], "minimum": 1, "maximum": 7}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "book", "description": "Book a room", "parameters": {
        "type": "object", "properties": {
            "guest": {"type": "object", "properties": {"name": NAME, "age": {
                "type": "integer", "minimum": 18, "maximum": 99}, "vip": {"type": "boolean"}},
                "required": ["name", "age"]},
            "nights": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9},
                       "minItems": 1, "maxItems": 3},
            "budget": {"type": "number", "minimum": 0, "maximum": 500},
            "note": {"type": "string", "maxLength": 16}},
        "required": ["guest", "nights"]}}},
    {"type": "function", "function": {"name": "plan", "description": "Plan a trip", "parameters": {
        "type": "object", "properties": {
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "maxItems": 2},
            "mode": {"anyOf": [{"const": "fast"}, {"type": "integer", "minimum": 0,
                                                   "maximum": 3}]}},
        "required": ["steps", "mode"],
        "$defs": {"step": {"type": "object", "properties": {
            "kind": {"enum": ["walk", "ride", None]},
            "minutes": {"type": "integer", "minimum": 1, "maximum": 60}},
            "required": ["kind"]}}}}},
]
MSGS = [{"role": "user", "content": "What is the weather in Paris? Then book a room and plan."}]
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    kv = qwen_vocab_kv()
    out = qwen3_model(tmp_path_factory.mktemp("gemma4"), "gemma4-markers", kv,
                      shared_template(TEMPLATE), extra=MARKERS)
    s = Server("--ctx", "4096", "--parallel", "2", model=out)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(srv):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="none")


def check_calls(calls, named=None, most=1):
    check_calls_of([{"function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls], TOOLS, named, most)


def choice_of(named):
    return {"type": "function", "function": {"name": named}} if named else "required"


def ask(client, named, parallel, **sampling):
    c = client.chat.completions.create(
        model="gemma4-markers", messages=MSGS, tools=TOOLS, tool_choice=choice_of(named),
        max_tokens=400, parallel_tool_calls=parallel, timeout=120, **sampling).choices[0]
    assert c.finish_reason == "tool_calls", c
    assert not any(m in (c.message.content or "") for m in MARKERS), c
    return [{"name": t.function.name, "arguments": t.function.arguments}
            for t in c.message.tool_calls]


@pytest.mark.parametrize("named,parallel", [(None, True), (None, False), ("book", False),
                                            ("plan", True)],
                         ids=["required-parallel", "required-single", "named-book", "named-plan"])
def test_forced_calls_sampled(client, named, parallel):
    for seed in SEEDS:
        calls = ask(client, named, parallel, temperature=1, seed=seed)
        check_calls(calls, named, 4 if parallel else 1)


@pytest.mark.parametrize("named", [None, "get_weather"], ids=["required", "named"])
def test_forced_calls_greedy(client, named):
    check_calls(ask(client, named, False, temperature=0), named, 1)


@pytest.mark.parametrize("named,seed", [(None, 5), ("plan", 6)], ids=["required", "named"])
def test_forced_calls_streamed(client, named, seed):
    stream = client.chat.completions.create(
        model="gemma4-markers", messages=MSGS, tools=TOOLS, tool_choice=choice_of(named),
        max_tokens=400, temperature=1, seed=seed, stream=True, timeout=120)
    calls, finish = {}, None
    for chunk in stream:
        for c in chunk.choices:
            assert not any(m in (c.delta.content or "") for m in MARKERS), c
            for tc in c.delta.tool_calls or []:
                e = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                e["name"] += (tc.function and tc.function.name) or ""
                e["arguments"] += (tc.function and tc.function.arguments) or ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    check_calls([calls[i] for i in sorted(calls)], named, 4)


def test_pattern_is_refused(srv):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}}}]
    status, raw, _ = srv.request("POST", "/v1/chat/completions", {
        "messages": MSGS, "tools": tools, "tool_choice": "required", "max_tokens": 20},
        timeout=60)
    assert status == 400, raw
    assert "'pattern'" in json.loads(raw)["error"]["message"]
