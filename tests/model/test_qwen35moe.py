"""qwen35moe (Qwen3.5 MoE) and qwen3next (Qwen3-Next) against llama.cpp (pinned
llama-cpp-python) on synthetic models written by `outboard synth --arch qwen35moe|qwen3next`:
qwen35's hybrid stack (3 Gated DeltaNet layers, then gated full attention; 2 key heads for 4
value heads) with, in every layer, 8 experts of which 2 run per token plus a shared expert
scaled by its sigmoid gate. qwen3next differs in its fused beta/alpha projection (ssm_ba), in
which key head a value head reads (adjacent, not tiled: with 2 key and 4 value heads the two
orders give different models) and in plain NeoX RoPE without dimension sections.

64 positions in one batch and token by token, in F32, Q4_K and the Q4_K_M preset (per tensor
types as llama-quantize picks them), the merged ffn_gate_up_exps form, positions 1000..1003 in
F32 (the recurrence over many chunks, fed in pieces of 333) and all 1004 positions in Q4_K.
Tolerances are test_logits.py's. The prompts are ones without a router near-tie in the
quantized files: where the top-k choice of a layer is within rounding of another (random
weights have such ties at a few prompts, mostly in Q8_0), the two engines may pick different
experts at that position and no tolerance short of the whole logit range covers it; F32 files
agree to ~1e-5 everywhere.
"""
import os

import numpy as np
import pytest

from conftest import BUILD, llama_cpp_logits, outboard, outboard_logits, renamed
from test_families import tokens
from test_logits import check

ARCHS = ["qwen35moe", "qwen3next"]
SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("qwen35moe")


def synth(synth_dir, arch, qtype, *extra):
    path = synth_dir / f"{arch}-{qtype}{'-'.join(('',) + extra)}.gguf"
    if not path.exists():
        outboard("synth", "--arch", arch, "--shape", "tiny", "--type", qtype, "-o", path,
                 *extra)
    return str(path)


@pytest.mark.parametrize("qtype", ["f32", "q4_k", "q4_k_m"])
@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_llama_cpp(arch, qtype, synth_dir, tmp_path):
    path = synth(synth_dir, arch, qtype)
    toks = tokens(64, 7)
    ref = llama_cpp_logits(path, toks)
    tol_type = "q4_k" if qtype == "q4_k_m" else qtype
    check(outboard_logits(path, toks, tmp_path), ref, tol_type, f"{arch} {qtype}, one batch")
    check(outboard_logits(path, toks, tmp_path, chunk=1), ref, tol_type,
          f"{arch} {qtype}, token by token")


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_experts_match_llama_cpp(arch, synth_dir, tmp_path):
    """ffn_gate_up_exps (gate rows then up rows per expert) holds the same values as the
    separate tensors: the same logits as llama.cpp on the merged file, and as ours on the
    separate one."""
    merged = synth(synth_dir, arch, "q4_k", "--merged-experts")
    toks = tokens(64, 7)
    ours = outboard_logits(merged, toks, tmp_path)
    check(ours, llama_cpp_logits(merged, toks), "q4_k", f"{arch} merged experts")
    separate = outboard_logits(synth(synth_dir, arch, "q4_k"), toks, tmp_path)
    assert np.allclose(ours, separate, rtol=0, atol=1e-4 * np.ptp(separate))


@pytest.mark.skipif(SANITIZED, reason="1004-position reference runs skipped under sanitizers "
                                      "(slow); the normal pass runs them")
@pytest.mark.parametrize("arch", ARCHS)
def test_logits_at_position_1000(arch, synth_dir, tmp_path):
    """F32: positions 1000..1003 within the F32 tolerance, the prompt fed in pieces of 333
    (chunk boundaries inside pieces, the state carried across calls)."""
    path = synth(synth_dir, arch, "f32")
    toks = tokens(1004, 11)
    ref = llama_cpp_logits(path, toks, n_ctx=1004)[-4:]
    check(outboard_logits(path, toks, tmp_path, ctx=1004, chunk=333)[-4:], ref, "f32",
          f"{arch} f32, 1004 tokens in pieces of 333")


@pytest.mark.skipif(SANITIZED, reason="1004-position reference runs skipped under sanitizers "
                                      "(slow); the normal pass runs them")
@pytest.mark.parametrize("arch", ["qwen3next"])
def test_quantized_logits_over_1004_positions(arch, synth_dir, tmp_path):
    """Q4_K over 1004 positions: across that many, some positions have a router near-tie (about
    1 in 100 here), where the engines may choose different experts; every other position is
    within the Q4_K tolerance and the typical one far inside it. A wrong layer (the other head
    order, a wrong norm) puts nearly every position at 0.1 or more."""
    path = synth(synth_dir, arch, "q4_k")
    toks = tokens(1004, 11)
    ref = llama_cpp_logits(path, toks, n_ctx=1004)
    ours = outboard_logits(path, toks, tmp_path, ctx=1004, chunk=333)
    rel = np.abs(ours - ref).max(axis=1) / np.ptp(ref, axis=1)
    print(f"{arch} q4_k: median {np.median(rel):.3g}, over 2e-2 at {np.sum(rel > 2e-2)} of "
          f"{len(rel)} positions, worst {rel.max():.3g}")
    assert np.median(rel) < 1e-2 and np.mean(rel > 2e-2) < 0.04


def active_params(path):
    """Parameters one token uses, from the file: every tensor, less the experts not chosen."""
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    n = r.fields[f"{arch}.expert_count"].contents()
    k = r.fields[f"{arch}.expert_used_count"].contents()
    total = sum(int(t.n_elements) for t in r.tensors)
    unused = sum(int(t.n_elements) // n * (n - k) for t in r.tensors if "_exps." in t.name)
    return total, total - unused


@pytest.mark.parametrize("arch", ARCHS)
def test_info_shows_kinds_experts_and_state(arch, synth_dir):
    """Layer kinds, experts, active parameters per token and the recurrent state per sequence:
    3 DeltaNet layers x (conv state 3 x 512 + delta-rule state 4 heads x 64 x 64) f32."""
    path = synth(synth_dir, arch, "f32")
    out = outboard("info", path).stdout
    total, active = active_params(path)
    assert active < total
    assert "3 deltanet, 1 attention" in out, out
    assert "8, 2 used per token" in out, out
    assert f"active params     {active} " in out, out
    state_kib = 3 * (3 * 512 + 4 * 64 * 64) * 4 / 1024
    assert f"state per seq     {state_kib:.1f} KiB" in out, out


def test_qwen35moe_has_no_dense_width(synth_dir):
    """The converter writes no feed_forward_length for Qwen3.5 MoE; the loader does not need
    one (and llama.cpp reads the same file)."""
    gguf = pytest.importorskip("gguf")
    path = synth(synth_dir, "qwen35moe", "f32")
    assert "qwen35moe.feed_forward_length" not in gguf.GGUFReader(path).fields
    assert "qwen3next.feed_forward_length" in gguf.GGUFReader(
        synth(synth_dir, "qwen3next", "f32")).fields


def test_qwen3next_truncate_restores_or_replays(synth_dir):
    from test_families import kv_tool
    path = synth(synth_dir, "qwen3next", "f32")
    assert kv_tool(path, 512, 100, 0)["truncate"] == "ok"
    assert kv_tool(path, 512, 100, 99)["truncate"] == "ok"


@pytest.mark.parametrize("old,new,message", [
    ("blk.0.attn_qkv.weight", "blk.0.ssm_in.weight", "fused qkvz projection of early"),
    ("blk.1.ssm_ba.weight", "blk.1.ssm_alpha.weight", "'blk.1.ssm_ba.weight' not found"),
    ("blk.2.ffn_gate_inp_shexp.weight", "blk.2.gate.weight",
     "'blk.2.ffn_gate_inp_shexp.weight' not found"),
    # the tiny shape: conv_kernel 4, conv_dim (2 * 2 + 4) * 64, head_dim 64, 8 experts of 256
    ("blk.0.ssm_conv1d.weight", "blk.0.conv1d.weight",
     "'blk.0.ssm_conv1d.weight' not found (expected [4, 512])"),
    ("blk.3.attn_k_norm.weight", "blk.3.k_norm.weight",
     "'blk.3.attn_k_norm.weight' not found (expected [64])"),
    ("blk.3.ffn_down_exps.weight", "blk.3.down.weight",
     "'blk.3.ffn_down_exps.weight' not found (expected [256, 256, 8])"),
], ids=["legacy_ssm_in", "no_ssm_ba", "no_shared_gate", "no_conv", "no_k_norm", "no_down_exps"])
def test_qwen3next_missing_tensors_are_named(old, new, message, synth_dir, tmp_path):
    """A file without a tensor the architecture needs is refused at load, naming it."""
    dst = str(tmp_path / "renamed.gguf")
    renamed(synth(synth_dir, "qwen3next", "f32"), dst, old, new)
    proc = outboard("run", "-m", dst, "--tokens", "1,2,3", "-n", 2, check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr
