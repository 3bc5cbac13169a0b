/*
 * The CPU backend: the op table of backend.h over src/cpu/, with the F16 KV cache and the
 * matmul scratch it owns. Layer il of the model is layer il - layer_lo of the cache. A
 * full-attention layer's cache has one row per KV pool position (block b's rows are
 * b * KV_BLOCK..), read through each sequence's block table; a sliding-window layer's has one
 * ring of model_swa_rows rows per sequence, sequence s's at rows s * model_swa_rows...
 */
#include "model/backend.h"
#include "model/backend_cpu_rs.h"
#include "model/stream.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cpu/matmul.h"
#include "cpu/moe.h"
#include "cpu/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cpu_backend {
    model_backend base;
    model_backend_shape shape;
    cpu_pool *pool;
    uint16_t *k_cache; /* per layer (model_layer_rows, n_head_kv * head_dim) f16, back to back */
    uint16_t *v_cache; /* same layout */
    size_t *layer_off; /* (n_layer + 1) element offset of each layer's cache */
    cpu_weight *w;     /* (shape.weights->n) by weight id: the weights its layers read,
                          prepared for this CPU's kernels (.qt NULL for the others) */
    int64_t n_w;
    cpu_moe *moe_blk;  /* (n_layer) its layers' MoE blocks over w (n_expert 0 when dense) */
    size_t wsize;      /* bytes of wsp: the largest matmul scratch over w at n_batch */
    void *wsp;         /* activations in vec_dot_type */
    float *attn_scratch; /* cpu_attn_scratch_floats(n_ctx, head_dim, n_threads) */
    cpu_moe_scratch *moe; /* MoE blocks' scratch for n_batch tokens, NULL when dense */
    model_cpu_rs *rs;  /* recurrent state of the DeltaNet layers (backend_cpu_rs.c), or NULL */
} cpu_backend;

static cpu_backend *as_cpu(model_backend *be) { return (cpu_backend *)be; }

static int64_t kv_row(const cpu_backend *b) { return b->shape.n_head_kv * b->shape.head_dim; }

static uint16_t *layer_k(cpu_backend *b, int64_t il) {
    return b->k_cache + b->layer_off[il - b->base.layer_lo];
}

static uint16_t *layer_v(cpu_backend *b, int64_t il) {
    return b->v_cache + b->layer_off[il - b->base.layer_lo];
}

/* Element offsets of each layer's cache into off (n_layer + 1); false on overflow. */
static bool layer_offsets(const model_backend_shape *s, int64_t layer_lo, size_t *off) {
    const size_t row = (size_t)(s->n_head_kv * s->head_dim);
    off[0] = 0;
    for (int64_t l = 0; l < s->n_layer; l++) {
        size_t n;
        if (ob_mul_size((size_t)model_layer_rows(s, layer_lo + l), row, &n) ||
            off[l] + n < off[l])
            return false;
        off[l + 1] = off[l] + n;
    }
    return true;
}

size_t model_kv_bytes(const model_backend_shape *s, int64_t layer_lo) {
    size_t *off = ob_alloc((size_t)s->n_layer + 1, sizeof *off), bytes = 0;
    if (off && layer_offsets(s, layer_lo, off) &&
        ob_mul_size(off[s->n_layer], 2 * sizeof(uint16_t), &bytes))
        bytes = 0;
    ob_free(off);
    return bytes;
}

/* The prepared form of w. The model's ops name only weights of the backend's range; any other
 * is a broken invariant, where running on would read the wrong memory. */
static const cpu_weight *prepared(const cpu_backend *b, const model_weight *w) {
    if (w->id >= 0 && w->id < b->n_w && b->w[w->id].qt) return &b->w[w->id];
    fprintf(stderr, "cpu backend: weight '%s' (id %d) is not one of layers %lld..%lld\n",
            w->name, w->id, (long long)b->base.layer_lo, (long long)b->base.layer_hi - 1);
    abort();
}

static void be_get_rows(model_backend *be, const model_weight *w, const int32_t *ids, int64_t n,
                        float *out) {
    cpu_get_rows(prepared(as_cpu(be), w), ids, n, out);
}

static void be_rmsnorm(model_backend *be, float *out, const float *x, const float *w,
                       int64_t n_rows, int64_t n, float eps) {
    cpu_rmsnorm(as_cpu(be)->pool, out, x, w, n_rows, n, eps);
}

static void be_matmul(model_backend *be, float *y, const model_weight *w, const float *x,
                      int64_t n_tok) {
    if (model_stream_matmul(be->stream, y, w, x, n_tok)) return; /* a prompt chunk's, maybe */
    cpu_matmul(as_cpu(be)->pool, y, prepared(as_cpu(be), w), x, n_tok, as_cpu(be)->wsp);
}

/* Decode's products of one token go through cpu_matmul_many (one pass of the pool for all
 * of them) when their scratch fits wsp. A prompt's products keep a pass each: they are long
 * enough that a pass's cost does not show, and their scratch is sized for one at a time. */
static void be_matmul_many(model_backend *be, const model_matmul *mm, int n, int64_t n_tok) {
    cpu_backend *b = as_cpu(be);
    enum { MAX_JOBS = 8 };
    cpu_matmul_job jobs[MAX_JOBS] = {{0}};
    if (n_tok == 1 && n <= MAX_JOBS) {
        for (int i = 0; i < n; i++)
            jobs[i] = (cpu_matmul_job){mm[i].y, prepared(b, mm[i].w), mm[i].x, n_tok};
        if (cpu_matmul_many_wsize(jobs, n) <= b->wsize) {
            cpu_matmul_many(b->pool, jobs, n, b->wsp);
            return;
        }
    }
    for (int i = 0; i < n; i++) be_matmul(be, mm[i].y, mm[i].w, mm[i].x, n_tok);
}

static void be_rope(model_backend *be, float *x, int64_t n_tok, int64_t n_head,
                    int64_t head_dim, const int32_t *pos, const model_rope *rp) {
    const cpu_rope_params p = {.n_dims = rp->n_dims, .freq_base = rp->freq_base,
                               .freq_scale = rp->freq_scale, .freq_factors = rp->freq_factors,
                               .neox = rp->neox};
    cpu_rope(as_cpu(be)->pool, x, n_tok, n_head, head_dim, pos, &p);
}

/* Cache row of batch row t on layer il: its pool slot, or its sequence's ring row. */
static int64_t store_row(const cpu_backend *b, int64_t il, const model_kv_batch *kv, int64_t t) {
    if (!model_layer_is_swa(&b->shape, il)) return kv->slot[t];
    const int64_t rows = model_swa_rows(&b->shape);
    return kv->seq[t] * rows + kv->pos[t] % rows;
}

static void be_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                        const model_kv_batch *kv) {
    cpu_backend *b = as_cpu(be);
    const int64_t row = kv_row(b);
    for (int64_t t = 0; t < kv->n_tok; t++) {
        const int64_t r = store_row(b, il, kv, t);
        uint16_t *kc = layer_k(b, il) + r * row, *vc = layer_v(b, il) + r * row;
        for (int64_t i = 0; i < row; i++) {
            kc[i] = cpu_f32_to_f16(k[t * row + i]);
            vc[i] = cpu_f32_to_f16(v[t * row + i]);
        }
    }
}

static void be_attention(model_backend *be, int64_t il, float *out, const float *q,
                         const model_kv_batch *kv, float scale) {
    cpu_backend *b = as_cpu(be);
    const bool swa = model_layer_is_swa(&b->shape, il);
    cpu_attn_args a = {
        .q = q, .k = layer_k(b, il), .v = layer_v(b, il), .out = out, .n_tok = kv->n_tok,
        .n_head = b->shape.n_head, .n_head_kv = b->shape.n_head_kv,
        .head_dim = b->shape.head_dim, .kv_stride = kv_row(b), .scale = scale,
        .scratch = b->attn_scratch, .pos = kv->pos, .n_kv = kv->n_kv,
        .n_swa = swa ? b->shape.n_swa : 0,
        /* a ring per sequence on sliding-window layers, the pool's blocks elsewhere */
        .n_rows = swa ? model_swa_rows(&b->shape) : 0, .seq = swa ? kv->seq : NULL,
        .blocks = swa ? NULL : kv->blocks, .block_size = KV_BLOCK,
    };
    cpu_attention(b->pool, &a);
}

static void be_kv_copy(model_backend *be, const kv_copy *copies, int64_t n) {
    cpu_backend *b = as_cpu(be);
    const size_t row = (size_t)kv_row(b);
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        if (model_layer_is_swa(&b->shape, il) || model_layer_is_recurrent(&b->shape, il))
            continue;
        for (int64_t i = 0; i < n; i++) {
            const size_t src = (size_t)copies[i].src * KV_BLOCK * row;
            const size_t dst = (size_t)copies[i].dst * KV_BLOCK * row;
            const size_t bytes = (size_t)copies[i].n_rows * row * sizeof(uint16_t);
            memcpy(layer_k(b, il) + dst, layer_k(b, il) + src, bytes);
            memcpy(layer_v(b, il) + dst, layer_v(b, il) + src, bytes);
        }
    }
}

static void be_seq_copy(model_backend *be, int32_t src, int32_t dst) {
    cpu_backend *b = as_cpu(be);
    const size_t ring = (size_t)model_swa_rows(&b->shape) * (size_t)kv_row(b);
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        if (!model_layer_is_swa(&b->shape, il) || src == dst) continue;
        memcpy(layer_k(b, il) + (size_t)dst * ring, layer_k(b, il) + (size_t)src * ring,
               ring * sizeof(uint16_t));
        memcpy(layer_v(b, il) + (size_t)dst * ring, layer_v(b, il) + (size_t)src * ring,
               ring * sizeof(uint16_t));
    }
}

static void be_swiglu(model_backend *be, float *out, const float *gate, const float *up,
                      int64_t n) {
    cpu_swiglu(as_cpu(be)->pool, out, gate, up, n);
}

static void be_add(model_backend *be, float *x, const float *y, int64_t n) {
    cpu_add(as_cpu(be)->pool, x, y, n);
}

static void be_geglu(model_backend *be, float *out, const float *gate, const float *up,
                     int64_t n) {
    cpu_geglu(as_cpu(be)->pool, out, gate, up, n);
}

static void be_scale(model_backend *be, float *x, int64_t n, float s) {
    cpu_scale(as_cpu(be)->pool, x, n, s);
}

static void be_add_bias(model_backend *be, float *x, const float *bias, int64_t n_rows,
                        int64_t n) {
    cpu_add_bias(as_cpu(be)->pool, x, bias, n_rows, n);
}

static void be_moe_ffn(model_backend *be, int64_t il, float *out, const float *x,
                       int64_t n_tok) {
    cpu_backend *b = as_cpu(be);
    cpu_moe_ffn(b->pool, b->moe, out, x, &b->moe_blk[il - be->layer_lo], n_tok, b->wsp);
}

static void be_deltanet(model_backend *be, int64_t il, float *out, float *qkv, const float *z,
                        float *alpha, float *beta, const model_kv_batch *kv,
                        const model_dnet_weights *w) {
    model_cpu_rs_deltanet(as_cpu(be)->rs, as_cpu(be)->pool, il, out, qkv, z, alpha, beta, kv, w);
}

static void be_rs_copy(model_backend *be, int32_t src, int src_slot, int32_t dst, int dst_slot) {
    model_cpu_rs_copy(as_cpu(be)->rs, src, src_slot, dst, dst_slot);
}

static void be_split_gate(model_backend *be, float *q, float *gate, const float *qg,
                          int64_t n_rows, int64_t hd) {
    (void)be;
    for (int64_t r = 0; r < n_rows; r++) {
        memcpy(q + r * hd, qg + 2 * r * hd, (size_t)hd * sizeof(float));
        memcpy(gate + r * hd, qg + (2 * r + 1) * hd, (size_t)hd * sizeof(float));
    }
}

static void be_sigmoid_mul(model_backend *be, float *x, const float *gate, int64_t n) {
    (void)be;
    for (int64_t i = 0; i < n; i++) x[i] *= 1.0f / (1.0f + expf(-gate[i]));
}

static void be_free(model_backend *be) {
    cpu_backend *b = as_cpu(be);
    if (!b) return;
    cpu_moe_scratch_free(b->moe);
    cpu_pool_free(b->pool);
    ob_free(b->w);
    ob_free(b->moe_blk);
    ob_free_aligned(b->k_cache);
    ob_free_aligned(b->v_cache);
    ob_free_aligned(b->wsp);
    ob_free_aligned(b->attn_scratch);
    ob_free(b->layer_off);
    model_cpu_rs_free(b->rs);
    ob_free(b);
}

static const model_backend_ops CPU_OPS = {
    .name = "cpu", .get_rows = be_get_rows, .rmsnorm = be_rmsnorm, .matmul = be_matmul,
    .matmul_many = be_matmul_many, .rope = be_rope, .kv_store = be_kv_store,
    .attention = be_attention, .swiglu = be_swiglu,
    .add = be_add, .geglu = be_geglu, .scale = be_scale, .add_bias = be_add_bias,
    .kv_copy = be_kv_copy, .seq_copy = be_seq_copy, .free = be_free, .moe_ffn = be_moe_ffn,
    .deltanet = be_deltanet, .rs_copy = be_rs_copy, .split_gate = be_split_gate,
    .sigmoid_mul = be_sigmoid_mul,
};

/* Aligned buffer of n * size bytes (at least one byte), or NULL on overflow/failure. */
static void *alloc_buf(size_t n, size_t size) {
    size_t bytes;
    if (ob_mul_size(n, size, &bytes)) return NULL;
    return ob_alloc_aligned(64, bytes ? bytes : 64);
}

/* Prepares one weight for this CPU's kernels (binding callback). */
static ob_status bind_weight(void *user, const model_weight *mw, ob_err *err) {
    cpu_backend *b = user;
    cpu_weight *w = &b->w[mw->id];
    *w = (cpu_weight){.name = mw->name, .data = mw->data, .type = mw->type, .n_in = mw->n_in,
                      .n_out = mw->n_out, .row_size = mw->row_size};
    ob_status st = cpu_weight_init(w, err);
    if (st) {
        w->qt = NULL;
        return st;
    }
    const size_t ws = cpu_matmul_wsize(w, b->shape.n_batch);
    if (ws > b->wsize) b->wsize = ws;
    return OB_OK;
}

/* A routed expert's product of a prompt chunk to the stream's device when it has the rows
 * (cpu_moe.offload): the block is layer layer_lo + (moe - moe_blk)'s. */
static bool moe_offload(void *user, const cpu_moe *moe, cpu_moe_part part, int64_t expert,
                        float *y, const float *x, int64_t n) {
    cpu_backend *b = user;
    if (!b->base.stream) return false;
    const model_moe_block *mb = b->shape.weights->moe[b->base.layer_lo + (moe - b->moe_blk)];
    const model_weight *ws[3] = {mb->gate, mb->up, mb->down};
    return model_stream_matmul(b->base.stream, y, &ws[part][expert], x, n);
}

/* Layer il's MoE block over the prepared weights: each expert array is a run of consecutive
 * ids (model_moe_block). */
static void moe_block_of(cpu_backend *b, const model_moe_block *m, cpu_moe *out) {
    *out = (cpu_moe){.n_expert = m->n_expert, .n_used = m->n_used, .n_embd = m->n_embd,
                     .n_ff = m->n_ff, .norm = m->norm, .scale = m->scale,
                     .router = b->w[m->router.id], .gate = &b->w[m->gate[0].id],
                     .up = &b->w[m->up[0].id], .down = &b->w[m->down[0].id],
                     .n_ff_sh = m->n_ff_sh, .offload = moe_offload, .offload_user = b};
    if (m->n_ff_sh > 0) {
        out->sh_gate = b->w[m->sh_gate.id];
        out->sh_up = b->w[m->sh_up.id];
        out->sh_down = b->w[m->sh_down.id];
        out->sh_gate_w = b->w[m->sh_gate_w.id];
    }
    const size_t ws = cpu_moe_wsize(out, b->shape.n_batch); /* an expert may get every row */
    if (ws > b->wsize) b->wsize = ws;
}

/* The weights of the backend's layers, prepared; the scratch their products need. */
static ob_status bind_weights(cpu_backend *b, int64_t layer_lo, ob_err *err) {
    const model_backend_shape *s = &b->shape;
    b->wsize = 64;
    if (s->weights) {
        b->n_w = s->weights->n;
        b->w = ob_calloc((size_t)(b->n_w ? b->n_w : 1), sizeof *b->w);
        b->moe_blk = ob_calloc((size_t)s->n_layer, sizeof *b->moe_blk);
        if (!b->w || !b->moe_blk) return ob_fail(err, OB_ERR_NOMEM, "cpu backend: out of memory");
        ob_status st = model_backend_bind_each(s, layer_lo, "cpu backend", bind_weight, b, err);
        if (st) return st;
        for (int64_t l = 0; s->weights->moe && l < s->n_layer; l++)
            if (s->weights->moe[layer_lo + l])
                moe_block_of(b, s->weights->moe[layer_lo + l], &b->moe_blk[l]);
    }
    return OB_OK;
}

ob_status model_backend_cpu_new(const model_backend_shape *shape, int64_t layer_lo,
                                int n_threads, model_backend **out, ob_err *err) {
    *out = NULL;
    cpu_backend *b = ob_calloc(1, sizeof *b);
    if (!b) return ob_fail(err, OB_ERR_NOMEM, "cpu backend: out of memory");
    b->base.ops = &CPU_OPS;
    b->base.caps = (model_backend_caps){.paged_kv = true, .n_threads = n_threads};
    b->base.layer_lo = layer_lo;
    b->base.layer_hi = layer_lo + shape->n_layer;
    b->shape = *shape;
    ob_status st = bind_weights(b, layer_lo, err);
    if (!st) st = cpu_pool_new(n_threads, &b->pool, err);
    if (st) {
        be_free(&b->base);
        return st;
    }
    b->base.caps.n_threads = cpu_pool_n_threads(b->pool);
    b->layer_off = ob_alloc((size_t)shape->n_layer + 1, sizeof *b->layer_off);
    if (!b->layer_off) {
        be_free(&b->base);
        return ob_fail(err, OB_ERR_NOMEM, "cpu backend: out of memory");
    }
    if (!layer_offsets(shape, layer_lo, b->layer_off)) {
        be_free(&b->base);
        return ob_fail(err, OB_ERR_LIMIT, "KV cache: size overflows (%lld pool rows, %lld "
                       "sequences)", (long long)shape->n_kv_rows, (long long)shape->n_seq);
    }
    const size_t cache_elems = b->layer_off[shape->n_layer];
    size_t cache_bytes;
    if (!ob_mul_size(cache_elems, sizeof(uint16_t), &cache_bytes)) {
        /* read end to end by every decode step, like the weights */
        b->k_cache = ob_alloc_streamed(cache_bytes ? cache_bytes : 64);
        b->v_cache = ob_alloc_streamed(cache_bytes ? cache_bytes : 64);
    }
    b->wsp = alloc_buf(b->wsize, 1);
    b->attn_scratch = alloc_buf(cpu_attn_scratch_floats(shape->n_ctx, shape->head_dim, n_threads),
                                sizeof(float));
    if (shape->n_expert > 0 &&
        !(b->moe = cpu_moe_scratch_new(shape->n_batch, shape->n_embd, shape->n_expert,
                                       shape->n_expert_used, shape->n_ff_exp,
                                       shape->n_ff_shexp))) {
        be_free(&b->base);
        return ob_fail(err, OB_ERR_NOMEM, "cpu backend: out of memory for the expert scratch "
                       "of a batch of %lld", (long long)shape->n_batch);
    }
    if (b->k_cache && b->v_cache && b->wsp && b->attn_scratch &&
        (st = model_cpu_rs_new(shape, layer_lo, n_threads, &b->rs, err))) {
        be_free(&b->base);
        return st;
    }
    if (!b->k_cache || !b->v_cache || !b->wsp || !b->attn_scratch) {
        be_free(&b->base);
        return ob_fail(err, OB_ERR_NOMEM, "KV cache: out of memory for %lld positions x %lld "
                       "layers (%.1f MiB)", (long long)shape->n_kv_rows, (long long)shape->n_layer,
                       (double)cache_elems * 4.0 / 1048576.0);
    }
    *out = &b->base;
    return OB_OK;
}
