"""Constrained decoding through a real `outboard serve` process (stories260K, whose generic
ChatML template writes tool calls in the Hermes format):

- a corpus of JSON schemas (nested objects, enums, arrays, anyOf / oneOf, $ref, allOf, numbers
  and integers with ranges, string lengths, patterns, formats, const): every answer, greedy and
  sampled at temperature 1 with several seeds, streamed and not, in the OpenAI dialect
  (response_format json_schema) and the Ollama one (format), validates with `jsonschema`;
- response_format json_object / Ollama format "json" give a JSON object;
- the `grammar` field (GBNF) in both dialects: answers match the same language as a regex;
- tool_choice "required" and a named function give a call of a declared tool whose arguments
  validate against its parameters, streamed and not;
- schema keywords that cannot be enforced, and grammars that do not compile, are 400s naming the
  keyword or the line:column, in each dialect's error shape.
"""
import json
import re

import pytest

from test_serve_http import MODEL_ID, Server

jsonschema = pytest.importorskip("jsonschema")

NAME = {"type": "string", "minLength": 1, "maxLength": 12}
SCHEMAS = [
    {"type": "object", "properties": {"name": NAME}, "required": ["name"]},
    {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 120}},
     "required": ["age"]},
    {"type": "object", "properties": {"t": {"type": "number", "minimum": -5.5, "maximum": 40}},
     "required": ["t"]},
    {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 10,
                                            "exclusiveMaximum": 20}}, "required": ["n"]},
    {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
     "required": ["x", "y"]},
    {"type": "object", "properties": {"kind": {"enum": ["cat", "dog", "bird"]},
                                      "legs": {"type": "integer", "minimum": 0, "maximum": 8}},
     "required": ["kind", "legs"]},
    {"type": "object", "properties": {"ok": {"type": "boolean"}, "none": {"type": "null"}},
     "required": ["ok", "none"]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": NAME, "maxItems": 3}},
     "required": ["tags"]},
    {"type": "object", "properties": {"v": {"type": "array", "items": {"type": "integer"},
                                            "minItems": 2, "maxItems": 4}}, "required": ["v"]},
    {"type": "object", "properties": {
        "person": {"type": "object", "properties": {
            "name": NAME, "address": {"type": "object", "properties": {
                "city": NAME, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                "required": ["city", "zip"]}}, "required": ["name", "address"]}},
     "required": ["person"]},
    {"type": "object", "properties": {"id": {"anyOf": [{"type": "integer", "minimum": 0,
                                                         "maximum": 999}, NAME]}},
     "required": ["id"]},
    {"type": "object", "properties": {"v": {"oneOf": [{"type": "boolean"}, {"type": "null"}]}},
     "required": ["v"]},
    {"$defs": {"pt": {"type": "object", "properties": {
        "x": {"type": "integer", "minimum": -9, "maximum": 9},
        "y": {"type": "integer", "minimum": -9, "maximum": 9}}, "required": ["x", "y"]}},
     "type": "object", "properties": {"a": {"$ref": "#/$defs/pt"}, "b": {"$ref": "#/$defs/pt"}},
     "required": ["a", "b"]},
    {"definitions": {"color": {"enum": ["red", "green", "blue"]}}, "type": "object",
     "properties": {"fg": {"$ref": "#/definitions/color"},
                    "bg": {"$ref": "#/definitions/color"}}, "required": ["fg"]},
    {"type": "object", "properties": {"a": NAME, "b": NAME, "c": NAME}, "required": ["b"]},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}},
     "additionalProperties": False, "required": ["a"]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]},
               {"type": "object", "properties": {"b": {"const": 7}}, "required": ["b"]}]},
    {"type": "object", "properties": {"v": {"const": {"k": [1, "two", None]}}},
     "required": ["v"]},
    {"type": "object", "properties": {"d": {"type": "string", "format": "date"},
                                      "u": {"type": "string", "format": "uuid"}},
     "required": ["d", "u"]},
    {"type": "object", "properties": {"code": {"type": "string",
                                               "pattern": "^[A-Z]{2}-[0-9]{2,3}$"}},
     "required": ["code"]},
    {"type": "object", "properties": {"s": {"type": ["string", "null"], "maxLength": 8}},
     "required": ["s"]},
    {"type": "object", "properties": {"items": {"type": "array", "maxItems": 3, "items": {
        "type": "object", "properties": {"sku": NAME, "qty": {"type": "integer", "minimum": 1,
                                                              "maximum": 50}},
        "required": ["sku", "qty"]}}}, "required": ["items"]},
    {"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 1, "maxItems": 5},
    {"enum": ["alpha", "beta", 3, None, True]},
    {"type": "integer", "minimum": -1000, "maximum": -100},
    {"type": "object", "properties": {"m": {"type": "object", "properties": {
        "n": {"type": "object", "properties": {"o": {"type": "array", "maxItems": 2, "items": {
            "type": "number", "minimum": 0, "maximum": 1}}}, "required": ["o"]}},
        "required": ["n"]}}, "required": ["m"]},
    {"type": "object", "properties": {"p": {"type": "number", "exclusiveMinimum": 0,
                                            "maximum": 2.5}}, "required": ["p"]},
]
RUNS = [dict(temperature=0), dict(temperature=1, seed=1), dict(temperature=1, seed=2),
        dict(temperature=1, seed=3)]


@pytest.fixture(scope="module")
def srv():
    s = Server("--parallel", "4")
    try:
        yield s
    finally:
        s.stop()


def post(s, path, body, timeout=120):
    status, raw, _ = s.request("POST", path, body, timeout=timeout)
    return status, raw


def sse_text(raw):
    """The content deltas of an OpenAI SSE stream, joined."""
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            ev = json.loads(line[6:])
            for c in ev.get("choices", []):
                out.append(c.get("delta", {}).get("content") or "")
    return "".join(out)


def openai_json(s, schema, stream, **kw):
    body = {"messages": [{"role": "user", "content": "Answer in JSON."}], "max_tokens": 600,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "answer", "schema": schema,
                                                "strict": True}},
            "stream": stream, **kw}
    status, raw = post(s, "/v1/chat/completions", body)
    assert status == 200, raw
    if stream:
        return sse_text(raw)
    doc = json.loads(raw)
    assert doc["choices"][0]["finish_reason"] == "stop", doc
    return doc["choices"][0]["message"]["content"]


def test_schema_corpus_size():
    assert len(SCHEMAS) >= 25


@pytest.mark.parametrize("i", range(len(SCHEMAS)))
def test_openai_json_schema_outputs_validate(srv, i):
    schema = SCHEMAS[i]
    for run in RUNS:
        for stream in (False, True):
            text = openai_json(srv, schema, stream, **run)
            value = json.loads(text)
            jsonschema.validate(value, schema)


@pytest.mark.parametrize("i", range(0, len(SCHEMAS), 3))
def test_ollama_format_schema_outputs_validate(srv, i):
    schema = SCHEMAS[i]
    for seed in (4, 5):
        for stream in (False, True):
            body = {"model": MODEL_ID, "prompt": "JSON:", "format": schema, "stream": stream,
                    "options": {"temperature": 1, "seed": seed, "num_predict": 600}}
            status, raw = post(srv, "/api/generate", body)
            assert status == 200, raw
            lines = [json.loads(l) for l in raw.decode().splitlines() if l.strip()]
            text = "".join(l.get("response", "") for l in lines)
            assert lines[-1]["done"] and lines[-1]["done_reason"] == "stop", lines[-1]
            jsonschema.validate(json.loads(text), schema)


def test_json_object_modes(srv):
    for seed in (1, 2, 3):
        body = {"messages": [{"role": "user", "content": "JSON please"}], "max_tokens": 400,
                "temperature": 1, "seed": seed, "response_format": {"type": "json_object"}}
        status, raw = post(srv, "/v1/chat/completions", body)
        assert status == 200, raw
        doc = json.loads(raw)
        if doc["choices"][0]["finish_reason"] == "stop":
            assert isinstance(json.loads(doc["choices"][0]["message"]["content"]), dict)
        else:  # free-form JSON may run out of tokens; what came must still be a JSON prefix
            assert doc["choices"][0]["message"]["content"].lstrip().startswith("{")
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}],
                "format": "json", "stream": False,
                "options": {"seed": seed, "temperature": 1, "num_predict": 400}}
        status, raw = post(srv, "/api/chat", body)
        assert status == 200, raw
        assert json.loads(raw)["message"]["content"].lstrip().startswith("{")


GRAMMARS = [
    ('root ::= ("yes" | "no") " " [a-z]{3,8}', r"(yes|no) [a-z]{3,8}"),
    ('root ::= num ("," num){0,4}\nnum ::= "-"? [1-9] [0-9]{0,3}  # a comment',
     r"-?[1-9][0-9]{0,3}(,-?[1-9][0-9]{0,3}){0,4}"),
    ('root ::= "<" tag ">" [^<]{0,10} "</" tag ">"\ntag ::= "b" | "i"',
     r"<(b|i)>[^<]{0,10}</(b|i)>"),
    ('root ::= ([A-Z] [a-z]+ " "?){1,3} "."', r"([A-Z][a-z]+ ?){1,3}\."),
]


@pytest.mark.parametrize("i", range(len(GRAMMARS)))
def test_gbnf_grammar_field(srv, i):
    gbnf, pattern = GRAMMARS[i]
    for seed in (1, 2, 3):
        body = {"prompt": "Once", "max_tokens": 200, "temperature": 1, "seed": seed,
                "grammar": gbnf}
        status, raw = post(srv, "/v1/completions", body)
        assert status == 200, raw
        text = json.loads(raw)["choices"][0]["text"]
        body = {"model": MODEL_ID, "prompt": "Once", "stream": False, "grammar": gbnf,
                "options": {"temperature": 1, "seed": seed, "num_predict": 200}}
        status, raw = post(srv, "/api/generate", body)
        assert status == 200, raw
        for t in (text, json.loads(raw)["response"]):
            assert re.fullmatch(pattern, t), (gbnf, t)


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": NAME, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99},
                                         "b": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["a", "b"]}}},
]


def tool_params(name):
    return next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)


def test_tool_choice_required_gives_valid_calls(srv):
    for choice in ("required", {"type": "function", "function": {"name": "add"}}):
        for seed in (1, 2, 3, 4):
            body = {"messages": [{"role": "user", "content": "What is the weather?"}],
                    "tools": TOOLS, "tool_choice": choice, "max_tokens": 1600 if seed % 2 else 500,
                    "temperature": 1, "seed": seed, "parallel_tool_calls": seed % 2 == 1}
            status, raw = post(srv, "/v1/chat/completions", body)
            assert status == 200, raw
            msg = json.loads(raw)["choices"][0]
            assert msg["finish_reason"] == "tool_calls", msg
            calls = msg["message"]["tool_calls"]
            assert 1 <= len(calls) <= (4 if seed % 2 == 1 else 1), calls
            for c in calls:
                fn = c["function"]
                if isinstance(choice, dict):
                    assert fn["name"] == "add"
                jsonschema.validate(json.loads(fn["arguments"]), tool_params(fn["name"]))


def test_tool_choice_required_streamed(srv):
    body = {"messages": [{"role": "user", "content": "Add."}], "tools": TOOLS,
            "tool_choice": "required", "max_tokens": 500, "temperature": 1, "seed": 9,
            "stream": True, "parallel_tool_calls": False}
    status, raw = post(srv, "/v1/chat/completions", body)
    assert status == 200, raw
    names, args, finish = [], {}, None
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for c in json.loads(line[6:]).get("choices", []):
            for tc in c.get("delta", {}).get("tool_calls") or []:
                if tc.get("function", {}).get("name"):
                    names.append(tc["function"]["name"])
                args[tc["index"]] = args.get(tc["index"], "") + \
                    (tc.get("function", {}).get("arguments") or "")
            finish = c.get("finish_reason") or finish
    assert finish == "tool_calls" and len(names) == 1
    jsonschema.validate(json.loads(args[0]), tool_params(names[0]))


UNSUPPORTED = [
    ({"type": "integer", "multipleOf": 3}, "multipleOf"),
    ({"type": "object", "minProperties": 1}, "minProperties"),
    ({"type": "object", "patternProperties": {"^a": {}}}, "patternProperties"),
    ({"type": "array", "uniqueItems": True}, "uniqueItems"),
    ({"type": "array", "prefixItems": [{"type": "integer"}]}, "prefixItems"),
    ({"type": "string", "pattern": "(?=a)b"}, "pattern"),
    ({"not": {"type": "string"}}, "not"),
    ({"if": {"type": "string"}, "then": {}}, "if"),
    ({"$ref": "https://example.com/s.json"}, "$ref"),
    ({"type": "object", "properties": {"a": {"type": "string", "contains": {}}}}, "contains"),
]


@pytest.mark.parametrize("i", range(len(UNSUPPORTED)))
def test_unsupported_keywords_are_400(srv, i):
    schema, keyword = UNSUPPORTED[i]
    body = {"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "n",
                                                                        "schema": schema}}}
    status, raw = post(srv, "/v1/chat/completions", body)
    assert status == 400, raw
    err = json.loads(raw)["error"]
    assert keyword in err["message"] and err["param"] == "response_format.json_schema.schema"
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}],
            "format": schema, "stream": False}
    status, raw = post(srv, "/api/chat", body)
    assert status == 400, raw
    assert keyword in json.loads(raw)["error"]


def test_bad_grammar_is_400(srv):
    status, raw = post(srv, "/v1/completions", {"prompt": "x", "grammar": 'root ::= "a" |\nb'})
    assert status == 400, raw
    assert "grammar:2:1: undefined rule 'b'" in json.loads(raw)["error"]["message"]
    status, raw = post(srv, "/api/generate", {"model": MODEL_ID, "prompt": "x",
                                              "grammar": "root ::= undefined-rule"})
    assert status == 400, raw
    assert "undefined rule 'undefined-rule'" in json.loads(raw)["error"]
    status, raw = post(srv, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "x"}], "grammar": 'root ::= "a"',
        "response_format": {"type": "json_object"}})
    assert status == 400, raw


def test_outboard_run_grammar_and_schema(tmp_path):
    import subprocess
    from test_serve_http import MODEL, OUTBOARD
    gbnf = tmp_path / "g.gbnf"
    gbnf.write_text('root ::= ("yes" | "no") " " [a-z]{3,8}\n')
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMAS[5]))
    for flag, path in (("--grammar", gbnf), ("--json-schema", schema)):
        out = subprocess.run([OUTBOARD, "run", "-m", MODEL, "-p", "Once", "-n", "300", "--seed",
                              "3", flag, str(path), "--threads", "1"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        text = out.stdout[len("Once"):].rstrip("\n")
        if flag == "--grammar":
            assert re.fullmatch(r"(yes|no) [a-z]{3,8}", text), text
        else:
            jsonschema.validate(json.loads(text), SCHEMAS[5])
    schema.write_text('{"type": "integer", "multipleOf": 2}')
    out = subprocess.run([OUTBOARD, "run", "-m", MODEL, "-p", "x", "--json-schema", str(schema)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "multipleOf" in out.stderr and str(schema) in out.stderr
