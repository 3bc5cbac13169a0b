"""Qwen3.5's multi-token-prediction block (src/model/qwen35_mtp.c) against an independent
reference: a numpy implementation of llama.cpp's graph_mtp (models/qwen35.cpp, and
models/qwen35moe.cpp for the mixture-of-experts FFN) written from the math, reading the weights
of synthetic F32 qwen35 and qwen35moe files (`outboard synth --nextn 1`, qwen35moe also with
the merged ffn_gate_up_exps form) with the `gguf` package. llama-cpp-python 0.3.36 loads the
block (load_mtp) but exposes neither an MTP context nor the hidden states it takes, so its
logits are not reachable from Python.

tests/model/mtp_tool evaluates a token sequence in one decode with the hidden states kept and
runs the block over every position as the drafter does. Checked:
- the kept hidden states are the final states after the output norm: projected by the output
  matrix they give llama.cpp's logits of the same tokens;
- the block's logits at every position (entries one per call, so its cache is read back) and
  those of a whole sequence in one call match the reference;
- a model without the block, or with a block that lacks a tensor, says so by name when asked
  for mtp;
- qwen35moe: the reference's routed experts, their routing weights (against a plain average of
  the chosen experts) and its gated shared expert each move the logits far outside the
  tolerance, so a block that dropped any of them could not pass.
"""
import os
import subprocess

import numpy as np
import pytest

from conftest import BUILD, llama_cpp_logits, outboard, renamed
from test_families import tokens

TOOL = os.path.join(BUILD, "tests", "model", "mtp_tool")
# F32 weights; the block's cache holds K and V in F16 and attention rounds Q to F16 as
# llama.cpp's CPU backend does, which the numpy reference does not: 2e-3 of the logits' range
# (measured 9.6e-5 on qwen35, 8.9e-5 on qwen35moe, both expert forms).
TOL = 2e-3


# qwen35 (dense FFN), qwen35moe with separate gate and up experts, and with them merged
FORMS = {"qwen35": ("qwen35",), "qwen35moe": ("qwen35moe",),
         "qwen35moe-merged": ("qwen35moe", "--merged-experts")}


@pytest.fixture(scope="module", params=list(FORMS))
def mtp_file(request, tmp_path_factory):
    arch, *extra = FORMS[request.param]
    path = tmp_path_factory.mktemp("mtp") / f"{request.param}-nextn-f32.gguf"
    outboard("synth", "--arch", arch, "--shape", "tiny", "--type", "f32", "--nextn", "1",
             "--seed", "3", "-o", path, *extra)
    return str(path)


def run_tool(path, toks, out):
    proc = subprocess.run([TOOL, path, ",".join(map(str, toks)), str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return np.fromfile(out, dtype=np.float32)


class Weights:
    def __init__(self, path):
        gguf = pytest.importorskip("gguf")
        r = gguf.GGUFReader(path)
        self.t = {x.name: np.array(x.data, dtype=np.float32) for x in r.tensors}
        f = r.fields
        a = self.arch = f["general.architecture"].contents()
        self.e = int(f[f"{a}.embedding_length"].contents())
        self.n_layer = int(f[f"{a}.block_count"].contents()) - 1
        self.n_head = int(f[f"{a}.attention.head_count"].contents())
        self.n_kv = int(f[f"{a}.attention.head_count_kv"].contents())
        self.hd = int(f[f"{a}.attention.key_length"].contents())
        self.n_rot = int(f[f"{a}.rope.dimension_count"].contents())
        self.base = float(f[f"{a}.rope.freq_base"].contents())
        self.eps = float(f[f"{a}.attention.layer_norm_rms_epsilon"].contents())
        sections = list(f[f"{a}.rope.dimension_sections"].contents())
        assert sum(sections) * 2 >= self.n_rot and sections[3] == 0  # every pair rotates
        if a == "qwen35moe":
            self.n_used = int(f[f"{a}.expert_used_count"].contents())
            key = f"{a}.expert_weights_scale"
            self.w_scale = float(f[key].contents()) if key in f else 0.0

    def __getitem__(self, name):
        return self.t[name]


def rmsnorm(x, w, eps):
    x = x.astype(np.float64)
    return (x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w).astype(np.float32)


def rope_neox(x, pos, n_rot, base):
    """x (n, heads, hd): pairs (i, i + n_rot/2) of the first n_rot dims rotated by pos *
    base^(-2i/n_rot)."""
    half = n_rot // 2
    theta = pos[:, None].astype(np.float64) * base ** (-2.0 * np.arange(half) / n_rot)
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    out = x.astype(np.float64).copy()
    a, b = out[..., :half].copy(), out[..., half:n_rot].copy()
    out[..., :half] = a * cos - b * sin
    out[..., half:n_rot] = a * sin + b * cos
    return out.astype(np.float32)


def silu(x):
    return x / (1.0 + np.exp(-x))


def experts(w, b):
    """gate, up (n_expert, n_ff, n_embd) and down (n_expert, n_embd, n_ff): the merged
    ffn_gate_up_exps holds each expert's gate rows, then its up rows."""
    if b + "ffn_gate_up_exps.weight" in w.t:
        gu = w[b + "ffn_gate_up_exps.weight"]
        n_ff = gu.shape[1] // 2
        gate, up = gu[:, :n_ff], gu[:, n_ff:]
    else:
        gate, up = w[b + "ffn_gate_exps.weight"], w[b + "ffn_up_exps.weight"]
    return gate, up, w[b + "ffn_down_exps.weight"]


def moe_ffn(w, b, xn, routed=True, weighted=True, shared=True):
    """llama.cpp's qwen35moe FFN of xn (n, e): softmax over the experts' router logits, the
    top n_used, their probabilities divided by their sum and scaled by expert_weights_scale
    (0 = none), each chosen SwiGLU expert weighted by its own; plus the shared SwiGLU expert
    times sigmoid(ffn_gate_inp_shexp . xn). routed / shared: either part left out, weighted:
    the chosen experts averaged instead, to show the test sees each."""
    x = xn.astype(np.float64)
    out = np.zeros_like(x)
    if routed:
        logits = x @ w[b + "ffn_gate_inp.weight"].T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        sel = np.argsort(-p, axis=1, kind="stable")[:, :w.n_used]
        wts = np.take_along_axis(p, sel, axis=1)
        wts /= wts.sum(axis=1, keepdims=True)
        if w.w_scale not in (0.0, 1.0):
            wts *= w.w_scale
        if not weighted:
            wts[:] = 1.0 / w.n_used
        gate, up, down = experts(w, b)
        for t in range(len(x)):
            for j, ex in enumerate(sel[t]):
                out[t] += wts[t, j] * (down[ex] @ (silu(gate[ex] @ x[t]) * (up[ex] @ x[t])))
    if shared:
        sh = (silu(x @ w[b + "ffn_gate_shexp.weight"].T) * (x @ w[b + "ffn_up_shexp.weight"].T)
              ) @ w[b + "ffn_down_shexp.weight"].T
        g = x @ w[b + "ffn_gate_inp_shexp.weight"].reshape(-1)
        out += sh / (1.0 + np.exp(-g))[:, None]
    return out.astype(np.float32)


def dense_ffn(w, b, xn):
    g, u = xn @ w[b + "ffn_gate.weight"].T, xn @ w[b + "ffn_up.weight"].T
    return (silu(g) * u) @ w[b + "ffn_down.weight"].T


def mtp_reference(w, toks, h, **moe_parts):
    """The block over positions 0..n-1: token toks[p] with h[p] (the target state at p - 1).
    moe_parts: moe_ffn's routed / weighted / shared."""
    b = f"blk.{w.n_layer}."
    n, e, nh, nkv, hd = len(toks), w.e, w.n_head, w.n_kv, w.hd
    emb = w["token_embd.weight"][toks]
    cat = np.concatenate([rmsnorm(emb, w[b + "nextn.enorm.weight"], w.eps),
                          rmsnorm(h, w[b + "nextn.hnorm.weight"], w.eps)], axis=1)
    x = cat @ w[b + "nextn.eh_proj.weight"].T
    xn = rmsnorm(x, w[b + "attn_norm.weight"], w.eps)
    qg = (xn @ w[b + "attn_q.weight"].T).reshape(n, nh, 2 * hd)
    q, gate = qg[..., :hd], qg[..., hd:].reshape(n, nh * hd)
    k = (xn @ w[b + "attn_k.weight"].T).reshape(n, nkv, hd)
    v = (xn @ w[b + "attn_v.weight"].T).reshape(n, nkv, hd)
    q = rmsnorm(q, w[b + "attn_q_norm.weight"], w.eps)
    k = rmsnorm(k, w[b + "attn_k_norm.weight"], w.eps)
    pos = np.arange(n)
    q, k = rope_neox(q, pos, w.n_rot, w.base), rope_neox(k, pos, w.n_rot, w.base)
    attn = np.zeros((n, nh, hd), dtype=np.float64)
    for hh in range(nh):
        kh = hh // (nh // nkv)
        s = (q[:, hh, :].astype(np.float64) @ k[:, kh, :].T) / np.sqrt(hd)
        s[np.triu_indices(n, 1)] = -np.inf
        p = np.exp(s - s.max(axis=1, keepdims=True))
        attn[:, hh, :] = (p / p.sum(axis=1, keepdims=True)) @ v[:, kh, :]
    attn = attn.reshape(n, nh * hd) / (1.0 + np.exp(-gate))
    x = x + (attn @ w[b + "attn_output.weight"].T).astype(np.float32)
    xn = rmsnorm(x, w[b + "post_attention_norm.weight"], w.eps)
    x = x + (moe_ffn(w, b, xn, **moe_parts) if w.arch == "qwen35moe" else dense_ffn(w, b, xn))
    h_out = rmsnorm(x, w[b + "nextn.shared_head_norm.weight"], w.eps)
    return h_out @ w["output.weight"].T, h_out


def rel_err(ours, ref):
    return float((np.abs(ours - ref).max(axis=-1) / (ref.max(axis=-1) - ref.min(axis=-1))).max())


def test_mtp_logits_match_numpy_reference(mtp_file, tmp_path):
    w = Weights(mtp_file)
    toks = tokens(40, 9)
    n, e = len(toks), w.e
    nv = w["output.weight"].shape[0]
    out = run_tool(mtp_file, toks, tmp_path / "mtp.bin")
    assert out.size == n * e + n * nv + nv + e
    hidden = out[:n * e].reshape(n, e)
    logits = out[n * e:n * e + n * nv].reshape(n, nv)
    batch_logits = out[n * e + n * nv:n * e + n * nv + nv]
    batch_h = out[-e:]
    # the kept states are the main model's final normed states: llama.cpp's logits from them
    main = llama_cpp_logits(mtp_file, toks)
    assert rel_err(hidden @ w["output.weight"].T, main) < 1e-4
    h_in = np.vstack([np.zeros((1, e), np.float32), hidden[:-1]])
    ref_logits, ref_h = mtp_reference(w, toks, h_in)
    err = rel_err(logits, ref_logits)
    print(f"MTP logits, one entry per call: max |diff| / range {err:.2e}")
    assert err < TOL
    assert (logits.argmax(axis=1) == ref_logits.argmax(axis=1)).mean() >= 0.95
    assert rel_err(batch_logits[None], ref_logits[-1:]) < TOL
    assert rel_err(batch_h[None], ref_h[-1:]) < TOL
    # a wrong input state (the state at p instead of p - 1) is far outside the tolerance
    wrong, _ = mtp_reference(w, toks, hidden)
    assert rel_err(logits, wrong) > 20 * TOL
    if w.arch == "qwen35moe":  # so are the FFN without its routed or its shared experts
        for part in ("routed", "weighted", "shared"):
            wrong, _ = mtp_reference(w, toks, h_in, **{part: False})
            err = rel_err(logits, wrong)
            print(f"not {part}: {err:.2e}")
            assert err > 20 * TOL, part


def test_spec_mtp_refused_without_a_block(tmp_path):
    plain = tmp_path / "plain.gguf"
    outboard("synth", "--arch", "qwen35", "--shape", "tiny", "--type", "f32", "-o", plain)
    out = outboard("run", "-m", plain, "-p", "x", "-n", "2", "--spec", "mtp", check=False)
    assert out.returncode == 1
    assert "--spec mtp: the model has no multi-token-prediction block" in out.stderr
    # a qwen35moe block without its shared expert's down matrix: named, and the model still
    # runs, auto falling back to prompt lookup
    moe = tmp_path / "moe.gguf"
    outboard("synth", "--arch", "qwen35moe", "--shape", "tiny", "--type", "f32", "--nextn", "1",
             "-o", moe)
    assert outboard("run", "-m", moe, "-p", "x", "-n", "2", "--spec", "mtp").returncode == 0
    name = f"blk.{Weights(str(moe)).n_layer}.ffn_down_shexp.weight"
    broken = tmp_path / "broken.gguf"
    renamed(str(moe), str(broken), name, name + ".gone")
    out = outboard("run", "-m", broken, "-p", "x", "-n", "2", "--spec", "mtp", check=False)
    assert out.returncode == 1 and f"tensor '{name}' not found" in out.stderr, out.stderr
    assert outboard("run", "-m", broken, "-p", "x", "-n", "2", "--spec", "auto").returncode == 0
