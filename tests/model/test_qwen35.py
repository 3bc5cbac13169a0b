"""qwen35 (Qwen3.5: Gated DeltaNet layers and gated full attention) against llama.cpp (pinned
llama-cpp-python) on synthetic models written by `outboard synth --arch qwen35`: 4 layers of
which the last is full attention, 2 key heads for 4 value heads (the head mapping matters),
partial RoPE (16 of 64 dims) with dimension_sections. In F32, F16, Q8_0 and Q4_K: 64 positions
in one batch and token by token, and positions 1000..1003 (the recurrence over 16 chunks of
64, across n_batch passes), also fed in pieces of 333 (chunk boundaries inside pieces).
Tolerances are test_logits.py's. Greedy generations equal llama.cpp's token for token where the
reference top-2 gap is clear. The truncation and memory checks go through kv_tool; keys patched
to hostile values are refused at load by name.
"""
import os
import shutil

import numpy as np
import pytest

from conftest import BUILD, llama_cpp_logits, outboard, outboard_logits
from test_families import kv_tool, tokens
from test_logits import TOL, QUANT_TOL, check

TYPES = ["f32", "f16", "q8_0", "q4_k"]
SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("qwen35")


def synth(synth_dir, qtype):
    path = synth_dir / f"qwen35-{qtype}.gguf"
    if not path.exists():
        outboard("synth", "--arch", "qwen35", "--shape", "tiny", "--type", qtype, "-o", path)
    return str(path)


@pytest.mark.parametrize("qtype", TYPES)
def test_qwen35_logits_match_llama_cpp(qtype, synth_dir, tmp_path):
    path = synth(synth_dir, qtype)
    toks = tokens(64, 7)
    ref = llama_cpp_logits(path, toks)
    check(outboard_logits(path, toks, tmp_path), ref, qtype, f"qwen35 {qtype}, one batch")
    check(outboard_logits(path, toks, tmp_path, chunk=1), ref, qtype,
          f"qwen35 {qtype}, token by token")


@pytest.mark.skipif(SANITIZED, reason="1004-position reference runs skipped under sanitizers "
                                      "(slow); the normal pass runs them")
@pytest.mark.parametrize("qtype", ["f32", "q4_k"])
def test_qwen35_logits_at_position_1000(qtype, synth_dir, tmp_path):
    path = synth(synth_dir, qtype)
    toks = tokens(1004, 11)
    ref = llama_cpp_logits(path, toks, n_ctx=1004)[-4:]
    ours = outboard_logits(path, toks, tmp_path, ctx=1004)[-4:]
    check(ours, ref, qtype, f"qwen35 {qtype}, positions 1000..1003")
    pieces = outboard_logits(path, toks, tmp_path, ctx=1004, chunk=333)[-4:]
    check(pieces, ref, qtype, f"qwen35 {qtype}, 1004 tokens in pieces of 333")


def llama_cpp_greedy(model, prompt, n):
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_threads=1, verbose=False,
                          logits_all=True)
    llm.eval(prompt)
    out, gaps = [], []
    for _ in range(n):
        row = np.array(llm.scores[llm.n_tokens - 1])
        top2 = np.sort(row)[-2:]
        out.append(int(np.argmax(row)))
        gaps.append((top2[1] - top2[0]) / (row.max() - row.min()))
        llm.eval([out[-1]])
    llm.close()
    return out, gaps


@pytest.mark.parametrize("qtype", ["f32", "q8_0"])
def test_qwen35_greedy_matches_llama_cpp(qtype, synth_dir):
    """Identical up to the first step whose reference top-2 gap is inside the tolerance band
    (random weights have near ties; past one, the two continuations may part)."""
    path = synth(synth_dir, qtype)
    prompt = tokens(20, 3)
    ref, gaps = llama_cpp_greedy(path, prompt, 32)
    proc = outboard("run", "-m", path, "--tokens", ",".join(map(str, prompt)), "-n", 32,
                    "--temp", 0, "--ids", "--ignore-eos", "--threads", 2)
    ours = [int(t) for t in proc.stdout.split()]
    tol = TOL.get(qtype.upper(), QUANT_TOL)
    clear = next((i for i, g in enumerate(gaps) if g <= tol), len(gaps))
    print(f"qwen35 {qtype}: {clear} steps before the first near tie")
    assert clear >= 8, f"too few clear steps ({clear}) to compare"
    assert ours[:clear] == ref[:clear], f"outboard {ours} vs llama.cpp {ref}"


def test_qwen35_truncate_restores_or_replays(synth_dir):
    """After one eval of 100 tokens the state can go back to 0, stay at 100, or go to 99 by
    evaluating the first 99 again from the checkpoint at 0 (a position below a later
    checkpoint is refused: tests/model/batch_test.c)."""
    path = synth(synth_dir, "f32")
    assert kv_tool(path, 512, 100, 0)["truncate"] == "ok"
    assert kv_tool(path, 512, 100, 100)["truncate"] == "ok"
    assert kv_tool(path, 512, 100, 99)["truncate"] == "ok"


def test_qwen35_memory_counts_kv_of_attention_layers_and_state(synth_dir):
    """Only the one full-attention layer has a KV cache (2 kv heads x 64 dims, f16, K and V);
    each of the 3 DeltaNet layers keeps, for the one sequence, two slots (live and checkpoint)
    and two prefix-reuse snapshots of conv state (3 x 512 f32) and delta-rule state (4 heads x
    64 x 64 f32)."""
    path = synth(synth_dir, "f32")
    out = kv_tool(path, 512)
    kv = 512 * 2 * 64 * 2 * 2
    state = 3 * (2 + 2) * (3 * 512 + 4 * 64 * 64) * 4
    assert int(out["kv_bytes"]) == kv + state


def test_qwen35_info_shows_layer_kinds(synth_dir):
    out = outboard("info", synth(synth_dir, "f32")).stdout
    assert "layer kinds" in out and "3 deltanet, 1 attention" in out, out
    assert "state per seq" in out and "210.0 KiB" in out, out


HOSTILE = [("qwen35.ssm.state_size", 1 << 30, "ssm keys out of range"),
           ("qwen35.ssm.time_step_rank", 3, "a multiple of group_count"),
           ("qwen35.ssm.conv_kernel", 1000, "conv_kernel 1000"),
           ("qwen35.ssm.inner_size", 7, "inner_size 7"),
           ("qwen35.full_attention_interval", 0, "full_attention_interval 0"),
           ("qwen35.rope.dimension_sections", 1 << 20, "dimension_sections[0]")]


@pytest.mark.parametrize("key,value,message", HOSTILE,
                         ids=[h[0].split(".", 1)[1] for h in HOSTILE])
def test_qwen35_hostile_keys_are_named(key, value, message, synth_dir, tmp_path):
    """A key patched to a value no real file has: refused at load with a message naming it."""
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "hostile.gguf"
    shutil.copy(synth(synth_dir, "f32"), path)
    r = gguf.GGUFReader(path, "r+")
    f = r.fields[key]
    f.parts[f.data[0]][0] = value
    del r
    proc = outboard("run", "-m", path, "--tokens", "1,2,3", "-n", 2, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr


def with_recurrent_layers(src, dst, flags, interval):
    """src rewritten with qwen35.attention.recurrent_layers = flags and full_attention_interval
    = interval (F32 files only: their tensors copy as plain arrays)."""
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, "qwen35")
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = interval if name == "qwen35.full_attention_interval" else f.contents()
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, value, f.types[0], sub)
    w.add_key_value("qwen35.attention.recurrent_layers", flags, gguf.GGUFValueType.ARRAY,
                    gguf.GGUFValueType.BOOL)
    for t in r.tensors:
        w.add_tensor(t.name, np.array(t.data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_qwen35_recurrent_layers_key_decides_layer_kinds(synth_dir, tmp_path):
    """attention.recurrent_layers names the DeltaNet layers one by one and wins over
    full_attention_interval (set to a contradicting 2 here): the same logits as the file that
    has only the interval."""
    src = synth(synth_dir, "f32")
    dst = str(tmp_path / "flags.gguf")
    with_recurrent_layers(src, dst, [True, True, True, False], 2)
    toks = tokens(40, 5)
    a = outboard_logits(src, toks, tmp_path)
    b = outboard_logits(dst, toks, tmp_path)
    assert np.array_equal(a, b)
    assert "3 deltanet, 1 attention" in outboard("info", dst).stdout
