#!/usr/bin/env python3
"""Writes the seed corpus of the model-loader fuzz target (tests/model/model_load_fuzz.c): one
tiny GGUF per architecture outboard runs, each a few KB, with a small SentencePiece-style
vocabulary, so the fuzzer starts from files that load, evaluate and sample, and mutates their
metadata and tensors from there.

The files are written by the pinned `gguf` package (not by outboard's own writer), so the seeds
also show that what the reference writer produces loads.

    .venv/bin/python tests/model/make_load_seeds.py tests/fuzz_corpus/model_load_fuzz
"""
import os
import sys

import numpy as np
import gguf

N_VOCAB = 16
rng = np.random.default_rng(7)


def vocab(w):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in (0x0A, 0x20)]
    tokens += ["\u2581", "a", "b", "c", "\u2581a", "\u2581b", "ab", "bc", "abc", "\u2581abc", "x"]
    types = [2, 3, 3, 6, 6] + [1] * (N_VOCAB - 5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(N_VOCAB)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                        "{% endfor %}")


def tensor(w, name, shape, qtype=gguf.GGMLQuantizationType.F32):
    """shape in row-major order (n_out, n_in), as numpy holds it."""
    data = rng.standard_normal(shape).astype(np.float32) * 0.5
    if name.endswith("norm.weight"):
        data = np.abs(data) + 0.5
    if qtype == gguf.GGMLQuantizationType.F32:
        w.add_tensor(name, data)
    else:
        w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def model(path, arch, n_embd=8, n_head=2, n_kv=1, n_ff=16, n_layer=1, mat=None, tied=False,
          experts=0):
    mat = mat or gguf.GGMLQuantizationType.F32
    hd = n_embd // n_head
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"seed-{arch}")
    w.add_context_length(64)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if arch == "gemma3":
        w.add_sliding_window(4)
    if experts:
        w.add_expert_count(experts)
        w.add_expert_used_count(2)
        w.add_expert_feed_forward_length(n_ff // 2)
    vocab(w)
    tensor(w, "token_embd.weight", (N_VOCAB, n_embd), mat)
    tensor(w, "output_norm.weight", (n_embd,))
    if not tied:
        tensor(w, "output.weight", (N_VOCAB, n_embd), mat)
    for il in range(n_layer):
        b = f"blk.{il}."
        tensor(w, b + "attn_norm.weight", (n_embd,))
        tensor(w, b + "attn_q.weight", (n_head * hd, n_embd), mat)
        tensor(w, b + "attn_k.weight", (n_kv * hd, n_embd), mat)
        tensor(w, b + "attn_v.weight", (n_kv * hd, n_embd), mat)
        tensor(w, b + "attn_output.weight", (n_embd, n_head * hd), mat)
        tensor(w, b + "ffn_norm.weight", (n_embd,))
        if experts:  # 3-D, (n_expert, rows, row length) as numpy holds them
            tensor(w, b + "ffn_gate_inp.weight", (experts, n_embd))
            tensor(w, b + "ffn_gate_exps.weight", (experts, n_ff // 2, n_embd), mat)
            tensor(w, b + "ffn_up_exps.weight", (experts, n_ff // 2, n_embd), mat)
            tensor(w, b + "ffn_down_exps.weight", (experts, n_embd, n_ff // 2), mat)
        else:
            tensor(w, b + "ffn_gate.weight", (n_ff, n_embd), mat)
            tensor(w, b + "ffn_up.weight", (n_ff, n_embd), mat)
            tensor(w, b + "ffn_down.weight", (n_embd, n_ff), mat)
        if arch == "qwen2":
            tensor(w, b + "attn_q.bias", (n_head * hd,))
            tensor(w, b + "attn_k.bias", (n_kv * hd,))
            tensor(w, b + "attn_v.bias", (n_kv * hd,))
        if arch in ("qwen3", "gemma3", "qwen3moe"):
            tensor(w, b + "attn_q_norm.weight", (hd,))
            tensor(w, b + "attn_k_norm.weight", (hd,))
        if arch == "gemma3":
            tensor(w, b + "post_attention_norm.weight", (n_embd,))
            tensor(w, b + "post_ffw_norm.weight", (n_embd,))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def qwen35(path, n_embd=8, n_head=2, n_kv=1, hd=4, n_ff=16, ds=4, n_k=1, n_v=2, nextn=False):
    """Two layers: a Gated DeltaNet layer, then gated full attention (interval 2); with nextn,
    a multi-token-prediction block after them (blk.2, as llama.cpp's converter writes it)."""
    w = gguf.GGUFWriter(path, "qwen35")
    w.add_name("seed-qwen35")
    w.add_context_length(64)
    w.add_embedding_length(n_embd)
    w.add_block_count(3 if nextn else 2)
    if nextn:
        w.add_nextn_predict_layers(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(2)
    w.add_rope_dimension_sections([1, 0, 0, 0])
    w.add_ssm_conv_kernel(4)
    w.add_ssm_state_size(ds)
    w.add_ssm_group_count(n_k)
    w.add_ssm_time_step_rank(n_v)
    w.add_ssm_inner_size(n_v * ds)
    w.add_full_attention_interval(2)
    vocab(w)
    conv_dim, vd = (2 * n_k + n_v) * ds, n_v * ds
    tensor(w, "token_embd.weight", (N_VOCAB, n_embd))
    tensor(w, "output_norm.weight", (n_embd,))
    tensor(w, "output.weight", (N_VOCAB, n_embd))
    for il in range(3 if nextn else 2):
        b = f"blk.{il}."
        tensor(w, b + "attn_norm.weight", (n_embd,))
        tensor(w, b + "post_attention_norm.weight", (n_embd,))
        if il == 0:
            tensor(w, b + "attn_qkv.weight", (conv_dim, n_embd))
            tensor(w, b + "attn_gate.weight", (vd, n_embd))
            tensor(w, b + "ssm_conv1d.weight", (conv_dim, 4))
            tensor(w, b + "ssm_dt.bias", (n_v,))
            w.add_tensor(b + "ssm_a", -np.abs(rng.standard_normal(n_v)).astype(np.float32))
            tensor(w, b + "ssm_alpha.weight", (n_v, n_embd))
            tensor(w, b + "ssm_beta.weight", (n_v, n_embd))
            tensor(w, b + "ssm_norm.weight", (ds,))
            tensor(w, b + "ssm_out.weight", (n_embd, vd))
        else:
            tensor(w, b + "attn_q.weight", (2 * n_head * hd, n_embd))
            tensor(w, b + "attn_k.weight", (n_kv * hd, n_embd))
            tensor(w, b + "attn_v.weight", (n_kv * hd, n_embd))
            tensor(w, b + "attn_output.weight", (n_embd, n_head * hd))
            tensor(w, b + "attn_q_norm.weight", (hd,))
            tensor(w, b + "attn_k_norm.weight", (hd,))
        tensor(w, b + "ffn_gate.weight", (n_ff, n_embd))
        tensor(w, b + "ffn_up.weight", (n_ff, n_embd))
        tensor(w, b + "ffn_down.weight", (n_embd, n_ff))
        if il == 2:
            tensor(w, b + "nextn.eh_proj.weight", (n_embd, 2 * n_embd))
            for name in ("enorm", "hnorm", "shared_head_norm"):
                tensor(w, b + f"nextn.{name}.weight", (n_embd,))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz_corpus/model_load_fuzz"
    os.makedirs(out, exist_ok=True)
    q8 = gguf.GGMLQuantizationType.Q8_0
    model(os.path.join(out, "llama-f32"), "llama")
    model(os.path.join(out, "llama-q8_0-2layers"), "llama", n_embd=32, n_head=4, n_kv=2,
          n_ff=64, n_layer=2, mat=q8)
    model(os.path.join(out, "qwen2-f32"), "qwen2")
    model(os.path.join(out, "qwen3-f32-tied"), "qwen3", tied=True)
    model(os.path.join(out, "gemma3-f32"), "gemma3", tied=True)
    model(os.path.join(out, "qwen3moe-q8_0-4experts"), "qwen3moe", n_embd=32, n_head=4, n_kv=2,
          n_ff=64, n_layer=2, mat=q8, experts=4)
    qwen35(os.path.join(out, "qwen35-f32"))
    qwen35(os.path.join(out, "qwen35-f32-nextn"), nextn=True)


if __name__ == "__main__":
    main()
