"""Hostile chat templates through the commands that render them, `outboard template` and
`outboard chat`, from a template file and from a GGUF's tokenizer.chat_template:

- an operator chain 100,000 links long is refused while the template is read, with the file and
  the line:column of the operator that passed the nesting limit (the chain used to exhaust the
  C stack);
- a template that would loop for hours stops at the default wall-clock budget (5 s), with the
  template position: every render path gets the budget without asking for it.

The interpreter's own limits are unit-tested in jinja_limits_test.c; output that jinja2 can
produce too is compared with it in test_jinja_features.py.
"""
import json
import os
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")

CHAIN = "{% for m in messages %}{{ m.content }}{% endfor %}\n{{ 1" + " + 1" * 100000 + " }}"
# Each step scans a megabyte, so the clock, not the step limit, stops it.
SLOW = ("{% for m in messages %}{{ m.content }}{% endfor %}\n"
        "{% set s = 'a' * 1000000 %}{% for i in range(1000000) %}{% for j in range(1000000) %}"
        "{% set _ = s.find('b') %}{% endfor %}{% endfor %}")
BUDGET = 5  # CHAT_JINJA_MAX_SECONDS


@pytest.fixture(scope="module")
def stories():
    path = os.path.join(SHARED, "models", "stories260K.gguf")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent (OB_SHARED)")
    return path


def with_template(tmp_path, model, source, name):
    """A copy of `model` whose tokenizer.chat_template is `source` (gguf-new-metadata)."""
    tool = os.path.join(VENV_BIN, "gguf-new-metadata")
    if not os.path.exists(tool):
        pytest.skip("gguf-new-metadata absent (.venv)")
    tfile = tmp_path / (name + ".jinja")
    tfile.write_text(source)
    out = tmp_path / (name + ".gguf")
    subprocess.run([tool, model, str(out), "--chat-template-file", str(tfile), "--force"],
                   check=True, capture_output=True, timeout=120)
    return str(out)


def template_cmd(tmp_path, *source_args):
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    t0 = time.monotonic()
    proc = subprocess.run([OUTBOARD, "template", *source_args, "--input", str(conv)],
                          capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - t0


def chat_cmd(model, *args):
    t0 = time.monotonic()
    proc = subprocess.run([OUTBOARD, "chat", "-m", model, "--threads", "1", *args], input="hi\n",
                          capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - t0


def test_long_chain_in_a_template_file(tmp_path):
    path = tmp_path / "chain.jinja"
    path.write_text(CHAIN)
    proc, _ = template_cmd(tmp_path, "--file", str(path))
    assert proc.returncode == 1
    assert "chain.jinja:2:802: expression nested deeper than 200 levels" in proc.stderr


def test_long_chain_in_a_gguf_template(tmp_path, stories):
    model = with_template(tmp_path, stories, CHAIN, "chain")
    proc, _ = template_cmd(tmp_path, "-m", model)
    assert proc.returncode == 1
    assert "chain.gguf:2:802: expression nested deeper than 200 levels" in proc.stderr
    proc, _ = chat_cmd(model)
    assert "chain.gguf:2:802: expression nested deeper than 200 levels" in proc.stderr


def test_slow_template_file_stops_at_the_default_budget(tmp_path):
    path = tmp_path / "slow.jinja"
    path.write_text(SLOW)
    proc, took = template_cmd(tmp_path, "--file", str(path))
    assert proc.returncode == 1
    assert "slow.jinja:2:" in proc.stderr
    assert f"template rendering took longer than {BUDGET} s" in proc.stderr
    assert took < BUDGET + 30


def test_slow_gguf_template_stops_in_chat(tmp_path, stories):
    model = with_template(tmp_path, stories, SLOW, "slow")
    proc, took = chat_cmd(model)
    assert "slow.gguf:2:" in proc.stderr
    assert f"template rendering took longer than {BUDGET} s" in proc.stderr
    assert took < BUDGET + 60
