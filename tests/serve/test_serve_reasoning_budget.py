"""The reasoning budget of `outboard serve` (--reasoning-budget N, and Anthropic's
thinking.budget_tokens per request) on a thinking model: a synthetic `qwen3` model with the
Qwen2 vocabulary (from the DeepSeek-R1-Distill-Qwen GGUF chunk of tests/requirements.txt) and a
Qwen3-thinking-style chat template whose generation prompt opens `<think>`. Its random weights
never close the reasoning on their own, so any close is the server's.

Greedy decoding makes every dialect generate the same tokens for the same messages. The OpenAI
chat answer's logprobs give them one by one: the first N are reasoning, then come exactly the
tokens of "\\n</think>\\n\\n" (the format's close, written by the engine), then the answer.
reasoning_content and content must be those pieces' text; the Anthropic (streamed and not),
Responses and Ollama answers must split the same text the same way; a smaller per-request
budget closes earlier; with no budget the reasoning runs to max_tokens.
"""
import json

import pytest

from qwen_chat_model import qwen3_model, qwen_vocab_kv
from test_serve_http import Server

TEMPLATE = ("{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + "
            "message.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
            "{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}")
BUDGET = 6
MAX = 24
CLOSE = ["\n", "</think>", "\n\n"]
MSGS = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return qwen3_model(tmp_path_factory.mktemp("think"), "qwen3-think", qwen_vocab_kv(), TEMPLATE)


@pytest.fixture(scope="module")
def srv(model):
    s = Server("--reasoning-budget", str(BUDGET), "--ctx", "512", model=model)
    try:
        yield s
    finally:
        s.stop()


def post(s, path, body):
    status, raw, _ = s.request("POST", path, body, timeout=60)
    assert status == 200, raw
    return json.loads(raw)


@pytest.fixture(scope="module")
def reference(srv):
    """The OpenAI chat answer with its tokens: (reasoning_content, content, token texts)."""
    r = post(srv, "/v1/chat/completions", {"messages": MSGS, "max_tokens": MAX,
                                           "temperature": 0, "logprobs": True})
    choice = r["choices"][0]
    toks = [t["token"] for t in choice["logprobs"]["content"]]
    return choice["message"].get("reasoning_content") or "", choice["message"]["content"], toks


def test_close_is_injected_after_the_budget(reference):
    reasoning, content, toks = reference
    assert len(toks) == MAX
    assert toks[BUDGET:BUDGET + len(CLOSE)] == CLOSE, toks
    assert "</think>" not in toks[:BUDGET]
    assert reasoning == "".join(toks[:BUDGET]).strip()
    assert reasoning
    assert content == "".join(toks[BUDGET + len(CLOSE):]).strip()
    assert "</think>" not in content and "</think>" not in reasoning


def test_without_a_budget_reasoning_runs_on(model):
    s = Server("--ctx", "512", model=model)
    try:
        r = post(s, "/v1/chat/completions", {"messages": MSGS, "max_tokens": MAX,
                                             "temperature": 0, "logprobs": True})
    finally:
        s.stop()
    toks = [t["token"] for t in r["choices"][0]["logprobs"]["content"]]
    assert "</think>" not in toks
    assert r["choices"][0]["message"]["content"] == ""
    assert r["choices"][0]["message"]["reasoning_content"] == "".join(toks).strip()


def test_anthropic_split_matches(srv, reference):
    anthropic = pytest.importorskip("anthropic")
    reasoning, content, _ = reference
    client = anthropic.Anthropic(base_url=srv.url, api_key="none")
    msg = client.messages.create(model="qwen3-think", max_tokens=MAX, messages=MSGS,
                                 extra_body={"temperature": 0})
    thinking = [b.thinking for b in msg.content if b.type == "thinking"]
    text = [b.text for b in msg.content if b.type == "text"]
    assert thinking == [reasoning]
    assert "".join(text) == content


def test_anthropic_request_budget_closes_earlier(srv, reference):
    anthropic = pytest.importorskip("anthropic")
    _, _, toks = reference
    client = anthropic.Anthropic(base_url=srv.url, api_key="none")
    small = 3
    with client.messages.stream(model="qwen3-think", max_tokens=MAX, messages=MSGS,
                                thinking={"type": "enabled", "budget_tokens": small},
                                extra_body={"temperature": 0}) as stream:
        thinking_deltas = "".join(ev.delta.thinking for ev in stream
                                  if ev.type == "content_block_delta" and
                                  ev.delta.type == "thinking_delta")
        msg = stream.get_final_message()
    thinking = [b.thinking for b in msg.content if b.type == "thinking"]
    assert thinking == ["".join(toks[:small]).strip()]
    assert thinking_deltas.strip() == thinking[0]
    assert msg.usage.output_tokens == MAX


def test_responses_and_ollama_split_match(srv, reference):
    reasoning, content, _ = reference
    r = post(srv, "/v1/responses", {"input": MSGS, "max_output_tokens": MAX,
                                    "temperature": 0})
    items = {it["type"]: it for it in r["output"]}
    got_reasoning = "".join(c["text"] for c in items["reasoning"]["content"])
    assert got_reasoning == reasoning
    assert "".join(c["text"] for c in items["message"]["content"]) == content
    o = post(srv, "/api/chat", {"model": "qwen3-think", "messages": MSGS, "stream": False,
                                "think": True,
                                "options": {"temperature": 0, "num_predict": MAX}})
    assert o["message"]["thinking"] == reasoning
    assert o["message"]["content"] == content
