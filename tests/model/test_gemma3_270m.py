"""The default model, Gemma 3 270M (Q4_K_M; scripts/fetch-default-model.sh), against llama.cpp
(pinned llama-cpp-python) on the same file:

- greedy generation: 64 tokens after each of 5 prompts, `outboard run --temp 0` against
  llama.cpp's argmax step by step (prompt evaluated in one pass, then one token per pass, as
  both engines generate);
- perplexity over the first 2,046 tokens of tests/model/data/alice-chapter1.txt (Lewis
  Carroll, Alice's Adventures in Wonderland, 1865, chapter I: public domain; line breaks as in
  Project Gutenberg's plain-text edition, the rows of asterisks left out): two windows of 1,024
  tokens (BOS + 1,023 of the text), each from an empty cache, every token after the first
  scored; the windows are longer than the 512-position sliding window, so the local layers'
  ring cache and masking are in play. Ours must be within 1% of llama.cpp's.

Greedy identity: both engines quantize activations to Q8_0/Q8_K and sum in different orders;
on this model (outlier-heavy residual stream, 18 layers) that moves logits by about 1 logit
(of a range near 45) between the engines, and by as much between llama.cpp's own batched and
one-token passes. The generations must agree token for token up to any step where llama.cpp's
own top-2 gap is inside that noise (1% of its logit range, ~0.45 logits), a near tie after
which the sequences may part; the test prints how many tokens matched, and fails on any
difference at a step with a clear winner.

Skipped when the model has not been fetched, and under the sanitizer build (minutes of
instrumented matmuls; the synthetic gemma3 tests in test_families.py cover the same code).
"""
import os
import subprocess

import numpy as np
import pytest

from conftest import BUILD, outboard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.environ.get("OB_DEFAULT_MODEL") or os.path.join(ROOT, "models",
                                                           "gemma-3-270m-q4_k_m.gguf")
TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "alice-chapter1.txt")
NLL_TOOL = os.path.join(BUILD, "tests", "model", "nll_tool")
SANITIZED = os.path.basename(os.path.normpath(BUILD)) == "build-san"
BAND = 0.01  # of llama.cpp's logit range at that step
WINDOW = 1024

PROMPTS = ["The capital of France is",
           "Once upon a time, in a small village,",
           "Water boils at a temperature of",
           "The three primary colors are",
           "def fibonacci(n):"]

pytestmark = pytest.mark.skipif(SANITIZED, reason="Gemma 3 270M reference runs skipped under "
                                "sanitizers (slow); the normal pass runs them")


@pytest.fixture(scope="module")
def llm():
    if not os.path.exists(MODEL):
        pytest.skip(f"{MODEL} absent: run scripts/fetch-default-model.sh")
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=MODEL, n_ctx=WINDOW, n_batch=512, logits_all=True,
                            n_threads=2, verbose=False)
    yield model
    model.close()


def reference_greedy(llm, prompt, n):
    llm.reset()
    llm.eval(prompt)
    steps = []
    for _ in range(n):
        logits = np.array(llm.scores[llm.n_tokens - 1])
        top2 = np.sort(logits)[-2:]
        steps.append((int(np.argmax(logits)), float(top2[1] - top2[0]),
                      float(logits.max() - logits.min())))
        llm.eval([steps[-1][0]])
    return steps


def test_gemma3_270m_greedy_matches_llama_cpp(llm):
    n, full = 64, 0
    for text in PROMPTS:
        prompt = llm.tokenize(text.encode(), add_bos=True)
        proc = outboard("run", "-m", MODEL, "--tokens", ",".join(map(str, prompt)), "-n", n,
                        "--temp", 0, "--ids", "--ignore-eos", "--threads", 2)
        ours = [int(t) for t in proc.stdout.split()]
        assert len(ours) == n, proc.stdout
        steps = reference_greedy(llm, prompt, n)
        ref = [s[0] for s in steps]
        matched = next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), n)
        full += matched == n
        print(f"{text!r}: {matched}/{n} tokens identical"
              + ("" if matched == n else f", then a near tie (llama.cpp top-2 gap "
                 f"{steps[matched][1]:.3f} of range {steps[matched][2]:.1f})"))
        if matched < n:
            tok, gap, rng = steps[matched]
            assert gap <= BAND * rng, (f"{text!r}: step {matched}: ours {ours[matched]}, "
                                       f"llama.cpp {tok} with a clear top-2 gap {gap:.3f}")
    print(f"{full} of {len(PROMPTS)} generations identical in full")


def windows(llm):
    with open(TEXT, "rb") as f:
        ids = llm.tokenize(f.read(), add_bos=False)
    assert len(ids) >= 2 * (WINDOW - 1), len(ids)
    bos = llm.token_bos()
    n = 2 * (WINDOW - 1)
    return [[bos] + ids[i:i + WINDOW - 1] for i in range(0, n, WINDOW - 1)]


def reference_nll(llm, window):
    llm.reset()
    llm.eval(window)
    logits = np.array(llm.scores[: len(window) - 1], dtype=np.float64)
    mx = logits.max(axis=1, keepdims=True)
    logz = np.log(np.exp(logits - mx).sum(axis=1)) + mx[:, 0]
    return float((logz - logits[np.arange(len(window) - 1), window[1:]]).sum())


def test_gemma3_270m_perplexity_matches_llama_cpp(llm):
    if not os.path.exists(NLL_TOOL):
        pytest.skip(f"{NLL_TOOL} not built (make test builds it)")
    wins = windows(llm)
    proc = subprocess.run([NLL_TOOL, MODEL, str(WINDOW)], capture_output=True, text=True,
                          input="".join(",".join(map(str, w)) + "\n" for w in wins))
    assert proc.returncode == 0, proc.stderr
    ours = [line.split() for line in proc.stdout.strip().splitlines()]
    assert [int(o[2]) for o in ours] == [len(w) - 1 for w in wins]
    n = sum(len(w) - 1 for w in wins)
    ppl_ours = float(np.exp(sum(float(o[1]) for o in ours) / n))
    ppl_ref = float(np.exp(sum(reference_nll(llm, w) for w in wins) / n))
    print(f"perplexity over {n} tokens in {len(wins)} windows of <= {WINDOW}: outboard "
          f"{ppl_ours:.4f}, llama.cpp {ppl_ref:.4f} ({100 * (ppl_ours / ppl_ref - 1):+.3f}%)")
    assert abs(ppl_ours / ppl_ref - 1) < 0.01
