"""Model families against llama.cpp (pinned llama-cpp-python) on synthetic models written by
`outboard synth`: qwen2 (q/k/v biases), qwen3 (per-head q/k RMSNorm, head size != n_embd /
n_head), gemma3 (scaled embeddings, q/k norms, post-norms, GeGLU, tied output, six layers of
which one is global, sliding window 64 on the others with its own RoPE base). Each in two tensor
types (F32 and Q8_0), over 64 positions and again at position 1500 (well past the window, the
ring cache of the local layers having wrapped twice), the latter also fed in uneven pieces.

The tolerance rule is test_logits.py's: max |ours - llama.cpp| / reference logit range, F32
1e-3, quantized 2e-2, argmax equal wherever the reference top-2 gap is outside the band.
The 1500-position runs are the slowest reference runs; the sanitizer pass skips them (and says
so) to keep CI time modest, since the 64-position runs already go through every line.
"""
import os

import numpy as np
import pytest

from conftest import BUILD, llama_cpp_logits, outboard, outboard_logits, renamed
from test_logits import check

ARCHES = ["qwen2", "qwen3", "gemma3"]
TYPES = ["f32", "q8_0"]
SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"
KV_TOOL = os.path.join(BUILD, "tests", "model", "kv_tool")


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


def synth(synth_dir, arch, qtype):
    path = synth_dir / f"{arch}-{qtype}.gguf"
    if not path.exists():
        outboard("synth", "--arch", arch, "--shape", "tiny", "--type", qtype, "-o", path)
    return str(path)


def tokens(n, seed):
    rng = np.random.default_rng(seed)
    return [1] + rng.integers(3, 259, size=n - 1).tolist()


@pytest.mark.parametrize("qtype", TYPES)
@pytest.mark.parametrize("arch", ARCHES)
def test_family_logits_match_llama_cpp(arch, qtype, synth_dir, tmp_path):
    path = synth(synth_dir, arch, qtype)
    toks = tokens(64, 7)
    ours = outboard_logits(path, toks, tmp_path)
    check(ours, llama_cpp_logits(path, toks), qtype, f"synth {arch} {qtype}, 64 positions")


@pytest.mark.skipif(SANITIZED, reason="1500-position reference runs skipped under sanitizers "
                                      "(slow); the normal pass runs them")
@pytest.mark.parametrize("qtype", TYPES)
@pytest.mark.parametrize("arch", ARCHES)
def test_family_logits_at_position_1500(arch, qtype, synth_dir, tmp_path):
    path = synth(synth_dir, arch, qtype)
    toks = tokens(1504, 11)
    ref = llama_cpp_logits(path, toks, n_ctx=1504)[-4:]
    ours = outboard_logits(path, toks, tmp_path, ctx=1504)[-4:]
    check(ours, ref, qtype, f"synth {arch} {qtype}, positions 1500..1503")
    if arch == "gemma3":  # the ring wraps mid-piece when fed 333 at a time
        pieces = outboard_logits(path, toks, tmp_path, ctx=1504, chunk=333)[-4:]
        check(pieces, ref, qtype, f"synth {arch} {qtype}, 1504 tokens in pieces of 333")


def kv_tool(*args):
    if not os.path.exists(KV_TOOL):
        pytest.skip(f"{KV_TOOL} not built (make test builds it)")
    import subprocess
    proc = subprocess.run([KV_TOOL, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())


def test_gemma3_window_layers_keep_only_the_window(synth_dir):
    """Tiny gemma3: 6 layers, 1 global; kv row 2 heads x 128 dims; n_batch 512, window 64: the
    five local layers keep 64 + 512 rows, the global one all 4096 (the trained context)."""
    path = synth(synth_dir, "gemma3", "f32")
    out = kv_tool(path, 4096)
    row_bytes = 2 * 128 * 2 * 2  # K and V, f16
    assert int(out["kv_bytes"]) == (4096 + 5 * (64 + 512)) * row_bytes
    assert int(out["full_bytes"]) == 6 * 4096 * row_bytes


def test_gemma3_truncate_within_and_beyond_the_ring(synth_dir):
    path = synth(synth_dir, "gemma3", "f32")
    assert kv_tool(path, 2048, 1500, 990)["truncate"] == "ok"
    assert kv_tool(path, 2048, 1500, 0)["truncate"] == "ok"
    msg = kv_tool(path, 2048, 1500, 900)["truncate"]
    assert msg.startswith("error:") and "sliding-window" in msg and "988" in msg, msg


def test_llama_family_arch_without_window_keeps_full_cache(synth_dir):
    path = synth(synth_dir, "qwen3", "f32")
    out = kv_tool(path, 4096)
    assert out["kv_bytes"] == out["full_bytes"]


@pytest.mark.parametrize("arch", ARCHES)
def test_cuda_device_takes_family_or_says_why_not(arch, synth_dir):
    """The CUDA backend runs these families: --device cuda either runs (a machine with a
    card) or fails naming why there is no device, never the architecture; auto runs on what
    there is."""
    path = synth(synth_dir, arch, "f32")
    proc = outboard("run", "-m", path, "--tokens", "1,2,3", "-n", 2, "--device", "cuda",
                    check=False)
    assert proc.returncode == 0 or "no CUDA device" in proc.stderr, proc.stderr
    assert f"architecture '{arch}'" not in proc.stderr, proc.stderr
    proc = outboard("run", "-m", path, "--tokens", "1,2,3", "-n", 2, "--device", "auto", "--ids")
    assert len(proc.stdout.split()) == 2


# One tensor of each family's own rows of its tensor table, and the shape the tiny synth shape
# gives it (qwen2: 2 kv heads of 64; qwen3: head_dim 128; gemma3: n_embd 256, layer 5 global)
@pytest.mark.parametrize("arch,tensor,shape", [
    ("llama", "blk.1.ffn_down.weight", "[768, 256]"),
    ("qwen2", "blk.1.attn_v.bias", "[128]"),
    ("qwen3", "blk.1.attn_q_norm.weight", "[128]"),
    ("gemma3", "blk.5.post_ffw_norm.weight", "[256]"),
    ("qwen3moe", "blk.1.ffn_up_exps.weight", "[256, 512, 8]"),
])
def test_missing_tensor_is_named_with_its_shape(arch, tensor, shape, synth_dir, tmp_path):
    """A file without a tensor its family's table requires is refused at load naming the
    tensor, the file and the shape expected, and nothing leaks on the way out."""
    dst = str(tmp_path / "renamed.gguf")
    renamed(synth(synth_dir, arch, "f32"), dst, tensor, "unused.weight")
    proc = outboard("run", "-m", dst, "--tokens", "1,2,3", "-n", 2, check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"renamed.gguf: tensor '{tensor}' not found (expected {shape})" in proc.stderr, \
        proc.stderr
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr
