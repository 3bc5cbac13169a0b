"""Mistral-style sliding-window attention on the llama architecture
(llama.attention.sliding_window). llama.cpp does not apply a window to `llama` files, so the
reference here is an independent numpy forward pass over the weights as the gguf package reads
them. The numpy pass is first checked against llama.cpp on the same model without the window
(so it is known to be the llama architecture), then used with the window: outboard must match
it at positions 1500..1503 of a 1504-token input (window 64: the ring cache has wrapped), fed
at once and in pieces. Tolerance: F16 KV cache and F16 rounding of q and of the attention
probabilities against float64, 5e-3 of the logit range, as for F16 in test_logits.py.
"""
import os

import numpy as np
import pytest

from conftest import BUILD, llama_cpp_logits, outboard, outboard_logits
from test_logits import check

SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"
WINDOW = 64


def numpy_llama(path, tokens, n_swa=0):
    """Logits (n_tok, n_vocab) of a llama GGUF in float64; n_swa > 0: each query sees only the
    last n_swa positions (itself included)."""
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(path)
    kv = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    t = {x.name: np.array(x.data, dtype=np.float64) for x in r.tensors}
    e, n_layer = kv["llama.embedding_length"], kv["llama.block_count"]
    n_head, n_kv = kv["llama.attention.head_count"], kv["llama.attention.head_count_kv"]
    eps, base = kv["llama.attention.layer_norm_rms_epsilon"], kv["llama.rope.freq_base"]
    hd = e // n_head
    n = len(tokens)

    def norm(x, w):
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w

    pos = np.arange(n)[:, None]
    theta = pos * base ** (-np.arange(0, hd, 2) / hd)  # (n, hd/2)
    cos, sin = np.cos(theta), np.sin(theta)

    def rope(x):  # (n, heads, hd), pairs (2i, 2i+1)
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos[:, None, :] - b * sin[:, None, :]
        out[..., 1::2] = a * sin[:, None, :] + b * cos[:, None, :]
        return out

    j = np.arange(n)[None, :]
    visible = j <= pos
    if n_swa:
        visible &= pos - j < n_swa
    x = t["token_embd.weight"][tokens]
    for il in range(n_layer):
        w = lambda s: t[f"blk.{il}.{s}"]  # noqa: E731
        h = norm(x, w("attn_norm.weight"))
        q = rope((h @ w("attn_q.weight").T).reshape(n, n_head, hd))
        k = rope((h @ w("attn_k.weight").T).reshape(n, n_kv, hd))
        v = (h @ w("attn_v.weight").T).reshape(n, n_kv, hd)
        out = np.empty((n, n_head, hd))
        for hh in range(n_head):
            g = hh // (n_head // n_kv)
            s = q[:, hh] @ k[:, g].T / np.sqrt(hd)
            s = np.where(visible, s, -np.inf)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            out[:, hh] = (p / p.sum(axis=1, keepdims=True)) @ v[:, g]
        x = x + out.reshape(n, e) @ w("attn_output.weight").T
        h = norm(x, w("ffn_norm.weight"))
        gate, up = h @ w("ffn_gate.weight").T, h @ w("ffn_up.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w("ffn_down.weight").T
    return norm(x, t["output_norm.weight"]) @ t["output.weight"].T


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("swa")
    plain, swa = d / "llama.gguf", d / "llama-swa.gguf"
    outboard("synth", "--arch", "llama", "--shape", "tiny", "--type", "f32", "-o", plain)
    outboard("synth", "--arch", "llama", "--shape", "tiny", "--type", "f32", "--swa", WINDOW,
             "-o", swa)
    return str(plain), str(swa)


def tokens(n):
    rng = np.random.default_rng(5)
    return [1] + rng.integers(3, 259, size=n - 1).tolist()


def test_numpy_reference_is_llama(models):
    toks = tokens(200)
    check(numpy_llama(models[0], toks), llama_cpp_logits(models[0], toks), "f16",
          "numpy llama vs llama.cpp, no window")


@pytest.mark.skipif(SANITIZED, reason="1504-position runs skipped under sanitizers (slow); the "
                                      "normal pass runs them")
def test_llama_sliding_window_matches_numpy(models, tmp_path):
    toks = tokens(1504)
    ref = numpy_llama(models[1], toks, n_swa=WINDOW)
    ours = outboard_logits(models[1], toks, tmp_path, ctx=1504)
    check(ours[-4:], ref[-4:], "f16", "llama + sliding window 64, positions 1500..1503")
    check(ours[:64], ref[:64], "f16", "llama + sliding window 64, positions 0..63")
    pieces = outboard_logits(models[1], toks, tmp_path, ctx=1504, chunk=333)
    check(pieces[-4:], ref[-4:], "f16", "llama + sliding window 64, in pieces of 333")
    # the window must matter, or this test shows nothing
    full = numpy_llama(models[1], toks[:1504], n_swa=0)[-4:]
    assert np.abs(full - ref[-4:]).max() > 0.1 * (ref[-4:].max() - ref[-4:].min())
