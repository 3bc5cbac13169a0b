/*
 * Architecture `qwen2`: Qwen2, Qwen2.5 and the DeepSeek-R1-Distill-Qwen models. The llama block
 * (llama.c) with three differences: the q, k and v projections add a bias, RoPE rotates the
 * halves of each head (NeoX order), and small models tie the output to the embeddings (which
 * model_bind_all already handles). Hyperparameters come from "qwen2.*" keys only.
 */
#include "model/family.h"

static const model_tensor_row QWEN2_BIASES[] = {
    MODEL_VECTOR("attn_q.bias", bq, MODEL_DIM_Q, MODEL_ON_ATTENTION),
    MODEL_VECTOR("attn_k.bias", bk, MODEL_DIM_KV, MODEL_ON_ATTENTION),
    MODEL_VECTOR("attn_v.bias", bv, MODEL_DIM_KV, MODEL_ON_ATTENTION),
    MODEL_ROWS_END,
};

static ob_status qwen2_hparams(ob_model *m, ob_err *err) {
    m->hp.flags.rope_neox = true;
    m->hp.flags.qkv_bias = true;
    return model_llama_read_hparams(m, err);
}

static const model_tensor_row *const QWEN2_TABLE[] = {MODEL_ROWS_LLAMA, QWEN2_BIASES,
                                                      MODEL_ROWS_SWIGLU, NULL};

const model_family MODEL_FAMILY_QWEN2 = {"qwen2", MODEL_ARCH_QWEN2, qwen2_hparams, QWEN2_TABLE,
                                         model_embed_tokens, model_llama_layers, NULL};
