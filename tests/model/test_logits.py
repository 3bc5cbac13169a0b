"""Logits of every position agree with llama.cpp (llama-cpp-python, pinned) on the same file and
the same 64 tokens: stories260K and its F16/Q8_0/Q4_0 variants, and random-weight models of the
tiny shape written by `outboard synth` for every tensor type.

Tolerance: max |ours - llama.cpp| over all logits, divided by the reference logit range
(max - min) of that position, worst position. F32: 1e-3, F16/BF16: 5e-3 (half-precision KV
cache and F16 activations; summation order), quantized: 2e-2 (activations are quantized to
Q8_0/Q8_1/Q8_K as llama.cpp does, and a rounding step that flips one 8-bit activation moves
logits by about 1% of their range; such a flip propagates to later positions via attention).
Argmax must match at every position whose reference top-2 gap is wider than the tolerance
band (tol x range); nearer ties than that (random-weight models have gaps down to 5e-4) are
counted and printed, not compared. test_generate.py checks greedy tokens of the trained
stories260K models one for one.
"""
import json

import numpy as np
import pytest

from conftest import RUNNER, compare, llama_cpp_logits, outboard, outboard_logits, shared

TOL = {"F32": 1e-3, "F16": 5e-3, "BF16": 5e-3}
QUANT_TOL = 2e-2

STORIES = [("stories260K.gguf", "stories260K.greedy.json", "F32"),
           ("generated/stories260K-f16.gguf", "stories260K-f16.greedy.json", "F16"),
           ("generated/stories260K-q8_0.gguf", "stories260K-q8_0.greedy.json", "Q8_0"),
           ("generated/stories260K-q4_0.gguf", "stories260K-q4_0.greedy.json", "Q4_0")]

SYNTH_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
               "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs", "q4_k_m", "q5_k_s"]


def check(ours, ref, kind, label):
    diff, rel, mismatch, gap = compare(ours, ref)
    tol = TOL.get(kind.upper(), QUANT_TOL)
    band = tol * (ref.max(axis=1) - ref.min(axis=1))
    near_ties = np.nonzero(gap <= band)[0]
    real = [int(p) for p in mismatch if gap[p] > band[p]]
    print(f"{label}: max|diff| {diff:.3g}, max|diff|/range {rel:.3g} (tol {tol:g}), argmax "
          f"mismatches {[int(p) for p in mismatch]}, near ties {len(near_ties)}/{len(gap)}")
    assert rel <= tol, f"{label}: max|diff|/range {rel:.3g} > {tol:g}"
    assert not real, (f"{label}: argmax differs at positions {real} "
                      f"(reference top-2 gaps {gap[real]})")


@pytest.mark.parametrize("model,greedy,kind", STORIES, ids=[s[2] for s in STORIES])
def test_stories_logits_match_llama_cpp(model, greedy, kind, tmp_path):
    path = shared(f"models/{model}")
    run = json.load(open(shared(f"models/generated/{greedy}")))["runs"][0]
    tokens = (run["prompt_tokens"] + run["greedy_tokens"])[:64]
    ours = outboard_logits(path, tokens, tmp_path)
    check(ours, llama_cpp_logits(path, tokens), kind, model)


def test_decode_matches_prefill(tmp_path):
    """One token per call (decode) gives the logits of one 64-token pass (prefill)."""
    path = shared("models/stories260K.gguf")
    tokens = [1] + list(range(300, 363))
    a = outboard_logits(path, tokens, tmp_path, chunk=0)
    b = outboard_logits(path, tokens, tmp_path, chunk=1)
    c = outboard_logits(path, tokens, tmp_path, chunk=7, threads=1)
    assert np.abs(a - b).max() < 1e-4 and np.abs(a - c).max() < 1e-4


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


def synth(synth_dir, qtype, shape="tiny", extra=()):
    path = synth_dir / f"{shape}-{qtype}{''.join(extra)}.gguf"
    if not path.exists():
        proc = outboard("synth", "--shape", shape, "--type", qtype, "-o", path, *extra,
                        check=False)
        if proc.returncode != 0 and "cannot write type" in proc.stderr:
            pytest.skip(f"{qtype}: no quantizer built ({proc.stderr.strip()})")
        assert proc.returncode == 0, proc.stderr
    return str(path)


@pytest.mark.parametrize("qtype", SYNTH_TYPES)
def test_synth_logits_match_llama_cpp(qtype, synth_dir, tmp_path):
    path = synth(synth_dir, qtype)
    rng = np.random.default_rng(7)
    tokens = [1] + rng.integers(3, 259, size=63).tolist()
    ours = outboard_logits(path, tokens, tmp_path)
    check(ours, llama_cpp_logits(path, tokens), qtype, f"synth tiny {qtype}")


def cpu_has_avx2():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return {"avx2", "fma", "f16c"} <= set(flags)


# The types with AVX2 kernels on repacked rows (src/quant/repack*_avx2.c).
AVX2_REPACKED = ["q4_0", "q5_0", "q8_0", "iq4_nl", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_xs", "q4_k_m"]


@pytest.mark.skipif(bool(RUNNER) or not cpu_has_avx2(),
                    reason="needs an x86-64 CPU with AVX2, FMA and F16C, and a native build")
@pytest.mark.parametrize("qtype", AVX2_REPACKED)
def test_synth_logits_on_the_avx2_path_match_llama_cpp(qtype, synth_dir, tmp_path):
    """The AVX2 kernels (OB_ISA=avx2 caps the ISA on CPUs with AVX-512 too), in chunks of 7
    tokens so that both register-tile heights (4 and 3 prompt rows) and the split of rows
    between the 2 threads are exercised."""
    path = synth(synth_dir, qtype)
    rng = np.random.default_rng(11)
    tokens = [1] + rng.integers(3, 259, size=63).tolist()
    ours = outboard_logits(path, tokens, tmp_path, chunk=7, env={"OB_ISA": "avx2"})
    check(ours, llama_cpp_logits(path, tokens), qtype, f"synth tiny {qtype}, OB_ISA=avx2")


def cpu_has_vnni256():
    """VPDPBUSD on ymm: AVX-VNNI (VEX), or AVX512-VNNI with VL, whose EVEX form of the same
    instruction OB_ISA=avxvnni runs (src/quant/repack_avxvnni.h)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return cpu_has_avx2() and ("avx_vnni" in flags or {"avx512_vnni", "avx512vl"} <= set(flags))


# The types with AVX-VNNI kernels (src/quant/repack*_avxvnni.c).
AVXVNNI_REPACKED = ["q4_0", "q5_0", "q8_0", "iq4_nl", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_xs",
                    "q4_k_m"]


@pytest.mark.skipif(bool(RUNNER) or not cpu_has_vnni256(),
                    reason="needs AVX2 with AVX-VNNI or AVX512-VNNI+VL, and a native build")
@pytest.mark.parametrize("qtype", AVXVNNI_REPACKED)
def test_synth_logits_on_the_avxvnni_path_match_llama_cpp(qtype, synth_dir, tmp_path):
    """The AVX2 path with the AVX-VNNI kernels (OB_ISA=avxvnni: on a CPU with AVX-512 VNNI,
    their EVEX twins), chunked as the AVX2 test above."""
    path = synth(synth_dir, qtype)
    rng = np.random.default_rng(11)
    tokens = [1] + rng.integers(3, 259, size=63).tolist()
    ours = outboard_logits(path, tokens, tmp_path, chunk=7, env={"OB_ISA": "avxvnni"})
    check(ours, llama_cpp_logits(path, tokens), qtype, f"synth tiny {qtype}, OB_ISA=avxvnni")


def test_llama3_rope_freqs_match_llama_cpp(synth_dir, tmp_path):
    """rope_freqs.weight (Llama 3.1 frequency factors) at positions where they matter."""
    path = synth(synth_dir, "f32", extra=("--rope-freqs",))
    rng = np.random.default_rng(3)
    tokens = [1] + rng.integers(3, 259, size=63).tolist()
    ours = outboard_logits(path, tokens, tmp_path)
    check(ours, llama_cpp_logits(path, tokens), "f32", "synth tiny f32 + rope_freqs")


def test_long_context_last_position(synth_dir, tmp_path):
    """A 2048-token context still matches at the last positions."""
    path = synth(synth_dir, "f16")
    rng = np.random.default_rng(11)
    tokens = [1] + rng.integers(3, 259, size=2047).tolist()
    ours = outboard_logits(path, tokens, tmp_path, ctx=2048)[-4:]
    ref = llama_cpp_logits(path, tokens, n_ctx=2048)[-4:]
    check(ours, ref, "f16", "synth tiny f16, 2048 tokens")


def test_prompt_longer_than_context_names_both_counts(tmp_path):
    path = shared("models/stories260K.gguf")
    proc = outboard("eval", "-m", path, "--tokens", ",".join(["1"] * 40), "--ctx", "32",
                    check=False)
    assert proc.returncode == 1
    assert "40 tokens" in proc.stderr and "32 positions" in proc.stderr, proc.stderr


def test_unsupported_architecture_is_named(tmp_path):
    path = shared("models/vocab/ggml-vocab-gpt-2.gguf")
    proc = outboard("eval", "-m", path, "--tokens", "1", check=False)
    assert proc.returncode == 1 and "'gpt2'" in proc.stderr, proc.stderr
