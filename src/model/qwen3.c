/*
 * Architecture `qwen3`: Qwen3 dense models. The llama block (llama.c) with an RMSNorm over each
 * head of q and of k (weights attn_q_norm / attn_k_norm, one head_dim vector shared by all
 * heads) before RoPE, NeoX-order RoPE, and no projection biases. Hyperparameters come from
 * "qwen3.*" keys only (head_dim from attention.key_length: it is not n_embd / n_head there).
 */
#include "model/model.h"

ob_status model_qwen3_load(ob_model *m, ob_err *err) {
    ob_status st = model_llama_read_hparams(m, err);
    if (!st) st = model_llama_bind(m, err);
    if (st) return st;
    const int64_t hd = m->hp.head_dim;
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        model_layer *l = &m->w.layers[il];
        if ((st = model_bind_layer_vector(m, il, "attn_q_norm.weight", hd, &l->q_norm, err)) ||
            (st = model_bind_layer_vector(m, il, "attn_k_norm.weight", hd, &l->k_norm, err)))
            return st;
    }
    m->hp.flags.rope_neox = true;
    m->hp.flags.qk_norm = true;
    return OB_OK;
}
