#!/usr/bin/env python3
"""Writes the chat-template golden files: what Python's jinja2 (pinned in tests/requirements.txt)
renders for each real template in ../shared/templates and each conversation below, with the
environment configured as transformers' apply_chat_template configures it:

  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[generation-block tracker, jinja2.ext.loopcontrols])
  filters["tojson"]  = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)
  globals["raise_exception"] raises TemplateError(message)
  globals["strftime_now"](fmt) = the clock formatted (here a fixed instant, NOW)
  variables: messages, tools (None when absent), documents (None), add_generation_prompt,
             bos_token, eos_token, and the conversation's other keys.

Layout under tests/chat/golden/:
  conversations/NAME.json         the inputs (also what `outboard template --input` reads)
  TEMPLATE/NAME.txt               expected output, byte for byte
  TEMPLATE/NAME.err               expected failure: the first line is the kind ("raise" for a
                                  template's raise_exception, else the Python exception type),
                                  the second the message

Usage: python3 tests/chat/gen_template_goldens.py [--shared ../shared]
"""
import argparse
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
# 2025-03-14 12:00:00 UTC: the same calendar day in every time zone from UTC-11 to UTC+11.
NOW = 1741953600

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string"}, "limit": {"type": "integer", "default": 5}},
            "required": ["query"]}}},
]

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CALL = {"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}

CONVERSATIONS = {
    "plain": {"messages": [{"role": "user", "content": "Hello, how are you?"}],
              "add_generation_prompt": True},
    "system": {"messages": [SYSTEM, {"role": "user", "content": "What is the capital of France?"}],
               "add_generation_prompt": True},
    "multi_turn": {"messages": [
        SYSTEM,
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Tell me a joke.\nMake it short."}],
        "add_generation_prompt": True},
    "tools": {"messages": [{"role": "user", "content": "What's the weather in Paris?"}],
              "tools": TOOLS, "add_generation_prompt": True},
    "tool_calls": {"messages": [
        SYSTEM,
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
         "content": "{\"temperature\": 18, \"condition\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 18 °C and sunny in Paris."},
        {"role": "user", "content": "Thanks!"}],
        "tools": TOOLS, "add_generation_prompt": True},
    "no_generation_prompt": {"messages": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"}],
        "add_generation_prompt": False},
    "unicode": {"messages": [
        {"role": "user", "content": "Traduis « bonjour » en 日本語, s'il te plaît — \"vite\" \\ 🙂"}],
        "add_generation_prompt": True},
    "content_parts": {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Describe this."},
                                     {"type": "text", "text": "Briefly."}]}],
        "add_generation_prompt": True},
}

# Only for templates that read the fields involved.
REASONING = {
    "reasoning": {"messages": [
        {"role": "user", "content": "What is 7 * 6?"},
        {"role": "assistant", "content": "42", "reasoning_content": "7 times 6 is 42.",
         "thinking": "7 times 6 is 42."},
        {"role": "user", "content": "And 8 * 6?"}],
        "add_generation_prompt": True},
}
THINKING_OFF = {
    "thinking_off": {"messages": [{"role": "user", "content": "Quick: 2 + 2?"}],
                     "add_generation_prompt": True, "enable_thinking": False},
}

BOS, EOS = "<s>", "</s>"


class GenerationTracker(jinja2.ext.Extension):
    """transformers' {% generation %} block: renders its body unchanged."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env(now=NOW, mutable=False):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.datetime.fromtimestamp(now).strftime(format)

    # transformers' environment refuses list.append and dict.update; `mutable` is for testing
    # that outboard's (which allows them) behaves as Python does.
    cls = SandboxedEnvironment if mutable else ImmutableSandboxedEnvironment
    env = cls(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    # Not in jinja2: DeepSeek's templates (V3.2 on) expect it from their runtime (llama.cpp's
    # and outboard's have it) to read tool-call arguments given as a JSON string.
    env.filters["from_json"] = json.loads
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(source, conv, bos=BOS, eos=EOS, mutable=False):
    """Returns ("ok", text) or (kind, message) as the golden files record them."""
    variables = {"tools": None, "documents": None, "add_generation_prompt": False,
                 "bos_token": bos, "eos_token": eos}
    variables.update(conv)
    try:
        return "ok", make_env(mutable=mutable).from_string(source).render(**variables)
    except jinja2.exceptions.TemplateError as e:
        kind = "raise" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
        return kind, str(e)
    except Exception as e:  # a TypeError etc. inside the template
        return type(e).__name__, str(e)


def conversations_for(source):
    convs = dict(CONVERSATIONS)
    if "reasoning_content" in source or "thinking" in source:
        convs.update(REASONING)
    if "enable_thinking" in source:
        convs.update(THINKING_OFF)
    return convs


def write(path, data):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("OB_SHARED",
                                                       os.path.join(HERE, "../../../shared")))
    args = ap.parse_args()
    tdir = os.path.join(args.shared, "templates")
    os.makedirs(os.path.join(GOLDEN, "conversations"), exist_ok=True)
    for name, conv in {**CONVERSATIONS, **REASONING, **THINKING_OFF}.items():
        full = {"bos_token": BOS, "eos_token": EOS, **conv}
        write(os.path.join(GOLDEN, "conversations", name + ".json"),
              json.dumps(full, ensure_ascii=False, indent=1) + "\n")
    table = []
    for fname in sorted(os.listdir(tdir)):
        if not fname.endswith(".jinja"):
            continue
        with open(os.path.join(tdir, fname), encoding="utf-8", newline="") as f:
            source = f.read()
        stem = fname[:-len(".jinja")]
        out = os.path.join(GOLDEN, stem)
        os.makedirs(out, exist_ok=True)
        for old in os.listdir(out):
            os.remove(os.path.join(out, old))
        row = []
        for name, conv in conversations_for(source).items():
            kind, text = render(source, conv)
            if kind == "ok":
                write(os.path.join(out, name + ".txt"), text)
            else:
                write(os.path.join(out, name + ".err"), kind + "\n" + text + "\n")
            row.append(f"{name}={'ok' if kind == 'ok' else kind}")
        table.append(f"{stem}: " + " ".join(row))
    print("\n".join(table))


if __name__ == "__main__":
    sys.exit(main())
