/*
 * Architecture `qwen3`: Qwen3 dense models. The llama block (llama.c) with an RMSNorm over each
 * head of q and of k (weights attn_q_norm / attn_k_norm, one head_dim vector shared by all
 * heads) before RoPE, NeoX-order RoPE, and no projection biases. Hyperparameters come from
 * "qwen3.*" keys only (head_dim from attention.key_length: it is not n_embd / n_head there).
 */
#include "model/family.h"

static ob_status qwen3_hparams(ob_model *m, ob_err *err) {
    m->hp.flags.rope_neox = true;
    m->hp.flags.qk_norm = true;
    return model_llama_read_hparams(m, err);
}

static const model_tensor_row *const QWEN3_TABLE[] = {MODEL_ROWS_LLAMA, MODEL_ROWS_QK_NORM,
                                                      MODEL_ROWS_SWIGLU, NULL};

const model_family MODEL_FAMILY_QWEN3 = {"qwen3", MODEL_ARCH_QWEN3, qwen3_hparams, QWEN3_TABLE,
                                         model_embed_tokens, model_llama_layers, NULL};
