#!/usr/bin/env python3
"""Tokenizing 100 KB of mixed text: outboard vs llama.cpp (llama-cpp-python) on the same vocabularies.

The text is the tokenizer test corpus (tests/tokenizer/corpus/*.txt: prose, code, CJK, Arabic,
emoji, combining marks, digits, whitespace, chat markup) repeated to 102,400 bytes and cut at a
character boundary. Both sides tokenize it whole (no BOS, no special parsing), several times;
the figure is process CPU time per run (best of the repeats for llama.cpp, mean for outboard's
--bench loop), so time spent descheduled on a shared machine does not count. Also checks that
both give the same ids.

    python3 bench/tokenize_bench.py [MODEL.gguf ...]
        default: shared vocabularies, Gemma 3 (models/) and the Qwen2 vocabulary from the pinned
        GGUF chunk package (tests/requirements.txt) when installed
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(os.environ.get("OB_BUILD", os.path.join(ROOT, "build")), "outboard")
RUNS = 10


def text_100k():
    parts = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "tests", "tokenizer",
                                                                           "corpus", "*.txt")))]
    blob = b"".join(parts)
    data = (blob * (102400 // len(blob) + 1))[:102400]
    return data.decode("utf-8", "ignore").encode("utf-8")  # drop a character cut in half


def ours(model, path):
    args = [OUTBOARD, "tokenize", "-m", model, "--no-bos", "--ids", "-f", path, "--bench", str(RUNS)]
    p = subprocess.run(args, capture_output=True, text=True, check=True)
    ms = float(p.stderr.split(" in ")[1].split(" ms")[0])
    return ms, json.loads(p.stdout)


def llama_cpp(model, data):
    from llama_cpp import Llama
    l = Llama(model_path=model, vocab_only=True, verbose=False)
    best, ids = None, None
    for _ in range(RUNS):
        t0 = time.process_time()
        ids = l.tokenize(data, add_bos=False, special=False)
        dt = (time.process_time() - t0) * 1e3
        best = dt if best is None else min(best, dt)
    return best, ids


def qwen_vocab(tmp):
    """The Qwen2 vocab-only GGUF, built as the tokenizer tests build it; None if unavailable."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "tokenizer"))
    try:
        import test_tokenizer_reference as t
        pkg = __import__(t.QWEN_PKG)
        import gguf
    except ImportError:
        return None
    with open(os.path.join(os.path.dirname(pkg.__file__), "model_part_0000"), "rb") as f:
        kv = t.read_kv(f.read(16 << 20))
    out = os.path.join(tmp, "qwen2-vocab.gguf")
    w = gguf.GGUFWriter(out, kv["general.architecture"][1])
    vt = gguf.GGUFValueType
    for key, (ty, val) in kv.items():
        if key.startswith("tokenizer.") and key != "tokenizer.chat_template":
            if ty == 9:
                w.add_key_value(key, val[1], vt.ARRAY, vt(val[0]))
            else:
                w.add_key_value(key, val, vt(ty))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    return out


def main():
    models = sys.argv[1:] or [
        os.path.join(SHARED, "models", "vocab", f"ggml-vocab-{n}.gguf")
        for n in ("llama-spm", "gpt-2", "deepseek-llm", "starcoder", "bert-bge")]
    gemma = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
    if not sys.argv[1:] and os.path.exists(gemma):
        models.append(gemma)
    tmp = tempfile.mkdtemp()
    if not sys.argv[1:]:
        qwen = qwen_vocab(tmp)
        if qwen:
            models.append(qwen)
    data = text_100k()
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        f.write(data)
    print(f"{len(data)} bytes of text, {RUNS} runs each\n")
    print("| vocabulary | tokens | outboard ms | llama.cpp ms | ids equal |")
    print("| --- | ---: | ---: | ---: | --- |")
    for m in models:
        o_ms, o_ids = ours(m, f.name)
        l_ms, l_ids = llama_cpp(m, data)
        print(f"| {os.path.basename(m)} | {len(o_ids)} | {o_ms:.1f} | {l_ms:.1f} | "
              f"{'yes' if o_ids == l_ids else 'NO'} |")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
