/*
 * Architecture `qwen2`: Qwen2, Qwen2.5 and the DeepSeek-R1-Distill-Qwen models. The llama block
 * (llama.c) with three differences: the q, k and v projections add a bias, RoPE rotates the
 * halves of each head (NeoX order), and small models tie the output to the embeddings (which
 * model_llama_bind already handles). Hyperparameters come from "qwen2.*" keys only.
 */
#include "model/model.h"

ob_status model_qwen2_load(ob_model *m, ob_err *err) {
    ob_status st = model_llama_read_hparams(m, err);
    if (!st) st = model_llama_bind(m, err);
    if (st) return st;
    const model_hparams *hp = &m->hp;
    const int64_t qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    for (int64_t il = 0; il < hp->n_layer; il++) {
        model_layer *l = &m->w.layers[il];
        if ((st = model_bind_layer_vector(m, il, "attn_q.bias", qd, &l->bq, err)) ||
            (st = model_bind_layer_vector(m, il, "attn_k.bias", kvd, &l->bk, err)) ||
            (st = model_bind_layer_vector(m, il, "attn_v.bias", kvd, &l->bv, err)))
            return st;
    }
    m->hp.flags.rope_neox = true;
    m->hp.flags.qkv_bias = true;
    return OB_OK;
}
