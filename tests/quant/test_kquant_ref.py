"""`outboard quantize` and the K-quant / IQ4 quantizers against llama.cpp's own quantizer
(llama-cpp-python's llama_model_quantize) and the gguf package, both pinned in
tests/requirements.txt.

A small llama-shaped F32 model is written with the gguf package and quantized by both tools:
- per type (--pure / params.pure): the RMS error of our quantized weights against the F32
  source is no worse than llama.cpp's (both dequantized by gguf.quants.dequantize);
- dequantizing llama.cpp's files with `outboard quantize ... F32` equals gguf's dequantization
  bit for bit, for every type;
- per preset (Q2_K ... IQ4_XS): every tensor gets the type llama.cpp gives it, and
  general.file_type is llama.cpp's, on a model with 8 layers (the layer-position rules) and on
  one with tied embeddings, grouped-query attention and rows that need the fallback types.
"""
import ctypes
import os
import subprocess

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
llama_cpp = pytest.importorskip("llama_cpp")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

BUILD = os.environ.get("OB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
OUTBOARD = os.path.join(BUILD, "outboard")

# llama.cpp's llama_ftype numbers for the presets (also what general.file_type holds).
PRESETS = {"Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
           "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "Q8_0": 7, "Q4_0": 2, "IQ4_NL": 25,
           "IQ4_XS": 30}
# A preset whose base type is the type, for the per-type (pure) comparisons.
PURE = {"Q2_K": "Q2_K", "Q3_K": "Q3_K_S", "Q4_K": "Q4_K_S", "Q5_K": "Q5_K_S", "Q6_K": "Q6_K",
        "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS"}


def write_model(path, n_layer, embd, ff, heads, kv_heads, tied, seed):
    """A llama-architecture F32 GGUF with weights shaped like trained ones (heavy tails)."""
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(128)
    w.add_embedding_length(embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    src = {}

    def add(name, shape, scale=0.02):
        a = rng.standard_normal(shape) * scale + rng.standard_t(3, size=shape) * scale * 0.3
        src[name] = a.astype(np.float32)
        w.add_tensor(name, src[name])

    kv = embd * kv_heads // heads
    add("token_embd.weight", (512, embd))
    add("output_norm.weight", (embd,), 1.0)
    if not tied:
        add("output.weight", (512, embd))
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", (embd,), 1.0)
        add(f"blk.{i}.attn_q.weight", (embd, embd))
        add(f"blk.{i}.attn_k.weight", (kv, embd))
        add(f"blk.{i}.attn_v.weight", (kv, embd))
        add(f"blk.{i}.attn_output.weight", (embd, embd))
        add(f"blk.{i}.ffn_norm.weight", (embd,), 1.0)
        add(f"blk.{i}.ffn_gate.weight", (ff, embd))
        add(f"blk.{i}.ffn_up.weight", (ff, embd))
        add(f"blk.{i}.ffn_down.weight", (embd, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return src


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    if not os.access(OUTBOARD, os.X_OK):
        pytest.skip(f"{OUTBOARD} not built")
    d = tmp_path_factory.mktemp("kquant")
    plain = str(d / "plain.gguf")
    odd = str(d / "odd.gguf")
    return {
        "dir": d,
        "plain": (plain, write_model(plain, 8, 256, 256, 4, 4, False, 1)),
        # tied output, n_gqa 4, ffn rows of 384 (not a multiple of 256: fallback types)
        "odd": (odd, write_model(odd, 3, 256, 384, 8, 2, True, 2)),
    }


def llama_quantize(src, dst, ftype, pure):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.pure = pure
    p.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    assert rc == 0, f"llama_model_quantize({src}, ftype {ftype}) returned {rc}"


def ob_quantize(src, dst, preset, *extra):
    proc = subprocess.run([OUTBOARD, "quantize", "-q", *extra, src, dst, preset],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def tensors(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def file_type(path):
    f = gguf.GGUFReader(path).fields["general.file_type"]
    return int(f.parts[f.data[0]][0])


def rms_vs_source(path, src, qtype):
    err, n = 0.0, 0
    for name, t in tensors(path).items():
        if t.tensor_type != qtype:
            continue
        x = src[name]
        back = dequantize(t.data, t.tensor_type).reshape(x.shape)
        err += float(np.sum((back.astype(np.float64) - x) ** 2))
        n += x.size
    assert n > 0, f"no {qtype.name} tensors in {path}"
    return (err / n) ** 0.5


@pytest.mark.parametrize("tname", list(PURE))
def test_quantizer_rms_no_worse_than_llama_cpp(models, tname):
    d = models["dir"]
    path, src = models["plain"]
    ref, ours = str(d / f"ll_{tname}.gguf"), str(d / f"ob_{tname}.gguf")
    llama_quantize(path, ref, PRESETS[PURE[tname]], True)
    ob_quantize(path, ours, PURE[tname], "--pure")
    rms_ref, rms_ours = rms_vs_source(ref, src, T[tname]), rms_vs_source(ours, src, T[tname])
    print(f"{tname}: rms llama.cpp {rms_ref:.7f}, outboard {rms_ours:.7f}")
    assert rms_ours <= rms_ref * (1 + 1e-6), (tname, rms_ours, rms_ref)

    # Dequantizing llama.cpp's file with outboard equals gguf's dequantization bit for bit.
    back = str(d / f"deq_{tname}.gguf")
    ob_quantize(ref, back, "F32")
    want, got = tensors(ref), tensors(back)
    for name, t in want.items():
        if t.tensor_type != T[tname]:
            continue
        g = got[name]
        assert g.tensor_type == T.F32
        expect = dequantize(t.data, t.tensor_type).reshape(-1)
        assert np.array_equal(np.asarray(g.data).reshape(-1).view(np.uint32),
                              expect.astype(np.float32).view(np.uint32)), name


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("model", ["plain", "odd"])
def test_preset_types_match_llama_cpp(models, preset, model):
    d = models["dir"]
    path, _ = models[model]
    ref, ours = str(d / f"llm_{model}_{preset}.gguf"), str(d / f"obm_{model}_{preset}.gguf")
    llama_quantize(path, ref, PRESETS[preset], False)
    ob_quantize(path, ours, preset)
    want = {n: t.tensor_type.name for n, t in tensors(ref).items()}
    got = {n: t.tensor_type.name for n, t in tensors(ours).items()}
    assert got == want
    assert file_type(ours) == file_type(ref) == PRESETS[preset]


def test_bad_arguments_are_reported(models, tmp_path):
    path, _ = models["plain"]
    proc = subprocess.run([OUTBOARD, "quantize", path, str(tmp_path / "x.gguf"), "Q7_K"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown type 'Q7_K'" in proc.stderr
    proc = subprocess.run([OUTBOARD, "quantize", str(tmp_path / "missing.gguf"),
                           str(tmp_path / "x.gguf"), "Q4_K_M"], capture_output=True, text=True)
    assert proc.returncode == 1 and "missing.gguf" in proc.stderr
    assert not os.path.exists(tmp_path / "x.gguf")
