"""The Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) of a real
`outboard serve` process on 127.0.0.1, through the official `anthropic` client (pinned) and raw
SSE, with SmolLM2-135M-Instruct (its own chat template):

- a whole message and a streamed one give the same greedy text, usage counts the prompt as
  count_tokens does, and the stream is Anthropic's event grammar in order;
- stop_sequences end the answer with stop_reason "stop_sequence" and the sequence named;
- a tool_use / tool_result round trip in the history is accepted and reaches the prompt;
- errors come as the client's own exception types with Anthropic's error object: missing
  max_tokens, an image block, an unknown model, a wrong x-api-key.
The event-by-event golden transcript with thinking and tool_use blocks is in emit_test.c.
"""
import json
import os

import pytest

from test_serve_http import ROOT, Server, named_events

anthropic = pytest.importorskip("anthropic")

SMOL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
GREEDY = {"temperature": 0}
SYSTEM = "You are a helpful assistant."
ASK = [{"role": "user", "content": "Write one sentence about the sea."}]


@pytest.fixture(scope="module")
def server():
    s = Server("--parallel", "2", model=SMOL)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return anthropic.Anthropic(base_url=server.url, api_key="unused")


def raw_events(server, body):
    return named_events(server.port, "/v1/messages", body)


def test_whole_and_streamed_messages_agree(server, client):
    whole = client.messages.create(model=MODEL_ID, max_tokens=24, system=SYSTEM, messages=ASK,
                                   extra_body=GREEDY)
    assert whole.type == "message" and whole.role == "assistant"
    assert whole.id.startswith("msg_") and whole.model == MODEL_ID
    assert [b.type for b in whole.content] == ["text"] and whole.content[0].text
    assert whole.stop_reason in ("end_turn", "max_tokens")
    count = client.messages.count_tokens(model=MODEL_ID, system=SYSTEM, messages=ASK)
    assert whole.usage.input_tokens + whole.usage.cache_read_input_tokens == count.input_tokens
    assert 0 < whole.usage.output_tokens <= 24

    with client.messages.stream(model=MODEL_ID, max_tokens=24, system=SYSTEM, messages=ASK,
                                extra_body=GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == whole.content[0].text == final.content[0].text
    assert final.stop_reason == whole.stop_reason

    events = raw_events(server, {"model": MODEL_ID, "max_tokens": 24, "system": SYSTEM,
                                 "messages": ASK, "stream": True, **GREEDY})
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[3:-3]) == {"content_block_delta"}
    assert events[0]["message"]["content"] == [] and events[0]["message"]["stop_reason"] is None
    assert events[2] == {"type": "content_block_start", "index": 0,
                         "content_block": {"type": "text", "text": ""}}
    text = "".join(e["delta"]["text"] for e in events[3:-3])
    assert all(e["index"] == 0 and e["delta"]["type"] == "text_delta" for e in events[3:-3])
    assert text == whole.content[0].text
    assert events[-2]["delta"]["stop_reason"] == whole.stop_reason
    assert events[-2]["usage"]["output_tokens"] == whole.usage.output_tokens


def test_stop_sequence_is_named(client):
    whole = client.messages.create(model=MODEL_ID, max_tokens=24, system=SYSTEM, messages=ASK,
                                   extra_body=GREEDY)
    words = whole.content[0].text.split()
    assert len(words) >= 3
    stop = " " + words[2]
    cut = client.messages.create(model=MODEL_ID, max_tokens=24, system=SYSTEM, messages=ASK,
                                 stop_sequences=[stop], extra_body=GREEDY)
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert whole.content[0].text.startswith(cut.content[0].text)
    assert stop not in cut.content[0].text


def test_tool_round_trip_reaches_the_prompt(client):
    tools = [{"name": "get_weather", "description": "Weather of a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}]
    history = ASK + [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should look it up.", "signature": "x"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "Sunny and warm, 25 degrees."}]},
            {"type": "text", "text": "Thanks, and tomorrow?", "cache_control": {"type": "ephemeral"}}]},
    ]
    base = client.messages.count_tokens(model=MODEL_ID, messages=ASK, tools=tools)
    longer = client.messages.count_tokens(model=MODEL_ID, messages=history, tools=tools)
    assert longer.input_tokens > base.input_tokens + 10
    answer = client.messages.create(model=MODEL_ID, max_tokens=8, messages=history, tools=tools,
                                    tool_choice={"type": "auto"}, extra_body=GREEDY)
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    sys_blocks = client.messages.count_tokens(model=MODEL_ID, system=blocks, messages=ASK)
    sys_text = client.messages.count_tokens(model=MODEL_ID, system="a\nb", messages=ASK)
    assert sys_blocks.input_tokens == sys_text.input_tokens


def test_errors_are_anthropic_errors(server, client):
    status, raw, _ = server.request("POST", "/v1/messages",
                                    {"model": MODEL_ID, "messages": ASK})
    body = json.loads(raw)
    assert status == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL_ID, max_tokens=4, messages=[
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}])
    assert "messages[0].content[0]" in bad.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(model="no-such-model", max_tokens=4, messages=ASK)
    assert nf.value.body["error"]["type"] == "not_found_error"
    status, raw, _ = server.request("POST", "/v1/messages", "{not json")
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"


def test_api_key_through_x_api_key():
    s = Server("--api-key", "sekrit", model=SMOL)
    try:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            anthropic.Anthropic(base_url=s.url, api_key="wrong").messages.create(
                model=MODEL_ID, max_tokens=2, messages=ASK)
        assert auth.value.body["error"]["type"] == "authentication_error"
        ok = anthropic.Anthropic(base_url=s.url, api_key="sekrit").messages.create(
            model=MODEL_ID, max_tokens=2, messages=ASK, extra_body=GREEDY)
        assert ok.usage.output_tokens <= 2
    finally:
        s.stop()


def test_volatile_billing_header_keeps_the_prefix_cache(client):
    """Claude Code's first system block changes on every request: it is dropped, so the long
    system prompt after it still comes from the prefix cache."""
    long_system = " ".join(f"Rule {i}: answer briefly and politely." for i in range(40))

    def system(tag):
        return [{"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1; cch={tag};"},
                {"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]

    plain = client.messages.count_tokens(model=MODEL_ID, system=long_system, messages=ASK)
    tagged = client.messages.count_tokens(model=MODEL_ID, system=system("a1"), messages=ASK)
    assert tagged.input_tokens == plain.input_tokens
    first = client.messages.create(model=MODEL_ID, max_tokens=4, system=system("b2"),
                                   messages=ASK, extra_body=GREEDY)
    second = client.messages.create(model=MODEL_ID, max_tokens=4, system=system("c3"),
                                    messages=ASK, extra_body=GREEDY)
    total = first.usage.input_tokens + first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens >= (total - 1) // 32 * 32 > 0
    assert second.content[0].text == first.content[0].text
