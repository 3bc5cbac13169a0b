"""Chat output parsing against the real chat templates, rendered by jinja2 (pinned in
tests/requirements.txt) the way the transformers stack renders them.

For each template that can write tool calls, an assistant message with one or two calls (and
one with plain content) is rendered after a user turn; the text after the generation prompt is
exactly what the model would have generated. Parsing it back (build/tests/chat/output_tool, in
one piece and streamed byte by byte) must give the same calls, arguments and content. (Which
template is which family is checked in output_test.c.)
"""
import datetime
import json
import os
import subprocess
import tempfile

import pytest

jinja2 = pytest.importorskip("jinja2")
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

BUILD = os.environ.get("OB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                  "shared"))
TOOL = os.path.join(BUILD, "tests", "chat", "output_tool")
TEMPLATES = os.path.join(SHARED, "templates")

# template file -> (family name, how many calls one assistant turn may hold)
CASES = {
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("llama3", 1),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("llama3", 1),
    "meta-llama-Llama-3.3-70B-Instruct.jinja": ("llama3", 1),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("hermes", 2),
    "Qwen-QwQ-32B.jinja": ("hermes", 2),
    "Qwen-Qwen3-0.6B.jinja": ("hermes", 2),
    "Qwen3-Coder.jinja": ("qwen3-coder", 2),
    "Qwen3.5-4B.jinja": ("qwen3-coder", 2),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": ("deepseek-r1", 2),
    "deepseek-ai-DeepSeek-V3.1.jinja": ("deepseek-v3.1", 2),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("mistral", 2),
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": ("mistral", 2),
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": ("command-r7b", 2),
    "google-gemma-4-31B-it.jinja": ("gemma4", 2),
    "openai-gpt-oss-120b.jinja": ("gpt-oss", 1),
}

# The tokens that end a turn: generation stops there (the stop token itself is kept, as a
# server that passes special tokens through would), so what a template writes after it is the
# next turn, not model output.
STOP = {
    "llama3": ["<|eot_id|>", "<|eom_id|>"], "hermes": ["<|im_end|>"],
    "qwen3-coder": ["<|im_end|>"], "deepseek-r1": ["<｜end▁of▁sentence｜>"],
    "deepseek-v3.1": ["<｜end▁of▁sentence｜>"], "mistral": ["</s>"],
    "command-r7b": ["<|END_OF_TURN_TOKEN|>"], "gemma4": ["<turn|>"],
    "gpt-oss": ["<|call|>", "<|return|>"],
}


def cut_at_stop(family, text):
    ends = [text.find(t) + len(t) for t in STOP[family] if t in text]
    return text[:min(ends)] if ends else text


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "City"},
        "days": {"type": "integer", "description": "Days ahead"},
        "zip": {"type": "string", "description": "Postal code"}},
        "required": ["location"]}}}]

CALLS = [
    # "zip" is text that reads as a number: only the schema keeps it a string in XML forms.
    {"name": "get_weather", "arguments": {"location": "Paris", "days": 3, "zip": "75001"}},
    {"name": "get_weather", "arguments": {"location": "Zürich, \"CH\"", "days": 1}},
]


def environment():
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env


def render(src, messages, gen):
    return environment().from_string(src).render(
        messages=messages, tools=TOOLS, add_generation_prompt=gen, bos_token="<s>",
        eos_token="</s>")


def generated_part(src, messages):
    """The text after the generation prompt, and that prompt when it is an exact prefix."""
    prompt = render(src, messages[:-1], True)
    full = render(src, messages, False)
    if full.startswith(prompt):
        return full[len(prompt):], prompt
    # Templates that write the turn differently from the generation prompt (an empty thought
    # channel, a closed <think>): cut at the last line or tag boundary both share.
    n = len(os.path.commonprefix([prompt, full]))
    while n > 0 and full[n - 1] not in "\n>":
        n -= 1
    return full[n:], None


def parse(family, text, prompt, stream):
    args = [TOOL, family] + (["--stream"] if stream else [])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(prompt or "")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as t:
        json.dump(TOOLS, t)
    try:
        if prompt is not None:
            args += ["--prompt", f.name]
        args += ["--tools", t.name]
        proc = subprocess.run(args, input=text.encode(), capture_output=True, timeout=60)
    finally:
        os.unlink(f.name)
        os.unlink(t.name)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


def template(name):
    path = os.path.join(TEMPLATES, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found")
    if not os.access(TOOL, os.X_OK):
        pytest.skip(f"{TOOL} not built (run make test)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def assistant_with_calls(n):
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": f"call{i}abcd", "type": "function", "function": CALLS[i]} for i in range(n)]}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("n_calls", [1, 2])
@pytest.mark.parametrize("stream", [False, True])
def test_template_calls_parse_back(name, n_calls, stream):
    family, most = CASES[name]
    if n_calls > most:
        pytest.skip(f"{name} writes at most {most} call per turn")
    src = template(name)
    messages = [{"role": "user", "content": "Weather in Paris?"}, assistant_with_calls(n_calls)]
    text, prompt = generated_part(src, messages)
    text = cut_at_stop(family, text)
    got = parse(family, text, prompt, stream)
    assert got["invalid"] == 0, (text, got)
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == \
        [(c["name"], c["arguments"]) for c in CALLS[:n_calls]], text
    assert got["content"] == "", (text, got)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("stream", [False, True])
def test_template_content_parses_back(name, stream):
    family, _ = CASES[name]
    src = template(name)
    answer = "It is sunny in Paris: 21 °C.\n\nEnjoy <b>the</b> day!"
    messages = [{"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": answer}]
    text, prompt = generated_part(src, messages)
    text = cut_at_stop(family, text)
    got = parse(family, text, prompt, stream)
    assert got["tool_calls"] == [] and got["invalid"] == 0, (text, got)
    assert got["content"] == answer, text

