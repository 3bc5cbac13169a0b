/*
 * Architecture `qwen3moe`: Qwen3 mixture-of-experts models (Qwen3-30B-A3B, 235B-A22B). The
 * attention half is qwen3's (per-head q/k RMSNorm before NeoX RoPE, no biases); the FFN half
 * of every layer is a mixture of experts (moe.h) without a shared expert, its chosen weights
 * always renormalised to sum 1 (llama.cpp does so for this architecture whatever the file's
 * norm_topk_prob was).
 *
 *   x = embed(tokens)
 *   for each layer:  x += Wo attention(rope(qnorm(Wq rmsnorm(x))), rope(knorm(Wk ..)), Wv ..)
 *                    x += moe(rmsnorm(x))
 *   logits = Wout rmsnorm(x)
 */
#include "model/family.h"

#include <math.h>

static ob_status qwen3moe_hparams(ob_model *m, ob_err *err) {
    ob_status st = model_llama_read_hparams(m, err);
    if (!st) st = model_moe_read_hparams(m, false, err);
    m->hp.moe.norm_w = true;
    m->hp.flags.rope_neox = true;
    m->hp.flags.qk_norm = true;
    return st;
}

static const model_tensor_row *const QWEN3MOE_TABLE[] = {MODEL_ROWS_LLAMA, MODEL_ROWS_QK_NORM,
                                                         MODEL_ROWS_MOE, NULL};

const model_family MODEL_FAMILY_QWEN3MOE = {"qwen3moe", MODEL_ARCH_QWEN3MOE, qwen3moe_hparams,
                                            QWEN3MOE_TABLE, model_embed_tokens,
                                            model_qwen3moe_layers, NULL};

/* Layers [be->layer_lo, be->layer_hi) on the batch in buf->x (n_tok, n_embd); false when
 * s->abort stopped them between two layers. */
bool model_qwen3moe_layers(const ob_model *m, model_backend *be, model_buffers *b,
                            const model_step *s) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const int64_t e = hp->n_embd, n_tok = s->kv.n_tok;
    const float kq_scale = 1.0f / sqrtf((float)hp->head_dim);
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        const model_layer *l = &m->w.layers[il];
        if (s->abort && s->abort(s->abort_user)) return false;
        /* attention block */
        op->rmsnorm(be, b->xn, b->x, l->attn_norm, n_tok, e, hp->norm_eps); /* (n_tok, e) */
        model_llama_qkv(m, be, b, il, n_tok);
        op->kv_store(be, il, b->k, b->v, &s->kv);
        op->attention(be, il, b->attn, b->q, &s->kv, kq_scale);  /* (n_tok, n_head * hd) */
        op->matmul(be, b->proj, &l->wo, b->attn, n_tok);         /* (n_tok, e) */
        op->add(be, b->x, b->proj, n_tok * e);
        /* mixture-of-experts block */
        op->rmsnorm(be, b->xn, b->x, l->ffn_norm, n_tok, e, hp->norm_eps);
        model_moe_ffn(m, be, b->proj, b->xn, il, n_tok);          /* (n_tok, e) */
        op->add(be, b->x, b->proj, n_tok * e);
    }
    return true;
}
