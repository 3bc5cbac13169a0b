"""Mixture-of-experts (qwen3moe) against llama.cpp (pinned llama-cpp-python) on synthetic models
written by `outboard synth --arch qwen3moe`: qwen3's attention (per-head q/k norms, head size
!= n_embd / n_head) and, in each of two layers, a router over 8 experts of which 2 run per
token (expert FFN 512 wide, n_embd 256), in every tensor type the CPU runs experts in.

Over 64 positions with the prompt in one batch and again token by token, at position 1500,
and greedy generation. The tolerance rule is test_logits.py's: max |ours - llama.cpp| /
reference logit range, F32 1e-3, other types 2e-2, argmax equal wherever the reference top-2
gap is outside the band. The router is F32 in every file (as the converter writes it), so the
expert choices of both engines see the same hidden state up to rounding; a flip would show as
a large difference at one position and fail the test.
"""
import os

import numpy as np
import pytest

from conftest import BUILD, llama_cpp_logits, outboard, outboard_logits
from test_logits import TOL, QUANT_TOL, check

TYPES = ["f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k", "q5_k", "q3_k", "q2_k"]
SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("moe")


def synth(synth_dir, qtype, *extra):
    path = synth_dir / f"qwen3moe-{qtype}{'-'.join(('',) + extra)}.gguf"
    if not path.exists():
        outboard("synth", "--arch", "qwen3moe", "--shape", "tiny", "--type", qtype, "-o", path,
                 *extra)
    return str(path)


def tokens(n, seed):
    rng = np.random.default_rng(seed)
    return [1] + rng.integers(3, 259, size=n - 1).tolist()


@pytest.mark.parametrize("qtype", TYPES)
def test_qwen3moe_logits_match_llama_cpp(qtype, synth_dir, tmp_path):
    path = synth(synth_dir, qtype)
    toks = tokens(64, 7)
    ref = llama_cpp_logits(path, toks)
    check(outboard_logits(path, toks, tmp_path), ref, qtype, f"qwen3moe {qtype}, one batch")
    check(outboard_logits(path, toks, tmp_path, chunk=1), ref, qtype,
          f"qwen3moe {qtype}, token by token")


@pytest.mark.skipif(SANITIZED, reason="1500-position reference runs skipped under sanitizers "
                                      "(slow); the normal pass runs them")
@pytest.mark.parametrize("qtype", ["f32", "q8_0", "q4_k"])
def test_qwen3moe_logits_at_position_1500(qtype, synth_dir, tmp_path):
    path = synth(synth_dir, qtype)
    toks = tokens(1504, 11)
    ref = llama_cpp_logits(path, toks, n_ctx=1504)[-4:]
    check(outboard_logits(path, toks, tmp_path, ctx=1504)[-4:], ref, qtype,
          f"qwen3moe {qtype}, positions 1500..1503")
    check(outboard_logits(path, toks, tmp_path, ctx=1504, chunk=333)[-4:], ref, qtype,
          f"qwen3moe {qtype}, 1504 tokens in pieces of 333")


def llama_cpp_greedy(model, prompt, n):
    """llama.cpp's greedy tokens and, per step, the gap between its top two logits and the
    range of the logits."""
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_threads=1, verbose=False,
                          logits_all=True)
    llm.eval(prompt)
    out, gaps = [], []
    for _ in range(n):
        s = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        top = np.sort(s)[-2:]
        out.append(int(np.argmax(s)))
        gaps.append((top[1] - top[0], s.max() - s.min()))
        llm.eval([out[-1]])
    llm.close()
    return out, gaps


@pytest.mark.parametrize("qtype", ["f32", "q8_0", "q4_k"])
def test_qwen3moe_greedy_matches_llama_cpp(qtype, synth_dir):
    """The same 48 tokens, or the same up to a step where llama.cpp's top two are within the
    tolerance band (a near tie either engine may break either way)."""
    path = synth(synth_dir, qtype)
    prompt = tokens(12, 3)
    proc = outboard("run", "-m", path, "--tokens", ",".join(map(str, prompt)), "-n", 48,
                    "--temp", 0, "--ids", "--ignore-eos", "--threads", 2)
    ours = [int(t) for t in proc.stdout.split()]
    ref, gaps = llama_cpp_greedy(path, prompt, 48)
    tol = TOL.get(qtype.upper(), QUANT_TOL)
    for i, (a, b) in enumerate(zip(ours, ref)):
        if a != b:
            gap, rng = gaps[i]
            assert gap <= tol * rng, (f"{qtype}: step {i}: outboard {a}, llama.cpp {b}, top-2 "
                                      f"gap {gap:.4g} is clear (band {tol * rng:.4g})")
            break
    else:
        assert len(ours) == len(ref) == 48


def test_merged_gate_up_equals_separate(synth_dir, tmp_path):
    """ffn_gate_up_exps (gate rows then up rows per expert) holding the same values as
    separate ffn_gate_exps and ffn_up_exps gives the same logits, bit for bit."""
    toks = tokens(40, 5)
    sep = outboard_logits(synth(synth_dir, "q4_k"), toks, tmp_path)
    mer = outboard_logits(synth(synth_dir, "q4_k", "--merged-experts"), toks, tmp_path)
    assert np.array_equal(sep, mer)


def test_info_shows_experts(synth_dir):
    path = synth(synth_dir, "f32")
    out = outboard("info", path).stdout
    assert "experts           8, 2 used per token" in out, out
    # per layer 8 experts of 3 matrices 256 x 512, 2 of them active
    expert = 3 * 256 * 512
    proc = outboard("info", path, "--json")
    import json
    info = json.loads(proc.stdout)
    assert info["expert_count"] == 8 and info["expert_used_count"] == 2
    assert info["parameters"] - info["parameters_active"] == 2 * 6 * expert


HOSTILE = [("expert_used_count", 9, "expert_used_count 9"),
           ("expert_used_count", 0, "expert_used_count 0"),
           ("expert_count", 100000, "expert_count 100000"),
           ("expert_count", 4, "blk.0.ffn_gate_inp.weight': shape [256, 8, 1, 1], expected"),
           ("expert_feed_forward_length", 0, "expert_feed_forward_length 0"),
           ("expert_feed_forward_length", 1 << 30, "expert_feed_forward_length 1073741824"),
           ("expert_feed_forward_length", 256, "blk.0.ffn_gate_exps.weight': shape [256, 512, "
                                               "8, 1], expected [256, 256, 8]")]


@pytest.mark.parametrize("key,value,needle", HOSTILE, ids=[f"{h[0]}={h[1]}" for h in HOSTILE])
def test_hostile_expert_metadata_is_refused(key, value, needle, synth_dir, tmp_path):
    """A synthetic file with one expert key changed in place: a clear error naming the key or
    the tensor whose shape no longer fits, never a crash."""
    import shutil
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "hostile.gguf"
    shutil.copy(synth(synth_dir, "q8_0"), path)
    r = gguf.GGUFReader(path, "r+")
    f = r.fields[f"qwen3moe.{key}"]
    f.parts[f.data[0]][0] = value
    del r
    proc = outboard("run", "-m", path, "--tokens", "1,2,3", "-n", 2, check=False)
    assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr


def test_cuda_device_refuses_qwen3moe(synth_dir):
    path = synth(synth_dir, "f32")
    proc = outboard("run", "-m", path, "--tokens", "1,2,3", "-n", 2, "--device", "cuda",
                    check=False)
    assert proc.returncode == 1 and "architecture 'qwen3moe'" in proc.stderr, proc.stderr
