"""Shared helpers for the engine's reference tests: run `outboard eval` and llama.cpp (through
the pinned llama-cpp-python) on the same file and tokens, and compare their logits."""
import os
import shlex
import subprocess

import numpy as np
import pytest

BUILD = os.environ.get("OB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                  "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
# OB_RUNNER: a command that runs the binary, e.g. qemu-aarch64-static for the Arm build
# (`make neon-model-test`), as tests/run_tests.py takes it for the C tests.
RUNNER = shlex.split(os.environ.get("OB_RUNNER", ""))


def shared(rel):
    path = os.path.join(SHARED, rel)
    if not os.path.exists(path):
        pytest.skip(f"{rel} not found under {SHARED}")
    return path


def outboard(*args, check=True, **kw):
    proc = subprocess.run([*RUNNER, OUTBOARD, *map(str, args)], capture_output=True, text=True,
                          **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"outboard {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def outboard_logits(model, tokens, tmp_path, chunk=0, ctx=None, threads=2, env=None):
    """env: variables added to this process's environment (e.g. OB_ISA) for the run."""
    out = tmp_path / "logits.bin"
    args = ["eval", "-m", model, "--tokens", ",".join(map(str, tokens)), "--logits", out,
            "--threads", threads, "--chunk", chunk]
    if ctx:
        args += ["--ctx", ctx]
    outboard(*args, env={**os.environ, **env} if env else None)
    return np.fromfile(out, dtype=np.float32).reshape(len(tokens), -1)


def llama_cpp_logits(model, tokens, n_ctx=512):
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=max(n_ctx, len(tokens)), n_batch=512,
                          logits_all=True, n_threads=1, verbose=False, seed=1)
    llm.eval(list(tokens))
    scores = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close()
    return scores


def compare(ours, ref):
    """max |diff| / logit range (per position, worst case), and where the argmaxes differ."""
    assert ours.shape == ref.shape, f"shape {ours.shape} vs reference {ref.shape}"
    diff = np.abs(ours.astype(np.float64) - ref)
    rel = float((diff.max(axis=1) / (ref.max(axis=1) - ref.min(axis=1))).max())
    top2 = np.sort(ref, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    mismatch = np.nonzero(ours.argmax(axis=1) != ref.argmax(axis=1))[0]
    return float(diff.max()), rel, mismatch, gap


def renamed(src, dst, old, new):
    """src (an F32 file: its tensors copy as plain arrays) rewritten with tensor old named
    new."""
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, f.contents(), f.types[0], sub)
    for t in r.tensors:
        w.add_tensor(new if t.name == old else t.name, np.array(t.data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
