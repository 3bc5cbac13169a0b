"""Model files as an attacker would write them: a copy of stories260K with one thing broken,
made by the test itself with the pinned `gguf` package (values patched in place through
GGUFReader's writable mapping), then given to the real `outboard` binary. Each must end in a
clear error that names the key, value or position, or load with a warning that names what was
ignored; never a crash, a hang or a silent run of garbage."""
import math
import shutil
import signal

import numpy as np
import pytest

from conftest import outboard, shared

gguf = pytest.importorskip("gguf")

PROMPT = ["-p", "Once upon", "-n", "8"]


def broken_copy(tmp_path, name, patch):
    """stories260K copied to tmp_path/name, then patch(reader) edits it in place."""
    path = tmp_path / name
    shutil.copy(shared("models/stories260K.gguf"), path)
    path.chmod(0o644)
    r = gguf.GGUFReader(path, "r+")
    patch(r)
    del r
    return str(path)


def set_field(r, key, value):
    f = r.fields[key]
    part = f.parts[f.data[0]]
    part[0] = value


def no_crash(proc):
    assert proc.returncode >= 0, f"killed by signal {signal.Signals(-proc.returncode).name}:\n" \
        f"{proc.stderr[-2000:]}"
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr


def nan_first_tensor(r):
    t = r.tensors[0]
    t.data.reshape(-1)[: max(1, t.data.size // 3)] = np.nan


@pytest.mark.parametrize("sampling", [[], ["--temp", "0"], ["--top-k", "0"], ["--top-k", "1"]],
                         ids=["default", "temp0", "topk0", "topk1"])
def test_nan_weights_are_an_error_naming_the_position(tmp_path, sampling):
    path = broken_copy(tmp_path, "nan.gguf", nan_first_tensor)
    proc = outboard("run", "-m", path, *PROMPT, *sampling, check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode != 0, proc.stdout
    assert "NaN" in proc.stderr and "position" in proc.stderr, proc.stderr


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), 0.0])
def test_bad_norm_epsilon_is_refused_at_load(tmp_path, value):
    key = "llama.attention.layer_norm_rms_epsilon"
    path = broken_copy(tmp_path, "eps.gguf", lambda r: set_field(r, key, value))
    proc = outboard("run", "-m", path, *PROMPT, check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode != 0
    assert key in proc.stderr, proc.stderr
    shown = "nan" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:g}")
    assert shown in proc.stderr, proc.stderr


def test_absurd_context_length_is_refused(tmp_path):
    path = broken_copy(tmp_path, "ctx.gguf",
                       lambda r: set_field(r, "llama.context_length", 2**32 - 1))
    proc = outboard("run", "-m", path, *PROMPT, check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode != 0
    assert "context_length 4294967295" in proc.stderr, proc.stderr


def test_context_beyond_training_is_refused(tmp_path):
    path = shared("models/stories260K.gguf")
    proc = outboard("run", "-m", path, *PROMPT, "--ctx", "10000000", check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode != 0
    assert "10000000" in proc.stderr and "2048" in proc.stderr, proc.stderr


def test_special_ids_outside_the_vocabulary_are_named_and_ignored(tmp_path):
    def patch(r):
        set_field(r, "tokenizer.ggml.bos_token_id", 99999)
        set_field(r, "tokenizer.ggml.eos_token_id", 4000000000)
    path = broken_copy(tmp_path, "ids.gguf", patch)
    proc = outboard("run", "-m", path, *PROMPT, "--temp", "0", check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode == 0, proc.stderr
    assert "tokenizer.ggml.bos_token_id is 99999, outside the vocabulary of 512" in proc.stderr
    assert "tokenizer.ggml.eos_token_id is 4000000000" in proc.stderr, proc.stderr


def test_meaningless_token_type_is_named(tmp_path):
    def patch(r):
        f = r.fields["tokenizer.ggml.token_type"]
        f.parts[f.data[5]][0] = 99
    path = broken_copy(tmp_path, "type.gguf", patch)
    proc = outboard("run", "-m", path, *PROMPT, "--temp", "0", check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode == 0, proc.stderr
    assert "token 5 has type 99" in proc.stderr, proc.stderr


def test_the_intact_model_still_runs_without_warnings():
    proc = outboard("run", "-m", shared("models/stories260K.gguf"), *PROMPT, "--temp", "0",
                    check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr


def test_chat_with_nan_weights_fails_with_the_position(tmp_path):
    path = broken_copy(tmp_path, "nan.gguf", nan_first_tensor)
    proc = outboard("chat", "-m", path, "-n", "4", input="Hello\n", check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode != 0
    assert "NaN" in proc.stderr and "position" in proc.stderr, proc.stderr


def test_chat_template_error_at_render_is_a_failed_run(tmp_path):
    """A script feeding `outboard chat` sees a template that fails while rendering as a
    non-zero exit status, with the template's line:column."""
    tmpl = tmp_path / "raise.jinja"
    tmpl.write_text("{{ raise_exception('no such role') }}")
    proc = outboard("chat", "-m", shared("models/stories260K.gguf"), "--template", tmpl,
                    "-n", "4", input="Hello\n", check=False, timeout=60)
    no_crash(proc)
    assert proc.returncode != 0
    assert "raise.jinja:1:" in proc.stderr and "no such role" in proc.stderr, proc.stderr
