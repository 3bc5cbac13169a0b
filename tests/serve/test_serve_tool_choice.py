"""Forced tool calls in the Anthropic and Responses dialects, through the official `anthropic`
and `openai` clients against a real `outboard serve` (stories260K, whose generic ChatML
template writes tool calls in the Hermes format; a model this small never calls a tool on its
own, so every call here is the constraint's doing):

- Anthropic `tool_choice` {"type": "any"} and {"type": "tool", "name": ...}, streamed and not:
  the answer is a tool_use block of a declared tool (the named one) whose input validates
  against its input_schema with `jsonschema`, and stop_reason is "tool_use";
- Responses `tool_choice` "required" and {"type": "function", "name": ...}, streamed and not:
  a function_call item of a declared function (the named one) whose arguments validate;
- parallel calls allowed (the default) give one to four valid calls, disallowed exactly one;
- sampled at temperature 1 with several seeds, so the constraint, not one lucky path, is what
  is tested.
"""
import json

import pytest

from test_serve_http import MODEL_ID, Server

jsonschema = pytest.importorskip("jsonschema")

NAME = {"type": "string", "minLength": 1, "maxLength": 12}
SCHEMAS = {
    "get_weather": {"type": "object", "properties": {"city": NAME, "unit": {"enum": ["c", "f"]}},
                    "required": ["city", "unit"]},
    "add": {"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 0, "maximum": 99},
        "b": {"type": "integer", "minimum": 0, "maximum": 99}}, "required": ["a", "b"]},
    "book": {"type": "object", "properties": {
        "guest": {"type": "object", "properties": {"name": NAME, "age": {
            "type": "integer", "minimum": 18, "maximum": 99}}, "required": ["name", "age"]},
        "nights": {"type": "array", "items": {"type": "string", "format": "date"},
                   "minItems": 1, "maxItems": 3}}, "required": ["guest", "nights"]},
}
SEEDS = (1, 2)


@pytest.fixture(scope="module")
def srv():
    s = Server("--parallel", "4")
    try:
        yield s
    finally:
        s.stop()


def anthropic_tools():
    return [{"name": n, "description": f"tool {n}", "input_schema": s}
            for n, s in SCHEMAS.items()]


def responses_tools():
    return [{"type": "function", "name": n, "description": f"tool {n}", "parameters": s}
            for n, s in SCHEMAS.items()]


@pytest.fixture(scope="module")
def anthropic_client(srv):
    anthropic = pytest.importorskip("anthropic")
    return anthropic.Anthropic(base_url=srv.url, api_key="none")


@pytest.fixture(scope="module")
def openai_client(srv):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="none")


ANTHROPIC_CHOICES = [{"type": "any"}, {"type": "tool", "name": "book"},
                     {"type": "tool", "name": "add"}]


@pytest.mark.parametrize("choice", ANTHROPIC_CHOICES, ids=["any", "tool-book", "tool-add"])
def test_anthropic_forced_tool_use(anthropic_client, choice):
    for seed in SEEDS:
        # odd seeds allow parallel calls (one to four; room for four), even ones exactly one
        parallel = seed % 2 == 1
        msg = anthropic_client.messages.create(
            model=MODEL_ID, max_tokens=1600 if parallel else 400, tools=anthropic_tools(),
            tool_choice={**choice, "disable_parallel_tool_use": not parallel},
            messages=[{"role": "user", "content": "Book a room."}],
            extra_body={"seed": seed, "temperature": 1})
        assert msg.stop_reason == "tool_use", msg
        uses = [b for b in msg.content if b.type == "tool_use"]
        assert 1 <= len(uses) <= (4 if parallel else 1), msg.content
        for u in uses:
            if choice["type"] == "tool":
                assert u.name == choice["name"]
            assert u.id
            jsonschema.validate(u.input, SCHEMAS[u.name])


@pytest.mark.parametrize("choice", ANTHROPIC_CHOICES, ids=["any", "tool-book", "tool-add"])
def test_anthropic_forced_tool_use_streamed(anthropic_client, choice):
    for seed in SEEDS[:1]:
        with anthropic_client.messages.stream(
                model=MODEL_ID, max_tokens=400, tools=anthropic_tools(),
                tool_choice={**choice, "disable_parallel_tool_use": True},
                messages=[{"role": "user", "content": "Add two numbers."}],
                extra_body={"seed": seed, "temperature": 1}) as stream:
            partial = ""
            for ev in stream:
                if ev.type == "content_block_delta" and ev.delta.type == "input_json_delta":
                    partial += ev.delta.partial_json
            msg = stream.get_final_message()
        assert msg.stop_reason == "tool_use"
        uses = [b for b in msg.content if b.type == "tool_use"]
        assert len(uses) == 1
        if choice["type"] == "tool":
            assert uses[0].name == choice["name"]
        # the streamed pieces of the input are the whole input
        assert json.loads(partial) == uses[0].input
        jsonschema.validate(uses[0].input, SCHEMAS[uses[0].name])


RESPONSES_CHOICES = ["required", {"type": "function", "name": "book"},
                     {"type": "function", "name": "get_weather"}]


def function_calls(resp):
    return [it for it in resp.output if it.type == "function_call"]


@pytest.mark.parametrize("choice", RESPONSES_CHOICES, ids=["required", "fn-book", "fn-weather"])
def test_responses_forced_function_call(openai_client, choice):
    for seed in SEEDS:
        resp = openai_client.responses.create(
            model=MODEL_ID, input="What is the weather in Paris?", tools=responses_tools(),
            tool_choice=choice, temperature=1, max_output_tokens=1600 if seed % 2 else 400,
            store=False, parallel_tool_calls=seed % 2 == 1, extra_body={"seed": seed})
        calls = function_calls(resp)
        assert 1 <= len(calls) <= (4 if seed % 2 == 1 else 1), resp.output
        for c in calls:
            if isinstance(choice, dict):
                assert c.name == choice["name"]
            assert c.call_id and c.id and c.id != c.call_id
            jsonschema.validate(json.loads(c.arguments), SCHEMAS[c.name])


@pytest.mark.parametrize("choice", RESPONSES_CHOICES, ids=["required", "fn-book", "fn-weather"])
def test_responses_forced_function_call_streamed(openai_client, choice):
    for seed in SEEDS[:1]:
        deltas, done = "", None
        stream = openai_client.responses.create(
            model=MODEL_ID, input="Book a room for two nights.", tools=responses_tools(),
            tool_choice=choice, temperature=1, max_output_tokens=400, store=False, stream=True,
            parallel_tool_calls=False, extra_body={"seed": seed})
        final = None
        for ev in stream:
            if ev.type == "response.function_call_arguments.delta":
                deltas += ev.delta
            elif ev.type == "response.function_call_arguments.done":
                done = ev.arguments
            elif ev.type == "response.completed":
                final = ev.response
        assert final is not None
        calls = function_calls(final)
        assert len(calls) == 1
        if isinstance(choice, dict):
            assert calls[0].name == choice["name"]
        assert deltas == done == calls[0].arguments
        jsonschema.validate(json.loads(calls[0].arguments), SCHEMAS[calls[0].name])
