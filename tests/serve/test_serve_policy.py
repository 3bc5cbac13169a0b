"""The routing policy (`outboard serve --policy`): which requests may leave for an upstream.

A second real `outboard serve` on 127.0.0.1 (stories260K, named "upmodel") stands in for an
OpenAI-compatible upstream, and a small Python server (anthropic_stub.py) for an Anthropic one.
Both count what reaches them, so the tests show:
- with no policy, not one request reaches either;
- each rule routes exactly the requests it names (X-Outboard-Route tells the client where its
  answer came from), and nothing else leaves;
- marked content (a never_leave header or pattern) and local-only keys never leave, even when a
  rule would allow it; when they cannot be served here either, the client gets a 503 saying why;
- streaming, tool calls, reasoning and usage pass through with the official openai and
  anthropic clients, across dialects (an Anthropic client served by an OpenAI upstream and the
  other way round);
- an upstream that dies mid-stream, refuses, or cannot be reached gives the client a clean
  error, a client that leaves cancels the upstream request, and the server keeps serving;
- /metrics counts requests by upstream and rule; `outboard policy check` validates a policy and
  says where sample requests go.
"""
import http.client
import json
import os
import re
import subprocess
import time

import pytest

from anthropic_stub import Stub
from test_serve_http import MODEL_ID, OUTBOARD, Server, free_port

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

TEAM_KEY = "team-secret-1"
HOSTED_KEY = "hosted-secret-2"


def policy(up_url, stub_url, dead_url):
    return {
        "upstreams": {
            "team": {"base_url": up_url, "dialect": "openai", "api_key_env": "OB_TEST_TEAM_KEY",
                     "models": {"big": "upmodel", MODEL_ID: "upmodel"}},
            "hosted": {"base_url": stub_url, "dialect": "anthropic",
                       "api_key_env": "OB_TEST_HOSTED_KEY", "timeout_s": 30},
            "dead": {"base_url": dead_url, "dialect": "openai", "connect_timeout_s": 2},
            "impatient": {"base_url": stub_url, "dialect": "anthropic", "timeout_s": 1,
                          "models": {"slow-timeout": "stub-slow"}},
        },
        "local_only_keys": ["local-key"],
        "never_leave": {"headers": ["X-Private"], "patterns": ["SECRET-[0-9]+"]},
        "rules": [
            {"name": "big-model", "upstream": "team", "models": ["big"]},
            {"name": "hosted-models", "upstream": "hosted", "models": ["stub-*"]},
            {"name": "gone", "upstream": "dead", "models": ["gone"]},
            {"name": "too-slow", "upstream": "impatient", "models": ["slow-timeout"]},
            {"name": "asked", "upstream": "team", "requested": True},
        ],
    }


@pytest.fixture(scope="module")
def upstream():
    s = Server("--alias", "upmodel")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def stub():
    s = Stub()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def policy_path(upstream, stub, tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.json"
    path.write_text(json.dumps(policy(upstream.url, stub.url, f"http://127.0.0.1:{free_port()}")))
    return str(path)


@pytest.fixture(scope="module")
def routed(policy_path):
    os.environ["OB_TEST_TEAM_KEY"] = TEAM_KEY
    os.environ["OB_TEST_HOSTED_KEY"] = HOSTED_KEY
    s = Server("--policy", policy_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def plain():
    s = Server()
    try:
        yield s
    finally:
        s.stop()


def upstream_count(upstream):
    """Generation requests the upstream server has answered (its own /metrics)."""
    _, body, _ = upstream.request("GET", "/metrics")
    total = 0
    for m in re.finditer(r'outboard_requests_total\{route="(/v1/[a-z/]+)",status="\d+"\} (\d+)',
                         body.decode()):
        if m.group(1) in ("/v1/chat/completions", "/v1/completions"):
            total += int(m.group(2))
    return total


def chat(server, model, content="Once upon a time", headers=None, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}],
            "max_tokens": 8, "temperature": 0, **extra}
    h = {"Content-Type": "application/json", **(headers or {})}
    status, data, hdrs = server.request("POST", "/v1/chat/completions", body, h, timeout=60)
    return status, json.loads(data), hdrs


def test_without_a_policy_nothing_leaves(plain, upstream, stub):
    before, stub_before = upstream_count(upstream), len(stub.requests)
    for model in ("big", "stub-text", "gone"):
        status, body, hdrs = chat(plain, model, headers={"X-Outboard-Route": "upstream"})
        assert status == 404, body
        assert "X-Outboard-Route" not in hdrs
    status, body, _ = chat(plain, MODEL_ID, headers={"X-Outboard-Route": "upstream"})
    assert status == 200 and body["choices"][0]["message"]["content"]
    assert upstream_count(upstream) == before and len(stub.requests) == stub_before


def test_a_rule_routes_exactly_its_model(routed, upstream, stub):
    before, stub_before = upstream_count(upstream), len(stub.requests)
    status, body, hdrs = chat(routed, "big")
    assert status == 200, body
    assert hdrs["X-Outboard-Route"] == "upstream=team; rule=big-model"
    assert body["model"] == "big"  # the name the client used
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 8
    assert body["usage"]["outboard_route"] == "upstream=team; rule=big-model"
    assert upstream_count(upstream) == before + 1
    # the local model stays local
    status, body, hdrs = chat(routed, MODEL_ID)
    assert status == 200 and hdrs["X-Outboard-Route"] == "local"
    assert "outboard_route" not in body["usage"]
    assert upstream_count(upstream) == before + 1 and len(stub.requests) == stub_before


def test_same_answer_as_asking_the_upstream_directly(routed, upstream):
    _, direct, _ = chat(upstream, "upmodel", max_tokens=12)
    _, relayed, _ = chat(routed, "big", max_tokens=12)
    assert relayed["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]


def test_the_upstream_key_comes_from_the_environment(routed, stub):
    status, _, _ = chat(routed, "stub-text")
    assert status == 200
    headers, body = stub.requests[-1]
    assert headers.get("x-api-key") == HOSTED_KEY
    assert headers.get("anthropic-version")
    assert body["model"] == "stub-text" and body["stream"] is True
    assert body["messages"] == [{"role": "user",
                                 "content": [{"type": "text", "text": "Once upon a time"}]}]


def test_asking_for_upstream_needs_a_rule(routed, upstream):
    before = upstream_count(upstream)
    status, _, hdrs = chat(routed, MODEL_ID, headers={"X-Outboard-Route": "upstream"})
    assert status == 200 and hdrs["X-Outboard-Route"] == "upstream=team; rule=asked"
    assert upstream_count(upstream) == before + 1
    status, body, hdrs = chat(routed, "big", headers={"X-Outboard-Route": "sideways"})
    assert status == 400 and "X-Outboard-Route" in body["error"]["message"]
    status, _, hdrs = chat(routed, MODEL_ID, headers={"X-Outboard-Route": "local"})
    assert status == 200 and hdrs["X-Outboard-Route"] == "local"
    assert upstream_count(upstream) == before + 1


@pytest.mark.parametrize("how", ["header", "pattern", "local-only key", "client pinned"])
def test_marked_content_never_leaves(routed, upstream, stub, how):
    before, stub_before = upstream_count(upstream), len(stub.requests)
    headers, content = {}, "Once upon a time"
    if how == "header":
        headers["X-Private"] = "1"
    elif how == "pattern":
        content = "my token is SECRET-1234, keep it"
    elif how == "local-only key":
        headers["Authorization"] = "Bearer local-key"
    else:
        headers["X-Outboard-Route"] = "local"
    for model in ("big", "stub-text"):
        status, body, hdrs = chat(routed, model, content, headers)
        assert status == 503, body
        assert hdrs["X-Outboard-Route"] == "local"
        assert "is not served here" in body["error"]["message"]
    # where it can be served here, it is, even when it asks to go upstream
    if how != "client pinned":
        headers["X-Outboard-Route"] = "upstream"
    status, body, hdrs = chat(routed, MODEL_ID, content, headers)
    assert status == 200 and hdrs["X-Outboard-Route"] == "local"
    assert upstream_count(upstream) == before and len(stub.requests) == stub_before


def test_openai_client_streams_from_either_upstream(routed):
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="none")
    for model, want in (("big", None), ("stub-text", "Hello from the stub.")):
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Once upon a time"}],
            max_tokens=8, temperature=0, stream=True, stream_options={"include_usage": True})
        text, usage, finish = "", None, None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        assert text and (want is None or text == want)
        assert usage is not None and usage.completion_tokens > 0
        assert finish == ("length" if model == "big" else "stop")


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_pass_through(routed, stream):
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="none")
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    if not stream:
        r = client.chat.completions.create(model="stub-tool", messages=msgs, tools=tools)
        calls, finish = r.choices[0].message.tool_calls, r.choices[0].finish_reason
        name, args, call_id = calls[0].function.name, calls[0].function.arguments, calls[0].id
    else:
        name, args, call_id, finish = "", "", None, None
        for chunk in client.chat.completions.create(model="stub-tool", messages=msgs,
                                                    tools=tools, stream=True):
            for c in chunk.choices:
                for tc in c.delta.tool_calls or []:
                    call_id = tc.id or call_id
                    name += tc.function.name or ""
                    args += tc.function.arguments or ""
                finish = c.finish_reason or finish
    assert name == "get_weather" and json.loads(args) == {"city": "Paris"}
    assert call_id == "toolu_stub1" and finish == "tool_calls"


def test_tools_and_results_reach_an_anthropic_upstream(routed, stub):
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="none")
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "toolu_stub1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_stub1", "content": "sunny, 21 C"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = client.chat.completions.create(model="stub-text", messages=msgs, tools=tools,
                                       tool_choice="required")
    assert r.choices[0].message.content == "Hello from the stub."
    _, sent = stub.requests[-1]
    assert sent["system"] == "Be brief."
    assert sent["tool_choice"]["type"] == "any"
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}
    assert sent["messages"][1] == {"role": "assistant", "content": [{
        "type": "tool_use", "id": "toolu_stub1", "name": "get_weather",
        "input": {"city": "Paris"}}]}
    assert sent["messages"][2] == {"role": "user", "content": [{
        "type": "tool_result", "tool_use_id": "toolu_stub1", "content": "sunny, 21 C"}]}


@pytest.mark.parametrize("model", ["big", "stub-think"])
def test_anthropic_client_through_either_upstream(routed, model):
    client = anthropic.Anthropic(base_url=routed.url, api_key="none")
    msg = client.messages.create(model=model, max_tokens=8,
                                 messages=[{"role": "user", "content": "Once upon a time"}])
    texts = [b.text for b in msg.content if b.type == "text"]
    assert texts and texts[0]
    if model == "stub-think":
        assert [b.thinking for b in msg.content if b.type == "thinking"] == ["Let me think."]
        assert texts == ["Hello from the stub."] and msg.stop_reason == "end_turn"
    else:
        assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 8
        assert msg.usage.model_extra["outboard_route"] == "upstream=team; rule=big-model"
    with client.messages.stream(model=model, max_tokens=8,
                                messages=[{"role": "user", "content": "Once upon"}]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed and final.stop_reason in ("max_tokens", "end_turn")


def test_upstream_dying_mid_stream_is_a_clean_error(routed):
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="none", max_retries=0)
    text = ""
    with pytest.raises(openai.APIError) as err:
        for chunk in client.chat.completions.create(
                model="stub-die", messages=[{"role": "user", "content": "hi"}], stream=True):
            for c in chunk.choices:
                text += c.delta.content or ""
    assert text == "Half" and "hosted" in str(err.value)
    assert chat(routed, MODEL_ID)[0] == 200


@pytest.mark.parametrize("model,status,words", [
    ("gone", 502, "upstream dead"),
    ("slow-timeout", 504, "upstream impatient"),
    ("stub-401", 502, "upstream hosted answered 401: invalid x-api-key"),
])
def test_upstream_failures_are_clean_errors(routed, model, status, words):
    # a stream that has begun ends with an error event instead (test below)
    for stream in (False, True) if model != "slow-timeout" else (False,):
        got, body, hdrs = chat(routed, model, stream=stream)
        assert got == status and words in body["error"]["message"], body
        assert hdrs["X-Outboard-Route"].startswith("upstream=")
    client = anthropic.Anthropic(base_url=routed.url, api_key="none", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as err:
        client.messages.create(model=model, max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == status and words in str(err.value)
    assert chat(routed, MODEL_ID)[0] == 200


def test_ollama_client_through_an_upstream(routed):
    ollama = pytest.importorskip("ollama")
    client = ollama.Client(host=routed.url)
    r = client.chat(model="stub-text", messages=[{"role": "user", "content": "hi"}])
    assert r.message.content == "Hello from the stub." and r.done
    text = "".join(p.message.content for p in client.chat(
        model="big", messages=[{"role": "user", "content": "Once upon"}], stream=True,
        options={"num_predict": 6}))
    assert text


def test_a_client_that_leaves_cancels_the_upstream_request(routed, stub):
    before = stub.cancelled
    conn = http.client.HTTPConnection("127.0.0.1", routed.port, timeout=30)
    conn.request("POST", "/v1/chat/completions", json.dumps({
        "model": "stub-slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
        {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read1(4096)
    conn.close()
    deadline = time.time() + 10
    while stub.cancelled == before and time.time() < deadline:
        time.sleep(0.05)
    assert stub.cancelled == before + 1
    assert chat(routed, MODEL_ID)[0] == 200


def test_metrics_count_by_upstream_and_rule(routed):
    chat(routed, "big")
    _, body, _ = routed.request("GET", "/metrics")
    text = body.decode()
    m = re.search(r'outboard_upstream_requests_total\{upstream="team",rule="big-model",'
                  r'result="ok"\} (\d+)', text)
    assert m and int(m.group(1)) >= 1, text
    assert re.search(r'outboard_upstream_requests_total\{upstream="hosted",'
                     r'rule="hosted-models",result="error"\} [1-9]', text), text
    assert re.search(r"outboard_policy_refused_total [1-9]", text), text


def test_policy_check(policy_path, tmp_path):
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([
        {"name": "big", "model": "big", "local": False},
        {"name": "private", "model": "big", "local": False, "headers": ["X-Private"]},
        {"name": "secret", "model": MODEL_ID, "body": "SECRET-7", "route": "upstream"},
        {"name": "small", "model": MODEL_ID},
    ]))
    r = subprocess.run([OUTBOARD, "policy", "check", policy_path, str(samples)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()[7:] if ln.strip()}
    assert "upstream team by rule big-model" in lines["big"]
    assert "refused (503)" in lines["private"]
    assert "local: it carries content marked never to leave" in lines["secret"]
    assert "no rule sends it upstream" in lines["small"]


@pytest.mark.parametrize("doc,words", [
    ({"rules": [{"name": "x", "upstream": "nope"}]}, 'rules[0].upstream: no upstream named "nope"'),
    ({"upstreams": {"u": {"base_url": "ftp://x"}}}, "upstreams.u.base_url: must start with"),
    ({"upstreams": {"u": {"base_url": "http://x", "dialect": "grpc"}}}, "upstreams.u.dialect"),
    ({"rules": [], "wehn": {}}, "wehn: unknown field"),
    ({"upstreams": {"u": {"base_url": "http://x"}},
      "rules": [{"name": "a", "upstream": "u", "when": {}}]}, "rules[0].when: names no condition"),
    ({"never_leave": {"patterns": ["(unclosed"]}}, "never_leave.patterns[0]:"),
])
def test_bad_policies_are_refused(tmp_path, doc, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    r = subprocess.run([OUTBOARD, "policy", "check", str(path)], capture_output=True, text=True)
    assert r.returncode == 1 and words in r.stderr, r.stderr
    port = free_port()
    r = subprocess.run([OUTBOARD, "serve", "-m", "/nonexistent.gguf", "--port", str(port),
                        "--policy", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and words in r.stderr, r.stderr
