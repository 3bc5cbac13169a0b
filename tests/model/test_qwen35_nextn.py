"""`outboard synth --nextn 1` (qwen35, qwen35moe): the multi-token-prediction block after the
main stack, written as llama.cpp's converter writes a checkpoint's mtp.* tensors, checked
against llama.cpp's own loader (llama-cpp-python 0.3.36 with load_mtp, which requires every
tensor of the block with the shape it expects and refuses a file with tensors it does not
use), and the main pass of such a file against llama.cpp's logits: the block is not part of it.
"""
import pytest

from conftest import llama_cpp_logits, outboard, outboard_logits
from test_families import tokens
from test_logits import check


@pytest.fixture(scope="module", params=["qwen35", "qwen35moe"])
def nextn_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("nextn") / f"{request.param}-nextn.gguf"
    outboard("synth", "--arch", request.param, "--shape", "tiny", "--type", "q8_0",
             "--nextn", "1", "-o", path)
    return request.param, str(path)


def test_nextn_keys_and_shapes(nextn_file):
    gguf = pytest.importorskip("gguf")
    arch, path = nextn_file
    r = gguf.GGUFReader(path)
    assert r.fields[f"{arch}.block_count"].contents() == 5
    assert r.fields[f"{arch}.nextn_predict_layers"].contents() == 1
    t = {x.name: [int(n) for n in x.shape] for x in r.tensors}
    e = r.fields[f"{arch}.embedding_length"].contents()
    assert t["blk.4.nextn.eh_proj.weight"] == [2 * e, e]
    for name in ("enorm", "hnorm", "shared_head_norm"):
        assert t[f"blk.4.nextn.{name}.weight"] == [e]
    for name in ("attn_norm", "post_attention_norm", "attn_q", "attn_k", "attn_v",
                 "attn_output", "attn_q_norm", "attn_k_norm"):
        assert f"blk.4.{name}.weight" in t, name
    assert "blk.4.attn_qkv.weight" not in t  # the block is full attention, not DeltaNet
    assert "blk.4.nextn.embed_tokens.weight" not in t  # shares token_embd and output
    assert not any(n.startswith("blk.5.") for n in t)


def test_llama_cpp_loads_the_mtp_block(nextn_file):
    llama_cpp = pytest.importorskip("llama_cpp")
    _, path = nextn_file
    p = llama_cpp.llama_model_default_params()
    if not hasattr(p, "load_mtp"):
        pytest.skip("llama-cpp-python without load_mtp")
    p.load_mtp = True
    m = llama_cpp.llama_model_load_from_file(path.encode(), p)
    assert m, "llama.cpp refused the file with load_mtp"
    try:
        assert llama_cpp.llama_model_n_layer(m) == 4
        nextn = getattr(llama_cpp, "llama_model_n_layer_nextn", None)
        if nextn:
            assert nextn(m) == 1
    finally:
        llama_cpp.llama_model_free(m)


def test_main_pass_ignores_the_block(nextn_file, tmp_path):
    _, path = nextn_file
    toks = tokens(24, 5)
    check(outboard_logits(path, toks, tmp_path), llama_cpp_logits(path, toks), "q8_0",
          "main pass of a file with an MTP block")


def test_nextn_refused_where_it_does_not_apply(tmp_path):
    out = outboard("synth", "--shape", "tiny", "--type", "f32", "--nextn", "1", "-o",
                   tmp_path / "x.gguf", check=False)
    assert out.returncode == 2 and "--nextn: llama has no multi-token-prediction" in out.stderr
    out = outboard("synth", "--arch", "qwen35", "--shape", "tiny", "--type", "f32", "--nextn",
                   "2", "-o", tmp_path / "x.gguf", check=False)
    assert out.returncode == 2 and "--nextn" in out.stderr
