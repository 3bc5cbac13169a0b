/*
 * Qwen3.5's multi-token-prediction block (qwen35_mtp.h): binding its tensors as llama.cpp's
 * loader names them (load_block_mtp in its models/qwen35.cpp and qwen35moe.cpp) and its forward
 * pass, the math of llama.cpp's graph_mtp, on the CPU kernels of src/cpu with a cache of its
 * own. A qwen35moe block's FFN is the stack's mixture-of-experts block: bound from the same
 * table rows as the stack's layers (moe.c) and run by the same cpu_moe_ffn.
 */
#include "model/qwen35_mtp.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cpu/matmul.h"
#include "cpu/moe.h"
#include "cpu/ops.h"
#include "cpu/pool.h"
#include "model/family.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- binding --------------------------------------------------------------------------- */

static ob_status bind_vectors(ob_model *m, int64_t il, model_mtp *w, ob_err *err) {
    const int64_t e = m->hp.n_embd, hd = m->hp.head_dim;
    const struct {
        const char *suffix;
        int64_t n;
        float **out;
    } vecs[] = {
        {"nextn.enorm.weight", e, &w->enorm},       {"nextn.hnorm.weight", e, &w->hnorm},
        {"attn_norm.weight", e, &w->attn_norm},     {"post_attention_norm.weight", e, &w->ffn_norm},
        {"attn_q_norm.weight", hd, &w->q_norm},     {"attn_k_norm.weight", hd, &w->k_norm},
    };
    ob_status st;
    char name[96];
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, vecs[i].suffix);
        if ((st = model_bind_vector(m, name, vecs[i].n, vecs[i].out, err))) return st;
    }
    snprintf(name, sizeof name, "blk.%lld.nextn.shared_head_norm.weight", (long long)il);
    if (gguf_tensor_find(m->file, name)) return model_bind_vector(m, name, e, &w->head_norm, err);
    return OB_OK;
}

/* A tensor the block may carry of its own, else the model's (embedding, output head). */
static ob_status bind_shared(ob_model *m, int64_t il, const char *suffix, const model_weight *dflt,
                             model_weight *out, ob_err *err) {
    char name[96];
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, suffix);
    if (!gguf_tensor_find(m->file, name)) {
        *out = *dflt;
        return OB_OK;
    }
    return model_bind_matrix(m, name, m->hp.n_embd, m->hp.n_vocab, out, err);
}

/* The rows of a mixture-of-experts FFN: router, experts (separate or merged gate and up), the
 * shared expert and its gate, as the stack's qwen35moe layers hold them. */
static const model_tensor_row *const MTP_MOE_ROWS[] = {MODEL_ROWS_MOE, MODEL_ROWS_SHARED_EXPERT,
                                                      NULL};

/* Binds the block's MoE FFN into w->moe through the stack's binder, as a full-attention layer
 * with a MoE FFN would be bound; the block owns w->moe from its allocation, bound or not. */
static ob_status bind_moe(ob_model *m, int64_t il, model_mtp *w, ob_err *err) {
    model_layer l = {.kind = MODEL_LAYER_ATTENTION, .ffn = MODEL_FFN_MOE};
    ob_status st = model_moe_layer_new(m, &l.moe, err);
    w->moe = l.moe;
    return st ? st : model_bind_layer_rows(m, MTP_MOE_ROWS, il, &l, err);
}

static ob_status bind_block(ob_model *m, int64_t il, model_mtp *w, ob_err *err) {
    const model_hparams *hp = &m->hp;
    const int64_t e = hp->n_embd, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    const bool moe = hp->moe.n_expert > 0;
    const struct {
        const char *suffix;
        int64_t n_in, n_out;
        model_weight *out;
    } mats[] = {
        {"nextn.eh_proj.weight", 2 * e, e, &w->eh_proj},
        {"attn_q.weight", e, 2 * qd, &w->wq},  /* per head: q, then its gate */
        {"attn_k.weight", e, kvd, &w->wk},     {"attn_v.weight", e, kvd, &w->wv},
        {"attn_output.weight", qd, e, &w->wo},
        /* the dense FFN, last: a mixture-of-experts block binds its own instead */
        {"ffn_gate.weight", e, hp->n_ff, &w->w_gate},
        {"ffn_up.weight", e, hp->n_ff, &w->w_up}, {"ffn_down.weight", hp->n_ff, e, &w->w_down},
    };
    const size_t n_mats = sizeof mats / sizeof mats[0] - (moe ? 3 : 0);
    char name[96];
    ob_status st;
    for (size_t i = 0; i < n_mats; i++) {
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, mats[i].suffix);
        if ((st = model_bind_matrix(m, name, mats[i].n_in, mats[i].n_out, mats[i].out, err)))
            return st;
    }
    if (moe && (st = bind_moe(m, il, w, err))) return st;
    if ((st = bind_shared(m, il, "nextn.embed_tokens.weight", &m->w.tok_embd, &w->embed, err)) ||
        (st = bind_shared(m, il, "nextn.shared_head_head.weight", &m->w.output, &w->head, err)))
        return st;
    return bind_vectors(m, il, w, err);
}

bool model_mtp_arch_runs(const char *arch) { return strcmp(arch, "qwen3next") != 0; }

ob_status model_mtp_bind(ob_model *m, int64_t il, ob_err *err) {
    if (!model_mtp_arch_runs(m->hp.arch_name)) {
        ob_fail(&m->mtp_err, OB_ERR_UNSUPPORTED, "%s: the multi-token-prediction block of %s is "
                "not supported", gguf_name(m->file), m->hp.arch_name);
        return OB_OK;
    }
    /* Owned by the model from here on, bound or not: the weights it binds are in the model's
     * table, which must not point into freed memory. */
    if (!(m->mtp = ob_calloc(1, sizeof *m->mtp)))
        return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    m->mtp->usable = !bind_block(m, il, m->mtp, &m->mtp_err);
    return OB_OK;
}

void model_mtp_free(model_mtp *w) {
    if (!w) return;
    float *vecs[] = {w->enorm, w->hnorm, w->head_norm, w->attn_norm, w->ffn_norm, w->q_norm,
                     w->k_norm};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) ob_free(vecs[i]);
    model_moe_layer_free(w->moe);
    ob_free(w);
}

bool model_mtp_available(const ob_model *m, const char **why) {
    if (m->mtp && m->mtp->usable) return true;
    if (why)
        *why = m->mtp_err.msg[0] ? m->mtp_err.msg
                                 : "the model has no multi-token-prediction block "
                                   "(nextn_predict_layers)";
    return false;
}

/* ---- evaluation ------------------------------------------------------------------------ */

/* the block's matrices; the dense FFN's last, absent from a mixture-of-experts block */
enum { W_EH, W_EMBED, W_HEAD, W_Q, W_K, W_V, W_O, W_GATE, W_UP, W_DOWN, W_COUNT };

struct model_mtp_ctx {
    const ob_model *m;     /* borrowed */
    const model_mtp *w;    /* borrowed: m->mtp */
    cpu_pool *pool;        /* owned */
    cpu_weight cw[W_COUNT]; /* the block's matrices with this CPU's kernels */
    cpu_moe moe;           /* its mixture-of-experts FFN over experts (n_expert 0: dense) */
    cpu_weight *experts;   /* (3 n_expert) owned: the gate views, then up, then down, prepared */
    cpu_moe_scratch *moe_scratch; /* owned: for max_rows tokens; NULL when dense */
    int32_t n_seq;
    int64_t n_ctx, max_rows;
    uint16_t *k, *v;       /* (n_seq * n_ctx, n_head_kv * head_dim) f16: position p of sequence
                              s in row s * n_ctx + p */
    /* scratch of one pass of max_rows entries, f32 */
    float *emb, *cat;      /* (rows, n_embd), (rows, 2 n_embd) */
    float *x, *xn, *proj;  /* (rows, n_embd) */
    float *qg, *q, *gate;  /* (rows, 2 qd), (rows, qd), (rows, qd) */
    float *kk, *vv, *attn; /* (rows, kvd), (rows, kvd), (rows, qd) */
    float *ff_gate, *ff_up; /* (rows, n_ff) the dense FFN's; (rows, 1) unused by experts */
    float *attn_scratch;   /* cpu_attn_scratch_floats(n_ctx, head_dim, threads) */
    int32_t *pos, *seq;    /* (rows) */
    void *wsp;             /* matmul scratch, 64-aligned */
};

void model_mtp_ctx_free(model_mtp_ctx *x) {
    if (!x) return;
    cpu_pool_free(x->pool);
    void *bufs[] = {x->k,  x->v,    x->emb,  x->cat,     x->x,     x->xn,
                    x->proj, x->qg, x->q,    x->gate,    x->kk,    x->vv,
                    x->attn, x->ff_gate, x->ff_up, x->attn_scratch, x->pos, x->seq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ob_free(bufs[i]);
    ob_free(x->experts);
    cpu_moe_scratch_free(x->moe_scratch);
    ob_free_aligned(x->wsp);
    ob_free(x);
}

/* *c = src prepared for this CPU's kernels; *wsize grows to its matmul scratch at max_rows. */
static ob_status prepare(const model_mtp_ctx *x, const model_weight *src, cpu_weight *c,
                         size_t *wsize, ob_err *err) {
    *c = (cpu_weight){.name = src->name, .data = src->data, .type = src->type,
                      .n_in = src->n_in, .n_out = src->n_out, .row_size = src->row_size};
    ob_status st = cpu_weight_init(c, err);
    if (st) return st;
    const size_t need = cpu_matmul_wsize(c, x->max_rows);
    if (need > *wsize) *wsize = need;
    return OB_OK;
}

/* x->moe over the block's MoE weights (moe.h's block, as the CPU backend makes its layers'),
 * with scratch for max_rows tokens. */
static ob_status init_moe(model_mtp_ctx *x, size_t *wsize, ob_err *err) {
    const model_moe_block *b = &x->w->moe->ffn;
    const int64_t ne = b->n_expert;
    x->experts = ob_calloc((size_t)(3 * ne), sizeof *x->experts);
    x->moe_scratch = cpu_moe_scratch_new(x->max_rows, b->n_embd, ne, b->n_used, b->n_ff,
                                         b->n_ff_sh);
    if (!x->experts || !x->moe_scratch)
        return ob_fail(err, OB_ERR_NOMEM, "MTP block: out of memory for its experts");
    const model_weight *views[3] = {b->gate, b->up, b->down};
    ob_status st;
    for (int p = 0; p < 3; p++)
        for (int64_t e = 0; e < ne; e++)
            if ((st = prepare(x, &views[p][e], &x->experts[p * ne + e], wsize, err))) return st;
    x->moe = (cpu_moe){.n_expert = ne, .n_used = b->n_used, .n_embd = b->n_embd, .n_ff = b->n_ff,
                       .norm = b->norm, .scale = b->scale, .gate = x->experts,
                       .up = x->experts + ne, .down = x->experts + 2 * ne,
                       .n_ff_sh = b->n_ff_sh};
    if ((st = prepare(x, &b->router, &x->moe.router, wsize, err))) return st;
    if (b->n_ff_sh > 0 &&
        ((st = prepare(x, &b->sh_gate, &x->moe.sh_gate, wsize, err)) ||
         (st = prepare(x, &b->sh_up, &x->moe.sh_up, wsize, err)) ||
         (st = prepare(x, &b->sh_down, &x->moe.sh_down, wsize, err)) ||
         (st = prepare(x, &b->sh_gate_w, &x->moe.sh_gate_w, wsize, err))))
        return st;
    const size_t need = cpu_moe_wsize(&x->moe, x->max_rows); /* an expert may get every row */
    if (need > *wsize) *wsize = need;
    return OB_OK;
}

static ob_status init_weights(model_mtp_ctx *x, ob_err *err) {
    const model_mtp *w = x->w;
    const model_weight *src[W_COUNT] = {&w->eh_proj, &w->embed, &w->head, &w->wq,   &w->wk,
                                        &w->wv,      &w->wo,    &w->w_gate, &w->w_up, &w->w_down};
    size_t wsize = 0;
    ob_status st;
    for (int i = 0; i < (w->moe ? W_GATE : W_COUNT); i++)
        if ((st = prepare(x, src[i], &x->cw[i], &wsize, err))) return st;
    if (w->moe && (st = init_moe(x, &wsize, err))) return st;
    x->wsp = ob_alloc_aligned(64, wsize ? wsize : 64);
    return x->wsp ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "MTP block: out of memory");
}

ob_status model_mtp_ctx_new(const ob_model *m, int32_t n_seq, int64_t n_ctx, int64_t max_rows,
                            int n_threads, model_mtp_ctx **out, ob_err *err) {
    *out = NULL;
    const char *why;
    if (!model_mtp_available(m, &why)) return ob_fail(err, OB_ERR_UNSUPPORTED, "%s", why);
    if (n_seq < 1 || n_ctx < 1 || max_rows < 1 || n_threads < 1)
        return ob_fail(err, OB_ERR_ARG, "MTP block: %d sequences, %lld positions, %lld rows, "
                       "%d threads, expected at least 1 each", n_seq, (long long)n_ctx,
                       (long long)max_rows, n_threads);
    const model_hparams *hp = &m->hp;
    model_mtp_ctx *x = ob_calloc(1, sizeof *x);
    if (!x) return ob_fail(err, OB_ERR_NOMEM, "MTP block: out of memory");
    *x = (model_mtp_ctx){.m = m, .w = m->mtp, .n_seq = n_seq, .n_ctx = n_ctx,
                         .max_rows = max_rows};
    const size_t r = (size_t)max_rows, e = (size_t)hp->n_embd,
                 qd = (size_t)(hp->n_head * hp->head_dim),
                 kvd = (size_t)(hp->n_head_kv * hp->head_dim),
                 ff = m->mtp->moe ? 1 : (size_t)hp->n_ff;
    size_t cache = 0;
    ob_status st = cpu_pool_new(n_threads, &x->pool, err);
    if (!st && ob_mul_size((size_t)n_seq * (size_t)n_ctx, kvd, &cache))
        st = ob_fail(err, OB_ERR_LIMIT, "MTP block: a cache of %d x %lld positions overflows",
                     n_seq, (long long)n_ctx);
    if (!st) st = init_weights(x, err);
    if (st) {
        model_mtp_ctx_free(x);
        return st;
    }
    x->k = ob_calloc(cache, sizeof *x->k);
    x->v = ob_calloc(cache, sizeof *x->v);
    x->emb = ob_alloc(r * e, sizeof(float));
    x->cat = ob_alloc(r * 2 * e, sizeof(float));
    x->x = ob_alloc(r * e, sizeof(float));
    x->xn = ob_alloc(r * e, sizeof(float));
    x->proj = ob_alloc(r * e, sizeof(float));
    x->qg = ob_alloc(r * 2 * qd, sizeof(float));
    x->q = ob_alloc(r * qd, sizeof(float));
    x->gate = ob_alloc(r * qd, sizeof(float));
    x->kk = ob_alloc(r * kvd, sizeof(float));
    x->vv = ob_alloc(r * kvd, sizeof(float));
    x->attn = ob_alloc(r * qd, sizeof(float));
    x->ff_gate = ob_alloc(r * ff, sizeof(float));
    x->ff_up = ob_alloc(r * ff, sizeof(float));
    x->attn_scratch = ob_alloc(cpu_attn_scratch_floats(n_ctx, hp->head_dim, n_threads),
                               sizeof(float));
    x->pos = ob_alloc(r, sizeof(int32_t));
    x->seq = ob_alloc(r, sizeof(int32_t));
    if (!x->k || !x->v || !x->emb || !x->cat || !x->x || !x->xn || !x->proj || !x->qg ||
        !x->q || !x->gate || !x->kk || !x->vv || !x->attn || !x->ff_gate || !x->ff_up ||
        !x->attn_scratch || !x->pos || !x->seq) {
        model_mtp_ctx_free(x);
        return ob_fail(err, OB_ERR_NOMEM, "MTP block: out of memory for %d sequences of %lld "
                       "positions", n_seq, (long long)n_ctx);
    }
    *out = x;
    return OB_OK;
}

static void matmul(model_mtp_ctx *x, float *y, int which, const float *in, int64_t n) {
    cpu_matmul(x->pool, y, &x->cw[which], in, n, x->wsp);
}

/* x->x = eh_proj (enorm(embedding) | hnorm(h)) for n entries. */
static void project_inputs(model_mtp_ctx *x, const int32_t *tok, const float *h, int64_t n) {
    const model_hparams *hp = &x->m->hp;
    const int64_t e = hp->n_embd;
    cpu_get_rows(&x->cw[W_EMBED], tok, n, x->emb);
    cpu_rmsnorm(x->pool, x->emb, x->emb, x->w->enorm, n, e, hp->norm_eps);
    cpu_rmsnorm(x->pool, x->xn, h, x->w->hnorm, n, e, hp->norm_eps);
    for (int64_t i = 0; i < n; i++) { /* the embedding's half first, as llama.cpp's concat */
        memcpy(x->cat + i * 2 * e, x->emb + i * e, (size_t)e * sizeof(float));
        memcpy(x->cat + i * 2 * e + e, x->xn + i * e, (size_t)e * sizeof(float));
    }
    matmul(x, x->x, W_EH, x->cat, n);
}

/* x->x += the gated attention of the block over seq's cache, the n entries stored first. */
static void attention(model_mtp_ctx *x, int32_t seq, int64_t pos0, int64_t n) {
    const model_hparams *hp = &x->m->hp;
    const int64_t e = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv,
                  qd = nh * hd, kvd = nkv * hd;
    cpu_rmsnorm(x->pool, x->xn, x->x, x->w->attn_norm, n, e, hp->norm_eps);
    matmul(x, x->qg, W_Q, x->xn, n);
    for (int64_t r = 0; r < n * nh; r++) { /* per head: q, then its gate */
        memcpy(x->q + r * hd, x->qg + r * 2 * hd, (size_t)hd * sizeof(float));
        memcpy(x->gate + r * hd, x->qg + r * 2 * hd + hd, (size_t)hd * sizeof(float));
    }
    matmul(x, x->kk, W_K, x->xn, n);
    matmul(x, x->vv, W_V, x->xn, n);
    cpu_rmsnorm(x->pool, x->q, x->q, x->w->q_norm, n * nh, hd, hp->norm_eps);
    cpu_rmsnorm(x->pool, x->kk, x->kk, x->w->k_norm, n * nkv, hd, hp->norm_eps);
    for (int64_t i = 0; i < n; i++) {
        x->pos[i] = (int32_t)(pos0 + i);
        x->seq[i] = seq;
    }
    const cpu_rope_params rp = {.n_dims = hp->n_rot, .freq_base = hp->rope_base,
                                .freq_scale = hp->rope_freq_scale,
                                .freq_factors = x->m->w.rope_freqs, .neox = true};
    cpu_rope(x->pool, x->q, n, nh, hd, x->pos, &rp);
    cpu_rope(x->pool, x->kk, n, nkv, hd, x->pos, &rp);
    for (int64_t i = 0; i < n; i++) {
        const size_t row = ((size_t)seq * (size_t)x->n_ctx + (size_t)(pos0 + i)) * (size_t)kvd;
        for (int64_t j = 0; j < kvd; j++) {
            x->k[row + (size_t)j] = cpu_f32_to_f16(x->kk[i * kvd + j]);
            x->v[row + (size_t)j] = cpu_f32_to_f16(x->vv[i * kvd + j]);
        }
    }
    const cpu_attn_args a = {.q = x->q, .k = x->k, .v = x->v, .out = x->attn, .n_tok = n,
                             .pos0 = pos0, .n_head = nh, .n_head_kv = nkv, .head_dim = hd,
                             .kv_stride = kvd, .scale = 1.0f / sqrtf((float)hd),
                             .scratch = x->attn_scratch, .n_rows = x->n_ctx, .pos = x->pos,
                             .seq = x->seq, .n_kv = pos0 + n};
    cpu_attention(x->pool, &a);
    for (int64_t i = 0; i < n * qd; i++) x->attn[i] *= 1.0f / (1.0f + expf(-x->gate[i]));
    matmul(x, x->proj, W_O, x->attn, n);
    cpu_add(x->pool, x->x, x->proj, n * e);
}

/* x->x += the feed-forward of rmsnorm(x) * post_attention_norm: SwiGLU, or the routed experts
 * plus the gated shared expert (cpu/moe.h). */
static void feed_forward(model_mtp_ctx *x, int64_t n) {
    const model_hparams *hp = &x->m->hp;
    const int64_t e = hp->n_embd;
    cpu_rmsnorm(x->pool, x->xn, x->x, x->w->ffn_norm, n, e, hp->norm_eps);
    if (x->w->moe) {
        cpu_moe_ffn(x->pool, x->moe_scratch, x->proj, x->xn, &x->moe, n, x->wsp);
        cpu_add(x->pool, x->x, x->proj, n * e);
        return;
    }
    matmul(x, x->ff_gate, W_GATE, x->xn, n);
    matmul(x, x->ff_up, W_UP, x->xn, n);
    cpu_swiglu(x->pool, x->ff_gate, x->ff_gate, x->ff_up, n * hp->n_ff);
    matmul(x, x->proj, W_DOWN, x->ff_gate, n);
    cpu_add(x->pool, x->x, x->proj, n * e);
}

ob_status model_mtp_eval(model_mtp_ctx *x, int32_t seq, int64_t pos0, const int32_t *tok,
                         const float *h, int64_t n, float *h_last, float *logits, ob_err *err) {
    const model_hparams *hp = &x->m->hp;
    if (seq < 0 || seq >= x->n_seq || n < 1 || n > x->max_rows || pos0 < 0 ||
        pos0 + n > x->n_ctx)
        return ob_fail(err, OB_ERR_ARG, "MTP block: %lld entries of sequence %d at position "
                       "%lld, expected 1..%lld entries of 0..%d within %lld positions",
                       (long long)n, seq, (long long)pos0, (long long)x->max_rows,
                       x->n_seq - 1, (long long)x->n_ctx);
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= hp->n_vocab)
            return ob_fail(err, OB_ERR_ARG, "MTP block: token id %d, expected 0..%lld", tok[i],
                           (long long)(hp->n_vocab - 1));
    const int64_t e = hp->n_embd;
    project_inputs(x, tok, h, n);
    attention(x, seq, pos0, n);
    feed_forward(x, n);
    if (!h_last && !logits) return OB_OK;
    const float *norm = x->w->head_norm ? x->w->head_norm : x->m->w.output_norm;
    float *last = x->xn; /* (1, e): the last entry's h_out */
    cpu_rmsnorm_row(last, x->x + (n - 1) * e, norm, e, hp->norm_eps);
    if (h_last) memcpy(h_last, last, (size_t)e * sizeof(float));
    if (logits) matmul(x, logits, W_HEAD, last, 1);
    return OB_OK;
}
