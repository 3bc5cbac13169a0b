"""Chat templates rendered by `outboard template` against jinja2 (the reference, pinned).

For every real template in $OB_SHARED/templates and every conversation recorded for it in
tests/chat/golden/ (written by gen_template_goldens.py with jinja2 configured as transformers
configures it), the output must be byte-identical; where jinja2 failed, outboard must fail too,
and where the template itself raised (raise_exception), with the template's message.

The default model's template (models/*.gguf, when fetched) is checked live: jinja2 renders it
here from the GGUF's tokenizer.chat_template (read with the gguf package) and outboard renders
it with -m.
"""
import glob
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(HERE, "golden")
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")

sys.path.insert(0, HERE)
import gen_template_goldens as gen  # noqa: E402


def cases():
    out = []
    for tdir in sorted(glob.glob(os.path.join(GOLDEN, "*"))):
        stem = os.path.basename(tdir)
        if stem == "conversations" or not os.path.isdir(tdir):
            continue
        for f in sorted(os.listdir(tdir)):
            name, ext = os.path.splitext(f)
            out.append(pytest.param(stem, name, ext, id=f"{stem}/{name}"))
    return out


def run_template(args, conv_path):
    return subprocess.run([OUTBOARD, "template", *args, "--input", conv_path, "--now",
                           str(gen.NOW)], capture_output=True, timeout=60)


@pytest.mark.parametrize("stem,conv,ext", cases())
def test_golden(stem, conv, ext):
    template = os.path.join(SHARED, "templates", stem + ".jinja")
    if not os.path.exists(template):
        pytest.skip(f"{template} not found (OB_SHARED)")
    conv_path = os.path.join(GOLDEN, "conversations", conv + ".json")
    proc = run_template(["--file", template], conv_path)
    with open(os.path.join(GOLDEN, stem, conv + ext), "rb") as f:
        expected = f.read()
    if ext == ".txt":
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stdout == expected
        return
    kind, message = expected.decode().split("\n", 1)
    assert proc.returncode == 1, f"expected a failure ({kind}), got output {proc.stdout[:300]!r}"
    assert proc.stdout == b""
    if kind == "raise":
        assert message.strip() in proc.stderr.decode(), proc.stderr


def test_every_template_has_goldens():
    tdir = os.path.join(SHARED, "templates")
    if not os.path.isdir(tdir):
        pytest.skip("no shared templates")
    for f in os.listdir(tdir):
        if f.endswith(".jinja"):
            done = os.listdir(os.path.join(GOLDEN, f[:-6]))
            assert len(done) >= 6, f


def default_model():
    path = os.environ.get("OB_DEFAULT_MODEL") or os.path.join(ROOT, "models",
                                                              "gemma-3-270m-q4_k_m.gguf")
    return [path] if os.path.exists(path) else []


def test_default_model_template(tmp_path):
    models = default_model()
    if not models:
        pytest.skip("no default model in models/ (scripts/fetch-default-model.sh)")
    import gguf

    reader = gguf.GGUFReader(models[0])

    def field(key):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    source = field("tokenizer.chat_template")
    if source is None:
        # outboard then uses its built-in template for the architecture, which must be the
        # maker's own: compare with jinja2 rendering that.
        if field("general.architecture") != "gemma3":
            pytest.skip(f"{models[0]} has no tokenizer.chat_template")
        source = GEMMA3
    tokens = field("tokenizer.ggml.tokens")
    bos_id, eos_id = field("tokenizer.ggml.bos_token_id"), field("tokenizer.ggml.eos_token_id")
    bos = tokens[bos_id] if bos_id is not None else None
    eos = tokens[eos_id] if eos_id is not None else None
    checked = 0
    for name, conv in gen.conversations_for(source).items():
        kind, text = gen.render(source, conv, bos, eos)
        path = tmp_path / (name + ".json")
        path.write_text(json.dumps(conv, ensure_ascii=False))
        proc = run_template(["-m", models[0]], str(path))
        if kind == "ok":
            assert proc.returncode == 0, (name, proc.stderr)
            assert proc.stdout.decode() == text, name
            checked += 1
        else:
            assert proc.returncode == 1, name
    assert checked >= 4


def test_builtin_gemma3_matches_llama_cpp(tmp_path):
    """The built-in Gemma 3 template (used when the GGUF has none) against llama.cpp's own
    Gemma formatting (llama_chat_apply_template "gemma"), an implementation written apart from
    ours, for plain conversations; llama.cpp leaves BOS to the tokenizer."""
    models = default_model()
    if not models:
        pytest.skip("no default model in models/ (scripts/fetch-default-model.sh)")
    import ctypes

    import llama_cpp

    convs = [
        [("user", "Hello")],
        [("system", "Be brief."), ("user", "What is 2+2?")],
        [("system", "S"), ("user", "a"), ("assistant", "b"), ("user", "c")],
        [("user", "x\ny"), ("assistant", " spaced "), ("user", "\u00e9t\u00e9 \U0001F600")],
    ]
    for i, conv in enumerate(convs):
        for add_gen in (True, False):
            arr = (llama_cpp.llama_chat_message * len(conv))()
            keep = []
            for j, (role, content) in enumerate(conv):
                keep += [role.encode(), content.encode()]
                arr[j].role, arr[j].content = keep[-2], keep[-1]
            buf = ctypes.create_string_buffer(1 << 14)
            n = llama_cpp.llama_chat_apply_template(b"gemma", arr, len(conv), add_gen, buf,
                                                    len(buf))
            assert 0 < n < len(buf)
            expected = b"<bos>" + buf.raw[:n]
            path = tmp_path / f"c{i}.json"
            path.write_text(json.dumps({
                "messages": [{"role": r, "content": c} for r, c in conv],
                "add_generation_prompt": add_gen}))
            proc = run_template(["-m", models[0]], str(path))
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == expected, (conv, add_gen)


# Gemma 3's template (google/gemma-3-*-it tokenizer_config.json), the default model's family;
# used here through a GGUF so the -m path (tokenizer.chat_template, BOS/EOS token texts) is
# checked even before the default model is fetched.
GEMMA3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""


@pytest.mark.parametrize("which", ["gemma3", "llama31"])
def test_template_from_gguf(tmp_path, which):
    import gguf

    if which == "gemma3":
        source, tokens, bos_id, eos_id = GEMMA3, ["<pad>", "<eos>", "<bos>", "x"], 2, 1
    else:
        path = os.path.join(SHARED, "templates", "meta-llama-Llama-3.1-8B-Instruct.jinja")
        if not os.path.exists(path):
            pytest.skip("no shared templates")
        with open(path, encoding="utf-8", newline="") as f:
            source = f.read()
        tokens, bos_id, eos_id = ["<|begin_of_text|>", "<|eot_id|>", "y"], 0, 1
    model = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(model), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_bos_token_id(bos_id)
    w.add_eos_token_id(eos_id)
    w.add_chat_template(source)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    checked = failed = 0
    for name, conv in gen.conversations_for(source).items():
        kind, text = gen.render(source, conv, tokens[bos_id], tokens[eos_id])
        path = tmp_path / (name + ".json")
        path.write_text(json.dumps(conv, ensure_ascii=False))
        proc = run_template(["-m", str(model)], str(path))
        if kind == "ok":
            assert proc.returncode == 0, (name, proc.stderr)
            assert proc.stdout.decode() == text, name
            checked += 1
        else:
            assert proc.returncode == 1, name
            if kind == "raise":
                assert text in proc.stderr.decode()
            failed += 1
    assert checked >= 4
