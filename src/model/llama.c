/*
 * Architecture `llama`: Llama 2 and 3.x, Mistral (with its sliding window when the file sets
 * llama.attention.sliding_window), TinyStories. Its hyperparameter reading, tensor rows and
 * layer loop also serve qwen2 (q/k/v biases) and qwen3 (per-head q/k norms) through flags and
 * rows of their own. Hyperparameters come only from the GGUF metadata; tensors are bound by
 * name with their shapes checked (family.h); the forward step below reads top to bottom.
 *
 *   x = embed(tokens)
 *   for each layer:  x += Wo attention(rope(Wq rmsnorm(x)), rope(Wk ..), Wv ..)
 *                    x += Wdown (silu(Wgate rmsnorm(x)) * Wup rmsnorm(x))
 *   logits = Wout rmsnorm(x)
 */
#include "model/family.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LLAMA_MAX_LAYERS 4096
#define LLAMA_MAX_HEAD_DIM 1024

/* ---- hyperparameters ------------------------------------------------------------------- */

static ob_status read_sizes(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    ob_status st;
    if ((st = model_key_i64(m, "embedding_length", &hp->n_embd, err))) return st;
    if ((st = model_key_i64(m, "block_count", &hp->n_layer, err))) return st;
    /* mixture-of-experts files may have no dense width (Qwen3.5 MoE): the experts' stands
     * in for it (the shared expert's default) */
    int64_t ff_exp;
    if ((st = model_key_i64_or(m, "expert_feed_forward_length", 0, &ff_exp, err))) return st;
    if (ff_exp > 0) st = model_key_i64_or(m, "feed_forward_length", ff_exp, &hp->n_ff, err);
    else st = model_key_i64(m, "feed_forward_length", &hp->n_ff, err);
    if (st) return st;
    if ((st = model_key_i64(m, "attention.head_count", &hp->n_head, err))) return st;
    if ((st = model_key_i64_or(m, "context_length", 2048, &hp->n_ctx_train, err))) return st;
    if ((st = model_key_i64_or(m, "attention.head_count_kv", hp->n_head, &hp->n_head_kv, err)))
        return st;
    if (hp->n_embd <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_ff <= 0 ||
        hp->n_layer <= 0 || hp->n_layer > LLAMA_MAX_LAYERS || hp->n_ctx_train <= 0 ||
        hp->n_ctx_train > MODEL_MAX_CTX)
        return ob_fail(err, OB_ERR_FORMAT,
                       "%s: hyperparameters out of range: n_embd %lld, n_layer %lld, n_head "
                       "%lld, n_head_kv %lld, n_ff %lld, context_length %lld (expected "
                       "positive, block_count <= %d, context_length <= %d)",
                       gguf_name(m->file), (long long)hp->n_embd, (long long)hp->n_layer,
                       (long long)hp->n_head, (long long)hp->n_head_kv, (long long)hp->n_ff,
                       (long long)hp->n_ctx_train, LLAMA_MAX_LAYERS, MODEL_MAX_CTX);
    if (hp->n_head % hp->n_head_kv)
        return ob_fail(err, OB_ERR_FORMAT, "%s: head_count %lld is not a multiple of "
                       "head_count_kv %lld", gguf_name(m->file), (long long)hp->n_head,
                       (long long)hp->n_head_kv);
    if ((st = model_key_i64_or(m, "attention.key_length", hp->n_embd / hp->n_head,
                               &hp->head_dim, err)))
        return st;
    int64_t v_len;
    if ((st = model_key_i64_or(m, "attention.value_length", hp->head_dim, &v_len, err)))
        return st;
    if ((st = model_key_i64_or(m, "rope.dimension_count", hp->head_dim, &hp->n_rot, err)))
        return st;
    if (hp->head_dim <= 0 || hp->head_dim > LLAMA_MAX_HEAD_DIM || v_len != hp->head_dim ||
        hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "%s: head dims key %lld, value %lld, rope %lld: expected key = value "
                       "<= %d and an even rope dimension <= key",
                       gguf_name(m->file), (long long)hp->head_dim, (long long)v_len,
                       (long long)hp->n_rot, LLAMA_MAX_HEAD_DIM);
    return OB_OK;
}

/* Llama 3.1 frequency factors computed from rope.scaling.* when the file has no rope_freqs
 * tensor (the converter usually writes one; then that tensor is used as it is). */
static ob_status llama3_factors(ob_model *m, float factor, ob_err *err) {
    model_hparams *hp = &m->hp;
    float lo_f, hi_f, orig_f;
    ob_status st;
    if ((st = model_key_f32_in(m, "rope.scaling.low_freq_factor", 1.0f, 0.0f,
                               MODEL_MAX_ROPE_FACTOR, &lo_f, err)) ||
        (st = model_key_f32_in(m, "rope.scaling.high_freq_factor", 4.0f, 0.0f,
                               MODEL_MAX_ROPE_FACTOR, &hi_f, err)) ||
        (st = model_key_f32_in(m, "rope.scaling.original_context_length", 8192.0f, 0.0f,
                               (float)MODEL_MAX_CTX, &orig_f, err)))
        return st;
    if (hi_f <= lo_f)
        return ob_fail(err, OB_ERR_FORMAT, "%s: rope.scaling high_freq_factor %g <= "
                       "low_freq_factor %g", gguf_name(m->file), hi_f, lo_f);
    m->w.rope_freqs = ob_alloc((size_t)hp->n_rot / 2, sizeof(float));
    if (!m->w.rope_freqs) return ob_fail(err, OB_ERR_NOMEM, "rope factors: out of memory");
    model_llama3_rope_factors(hp->rope_base, hp->n_rot, factor, lo_f, hi_f, orig_f,
                              m->w.rope_freqs);
    return OB_OK;
}

void model_llama3_rope_factors(float base, int64_t n_rot, float factor, float lo_f, float hi_f,
                               float orig_ctx, float *out) {
    const double lo_wave = orig_ctx / lo_f, hi_wave = orig_ctx / hi_f;
    for (int64_t i = 0; i < n_rot / 2; i++) {
        double freq = 1.0 / pow(base, (double)(2 * i) / (double)n_rot);
        double wave = 2.0 * M_PI / freq, f;
        if (wave < hi_wave) f = 1.0;
        else if (wave > lo_wave) f = factor;
        else {
            double smooth = (orig_ctx / wave - lo_f) / (hi_f - lo_f);
            f = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        out[i] = (float)f;
    }
}

/* RoPE base, linear scaling, Llama 3 frequency factors. */
static ob_status read_rope(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    ob_status st;
    if ((st = model_key_f32_in(m, "rope.freq_base", 10000.0f, 0.0f, MODEL_MAX_ROPE_BASE,
                               &hp->rope_base, err)))
        return st;
    if ((st = model_key_f32_in(m, "attention.layer_norm_rms_epsilon", 1e-5f, 0.0f,
                               MODEL_MAX_NORM_EPS, &hp->norm_eps, err)))
        return st;
    hp->rope_freq_scale = 1.0f;
    if (gguf_tensor_find(m->file, "rope_freqs.weight"))
        return model_bind_vector(m, "rope_freqs.weight", hp->n_rot / 2, &m->w.rope_freqs, err);
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch_name);
    if (!gguf_kv_find(m->file, key)) return OB_OK;
    ob_str type;
    float factor;
    if ((st = gguf_get_str(m->file, key, &type, err))) return st;
    if (ob_str_eq_cstr(type, "none")) return OB_OK;
    if ((st = model_key_f32_in(m, "rope.scaling.factor", 1.0f, 0.0f, MODEL_MAX_ROPE_FACTOR,
                               &factor, err)))
        return st;
    if (ob_str_eq_cstr(type, "linear")) {
        hp->rope_freq_scale = 1.0f / factor;
        return OB_OK;
    }
    if (ob_str_eq_cstr(type, "llama3")) return llama3_factors(m, factor, err);
    return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: %s '%.*s' is not supported (none, linear, "
                   "llama3)", gguf_name(m->file), key, OB_STR_FMT(type));
}

ob_status model_llama_read_hparams(ob_model *m, ob_err *err) {
    ob_status st = read_sizes(m, err);
    if (!st) st = read_rope(m, err);
    return st;
}

ob_status model_llama_read_swa(ob_model *m, int64_t pattern, bool required, ob_err *err) {
    model_hparams *hp = &m->hp;
    hp->rope_base_swa = hp->rope_base;
    hp->rope_scale_swa = hp->rope_freq_scale;
    ob_status st = required ? model_key_i64(m, "attention.sliding_window", &hp->n_swa, err)
                            : model_key_i64_or(m, "attention.sliding_window", 0, &hp->n_swa, err);
    if (st) return st;
    if (hp->n_swa < 0 || hp->n_swa > MODEL_MAX_CTX)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s.attention.sliding_window %lld, expected "
                       "0..%d", gguf_name(m->file), hp->arch_name, (long long)hp->n_swa,
                       MODEL_MAX_CTX);
    if (hp->n_swa == 0) return OB_OK;
    hp->swa = ob_calloc((size_t)hp->n_layer, sizeof *hp->swa);
    if (!hp->swa) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    /* As llama.cpp: with a pattern of n, layers n-1, 2n-1, ... are global; 0 = none is. */
    for (int64_t il = 0; il < hp->n_layer; il++)
        hp->swa[il] = pattern == 0 || il % pattern < pattern - 1;
    return OB_OK;
}

/* ---- the family ------------------------------------------------------------------------ */

const model_tensor_row MODEL_ROWS_LLAMA[] = {
    MODEL_VECTOR("attn_norm.weight", attn_norm, MODEL_DIM_EMBD, MODEL_ON_ALL),
    MODEL_MATRIX("attn_q.weight", wq, MODEL_DIM_EMBD, MODEL_DIM_Q, MODEL_ON_ATTENTION),
    MODEL_MATRIX("attn_k.weight", wk, MODEL_DIM_EMBD, MODEL_DIM_KV, MODEL_ON_ATTENTION),
    MODEL_MATRIX("attn_v.weight", wv, MODEL_DIM_EMBD, MODEL_DIM_KV, MODEL_ON_ATTENTION),
    MODEL_MATRIX("attn_output.weight", wo, MODEL_DIM_Q, MODEL_DIM_EMBD, MODEL_ON_ATTENTION),
    MODEL_VECTOR("ffn_norm.weight", ffn_norm, MODEL_DIM_EMBD, MODEL_ON_ALL),
    MODEL_ROWS_END,
};

const model_tensor_row MODEL_ROWS_SWIGLU[] = {
    MODEL_MATRIX("ffn_gate.weight", w_gate, MODEL_DIM_EMBD, MODEL_DIM_FF, MODEL_ON_DENSE),
    MODEL_MATRIX("ffn_up.weight", w_up, MODEL_DIM_EMBD, MODEL_DIM_FF, MODEL_ON_DENSE),
    MODEL_MATRIX("ffn_down.weight", w_down, MODEL_DIM_FF, MODEL_DIM_EMBD, MODEL_ON_DENSE),
    MODEL_ROWS_END,
};

/* one head_dim vector each, shared by all heads */
const model_tensor_row MODEL_ROWS_QK_NORM[] = {
    MODEL_VECTOR("attn_q_norm.weight", q_norm, MODEL_DIM_HEAD, MODEL_ON_ATTENTION),
    MODEL_VECTOR("attn_k_norm.weight", k_norm, MODEL_DIM_HEAD, MODEL_ON_ATTENTION),
    MODEL_ROWS_END,
};

/* Mistral-style: every layer sees the last sliding_window positions when the file says so */
static ob_status llama_hparams(ob_model *m, ob_err *err) {
    ob_status st = model_llama_read_hparams(m, err);
    if (!st) st = model_llama_read_swa(m, 0, false, err);
    return st;
}

static const model_tensor_row *const LLAMA_TABLE[] = {MODEL_ROWS_LLAMA, MODEL_ROWS_SWIGLU, NULL};

const model_family MODEL_FAMILY_LLAMA = {"llama", MODEL_ARCH_LLAMA, llama_hparams, LLAMA_TABLE,
                                         model_embed_tokens, model_llama_layers, NULL};

/* ---- forward --------------------------------------------------------------------------- */

/* q, k, v (n_tok rows) of layer l from buf->xn: projections, biases (qwen2), per-head norms
 * (qwen3), RoPE with the layer's base. */
void model_llama_qkv(const ob_model *m, model_backend *be, model_buffers *b, int64_t il,
                     int64_t n_tok) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const model_layer *l = &m->w.layers[il];
    const int64_t hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    const bool swa = l->kind == MODEL_LAYER_SLIDING;
    const model_rope rp = {.n_dims = hp->n_rot,
                                .freq_base = swa ? hp->rope_base_swa : hp->rope_base,
                                .freq_scale = swa ? hp->rope_scale_swa : hp->rope_freq_scale,
                                .freq_factors = m->w.rope_freqs, .neox = hp->flags.rope_neox};
    const model_matmul qkv[3] = {{b->q, &l->wq, b->xn},  /* (n_tok, n_head * hd) */
                                 {b->k, &l->wk, b->xn},  /* (n_tok, n_head_kv * hd) */
                                 {b->v, &l->wv, b->xn}}; /* (n_tok, n_head_kv * hd) */
    model_matmuls(be, qkv, 3, n_tok);
    if (hp->flags.qkv_bias) {
        op->add_bias(be, b->q, l->bq, n_tok, qd);
        op->add_bias(be, b->k, l->bk, n_tok, kvd);
        op->add_bias(be, b->v, l->bv, n_tok, kvd);
    }
    if (hp->flags.qk_norm) { /* each head's row of hd is one RMSNorm row */
        op->rmsnorm(be, b->q, b->q, l->q_norm, n_tok * hp->n_head, hd, hp->norm_eps);
        op->rmsnorm(be, b->k, b->k, l->k_norm, n_tok * hp->n_head_kv, hd, hp->norm_eps);
    }
    op->rope(be, b->q, n_tok, hp->n_head, hd, b->pos, &rp);
    op->rope(be, b->k, n_tok, hp->n_head_kv, hd, b->pos, &rp);
}

/* Layers [be->layer_lo, be->layer_hi) on the batch in buf->x (n_tok, n_embd); false when
 * s->abort stopped them between two layers. */
bool model_llama_layers(const ob_model *m, model_backend *be, model_buffers *b,
                         const model_step *s) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const int64_t e = hp->n_embd, hd = hp->head_dim, n_tok = s->kv.n_tok;
    const float kq_scale = 1.0f / sqrtf((float)hd);
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        const model_layer *l = &m->w.layers[il];
        if (s->abort && s->abort(s->abort_user)) return false;
        /* attention block */
        op->rmsnorm(be, b->xn, b->x, l->attn_norm, n_tok, e, hp->norm_eps); /* (n_tok, e) */
        model_llama_qkv(m, be, b, il, n_tok);
        op->kv_store(be, il, b->k, b->v, &s->kv);                /* each row's cache row (f16) */
        op->attention(be, il, b->attn, b->q, &s->kv, kq_scale);  /* (n_tok, n_head * hd) */
        op->matmul(be, b->proj, &l->wo, b->attn, n_tok);         /* (n_tok, e) */
        op->add(be, b->x, b->proj, n_tok * e);
        /* feed-forward block */
        model_llama_ffn(m, be, b, l, n_tok);
    }
    return true;
}

void model_forward_logits(const ob_model *m, model_backend *be, model_buffers *b,
                          const model_step *s) {
    const int64_t e = m->hp.n_embd, n_out = s->n_out;
    if (s->hidden_all) { /* read on the host, as the rows below */
        be->ops->rmsnorm(be, b->xn, b->x, m->w.output_norm, s->kv.n_tok, e, m->hp.norm_eps);
        if (be->ops->sync) be->ops->sync(be, NULL);
        memcpy(s->hidden_all, b->xn, (size_t)(s->kv.n_tok * e) * sizeof(float));
    }
    if (n_out == 0) return; /* a middle piece of a long prompt: only the cache matters */
    /* Only the rows asked for need logits: norm and project just those. The last n_out rows
     * (a prompt's last token, or all of them) are read in place. */
    const float *rows = b->x + (s->kv.n_tok - n_out) * e;      /* (n_out, e) */
    if (s->out_rows[0] != s->kv.n_tok - n_out) {
        /* read on the host: a device backend must have run the layers first (a failure
         * there is reported by the step's own sync) */
        if (be->ops->sync) be->ops->sync(be, NULL);
        for (int64_t i = 0; i < n_out; i++)
            memcpy(b->proj + i * e, b->x + s->out_rows[i] * e, (size_t)e * sizeof(float));
        rows = b->proj;
    }
    be->ops->rmsnorm(be, b->xn, rows, m->w.output_norm, n_out, e, m->hp.norm_eps);
    if (s->hidden) { /* embeddings: the normed rows themselves, read on the host */
        if (be->ops->sync) be->ops->sync(be, NULL);
        memcpy(s->logits, b->xn, (size_t)(n_out * e) * sizeof(float));
        return;
    }
    be->ops->matmul(be, s->logits, &m->w.output, b->xn, n_out); /* (n_out, n_vocab) */
}

void model_llama_ffn(const ob_model *m, model_backend *be, model_buffers *b,
                     const model_layer *l, int64_t n_tok) {
    const model_backend_ops *op = be->ops;
    const model_hparams *hp = &m->hp;
    const int64_t e = hp->n_embd;
    op->rmsnorm(be, b->xn, b->x, l->ffn_norm, n_tok, e, hp->norm_eps);
    const model_matmul gate_up[2] = {{b->gate, &l->w_gate, b->xn},  /* (n_tok, n_ff) */
                                     {b->up, &l->w_up, b->xn}};     /* (n_tok, n_ff) */
    model_matmuls(be, gate_up, 2, n_tok);
    op->swiglu(be, b->gate, b->gate, b->up, n_tok * hp->n_ff);
    op->matmul(be, b->proj, &l->w_down, b->gate, n_tok);     /* (n_tok, e) */
    op->add(be, b->x, b->proj, n_tok * e);
}

void model_embed_tokens(const ob_model *m, model_backend *be, model_buffers *b,
                        const model_step *s) {
    be->ops->get_rows(be, &m->w.tok_embd, s->tokens, s->kv.n_tok, b->x); /* (n_tok, e) */
}
