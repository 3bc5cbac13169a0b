"""The OpenAI Responses API (POST /v1/responses) of a real `outboard serve` process on
127.0.0.1, stateless as Codex CLI uses it, through the official `openai` client (pinned) and raw
SSE, with SmolLM2-135M-Instruct:

- a whole response, a streamed one and the client's stream helper give the same greedy text;
  usage and status ("completed", or "incomplete" at max_output_tokens) agree;
- every streamed event carries its type, an increasing sequence_number, and item events their
  output_index, in the grammar created / in_progress / output_item.added / content_part.added /
  output_text.delta... / output_text.done / content_part.done / output_item.done / completed;
- instructions and developer messages become one system message; function_call and
  function_call_output items, reasoning items and skipped tool types are accepted;
- previous_response_id is refused (nothing is stored), images are refused, errors are OpenAI's.
The golden transcript with reasoning and function_call items is in emit_test.c.
"""
import json
import os

import pytest

from test_serve_http import ROOT, Server, named_events

openai = pytest.importorskip("openai")

SMOL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
ASK = "Write one sentence about the sea."


@pytest.fixture(scope="module")
def server():
    s = Server("--parallel", "2", model=SMOL)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


def raw_events(server, body):
    return named_events(server.port, "/v1/responses", body)


def test_whole_streamed_and_helper_agree(server, client):
    whole = client.responses.create(model=MODEL_ID, input=ASK, instructions="Be brief.",
                                    max_output_tokens=200, temperature=0)
    assert whole.object == "response" and whole.id.startswith("resp_")
    assert whole.status == "completed" and whole.output_text
    assert [item.type for item in whole.output] == ["message"]
    assert whole.usage.total_tokens == whole.usage.input_tokens + whole.usage.output_tokens

    with client.responses.stream(model=MODEL_ID, input=ASK, instructions="Be brief.",
                                 max_output_tokens=200, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == whole.output_text == final.output_text
    assert final.usage.output_tokens == whole.usage.output_tokens

    events = raw_events(server, {"model": MODEL_ID, "input": ASK, "instructions": "Be brief.",
                                 "max_output_tokens": 200, "temperature": 0, "stream": True})
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    item_id = events[2]["item"]["id"]
    for e in events[2:-1]:
        assert e["output_index"] == 0, e
        if "item_id" in e:
            assert e["item_id"] == item_id
    assert events[-4]["text"] == whole.output_text
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["id"] == item_id
    assert done["output"][0]["content"][0]["text"] == whole.output_text


def test_max_output_tokens_is_incomplete(server, client):
    short = client.responses.create(model=MODEL_ID, input=ASK, max_output_tokens=3,
                                    temperature=0)
    assert short.status == "incomplete"
    assert short.incomplete_details.reason == "max_output_tokens"
    assert short.usage.output_tokens == 3
    events = raw_events(server, {"model": MODEL_ID, "input": ASK, "max_output_tokens": 3,
                                 "temperature": 0, "stream": True})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == short.output_text


def test_agent_history_items(client):
    tools = [{"type": "function", "name": "get_weather", "description": "Weather of a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
             {"type": "web_search"}]
    history = [
        {"role": "developer", "content": "Answer from tool output only."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [],
         "content": [{"type": "reasoning_text", "text": "Call the tool."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "arguments": "{\"city\": \"Oslo\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 25 degrees."},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    r = client.responses.create(model=MODEL_ID, input=history, tools=tools, tool_choice="auto",
                                instructions="You are a weather bot.", max_output_tokens=8,
                                temperature=0)
    assert r.status in ("completed", "incomplete")
    short = client.responses.create(model=MODEL_ID, input=history[-1:], tools=tools,
                                    instructions="You are a weather bot.", max_output_tokens=1,
                                    temperature=0)
    assert r.usage.input_tokens > short.usage.input_tokens + 20
    # instructions and developer messages are one system message
    merged = client.responses.create(
        model=MODEL_ID, input=[{"role": "developer", "content": "B"},
                               {"role": "user", "content": "hi"}],
        instructions="A", max_output_tokens=1, temperature=0)
    joined = client.responses.create(model=MODEL_ID, input="hi", instructions="A\n\nB",
                                     max_output_tokens=1, temperature=0)
    assert merged.usage.input_tokens == joined.usage.input_tokens


def test_refusals_are_openai_errors(server, client):
    with pytest.raises(openai.BadRequestError) as prev:
        client.responses.create(model=MODEL_ID, input="hi", previous_response_id="resp_1")
    assert "stores no responses" in prev.value.body["message"]
    with pytest.raises(openai.BadRequestError) as img:
        client.responses.create(model=MODEL_ID, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png;base64,AA=="}]}])
    assert img.value.body["param"] == "input[0].content[0]"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    status, raw, _ = server.request("POST", "/v1/responses", {"model": MODEL_ID})
    assert status == 400 and json.loads(raw)["error"]["param"] == "input"
