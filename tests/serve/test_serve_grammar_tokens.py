"""Token elements in GBNF (`<[id]>`, `!<[id]>`) against llama.cpp, the dialect's reference: the
same grammar on the same GGUF (stories260K), decoded greedily by llama.cpp (llama-cpp-python's
grammar sampler) and by a real `outboard serve` (/v1/completions `grammar`), gives the same
tokens. The grammar forces a token the model would not pick, then forbids, step by step, the
token the model would pick next, so both the positive and the negated element decide the
output; a stretch of ordinary byte-level grammar follows, mixing the two kinds of terminal.
"""
import json

import pytest

from test_serve_http import MODEL, Server

PROMPT = "Once upon a time"
STEPS = 6


@pytest.fixture(scope="module")
def llm():
    llama_cpp = pytest.importorskip("llama_cpp")
    m = llama_cpp.Llama(model_path=MODEL, n_ctx=256, n_threads=1, verbose=False, seed=0,
                        logits_all=True)
    yield llama_cpp, m
    m.close()


def ranked_next(m, tokens):
    """The tokens after `tokens`, llama.cpp's likeliest first."""
    m.reset()
    m.eval(tokens)
    scores = m.scores[m.n_tokens - 1]
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def test_token_elements_match_llama_cpp(llm):
    llama_cpp, m = llm
    prompt = m.tokenize(PROMPT.encode(), add_bos=True)
    forced = ranked_next(m, prompt)[1]  # the runner-up, which greedy decoding would not pick
    avoided = ranked_next(m, prompt + [forced])[0]  # what the model wants after it
    grammar = (f"root ::= <[{forced}]> (!<[{avoided}]>){{{STEPS}}} tail\n"
               'tail ::= [a-z ,.]{1,8}\n')
    out = m.create_completion(PROMPT, grammar=llama_cpp.LlamaGrammar.from_string(grammar,
                                                                                   verbose=False),
                              max_tokens=STEPS + 4, temperature=0, top_k=1)
    ref = out["choices"][0]["text"]

    s = Server()
    try:
        status, raw, _ = s.request("POST", "/v1/completions", {
            "prompt": PROMPT, "grammar": grammar, "max_tokens": STEPS + 4, "temperature": 0},
            timeout=60)
    finally:
        s.stop()
    assert status == 200, raw
    got = json.loads(raw)["choices"][0]["text"]
    assert got == ref, (got, ref)
    # the elements decided: the forced token first, not followed by the one the model wanted
    first = m.detokenize([forced]).decode()
    wanted = m.detokenize([forced, avoided]).decode()
    assert ref.startswith(first) and not ref.startswith(wanted), (ref, first, wanted)
