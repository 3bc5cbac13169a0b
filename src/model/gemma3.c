/*
 * Architecture `gemma3`: Gemma 3 (text), the default model's family. The block differs from
 * llama's in enough places to have its own forward step, which reads top to bottom:
 *
 *   x = embed(tokens) * sqrt(n_embd)
 *   for each layer:
 *     q, k, v = Wq, Wk, Wv rmsnorm(x);  q, k = per-head rmsnorm, RoPE (NeoX order)
 *     x += rmsnorm_post(Wo attention(q * attn_scale, k, v))
 *     x += rmsnorm_post(Wdown (gelu_tanh(Wgate rmsnorm(x)) * Wup rmsnorm(x)))
 *   logits = Wout rmsnorm(x)          (Wout tied to the embeddings)
 *
 * Five layers in six use sliding-window attention over the last attention.sliding_window
 * positions with RoPE base 10000 (rope.freq_base_swa when the file has it); every sixth layer
 * is global with rope.freq_base (and rope.scaling). Their KV cache is a ring of the window
 * (backend.h), so a long context costs the global layers' cache plus a window per local layer.
 *
 * Gemma's RMSNorm multiplies by (1 + w); llama.cpp's converter stores 1 + w in the GGUF (for
 * every "*norm.weight"), so the stored vector is used as it is, as llama.cpp does.
 * The attention scale is 1/sqrt(attention.key_length), except Gemma 3 27B (62 layers), which
 * uses 1/sqrt(n_embd / n_head) (query_pre_attn_scalar in Google's config): llama.cpp decides
 * by the layer count too, as the GGUF carries no key for it.
 */
#include "model/family.h"

#include "core/err.h"

#include <math.h>

#define GEMMA3_SWA_PATTERN 6
#define GEMMA3_27B_LAYERS 62

static ob_status gemma3_hparams(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    ob_status st = model_llama_read_hparams(m, err);
    if (st) return st;
    if ((st = model_key_f32_in(m, "attention.layer_norm_rms_epsilon", 1e-6f, 0.0f,
                               MODEL_MAX_NORM_EPS, &hp->norm_eps, err)))
        return st;
    if ((st = model_llama_read_swa(m, GEMMA3_SWA_PATTERN, false, err))) return st;
    /* local layers: their own RoPE base, no position scaling */
    if ((st = model_key_f32_in(m, "rope.freq_base_swa", 10000.0f, 0.0f, MODEL_MAX_ROPE_BASE,
                               &hp->rope_base_swa, err)))
        return st;
    hp->rope_scale_swa = 1.0f;
    if (m->w.rope_freqs)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: gemma3 with rope_freqs / llama3 rope "
                       "scaling is not supported", gguf_name(m->file));
    float softcap;
    if ((st = model_key_f32_or(m, "final_logit_softcapping", 0.0f, &softcap, err))) return st;
    if (softcap != 0.0f)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: gemma3.final_logit_softcapping %g is not "
                       "supported", gguf_name(m->file), softcap);
    const float d = hp->n_layer == GEMMA3_27B_LAYERS ? (float)(hp->n_embd / hp->n_head)
                                                      : (float)hp->head_dim;
    hp->attn_scale = 1.0f / sqrtf(d);
    hp->flags.rope_neox = true;
    hp->flags.qk_norm = true;
    return OB_OK;
}

/* the norms of the attention and FFN outputs, before they join the residual stream */
static const model_tensor_row GEMMA3_POST_NORMS[] = {
    MODEL_VECTOR("post_attention_norm.weight", post_attn_norm, MODEL_DIM_EMBD, MODEL_ON_ALL),
    MODEL_VECTOR("post_ffw_norm.weight", post_ffn_norm, MODEL_DIM_EMBD, MODEL_ON_ALL),
    MODEL_ROWS_END,
};

static const model_tensor_row *const GEMMA3_TABLE[] = {
    MODEL_ROWS_LLAMA, MODEL_ROWS_QK_NORM, GEMMA3_POST_NORMS, MODEL_ROWS_SWIGLU, NULL};

const model_family MODEL_FAMILY_GEMMA3 = {"gemma3", MODEL_ARCH_GEMMA3, gemma3_hparams,
                                          GEMMA3_TABLE, model_gemma3_embed, model_gemma3_layers,
                                          NULL};

/* Layers [be->layer_lo, be->layer_hi) on the batch in buf->x (n_tok, n_embd); false when
 * s->abort stopped them between two layers. */
bool model_gemma3_layers(const ob_model *m, model_backend *be, model_buffers *b,
                          const model_step *s) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const int64_t e = hp->n_embd, qd = hp->n_head * hp->head_dim, n_tok = s->kv.n_tok;
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        const model_layer *l = &m->w.layers[il];
        if (s->abort && s->abort(s->abort_user)) return false;
        /* attention block */
        op->rmsnorm(be, b->xn, b->x, l->attn_norm, n_tok, e, hp->norm_eps); /* (n_tok, e) */
        model_llama_qkv(m, be, b, il, n_tok);          /* q (n_tok, qd), k, v (n_tok, kvd) */
        /* q is scaled before it meets the cache (not in the softmax), as llama.cpp does: the
         * F16 rounding of q then happens on the same values */
        op->scale(be, b->q, n_tok * qd, hp->attn_scale);
        op->kv_store(be, il, b->k, b->v, &s->kv);
        op->attention(be, il, b->attn, b->q, &s->kv, 1.0f);      /* (n_tok, qd) */
        op->matmul(be, b->proj, &l->wo, b->attn, n_tok);         /* (n_tok, e) */
        op->rmsnorm(be, b->proj, b->proj, l->post_attn_norm, n_tok, e, hp->norm_eps);
        op->add(be, b->x, b->proj, n_tok * e);
        /* feed-forward block */
        op->rmsnorm(be, b->xn, b->x, l->ffn_norm, n_tok, e, hp->norm_eps);
        const model_matmul gate_up[2] = {{b->gate, &l->w_gate, b->xn},  /* (n_tok, n_ff) */
                                         {b->up, &l->w_up, b->xn}};     /* (n_tok, n_ff) */
        model_matmuls(be, gate_up, 2, n_tok);
        op->geglu(be, b->gate, b->gate, b->up, n_tok * hp->n_ff);
        op->matmul(be, b->proj, &l->w_down, b->gate, n_tok);     /* (n_tok, e) */
        op->rmsnorm(be, b->proj, b->proj, l->post_ffn_norm, n_tok, e, hp->norm_eps);
        op->add(be, b->x, b->proj, n_tok * e);
    }
    return true;
}

/* Gemma scales the embedding by sqrt(n_embd). */
void model_gemma3_embed(const ob_model *m, model_backend *be, model_buffers *b,
                        const model_step *s) {
    const int64_t e = m->hp.n_embd, n_tok = s->kv.n_tok;
    be->ops->get_rows(be, &m->w.tok_embd, s->tokens, n_tok, b->x); /* (n_tok, e) */
    be->ops->scale(be, b->x, n_tok * e, sqrtf((float)e));
}
