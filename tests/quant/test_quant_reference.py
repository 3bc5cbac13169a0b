"""src/quant against the gguf package (pinned in tests/requirements.txt), an independent
implementation of the same block formats.

- Dequantization of every type our table supports equals gguf.quants.dequantize bit for bit,
  on random blocks (every quant bit pattern, finite scales) and on gguf-quantized data, for
  every ISA variant this CPU runs.
- Our quantizers: for the types gguf can quantize, the RMS error of ours is no worse than
  gguf's on the same data, and the bytes are the same (both follow ggml's reference).
- Dot products equal the float64 dot of gguf-dequantized rows within a stated tolerance.

Our code runs through build/tests/quant/quant_tool (tests/quant/quant_tool.c), found via
$OB_BUILD.
"""
import os
import subprocess
import tempfile

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

BUILD = os.environ.get("OB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "tests", "quant", "quant_tool")

# Byte offsets of the f16 scale fields in each block (other bytes may be anything), and of the
# f32 scale of Q8_K; random blocks get finite values there so the comparison is of finite data.
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q8_1": [0, 2],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ4_NL": [0], "IQ4_XS": [0],
}
F32_FIELDS = {"Q8_K": [0]}


def tool_types():
    if not os.access(TOOL, os.X_OK):
        pytest.skip(f"{TOOL} not built (run make test)", allow_module_level=True)
    out = subprocess.run([TOOL, "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}


SUPPORTED = tool_types()


def run_tool(*args):
    proc = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    if proc.returncode == 2:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return proc


def ours(cmd, tname, isa, data, out_dtype):
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in"), os.path.join(d, "out")
        data.tofile(src)
        run_tool(cmd, tname, isa, src, dst)
        return np.fromfile(dst, dtype=out_dtype)


def gguf_types(names):
    return [n for n in names if n in SUPPORTED and hasattr(T, n)
            and (n in ("F32", "F16") or T[n] in gguf.quants._type_traits)]


def random_blocks(tname, n_blocks, rng):
    block, size = GGML_QUANT_SIZES[T[tname]]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS.get(tname, []):
        raw[:, off:off + 2] = (rng.standard_normal(n_blocks) * 0.1).astype(np.float16) \
            .view(np.uint8).reshape(n_blocks, 2)
    for off in F32_FIELDS.get(tname, []):
        raw[:, off:off + 4] = (rng.standard_normal(n_blocks) * 0.01).astype(np.float32) \
            .view(np.uint8).reshape(n_blocks, 4)
    if tname == "F32":
        raw = rng.standard_normal(n_blocks).astype(np.float32).view(np.uint8).reshape(n_blocks, 4)
    if tname == "F16":
        raw = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)  # every half
    if tname == "BF16":
        raw = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)  # every bf16
    return raw


def sample_data(n, rng):
    """Weights-like rows: normal with a scale per 32-element block and a few outliers."""
    x = rng.standard_normal(n).astype(np.float32)
    x *= np.repeat(rng.uniform(0.01, 3.0, n // 32), 32).astype(np.float32)
    x[rng.integers(0, n, n // 97)] *= 10
    return x


def cases(types):
    """(type, ISA) pairs for every ISA variant this CPU runs."""
    return [(t, isa) for t in types for isa in SUPPORTED[t]]


def same_bits(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a) & np.isnan(b)  # NaN payloads may legitimately differ (F16 only)
    return np.array_equal(a.view(np.uint32)[~nan], b.view(np.uint32)[~nan]) and \
        np.array_equal(np.isnan(a), np.isnan(b))


DEQUANT_TYPES = gguf_types(["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                            "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"])


@pytest.mark.parametrize("tname,isa", cases(DEQUANT_TYPES))
def test_dequantize_matches_gguf_bit_for_bit(tname, isa):
    rng = np.random.default_rng(abs(hash((tname, isa))) % 2**32)
    raw = random_blocks(tname, 300, rng)
    want = gguf.quants.dequantize(raw, T[tname]).reshape(-1)
    got = ours("dequant", tname, isa, raw, np.float32)
    assert got.shape == want.shape
    assert same_bits(got, want), f"{tname}/{isa}: first difference at " \
        f"{np.flatnonzero(got.view(np.uint32) != np.asarray(want, np.float32).view(np.uint32))[:5]}"


QUANT_TYPES = gguf_types(["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])


@pytest.mark.parametrize("tname,isa", cases(QUANT_TYPES))
def test_quantize_no_worse_than_gguf(tname, isa):
    rng = np.random.default_rng(7)
    x = sample_data(32 * 512, rng)
    block, size = GGML_QUANT_SIZES[T[tname]]
    theirs = np.asarray(gguf.quants.quantize(x.reshape(-1, 32), T[tname])).view(np.uint8) \
        .reshape(-1)
    mine = ours("quant", tname, isa, x, np.uint8)
    assert mine.size == theirs.size == x.size // block * size
    # Both decoded by gguf, so the error measure does not depend on our dequantizer.
    err_mine = gguf.quants.dequantize(mine.reshape(-1, size), T[tname]).reshape(-1) - x
    err_theirs = gguf.quants.dequantize(theirs.reshape(-1, size), T[tname]).reshape(-1) - x
    rms_mine = float(np.sqrt(np.mean(err_mine.astype(np.float64) ** 2)))
    rms_theirs = float(np.sqrt(np.mean(err_theirs.astype(np.float64) ** 2)))
    assert rms_mine <= rms_theirs * (1 + 1e-9), f"{tname}: rms {rms_mine} vs gguf {rms_theirs}"
    # Same scale choice and rounding as ggml's reference quantizers, which gguf mirrors: the
    # bytes agree too.
    assert np.array_equal(mine, theirs), \
        f"{tname}: {np.mean(mine != theirs):.2e} of bytes differ from gguf's quantizer"


def to_vec_dot_activation(tname, y):
    """The activations as vec_dot sees them, decoded by gguf (Q8_1 shares Q8_0's quants)."""
    vdt = {"F32": "F32", "F16": "F16", "BF16": "BF16"}.get(tname)
    if vdt is None:
        vdt = "Q8_0" if tname in ("Q4_0", "Q5_0", "Q8_0", "Q4_1", "Q5_1", "IQ4_NL") else None
    if vdt is None:  # Q8_K: gguf cannot quantize it; use the floats (looser tolerance)
        return y.astype(np.float64), 1e-2
    q = gguf.quants.quantize(y.reshape(1, -1), T[vdt])
    deq = gguf.quants.dequantize(q, T[vdt]).reshape(-1).astype(np.float64)
    # Q4_1/Q5_1 use the activation block's stored f16 sum, which rounds at 2^-11 of it.
    return deq, (2e-3 if tname in ("Q4_1", "Q5_1") else 1e-4)


DOT_TYPES = [t for t in DEQUANT_TYPES if t != "Q8_1"]


@pytest.mark.parametrize("tname,isa", cases(DOT_TYPES))
def test_vec_dot_matches_gguf_dequantized_dot(tname, isa):
    rng = np.random.default_rng(11)
    block, size = GGML_QUANT_SIZES[T[tname]]
    n, rows = 1024, 8
    y = sample_data(n, rng)
    w = sample_data(n * rows, rng).reshape(rows, n)
    if tname == "F32":
        wq = w.view(np.uint8)
    elif tname in QUANT_TYPES:
        wq = np.asarray(gguf.quants.quantize(w, T[tname])).view(np.uint8)
    else:
        wq = random_blocks(tname, rows * n // block, rng)
    wq = np.ascontiguousarray(wq).reshape(-1)
    wd = gguf.quants.dequantize(wq.reshape(-1, size), T[tname]).reshape(rows, n).astype(np.float64)
    yd, rel = to_vec_dot_activation(tname, y)
    want = wd @ yd
    scale = np.abs(wd) @ np.abs(yd)
    with tempfile.TemporaryDirectory() as d:
        xp, yp, op = (os.path.join(d, f) for f in ("x", "y", "o"))
        wq.tofile(xp)
        y.tofile(yp)
        run_tool("dot", tname, isa, n, xp, yp, op)
        got = np.fromfile(op, dtype=np.float32).astype(np.float64)
    assert got.shape == want.shape
    bad = np.abs(got - want) > rel * scale + 1e-30
    assert not bad.any(), f"{tname}/{isa}: got {got[bad]}, want {want[bad]}"
