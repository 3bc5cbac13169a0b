"""Reference test for the GGUF reader: `outboard info --json --kv --tensors` against the gguf
Python package's GGUFReader (pinned in tests/requirements.txt), on every .gguf under
$OB_SHARED/models, the default Gemma 3 270M model, and a file written by gguf.GGUFWriter with
every value type. Every key (order, type, value; arrays in full), every tensor (name, type,
shape, offset, bytes), the alignment, the data offset and the summary figures must agree.
"""
import collections
import json
import math
import os
import subprocess

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"
DEFAULT_MODEL = os.environ.get("OB_DEFAULT_MODEL") or os.path.join(
    ROOT, "models", "gemma-3-270m-q4_k_m.gguf")

VT = gguf.GGUFValueType
OUR_VTYPE = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16",
             VT.UINT32: "u32", VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool",
             VT.STRING: "str", VT.ARRAY: "arr", VT.UINT64: "u64", VT.INT64: "i64",
             VT.FLOAT64: "f64"}


def shared_models():
    base = os.path.join(SHARED, "models")
    found = []
    for dirpath, _, files in os.walk(base):
        found += [os.path.join(dirpath, f) for f in files if f.endswith(".gguf")]
    return sorted(found)


def info_json(path):
    proc = subprocess.run([OUTBOARD, "info", "--json", "--kv", "--tensors", path],
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


# ---- decoding our JSON values -------------------------------------------------------------

def our_bytes(v):
    """A string value from our JSON: plain text, or {"hex": ...} for non-UTF-8 bytes."""
    return bytes.fromhex(v["hex"]) if isinstance(v, dict) else v.encode("utf-8")


def our_number(v):
    if isinstance(v, str):  # "nan"/"inf"/"-inf" or a u64 above INT64_MAX
        return float(v) if v in ("nan", "inf", "-inf") else int(v)
    return v


def same_scalar(vtype, ours, ref):
    """ref is the numpy scalar (or bytes) the GGUFReader holds."""
    if vtype == VT.STRING:
        return our_bytes(ours) == bytes(ref)
    if vtype == VT.BOOL:
        return ours is bool(ref)
    if vtype in (VT.FLOAT32, VT.FLOAT64):
        a, b = float(our_number(ours)), float(ref)
        return (math.isnan(a) and math.isnan(b)) or a == b
    return our_number(ours) == int(ref)


def same_array(vtype, ours, ref):
    """Whole-array comparison (fast path; same_scalar finds the first difference)."""
    if vtype == VT.STRING:
        return [our_bytes(v) for v in ours] == ref
    if vtype in (VT.FLOAT32, VT.FLOAT64):
        a = np.array([float(our_number(v)) for v in ours], dtype=np.float64)
        b = np.array(ref, dtype=np.float64)
        return bool(np.array_equal(a, b, equal_nan=True))
    if vtype == VT.BOOL:
        return [v is True for v in ours] == [bool(v) for v in ref]
    return [our_number(v) for v in ours] == [int(v) for v in ref]


def ref_values(field):
    """Element values of a reader field (a scalar field gives one element)."""
    vtype = field.types[-1]
    if vtype == VT.STRING:
        return [bytes(field.parts[i]) for i in field.data]
    return [field.parts[i][0] for i in field.data]


# ---- the comparison -----------------------------------------------------------------------

def compare(path):
    ours = info_json(path)
    if SANITIZED:
        # The sanitizer build reads the same files with our reader under ASan + UBSan; the
        # reference's parse (pure Python, nearly all of this file's time) and the comparison
        # give what they give in `make test`, which runs them in full.
        return ours
    ref = gguf.GGUFReader(path)
    fields = [(k, f) for k, f in ref.fields.items() if not k.startswith("GGUF.")]

    assert ours["gguf_version"] == int(ref.fields["GGUF.version"].parts[-1][0])
    assert ours["file_size"] == os.path.getsize(path)
    assert ours["alignment"] == ref.alignment
    assert ours["data_offset"] == ref.data_offset
    assert ours["kv_count"] == len(fields)
    assert [our_bytes(kv["key"]).decode("utf-8", "replace") for kv in ours["kv"]] == \
        [k for k, _ in fields]

    for kv, (key, field) in zip(ours["kv"], fields):
        assert kv["type"] == OUR_VTYPE[field.types[0]], key
        vals = ref_values(field)
        if field.types[0] == VT.ARRAY:
            assert kv["elem_type"] == OUR_VTYPE[field.types[1]], key
            assert kv["length"] == len(vals), key
            assert len(kv["value"]) == len(vals), key
            if not same_array(field.types[1], kv["value"], vals):
                bad = next(i for i, (a, b) in enumerate(zip(kv["value"], vals))
                           if not same_scalar(field.types[1], a, b))
                pytest.fail(f"{key}[{bad}]: {kv['value'][bad]!r} vs {vals[bad]!r}")
        else:
            assert same_scalar(field.types[0], kv["value"], vals[0]), \
                f"{key}: {kv['value']!r} vs {vals[0]!r}"

    assert ours["tensor_count"] == len(ref.tensors)
    for t, r in zip(ours["tensors"], ref.tensors):
        assert our_bytes(t["name"]).decode("utf-8", "replace") == r.name
        assert t["type"] == r.tensor_type.name, r.name
        assert t["type_id"] == int(r.tensor_type), r.name
        assert t["shape"] == [int(x) for x in r.shape], r.name
        assert ours["data_offset"] + t["offset"] == r.data_offset, r.name
        assert t["bytes"] == int(r.n_bytes), r.name

    # Summary figures, recomputed from the reader.
    counts, sizes = collections.Counter(), collections.Counter()
    for r in ref.tensors:
        counts[r.tensor_type.name] += 1
        sizes[r.tensor_type.name] += int(r.n_bytes)
    assert ours["tensor_types"] == {k: {"count": counts[k], "bytes": sizes[k]} for k in counts}
    assert ours["parameters"] == sum(int(r.n_elements) for r in ref.tensors)
    assert ours["tensor_bytes"] == sum(sizes.values())

    def scalar(key):
        f = ref.fields.get(key)
        if f is None:
            return None
        v = ref_values(f)[0]
        return v.decode("utf-8") if isinstance(v, bytes) else int(v)

    arch = scalar("general.architecture")
    assert ours["architecture"] == arch
    assert ours["name"] == scalar("general.name")
    ft = scalar("general.file_type")
    assert ours["file_type"] == (None if ft is None else
                                 {"id": ft, "name": gguf.LlamaFileType(ft).name})
    for ours_key, suffix in [("context_length", "context_length"),
                             ("embedding_length", "embedding_length"),
                             ("block_count", "block_count"),
                             ("head_count", "attention.head_count"),
                             ("head_count_kv", "attention.head_count_kv")]:
        assert ours[ours_key] == scalar(f"{arch}.{suffix}"), ours_key
    tokens = ref.fields.get("tokenizer.ggml.tokens")
    vocab = scalar(f"{arch}.vocab_size")
    assert ours["vocab_size"] == (vocab if vocab is not None else
                                  (len(tokens.data) if tokens else None))
    assert ours["tokenizer_model"] == scalar("tokenizer.ggml.model")
    assert ours["tokenizer_pre"] == scalar("tokenizer.ggml.pre")
    assert ours["chat_template"] == ("tokenizer.chat_template" in ref.fields)
    return ours


@pytest.mark.parametrize("path", shared_models(),
                         ids=lambda p: os.path.relpath(p, os.path.join(SHARED, "models")))
def test_shared_model_matches_gguf_reader(path):
    compare(path)


SEEDS = sorted(os.path.join(ROOT, "tests", "fuzz_corpus", "parse_fuzz", f)
               for f in os.listdir(os.path.join(ROOT, "tests", "fuzz_corpus", "parse_fuzz"))
               if f.endswith(".gguf"))


@pytest.mark.parametrize("path", SEEDS, ids=os.path.basename)
def test_our_writer_output_matches_gguf_reader(path):
    """The fuzz seeds come from our writer (writer_test with OB_FUZZ_SEED_DIR): the reference
    reader must see in them exactly what we do."""
    compare(path)


def test_shared_models_exist():
    if not os.path.isdir(os.path.join(SHARED, "models")):
        pytest.skip(f"no shared models folder at {SHARED}/models")
    assert len(shared_models()) >= 3


def test_default_model_matches_gguf_reader():
    if not os.path.exists(DEFAULT_MODEL):
        pytest.skip(f"{DEFAULT_MODEL} absent: run scripts/fetch-default-model.sh")
    ours = compare(DEFAULT_MODEL)
    # The facts docs/MODELS.md records, as the reader sees them.
    assert ours["architecture"] == "gemma3"
    assert ours["file_type"]["name"] == "MOSTLY_Q4_K_M"
    assert set(ours["tensor_types"]) == {"F32", "Q5_0", "Q8_0", "Q4_K", "Q6_K"}
    text = subprocess.run([OUTBOARD, "info", DEFAULT_MODEL], capture_output=True, text=True)
    assert text.returncode == 0, text.stderr
    assert "Q4_K" in text.stdout and "gemma3" in text.stdout


def test_every_value_type_from_gguf_writer(tmp_path):
    """A file from the reference writer with every value type, odd strings, non-finite floats,
    big u64 values and quantized tensors, read back by us and compared with the reader."""
    path = str(tmp_path / "all-types.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 255)
    w.add_int8("t.i8", -128)
    w.add_uint16("t.u16", 65535)
    w.add_int16("t.i16", -32768)
    w.add_uint32("t.u32", 4294967295)
    w.add_int32("t.i32", -2147483648)
    w.add_uint64("t.u64", 18446744073709551615)
    w.add_int64("t.i64", -9223372036854775808)
    w.add_float32("t.f32", 0.1)
    w.add_float64("t.f64", -1e300)
    w.add_float32("t.nan", float("nan"))
    w.add_float64("t.inf", float("-inf"))
    w.add_bool("t.bool", True)
    w.add_string("t.str", "h\u00e9llo \u2581 \"quoted\"\n\ttab")
    w.add_string("t.empty", "")
    w.add_array("a.i32", [-1, 0, 1, 2147483647])
    w.add_array("a.f32", [0.5, -2.25, 3e-8])
    w.add_array("a.str", ["a", "", "\u00fc\u00f1\u00ee", "<|im_start|>"])
    w.add_array("a.bool", [True, False, True])
    w.add_key_value("a.u64", [1, 2**63 + 5], VT.ARRAY, sub_type=VT.UINT64)
    w.add_key_value("a.u8", [0, 7, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("a.f64", [1.0 / 3.0, float("inf")], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    rng = np.random.default_rng(1)
    w.add_tensor("f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((2, 2, 8)).astype(np.float16))
    q = gguf.GGMLQuantizationType
    # Quantized tensors are given as their bytes; the writer derives the element shape.
    w.add_tensor("q4_k", rng.integers(0, 256, (2, 144), dtype=np.uint8), raw_dtype=q.Q4_K)
    w.add_tensor("q8_0", rng.integers(0, 256, (1, 2, 68), dtype=np.uint8), raw_dtype=q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ours = compare(path)
    assert ours["tensor_types"]["Q4_K"] == {"count": 1, "bytes": 288}
    assert ours["file_type"]["name"] == "MOSTLY_Q4_K_M"


def test_info_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    for path, fragment in [(str(bad), "tensor count"), (str(tmp_path / "missing.gguf"), "open")]:
        proc = subprocess.run([OUTBOARD, "info", path], capture_output=True, text=True)
        assert proc.returncode == 1
        assert path in proc.stderr and fragment in proc.stderr, proc.stderr
        assert proc.stdout == ""
    proc = subprocess.run([OUTBOARD, "info"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
